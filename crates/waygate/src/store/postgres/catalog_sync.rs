//! Templates' and senders' statuses read back from their providers: when each is next due,
//! and what a reading changes. Any node may read: a due row is claimed with
//! `FOR UPDATE SKIP LOCKED` and leased by moving its `due_at`, so two nodes never read the
//! same one at once. A change is written by a conditional `UPDATE`, so however often (and on
//! however many nodes) a provider repeats it, it is written and announced once, as a
//! `template.status` / `sender.status` event in the same transaction.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::Type;

use super::events::{self, SENDER_STATUS, TEMPLATE_STATUS};
use super::finish;
use super::rows::{self, SENDER_COLUMNS, TEMPLATE_COLUMNS};
use super::PgStore;
use crate::model::*;
use crate::store::*;
use crate::views::{SenderView, TemplateView};

/// Schedules the template's next reading at `at` (a template deleted meanwhile gets none).
pub async fn schedule_template(
    c: &impl GenericClient,
    template_id: i64,
    at: i64,
) -> StoreResult<()> {
    let stmt = c
        .prepare_typed_cached(
            "INSERT INTO template_sync (template_id, due_at) \
             SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM templates WHERE id = $1) \
             ON CONFLICT (template_id) DO UPDATE SET due_at = EXCLUDED.due_at",
            &[Type::INT8, Type::INT8],
        )
        .await?;
    c.execute(&stmt, &[&template_id, &at]).await?;
    Ok(())
}

/// Schedules the sender's next reading at `at`.
pub async fn schedule_sender(c: &impl GenericClient, sender_id: i64, at: i64) -> StoreResult<()> {
    let stmt = c
        .prepare_typed_cached(
            "INSERT INTO sender_sync (sender_id, due_at) \
             SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM senders WHERE id = $1) \
             ON CONFLICT (sender_id) DO UPDATE SET due_at = EXCLUDED.due_at",
            &[Type::INT8, Type::INT8],
        )
        .await?;
    c.execute(&stmt, &[&sender_id, &at]).await?;
    Ok(())
}

/// Deletes a template and its schedule; false when there was none.
pub async fn delete_template(s: &PgStore, id: i64) -> StoreResult<bool> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let deleted = remove_template(&tx, id).await;
    finish(tx, deleted).await
}

/// Ends the template's readings.
async fn unschedule_template(c: &impl GenericClient, template_id: i64) -> StoreResult<()> {
    let stmt = c
        .prepare_cached("DELETE FROM template_sync WHERE template_id = $1")
        .await?;
    c.execute(&stmt, &[&template_id]).await?;
    Ok(())
}

async fn remove_template(c: &impl GenericClient, id: i64) -> StoreResult<bool> {
    unschedule_template(c, id).await?;
    let stmt = c
        .prepare_cached("DELETE FROM templates WHERE id = $1")
        .await?;
    Ok(c.execute(&stmt, &[&id]).await? == 1)
}

/// The statement that claims up to `$3` due rows of `table` for `$2` ms from `$1`, and
/// returns the `record` rows they schedule (those deleted meanwhile are left out), oldest
/// first. Rows another claimer holds are skipped; one it has just leased no longer matches
/// when rechecked, so no row is handed out twice.
fn claim_sql(table: &str, key: &str, record: &str, columns: &str) -> String {
    format!(
        "WITH due AS (SELECT {key} FROM {table} WHERE due_at <= $1 \
                      ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED), \
              leased AS (UPDATE {table} t SET due_at = $1 + $2 FROM due \
                         WHERE t.{key} = due.{key} RETURNING t.{key}) \
         SELECT {columns} FROM {record} WHERE id IN (SELECT {key} FROM leased) ORDER BY id"
    )
}

