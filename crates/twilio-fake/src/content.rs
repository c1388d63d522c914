//! Content templates (§4) as the fake keeps them, and their WhatsApp approval. A submission reads
//! `received` for the first half of the approval delay, `pending` for the second, then shows its
//! decision: the one a test set, else `rejected` for names starting `reject_`, else `approved`.
//! The status is worked out when read, so no timer runs and a decision set late shows at once.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// Approval names with this prefix are rejected unless a test decides otherwise.
const REJECT_PREFIX: &str = "reject_";
/// Meta's reason for the rejections the fake makes up.
const DEFAULT_REJECTION: &str = "INVALID_FORMAT";

/// What WhatsApp makes of a submitted template once the approval delay is over (§4's statuses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Approved,
    Rejected {
        reason: String,
    },
    /// Approved, then paused by Meta for low quality: sends fail with 63041.
    Paused,
    Disabled,
    /// Never decided: the review stays `pending`.
    Pending,
}

impl Decision {
    fn status(&self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Rejected { .. } => "rejected",
            Decision::Paused => "paused",
            Decision::Disabled => "disabled",
            Decision::Pending => "pending",
        }
    }

    fn rejection_reason(&self) -> &str {
        match self {
            Decision::Rejected { reason } => reason,
            _ => "",
        }
    }

    /// The decision when no test set one.
    fn by_default(name: &str) -> Decision {
        if name.starts_with(REJECT_PREFIX) {
            Decision::Rejected {
                reason: DEFAULT_REJECTION.to_string(),
            }
        } else {
            Decision::Approved
        }
    }
}

/// A template's WhatsApp approval request as it stands when read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub name: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    pub category: String,
    /// The template type submitted, e.g. `twilio/text`.
    pub content_type: String,
    /// `received`, `pending`, then the decision's status.
    pub status: String,
    /// Empty unless rejected.
    pub rejection_reason: String,
    pub allow_category_change: bool,
}

/// A content template as it stands when read (what tests assert on, and what the API serves).
#[derive(Clone, Debug, PartialEq)]
pub struct Content {
    /// `"HX"` + 32 hex.
    pub sid: String,
    pub friendly_name: String,
    pub language: String,
    /// Placeholder key -> sample value.
    pub variables: Map<String, Value>,
    /// Type name (`twilio/text`, …) -> its definition.
    pub types: Map<String, Value>,
    /// None until submitted to WhatsApp.
    pub approval: Option<Approval>,
    pub date_created_ms: i64,
    pub date_updated_ms: i64,
}

/// A template's fields as created, before any approval.
#[derive(Debug)]
pub(crate) struct NewContent {
    pub(crate) friendly_name: String,
    pub(crate) language: String,
    pub(crate) variables: Map<String, Value>,
    pub(crate) types: Map<String, Value>,
}

/// An approval request's fields as submitted.
#[derive(Debug)]
pub(crate) struct NewApproval {
    pub(crate) name: String,
    pub(crate) category: String,
    pub(crate) allow_category_change: bool,
}

struct Submission {
    request: NewApproval,
    at: Instant,
}

struct Record {
    sid: String,
    fields: NewContent,
    submission: Option<Submission>,
    /// Set by a test; replaces the default decision.
    decision: Option<Decision>,
    date_created_ms: i64,
    date_updated_ms: i64,
}

impl Record {
    fn snapshot(&self, now: Instant, delay: Duration) -> Content {
        let approval = self.submission.as_ref().map(|submission| {
            let elapsed = now.saturating_duration_since(submission.at);
            let (status, reason) = if elapsed < delay / 2 {
                ("received", String::new())
            } else if elapsed < delay {
                ("pending", String::new())
            } else {
                let decision = self
                    .decision
                    .clone()
                    .unwrap_or_else(|| Decision::by_default(&submission.request.name));
                (decision.status(), decision.rejection_reason().to_string())
            };
            Approval {
                name: submission.request.name.clone(),
                category: submission.request.category.clone(),
                content_type: content_type(&self.fields.types).to_string(),
                status: status.to_string(),
                rejection_reason: reason,
                allow_category_change: submission.request.allow_category_change,
            }
        });
        Content {
            sid: self.sid.clone(),
            friendly_name: self.fields.friendly_name.clone(),
            language: self.fields.language.clone(),
            variables: self.fields.variables.clone(),
            types: self.fields.types.clone(),
            approval,
            date_created_ms: self.date_created_ms,
            date_updated_ms: self.date_updated_ms,
        }
    }
}

/// The type an approval is for: the richest one when a template has several, i.e. any but text.
pub(crate) fn content_type(types: &Map<String, Value>) -> &str {
    types
        .keys()
        .find(|name| *name != "twilio/text")
        .or_else(|| types.keys().next())
        .map_or("twilio/text", String::as_str)
}

/// Every template not deleted, in creation order, behind one short-held lock.
pub(crate) struct ContentStore {
    records: Mutex<Vec<Record>>,
    approval_delay: Duration,
}

impl ContentStore {
    pub(crate) fn new(approval_delay: Duration) -> Self {
        ContentStore {
            records: Mutex::default(),
            approval_delay,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Record>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, sid: String, fields: NewContent, now_ms: i64) -> Content {
        let record = Record {
            sid,
            fields,
            submission: None,
            decision: None,
            date_created_ms: now_ms,
            date_updated_ms: now_ms,
        };
        let content = record.snapshot(Instant::now(), self.approval_delay);
        self.lock().push(record);
        content
    }

    /// Runs `f` on the record with this SID, then reads it back.
    fn update(&self, sid: &str, f: impl FnOnce(&mut Record)) -> Option<Content> {
        let mut records = self.lock();
        let record = records.iter_mut().find(|r| r.sid == sid)?;
        f(record);
        Some(record.snapshot(Instant::now(), self.approval_delay))
    }

    pub(crate) fn get(&self, sid: &str) -> Option<Content> {
        self.update(sid, |_| {})
    }

    pub(crate) fn contains(&self, sid: &str) -> bool {
        self.lock().iter().any(|r| r.sid == sid)
    }

    /// All templates, oldest first.
    pub(crate) fn all(&self) -> Vec<Content> {
        let now = Instant::now();
        self.lock()
            .iter()
            .map(|r| r.snapshot(now, self.approval_delay))
            .collect()
    }

    /// False if there was no such template.
    pub(crate) fn remove(&self, sid: &str) -> bool {
        let mut records = self.lock();
        let before = records.len();
        records.retain(|r| r.sid != sid);
        records.len() < before
    }

    /// Starts a (new) review of the template; its clock starts now.
    pub(crate) fn submit(&self, sid: &str, request: NewApproval, now_ms: i64) -> Option<Content> {
        self.update(sid, |record| {
            record.submission = Some(Submission {
                request,
                at: Instant::now(),
            });
            record.date_updated_ms = now_ms;
        })
    }

    /// False if there is no such template.
    pub(crate) fn decide(&self, sid: &str, decision: Decision) -> bool {
        self.update(sid, |record| record.decision = Some(decision))
            .is_some()
    }
}
