//! Webhook subscriptions. `events::enqueue_event` reads them in the transaction of each
//! event; a change made here also drops this node's list of who may want events.

use super::rows::{self, WEBHOOK_COLUMNS};
use super::PgStore;
use crate::model::*;
use crate::store::catalog::json_list;
use crate::store::*;

pub async fn create_webhook(
    s: &PgStore,
    user_id: i64,
    url: String,
    events: Vec<String>,
    secret: String,
    now: i64,
) -> StoreResult<Webhook> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached(
            "INSERT INTO webhooks (user_id, url, events, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .await?;
    let row = c
        .query_one(&stmt, &[&user_id, &url, &json_list(&events), &secret, &now])
        .await?;
    s.subscriptions.changed().await;
    Ok(Webhook {
        id: rows::get(&row, 0)?,
        user_id,
        url,
        events,
        secret,
        previous_secret: None,
        created_at: now,
    })
}

pub async fn list_webhooks(s: &PgStore, user_id: i64) -> StoreResult<Vec<Webhook>> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE user_id = $1 AND deleted_at IS NULL \
             ORDER BY id"
        ))
        .await?;
    rows::all(c.query(&stmt, &[&user_id]).await?, rows::webhook)
}

pub async fn get_webhook(s: &PgStore, id: i64) -> StoreResult<Option<Webhook>> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND deleted_at IS NULL"
        ))
        .await?;
    c.query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(rows::webhook)
        .transpose()
}

/// Marks the subscription deleted (its queued deliveries find it gone); false when it was not
/// live.
pub async fn delete_webhook(s: &PgStore, id: i64, now: i64) -> StoreResult<bool> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached("UPDATE webhooks SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL")
        .await?;
    let deleted = c.execute(&stmt, &[&id, &now]).await? == 1;
    s.subscriptions.changed().await;
    Ok(deleted)
}

/// Installs `secret`, the current one staying valid until `old_valid_until`; one statement,
/// so of two rotations at once the later keeps the earlier's secret as the previous one.
pub async fn rotate_webhook_secret(
    s: &PgStore,
    id: i64,
    secret: String,
    old_valid_until: i64,
) -> StoreResult<bool> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached(
            "UPDATE webhooks SET previous_secret = secret, previous_secret_until = $3, secret = $2 \
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .await?;
    Ok(c.execute(&stmt, &[&id, &secret, &old_valid_until]).await? == 1)
}
