//! Conversations, messages, charges and refunds: the send path and the status path.
//!
//! Nodes record sends and statuses at once; the database keeps them exact. An idempotency
//! key is claimed first by its primary key (a repeat waits for the first request's
//! transaction, then replays it); a first send and a first inbound message upsert their
//! conversation on its unique (sender, recipient); a charge is a conditional update of the
//! balance; a status moves by an update guarded by the statuses it may follow, which
//! PostgreSQL checks again on the row a concurrent move left; a provider id is unique.
//!
//! Rows are locked in one order everywhere (jobs, messages, statuses, conversations,
//! balances), so that two of these operations never wait on each other in a cycle.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use deadpool_postgres::GenericClient;
use tokio_postgres::types::Type;
use waygate_core::money::Money;
use waygate_core::status::MessageStatus;

use super::events::{self, MESSAGE_RECEIVED, MESSAGE_STATUS};
use super::ledger::{self, Entry};
use super::rows::{self, get, parsed, CONVERSATION_COLUMNS, MESSAGES, MESSAGE_COLUMNS};
use super::subscriptions::Subscriptions;
use super::{finish, jobs, status_checks, PgStore};
use crate::model::*;
use crate::store::rules::{self, Change, Earlier, SendTerms, StepPlan, DAY_MS};
use crate::store::*;
use crate::views::MessageView;

/// Records an accepted send with its charge, conversation, job or event, and idempotency
/// key; a refusal writes nothing. A plain send is one statement after reading its
/// conversation, committed on its own (no BEGIN and COMMIT to wait for); a send that claims a
/// key, counts towards a messaging limit or queues an event runs in a transaction.
pub async fn record_send(s: &PgStore, send: NewSend) -> Result<SendRecorded, SendRefused> {
    let mut c = s.conn().await?;
    let announced = match send.dispatch {
        Dispatch::Accepted { .. } => {
            s.subscriptions
                .may_want(&c, send.user_id, MESSAGE_STATUS)
                .await?
        }
        Dispatch::Queue { .. } => false,
    };
    let limited = send
        .template
        .as_ref()
        .is_some_and(|t| t.messaging_limit.is_some());
    if send.idempotency.is_none() && !limited && !announced {
        return write_send(&c, &send, false).await;
    }
    let tx = c.transaction().await.map_err(StoreError::from)?;
    let outcome = write_send(&tx, &send, announced).await;
    finish(tx, outcome).await
}

/// The send's statements, on a transaction unless it is one statement; `announced` queues its
/// `message.status` event for the subscriptions that want it.
async fn write_send(
    c: &impl GenericClient,
    send: &NewSend,
    announced: bool,
) -> Result<SendRecorded, SendRefused> {
    let reserved = match &send.idempotency {
        Some(idem) => Some(claim_key(c, send, idem).await?),
        None => None,
    };
    let accepted = match &send.dispatch {
        Dispatch::Accepted { sid, status, .. } => Some((sid, *status)),
        Dispatch::Queue { .. } => None,
    };
    let mut steps = vec![(MessageStatus::Pending, send.now)];
    steps.extend(accepted.map(|(_, status)| (status, send.now)));
    let send_at = |terms: SendTerms, guess: bool| {
        let charge = terms.charge();
        let steps = &steps;
        async move {
            let written = insert_send(c, send, reserved, &terms, charge?, steps, guess).await?;
            Ok::<_, SendRefused>(written)
        }
    };
    // Most sends begin a conversation: written at once on a new conversation's terms, on
    // condition that there is none (otherwise the statement answers with the one there is,
    // and the send is written on its terms), they need no read first. A send that a
    // messaging limit may count is not guessed: its limit is checked before any write.
    let on_terms_of = |existing: Option<Conversation>| async move {
        let terms = SendTerms::of(existing.as_ref(), send)?;
        if let Some(limit) = terms.limit {
            check_messaging_limit(c, send, limit).await?;
        }
        Ok::<_, SendRefused>((terms, send_at(terms, false).await?))
    };
    let guessed = SendTerms::of(None, send)
        .ok()
        .filter(|terms| terms.limit.is_none());
    let (terms, written) = match guessed {
        Some(terms) => match send_at(terms, true).await? {
            Written::Existing(existing) => on_terms_of(Some(existing)).await?,
            written => (terms, written),
        },
        None => on_terms_of(conversation_in(c, send.sender_id, &send.recipient).await?).await?,
    };
    let Written::Sent {
        conversation,
        message_id,
        job_id,
    } = written
    else {
        return Err(SendRefused::InsufficientBalance);
    };
    if announced {
        events::enqueue_event(c, send.user_id, MESSAGE_STATUS, send.now, || {
            let sid = accepted.map(|(sid, _)| sid.clone());
            let message = rules::accepted_message(
                send,
                message_id,
                conversation.id,
                terms.price,
                sid,
                &steps,
            );
            Ok(MessageView::from(&message))
        })
        .await?;
    }
    Ok(SendRecorded {
        conversation,
        message_id,
        job_id: job_id.filter(|_| accepted.is_none()),
    })
}

