//! Scripted failures of the API calls, so clients' retry and reconciliation paths can be tested.

use std::collections::{HashMap, VecDeque};
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

/// Faults that replace or delay an answer without changing anything: those of the Messages API's
/// reads and of every Content and Senders API call (where a fault strikes before the call acts).
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

/// Which endpoint a scripted [`ReadFault`] is meant for. Random rates (`FaultRates`) reach only
/// `List` and `Fetch`; the others take scripted faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadEndpoint {
    /// `GET …/Messages.json`
    List,
    /// `GET …/Messages/{Sid}.json`
    Fetch,
    /// `POST /v1/Content`
    ContentCreate,
    /// `GET /v1/Content/{HX…}`
    ContentFetch,
    /// `GET /v1/Content`
    ContentList,
    /// `DELETE /v1/Content/{HX…}`
    ContentDelete,
    /// `POST /v1/Content/{HX…}/ApprovalRequests/whatsapp`
    ApprovalCreate,
    /// `GET /v1/Content/{HX…}/ApprovalRequests`
    ApprovalFetch,
    /// `POST /v2/Channels/Senders`
    SenderCreate,
    /// `GET /v2/Channels/Senders/{XE…}`
    SenderFetch,
    /// `POST /v2/Channels/Senders/{XE…}`
    SenderUpdate,
    /// `DELETE /v2/Channels/Senders/{XE…}`
    SenderDelete,
    /// `GET /v2/Channels/Senders`
    SenderList,
}

/// One queue of scripted [`ReadFault`]s per endpoint.
#[derive(Default)]
pub(crate) struct EndpointFaults {
    queues: Mutex<HashMap<ReadEndpoint, VecDeque<ReadFault>>>,
}

impl EndpointFaults {
    pub(crate) fn extend(
        &self,
        endpoint: ReadEndpoint,
        faults: impl IntoIterator<Item = ReadFault>,
    ) {
        self.queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(endpoint)
            .or_default()
            .extend(faults);
    }

    /// The fault for the endpoint's current request, if any is left.
    pub(crate) fn next(&self, endpoint: ReadEndpoint) -> Option<ReadFault> {
        self.queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&endpoint)?
            .pop_front()
    }
}

/// Faults waiting for the next create requests.
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
