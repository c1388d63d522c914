//! The message store: every created message in creation order, indexed by SID, behind one lock
//! that is only ever held for a few non-async statements.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::config::AsyncFailure;

/// A message as the fake sees it (what tests assert on).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Message {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub body: Option<String>,
    pub content_sid: Option<String>,
    pub content_variables: Option<String>,
    pub status_callback: Option<String>,
    pub status: String,
    pub error_code: Option<i64>,
    pub date_created_ms: i64,
}

impl Message {
    /// A query parameter of the `StatusCallback` URL the client gave, e.g. its own message id.
    pub fn status_callback_param(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(self.status_callback.as_deref()?).ok()?;
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

/// A stored message plus the resource fields tests don't need to see.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) message: Message,
    pub(crate) messaging_service_sid: Option<String>,
    pub(crate) num_media: usize,
    pub(crate) error_message: Option<&'static str>,
    pub(crate) date_updated_ms: i64,
    pub(crate) date_sent_ms: Option<i64>,
}

/// A status change announced by one status callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    Sent,
    Delivered,
    Read,
    Failed(AsyncFailure),
}

impl Transition {
    pub(crate) fn status(self) -> &'static str {
        match self {
            Transition::Sent => "sent",
            Transition::Delivered => "delivered",
            Transition::Read => "read",
            Transition::Failed(failure) => failure.status,
        }
    }

    /// The `EventType` WhatsApp callbacks carry for these events (§2.1).
    pub(crate) fn event_type(self) -> Option<&'static str> {
        match self {
            Transition::Delivered => Some("DELIVERED"),
            Transition::Read => Some("READ"),
            Transition::Sent | Transition::Failed(_) => None,
        }
    }

    /// Progress rank (§1.7): a late or duplicated callback never moves a message backwards.
    fn rank(status: &str) -> u8 {
        match status {
            "sent" => 1,
            "delivered" => 2,
            "read" => 3,
            "failed" | "undelivered" => 4,
            _ => 0,
        }
    }
}

#[derive(Default)]
struct Inner {
    records: Vec<Record>,
    by_sid: HashMap<String, usize>,
}

#[derive(Default)]
pub(crate) struct Store {
    inner: Mutex<Inner>,
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, record: Record) {
        let mut inner = self.lock();
        let index = inner.records.len();
        inner.by_sid.insert(record.message.sid.clone(), index);
        inner.records.push(record);
    }

    pub(crate) fn messages(&self) -> Vec<Message> {
        self.lock()
            .records
            .iter()
            .map(|r| r.message.clone())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Runs `f` on the message with this SID.
    pub(crate) fn with<R>(&self, sid: &str, f: impl FnOnce(&Record) -> R) -> Option<R> {
        let inner = self.lock();
        let index = *inner.by_sid.get(sid)?;
        inner.records.get(index).map(f)
    }

    /// Runs `f` on up to `limit` messages matching `keep`, newest first.
    pub(crate) fn newest<R>(
        &self,
        limit: usize,
        keep: impl Fn(&Message) -> bool,
        f: impl FnMut(&Record) -> R,
    ) -> Vec<R> {
        self.lock()
            .records
            .iter()
            .rev()
            .filter(|r| keep(&r.message))
            .take(limit)
            .map(f)
            .collect()
    }

    /// Applies a status change (if it moves the message forward), then runs `f` on the message.
    pub(crate) fn apply<R>(
        &self,
        sid: &str,
        transition: Transition,
        now_ms: i64,
        f: impl FnOnce(&Record) -> R,
    ) -> Option<R> {
        let mut inner = self.lock();
        let index = *inner.by_sid.get(sid)?;
        let record = inner.records.get_mut(index)?;
        let current = Transition::rank(&record.message.status);
        if current < 4 && Transition::rank(transition.status()) > current {
            record.message.status = transition.status().to_string();
            record.date_updated_ms = now_ms;
            match transition {
                Transition::Failed(failure) => {
                    record.message.error_code = Some(failure.code);
                    record.error_message = Some(failure.message);
                }
                _ => {
                    record.date_sent_ms.get_or_insert(now_ms);
                }
            }
        }
        Some(f(record))
    }
}
