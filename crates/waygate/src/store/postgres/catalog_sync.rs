//! Template and sender readings due from the providers, and what they change.

use super::PgStore;
use crate::model::*;
use crate::store::*;
use waygate_core::money::Money;

pub async fn delete_template(s: &PgStore, id: i64) -> StoreResult<bool> {
    let _ = (s, id);
    todo!("catalog_sync::delete_template")
}

pub async fn claim_template_syncs(
    s: &PgStore,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> StoreResult<Vec<Template>> {
    let _ = (s, now, lease_ms, limit);
    todo!("catalog_sync::claim_template_syncs")
}

pub async fn record_review(
    s: &PgStore,
    template_id: i64,
    review: Review,
    next_at: Option<i64>,
    now: i64,
) -> StoreResult<Option<Template>> {
    let _ = (s, template_id, review, next_at, now);
    todo!("catalog_sync::record_review")
}

pub async fn claim_sender_syncs(
    s: &PgStore,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> StoreResult<Vec<Sender>> {
    let _ = (s, now, lease_ms, limit);
    todo!("catalog_sync::claim_sender_syncs")
}

pub async fn record_sender_report(
    s: &PgStore,
    sender_id: i64,
    report: SenderReport,
    next_at: i64,
    now: i64,
) -> StoreResult<Option<Sender>> {
    let _ = (s, sender_id, report, next_at, now);
    todo!("catalog_sync::record_sender_report")
}