/// What `insert_send` did.
enum Written {
    Sent {
        conversation: Conversation,
        message_id: i64,
        job_id: Option<i64>,
    },
    /// Nothing: the send was written as a first one, and this conversation is there.
    Existing(Conversation),
    /// Nothing: the balance cannot pay.
    Unpaid,
}

/// Writes a send in one statement: the charge, the conversation created or touched (a
/// concurrent first send or inbound message meets it on the unique pair; times only move
/// forward, whichever node's clock is behind), the message under the id its idempotency key
/// reserved (or a new one) with its status row, the ledger line, the business initiation,
/// and its send job or status job. Nothing is written when the balance cannot pay, or for
/// a `first` send when the conversation exists (it is read instead, in the same snapshot),
/// since every row hangs on the charge and the charge on that condition. The balance is
/// locked before the conversation, as everywhere.
async fn insert_send(
    c: &impl GenericClient,
    s: &NewSend,
    reserved: Option<i64>,
    terms: &SendTerms,
    charge: Money,
    steps: &[(MessageStatus, i64)],
    first: bool,
) -> StoreResult<Written> {
    static INSERT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH fresh AS (SELECT WHERE NOT $24 OR NOT EXISTS (SELECT FROM conversations \
             WHERE sender_id = $2 AND recipient_phone = $3)), \
             charged AS (UPDATE balances SET micros = micros + $13 WHERE $14 \
             AND EXISTS (SELECT FROM fresh) AND user_id = $1 \
             AND micros::numeric + $13::numeric BETWEEN 0 AND 9223372036854775807 RETURNING user_id), \
             paid AS (SELECT FROM fresh WHERE NOT $14 OR EXISTS (SELECT FROM charged)), \
             conversation AS (INSERT INTO conversations (user_id, sender_id, recipient_phone, \
             customer_name, last_message_at, last_template_at, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $5 FROM paid \
             ON CONFLICT (sender_id, recipient_phone) DO UPDATE SET \
             last_message_at = GREATEST(conversations.last_message_at, EXCLUDED.last_message_at), \
             customer_name = COALESCE(EXCLUDED.customer_name, conversations.customer_name), \
             last_template_at = GREATEST(conversations.last_template_at, EXCLUDED.last_template_at) \
             RETURNING {CONVERSATION_COLUMNS}), \
             message AS (INSERT INTO messages (id, conversation_id, user_id, sender_id, direction, \
             recipient_phone, template_id, variables, body, message_sid, price_micros, created_at) \
             SELECT COALESCE($7, nextval(pg_get_serial_sequence('messages', 'id'))), id, $1, $2, \
             'outbound', $3, $8, $9, $10, $11, $12, $5 FROM conversation RETURNING id), \
             status AS (INSERT INTO message_status (message_id, status, status_history) \
             SELECT id, $15, $16 FROM message), \
             ledger AS (INSERT INTO ledger_entries (user_id, kind, amount_micros, message_id, \
             created_at) SELECT $1, 'charge', $13, id, $5 FROM message WHERE $14), \
             initiation AS (INSERT INTO business_initiations (sender_id, recipient_phone, at) \
             SELECT $2, $3, $5 FROM message WHERE $17), \
             job AS (INSERT INTO jobs (kind, payload, run_at, created_at, attempt_started) \
             SELECT $18, $19 || id || $20, $21, $22, $23 FROM message WHERE $18 IS NOT NULL \
             RETURNING id) \
             SELECT conversation.*, message.id, (SELECT id FROM job) FROM conversation, message \
             UNION ALL SELECT {CONVERSATION_COLUMNS}, NULL, NULL FROM conversations \
             WHERE sender_id = $2 AND recipient_phone = $3 AND NOT EXISTS (SELECT FROM fresh)"
        )
    });
    let (template_id, variables) = match &s.template {
        Some(t) => (Some(t.template_id), Some(rules::json_text(&t.variables))),
        None => (None, None),
    };
    let (sid, status, job) = match &s.dispatch {
        Dispatch::Queue { lease_ms } => (
            None,
            MessageStatus::Pending,
            Some(jobs::NewJob::send(s.now + lease_ms, s.now)?),
        ),
        Dispatch::Accepted {
            sid,
            status,
            followups,
        } => (
            Some(sid.as_str()),
            *status,
            jobs::NewJob::status(followups, s.now)?,
        ),
    };
    // An accepted template send opens (or extends) the window.
    let opens_window = (s.template.is_some() && sid.is_some()).then_some(s.now);
    let job = job.as_ref();
    let stmt = c
        .prepare_typed_cached(
            &INSERT,
            &[
                Type::INT8,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::INT8,
                Type::BOOL,
                Type::TEXT,
                Type::TEXT,
                Type::BOOL,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::BOOL,
            ],
        )
        .await?;
    let row = c
        .query_opt(
            &stmt,
            &[
                &s.user_id,
                &s.sender_id,
                &s.recipient,
                &s.recipient_name,
                &s.now,
                &opens_window,
                &reserved,
                &template_id,
                &variables,
                &s.body,
                &sid,
                &terms.price.micros(),
                &charge.micros(),
                &(terms.price > Money::ZERO),
                &status.as_str(),
                &rules::history_text(steps),
                &terms.limit.is_some(),
                &job.map(|j| j.kind),
                &job.map(|j| j.before_id.as_str()),
                &job.map(|j| j.after_id.as_str()),
                &job.map(|j| j.run_at),
                &job.map(|j| j.created),
                &job.and_then(|j| j.attempt_started),
                &first,
            ],
        )
        .await?;
    let Some(row) = row else {
        return Ok(Written::Unpaid);
    };
    let conversation = rows::conversation(&row)?;
    Ok(match get(&row, 8)? {
        Some(message_id) => Written::Sent {
            conversation,
            message_id,
            job_id: get(&row, 9)?,
        },
        None => Written::Existing(conversation),
    })
}

