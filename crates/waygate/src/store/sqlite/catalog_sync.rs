//! Templates' and senders' statuses read back from their providers: when each is next due,
//! and what a reading changes. A change is written once, however often a provider repeats
//! it, and announced once as a `template.status` / `sender.status` event in the same
//! transaction.

use rusqlite::{params, Connection};

use super::rows::all;
use super::tenants::{get_sender, get_template};
use super::webhooks::{self, Subscriptions};
use crate::model::{Review, Sender, SenderReport, Template};
use crate::store::StoreResult;
use crate::views::{SenderView, TemplateView};

pub fn schedule_template(c: &Connection, template_id: i64, at: i64) -> StoreResult<()> {
    c.prepare_cached("INSERT OR REPLACE INTO template_sync (template_id, due_at) VALUES (?1, ?2)")?
        .execute(params![template_id, at])?;
    Ok(())
}

pub fn schedule_sender(c: &Connection, sender_id: i64, at: i64) -> StoreResult<()> {
    c.prepare_cached("INSERT OR REPLACE INTO sender_sync (sender_id, due_at) VALUES (?1, ?2)")?
        .execute(params![sender_id, at])?;
    Ok(())
}

/// Claims for `lease_ms` the templates whose reading is due.
pub fn claim_templates(
    c: &Connection,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> StoreResult<Vec<Template>> {
    let ids = claim(c, "template_sync", "template_id", now, lease_ms, limit)?;
    Ok(ids
        .into_iter()
        .map(|id| get_template(c, id))
        .collect::<StoreResult<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect())
}

/// Claims for `lease_ms` the senders whose reading is due.
pub fn claim_senders(
    c: &Connection,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> StoreResult<Vec<Sender>> {
    let ids = claim(c, "sender_sync", "sender_id", now, lease_ms, limit)?;
    Ok(ids
        .into_iter()
        .map(|id| get_sender(c, id))
        .collect::<StoreResult<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect())
}

fn claim(
    c: &Connection,
    table: &str,
    key: &str,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> StoreResult<Vec<i64>> {
    all(
        c,
        &format!(
            "UPDATE {table} SET due_at = ?1 + ?2 WHERE {key} IN \
             (SELECT {key} FROM {table} WHERE due_at <= ?1 ORDER BY due_at LIMIT ?3) RETURNING {key}"
        ),
        params![now, lease_ms, limit],
        |r| r.get(0),
    )
}

/// Applies what review says of a template and schedules its next reading (`None`: no more);
/// returns the template when it changed.
pub fn apply_review(
    c: &Connection,
    subscriptions: &Subscriptions,
    template_id: i64,
    review: &Review,
    next_at: Option<i64>,
    now: i64,
) -> StoreResult<Option<Template>> {
    match next_at {
        Some(at) => schedule_template(c, template_id, at)?,
        None => {
            c.prepare_cached("DELETE FROM template_sync WHERE template_id = ?1")?
                .execute([template_id])?;
        }
    }
    let changed = c
        .prepare_cached(
            "UPDATE templates SET status = ?2, rejection_reason = ?3, updated_at = ?4 \
             WHERE id = ?1 AND (status <> ?2 OR rejection_reason IS NOT ?3)",
        )?
        .execute(params![
            template_id,
            review.status.as_str(),
            review.rejection_reason,
            now
        ])?;
    if changed == 0 {
        return Ok(None);
    }
    let Some(template) = get_template(c, template_id)? else {
        return Ok(None);
    };
    announce_template(c, subscriptions, &template, now)?;
    Ok(Some(template))
}

/// Queues the `template.status` event of a template whose status changed.
pub fn announce_template(
    c: &Connection,
    subscriptions: &Subscriptions,
    template: &Template,
    now: i64,
) -> StoreResult<()> {
    let Some(sender) = get_sender(c, template.sender_id)? else {
        return Ok(());
    };
    webhooks::enqueue_event(
        c,
        subscriptions,
        sender.user_id,
        webhooks::TEMPLATE_STATUS,
        now,
        || Ok(TemplateView::from(template)),
    )
}

/// Queues the `sender.status` event of a sender whose status, quality rating or messaging
/// limit changed.
pub fn announce_sender(
    c: &Connection,
    subscriptions: &Subscriptions,
    sender: &Sender,
    now: i64,
) -> StoreResult<()> {
    webhooks::enqueue_event(
        c,
        subscriptions,
        sender.user_id,
        webhooks::SENDER_STATUS,
        now,
        || Ok(SenderView::from(sender)),
    )
}

/// Applies what the provider says of a sender and schedules its next reading; returns the
/// sender when its status, quality rating or messaging limit changed.
pub fn apply_sender_report(
    c: &Connection,
    subscriptions: &Subscriptions,
    sender_id: i64,
    report: &SenderReport,
    next_at: i64,
    now: i64,
) -> StoreResult<Option<Sender>> {
    schedule_sender(c, sender_id, next_at)?;
    let changed = c
        .prepare_cached(
            "UPDATE senders SET status = ?2, quality_rating = COALESCE(?3, quality_rating), \
             messaging_limit = ?4 \
             WHERE id = ?1 AND (status <> ?2 OR quality_rating <> COALESCE(?3, quality_rating) \
                                OR messaging_limit IS NOT ?4)",
        )?
        .execute(params![
            sender_id,
            report.status.as_str(),
            report.quality_rating.map(|q| q.as_str()),
            report.messaging_limit
        ])?;
    if changed == 0 {
        return Ok(None);
    }
    let Some(sender) = get_sender(c, sender_id)? else {
        return Ok(None);
    };
    announce_sender(c, subscriptions, &sender, now)?;
    Ok(Some(sender))
}

/// Deletes a template and its schedule; false when there was none.
pub fn delete_template(c: &Connection, template_id: i64) -> StoreResult<bool> {
    c.prepare_cached("DELETE FROM template_sync WHERE template_id = ?1")?
        .execute([template_id])?;
    Ok(c.prepare_cached("DELETE FROM templates WHERE id = ?1")?
        .execute([template_id])?
        == 1)
}
