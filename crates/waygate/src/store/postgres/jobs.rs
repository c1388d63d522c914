//! The outbox: durable jobs committed with the state change that needs them, claimed by
//! any node with `FOR UPDATE SKIP LOCKED`.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::Type;

use super::rows::get;
use super::{status_checks, PgStore};
use crate::model::*;
use crate::store::outbox::payload_text;
pub use crate::store::outbox::{SEND, STATUS, WEBHOOK};
use crate::store::rules::{self, payload_message_id, INTERRUPTED};
use crate::store::*;

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

/// Stands for the message id in a payload written before the database has chosen it.
const ID_MARK: i64 = i64::MIN;

/// A job inserted by the statement that inserts its message: its payload as the text before
/// and after the message's id.
pub struct NewJob {
    pub kind: &'static str,
    pub before_id: String,
    pub after_id: String,
    pub run_at: i64,
    pub created: i64,
    pub attempt_started: Option<i64>,
}

impl NewJob {
    /// A send job claimed at once by the request that records it: its attempt starts `now`.
    pub fn send(lease_until: i64, now: i64) -> StoreResult<NewJob> {
        let payload = serde_json::json!({ "message_id": ID_MARK });
        NewJob::around_id(SEND, &payload, lease_until, now, Some(now))
    }

    /// The status job of the steps a provider promised for a message (none for no steps).
    pub fn status(steps: &[ScheduledStatus], now: i64) -> StoreResult<Option<NewJob>> {
        let promised = rules::Promise {
            message_id: ID_MARK,
            steps: steps.to_vec(),
            now,
        };
        rules::status_jobs(vec![promised])
            .into_iter()
            .next()
            .map(|job| NewJob::around_id(STATUS, &job.steps, job.run_at(), job.created, None))
            .transpose()
    }

    fn around_id(
        kind: &'static str,
        payload: &impl serde::Serialize,
        run_at: i64,
        created: i64,
        attempt_started: Option<i64>,
    ) -> StoreResult<NewJob> {
        let text = payload_text(payload)?;
        let Some((before_id, after_id)) = text.split_once(&ID_MARK.to_string()) else {
            return Err(StoreError::Corrupt(format!(
                "no message id in payload {text}"
            )));
        };
        Ok(NewJob {
            kind,
            before_id: before_id.to_string(),
            after_id: after_id.to_string(),
            run_at,
            created,
            attempt_started,
        })
    }
}

/// Claims due jobs for `lease_ms`; rows another node is claiming are skipped, and one it has
/// just leased no longer matches when rechecked, so no job is handed out twice. A send job
/// whose earlier attempt never settled (its claimer died or hung past its lease) may have
/// reached the provider: its message is marked as of unknown outcome since that attempt, so
/// that it is reconciled before any resend.
pub async fn claim_jobs(s: &PgStore, now: i64, lease_ms: i64, limit: i64) -> StoreResult<Vec<Job>> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let stmt = tx
        .prepare_typed_cached(
            "SELECT id, kind, payload, attempts, last_error, attempt_started FROM jobs \
             WHERE NOT dead AND run_at <= $1 AND kind <> 'status' ORDER BY run_at, id LIMIT $2 \
             FOR UPDATE SKIP LOCKED",
            &[Type::INT8, Type::INT8],
        )
        .await?;
    let due = tx.query(&stmt, &[&now, &limit]).await?;
    let mut jobs = Vec::with_capacity(due.len());
    // An interrupted attempt starts a new count of attempts: those since the outcome became
    // unknown, which bound how long reconciliation may keep failing.
    let mut counted_afresh = Vec::new();
    for row in &due {
        let mut job = Job {
            id: get(row, 0)?,
            kind: get(row, 1)?,
            payload: get(row, 2)?,
            attempts: get(row, 3)?,
            last_error: get(row, 4)?,
        };
        let unsettled: Option<i64> = get(row, 5)?;
        if let (SEND, Some(started)) = (job.kind.as_str(), unsettled) {
            job.last_error = Some(INTERRUPTED.to_string());
            if mark_interrupted(&tx, &job.payload, started).await? {
                job.attempts = 0;
                counted_afresh.push(job.id);
            }
        }
        jobs.push(job);
    }
    if !jobs.is_empty() {
        let ids: Vec<i64> = jobs.iter().map(|job| job.id).collect();
        let stmt = tx
            .prepare_typed_cached(
                "UPDATE jobs SET run_at = $2, \
                 attempts = CASE WHEN id = ANY($3) THEN 1 ELSE attempts + 1 END, \
                 attempt_started = CASE WHEN kind = 'send' THEN $4 END WHERE id = ANY($1)",
                &[Type::INT8_ARRAY, Type::INT8, Type::INT8_ARRAY, Type::INT8],
            )
            .await?;
        tx.execute(&stmt, &[&ids, &(now + lease_ms), &counted_afresh, &now])
            .await?;
    }
    tx.commit().await?;
    Ok(jobs)
}

/// Marks the message of a send job whose attempt begun at `started` never settled; whether
/// its outcome has just become unknown (it had no provider id and was not marked yet).
async fn mark_interrupted(
    c: &impl GenericClient,
    payload: &str,
    started: i64,
) -> StoreResult<bool> {
    let Some(message_id) = payload_message_id(payload) else {
        return Ok(false);
    };
    let stmt = c
        .prepare_cached(
            "UPDATE messages SET unknown_since = $2 \
             WHERE id = $1 AND message_sid IS NULL AND unknown_since IS NULL",
        )
        .await?;
    Ok(c.execute(&stmt, &[&message_id, &started]).await? == 1)
}

pub(super) async fn complete(c: &impl GenericClient, id: i64) -> StoreResult<()> {
    let stmt = c.prepare_cached("DELETE FROM jobs WHERE id = $1").await?;
    c.execute(&stmt, &[&id]).await?;
    Ok(())
}

