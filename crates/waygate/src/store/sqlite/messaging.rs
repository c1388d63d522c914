//! Conversations, messages, charges and refunds: the send path and the status path.

use std::cell::RefCell;

use rusqlite::{params, Connection, OptionalExtension, Statement};
use waygate_core::money::Money;
use waygate_core::status::MessageStatus;

use super::rows::{self, all, one, CONVERSATION_COLUMNS, MESSAGES, MESSAGE_COLUMNS};
use super::status_checks;
use super::{jobs, tenants, webhooks, WriterState};
use crate::model::*;
use crate::store::rules::{self, Change, Earlier, SendTerms, StepPlan, DAY_MS};
use crate::store::*;
use crate::views::MessageView;

/// Records an accepted send with its charge, conversation, events and idempotency key. Every
/// refusal comes before the first write (the balance moves first, and only if it can), so
/// this runs without a savepoint of its own: see `SqliteStore::write_unguarded`.
pub fn record_send(
    c: &Connection,
    w: &WriterState<'_>,
    s: &NewSend,
) -> Result<SendRecorded, SendRefused> {
    if let Some(idem) = &s.idempotency {
        if let Some(replay) = idempotent_replay(c, s.user_id, &idem.key, &idem.request_hash, s.now)?
        {
            return Err(SendRefused::Replay(replay));
        }
    }
    let existing = conversation_by_pair(
        &mut *w.statements.get(&CONVERSATION_BY_PAIR)?,
        s.sender_id,
        &s.recipient,
    )?;
    let terms = SendTerms::of(existing.as_ref(), s)?;
    if let Some(limit) = terms.limit {
        check_messaging_limit(c, s.sender_id, &s.recipient, limit, s.now)?;
    }
    let price = terms.price;
    let charge = terms.charge()?;
    if price > Money::ZERO && !tenants::move_balance(&w.statements, s.user_id, charge)? {
        return Err(SendRefused::InsufficientBalance);
    }

    let accepted = match &s.dispatch {
        Dispatch::Accepted { sid, status, .. } => Some((sid, *status)),
        Dispatch::Queue { .. } => None,
    };
    // An accepted template send opens (or extends) the window.
    let opens_window = (s.template.is_some() && accepted.is_some()).then_some(s.now);
    let conversation = touch_conversation(c, w, s, existing, opens_window)?;

    let mut steps = vec![(MessageStatus::Pending, s.now)];
    steps.extend(accepted.map(|(_, status)| (status, s.now)));
    let status = accepted.map_or(MessageStatus::Pending, |(_, status)| status);
    let history = rules::history_text(&steps);
    let sid = accepted.map(|(sid, _)| sid.clone());
    let (template_id, variables) = match &s.template {
        Some(t) => (Some(t.template_id), Some(rules::json_text(&t.variables))),
        None => (None, None),
    };
    w.statements
        .get(
            "INSERT INTO messages (conversation_id, user_id, sender_id, direction, recipient_phone, template_id, \
             variables, body, message_sid, price_micros, created_at) \
             VALUES (?1, ?2, ?3, 'outbound', ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
    .execute(params![
        conversation.id,
        s.user_id,
        s.sender_id,
        s.recipient,
        template_id,
        variables,
        s.body,
        sid,
        price.micros(),
        s.now
    ])
    .map_err(StoreError::from)?;
    let message_id = c.last_insert_rowid();
    insert_status(w, message_id, status.as_str(), &history)?;

    if price > Money::ZERO {
        let entry = tenants::Entry {
            user_id: s.user_id,
            kind: "charge",
            amount: charge,
            message_id: Some(message_id),
            reference: None,
            at: s.now,
        };
        tenants::record_entry(&w.statements, &entry)?;
    }
    if terms.limit.is_some() {
        c.prepare_cached(
            "INSERT INTO business_initiations (sender_id, recipient_phone, at) VALUES (?1, ?2, ?3)",
        )
        .map_err(StoreError::from)?
        .execute(params![s.sender_id, s.recipient, s.now])
        .map_err(StoreError::from)?;
    }
    let job_id = match &s.dispatch {
        Dispatch::Queue { lease_ms } => Some(jobs::enqueue_claimed_send(
            c,
            message_id,
            s.now + lease_ms,
            s.now,
        )?),
        Dispatch::Accepted { .. } => {
            webhooks::enqueue_event(
                c,
                &w.subscriptions,
                s.user_id,
                webhooks::MESSAGE_STATUS,
                s.now,
                || {
                    let message =
                        rules::accepted_message(s, message_id, conversation.id, price, sid, &steps);
                    Ok(MessageView::from(&message))
                },
            )?;
            None
        }
    };
    if let Some(idem) = &s.idempotency {
        c.prepare_cached(
            "INSERT OR REPLACE INTO idempotency_keys (user_id, key, request_hash, message_id, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(StoreError::from)?
        .execute(params![s.user_id, idem.key, idem.request_hash, message_id, s.now])
        .map_err(StoreError::from)?;
    }
    // Last, once nothing can fail: promises are only taken back with the whole transaction.
    if let Dispatch::Accepted { followups, .. } = &s.dispatch {
        w.followups.promise(message_id, followups, s.now);
    }
    Ok(SendRecorded {
        conversation,
        message_id,
        job_id,
    })
}

/// Creates the conversation, or records this send's activity on it. A plain insert or update
/// inside the writer's transaction: an upsert with `RETURNING` built a temporary table for
/// every send (a quarter of the writer's instructions).
fn touch_conversation(
    c: &Connection,
    w: &WriterState<'_>,
    s: &NewSend,
    existing: Option<Conversation>,
    opens_window: Option<i64>,
) -> StoreResult<Conversation> {
    match existing {
        Some(mut conversation) => {
            w.statements.get(
                "UPDATE conversations SET last_message_at = ?2, customer_name = COALESCE(?3, customer_name), \
                 last_template_at = COALESCE(?4, last_template_at) WHERE id = ?1",
            )?
            .execute(params![conversation.id, s.now, s.recipient_name, opens_window])?;
            conversation.last_message_at = s.now;
            if s.recipient_name.is_some() {
                conversation.customer_name = s.recipient_name.clone();
            }
            if opens_window.is_some() {
                conversation.last_template_at = opens_window;
            }
            Ok(conversation)
        }
        None => {
            w.statements.get(
                "INSERT INTO conversations (user_id, sender_id, recipient_phone, customer_name, last_message_at, \
                 last_template_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)",
            )?
            .execute(params![s.user_id, s.sender_id, s.recipient, s.recipient_name, s.now, opens_window])?;
            Ok(Conversation {
                id: c.last_insert_rowid(),
                user_id: s.user_id,
                sender_id: s.sender_id,
                recipient_phone: s.recipient.clone(),
                customer_name: s.recipient_name.clone(),
                last_message_at: s.now,
                last_customer_message_at: None,
                last_template_at: opens_window,
            })
        }
    }
}

fn check_messaging_limit(
    c: &Connection,
    sender_id: i64,
    recipient: &str,
    limit: i64,
    now: i64,
) -> Result<(), SendRefused> {
    let since = now - DAY_MS;
    let (distinct, already): (i64, bool) = c
        .prepare_cached(
            "SELECT COUNT(DISTINCT recipient_phone), COALESCE(MAX(recipient_phone = ?3), 0) \
             FROM business_initiations WHERE sender_id = ?1 AND at > ?2",
        )
        .map_err(StoreError::from)?
        .query_row(params![sender_id, since, recipient], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(StoreError::from)?;
    match rules::within_messaging_limit(distinct, already, limit) {
        true => Ok(()),
        false => Err(SendRefused::MessagingLimitReached),
    }
}

pub fn outgoing(c: &Connection, message_ids: &[i64]) -> StoreResult<Vec<Outgoing>> {
    let mut found = Vec::with_capacity(message_ids.len());
    for id in message_ids {
        found.extend(one_outgoing(c, *id)?);
    }
    Ok(found)
}

fn one_outgoing(c: &Connection, message_id: i64) -> StoreResult<Option<Outgoing>> {
    one(
        c,
        "SELECT m.id, s.provider, s.phone_number, m.recipient_phone, m.body, t.provider_ref, m.variables, \
         m.message_sid, m.unknown_since, t.name, t.language, s.provider_ref \
         FROM messages m JOIN senders s ON s.id = m.sender_id LEFT JOIN templates t ON t.id = m.template_id \
         WHERE m.id = ?1",
        [message_id],
        |r| {
            let variables: Option<String> = r.get(6)?;
            Ok(Outgoing {
                message_id: r.get(0)?,
                sid: r.get(7)?,
                unknown_since: r.get(8)?,
                provider: rows::parsed(r, 1, "provider", ProviderKind::parse)?,
                from: r.get(2)?,
                to: r.get(3)?,
                body: r.get(4)?,
                template_ref: r.get(5)?,
                template_locale: match (r.get(9)?, r.get(10)?) {
                    (Some(name), Some(language)) => Some(TemplateLocale { name, language }),
                    _ => None,
                },
                variables: variables
                    .and_then(|v| serde_json::from_str(&v).ok())
                    .unwrap_or_default(),
                sender_ref: r.get(11)?,
            })
        },
    )
}

pub fn known_sids(c: &Connection, sids: &[String]) -> StoreResult<Vec<String>> {
    let mut known = Vec::new();
    for sid in sids {
        if one(
            c,
            "SELECT 1 FROM messages WHERE message_sid = ?1",
            [sid],
            |_| Ok(()),
        )?
        .is_some()
        {
            known.push(sid.clone());
        }
    }
    Ok(known)
}

/// Status steps that providers promised for messages accepted in the open transaction.
/// They are written just before COMMIT as `rules::status_jobs`, so a batch of sends costs
/// one job row, and each step is applied to all its messages at once (one job per message
/// cost more writer time than the send itself).
#[derive(Default)]
pub struct Followups {
    promised: RefCell<Vec<rules::Promise>>,
}

impl Followups {
    fn promise(&self, message_id: i64, steps: &[ScheduledStatus], now: i64) {
        if !steps.is_empty() {
            self.promised.borrow_mut().push(rules::Promise {
                message_id,
                steps: steps.to_vec(),
                now,
            });
        }
    }

    /// Forgets the promises of a transaction that rolled back.
    pub fn discard(&self) {
        self.promised.borrow_mut().clear();
    }

    /// Writes what was promised since the last call.
    pub fn write(&self, c: &Connection) -> StoreResult<()> {
        let promised = std::mem::take(&mut *self.promised.borrow_mut());
        for job in rules::status_jobs(promised) {
            jobs::enqueue(c, jobs::STATUS, &job.steps, job.run_at(), job.created)?;
        }
        Ok(())
    }
}

pub fn record_dispatch(
    c: &Connection,
    w: &WriterState<'_>,
    job_id: i64,
    message_id: i64,
    result: &DispatchResult,
    now: i64,
) -> StoreResult<()> {
    match result {
        DispatchResult::Accepted {
            sid,
            status,
            followups,
            recheck_at,
        } => {
            status_checks::send_settled(c, message_id, *recheck_at)?;
            c.prepare_cached(
                "UPDATE messages SET message_sid = ?2, unknown_since = NULL WHERE id = ?1",
            )?
            .execute(params![message_id, sid])?;
            c.prepare_cached(
                "UPDATE conversations SET last_template_at = MAX(COALESCE(last_template_at, 0), ?2) \
                 WHERE id = (SELECT conversation_id FROM messages WHERE id = ?1 AND template_id IS NOT NULL)",
            )?
            .execute(params![message_id, now])?;
            advance(c, w, &[message_id], &Change::to(*status, now))?;
            jobs::complete(c, job_id)?;
            w.followups.promise(message_id, followups, now);
            Ok(())
        }
        DispatchResult::Rejected { code, message } => {
            status_checks::send_settled(c, message_id, None)?;
            let failed = Change {
                error_code: Some(*code),
                error_message: Some(message),
                ..Change::to(MessageStatus::Failed, now)
            };
            advance(c, w, &[message_id], &failed)?;
            jobs::complete(c, job_id)
        }
        DispatchResult::Retry { at, error } => jobs::retry(c, job_id, *at, error),
        DispatchResult::Unknown { since, at, error } => {
            jobs::await_reconcile(c, job_id, message_id, *at, error)?;
            c.prepare_cached(
                "UPDATE messages SET unknown_since = COALESCE(unknown_since, ?2) WHERE id = ?1",
            )?
            .execute(params![message_id, since])?;
            Ok(())
        }
    }
}

/// Applies the next step of due status jobs, job by job, until `limit` messages moved (or
/// nothing more is due); returns how many messages that was, plus the jobs set aside for a
/// bad payload (0: nothing was due).
pub fn apply_due_statuses(
    c: &Connection,
    w: &WriterState<'_>,
    now: i64,
    limit: i64,
) -> StoreResult<usize> {
    // Steps promised in the open transaction, which may run for a while yet, are due too.
    w.followups.write(c)?;
    let due = all(
        c,
        "SELECT id, payload, step FROM jobs WHERE kind = 'status' AND dead = 0 AND run_at <= ?1 ORDER BY run_at, id LIMIT ?2",
        params![now, limit],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, usize>(2)?)),
    )?;
    let mut applied = 0;
    for (job_id, payload, step) in &due {
        if applied >= limit as usize {
            break;
        }
        match serde_json::from_str::<StatusSteps>(payload) {
            Ok(job) => applied += apply_step(c, w, *job_id, &job, *step)?,
            Err(e) => {
                jobs::bury(c, *job_id, &format!("bad payload: {e}"))?;
                applied += 1;
            }
        }
    }
    Ok(applied)
}

/// Applies the job's next step (`step` counts those applied) to its messages, and leaves the
/// rest to the same job (or deletes it after the last); returns how many messages the job
/// holds.
fn apply_step(
    c: &Connection,
    w: &WriterState<'_>,
    job_id: i64,
    job: &StatusSteps,
    step: usize,
) -> StoreResult<usize> {
    let StepPlan::Apply { change, next_at } = job.plan(step) else {
        jobs::complete(c, job_id)?;
        return Ok(0);
    };
    if let Some(change) = change {
        advance(c, w, &job.message_ids, &change)?;
    }
    match next_at {
        None => jobs::complete(c, job_id)?,
        Some(next_at) => jobs::step_done(c, job_id, next_at)?,
    }
    Ok(job.message_ids.len())
}

pub fn apply_status(
    c: &Connection,
    w: &WriterState<'_>,
    u: &StatusUpdate,
) -> StoreResult<StatusApplied> {
    let id = match &u.target {
        StatusTarget::MessageId(id) => Some(*id),
        StatusTarget::Provider { sid, message_id } => {
            let known = one(
                c,
                "SELECT id FROM messages WHERE message_sid = ?1",
                [sid],
                |r| r.get(0),
            )?;
            match (known, message_id) {
                (Some(id), _) => Some(id),
                // Our send never learnt this id (its answer was lost): adopt it from the callback.
                (None, Some(id)) => {
                    let adopted = c
                        .prepare_cached(
                            "UPDATE messages SET message_sid = ?2, unknown_since = NULL \
                             WHERE id = ?1 AND message_sid IS NULL AND direction = 'outbound'",
                        )?
                        .execute(params![id, sid])?;
                    (adopted == 1).then_some(*id)
                }
                (None, None) => None,
            }
        }
    };
    match id {
        None => Ok(StatusApplied::UnknownMessage),
        Some(id) => {
            let change = Change {
                error_code: u.error_code,
                error_message: u.error_message.as_deref(),
                ..Change::to(u.status, u.at)
            };
            advance(c, w, &[id], &change)
        }
    }
}

/// Moves outbound messages forward (never backwards), refunds a failure once, and queues a
/// `message.status` event for each message that moved. With one id, the answer says what
/// happened to it; with several, whether any moved.
fn advance(
    c: &Connection,
    w: &WriterState<'_>,
    message_ids: &[i64],
    change: &Change<'_>,
) -> StoreResult<StatusApplied> {
    let failure = change.status.is_failure();
    // The step is appended to the stored history (see `history_text`): `json_insert` (parse,
    // insert, print) was a tenth of the writer's time under the simulator's steps. The state
    // machine's guard is part of the UPDATE (the statuses this one may follow, one per
    // parameter, unused ones NULL), so a step costs one statement, not a read and a write;
    // `IN (...)` would build a temporary table per run, and so does one statement for the
    // whole batch (ids from `json_each`, moved ones by `RETURNING`: 70 % more instructions).
    // Inbound messages are never moved: `received` precedes no status.
    let step = rules::step_text(change.status, change.at);
    let mut update = w.statements.get(
        "UPDATE message_status SET status = ?2, status_history = status_history || ',' || ?3, \
         error_code = CASE WHEN ?4 THEN ?5 ELSE error_code END, \
         error_message = CASE WHEN ?4 THEN ?6 ELSE error_message END \
         WHERE message_id = ?1 \
         AND (status = ?7 OR status = ?8 OR status = ?9 OR status = ?10 OR status = ?11 OR status = ?12)",
    )?;
    // Bound once for the whole batch; only the id changes from message to message (binding
    // all of them for each copied the texts every time).
    update.raw_bind_parameter(2, change.status.as_str())?;
    update.raw_bind_parameter(3, &step)?;
    update.raw_bind_parameter(4, failure)?;
    update.raw_bind_parameter(5, change.error_code)?;
    update.raw_bind_parameter(6, change.error_message)?;
    let mut predecessors = change.predecessors();
    for slot in 0..GUARD_SLOTS {
        update.raw_bind_parameter(7 + slot, predecessors.next())?;
    }
    debug_assert!(
        predecessors.next().is_none(),
        "more predecessors than guard slots"
    );
    let mut moved = Vec::with_capacity(message_ids.len());
    for &id in message_ids {
        update.raw_bind_parameter(1, id)?;
        if update.raw_execute()? == 1 {
            moved.push(id);
        }
    }
    if moved.is_empty() {
        // Only a single message's caller needs to tell an unknown message from a stale step.
        let unknown = match message_ids {
            [id] => one(c, "SELECT 1 FROM messages WHERE id = ?1", [id], |_| Ok(()))?.is_none(),
            _ => false,
        };
        return Ok(match unknown {
            true => StatusApplied::UnknownMessage,
            false => StatusApplied::Ignored,
        });
    }
    // Who owns a moved message and what it cost matter only for a refund or a webhook; with
    // no `message.status` subscription anywhere, a step needs no read at all.
    if !failure && !w.subscriptions.anyone_wants(c, webhooks::MESSAGE_STATUS)? {
        return Ok(StatusApplied::Advanced);
    }
    let mut owner = c.prepare_cached("SELECT user_id, price_micros FROM messages WHERE id = ?1")?;
    for message_id in moved {
        let (user_id, price) = owner.query_row([message_id], |r| {
            Ok((r.get::<_, i64>(0)?, Money::from_micros(r.get(1)?)))
        })?;
        if failure && price > Money::ZERO {
            let refunded = one(
                c,
                "SELECT 1 FROM ledger_entries WHERE message_id = ?1 AND kind = 'refund'",
                [message_id],
                |_| Ok(()),
            )?
            .is_some();
            if !refunded {
                let entry = tenants::Entry {
                    user_id,
                    kind: "refund",
                    amount: price,
                    message_id: Some(message_id),
                    reference: None,
                    at: change.at,
                };
                if !tenants::post_entry(&w.statements, &entry)? {
                    tracing::error!(
                        message_id,
                        user_id,
                        "refund not posted: the balance would overflow"
                    );
                }
            }
        }
        webhooks::enqueue_event(
            c,
            &w.subscriptions,
            user_id,
            webhooks::MESSAGE_STATUS,
            change.at,
            || {
                get_message(c, message_id)?
                    .map(|m| MessageView::from(&m))
                    .ok_or_else(|| StoreError::Corrupt(format!("message {message_id} vanished")))
            },
        )?;
    }
    Ok(StatusApplied::Advanced)
}

/// Parameters in `advance`'s guard for the statuses a step may follow (`read` has the most).
const GUARD_SLOTS: usize = 6;

/// A new message's row of status: its first status and history.
fn insert_status(
    w: &WriterState<'_>,
    message_id: i64,
    status: &str,
    history: &str,
) -> StoreResult<()> {
    w.statements
        .get("INSERT INTO message_status (message_id, status, status_history) VALUES (?1, ?2, ?3)")?
        .execute(params![message_id, status, history])?;
    Ok(())
}

pub fn record_inbound(
    c: &Connection,
    w: &WriterState<'_>,
    i: &NewInbound,
) -> StoreResult<Option<Message>> {
    if let Some(sid) = &i.provider_sid {
        if one(
            c,
            "SELECT 1 FROM messages WHERE message_sid = ?1",
            [sid],
            |_| Ok(()),
        )?
        .is_some()
        {
            return Ok(None);
        }
    }
    let Some(sender) = tenants::get_sender(c, i.sender_id)? else {
        return Err(StoreError::Corrupt(format!(
            "inbound for unknown sender {}",
            i.sender_id
        )));
    };
    let conversation = one(
        c,
        &format!(
            "INSERT INTO conversations (user_id, sender_id, recipient_phone, customer_name, last_message_at, \
             last_customer_message_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5) \
             ON CONFLICT (sender_id, recipient_phone) DO UPDATE SET last_message_at = excluded.last_message_at, \
             last_customer_message_at = excluded.last_customer_message_at, \
             customer_name = COALESCE(excluded.customer_name, customer_name) \
             RETURNING {CONVERSATION_COLUMNS}"
        ),
        params![sender.user_id, sender.id, i.from, i.profile_name, i.at],
        rows::conversation,
    )?
    .ok_or(StoreError::Corrupt("conversation upsert returned nothing".into()))?;
    let history = rules::history_text(&[(MessageStatus::Received, i.at)]);
    c.prepare_cached(
        "INSERT INTO messages (conversation_id, user_id, sender_id, direction, recipient_phone, body, \
         message_sid, price_micros, media, button_payload, reply_to_sid, created_at) \
         VALUES (?1, ?2, ?3, 'inbound', ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        conversation.id,
        sender.user_id,
        sender.id,
        i.from,
        i.body,
        i.provider_sid,
        (!i.media.is_empty()).then(|| rules::json_text(&i.media)),
        i.button_payload,
        i.reply_to_sid,
        i.at
    ])?;
    let message_id = c.last_insert_rowid();
    insert_status(w, message_id, MessageStatus::Received.as_str(), &history)?;
    let message = get_message(c, message_id)?
        .ok_or(StoreError::Corrupt("inserted message vanished".into()))?;
    webhooks::enqueue_event(
        c,
        &w.subscriptions,
        sender.user_id,
        webhooks::MESSAGE_RECEIVED,
        i.at,
        || Ok(MessageView::from(&message)),
    )?;
    Ok(Some(message))
}