/// Claims the send's idempotency key (a new one, or one older than 24 h) with the id its
/// message will take. A live key makes this request a repeat, answered as the first: a key
/// another transaction is claiming is waited for, so two concurrent requests make one
/// message.
async fn claim_key(
    c: &impl GenericClient,
    s: &NewSend,
    idem: &IdempotencyKey,
) -> Result<i64, SendRefused> {
    let stmt = c
        .prepare_typed_cached(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, message_id, created_at) \
             VALUES ($1, $2, $3, nextval(pg_get_serial_sequence('messages', 'id')), $4) \
             ON CONFLICT (user_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, \
             message_id = EXCLUDED.message_id, response_status = NULL, response_body = NULL, \
             created_at = EXCLUDED.created_at \
             WHERE idempotency_keys.created_at <= $5 \
             RETURNING message_id",
            &[Type::INT8, Type::TEXT, Type::BYTEA, Type::INT8, Type::INT8],
        )
        .await
        .map_err(StoreError::from)?;
    let claimed = c
        .query_opt(
            &stmt,
            &[
                &s.user_id,
                &idem.key,
                &idem.request_hash,
                &s.now,
                &(s.now - DAY_MS),
            ],
        )
        .await
        .map_err(StoreError::from)?;
    if let Some(row) = claimed {
        return Ok(get(&row, 0)?);
    }
    // The key's row is locked by the conflict: it stays as read until this transaction ends.
    match replay(c, s.user_id, &idem.key, &idem.request_hash, s.now).await? {
        Some(earlier) => Err(SendRefused::Replay(earlier)),
        None => Err(StoreError::Corrupt(format!("idempotency key {} vanished", idem.key)).into()),
    }
}

/// Refuses a template that would begin a conversation past the sender's messaging limit.
/// The sender's row is locked first, so that nodes count its conversations one at a time
/// (two could each see room for one more).
async fn check_messaging_limit(
    c: &impl GenericClient,
    s: &NewSend,
    limit: i64,
) -> Result<(), SendRefused> {
    let lock = c
        .prepare_cached("SELECT 1 FROM senders WHERE id = $1 FOR NO KEY UPDATE")
        .await
        .map_err(StoreError::from)?;
    c.execute(&lock, &[&s.sender_id])
        .await
        .map_err(StoreError::from)?;
    let stmt = c
        .prepare_typed_cached(
            "SELECT COUNT(DISTINCT recipient_phone), COALESCE(bool_or(recipient_phone = $3), FALSE) \
             FROM business_initiations WHERE sender_id = $1 AND at > $2",
            &[Type::INT8, Type::INT8, Type::TEXT],
        )
        .await
        .map_err(StoreError::from)?;
    let row = c
        .query_one(&stmt, &[&s.sender_id, &(s.now - DAY_MS), &s.recipient])
        .await
        .map_err(StoreError::from)?;
    match rules::within_messaging_limit(get(&row, 0)?, get(&row, 1)?, limit) {
        true => Ok(()),
        false => Err(SendRefused::MessagingLimitReached),
    }
}

/// A new message's row of status: its first status and history.
async fn insert_status(
    c: &impl GenericClient,
    message_id: i64,
    status: MessageStatus,
    history: &str,
) -> StoreResult<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO message_status (message_id, status, status_history) VALUES ($1, $2, $3)",
        )
        .await?;
    c.execute(&stmt, &[&message_id, &status.as_str(), &history])
        .await?;
    Ok(())
}

