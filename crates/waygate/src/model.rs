//! Records shared by the store, the services and the HTTP layer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waygate_core::money::Money;
use waygate_core::pricing::Category;
use waygate_core::template::TemplateBody;
use waygate_core::template_submission::Button;

/// Generates a lower-case string enum with `as_str`/`parse`, used for the small closed
/// vocabularies of the contract (statuses, ratings, providers).
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name { $(#[serde(rename = $text)] #[schema(rename = $text)] $variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $text),+ } }
            pub fn parse(s: &str) -> Option<$name> { match s { $($text => Some($name::$variant),)+ _ => None } }
            /// The allowed values, for validation messages.
            pub fn choices() -> String { [$($text),+].join(", ") }
        }
    };
}

string_enum!(SenderStatus { Online = "online", Offline = "offline" });
string_enum!(QualityRating { Green = "GREEN", Yellow = "YELLOW", Red = "RED" });
string_enum!(ProviderKind { Simulator = "simulator", Twilio = "twilio", Meta = "meta" });
string_enum!(TemplateStatus {
    Approved = "approved",
    Pending = "pending",
    Rejected = "rejected",
    Paused = "paused",
    Disabled = "disabled",
});
string_enum!(Direction { Outbound = "outbound", Inbound = "inbound" });

impl SenderStatus {
    /// "Online" / "Offline", as the SENDER_OFFLINE text shows it.
    pub fn capitalised(self) -> &'static str {
        match self {
            SenderStatus::Online => "Online",
            SenderStatus::Offline => "Offline",
        }
    }
}

impl ProviderKind {
    /// Providers that address templates by their own reference (Twilio ContentSid, Meta name).
    pub fn needs_template_ref(self) -> bool {
        !matches!(self, ProviderKind::Simulator)
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub balance: Money,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub prefix: String,
}

#[derive(Debug, Clone)]
pub struct Sender {
    pub id: i64,
    pub user_id: i64,
    pub phone_number: String,
    pub display_name: String,
    pub status: SenderStatus,
    pub quality_rating: QualityRating,
    pub messaging_limit: Option<i64>,
    pub provider: ProviderKind,
    /// Twilio's `XE…` sender sid, or Meta's phone number id.
    pub provider_ref: Option<String>,
    /// Meta: the WhatsApp Business Account the number and its templates belong to.
    pub waba_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewSender {
    pub phone_number: String,
    pub display_name: String,
    pub status: SenderStatus,
    pub quality_rating: QualityRating,
    pub messaging_limit: Option<i64>,
    pub provider: ProviderKind,
    pub provider_ref: Option<String>,
    pub waba_id: Option<String>,
}

/// Fields an operator may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SenderPatch {
    pub status: Option<SenderStatus>,
    pub quality_rating: Option<QualityRating>,
    pub messaging_limit: Option<Option<i64>>,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub id: i64,
    pub sender_id: i64,
    pub name: String,
    pub language: String,
    pub category: Category,
    pub status: TemplateStatus,
    /// Parsed once, when read or created: a send renders it without parsing it again.
    pub body: TemplateBody,
    pub variables: Vec<String>,
    pub provider_ref: Option<String>,
    /// Example values, one per placeholder, that WhatsApp reviews the template with.
    pub samples: Vec<String>,
    pub header_text: Option<String>,
    pub footer_text: Option<String>,
    pub buttons: Vec<Button>,
    pub rejection_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What WhatsApp's review says of a template, as its provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub status: TemplateStatus,
    pub rejection_reason: Option<String>,
}

/// What a provider says of a sender now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderReport {
    pub status: SenderStatus,
    /// `None` keeps the last known rating (the provider does not know one now).
    pub quality_rating: Option<QualityRating>,
    /// `None` is unlimited.
    pub messaging_limit: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub name: String,
    pub language: String,
    pub category: Category,
    pub status: TemplateStatus,
    pub body: TemplateBody,
    pub variables: Vec<String>,
    pub provider_ref: Option<String>,
    pub samples: Vec<String>,
    pub header_text: Option<String>,
    pub footer_text: Option<String>,
    pub buttons: Vec<Button>,
    pub rejection_reason: Option<String>,
    /// When to first read its status from the provider; `None`: never (nothing to read).
    pub sync_at: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct TemplatePatch {
    pub status: Option<TemplateStatus>,
    pub provider_ref: Option<Option<String>>,
}

#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: i64,
    pub user_id: i64,
    pub sender_id: i64,
    pub recipient_phone: String,
    pub customer_name: Option<String>,
    pub last_message_at: i64,
    pub last_customer_message_at: Option<i64>,
    pub last_template_at: Option<i64>,
}

/// One status a message passed through, with when (unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusStep {
    pub status: String,
    pub at: i64,
}

/// A file attached to an inbound message, as the provider announced it: Twilio gives a URL,
/// Meta a media id to download through the Graph API; each entry carries the one it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Media {
    pub content_type: String,
    /// Meta's media id (absent for Twilio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_media_id: Option<String>,
    /// Where Twilio serves the file (absent for Meta).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A message as stored (either direction).
#[derive(Debug, Clone)]
pub struct Message {
    pub id: i64,
    pub conversation_id: i64,
    pub user_id: i64,
    pub direction: Direction,
    pub sender_id: i64,
    pub recipient_phone: String,
    pub template_id: Option<i64>,
    pub body: String,
    pub status: String,
    pub message_sid: Option<String>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub price: Money,
    pub created_at: i64,
    pub status_history: Vec<StatusStep>,
    pub media: Vec<Media>,
    /// The payload of the quick-reply button an inbound message answered with.
    pub button_payload: Option<String>,
    /// The provider id of the message an inbound message replies to.
    pub reply_to_sid: Option<String>,
    /// Set while waygate cannot learn this message's fate from its provider: an operator's case.
    pub status_unknown: Option<StatusUnknown>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUnknown {
    pub since: i64,
    pub reason: String,
}

/// The events a webhook may subscribe to (API.md §7, §11).
pub const MESSAGE_STATUS: &str = "message.status";
pub const MESSAGE_RECEIVED: &str = "message.received";
pub const TEMPLATE_STATUS: &str = "template.status";
pub const SENDER_STATUS: &str = "sender.status";
pub const EVENT_TYPES: [&str; 4] = [
    MESSAGE_STATUS,
    MESSAGE_RECEIVED,
    TEMPLATE_STATUS,
    SENDER_STATUS,
];

#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: i64,
    pub user_id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    /// The secret before the last rotation, still used to sign until it expires (unix ms).
    pub previous_secret: Option<(String, i64)>,
    pub created_at: i64,
}

/// A unit of durable background work (outbox row).
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// Why the attempt before this one did not settle the job.
    pub last_error: Option<String>,
}

/// A job given up on, kept for an operator (`GET /api/admin/jobs`).
#[derive(Debug, Clone)]
pub struct SetAsideJob {
    pub id: i64,
    pub kind: String,
    /// The message a send job was for.
    pub message_id: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}