pub fn save_idempotent_response(
    c: &Connection,
    user_id: i64,
    key: &str,
    status: u16,
    body: &str,
) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE idempotency_keys SET response_status = ?3, response_body = ?4 WHERE user_id = ?1 AND key = ?2",
    )?
    .execute(params![user_id, key, status, body])?;
    Ok(())
}

/// The earlier outcome for this key within 24 h; a different body is a conflict.
pub fn idempotent_replay(
    c: &Connection,
    user_id: i64,
    key: &str,
    request_hash: &[u8],
    now: i64,
) -> Result<Option<Replay>, SendRefused> {
    let row = one(
        c,
        "SELECT request_hash, message_id, response_status, response_body FROM idempotency_keys \
         WHERE user_id = ?1 AND key = ?2 AND created_at > ?3",
        params![user_id, key, now - DAY_MS],
        |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<u16>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        },
    )?;
    let Some((hash, message_id, status, body)) = row else {
        return Ok(None);
    };
    let message_id = match rules::earlier_request(&hash, request_hash, message_id, status, body)? {
        Earlier::Answered(replay) => return Ok(Some(replay)),
        Earlier::InFlight(message_id) => message_id,
    };
    let message = get_message(c, message_id)?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "idempotency key points at missing message {message_id}"
        ))
    })?;
    Ok(Some(Replay::InFlight(Box::new(message))))
}

