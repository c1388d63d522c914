//! The outbox: durable jobs committed with the state change that needs them, claimed by
//! any node with `FOR UPDATE SKIP LOCKED`.

use deadpool_postgres::GenericClient;

use super::PgStore;
use crate::model::*;
use crate::store::*;

/// Hand a recorded message to its provider.
pub const SEND: &str = "send";
/// Status reports a provider scheduled (the simulator's steps), applied by
/// `messaging::apply_due_statuses`, never claimed.
pub const STATUS: &str = "status";
/// Deliver one event to one webhook subscription.
pub const WEBHOOK: &str = "webhook";

fn payload_text(payload: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(payload)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a job payload: {e}")))
}

pub async fn enqueue(
    c: &impl GenericClient,
    kind: &str,
    payload: &impl serde::Serialize,
    run_at: i64,
    now: i64,
) -> StoreResult<i64> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO jobs (kind, payload, run_at, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .await?;
    let row = c
        .query_one(&stmt, &[&kind, &payload_text(payload)?, &run_at, &now])
        .await?;
    Ok(row.get(0))
}

/// A send job claimed at once by the request that records it: its attempt starts `now`.
pub async fn enqueue_claimed_send(
    c: &impl GenericClient,
    message_id: i64,
    lease_until: i64,
    now: i64,
) -> StoreResult<i64> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO jobs (kind, payload, run_at, created_at, attempt_started) \
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .await?;
    let payload = payload_text(&serde_json::json!({ "message_id": message_id }))?;
    let row = c
        .query_one(&stmt, &[&SEND, &payload, &lease_until, &now])
        .await?;
    Ok(row.get(0))
}

pub async fn claim_jobs(s: &PgStore, now: i64, lease_ms: i64, limit: i64) -> StoreResult<Vec<Job>> {
    let _ = (s, now, lease_ms, limit);
    todo!("jobs::claim_jobs")
}

pub async fn complete_job(s: &PgStore, id: i64) -> StoreResult<()> {
    let _ = (s, id);
    todo!("jobs::complete_job")
}

pub async fn retry_job(s: &PgStore, id: i64, run_at: i64, error: String) -> StoreResult<()> {
    let _ = (s, id, run_at, error);
    todo!("jobs::retry_job")
}

pub async fn bury_job(s: &PgStore, id: i64, error: String) -> StoreResult<()> {
    let _ = (s, id, error);
    todo!("jobs::bury_job")
}

pub async fn set_aside_send(
    s: &PgStore,
    job_id: i64,
    message_id: i64,
    reason: String,
    now: i64,
) -> StoreResult<()> {
    let _ = (s, job_id, message_id, reason, now);
    todo!("jobs::set_aside_send")
}

pub async fn set_aside_jobs(s: &PgStore, after: i64, limit: i64) -> StoreResult<Vec<SetAsideJob>> {
    let _ = (s, after, limit);
    todo!("jobs::set_aside_jobs")
}

pub async fn revive_job(s: &PgStore, id: i64, now: i64) -> StoreResult<bool> {
    let _ = (s, id, now);
    todo!("jobs::revive_job")
}

pub async fn queue_gauges(s: &PgStore) -> StoreResult<QueueGauges> {
    let _ = (s);
    todo!("jobs::queue_gauges")
}
