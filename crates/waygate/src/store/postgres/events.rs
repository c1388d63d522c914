//! Events queued for webhook subscriptions in the transaction that makes them.

use deadpool_postgres::GenericClient;

use super::jobs;
use crate::store::{outbox, StoreResult};

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
    let (event_id, body) = outbox::event(event_type, at, data()?);
    for webhook_id in targets {
        let delivery = outbox::delivery(webhook_id, &event_id, &body);
        jobs::enqueue(c, jobs::WEBHOOK, &delivery, at, at).await?;
    }
    Ok(())
}
