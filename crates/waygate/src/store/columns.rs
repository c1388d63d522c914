//! Column lists, one per record, the same in every backend (the schemas share these names),
//! so that each backend's row mappers read them by position.

pub const SENDER_COLUMNS: &str =
    "id, user_id, phone_number, display_name, status, quality_rating, messaging_limit, provider, \
     provider_ref, waba_id";
pub const TEMPLATE_COLUMNS: &str =
    "id, sender_id, name, language, category, status, body_text, variables, provider_ref, \
     samples, header_text, footer_text, rejection_reason, created_at, updated_at, buttons";
pub const CONVERSATION_COLUMNS: &str = "id, user_id, sender_id, recipient_phone, customer_name, \
     last_message_at, last_customer_message_at, last_template_at";
/// Messages with their status, for `SELECT {MESSAGE_COLUMNS} FROM {MESSAGES}`.
pub const MESSAGES: &str = "messages JOIN message_status ON message_id = id";
pub const MESSAGE_COLUMNS: &str = "id, conversation_id, user_id, direction, sender_id, recipient_phone, \
     template_id, body, status, message_sid, error_code, error_message, price_micros, created_at, status_history, \
     media, button_payload, status_unknown_since, status_unknown_reason, reply_to_sid";
pub const WEBHOOK_COLUMNS: &str =
    "id, user_id, url, events, secret, previous_secret, previous_secret_until, created_at";
