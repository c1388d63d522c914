//! The JSON shapes of the contract (API.md §3), built from stored records.

use serde::Serialize;
use utoipa::ToSchema;
use waygate_core::money::Money;
use waygate_core::template_submission::Button;
use waygate_core::time::{from_millis, rfc3339};
use waygate_core::window::{expires_at, Session, SessionStatus};

use crate::model::*;

fn time(ms: i64) -> String {
    rfc3339(from_millis(ms))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SenderView {
    pub id: i64,
    #[schema(example = "+14155551234")]
    pub phone_number: String,
    pub display_name: String,
    pub status: SenderStatus,
    pub quality_rating: QualityRating,
    pub messaging_limit: Option<i64>,
    #[schema(example = "10,000 / 24hr")]
    pub messaging_limit_formatted: String,
}

/// "10,000 / 24hr", or "Unlimited".
pub fn format_limit(limit: Option<i64>) -> String {
    let Some(limit) = limit else {
        return "Unlimited".into();
    };
    let digits = limit.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if limit < 0 { "-" } else { "" };
    format!("{sign}{grouped} / 24hr")
}

impl From<&Sender> for SenderView {
    fn from(s: &Sender) -> Self {
        SenderView {
            id: s.id,
            phone_number: s.phone_number.clone(),
            display_name: s.display_name.clone(),
            status: s.status,
            quality_rating: s.quality_rating,
            messaging_limit: s.messaging_limit,
            messaging_limit_formatted: format_limit(s.messaging_limit),
        }
    }
}

/// The admin view of a sender adds its provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminSenderView {
    #[serde(flatten)]
    pub sender: SenderView,
    pub provider: ProviderKind,
    pub provider_ref: Option<String>,
    pub waba_id: Option<String>,
}