static CONVERSATION_BY_PAIR: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE sender_id = ?1 AND recipient_phone = ?2")
});

pub fn conversation(
    c: &Connection,
    sender_id: i64,
    recipient: &str,
) -> StoreResult<Option<Conversation>> {
    conversation_by_pair(
        &mut *c.prepare_cached(&CONVERSATION_BY_PAIR)?,
        sender_id,
        recipient,
    )
}

/// The conversation of a sender and a recipient, through `CONVERSATION_BY_PAIR` prepared by
/// a reader or held by the writer.
fn conversation_by_pair(
    statement: &mut Statement<'_>,
    sender_id: i64,
    recipient: &str,
) -> StoreResult<Option<Conversation>> {
    Ok(statement
        .query_row(params![sender_id, recipient], rows::conversation)
        .optional()?)
}

pub fn get_conversation(c: &Connection, id: i64) -> StoreResult<Option<Conversation>> {
    one(
        c,
        &format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?1"),
        [id],
        rows::conversation,
    )
}

pub fn list_conversations(c: &Connection, q: &ConversationQuery) -> StoreResult<Vec<Conversation>> {
    let (after_at, after_id) = q.after.unwrap_or((i64::MAX, i64::MAX));
    all(
        c,
        &format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE user_id = ?1 \
             AND (?2 IS NULL OR sender_id = ?2) AND (?3 IS NULL OR recipient_phone = ?3) \
             AND (last_message_at < ?4 OR (last_message_at = ?4 AND id < ?5)) \
             ORDER BY last_message_at DESC, id DESC LIMIT ?6"
        ),
        params![
            q.user_id,
            q.sender_id,
            q.recipient,
            after_at,
            after_id,
            q.limit
        ],
        rows::conversation,
    )
}