/// Runs the job again at `run_at`; its attempt is settled (its outcome is recorded).
pub(super) async fn retry(
    c: &impl GenericClient,
    id: i64,
    run_at: i64,
    error: &str,
) -> StoreResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE jobs SET run_at = $2, last_error = $3, attempt_started = NULL WHERE id = $1",
        )
        .await?;
    c.execute(&stmt, &[&id, &run_at, &error]).await?;
    Ok(())
}

/// Runs a send job of unknown outcome again at `run_at`. Its attempts are counted afresh
/// when the outcome has just become unknown (its message has no `unknown_since` yet): from
/// then on they count reconciliations. Runs before the message is marked.
pub(super) async fn await_reconcile(
    c: &impl GenericClient,
    id: i64,
    message_id: i64,
    run_at: i64,
    error: &str,
) -> StoreResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE jobs SET run_at = $2, last_error = $3, attempt_started = NULL, \
             attempts = CASE WHEN EXISTS (SELECT 1 FROM messages WHERE id = $4 AND unknown_since IS NULL) \
                             THEN 0 ELSE attempts END \
             WHERE id = $1",
        )
        .await?;
    c.execute(&stmt, &[&id, &run_at, &error, &message_id])
        .await?;
    Ok(())
}

/// Status jobs after a step: those to delete, and the jobs that carry the steps left.
#[derive(Default)]
pub(super) struct StepsSettled {
    pub done: Vec<i64>,
    pub rest: Vec<rules::StatusJob>,
}

/// Deletes the status jobs stepped, and writes the jobs of the steps left; one statement.
pub(super) async fn settle_steps(c: &impl GenericClient, jobs: &StepsSettled) -> StoreResult<()> {
    if jobs.done.is_empty() && jobs.rest.is_empty() {
        return Ok(());
    }
    let payloads = jobs
        .rest
        .iter()
        .map(|job| payload_text(&job.steps))
        .collect::<StoreResult<Vec<_>>>()?;
    let run_at: Vec<i64> = jobs.rest.iter().map(rules::StatusJob::run_at).collect();
    let created: Vec<i64> = jobs.rest.iter().map(|job| job.created).collect();
    let stmt = c
        .prepare_typed_cached(
            "WITH done AS (DELETE FROM jobs WHERE id = ANY($1)) \
             INSERT INTO jobs (kind, payload, run_at, created_at) \
             SELECT 'status', payload, run_at, created_at \
             FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS rest(payload, run_at, created_at)",
            &[Type::INT8_ARRAY, Type::TEXT_ARRAY, Type::INT8_ARRAY, Type::INT8_ARRAY],
        )
        .await?;
    c.execute(&stmt, &[&jobs.done, &payloads, &run_at, &created])
        .await?;
    Ok(())
}

pub(super) async fn bury(c: &impl GenericClient, id: i64, error: &str) -> StoreResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE jobs SET dead = TRUE, last_error = $2, attempt_started = NULL WHERE id = $1",
        )
        .await?;
    c.execute(&stmt, &[&id, &error]).await?;
    Ok(())
}

pub async fn complete_job(s: &PgStore, id: i64) -> StoreResult<()> {
    complete(&s.conn().await?, id).await
}

pub async fn retry_job(s: &PgStore, id: i64, run_at: i64, error: String) -> StoreResult<()> {
    retry(&s.conn().await?, id, run_at, &error).await
}

pub async fn bury_job(s: &PgStore, id: i64, error: String) -> StoreResult<()> {
    bury(&s.conn().await?, id, &error).await
}

pub async fn set_aside_send(
    s: &PgStore,
    job_id: i64,
    message_id: i64,
    reason: String,
    now: i64,
) -> StoreResult<()> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    bury(&tx, job_id, &reason).await?;
    status_checks::mark_unknown(&tx, message_id, &reason, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Jobs set aside for an operator, oldest first, after job id `after`.
pub async fn set_aside_jobs(s: &PgStore, after: i64, limit: i64) -> StoreResult<Vec<SetAsideJob>> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_typed_cached(
            "SELECT id, kind, payload, attempts, last_error, created_at FROM jobs \
             WHERE dead AND id > $1 ORDER BY id LIMIT $2",
            &[Type::INT8, Type::INT8],
        )
        .await?;
    let rows = c.query(&stmt, &[&after, &limit]).await?;
    rows.iter()
        .map(|row| {
            Ok(SetAsideJob {
                id: get(row, 0)?,
                kind: get(row, 1)?,
                message_id: payload_message_id(get(row, 2)?),
                attempts: get(row, 3)?,
                last_error: get(row, 4)?,
                created_at: get(row, 5)?,
            })
        })
        .collect()
}

/// Puts a set-aside job back in the queue, due at once with its attempts counted afresh;
/// false when no set-aside job has this id.
pub async fn revive_job(s: &PgStore, id: i64, now: i64) -> StoreResult<bool> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached(
            "UPDATE jobs SET dead = FALSE, run_at = $2, attempts = 0 WHERE id = $1 AND dead",
        )
        .await?;
    Ok(c.execute(&stmt, &[&id, &now]).await? == 1)
}

pub async fn queue_gauges(s: &PgStore) -> StoreResult<QueueGauges> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE NOT dead), \
                    (SELECT COUNT(*) FROM jobs WHERE dead), \
                    (SELECT COUNT(*) FROM message_status WHERE status_unknown_since IS NOT NULL)",
        )
        .await?;
    let row = c.query_one(&stmt, &[]).await?;
    Ok(QueueGauges {
        live: get(&row, 0)?,
        set_aside: get(&row, 1)?,
        status_unknown: get(&row, 2)?,
    })
}