impl From<&Sender> for AdminSenderView {
    fn from(s: &Sender) -> Self {
        AdminSenderView {
            sender: SenderView::from(s),
            provider: s.provider,
            provider_ref: s.provider_ref.clone(),
            waba_id: s.waba_id.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    pub id: i64,
    pub name: String,
    pub language: String,
    #[schema(example = "utility")]
    pub category: String,
    pub status: TemplateStatus,
    pub body_text: String,
    pub variables: Vec<String>,
    pub has_variables: bool,
    /// Why review rejected it (e.g. `INVALID_FORMAT`), or null.
    pub rejection_reason: Option<String>,
    /// Example values WhatsApp reviews it with, one per placeholder.
    pub samples: Vec<String>,
    pub header_text: Option<String>,
    pub footer_text: Option<String>,
    /// `{"type": "quick_reply"|"url"|"phone_number", "text", "url"?, "phone_number"?}`.
    #[schema(value_type = Vec<Object>)]
    pub buttons: Vec<Button>,
    /// The provider's template id (Twilio `HX…`, Meta's template id), or null.
    pub provider_ref: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Template> for TemplateView {
    fn from(t: &Template) -> Self {
        TemplateView {
            id: t.id,
            name: t.name.clone(),
            language: t.language.clone(),
            category: t.category.as_str().to_string(),
            status: t.status,
            body_text: t.body.as_str().to_string(),
            variables: t.variables.clone(),
            has_variables: !t.variables.is_empty(),
            rejection_reason: t.rejection_reason.clone(),
            samples: t.samples.clone(),
            header_text: t.header_text.clone(),
            footer_text: t.footer_text.clone(),
            buttons: t.buttons.clone(),
            provider_ref: t.provider_ref.clone(),
            created_at: time(t.created_at),
            updated_at: time(t.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusStepView {
    pub status: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageView {
    /// The whatsapp_message_id.
    pub id: i64,
    pub conversation_id: i64,
    pub message_id: i64,
    pub direction: Direction,
    pub sender_id: i64,
    pub recipient_phone: String,
    pub template_id: Option<i64>,
    pub body: String,
    pub status: String,
    pub message_sid: Option<String>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    #[schema(value_type = f64)]
    pub price: Money,
    pub created_at: String,
    pub status_history: Vec<StatusStepView>,
    /// Inbound only: attached files as the provider announced them.
    pub media: Vec<Media>,
    /// Inbound only: the payload of the quick-reply button the customer pressed (Meta: also
    /// the id of an interactive reply button or list row).
    pub button_payload: Option<String>,
    /// Inbound only: the provider id (`message_sid`) of the message the customer replied to.
    pub reply_to_sid: Option<String>,
    /// Null while the message's fate is known or being learnt. Set when waygate cannot learn
    /// it from the provider (the provider does not know the message, or the send's outcome
    /// could not be settled): an operator's case, never silently left pending.
    pub status_unknown: Option<StatusUnknownView>,
}

/// A job given up on, as an operator sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SetAsideJobView {
    pub id: i64,
    /// `send` or `webhook`.
    pub kind: String,
    /// The message a send job was for.
    pub message_id: Option<i64>,
    pub attempts: i64,
    /// Why it was given up on.
    pub last_error: Option<String>,
    pub created_at: String,
}

impl From<&SetAsideJob> for SetAsideJobView {
    fn from(j: &SetAsideJob) -> Self {
        SetAsideJobView {
            id: j.id,
            kind: j.kind.clone(),
            message_id: j.message_id,
            attempts: j.attempts,
            last_error: j.last_error.clone(),
            created_at: time(j.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusUnknownView {
    pub since: String,
    pub reason: String,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        MessageView {
            id: m.id,
            conversation_id: m.conversation_id,
            // One stored row is both the conversation message and the provider-facing record.
            message_id: m.id,
            direction: m.direction,
            sender_id: m.sender_id,
            recipient_phone: m.recipient_phone.clone(),
            template_id: m.template_id,
            body: m.body.clone(),
            status: m.status.clone(),
            message_sid: m.message_sid.clone(),
            error_code: m.error_code,
            error_message: m.error_message.clone(),
            price: if m.direction == Direction::Inbound {
                Money::ZERO
            } else {
                m.price
            },
            created_at: time(m.created_at),
            status_history: m
                .status_history
                .iter()
                .map(|s| StatusStepView {
                    status: s.status.clone(),
                    at: time(s.at),
                })
                .collect(),
            media: m.media.clone(),
            button_payload: m.button_payload.clone(),
            reply_to_sid: m.reply_to_sid.clone(),
            status_unknown: m.status_unknown.as_ref().map(|u| StatusUnknownView {
                since: time(u.since),
                reason: u.reason.clone(),
            }),
        }
    }
}

/// The window state of a conversation at `now` (None = no conversation).
pub fn session_of(conversation: Option<&Conversation>, template_opens: bool, now: i64) -> Session {
    match conversation {
        None => Session::NoConversation,
        Some(c) => Session::of(
            expires_at(
                c.last_customer_message_at.map(from_millis),
                c.last_template_at.map(from_millis),
                template_opens,
            ),
            from_millis(now),
        ),
    }
}

pub fn session_status(
    conversation: Option<&Conversation>,
    template_opens: bool,
    now: i64,
) -> SessionStatus {
    SessionStatus::from(&session_of(conversation, template_opens, now))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationView {
    pub id: i64,
    pub sender_id: i64,
    pub recipient_phone: String,
    pub customer_name: Option<String>,
    pub last_message_at: String,
    pub last_customer_message_at: Option<String>,
    #[schema(value_type = Object)]
    pub session_status: SessionStatus,
}

impl ConversationView {
    pub fn new(c: &Conversation, template_opens: bool, now: i64) -> Self {
        ConversationView {
            id: c.id,
            sender_id: c.sender_id,
            recipient_phone: c.recipient_phone.clone(),
            customer_name: c.customer_name.clone(),
            last_message_at: time(c.last_message_at),
            last_customer_message_at: c.last_customer_message_at.map(time),
            session_status: session_status(Some(c), template_opens, now),
        }
    }
}

/// The session-status endpoint's body (all three shapes).
pub fn session_body(
    conversation: Option<&Conversation>,
    template_opens: bool,
    now: i64,
) -> serde_json::Value {
    let status = session_status(conversation, template_opens, now);
    match conversation {
        None => {
            serde_json::json!({ "success": true, "has_conversation": false, "session_status": status })
        }
        Some(c) => serde_json::json!({
            "success": true,
            "has_conversation": true,
            "conversation_id": c.id,
            "customer_name": c.customer_name,
            "last_customer_message_at": c.last_customer_message_at.map(time),
            "session_status": status,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_formatting() {
        assert_eq!(format_limit(None), "Unlimited");
        assert_eq!(format_limit(Some(250)), "250 / 24hr");
        assert_eq!(format_limit(Some(1000)), "1,000 / 24hr");
        assert_eq!(format_limit(Some(10000)), "10,000 / 24hr");
        assert_eq!(format_limit(Some(1234567)), "1,234,567 / 24hr");
    }
}
