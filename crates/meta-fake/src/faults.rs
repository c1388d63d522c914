//! Scripted failures of the Graph calls, so clients' retry and reconciliation paths can be tested.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// Faults applied to the next send requests, consumed one per request in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 500/131000; the message is NOT accepted.
    ServerError,
    /// The message IS accepted (counted, statuses scheduled), but the answer is a 500/131000.
    AcceptedThenServerError,
    /// Meta's error for `code` with the HTTP status of its table (e.g. 130429 → 429, 131056 →
    /// 400, 80007 → 429, 190 → 401); NOT accepted.
    Error { code: i64 },
    /// Waits `delay_ms` before answering normally (message accepted): lets a client time out.
    Slow { delay_ms: u64 },
    /// Closes the connection without any answer; NOT accepted.
    DropConnection,
}

/// Faults of the read endpoints; none of them changes anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadFault {
    /// 500/131000.
    ServerError,
    /// 429/80007, the account's API rate limit.
    RateLimited,
    /// Waits `delay_ms`, then answers normally.
    Slow { delay_ms: u64 },
    /// Closes the connection without any answer.
    DropConnection,
}

/// Which read endpoint a scripted [`ReadFault`] is meant for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadEndpoint {
    /// `GET /{version}/{template_id}`
    Template,
    /// `GET /{version}/{phone_number_id}`
    PhoneNumber,
}

/// Faults waiting for the next requests of one endpoint.
pub(crate) struct FaultQueue<F>(Mutex<VecDeque<F>>);

impl<F> Default for FaultQueue<F> {
    fn default() -> Self {
        FaultQueue(Mutex::default())
    }
}

impl<F> FaultQueue<F> {
    pub(crate) fn extend(&self, faults: impl IntoIterator<Item = F>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(faults);
    }

    pub(crate) fn next(&self) -> Option<F> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }
}