/// Queues the status steps a provider promised for a message, as their status job.
async fn promise(
    c: &impl GenericClient,
    message_id: i64,
    steps: &[ScheduledStatus],
    now: i64,
) -> StoreResult<()> {
    let promised = rules::Promise {
        message_id,
        steps: steps.to_vec(),
        now,
    };
    for job in rules::status_jobs(vec![promised]) {
        jobs::enqueue(c, jobs::STATUS, &job.steps, job.run_at(), job.created).await?;
    }
    Ok(())
}

/// What the providers need for these messages, in the order asked (unknown ids are left out).
pub async fn outgoing(s: &PgStore, message_ids: Vec<i64>) -> StoreResult<Vec<Outgoing>> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_typed_cached(
            "SELECT m.id, s.provider, s.phone_number, m.recipient_phone, m.body, t.provider_ref, \
             m.variables, m.message_sid, m.unknown_since, t.name, t.language, s.provider_ref \
             FROM unnest($1::bigint[]) WITH ORDINALITY AS asked(id, position) \
             JOIN messages m ON m.id = asked.id JOIN senders s ON s.id = m.sender_id \
             LEFT JOIN templates t ON t.id = m.template_id ORDER BY asked.position",
            &[Type::INT8_ARRAY],
        )
        .await?;
    let found = c.query(&stmt, &[&message_ids]).await?;
    rows::all(found, |r| {
        let variables: Option<&str> = get(r, 6)?;
        Ok(Outgoing {
            message_id: get(r, 0)?,
            sid: get(r, 7)?,
            unknown_since: get(r, 8)?,
            provider: parsed(r, 1, "provider", ProviderKind::parse)?,
            from: get(r, 2)?,
            to: get(r, 3)?,
            body: get(r, 4)?,
            template_ref: get(r, 5)?,
            template_locale: match (get(r, 9)?, get(r, 10)?) {
                (Some(name), Some(language)) => Some(TemplateLocale { name, language }),
                _ => None,
            },
            variables: variables
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default(),
            sender_ref: get(r, 11)?,
        })
    })
}

/// Which of these provider ids are already attached to a message, in the order asked.
pub async fn known_sids(s: &PgStore, sids: Vec<String>) -> StoreResult<Vec<String>> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_typed_cached(
            "SELECT message_sid FROM messages WHERE message_sid = ANY($1)",
            &[Type::TEXT_ARRAY],
        )
        .await?;
    let known = c.query(&stmt, &[&sids]).await?;
    let known: std::collections::HashSet<String> = known
        .iter()
        .map(|row| get(row, 0))
        .collect::<StoreResult<_>>()?;
    Ok(sids.into_iter().filter(|sid| known.contains(sid)).collect())
}

/// Records a provider's answer to a dispatch job, and settles the job (locked first, as a
/// claim locks it before the message).
pub async fn record_dispatch(
    s: &PgStore,
    job_id: i64,
    message_id: i64,
    result: DispatchResult,
    now: i64,
) -> StoreResult<()> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    match result {
        DispatchResult::Accepted {
            sid,
            status,
            followups,
            recheck_at,
        } => {
            jobs::complete(&tx, job_id).await?;
            let stmt = tx
                .prepare_cached(
                    "UPDATE messages SET message_sid = $2, unknown_since = NULL WHERE id = $1",
                )
                .await?;
            tx.execute(&stmt, &[&message_id, &sid]).await?;
            status_checks::send_settled(&tx, message_id, recheck_at).await?;
            let stmt = tx
                .prepare_typed_cached(
                    "UPDATE conversations SET last_template_at = GREATEST(COALESCE(last_template_at, 0), $2) \
                     WHERE id = (SELECT conversation_id FROM messages WHERE id = $1 AND template_id IS NOT NULL)",
                    &[Type::INT8, Type::INT8],
                )
                .await?;
            tx.execute(&stmt, &[&message_id, &now]).await?;
            advance_one(&s.subscriptions, &tx, message_id, Change::to(status, now)).await?;
            promise(&tx, message_id, &followups, now).await?;
        }
        DispatchResult::Rejected { code, message } => {
            jobs::complete(&tx, job_id).await?;
            status_checks::send_settled(&tx, message_id, None).await?;
            let failed = Change {
                error_code: Some(code),
                error_message: Some(message.as_str()),
                ..Change::to(MessageStatus::Failed, now)
            };
            advance_one(&s.subscriptions, &tx, message_id, failed).await?;
        }
        DispatchResult::Retry { at, error } => jobs::retry(&tx, job_id, at, &error).await?,
        DispatchResult::Unknown { since, at, error } => {
            jobs::await_reconcile(&tx, job_id, message_id, at, &error).await?;
            let stmt = tx
                .prepare_cached(
                    "UPDATE messages SET unknown_since = COALESCE(unknown_since, $2) WHERE id = $1",
                )
                .await?;
            tx.execute(&stmt, &[&message_id, &since]).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

pub async fn apply_status(s: &PgStore, update: StatusUpdate) -> StoreResult<StatusApplied> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let id = match &update.target {
        StatusTarget::MessageId(id) => Some(*id),
        StatusTarget::Provider { sid, message_id } => {
            let stmt = tx
                .prepare_cached("SELECT id FROM messages WHERE message_sid = $1")
                .await?;
            match (tx.query_opt(&stmt, &[sid]).await?, message_id) {
                (Some(row), _) => Some(get(&row, 0)?),
                (None, Some(id)) => adopt_sid(&tx, *id, sid).await?,
                (None, None) => None,
            }
        }
    };
    let applied = match id {
        None => StatusApplied::UnknownMessage,
        Some(id) => {
            let change = Change {
                error_code: update.error_code,
                error_message: update.error_message.as_deref(),
                ..Change::to(update.status, update.at)
            };
            advance_one(&s.subscriptions, &tx, id, change).await?
        }
    };
    tx.commit().await?;
    Ok(applied)
}

/// Our send never learnt the provider's id (its answer was lost): adopted from a callback
/// that carried ours. A concurrent callback that adopted it first leaves it as it is.
async fn adopt_sid(c: &impl GenericClient, id: i64, sid: &str) -> StoreResult<Option<i64>> {
    let stmt = c
        .prepare_cached(
            "UPDATE messages SET message_sid = $2, unknown_since = NULL \
             WHERE id = $1 AND direction = 'outbound' \
             AND (message_sid IS NULL OR message_sid = $2)",
        )
        .await?;
    Ok((c.execute(&stmt, &[&id, &sid]).await? == 1).then_some(id))
}

/// Applies the next step of due status jobs until `limit` messages moved (or nothing more is
/// due); returns how many messages that was, plus the jobs set aside for a bad payload (0:
/// nothing was due). The steps of all the jobs are applied by one statement, and the jobs
/// moved on by another. A job another node is applying is skipped, and one it has just moved
/// on is read again as it left it, so no step is applied twice.
pub async fn apply_due_statuses(s: &PgStore, now: i64, limit: i64) -> StoreResult<usize> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let outcome = apply_due(&s.subscriptions, &tx, now, limit).await;
    finish(tx, outcome).await
}