pub fn get_message(c: &Connection, id: i64) -> StoreResult<Option<Message>> {
    one(
        c,
        &format!("SELECT {MESSAGE_COLUMNS} FROM {MESSAGES} WHERE id = ?1"),
        [id],
        rows::message,
    )
}

pub fn list_messages(
    c: &Connection,
    conversation_id: i64,
    after: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    all(
        c,
        &format!(
            "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES} WHERE conversation_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ),
        params![conversation_id, after.unwrap_or(0), limit],
        rows::message,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduled(at: i64, status: &str, error_code: Option<i64>) -> ScheduledStatus {
        ScheduledStatus {
            at,
            status: status.into(),
            error_code,
            error_message: error_code.map(|_| "Unreachable destination handset".into()),
        }
    }

    fn status_jobs(c: &Connection) -> Vec<(i64, StatusSteps)> {
        all(
            c,
            "SELECT run_at, payload FROM jobs WHERE kind = 'status' ORDER BY id",
            [],
            |r| {
                let payload: String = r.get(1)?;
                Ok((r.get(0)?, serde_json::from_str(&payload).unwrap()))
            },
        )
        .unwrap()
    }

    #[test]
    fn promises_of_one_transaction_are_written_once_as_their_status_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = super::super::open(&dir.path().join("t.db")).unwrap();
        super::super::migrate(&mut c).unwrap();
        let followups = Followups::default();
        let ok = |t: i64| {
            vec![
                scheduled(t + 1000, "sent", None),
                scheduled(t + 2000, "delivered", None),
            ]
        };
        followups.promise(1, &ok(100), 100);
        followups.promise(2, &[scheduled(1103, "undelivered", Some(30003))], 103);
        followups.promise(3, &ok(105), 105);
        followups.promise(4, &[], 106);
        followups.write(&c).unwrap();

        let jobs = status_jobs(&c);
        assert_eq!(jobs.len(), 2, "one job per sequence of statuses");
        let (run_at, together) = &jobs[0];
        assert_eq!(together.message_ids, [1, 3]);
        assert_eq!(*run_at, 1105, "due once due for every message");
        assert_eq!(jobs[1].1.message_ids, [2]);

        followups.write(&c).unwrap();
        assert_eq!(status_jobs(&c).len(), 2, "written once");
    }

    #[test]
    fn every_status_has_a_guard_slot_for_each_status_it_may_follow() {
        let names = [
            "pending",
            "accepted",
            "queued",
            "sending",
            "sent",
            "delivered",
            "read",
            "failed",
            "undelivered",
            "received",
        ];
        for name in names {
            let status = MessageStatus::parse(name).unwrap();
            assert!(status.predecessors().count() <= GUARD_SLOTS, "{name}");
        }
        let read = MessageStatus::parse("read").unwrap();
        assert_eq!(read.predecessors().count(), GUARD_SLOTS, "no slot to spare");
    }

    #[test]
    fn a_status_job_of_the_old_one_message_shape_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = super::super::open(&dir.path().join("t.db")).unwrap();
        for sql in &super::super::MIGRATIONS[..3] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 3).unwrap();
        c.execute(
            "INSERT INTO jobs (kind, payload, run_at, created_at) VALUES ('status', ?1, 5, 1)",
            [r#"{"message_id":42,"steps":[{"at":5,"status":"sent","error_code":null,"error_message":null}]}"#],
        )
        .unwrap();
        super::super::migrate(&mut c).unwrap();
        let jobs = status_jobs(&c);
        assert_eq!(jobs[0].1.message_ids, [42]);
        assert_eq!(jobs[0].1.steps[0].status, "sent");
    }
}
