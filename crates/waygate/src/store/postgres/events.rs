//! Events queued for webhook subscriptions in the transaction that makes them.

use deadpool_postgres::GenericClient;
use waygate_core::time::{from_millis, rfc3339};

use super::jobs;
use crate::store::StoreResult;

pub use crate::model::{MESSAGE_RECEIVED, MESSAGE_STATUS, SENDER_STATUS, TEMPLATE_STATUS};

/// Queues one delivery job per live subscription of `user_id` that wants `event_type`,
/// carrying the event body as it is now, so that every retry sends the same bytes. The data
/// (a Message, Template or Sender as the API shows it) is built only when someone subscribed.
/// Subscriptions are read in the same transaction, so a change on another node counts at once.
pub async fn enqueue_event<D: serde::Serialize>(
    c: &impl GenericClient,
    user_id: i64,
    event_type: &str,
    at: i64,
    data: impl FnOnce() -> StoreResult<D>,
) -> StoreResult<()> {
    let stmt = c
        .prepare_cached(
            "SELECT id FROM webhooks WHERE user_id = $1 AND deleted_at IS NULL \
             AND events::jsonb ? $2 ORDER BY id",
        )
        .await?;
    let targets: Vec<i64> = c
        .query(&stmt, &[&user_id, &event_type])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let data = data()?;
    let event_id = crate::secrets::event_id();
    let body = serde_json::json!({
        "id": event_id,
        "type": event_type,
        "timestamp": rfc3339(from_millis(at)),
        "data": data,
    })
    .to_string();
    for webhook_id in targets {
        jobs::enqueue(
            c,
            jobs::WEBHOOK,
            &serde_json::json!({ "webhook_id": webhook_id, "event_id": event_id, "body": body }),
            at,
            at,
        )
        .await?;
    }
    Ok(())
}
