//! Scripted failures of the API calls, so clients' retry and reconciliation paths can be tested.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// Faults applied to the next create requests, consumed one per request in order.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// Faults of the read endpoints (fetch one message, list messages); none of them changes anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadFault {
    /// 500 with Twilio's JSON envelope.
    ServerError,
    /// 429 with code 20429 and a `Retry-After: <secs>` header.
    TooManyRequests { retry_after_secs: u64 },
    /// Waits `delay_ms`, then answers normally: lets a client's timeout fire.
    Slow { delay_ms: u64 },
    /// Closes the connection without any answer.
    DropConnection,
}

/// Which read endpoint a scripted [`ReadFault`] is meant for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadEndpoint {
    /// `GET …/Messages.json`
    List,
    /// `GET …/Messages/{Sid}.json`
    Fetch,
}

/// Faults waiting for the next requests of one endpoint.
pub(crate) struct FaultQueue<F> {
    queue: Mutex<VecDeque<F>>,
}

impl<F> Default for FaultQueue<F> {
    fn default() -> Self {
        FaultQueue {
            queue: Mutex::default(),
        }
    }
}

impl<F> FaultQueue<F> {
    pub(crate) fn extend(&self, faults: impl IntoIterator<Item = F>) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(faults);
    }

    /// The fault for the current request, if any is left.
    pub(crate) fn next(&self) -> Option<F> {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }
}
