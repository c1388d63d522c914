//! Webhook subscriptions.

use super::PgStore;
use crate::model::*;
use crate::store::*;
use waygate_core::money::Money;

pub async fn create_webhook(
    s: &PgStore,
    user_id: i64,
    url: String,
    events: Vec<String>,
    secret: String,
    now: i64,
) -> StoreResult<Webhook> {
    let _ = (s, user_id, url, events, secret, now);
    todo!("webhooks::create_webhook")
}

pub async fn list_webhooks(s: &PgStore, user_id: i64) -> StoreResult<Vec<Webhook>> {
    let _ = (s, user_id);
    todo!("webhooks::list_webhooks")
}

pub async fn get_webhook(s: &PgStore, id: i64) -> StoreResult<Option<Webhook>> {
    let _ = (s, id);
    todo!("webhooks::get_webhook")
}

pub async fn delete_webhook(s: &PgStore, id: i64, now: i64) -> StoreResult<bool> {
    let _ = (s, id, now);
    todo!("webhooks::delete_webhook")
}

pub async fn rotate_webhook_secret(
    s: &PgStore,
    id: i64,
    secret: String,
    old_valid_until: i64,
) -> StoreResult<bool> {
    let _ = (s, id, secret, old_valid_until);
    todo!("webhooks::rotate_webhook_secret")
}