async fn apply_due(
    subscriptions: &Subscriptions,
    c: &impl GenericClient,
    now: i64,
    limit: i64,
) -> StoreResult<usize> {
    let stmt = c
        .prepare_typed_cached(
            "SELECT id, payload, step, created_at FROM jobs WHERE kind = 'status' AND NOT dead \
             AND run_at <= $1 ORDER BY run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[Type::INT8, Type::INT8],
        )
        .await?;
    let due = c.query(&stmt, &[&now, &limit]).await?;
    let mut read = Vec::with_capacity(due.len());
    for row in &due {
        let job_id: i64 = get(row, 0)?;
        let step: i64 = get(row, 2)?;
        let step = usize::try_from(step)
            .map_err(|_| StoreError::Corrupt(format!("status job {job_id} at step {step}")))?;
        let created: i64 = get(row, 3)?;
        let payload = serde_json::from_str::<StatusSteps>(get(row, 1)?);
        read.push((job_id, step, created, payload));
    }
    let limit = usize::try_from(limit).unwrap_or(0);
    let mut applied = 0;
    let mut moves = Vec::new();
    let mut moving = HashSet::new();
    let mut settled = jobs::StepsSettled::default();
    let mut rest = Vec::new();
    for (job_id, step, created, job) in &read {
        if applied >= limit {
            break;
        }
        let job = match job {
            Ok(job) => job,
            Err(e) => {
                jobs::bury(c, *job_id, &format!("bad payload: {e}")).await?;
                applied += 1;
                continue;
            }
        };
        let StepPlan::Apply { change, next_at } = job.plan(*step) else {
            settled.done.push(*job_id);
            continue;
        };
        // A message that an earlier job of this batch moves waits for the next batch, so
        // that its steps are applied one after the other.
        if job.message_ids.iter().any(|id| moving.contains(id)) {
            continue;
        }
        moving.extend(job.message_ids.iter().copied());
        if let Some(change) = change {
            moves.push((job.message_ids.as_slice(), change));
        }
        settled.done.push(*job_id);
        if next_at.is_some() {
            rest.extend(job.message_ids.iter().map(|&message_id| rules::Promise {
                message_id,
                steps: job.steps[step + 1..].to_vec(),
                now: *created,
            }));
        }
        applied += job.message_ids.len();
    }
    settled.rest = regrouped(rest);
    advance(subscriptions, c, &moves).await?;
    jobs::settle_steps(c, &settled).await?;
    Ok(applied)
}

/// How far apart the next steps of messages may fall due for them to share a job after a
/// step: the job waits for the latest, so that a status is never early and at most this late.
const REGROUP_WITHIN_MS: i64 = 10;

