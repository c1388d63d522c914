//! Messages whose status is due to be fetched from their provider.

use super::PgStore;
use crate::model::*;
use crate::store::*;
use waygate_core::money::Money;

pub async fn claim_status_checks(
    s: &PgStore,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> StoreResult<Vec<StatusCheck>> {
    let _ = (s, now, lease_ms, limit);
    todo!("status_checks::claim_status_checks")
}

pub async fn record_status_check(
    s: &PgStore,
    message_id: i64,
    check: CheckRecorded,
) -> StoreResult<()> {
    let _ = (s, message_id, check);
    todo!("status_checks::record_status_check")
}
