//! The sent messages: every accepted send in order, indexed by id, behind one lock only ever held
//! for a few non-async statements.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::send::TemplateSend;

/// A message as the fake sees it (what tests assert on).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Message {
    /// `wamid.…`
    pub id: String,
    /// The phone number id it was sent from.
    pub phone_number_id: String,
    /// Recipient digits.
    pub to: String,
    pub template: Option<TemplateSend>,
    pub text: Option<String>,
    /// Echoed in every status webhook of the message.
    pub biz_opaque_callback_data: Option<String>,
    /// `accepted`, `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    pub error_code: Option<i64>,
    /// The template's category at send time (`marketing`, …), `service` for text.
    pub category: String,
}

/// A status change announced by one status webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    Sent,
    Delivered,
    Read,
    Failed { code: i64 },
}

impl Transition {
    pub(crate) fn status(self) -> &'static str {
        match self {
            Transition::Sent => "sent",
            Transition::Delivered => "delivered",
            Transition::Read => "read",
            Transition::Failed { .. } => "failed",
        }
    }

    /// Progress rank: a late or repeated status never moves a message backwards.
    fn rank(status: &str) -> u8 {
        match status {
            "sent" => 1,
            "delivered" => 2,
            "read" => 3,
            "failed" => 4,
            _ => 0,
        }
    }
}

#[derive(Default)]
struct Inner {
    messages: Vec<Message>,
    by_id: HashMap<String, usize>,
}

#[derive(Default)]
pub(crate) struct Store(Mutex<Inner>);

impl Store {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, message: Message) {
        let mut inner = self.lock();
        let index = inner.messages.len();
        inner.by_id.insert(message.id.clone(), index);
        inner.messages.push(message);
    }

    pub(crate) fn all(&self) -> Vec<Message> {
        self.lock().messages.clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// Applies a status change if it moves the message forward, then runs `f` on the message.
    pub(crate) fn apply<R>(
        &self,
        id: &str,
        transition: Transition,
        f: impl FnOnce(&Message) -> R,
    ) -> Option<R> {
        let mut inner = self.lock();
        let index = *inner.by_id.get(id)?;
        let message = inner.messages.get_mut(index)?;
        let current = Transition::rank(&message.status);
        if current < 4 && Transition::rank(transition.status()) > current {
            message.status = transition.status().to_string();
            if let Transition::Failed { code } = transition {
                message.error_code = Some(code);
            }
        }
        Some(f(message))
    }
}