/// The jobs for the steps left after a step. Each send writes a job of its own (its own
/// transaction), and a job is deleted and written anew at each step, so messages whose steps
/// fall due together are gathered into shared jobs, as the embedded store writes them (a step
/// is then one row of `jobs` for up to `JOB_MESSAGES` messages).
fn regrouped(mut rest: Vec<rules::Promise>) -> Vec<rules::StatusJob> {
    rest.sort_by_key(|p| p.steps[0].at);
    let mut jobs = Vec::new();
    while let Some(first) = rest.first().map(|p| p.steps[0].at) {
        let together = rest.partition_point(|p| p.steps[0].at <= first + REGROUP_WITHIN_MS);
        jobs.extend(rules::status_jobs(rest.drain(..together).collect()));
    }
    jobs
}

/// Moves one outbound message forward, and says what happened to it.
async fn advance_one(
    subscriptions: &Subscriptions,
    c: &impl GenericClient,
    message_id: i64,
    change: Change<'_>,
) -> StoreResult<StatusApplied> {
    if advance(subscriptions, c, &[(&[message_id][..], change)]).await? > 0 {
        return Ok(StatusApplied::Advanced);
    }
    Ok(match get_message_in(c, message_id).await?.is_none() {
        true => StatusApplied::UnknownMessage,
        false => StatusApplied::Ignored,
    })
}

/// Moves outbound messages forward (never backwards), each set by its change, in one
/// statement; refunds a failure once, and queues a `message.status` event for each message
/// that moved. Returns how many moved. The guard is part of the UPDATE: a move racing another
/// waits for its row, then is checked against the status that one left.
async fn advance(
    subscriptions: &Subscriptions,
    c: &impl GenericClient,
    moves: &[(&[i64], Change<'_>)],
) -> StoreResult<usize> {
    static ADVANCE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH moves AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], \
             $4::bool[], $5::bigint[], $6::text[], $7::text[]) \
             AS v(id, status, step, failure, error_code, error_message, guard)), \
             moved AS (UPDATE message_status SET status = moves.status, \
             status_history = message_status.status_history || ',' || moves.step, \
             error_code = CASE WHEN moves.failure THEN moves.error_code \
                          ELSE message_status.error_code END, \
             error_message = CASE WHEN moves.failure THEN moves.error_message \
                             ELSE message_status.error_message END \
             FROM moves WHERE message_id = moves.id \
             AND message_status.status = ANY(string_to_array(moves.guard, ',')) \
             RETURNING message_status.*) \
             SELECT {MESSAGE_COLUMNS} FROM messages JOIN moved ON message_id = id ORDER BY id"
        )
    });
    if moves.is_empty() {
        return Ok(0);
    }
    let mut columns = MoveColumns::default();
    let mut change_of = HashMap::new();
    for (message_ids, change) in moves {
        let guard: Vec<&str> = change.predecessors().collect();
        let guard = guard.join(",");
        let step = rules::step_text(change.status, change.at);
        for &id in *message_ids {
            change_of.insert(id, change);
            columns.ids.push(id);
            columns.statuses.push(change.status.as_str());
            columns.steps.push(step.clone());
            columns.failures.push(change.status.is_failure());
            columns.error_codes.push(change.error_code);
            columns.error_messages.push(change.error_message);
            columns.guards.push(guard.clone());
        }
    }
    let stmt = c
        .prepare_typed_cached(
            &ADVANCE,
            &[
                Type::INT8_ARRAY,
                Type::TEXT_ARRAY,
                Type::TEXT_ARRAY,
                Type::BOOL_ARRAY,
                Type::INT8_ARRAY,
                Type::TEXT_ARRAY,
                Type::TEXT_ARRAY,
            ],
        )
        .await?;
    let moved = c
        .query(
            &stmt,
            &[
                &columns.ids,
                &columns.statuses,
                &columns.steps,
                &columns.failures,
                &columns.error_codes,
                &columns.error_messages,
                &columns.guards,
            ],
        )
        .await?;
    let moved = rows::all(moved, rows::message)?;
    for message in &moved {
        let change = change_of
            .get(&message.id)
            .ok_or_else(|| StoreError::Corrupt(format!("message {} moved unasked", message.id)))?;
        if change.status.is_failure() && message.price > Money::ZERO {
            refund(c, message, change.at).await?;
        }
        if subscriptions
            .may_want(c, message.user_id, MESSAGE_STATUS)
            .await?
        {
            events::enqueue_event(c, message.user_id, MESSAGE_STATUS, change.at, || {
                Ok(MessageView::from(message))
            })
            .await?;
        }
    }
    Ok(moved.len())
}

/// The moves of `advance`, one array per column, for `unnest`.
#[derive(Default)]
struct MoveColumns<'a> {
    ids: Vec<i64>,
    statuses: Vec<&'static str>,
    steps: Vec<String>,
    failures: Vec<bool>,
    error_codes: Vec<Option<i64>>,
    error_messages: Vec<Option<&'a str>>,
    guards: Vec<String>,
}

