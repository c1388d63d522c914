//! What the job queue holds, the same in every backend: the kinds of job, how a payload is
//! written, and the body of a webhook event.

use waygate_core::time::{from_millis, rfc3339};

use super::{StoreError, StoreResult};

/// Hand a recorded message to its provider.
pub const SEND: &str = "send";
/// Status reports a provider scheduled (the simulator's steps), applied by the store's
/// `apply_due_statuses`, never claimed.
pub const STATUS: &str = "status";
/// Deliver one event to one webhook subscription.
pub const WEBHOOK: &str = "webhook";

/// Payloads are written straight to JSON text (no `serde_json::Value` on the way: on the
/// send path that detour cost a tenth of the embedded writer's time).
pub fn payload_text(payload: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(payload)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a job payload: {e}")))
}

/// A new event's id and body, as every delivery of it sends them (retries send the same
/// bytes).
pub fn event(event_type: &str, at: i64, data: impl serde::Serialize) -> (String, String) {
    let event_id = crate::secrets::event_id();
    let body = serde_json::json!({
        "id": event_id,
        "type": event_type,
        "timestamp": rfc3339(from_millis(at)),
        "data": data,
    })
    .to_string();
    (event_id, body)
}

/// The payload of one delivery of an event to one subscription.
pub fn delivery(webhook_id: i64, event_id: &str, body: &str) -> serde_json::Value {
    serde_json::json!({ "webhook_id": webhook_id, "event_id": event_id, "body": body })
}
