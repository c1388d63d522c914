//! Simulated inbound WhatsApp messages: the §2.2 parameter set Twilio posts to a sender's webhook.

use crate::random::Rng;

/// An inbound message from a WhatsApp user to one of the account's senders.
#[derive(Clone, Debug, Default)]
pub struct Inbound {
    /// None = a fresh SID (`SM…`, or `MM…` when there is media, as Twilio does).
    pub sid: Option<String>,
    /// The user, `"+E164"`.
    pub from: String,
    /// The business sender, `"+E164"`.
    pub to: String,
    pub body: String,
    pub profile_name: Option<String>,
    /// `(url, content type)` per attachment.
    pub media: Vec<(String, String)>,
    /// `(text, payload)` of a quick-reply button.
    pub button: Option<(String, String)>,
}

/// The form parameters of an inbound webhook, in the order of captured payloads.
pub(crate) fn params(account_sid: &str, rng: &Rng, inbound: &Inbound) -> Vec<(String, String)> {
    let prefix = if inbound.media.is_empty() { "SM" } else { "MM" };
    let sid = inbound.sid.clone().unwrap_or_else(|| rng.sid(prefix));
    let from = bare_number(&inbound.from);
    let mut params: Vec<(String, String)> = Vec::with_capacity(20);
    let mut push = |name: &str, value: String| params.push((name.to_string(), value));

    push("SmsMessageSid", sid.clone());
    push("NumMedia", inbound.media.len().to_string());
    if let Some(name) = &inbound.profile_name {
        push("ProfileName", name.clone());
    }
    push("MessageType", message_type(inbound).to_string());
    push("SmsSid", sid.clone());
    push("WaId", from.trim_start_matches('+').to_string());
    push("SmsStatus", "received".to_string());
    push("Body", inbound.body.clone());
    push("To", format!("whatsapp:{}", bare_number(&inbound.to)));
    push("NumSegments", "1".to_string());
    push("ReferralNumMedia", "0".to_string());
    push("MessageSid", sid);
    push("AccountSid", account_sid.to_string());
    push("From", format!("whatsapp:{from}"));
    for (i, (url, content_type)) in inbound.media.iter().enumerate() {
        push(&format!("MediaContentType{i}"), content_type.clone());
        push(&format!("MediaUrl{i}"), url.clone());
    }
    if let Some((text, payload)) = &inbound.button {
        push("ButtonText", text.clone());
        push("ButtonPayload", payload.clone());
    }
    push("ApiVersion", "2010-04-01".to_string());
    params
}

/// Accepts `+E164` or an already prefixed `whatsapp:+E164`.
fn bare_number(address: &str) -> &str {
    address.strip_prefix("whatsapp:").unwrap_or(address)
}

/// `MessageType` as Twilio's docs list it: `button`, a media kind, or `text`.
fn message_type(inbound: &Inbound) -> &'static str {
    if inbound.button.is_some() {
        return "button";
    }
    match inbound.media.first() {
        None => "text",
        Some((_, content_type)) => match content_type.split('/').next() {
            Some("image") => "image",
            Some("video") => "video",
            Some("audio") => "audio",
            _ => "document",
        },
    }
}
