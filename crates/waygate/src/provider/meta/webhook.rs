//! What Meta posts to `/webhooks/meta` (PROVIDERS.md §6.3): the signature over the raw body,
//! and the envelope's entries and changes read into the events waygate acts on. Anything it
//! does not act on (other fields, message types without text, unknown template events) is
//! passed over rather than refused, so that one odd item never holds back the rest.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::catalog::{review, template_status};
use crate::model::{Media, Review};
use crate::provider::{ProviderInbound, ProviderStatus};

/// Whether `header` (`X-Hub-Signature-256: sha256=<hex>`) is the HMAC-SHA256 of `body` with the
/// app secret, compared in constant time.
pub fn signature_valid(app_secret: &str, body: &[u8], header: &str) -> bool {
    let Some(given) = header
        .strip_prefix("sha256=")
        .and_then(|hex_text| hex::decode(hex_text.trim()).ok())
    else {
        return false;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    expected.as_slice().ct_eq(&given).into()
}

/// One thing a notification tells, in the order it told them.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A sent message's status.
    Status(ProviderStatus),
    /// A customer's message.
    Inbound(ProviderInbound),
    /// Review's decision on a template, named by its Meta template id.
    Template { template_id: String, review: Review },
    /// The quality or messaging limit of this number (E.164) changed: read it again.
    Quality { phone_number: String },
}

#[derive(Deserialize)]
struct Notification {
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: String,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize, Default)]
struct MessagesValue {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    statuses: Vec<StatusItem>,
    #[serde(default)]
    messages: Vec<Value>,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    display_phone_number: String,
}

#[derive(Deserialize)]
struct Contact {
    #[serde(default)]
    wa_id: String,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct StatusItem {
    id: String,
    status: String,
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    errors: Vec<StatusError>,
}

#[derive(Deserialize)]
struct StatusError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Deserialize)]
struct TemplateUpdate {
    event: String,
    message_template_id: Value,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct QualityUpdate {
    display_phone_number: String,
}

/// The events of a notification's body; an error only when the body is not Meta's envelope.
pub fn events(body: &[u8]) -> Result<Vec<Event>, serde_json::Error> {
    let notification: Notification = serde_json::from_slice(body)?;
    let mut events = Vec::new();
    for change in notification.entry.into_iter().flat_map(|e| e.changes) {
        match change.field.as_str() {
            "messages" => messages(change.value, &mut events),
            "message_template_status_update" => {
                let Ok(update) = serde_json::from_value::<TemplateUpdate>(change.value) else {
                    continue;
                };
                let template_id = match update.message_template_id {
                    Value::String(id) => id,
                    other => other.to_string(),
                };
                match template_status(&update.event) {
                    Some(status) => events.push(Event::Template {
                        template_id,
                        review: review(status, update.reason),
                    }),
                    None => {
                        tracing::info!(event = %update.event, %template_id, "Meta template event waygate does not track")
                    }
                }
            }
            "phone_number_quality_update" => {
                if let Ok(update) = serde_json::from_value::<QualityUpdate>(change.value) {
                    events.push(Event::Quality {
                        phone_number: plus(&update.display_phone_number),
                    });
                }
            }
            other => tracing::debug!(field = other, "Meta webhook field waygate does not use"),
        }
    }
    Ok(events)
}

/// `+` and the digits, as Meta gives numbers without it.
fn plus(digits: &str) -> String {
    format!("+{}", digits.trim_start_matches('+'))
}

fn messages(value: Value, events: &mut Vec<Event>) {
    let Ok(value) = serde_json::from_value::<MessagesValue>(value) else {
        return;
    };
    for s in value.statuses {
        let error = s.errors.into_iter().next();
        events.push(Event::Status(ProviderStatus {
            sid: s.id,
            status: s.status,
            error_code: error.as_ref().and_then(|e| e.code),
            error_message: error.and_then(|e| e.message.or(e.title)),
            message_id: s.biz_opaque_callback_data.and_then(|d| d.parse().ok()),
        }));
    }
    let to = plus(&value.metadata.display_phone_number);
    for m in &value.messages {
        let text = |pointer: &str| {
            m.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let (Some(wamid), Some(from)) = (text("/id"), text("/from")) else {
            continue;
        };
        let kind = text("/type").unwrap_or_default();
        let profile_name = value
            .contacts
            .iter()
            .find(|c| c.wa_id == from)
            .and_then(|c| c.profile.as_ref()?.name.clone());
        let media: Vec<Media> = match kind.as_str() {
            "image" | "audio" | "video" | "document" | "sticker" => text(&format!("/{kind}/id"))
                .map(|id| Media {
                    content_type: text(&format!("/{kind}/mime_type")).unwrap_or_default(),
                    provider_media_id: Some(id),
                    url: None,
                })
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        let body = text("/text/body")
            .or_else(|| text(&format!("/{kind}/caption")))
            .or_else(|| text("/button/text"))
            .or_else(|| text("/interactive/button_reply/title"))
            .or_else(|| text("/interactive/list_reply/title"))
            .unwrap_or_default();
        let button_payload = text("/button/payload")
            .or_else(|| text("/interactive/button_reply/id"))
            .or_else(|| text("/interactive/list_reply/id"));
        // A customer without a phone number (a username) is known by Meta's user id.
        let from = match from.bytes().all(|b| b.is_ascii_digit()) {
            true => plus(&from),
            false => from,
        };
        events.push(Event::Inbound(ProviderInbound {
            sid: wamid,
            to: to.clone(),
            from,
            body,
            profile_name,
            media,
            button_payload,
            reply_to_sid: text("/context/id"),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_raw_body() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(body);
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(signature_valid("secret", body, &good));
        assert!(!signature_valid("other", body, &good));
        assert!(!signature_valid("secret", b"{}", &good));
        assert!(!signature_valid(
            "secret",
            body,
            good.trim_start_matches("sha256=")
        ));
        assert!(!signature_valid("secret", body, "sha256=zz"));
    }

    #[test]
    fn contacts_name_the_customers_of_a_batch() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
            "metadata":{"display_phone_number":"15550783881","phone_number_id":"1065"},
            "contacts":[{"wa_id":"14155551234","profile":{"name":"Ada"}}],
            "messages":[{"from":"14155551234","id":"wamid.A","type":"interactive",
              "interactive":{"type":"list_reply","list_reply":{"id":"row-2","title":"Tuesday"}},
              "context":{"from":"15550783881","id":"wamid.Q"}}],
            "statuses":[{"id":"wamid.S","status":"failed","biz_opaque_callback_data":"7",
              "errors":[{"code":131026,"title":"Message undeliverable"}]}]}}]}]}"#;
        let events = events(body).unwrap();
        assert_eq!(
            events[0],
            Event::Status(ProviderStatus {
                sid: "wamid.S".into(),
                status: "failed".into(),
                error_code: Some(131_026),
                error_message: Some("Message undeliverable".into()),
                message_id: Some(7),
            })
        );
        let Event::Inbound(inbound) = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(inbound.to, "+15550783881");
        assert_eq!(inbound.from, "+14155551234");
        assert_eq!(inbound.profile_name.as_deref(), Some("Ada"));
        assert_eq!(inbound.body, "Tuesday");
        assert_eq!(inbound.button_payload.as_deref(), Some("row-2"));
        assert_eq!(inbound.reply_to_sid.as_deref(), Some("wamid.Q"));
    }
}
