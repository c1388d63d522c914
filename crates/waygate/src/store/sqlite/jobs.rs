//! The outbox: durable jobs committed with the state change that needs them.

use rusqlite::{params, Connection};

use super::rows::all;
use crate::model::Job;
use crate::store::{StoreError, StoreResult};

/// Hand a recorded message to its provider.
pub const SEND: &str = "send";
/// Status reports a provider scheduled (the simulator's steps); applied inside the writer by
/// `messaging::apply_due_statuses`, never claimed.
pub const STATUS: &str = "status";
/// Deliver one event to one webhook subscription.
pub const WEBHOOK: &str = "webhook";

/// Payloads are written straight to JSON text (no `serde_json::Value` on the way: on the
/// send path that detour cost a tenth of the writer's time).
fn payload_text(payload: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(payload)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a job payload: {e}")))
}

pub fn enqueue(
    c: &Connection,
    kind: &str,
    payload: &impl serde::Serialize,
    run_at: i64,
    now: i64,
) -> StoreResult<i64> {
    c.prepare_cached(
        "INSERT INTO jobs (kind, payload, run_at, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![kind, payload_text(payload)?, run_at, now])?;
    Ok(c.last_insert_rowid())
}

pub fn claim(c: &Connection, now: i64, lease_ms: i64, limit: i64) -> StoreResult<Vec<Job>> {
    all(
        c,
        "UPDATE jobs SET run_at = ?1 + ?2, attempts = attempts + 1 WHERE id IN \
         (SELECT id FROM jobs WHERE dead = 0 AND run_at <= ?1 AND kind <> 'status' ORDER BY run_at, id LIMIT ?3) \
         RETURNING id, kind, payload, attempts - 1",
        params![now, lease_ms, limit],
        |r| {
            Ok(Job {
                id: r.get(0)?,
                kind: r.get(1)?,
                payload: r.get(2)?,
                attempts: r.get(3)?,
            })
        },
    )
}

pub fn complete(c: &Connection, id: i64) -> StoreResult<()> {
    c.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

pub fn retry(c: &Connection, id: i64, run_at: i64, error: &str) -> StoreResult<()> {
    c.prepare_cached("UPDATE jobs SET run_at = ?2, last_error = ?3 WHERE id = ?1")?
        .execute(params![id, run_at, error])?;
    Ok(())
}

/// Counts one more step of a multi-step job done, and runs it again at `run_at` for the
/// next (its payload stays as written).
pub fn step_done(c: &Connection, id: i64, run_at: i64) -> StoreResult<()> {
    c.prepare_cached("UPDATE jobs SET run_at = ?2, step = step + 1 WHERE id = ?1")?
        .execute(params![id, run_at])?;
    Ok(())
}

pub fn bury(c: &Connection, id: i64, error: &str) -> StoreResult<()> {
    c.prepare_cached("UPDATE jobs SET dead = 1, last_error = ?2 WHERE id = ?1")?
        .execute(params![id, error])?;
    Ok(())
}

/// Live jobs, counted through the two partial indexes (status steps and the rest).
pub fn depth(c: &Connection) -> StoreResult<i64> {
    Ok(c.prepare_cached(
        "SELECT (SELECT COUNT(*) FROM jobs WHERE dead = 0 AND kind <> 'status') \
         + (SELECT COUNT(*) FROM jobs WHERE kind = 'status' AND dead = 0)",
    )?
    .query_row([], |r| r.get(0))?)
}
