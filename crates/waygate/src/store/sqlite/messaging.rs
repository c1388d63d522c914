//! Conversations, messages, charges and refunds: the send path and the status path.

use rusqlite::{params, Connection};
use waygate_core::money::Money;
use waygate_core::status::MessageStatus;
use waygate_core::time::from_millis;
use waygate_core::window::{expires_at, Session};

use super::rows::{self, all, one, CONVERSATION_COLUMNS, MESSAGE_COLUMNS};
use super::{jobs, tenants, webhooks};
use crate::model::*;
use crate::store::*;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Whether the conversation's 24 h window is open at `now`.
pub fn window_open(conversation: &Conversation, template_opens: bool, now: i64) -> bool {
    let expiry = expires_at(
        conversation.last_customer_message_at.map(from_millis),
        conversation.last_template_at.map(from_millis),
        template_opens,
    );
    Session::of(expiry, from_millis(now)).is_open()
}

pub fn record_send(c: &Connection, s: &NewSend) -> Result<SendRecorded, SendRefused> {
    if let Some(idem) = &s.idempotency {
        if let Some(replay) = idempotent_replay(c, s.user_id, &idem.key, &idem.request_hash, s.now)?
        {
            return Err(SendRefused::Replay(replay));
        }
    }
    let existing = conversation(c, s.sender_id, &s.recipient)?;
    let open = existing
        .as_ref()
        .is_some_and(|conv| window_open(conv, s.template_opens, s.now));
    match &s.template {
        None if !open => return Err(SendRefused::SessionExpired(existing)),
        Some(t) if !open => {
            if let Some(limit) = t.messaging_limit {
                check_messaging_limit(c, s.sender_id, &s.recipient, limit, s.now)?;
            }
        }
        _ => {}
    }

    let accepted = match &s.dispatch {
        Dispatch::Accepted { sid, status, .. } => Some((sid, *status)),
        Dispatch::Queue { .. } => None,
    };
    // An accepted template send opens (or extends) the window.
    let opens_window = (s.template.is_some() && accepted.is_some()).then_some(s.now);
    let conversation = touch_conversation(c, s, existing, opens_window)?;

    let mut steps = vec![StatusStep {
        status: MessageStatus::Pending.as_str().into(),
        at: s.now,
    }];
    if let Some((_, status)) = accepted {
        steps.push(StatusStep {
            status: status.as_str().into(),
            at: s.now,
        });
    }
    let status = steps.last().map(|st| st.status.clone()).unwrap_or_default();
    let sid = accepted.map(|(sid, _)| sid.clone());
    let (template_id, variables) = match &s.template {
        Some(t) => (Some(t.template_id), Some(json_text(&t.variables))),
        None => (None, None),
    };
    c.prepare_cached(
        "INSERT INTO messages (conversation_id, user_id, sender_id, direction, recipient_phone, template_id, \
         variables, body, status, message_sid, price_micros, status_history, created_at) \
         VALUES (?1, ?2, ?3, 'outbound', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .map_err(StoreError::from)?
    .execute(params![
        conversation.id,
        s.user_id,
        s.sender_id,
        s.recipient,
        template_id,
        variables,
        s.body,
        status,
        sid,
        s.price.micros(),
        history_json(&steps),
        s.now
    ])
    .map_err(StoreError::from)?;
    let message_id = c.last_insert_rowid();

    if s.price > Money::ZERO {
        let negative = Money::ZERO
            .checked_sub(s.price)
            .ok_or(SendRefused::InsufficientBalance)?;
        if !tenants::post_entry(
            c,
            s.user_id,
            "charge",
            negative,
            Some(message_id),
            None,
            s.now,
        )? {
            return Err(SendRefused::InsufficientBalance);
        }
    }
    let counts_for_limit = s
        .template
        .as_ref()
        .is_some_and(|t| t.messaging_limit.is_some());
    if counts_for_limit && !open {
        c.prepare_cached(
            "INSERT INTO business_initiations (sender_id, recipient_phone, at) VALUES (?1, ?2, ?3)",
        )
        .map_err(StoreError::from)?
        .execute(params![s.sender_id, s.recipient, s.now])
        .map_err(StoreError::from)?;
    }
    let job_id = match &s.dispatch {
        Dispatch::Queue { lease_ms } => Some(jobs::enqueue(
            c,
            jobs::SEND,
            &serde_json::json!({ "message_id": message_id }),
            s.now + lease_ms,
            s.now,
        )?),
        Dispatch::Accepted { followups, .. } => {
            schedule_followups(c, message_id, followups, s.now)?;
            let message = Message {
                id: message_id,
                conversation_id: conversation.id,
                user_id: s.user_id,
                direction: Direction::Outbound,
                sender_id: s.sender_id,
                recipient_phone: s.recipient.clone(),
                template_id,
                body: s.body.clone(),
                status: status.clone(),
                message_sid: sid.clone(),
                error_code: None,
                error_message: None,
                price: s.price,
                created_at: s.now,
                status_history: steps,
                media: Vec::new(),
                button_payload: None,
            };
            webhooks::enqueue_event(c, s.user_id, webhooks::MESSAGE_STATUS, s.now, || {
                Ok(message)
            })?;
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
    s: &NewSend,
    existing: Option<Conversation>,
    opens_window: Option<i64>,
) -> StoreResult<Conversation> {
    match existing {
        Some(mut conversation) => {
            c.prepare_cached(
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
            c.prepare_cached(
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
    if !already && distinct >= limit {
        return Err(SendRefused::MessagingLimitReached);
    }
    Ok(())
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn history_json(steps: &[StatusStep]) -> String {
    json_text(&steps)
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
         m.message_sid, m.unknown_since \
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
                variables: variables
                    .and_then(|v| serde_json::from_str(&v).ok())
                    .unwrap_or_default(),
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

/// One job walks a message through the statuses its provider promised, one step at a time.
fn schedule_followups(
    c: &Connection,
    message_id: i64,
    steps: &[ScheduledStatus],
    now: i64,
) -> StoreResult<()> {
    let Some(first) = steps.first() else {
        return Ok(());
    };
    let job = StatusSteps {
        message_id,
        steps: steps.to_vec(),
    };
    jobs::enqueue(c, jobs::STATUS, &job, first.at, now)?;
    Ok(())
}

pub fn record_dispatch(
    c: &Connection,
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
        } => {
            c.prepare_cached(
                "UPDATE messages SET message_sid = ?2, unknown_since = NULL WHERE id = ?1",
            )?
            .execute(params![message_id, sid])?;
            c.prepare_cached(
                "UPDATE conversations SET last_template_at = MAX(COALESCE(last_template_at, 0), ?2) \
                 WHERE id = (SELECT conversation_id FROM messages WHERE id = ?1 AND template_id IS NOT NULL)",
            )?
            .execute(params![message_id, now])?;
            advance(c, message_id, *status, None, None, now)?;
            schedule_followups(c, message_id, followups, now)?;
            jobs::complete(c, job_id)
        }
        DispatchResult::Rejected { code, message } => {
            advance(
                c,
                message_id,
                MessageStatus::Failed,
                Some(*code),
                Some(message),
                now,
            )?;
            jobs::complete(c, job_id)
        }
        DispatchResult::Retry { at, error } => jobs::retry(c, job_id, *at, error),
        DispatchResult::Unknown { since, at, error } => {
            c.prepare_cached(
                "UPDATE messages SET unknown_since = COALESCE(unknown_since, ?2) WHERE id = ?1",
            )?
            .execute(params![message_id, since])?;
            jobs::retry(c, job_id, *at, error)
        }
    }
}

pub fn apply_due_statuses(c: &Connection, now: i64, limit: i64) -> StoreResult<usize> {
    let due = all(
        c,
        "SELECT id, payload FROM jobs WHERE dead = 0 AND kind = 'status' AND run_at <= ?1 ORDER BY run_at, id LIMIT ?2",
        params![now, limit],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    )?;
    for (job_id, payload) in &due {
        match serde_json::from_str::<StatusSteps>(payload) {
            Ok(job) => apply_first_step(c, *job_id, job)?,
            Err(e) => jobs::bury(c, *job_id, &format!("bad payload: {e}"))?,
        }
    }
    Ok(due.len())
}

/// Applies the first step, and leaves the rest to the same job (or deletes it after the last).
fn apply_first_step(c: &Connection, job_id: i64, mut job: StatusSteps) -> StoreResult<()> {
    if job.steps.is_empty() {
        return jobs::complete(c, job_id);
    }
    let step = job.steps.remove(0);
    match MessageStatus::parse(&step.status) {
        Some(status) => {
            advance(
                c,
                job.message_id,
                status,
                step.error_code,
                step.error_message.as_deref(),
                step.at,
            )?;
        }
        None => tracing::warn!(status = %step.status, "skipping an unknown scheduled status"),
    }
    match job.steps.first().map(|next| next.at) {
        None => jobs::complete(c, job_id),
        Some(next_at) => jobs::reschedule(c, job_id, next_at, &job),
    }
}

pub fn apply_status(c: &Connection, u: &StatusUpdate) -> StoreResult<StatusApplied> {
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
        Some(id) => advance(
            c,
            id,
            u.status,
            u.error_code,
            u.error_message.as_deref(),
            u.at,
        ),
    }
}

/// Moves an outbound message forward (never backwards), refunds a failure once, and
/// queues the `message.status` event.
fn advance(
    c: &Connection,
    message_id: i64,
    next: MessageStatus,
    error_code: Option<i64>,
    error_message: Option<&str>,
    at: i64,
) -> StoreResult<StatusApplied> {
    let row = one(
        c,
        "SELECT status, direction, user_id, price_micros FROM messages WHERE id = ?1",
        [message_id],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        },
    )?;
    let Some((status, direction, user_id, price)) = row else {
        return Ok(StatusApplied::UnknownMessage);
    };
    let current = MessageStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("message status {status}")))?;
    if direction != Direction::Outbound.as_str() || !current.can_advance_to(next) {
        return Ok(StatusApplied::Ignored);
    }
    let failure = next.is_failure();
    c.prepare_cached(
        "UPDATE messages SET status = ?2, \
         status_history = json_insert(status_history, '$[#]', json_object('status', ?2, 'at', ?3)), \
         error_code = CASE WHEN ?4 THEN ?5 ELSE error_code END, \
         error_message = CASE WHEN ?4 THEN ?6 ELSE error_message END WHERE id = ?1",
    )?
    .execute(params![message_id, next.as_str(), at, failure, error_code, error_message])?;
    let price = Money::from_micros(price);
    if failure && price > Money::ZERO {
        let refunded = one(
            c,
            "SELECT 1 FROM ledger_entries WHERE message_id = ?1 AND kind = 'refund'",
            [message_id],
            |_| Ok(()),
        )?
        .is_some();
        if !refunded {
            tenants::post_entry(c, user_id, "refund", price, Some(message_id), None, at)?;
        }
    }
    webhooks::enqueue_event(c, user_id, webhooks::MESSAGE_STATUS, at, || {
        get_message(c, message_id)?
            .ok_or_else(|| StoreError::Corrupt(format!("message {message_id} vanished")))
    })?;
    Ok(StatusApplied::Advanced)
}

pub fn record_inbound(c: &Connection, i: &NewInbound) -> StoreResult<Option<Message>> {
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
    let history = history_json(&[StatusStep {
        status: MessageStatus::Received.as_str().into(),
        at: i.at,
    }]);
    c.prepare_cached(
        "INSERT INTO messages (conversation_id, user_id, sender_id, direction, recipient_phone, body, status, \
         message_sid, price_micros, status_history, media, button_payload, created_at) \
         VALUES (?1, ?2, ?3, 'inbound', ?4, ?5, 'received', ?6, 0, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        conversation.id,
        sender.user_id,
        sender.id,
        i.from,
        i.body,
        i.provider_sid,
        history,
        (!i.media.is_empty()).then(|| json_text(&i.media)),
        i.button_payload,
        i.at
    ])?;
    let message = get_message(c, c.last_insert_rowid())?
        .ok_or(StoreError::Corrupt("inserted message vanished".into()))?;
    webhooks::enqueue_event(c, sender.user_id, webhooks::MESSAGE_RECEIVED, i.at, || {
        Ok(message.clone())
    })?;
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
    if hash != request_hash {
        return Err(SendRefused::IdempotencyKeyReused);
    }
    if let (Some(status), Some(body)) = (status, body) {
        return Ok(Some(Replay::Response { status, body }));
    }
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
    one(
        c,
        &CONVERSATION_BY_PAIR,
        params![sender_id, recipient],
        rows::conversation,
    )
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
        &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"),
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
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ),
        params![conversation_id, after.unwrap_or(0), limit],
        rows::message,
    )
}