pub async fn claim_template_syncs(
    s: &PgStore,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> StoreResult<Vec<Template>> {
    let c = s.conn().await?;
    let sql = claim_sql(
        "template_sync",
        "template_id",
        "templates",
        TEMPLATE_COLUMNS,
    );
    let stmt = c
        .prepare_typed_cached(&sql, &[Type::INT8, Type::INT8, Type::INT8])
        .await?;
    let claimed = c.query(&stmt, &[&now, &lease_ms, &limit]).await?;
    rows::all(claimed, rows::template)
}

pub async fn claim_sender_syncs(
    s: &PgStore,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> StoreResult<Vec<Sender>> {
    let c = s.conn().await?;
    let sql = claim_sql("sender_sync", "sender_id", "senders", SENDER_COLUMNS);
    let stmt = c
        .prepare_typed_cached(&sql, &[Type::INT8, Type::INT8, Type::INT8])
        .await?;
    let claimed = c.query(&stmt, &[&now, &lease_ms, &limit]).await?;
    rows::all(claimed, rows::sender)
}

/// Applies what review says of a template and schedules its next reading (`None`: no more);
/// returns the template when it changed.
pub async fn record_review(
    s: &PgStore,
    template_id: i64,
    review: Review,
    next_at: Option<i64>,
    now: i64,
) -> StoreResult<Option<Template>> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let changed = apply_review(&tx, template_id, review, next_at, now).await;
    finish(tx, changed).await
}

async fn apply_review(
    c: &impl GenericClient,
    template_id: i64,
    review: Review,
    next_at: Option<i64>,
    now: i64,
) -> StoreResult<Option<Template>> {
    match next_at {
        Some(at) => schedule_template(c, template_id, at).await?,
        None => unschedule_template(c, template_id).await?,
    }
    let stmt = c
        .prepare_typed_cached(
            &format!(
                "UPDATE templates SET status = $2, rejection_reason = $3, updated_at = $4 \
                 WHERE id = $1 AND (status <> $2 OR rejection_reason IS DISTINCT FROM $3) \
                 RETURNING {TEMPLATE_COLUMNS}"
            ),
            &[Type::INT8, Type::TEXT, Type::TEXT, Type::INT8],
        )
        .await?;
    let Some(row) = c
        .query_opt(
            &stmt,
            &[
                &template_id,
                &review.status.as_str(),
                &review.rejection_reason,
                &now,
            ],
        )
        .await?
    else {
        return Ok(None);
    };
    let template = rows::template(&row)?;
    announce_template(c, &template, now).await?;
    Ok(Some(template))
}

/// Applies what the provider says of a sender and schedules its next reading; returns the
/// sender when its status, quality rating or messaging limit changed.
pub async fn record_sender_report(
    s: &PgStore,
    sender_id: i64,
    report: SenderReport,
    next_at: i64,
    now: i64,
) -> StoreResult<Option<Sender>> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let changed = apply_sender_report(&tx, sender_id, report, next_at, now).await;
    finish(tx, changed).await
}

async fn apply_sender_report(
    c: &impl GenericClient,
    sender_id: i64,
    report: SenderReport,
    next_at: i64,
    now: i64,
) -> StoreResult<Option<Sender>> {
    schedule_sender(c, sender_id, next_at).await?;
    let stmt = c
        .prepare_typed_cached(
            &format!(
                "UPDATE senders SET status = $2, quality_rating = COALESCE($3, quality_rating), \
                 messaging_limit = $4 \
                 WHERE id = $1 AND (status <> $2 OR quality_rating <> COALESCE($3, quality_rating) \
                                    OR messaging_limit IS DISTINCT FROM $4) \
                 RETURNING {SENDER_COLUMNS}"
            ),
            &[Type::INT8, Type::TEXT, Type::TEXT, Type::INT8],
        )
        .await?;
    let Some(row) = c
        .query_opt(
            &stmt,
            &[
                &sender_id,
                &report.status.as_str(),
                &report.quality_rating.map(|q| q.as_str()),
                &report.messaging_limit,
            ],
        )
        .await?
    else {
        return Ok(None);
    };
    let sender = rows::sender(&row)?;
    announce_sender(c, &sender, now).await?;
    Ok(Some(sender))
}

/// Queues the `template.status` event of a template whose status changed, for its owner.
pub async fn announce_template(
    c: &impl GenericClient,
    template: &Template,
    now: i64,
) -> StoreResult<()> {
    let stmt = c
        .prepare_cached("SELECT user_id FROM senders WHERE id = $1")
        .await?;
    let Some(owner) = c.query_opt(&stmt, &[&template.sender_id]).await? else {
        return Ok(());
    };
    let user_id: i64 = rows::get(&owner, 0)?;
    events::enqueue_event(c, user_id, TEMPLATE_STATUS, now, || {
        Ok(TemplateView::from(template))
    })
    .await
}

/// Queues the `sender.status` event of a sender whose status, quality rating or messaging
/// limit changed.
pub async fn announce_sender(c: &impl GenericClient, sender: &Sender, now: i64) -> StoreResult<()> {
    events::enqueue_event(c, sender.user_id, SENDER_STATUS, now, || {
        Ok(SenderView::from(sender))
    })
    .await
}