/// Gives a failed message's price back. Failures are final and the move to one holds the
/// message's status row until commit, so a second refund cannot race this one; the unique
/// `ledger_refund_once` would refuse it anyway.
async fn refund(c: &impl GenericClient, message: &Message, at: i64) -> StoreResult<()> {
    let stmt = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM ledger_entries WHERE message_id = $1 AND kind = 'refund')",
        )
        .await?;
    let refunded: bool = get(&c.query_one(&stmt, &[&message.id]).await?, 0)?;
    if refunded {
        return Ok(());
    }
    let entry = Entry {
        user_id: message.user_id,
        kind: "refund",
        amount: message.price,
        message_id: Some(message.id),
        reference: None,
        at,
    };
    if !ledger::post_entry(c, &entry).await? {
        tracing::error!(
            message_id = message.id,
            user_id = message.user_id,
            "refund not posted: the balance would overflow"
        );
    }
    Ok(())
}

/// Records an inbound message; `None` when its provider id was seen before, even on another
/// node at the same moment (the unique provider id decides, and the conversation's touch is
/// rolled back with it).
pub async fn record_inbound(s: &PgStore, inbound: NewInbound) -> StoreResult<Option<Message>> {
    static UPSERT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO conversations (user_id, sender_id, recipient_phone, customer_name, \
             last_message_at, last_customer_message_at, created_at) \
             SELECT user_id, id, $2, $3, $4, $4, $4 FROM senders WHERE id = $1 \
             ON CONFLICT (sender_id, recipient_phone) DO UPDATE SET \
             last_message_at = GREATEST(conversations.last_message_at, EXCLUDED.last_message_at), \
             last_customer_message_at = GREATEST(conversations.last_customer_message_at, \
                                                 EXCLUDED.last_customer_message_at), \
             customer_name = COALESCE(EXCLUDED.customer_name, conversations.customer_name) \
             RETURNING {CONVERSATION_COLUMNS}"
        )
    });
    let i = &inbound;
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let stmt = tx
        .prepare_typed_cached(&UPSERT, &[Type::INT8, Type::TEXT, Type::TEXT, Type::INT8])
        .await?;
    let Some(row) = tx
        .query_opt(&stmt, &[&i.sender_id, &i.from, &i.profile_name, &i.at])
        .await?
    else {
        return Err(StoreError::Corrupt(format!(
            "inbound for unknown sender {}",
            i.sender_id
        )));
    };
    let conversation = rows::conversation(&row)?;
    let stmt = tx
        .prepare_typed_cached(
            "INSERT INTO messages (conversation_id, user_id, sender_id, direction, recipient_phone, \
             body, message_sid, price_micros, media, button_payload, reply_to_sid, created_at) \
             VALUES ($1, $2, $3, 'inbound', $4, $5, $6, 0, $7, $8, $9, $10) \
             ON CONFLICT (message_sid) DO NOTHING RETURNING id",
            &[
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
            ],
        )
        .await?;
    let media = (!i.media.is_empty()).then(|| rules::json_text(&i.media));
    let inserted = tx
        .query_opt(
            &stmt,
            &[
                &conversation.id,
                &conversation.user_id,
                &i.sender_id,
                &i.from,
                &i.body,
                &i.provider_sid,
                &media,
                &i.button_payload,
                &i.reply_to_sid,
                &i.at,
            ],
        )
        .await?;
    let Some(row) = inserted else {
        return Ok(None);
    };
    let message_id: i64 = get(&row, 0)?;
    let history = rules::history_text(&[(MessageStatus::Received, i.at)]);
    insert_status(&tx, message_id, MessageStatus::Received, &history).await?;
    let message = get_message_in(&tx, message_id)
        .await?
        .ok_or(StoreError::Corrupt("inserted message vanished".into()))?;
    events::enqueue_event(&tx, conversation.user_id, MESSAGE_RECEIVED, i.at, || {
        Ok(MessageView::from(&message))
    })
    .await?;
    tx.commit().await?;
    Ok(Some(message))
}

pub async fn save_idempotent_response(
    s: &PgStore,
    user_id: i64,
    key: String,
    status: u16,
    body: String,
) -> StoreResult<()> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached(
            "UPDATE idempotency_keys SET response_status = $3, response_body = $4 \
             WHERE user_id = $1 AND key = $2",
        )
        .await?;
    c.execute(&stmt, &[&user_id, &key, &i32::from(status), &body])
        .await?;
    Ok(())
}

pub async fn idempotent_replay(
    s: &PgStore,
    user_id: i64,
    key: String,
    request_hash: Vec<u8>,
    now: i64,
) -> Result<Option<Replay>, SendRefused> {
    let c = s.conn().await?;
    replay(&c, user_id, &key, &request_hash, now).await
}

