//! Simulated inbound WhatsApp messages: the §6.3 `messages` change Meta posts when a user writes.

use serde_json::{json, Value};

use crate::payload::{envelope, messages_change, timestamp};
use crate::server::Shared;

/// A media kind of an inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Document,
    Audio,
    Video,
    Sticker,
}

impl MediaKind {
    fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Document => "document",
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Sticker => "sticker",
        }
    }
}

/// What an inbound message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InboundContent {
    Text(String),
    /// A media id to download through Graph, with its type.
    Media {
        kind: MediaKind,
        id: String,
        mime_type: String,
        caption: Option<String>,
    },
    /// A template quick-reply button press.
    Button {
        text: String,
        payload: String,
    },
    /// An interactive reply button press.
    ButtonReply {
        id: String,
        title: String,
    },
    /// An interactive list choice.
    ListReply {
        id: String,
        title: String,
        description: Option<String>,
    },
}

impl Default for InboundContent {
    fn default() -> Self {
        InboundContent::Text(String::new())
    }
}

/// An inbound message from a WhatsApp user to one of the account's phone numbers.
#[derive(Clone, Debug, Default)]
pub struct Inbound {
    /// None = a fresh `wamid.…`.
    pub id: Option<String>,
    /// The user's number (digits, `+` optional).
    pub from: String,
    /// Sent as `contacts[].profile.name`.
    pub profile_name: Option<String>,
    /// The business number written to; None = the first configured one.
    pub phone_number_id: Option<String>,
    /// The `wamid` of the message this one replies to (`context.id`).
    pub reply_to: Option<String>,
    pub content: InboundContent,
}

fn message_json(shared: &Shared, inbound: &Inbound, display: &str) -> Value {
    let from = inbound.from.trim_start_matches('+');
    let id = inbound.id.clone().unwrap_or_else(|| shared.rng.wamid());
    let mut message = json!({"from": from, "id": id, "timestamp": timestamp()});
    let (kind, body) = match &inbound.content {
        InboundContent::Text(text) => ("text", json!({ "body": text })),
        InboundContent::Media {
            kind,
            id,
            mime_type,
            caption,
        } => {
            let mut media = json!({
                "id": id,
                "mime_type": mime_type,
                "sha256": crate::signature::signature(&shared.config.app_secret, id.as_bytes())
                    .trim_start_matches("sha256=")
                    .to_string(),
            });
            if let Some(caption) = caption {
                media["caption"] = caption.clone().into();
            }
            (kind.as_str(), media)
        }
        InboundContent::Button { text, payload } => {
            ("button", json!({ "payload": payload, "text": text }))
        }
        InboundContent::ButtonReply { id, title } => (
            "interactive",
            json!({"type": "button_reply", "button_reply": {"id": id, "title": title}}),
        ),
        InboundContent::ListReply {
            id,
            title,
            description,
        } => {
            let mut reply = json!({"id": id, "title": title});
            if let Some(description) = description {
                reply["description"] = description.clone().into();
            }
            (
                "interactive",
                json!({"type": "list_reply", "list_reply": reply}),
            )
        }
    };
    message["type"] = kind.into();
    message[kind] = body;
    if let Some(replied) = &inbound.reply_to {
        message["context"] = json!({"from": display, "id": replied});
    }
    message
}

/// The raw body of one webhook POST carrying `inbound`: one `messages` change per business
/// number written to, with each sender once in its `contacts`.
pub(crate) fn body(shared: &Shared, inbound: &[Inbound]) -> Vec<u8> {
    let first = shared.config.phone_numbers[0].id.as_str();
    let mut groups: Vec<(&str, Vec<&Inbound>)> = Vec::new();
    for message in inbound {
        let phone = message.phone_number_id.as_deref().unwrap_or(first);
        match groups.iter_mut().find(|(id, _)| *id == phone) {
            Some((_, list)) => list.push(message),
            None => groups.push((phone, vec![message])),
        }
    }
    let changes = groups
        .into_iter()
        .map(|(phone, list)| {
            let display = shared
                .config
                .phone_number(phone)
                .map_or("", |p| p.display_phone_number.as_str());
            let mut contacts: Vec<Value> = Vec::new();
            for message in &list {
                let wa_id = message.from.trim_start_matches('+');
                if contacts.iter().any(|c| c["wa_id"] == wa_id) {
                    continue;
                }
                let mut contact = json!({ "wa_id": wa_id });
                if let Some(name) = &message.profile_name {
                    contact["profile"] = json!({ "name": name });
                }
                contacts.push(contact);
            }
            let messages: Vec<Value> = list
                .iter()
                .map(|m| message_json(shared, m, display))
                .collect();
            messages_change(
                shared,
                phone,
                json!({"contacts": contacts, "messages": messages}),
            )
        })
        .collect();
    envelope(shared, changes)
}
