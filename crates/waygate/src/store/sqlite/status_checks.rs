//! Statuses fetched from providers: which accepted messages are due a check (their callbacks
//! may have been lost), and what a check leaves behind. The status itself moves through
//! `messaging::apply_status`, the path every provider report takes.

use rusqlite::{params, Connection};
use waygate_core::status::MessageStatus;

use super::rows::all;
use crate::model::{ProviderKind, StatusUnknown};
use crate::store::{CheckRecorded, StatusCheck, StoreResult};

/// Claims the due checks of messages that may still move; ends those already final.
pub fn claim(c: &Connection, now: i64, lease_ms: i64, limit: i64) -> StoreResult<Vec<StatusCheck>> {
    let due = all(
        c,
        "SELECT ms.message_id, ms.status, ms.rechecks, m.message_sid, m.created_at, s.provider \
         FROM message_status ms JOIN messages m ON m.id = ms.message_id \
         JOIN senders s ON s.id = m.sender_id \
         WHERE ms.recheck_at <= ?1 ORDER BY ms.recheck_at LIMIT ?2",
        params![now, limit],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
            ))
        },
    )?;
    let mut reschedule =
        c.prepare_cached("UPDATE message_status SET recheck_at = ?2 WHERE message_id = ?1")?;
    let mut checks = Vec::with_capacity(due.len());
    for (message_id, status, rechecks, sid, created_at, provider) in due {
        let settled = MessageStatus::parse(&status).is_none_or(MessageStatus::is_final);
        match (settled, sid, ProviderKind::parse(&provider)) {
            (false, Some(sid), Some(provider)) => {
                reschedule.execute(params![message_id, now + lease_ms])?;
                checks.push(StatusCheck {
                    message_id,
                    sid,
                    provider,
                    created_at,
                    rechecks,
                });
            }
            _ => {
                reschedule.execute(params![message_id, None::<i64>])?;
            }
        }
    }
    Ok(checks)
}

pub fn record(c: &Connection, message_id: i64, check: &CheckRecorded) -> StoreResult<()> {
    let (since, reason) = match &check.unknown {
        Some(StatusUnknown { since, reason }) => (Some(*since), Some(reason.as_str())),
        None => (None, None),
    };
    c.prepare_cached(
        "UPDATE message_status SET recheck_at = ?2, rechecks = rechecks + 1, \
         status_unknown_since = CASE WHEN ?3 IS NULL THEN NULL \
                                     ELSE COALESCE(status_unknown_since, ?3) END, \
         status_unknown_reason = ?4 \
         WHERE message_id = ?1",
    )?
    .execute(params![message_id, check.next_at, since, reason])?;
    Ok(())
}

/// Marks a message whose send could not be settled with its provider.
pub fn mark_unknown(c: &Connection, message_id: i64, reason: &str, now: i64) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE message_status SET status_unknown_since = COALESCE(status_unknown_since, ?2), \
         status_unknown_reason = ?3 WHERE message_id = ?1",
    )?
    .execute(params![message_id, now, reason])?;
    Ok(())
}

/// Records that a message's send is settled (accepted or refused by the provider): no longer
/// of unknown fate, and due a status check at `recheck_at` if its reports can be lost.
pub fn send_settled(c: &Connection, message_id: i64, recheck_at: Option<i64>) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE message_status SET recheck_at = ?2, status_unknown_since = NULL, \
         status_unknown_reason = NULL WHERE message_id = ?1",
    )?
    .execute(params![message_id, recheck_at])?;
    Ok(())
}

pub fn unknown_count(c: &Connection) -> StoreResult<i64> {
    Ok(c.prepare_cached(
        "SELECT COUNT(*) FROM message_status WHERE status_unknown_since IS NOT NULL",
    )?
    .query_row([], |r| r.get(0))?)
}
