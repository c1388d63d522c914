//! The outbox: durable jobs committed with the state change that needs them.

use rusqlite::{params, Connection};

use super::rows::all;
use crate::model::{Job, SetAsideJob};
use crate::store::outbox::payload_text;
pub use crate::store::outbox::{SEND, STATUS, WEBHOOK};
use crate::store::rules::{payload_message_id, INTERRUPTED};
use crate::store::StoreResult;

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

/// A send job claimed at once by the request that records it: its attempt starts `now`.
pub fn enqueue_claimed_send(
    c: &Connection,
    message_id: i64,
    lease_until: i64,
    now: i64,
) -> StoreResult<i64> {
    c.prepare_cached(
        "INSERT INTO jobs (kind, payload, run_at, created_at, attempt_started) VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(params![
        SEND,
        payload_text(&serde_json::json!({ "message_id": message_id }))?,
        lease_until,
        now
    ])?;
    Ok(c.last_insert_rowid())
}

/// Claims due jobs for `lease_ms`. A send job whose earlier attempt never settled (its
/// claimer died or hung past its lease) may have reached the provider: its message is marked
/// as of unknown outcome since that attempt, so that it is reconciled before any resend.
pub fn claim(c: &Connection, now: i64, lease_ms: i64, limit: i64) -> StoreResult<Vec<Job>> {
    let due = all(
        c,
        "SELECT id, kind, payload, attempts, last_error, attempt_started FROM jobs \
         WHERE dead = 0 AND run_at <= ?1 AND kind <> 'status' ORDER BY run_at, id LIMIT ?2",
        params![now, limit],
        |r| {
            Ok((
                Job {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    payload: r.get(2)?,
                    attempts: r.get(3)?,
                    last_error: r.get(4)?,
                },
                r.get::<_, Option<i64>>(5)?,
            ))
        },
    )?;
    // An interrupted attempt starts a new count of attempts: those since the outcome became
    // unknown, which bound how long reconciliation may keep failing.
    let mut lease = c.prepare_cached(
        "UPDATE jobs SET run_at = ?2, attempts = CASE WHEN ?4 THEN 1 ELSE attempts + 1 END, \
         attempt_started = CASE WHEN kind = 'send' THEN ?3 END WHERE id = ?1",
    )?;
    let mut interrupted = c.prepare_cached(
        "UPDATE messages SET unknown_since = ?2 \
         WHERE id = (SELECT json_extract(payload, '$.message_id') FROM jobs WHERE id = ?1) \
         AND message_sid IS NULL AND unknown_since IS NULL",
    )?;
    let mut jobs = Vec::with_capacity(due.len());
    for (mut job, unsettled) in due {
        let mut newly_unknown = false;
        if let (SEND, Some(started)) = (job.kind.as_str(), unsettled) {
            newly_unknown = interrupted.execute(params![job.id, started])? == 1;
            job.last_error = Some(INTERRUPTED.to_string());
            if newly_unknown {
                job.attempts = 0;
            }
        }
        lease.execute(params![job.id, now + lease_ms, now, newly_unknown])?;
        jobs.push(job);
    }
    Ok(jobs)
}

pub fn complete(c: &Connection, id: i64) -> StoreResult<()> {
    c.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Runs the job again at `run_at`; its attempt is settled (its outcome is recorded).
pub fn retry(c: &Connection, id: i64, run_at: i64, error: &str) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE jobs SET run_at = ?2, last_error = ?3, attempt_started = NULL WHERE id = ?1",
    )?
    .execute(params![id, run_at, error])?;
    Ok(())
}

/// Runs a send job of unknown outcome again at `run_at`. Its attempts are counted afresh
/// when the outcome has just become unknown (its message has no `unknown_since` yet): from
/// then on they count reconciliations. Runs before the message is marked.
pub fn await_reconcile(
    c: &Connection,
    id: i64,
    message_id: i64,
    run_at: i64,
    error: &str,
) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE jobs SET run_at = ?2, last_error = ?3, attempt_started = NULL, \
         attempts = CASE WHEN EXISTS (SELECT 1 FROM messages WHERE id = ?4 AND unknown_since IS NULL) \
                         THEN 0 ELSE attempts END \
         WHERE id = ?1",
    )?
    .execute(params![id, run_at, error, message_id])?;
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
    c.prepare_cached(
        "UPDATE jobs SET dead = 1, last_error = ?2, attempt_started = NULL WHERE id = ?1",
    )?
    .execute(params![id, error])?;
    Ok(())
}

/// Jobs set aside for an operator, oldest first, after job id `after`.
pub fn set_aside(c: &Connection, after: i64, limit: i64) -> StoreResult<Vec<SetAsideJob>> {
    all(
        c,
        "SELECT id, kind, payload, attempts, last_error, created_at FROM jobs \
         WHERE dead = 1 AND id > ?1 ORDER BY id LIMIT ?2",
        params![after, limit],
        |r| {
            Ok(SetAsideJob {
                id: r.get(0)?,
                kind: r.get(1)?,
                message_id: payload_message_id(&r.get::<_, String>(2)?),
                attempts: r.get(3)?,
                last_error: r.get(4)?,
                created_at: r.get(5)?,
            })
        },
    )
}

/// Puts a set-aside job back in the queue, due at once with its attempts counted afresh;
/// false when no set-aside job has this id.
pub fn revive(c: &Connection, id: i64, now: i64) -> StoreResult<bool> {
    Ok(c.prepare_cached(
        "UPDATE jobs SET dead = 0, run_at = ?2, attempts = 0 WHERE id = ?1 AND dead = 1",
    )?
    .execute(params![id, now])?
        == 1)
}

pub fn set_aside_count(c: &Connection) -> StoreResult<i64> {
    Ok(
        c.prepare_cached("SELECT COUNT(*) FROM jobs WHERE dead = 1")?
            .query_row([], |r| r.get(0))?,
    )
}

/// Live jobs, counted through the two partial indexes (status steps and the rest).
pub fn depth(c: &Connection) -> StoreResult<i64> {
    Ok(c.prepare_cached(
        "SELECT (SELECT COUNT(*) FROM jobs WHERE dead = 0 AND kind <> 'status') \
         + (SELECT COUNT(*) FROM jobs WHERE kind = 'status' AND dead = 0)",
    )?
    .query_row([], |r| r.get(0))?)
}
