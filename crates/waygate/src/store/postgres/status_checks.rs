//! Statuses fetched from providers: which accepted messages are due a check (their callbacks
//! may have been lost), and what a check leaves behind. The status itself moves through
//! `messaging::apply_status`, the path every provider report takes.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::Type;
use waygate_core::status::MessageStatus;

use super::rows::get;
use super::PgStore;
use crate::model::*;
use crate::store::*;

/// Claims the due checks of messages that may still move, and ends those already final.
/// Rows another node is claiming are skipped; one it has just leased no longer matches when
/// rechecked, so no check is handed out twice.
pub async fn claim_status_checks(
    s: &PgStore,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> StoreResult<Vec<StatusCheck>> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let stmt = tx
        .prepare_typed_cached(
            "SELECT ms.message_id, ms.status, ms.rechecks, m.message_sid, m.created_at, s.provider \
             FROM message_status ms JOIN messages m ON m.id = ms.message_id \
             JOIN senders s ON s.id = m.sender_id \
             WHERE ms.recheck_at <= $1 ORDER BY ms.recheck_at LIMIT $2 \
             FOR UPDATE OF ms SKIP LOCKED",
            &[Type::INT8, Type::INT8],
        )
        .await?;
    let due = tx.query(&stmt, &[&now, &limit]).await?;
    let mut claimed = Vec::with_capacity(due.len());
    let mut checks = Vec::with_capacity(due.len());
    for row in &due {
        let message_id: i64 = get(row, 0)?;
        let status: &str = get(row, 1)?;
        let sid: Option<String> = get(row, 3)?;
        let provider: &str = get(row, 5)?;
        claimed.push(message_id);
        let settled = MessageStatus::parse(status).is_none_or(MessageStatus::is_final);
        if let (false, Some(sid), Some(provider)) = (settled, sid, ProviderKind::parse(provider)) {
            checks.push(StatusCheck {
                message_id,
                sid,
                provider,
                created_at: get(row, 4)?,
                rechecks: get(row, 2)?,
            });
        }
    }
    if !claimed.is_empty() {
        let leased: Vec<i64> = checks.iter().map(|check| check.message_id).collect();
        let stmt = tx
            .prepare_typed_cached(
                "UPDATE message_status SET recheck_at = CASE WHEN message_id = ANY($2) THEN $3 END \
                 WHERE message_id = ANY($1)",
                &[Type::INT8_ARRAY, Type::INT8_ARRAY, Type::INT8],
            )
            .await?;
        tx.execute(&stmt, &[&claimed, &leased, &(now + lease_ms)])
            .await?;
    }
    tx.commit().await?;
    Ok(checks)
}

pub async fn record_status_check(
    s: &PgStore,
    message_id: i64,
    check: CheckRecorded,
) -> StoreResult<()> {
    let (since, reason) = match &check.unknown {
        Some(StatusUnknown { since, reason }) => (Some(*since), Some(reason.as_str())),
        None => (None, None),
    };
    let c = s.conn().await?;
    let stmt = c
        .prepare_typed_cached(
            "UPDATE message_status SET recheck_at = $2, rechecks = rechecks + 1, \
             status_unknown_since = CASE WHEN $3 IS NULL THEN NULL \
                                         ELSE COALESCE(status_unknown_since, $3) END, \
             status_unknown_reason = $4 \
             WHERE message_id = $1",
            &[Type::INT8, Type::INT8, Type::INT8, Type::TEXT],
        )
        .await?;
    c.execute(&stmt, &[&message_id, &check.next_at, &since, &reason])
        .await?;
    Ok(())
}

/// Marks a message whose send could not be settled with its provider.
pub(super) async fn mark_unknown(
    c: &impl GenericClient,
    message_id: i64,
    reason: &str,
    now: i64,
) -> StoreResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE message_status SET status_unknown_since = COALESCE(status_unknown_since, $2), \
             status_unknown_reason = $3 WHERE message_id = $1",
        )
        .await?;
    c.execute(&stmt, &[&message_id, &now, &reason]).await?;
    Ok(())
}

/// Records that a message's send is settled (accepted or refused by the provider): no longer
/// of unknown fate, and due a status check at `recheck_at` if its reports can be lost.
pub(super) async fn send_settled(
    c: &impl GenericClient,
    message_id: i64,
    recheck_at: Option<i64>,
) -> StoreResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE message_status SET recheck_at = $2, status_unknown_since = NULL, \
             status_unknown_reason = NULL WHERE message_id = $1",
        )
        .await?;
    c.execute(&stmt, &[&message_id, &recheck_at]).await?;
    Ok(())
}
