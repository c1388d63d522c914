//! Request and response shapes as the OpenAPI document shows them. Handlers parse bodies
//! field by field (to name every bad field at once); these types describe the same fields.

use serde::Serialize;
use utoipa::ToSchema;

use crate::model::{ProviderKind, QualityRating, SenderStatus, TemplateStatus};
use crate::views::{ConversationView, MessageView, SenderView, TemplateView};

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// Always false.
    success: bool,
    error: String,
    #[schema(example = "VALIDATION_ERROR")]
    error_code: String,
    /// VALIDATION_ERROR and TEMPLATE_MISMATCH: messages per field.
    #[schema(value_type = Option<Object>)]
    errors: Option<serde_json::Value>,
    /// SESSION_EXPIRED: the session-status object.
    #[schema(value_type = Option<Object>)]
    session_status: Option<serde_json::Value>,
    /// RATE_LIMITED: whole seconds to wait.
    retry_after: Option<u64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SendTemplateBody {
    sender_id: i64,
    template_id: i64,
    #[schema(example = "+14155551234")]
    recipient_phone: String,
    recipient_name: Option<String>,
    /// Positional ("1", "2", …) or named keys; string or number values.
    #[schema(value_type = Option<Object>)]
    variables: Option<serde_json::Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SendFreeformBody {
    sender_id: i64,
    #[schema(example = "+14155551234")]
    recipient_phone: String,
    /// 1–4,096 characters.
    message: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SendResponse {
    success: bool,
    conversation_id: i64,
    message_id: i64,
    whatsapp_message_id: i64,
    /// Null while the message waits in the outbox.
    message_sid: Option<String>,
    #[schema(example = "queued")]
    status: String,
    /// send-freeform only.
    #[schema(value_type = Option<Object>)]
    session_status: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct SenderList {
    pub data: Vec<SenderView>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateList {
    pub data: Vec<TemplateView>,
}

#[derive(Serialize, ToSchema)]
pub struct ConversationPage {
    pub data: Vec<ConversationView>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub data: Vec<MessageView>,
    pub next_cursor: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MeResponse {
    id: i64,
    name: String,
    email: String,
    total_balance: f64,
    #[schema(example = "USD")]
    currency: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct WebhookBody {
    url: String,
    /// Any of `message.status`, `message.received`, `template.status`, `sender.status`.
    events: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub data: Vec<WebhookView>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookCreated {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    /// `whsec_…`, shown once.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct SecretResponse {
    pub secret: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewUserBody {
    name: String,
    #[schema(example = "ops@example.com")]
    email: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewApiKeyBody {
    /// Default "default".
    name: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewSenderBody {
    #[schema(example = "+14155550100")]
    phone_number: String,
    display_name: String,
    /// Default online.
    status: Option<SenderStatus>,
    /// Default GREEN.
    quality_rating: Option<QualityRating>,
    /// Distinct recipients per rolling 24 h; null = unlimited.
    #[schema(minimum = 0)]
    messaging_limit: Option<i64>,
    /// Default simulator.
    provider: Option<ProviderKind>,
    /// The provider's sender id (Twilio `XE…`, Meta phone number id).
    provider_ref: Option<String>,
    /// Meta: the WhatsApp Business Account id.
    waba_id: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SenderPatchBody {
    status: Option<SenderStatus>,
    quality_rating: Option<QualityRating>,
    /// null = unlimited.
    #[schema(minimum = 0)]
    messaging_limit: Option<i64>,
    display_name: Option<String>,
}

/// A template's category (`service` is for freeform messages only).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum TemplateCategory {
    Marketing,
    Utility,
    Authentication,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewTemplateBody {
    /// Lower-case letters, digits and `_`.
    name: String,
    #[schema(example = "en")]
    language: String,
    category: TemplateCategory,
    /// Placeholders `{{1}}…{{n}}` in order.
    #[schema(example = "Hello {{1}}, your code is {{2}}.")]
    body_text: String,
    /// A name for each placeholder, in order; default `["1", …]`.
    variables: Option<Vec<String>>,
    /// Default approved.
    status: Option<TemplateStatus>,
    provider_ref: Option<String>,
}

/// A template submitted for WhatsApp's review (API.md §11).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SubmittedTemplateBody {
    /// Lower-case letters, digits and `_`, 1–512 characters; unique per sender and language.
    #[schema(example = "order_update")]
    name: String,
    /// A WhatsApp locale code.
    #[schema(example = "en_US")]
    language: String,
    category: TemplateCategory,
    /// 1–1,024 characters; placeholders `{{1}}…{{n}}` in order, not first or last, never adjacent.
    #[schema(example = "Hi {{1}}, your order {{2}} ships today.")]
    body_text: String,
    /// A name for each placeholder, in order; default `["1", …]`.
    variables: Option<Vec<String>>,
    /// One example value per placeholder, in order.
    #[schema(example = json!(["Ada", "#1042"]))]
    samples: Vec<String>,
    /// At most 60 characters, no placeholders.
    header_text: Option<String>,
    /// At most 60 characters, no placeholders.
    footer_text: Option<String>,
    /// At most 10 of `{"type": "quick_reply", "text"}`, `{"type": "url", "text", "url"}` or
    /// `{"type": "phone_number", "text", "phone_number"}`; text at most 25 characters.
    #[schema(value_type = Option<Vec<Object>>)]
    buttons: Option<Vec<serde_json::Value>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TemplatePatchBody {
    status: Option<TemplateStatus>,
    /// null clears it.
    provider_ref: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreditBody {
    /// Positive, in account-currency units, at most 6 decimals.
    #[schema(example = 12.5)]
    amount: f64,
    /// The same reference again credits nothing.
    reference: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SimulatorInboundBody {
    sender_id: i64,
    /// The customer, E.164.
    #[schema(example = "+14155551234")]
    from: String,
    body: String,
    /// Becomes the conversation's customer name.
    profile_name: Option<String>,
}