/// The earlier outcome for this key within 24 h; a different body is a conflict.
async fn replay(
    c: &impl GenericClient,
    user_id: i64,
    key: &str,
    request_hash: &[u8],
    now: i64,
) -> Result<Option<Replay>, SendRefused> {
    let stmt = c
        .prepare_typed_cached(
            "SELECT request_hash, message_id, response_status, response_body FROM idempotency_keys \
             WHERE user_id = $1 AND key = $2 AND created_at > $3",
            &[Type::INT8, Type::TEXT, Type::INT8],
        )
        .await
        .map_err(StoreError::from)?;
    let Some(row) = c
        .query_opt(&stmt, &[&user_id, &key, &(now - DAY_MS)])
        .await
        .map_err(StoreError::from)?
    else {
        return Ok(None);
    };
    let hash: &[u8] = get(&row, 0)?;
    let status: Option<i32> = get(&row, 2)?;
    let status = status
        .map(|code| {
            u16::try_from(code)
                .map_err(|_| StoreError::Corrupt(format!("stored response status {code}")))
        })
        .transpose()?;
    let earlier = rules::earlier_request(hash, request_hash, get(&row, 1)?, status, get(&row, 3)?)?;
    let message_id = match earlier {
        Earlier::Answered(replay) => return Ok(Some(replay)),
        Earlier::InFlight(message_id) => message_id,
    };
    let message = get_message_in(c, message_id).await?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "idempotency key points at missing message {message_id}"
        ))
    })?;
    Ok(Some(Replay::InFlight(Box::new(message))))
}

pub async fn conversation(
    s: &PgStore,
    sender_id: i64,
    recipient: String,
) -> StoreResult<Option<Conversation>> {
    conversation_in(&s.conn().await?, sender_id, &recipient).await
}

async fn conversation_in(
    c: &impl GenericClient,
    sender_id: i64,
    recipient: &str,
) -> StoreResult<Option<Conversation>> {
    static BY_PAIR: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations \
             WHERE sender_id = $1 AND recipient_phone = $2"
        )
    });
    let stmt = c
        .prepare_typed_cached(&BY_PAIR, &[Type::INT8, Type::TEXT])
        .await?;
    c.query_opt(&stmt, &[&sender_id, &recipient])
        .await?
        .as_ref()
        .map(rows::conversation)
        .transpose()
}

pub async fn get_conversation(s: &PgStore, id: i64) -> StoreResult<Option<Conversation>> {
    static BY_ID: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1"));
    let c = s.conn().await?;
    let stmt = c.prepare_typed_cached(&BY_ID, &[Type::INT8]).await?;
    c.query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(rows::conversation)
        .transpose()
}

pub async fn list_conversations(
    s: &PgStore,
    query: ConversationQuery,
) -> StoreResult<Vec<Conversation>> {
    static PAGE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE user_id = $1 \
             AND ($2::bigint IS NULL OR sender_id = $2) \
             AND ($3::text IS NULL OR recipient_phone = $3) \
             AND (last_message_at < $4 OR (last_message_at = $4 AND id < $5)) \
             ORDER BY last_message_at DESC, id DESC LIMIT $6"
        )
    });
    let (after_at, after_id) = query.after.unwrap_or((i64::MAX, i64::MAX));
    let c = s.conn().await?;
    let stmt = c
        .prepare_typed_cached(
            &PAGE,
            &[
                Type::INT8,
                Type::INT8,
                Type::TEXT,
                Type::INT8,
                Type::INT8,
                Type::INT8,
            ],
        )
        .await?;
    let found = c
        .query(
            &stmt,
            &[
                &query.user_id,
                &query.sender_id,
                &query.recipient,
                &after_at,
                &after_id,
                &query.limit,
            ],
        )
        .await?;
    rows::all(found, rows::conversation)
}

pub async fn get_message(s: &PgStore, id: i64) -> StoreResult<Option<Message>> {
    get_message_in(&s.conn().await?, id).await
}

async fn get_message_in(c: &impl GenericClient, id: i64) -> StoreResult<Option<Message>> {
    static BY_ID: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {MESSAGE_COLUMNS} FROM {MESSAGES} WHERE id = $1"));
    let stmt = c.prepare_typed_cached(&BY_ID, &[Type::INT8]).await?;
    c.query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(rows::message)
        .transpose()
}

pub async fn list_messages(
    s: &PgStore,
    conversation_id: i64,
    after: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    static PAGE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES} WHERE conversation_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        )
    });
    let c = s.conn().await?;
    let stmt = c
        .prepare_typed_cached(&PAGE, &[Type::INT8, Type::INT8, Type::INT8])
        .await?;
    let found = c
        .query(&stmt, &[&conversation_id, &after.unwrap_or(0), &limit])
        .await?;
    rows::all(found, rows::message)
}
