//! Webhook subscriptions, and the events queued for them.

use rusqlite::{params, Connection};
use waygate_core::time::{from_millis, rfc3339};

use super::jobs;
use super::rows::{self, all, one, WEBHOOK_COLUMNS};
use crate::model::{Message, Webhook};
use crate::store::StoreResult;
use crate::views::MessageView;

pub const MESSAGE_STATUS: &str = "message.status";
pub const MESSAGE_RECEIVED: &str = "message.received";

pub fn create(
    c: &Connection,
    user_id: i64,
    url: &str,
    events: &[String],
    secret: &str,
    now: i64,
) -> StoreResult<Webhook> {
    let events_json = serde_json::to_string(events).unwrap_or_else(|_| "[]".into());
    c.prepare_cached("INSERT INTO webhooks (user_id, url, events, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![user_id, url, events_json, secret, now])?;
    Ok(Webhook {
        id: c.last_insert_rowid(),
        user_id,
        url: url.to_string(),
        events: events.to_vec(),
        secret: secret.to_string(),
        previous_secret: None,
        created_at: now,
    })
}

pub fn list(c: &Connection, user_id: i64) -> StoreResult<Vec<Webhook>> {
    all(
        c,
        &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE user_id = ?1 AND deleted_at IS NULL ORDER BY id"),
        [user_id],
        rows::webhook,
    )
}

pub fn get(c: &Connection, id: i64) -> StoreResult<Option<Webhook>> {
    one(
        c,
        &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1 AND deleted_at IS NULL"),
        [id],
        rows::webhook,
    )
}

pub fn delete(c: &Connection, id: i64, now: i64) -> StoreResult<bool> {
    let changed = c
        .prepare_cached("UPDATE webhooks SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL")?
        .execute(params![id, now])?;
    Ok(changed == 1)
}

pub fn rotate(c: &Connection, id: i64, secret: &str, old_valid_until: i64) -> StoreResult<bool> {
    let changed = c
        .prepare_cached(
            "UPDATE webhooks SET previous_secret = secret, previous_secret_until = ?3, secret = ?2 \
             WHERE id = ?1 AND deleted_at IS NULL",
        )?
        .execute(params![id, secret, old_valid_until])?;
    Ok(changed == 1)
}

/// Queues one delivery job per subscription of `user_id` that wants `event_type`, carrying
/// the event body as it is now, so that every retry sends the same bytes. The message is
/// loaded only when someone subscribed.
pub fn enqueue_event(
    c: &Connection,
    user_id: i64,
    event_type: &str,
    at: i64,
    message: impl FnOnce() -> StoreResult<Message>,
) -> StoreResult<()> {
    let targets: Vec<i64> = list(c, user_id)?
        .into_iter()
        .filter(|w| w.events.iter().any(|e| e == event_type))
        .map(|w| w.id)
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let message = message()?;
    let event_id = crate::secrets::event_id();
    let body = serde_json::json!({
        "id": event_id,
        "type": event_type,
        "timestamp": rfc3339(from_millis(at)),
        "data": MessageView::from(&message),
    })
    .to_string();
    for webhook_id in targets {
        jobs::enqueue(
            c,
            jobs::WEBHOOK,
            &serde_json::json!({ "webhook_id": webhook_id, "event_id": event_id, "body": body }),
            at,
            at,
        )?;
    }
    Ok(())
}
