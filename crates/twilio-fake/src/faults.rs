//! Scripted failures of the create call, so clients' retry and reconciliation paths can be tested.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// Faults applied to the next create requests, consumed one per request in order.
#[derive(Clone, Debug)]
pub enum Fault {
    /// 500 with Twilio's JSON envelope; the message is NOT created.
    ServerError,
    /// The message IS created (counted, callbacks scheduled), but the answer is a 500 — the client cannot know.
    CreatedThenServerError,
    /// 429 with code 20429 and a `Retry-After: <secs>` header; not created.
    TooManyRequests { retry_after_secs: u64 },
    /// Waits `delay_ms` before answering normally (message created): lets a client's timeout fire.
    Slow { delay_ms: u64 },
    /// Closes the connection without any answer; NOT created.
    DropConnection,
}

/// Faults waiting for the next create requests.
#[derive(Default)]
pub(crate) struct FaultQueue {
    queue: Mutex<VecDeque<Fault>>,
}

impl FaultQueue {
    pub(crate) fn extend(&self, faults: impl IntoIterator<Item = Fault>) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(faults);
    }

    /// The fault for the current request, if any is left.
    pub(crate) fn next(&self) -> Option<Fault> {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }
}
