//! WhatsApp senders (§5) as the fake keeps them: the state tests set or read (status, Meta's
//! quality rating and messaging limit, offline reasons) and the sections a client wrote
//! (configuration, webhook, profile), served as the Senders API v2's sender object.

use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::{json, Map, Value};

/// The keys of each section a client may write; the sender object always shows all of them.
pub(crate) const CONFIGURATION_KEYS: [&str; 5] = [
    "waba_id",
    "verification_method",
    "verification_code",
    "voice_application_sid",
    "account_type",
];
pub(crate) const WEBHOOK_KEYS: [&str; 6] = [
    "callback_url",
    "callback_method",
    "fallback_url",
    "fallback_method",
    "status_callback_url",
    "status_callback_method",
];
pub(crate) const PROFILE_KEYS: [&str; 13] = [
    "name",
    "about",
    "address",
    "description",
    "logo_url",
    "banner_url",
    "privacy_url",
    "terms_of_service_url",
    "accent_color",
    "vertical",
    "websites",
    "emails",
    "phone_numbers",
];

/// Why a sender is `OFFLINE`, e.g. code `"63020"` (Meta invitation not accepted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineReason {
    /// A string, as Twilio sends it.
    pub code: String,
    pub message: String,
}

/// What a test sets on a sender, or reads back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderState {
    /// `whatsapp:+E164`.
    pub sender_id: String,
    /// `CREATING`, `PENDING_VERIFICATION`, `VERIFYING`, `TWILIO_REVIEW`, `ONLINE`,
    /// `ONLINE:UPDATING`, `OFFLINE`, `DRAFT` or `STUBBED`.
    pub status: String,
    /// `HIGH`, `MEDIUM`, `LOW`, …; None (null) before any traffic.
    pub quality_rating: Option<String>,
    /// E.g. `"10K Customers/24hr"`; None (null) before any traffic.
    pub messaging_limit: Option<String>,
    /// Served as null when empty.
    pub offline_reasons: Vec<OfflineReason>,
}

impl Default for SenderState {
    /// A healthy sender on the fake's default `From` number.
    fn default() -> Self {
        SenderState {
            sender_id: "whatsapp:+14155238886".to_string(),
            status: "ONLINE".to_string(),
            quality_rating: Some("HIGH".to_string()),
            messaging_limit: Some("10K Customers/24hr".to_string()),
            offline_reasons: Vec::new(),
        }
    }
}

/// A client's writable sections of a sender; a key given replaces the stored one.
#[derive(Debug, Default)]
pub(crate) struct Sections {
    pub(crate) configuration: Map<String, Value>,
    pub(crate) webhook: Map<String, Value>,
    pub(crate) profile: Map<String, Value>,
}

impl Sections {
    fn merge(&mut self, other: Sections) {
        self.configuration.extend(other.configuration);
        self.webhook.extend(other.webhook);
        self.profile.extend(other.profile);
    }
}

struct Record {
    sid: String,
    state: SenderState,
    sections: Sections,
}

/// Every sender not deleted, in creation order.
#[derive(Default)]
pub(crate) struct SenderStore {
    records: Mutex<Vec<Record>>,
}

impl SenderStore {
    fn lock(&self) -> MutexGuard<'_, Vec<Record>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the state of the sender with this SID, or adds one with empty sections.
    pub(crate) fn set(&self, sid: &str, state: SenderState) {
        let mut records = self.lock();
        match records.iter_mut().find(|r| r.sid == sid) {
            Some(record) => record.state = state,
            None => records.push(Record {
                sid: sid.to_string(),
                state,
                sections: Sections::default(),
            }),
        }
    }

    pub(crate) fn insert(&self, sid: String, state: SenderState, sections: Sections) {
        self.lock().push(Record {
            sid,
            state,
            sections,
        });
    }

    /// Merges the sections into the sender's; a verification code moves it to `VERIFYING`.
    pub(crate) fn update(&self, sid: &str, sections: Sections, base_url: &str) -> Option<Value> {
        let mut records = self.lock();
        let record = records.iter_mut().find(|r| r.sid == sid)?;
        if sections.configuration.contains_key("verification_code") {
            record.state.status = "VERIFYING".to_string();
        }
        record.sections.merge(sections);
        Some(record.json(base_url))
    }

    /// The sender object.
    pub(crate) fn json(&self, sid: &str, base_url: &str) -> Option<Value> {
        self.lock()
            .iter()
            .find(|r| r.sid == sid)
            .map(|r| r.json(base_url))
    }

    pub(crate) fn contains(&self, sid: &str) -> bool {
        self.lock().iter().any(|r| r.sid == sid)
    }

    /// Every sender object, oldest first.
    pub(crate) fn all_json(&self, base_url: &str) -> Vec<Value> {
        self.lock().iter().map(|r| r.json(base_url)).collect()
    }

    pub(crate) fn states(&self) -> Vec<(String, SenderState)> {
        self.lock()
            .iter()
            .map(|r| (r.sid.clone(), r.state.clone()))
            .collect()
    }

    /// False if there was no such sender.
    pub(crate) fn remove(&self, sid: &str) -> bool {
        let mut records = self.lock();
        let before = records.len();
        records.retain(|r| r.sid != sid);
        records.len() < before
    }
}

/// A section with every known key, null where never written.
fn section(keys: &[&str], written: &Map<String, Value>) -> Value {
    keys.iter()
        .map(|key| {
            let value = written.get(*key).cloned().unwrap_or(Value::Null);
            (key.to_string(), value)
        })
        .collect::<Map<_, _>>()
        .into()
}

impl Record {
    fn json(&self, base_url: &str) -> Value {
        let offline_reasons = (!self.state.offline_reasons.is_empty()).then(|| {
            self.state
                .offline_reasons
                .iter()
                .map(|reason| {
                    json!({
                        "code": reason.code,
                        "message": reason.message,
                        "more_info": format!("https://www.twilio.com/docs/errors/{}", reason.code),
                    })
                })
                .collect::<Vec<_>>()
        });
        json!({
            "sid": self.sid,
            "status": self.state.status,
            "sender_id": self.state.sender_id,
            "configuration": section(&CONFIGURATION_KEYS, &self.sections.configuration),
            "webhook": section(&WEBHOOK_KEYS, &self.sections.webhook),
            "profile": section(&PROFILE_KEYS, &self.sections.profile),
            "properties": {
                "quality_rating": self.state.quality_rating,
                "messaging_limit": self.state.messaging_limit,
            },
            "offline_reasons": offline_reasons,
            "compliance": null,
            "url": format!("{base_url}/v2/Channels/Senders/{}", self.sid),
        })
    }
}
