//! Users, API keys, senders, templates and credits.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::Type;
use tokio_postgres::Row;
use waygate_core::money::Money;

use super::rows::{self, SENDER_COLUMNS, TEMPLATE_COLUMNS};
use super::{catalog_sync, finish, ledger, PgStore};
use crate::model::*;
use crate::store::catalog::{sender_change_announced, TemplateLists};
use crate::store::*;

/// The user and its balance row, created together so that every user can be charged.
pub async fn create_user(s: &PgStore, name: String, email: String, now: i64) -> StoreResult<User> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let created = insert_user(&tx, name, email, now).await;
    finish(tx, created).await
}

async fn insert_user(
    c: &impl GenericClient,
    name: String,
    email: String,
    now: i64,
) -> StoreResult<User> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO users (name, email, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .await?;
    let id: i64 = rows::get(&c.query_one(&stmt, &[&name, &email, &now]).await?, 0)?;
    let stmt = c
        .prepare_cached("INSERT INTO balances (user_id, micros) VALUES ($1, 0)")
        .await?;
    c.execute(&stmt, &[&id]).await?;
    Ok(User {
        id,
        name,
        email,
        balance: Money::ZERO,
    })
}

fn user(row: &Row) -> StoreResult<User> {
    Ok(User {
        id: rows::get(row, 0)?,
        name: rows::get(row, 1)?,
        email: rows::get(row, 2)?,
        balance: Money::from_micros(rows::get(row, 3)?),
    })
}

pub async fn get_user(s: &PgStore, id: i64) -> StoreResult<Option<User>> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached(
            "SELECT u.id, u.name, u.email, b.micros FROM users u JOIN balances b ON b.user_id = u.id \
             WHERE u.id = $1",
        )
        .await?;
    c.query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(user)
        .transpose()
}

/// `None` when the user does not exist; one statement, so the check and the insert agree.
pub async fn create_api_key(
    s: &PgStore,
    user_id: i64,
    name: String,
    prefix: String,
    hash: Vec<u8>,
    now: i64,
) -> StoreResult<Option<ApiKeyRecord>> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_typed_cached(
            "INSERT INTO api_keys (user_id, name, prefix, key_hash, created_at) \
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1) \
             RETURNING id",
            &[Type::INT8, Type::TEXT, Type::TEXT, Type::BYTEA, Type::INT8],
        )
        .await?;
    let Some(row) = c
        .query_opt(&stmt, &[&user_id, &name, &prefix, &hash, &now])
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(ApiKeyRecord {
        id: rows::get(&row, 0)?,
        user_id,
        name,
        prefix,
    }))
}

/// False when the key does not exist or was already revoked.
pub async fn revoke_api_key(s: &PgStore, id: i64, now: i64) -> StoreResult<bool> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .await?;
    Ok(c.execute(&stmt, &[&id, &now]).await? == 1)
}

pub async fn user_for_key(s: &PgStore, hash: Vec<u8>) -> StoreResult<Option<i64>> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached("SELECT user_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
        .await?;
    c.query_opt(&stmt, &[&hash])
        .await?
        .map(|row| rows::get(&row, 0))
        .transpose()
}

/// `None` when the user does not exist; the sender's first provider reading is due at once.
pub async fn create_sender(
    s: &PgStore,
    user_id: i64,
    sender: NewSender,
    now: i64,
) -> StoreResult<Option<Sender>> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let created = insert_sender(&tx, user_id, sender, now).await;
    finish(tx, created).await
}

async fn insert_sender(
    c: &impl GenericClient,
    user_id: i64,
    sender: NewSender,
    now: i64,
) -> StoreResult<Option<Sender>> {
    let stmt = c
        .prepare_typed_cached(
            &format!(
                "INSERT INTO senders (user_id, phone_number, display_name, status, quality_rating, \
                 messaging_limit, provider, provider_ref, created_at, waba_id) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
                 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1) RETURNING {SENDER_COLUMNS}"
            ),
            &[
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::TEXT,
            ],
        )
        .await?;
    let Some(row) = c
        .query_opt(
            &stmt,
            &[
                &user_id,
                &sender.phone_number,
                &sender.display_name,
                &sender.status.as_str(),
                &sender.quality_rating.as_str(),
                &sender.messaging_limit,
                &sender.provider.as_str(),
                &sender.provider_ref,
                &now,
                &sender.waba_id,
            ],
        )
        .await?
    else {
        return Ok(None);
    };
    let created = rows::sender(&row)?;
    catalog_sync::schedule_sender(c, created.id, now).await?;
    Ok(Some(created))
}

/// Locks the sender for the change, so that of two concurrent updates each compares against
/// what the other left and a change is announced once.
pub async fn update_sender(
    s: &PgStore,
    id: i64,
    patch: SenderPatch,
    now: i64,
) -> StoreResult<Option<Sender>> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let updated = patch_sender(&tx, id, patch, now).await;
    finish(tx, updated).await
}

async fn patch_sender(
    c: &impl GenericClient,
    id: i64,
    patch: SenderPatch,
    now: i64,
) -> StoreResult<Option<Sender>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {SENDER_COLUMNS} FROM senders WHERE id = $1 FOR NO KEY UPDATE"
        ))
        .await?;
    let Some(before) = c.query_opt(&stmt, &[&id]).await? else {
        return Ok(None);
    };
    let before = rows::sender(&before)?;
    let stmt = c
        .prepare_typed_cached(
            &format!(
                "UPDATE senders SET status = COALESCE($2, status), \
                 quality_rating = COALESCE($3, quality_rating), \
                 messaging_limit = CASE WHEN $4 THEN $5 ELSE messaging_limit END, \
                 display_name = COALESCE($6, display_name) WHERE id = $1 RETURNING {SENDER_COLUMNS}"
            ),
            &[
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::BOOL,
                Type::INT8,
                Type::TEXT,
            ],
        )
        .await?;
    let row = c
        .query_one(
            &stmt,
            &[
                &id,
                &patch.status.map(SenderStatus::as_str),
                &patch.quality_rating.map(QualityRating::as_str),
                &patch.messaging_limit.is_some(),
                &patch.messaging_limit.flatten(),
                &patch.display_name,
            ],
        )
        .await?;
    let after = rows::sender(&row)?;
    if sender_change_announced(&before, &after) {
        catalog_sync::announce_sender(c, &after, now).await?;
    }
    Ok(Some(after))
}

pub async fn get_sender(s: &PgStore, id: i64) -> StoreResult<Option<Sender>> {
    let c = s.conn().await?;
    sender_by_id(&c, id).await
}

/// The sender `id`, read by `c` (a client, or the transaction that changes it).
pub async fn sender_by_id(c: &impl GenericClient, id: i64) -> StoreResult<Option<Sender>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {SENDER_COLUMNS} FROM senders WHERE id = $1"
        ))
        .await?;
    c.query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(rows::sender)
        .transpose()
}

pub async fn sender_by_phone(
    s: &PgStore,
    phone: String,
    provider: ProviderKind,
) -> StoreResult<Option<Sender>> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {SENDER_COLUMNS} FROM senders WHERE phone_number = $1 AND provider = $2 \
             ORDER BY id LIMIT 1"
        ))
        .await?;
    c.query_opt(&stmt, &[&phone, &provider.as_str()])
        .await?
        .as_ref()
        .map(rows::sender)
        .transpose()
}

pub async fn list_senders(
    s: &PgStore,
    user_id: i64,
    status: Option<SenderStatus>,
) -> StoreResult<Vec<Sender>> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_typed_cached(
            &format!(
                "SELECT {SENDER_COLUMNS} FROM senders WHERE user_id = $1 \
                 AND ($2::text IS NULL OR status = $2) ORDER BY id"
            ),
            &[Type::INT8, Type::TEXT],
        )
        .await?;
    let found = c
        .query(&stmt, &[&user_id, &status.map(SenderStatus::as_str)])
        .await?;
    rows::all(found, rows::sender)
}

/// `None` when the sender does not exist; a name and language already used on the sender is
/// a conflict, also when another node created it a moment before.
pub async fn create_template(
    s: &PgStore,
    sender_id: i64,
    template: NewTemplate,
    now: i64,
) -> StoreResult<Option<Template>> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let created = insert_template(&tx, sender_id, template, now).await;
    finish(tx, created).await
}

async fn insert_template(
    c: &impl GenericClient,
    sender_id: i64,
    template: NewTemplate,
    now: i64,
) -> StoreResult<Option<Template>> {
    if sender_by_id(c, sender_id).await?.is_none() {
        return Ok(None);
    }
    let lists = TemplateLists::from(&template);
    let stmt = c
        .prepare_cached(&format!(
            "INSERT INTO templates (sender_id, name, language, category, status, body_text, variables, \
             provider_ref, samples, header_text, footer_text, rejection_reason, created_at, updated_at, \
             buttons) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14) \
             ON CONFLICT (sender_id, name, language) DO NOTHING RETURNING {TEMPLATE_COLUMNS}"
        ))
        .await?;
    let Some(row) = c
        .query_opt(
            &stmt,
            &[
                &sender_id,
                &template.name,
                &template.language,
                &template.category.as_str(),
                &template.status.as_str(),
                &template.body.as_str(),
                &lists.variables,
                &template.provider_ref,
                &lists.samples,
                &template.header_text,
                &template.footer_text,
                &template.rejection_reason,
                &now,
                &lists.buttons,
            ],
        )
        .await?
    else {
        return Err(StoreError::Conflict(
            "a template with this name and language already exists for this sender",
        ));
    };
    let created = rows::template(&row)?;
    if let Some(at) = template.sync_at {
        catalog_sync::schedule_template(c, created.id, at).await?;
    }
    Ok(Some(created))
}

/// Locks the template for the change, so that a new status is announced once.
pub async fn update_template(
    s: &PgStore,
    id: i64,
    patch: TemplatePatch,
    now: i64,
) -> StoreResult<Option<Template>> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let updated = patch_template(&tx, id, patch, now).await;
    finish(tx, updated).await
}

async fn patch_template(
    c: &impl GenericClient,
    id: i64,
    patch: TemplatePatch,
    now: i64,
) -> StoreResult<Option<Template>> {
    let stmt = c
        .prepare_cached("SELECT status FROM templates WHERE id = $1 FOR NO KEY UPDATE")
        .await?;
    let Some(before) = c.query_opt(&stmt, &[&id]).await? else {
        return Ok(None);
    };
    let before: String = rows::get(&before, 0)?;
    let stmt = c
        .prepare_typed_cached(
            &format!(
                "UPDATE templates SET status = COALESCE($2, status), \
                 provider_ref = CASE WHEN $3 THEN $4 ELSE provider_ref END, updated_at = $5 \
                 WHERE id = $1 RETURNING {TEMPLATE_COLUMNS}"
            ),
            &[Type::INT8, Type::TEXT, Type::BOOL, Type::TEXT, Type::INT8],
        )
        .await?;
    let row = c
        .query_one(
            &stmt,
            &[
                &id,
                &patch.status.map(TemplateStatus::as_str),
                &patch.provider_ref.is_some(),
                &patch.provider_ref.flatten(),
                &now,
            ],
        )
        .await?;
    let after = rows::template(&row)?;
    if after.status.as_str() != before {
        catalog_sync::announce_template(c, &after, now).await?;
    }
    Ok(Some(after))
}

pub async fn get_template(s: &PgStore, id: i64) -> StoreResult<Option<Template>> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = $1"
        ))
        .await?;
    c.query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(rows::template)
        .transpose()
}

/// The template a provider knows by `provider_ref`, on one of that provider's senders.
pub async fn template_by_provider_ref(
    s: &PgStore,
    provider_ref: String,
    provider: ProviderKind,
) -> StoreResult<Option<Template>> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE provider_ref = $1 \
             AND sender_id IN (SELECT id FROM senders WHERE provider = $2) ORDER BY id LIMIT 1"
        ))
        .await?;
    c.query_opt(&stmt, &[&provider_ref, &provider.as_str()])
        .await?
        .as_ref()
        .map(rows::template)
        .transpose()
}

pub async fn list_templates(
    s: &PgStore,
    sender_id: i64,
    status: Option<TemplateStatus>,
) -> StoreResult<Vec<Template>> {
    let c = s.conn().await?;
    let stmt = c
        .prepare_typed_cached(
            &format!(
                "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE sender_id = $1 \
                 AND ($2::text IS NULL OR status = $2) ORDER BY id"
            ),
            &[Type::INT8, Type::TEXT],
        )
        .await?;
    let found = c
        .query(&stmt, &[&sender_id, &status.map(TemplateStatus::as_str)])
        .await?;
    rows::all(found, rows::template)
}

/// Credits once per (user, reference). The balance row is locked first, which orders every
/// credit and charge of the user across nodes and gives the exact balance to answer with;
/// the reference's unique index decides whether this credit is the first.
pub async fn credit(
    s: &PgStore,
    user_id: i64,
    amount: Money,
    reference: String,
    now: i64,
) -> StoreResult<Option<CreditOutcome>> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await?;
    let outcome = credit_once(&tx, user_id, amount, &reference, now).await;
    finish(tx, outcome).await
}

async fn credit_once(
    c: &impl GenericClient,
    user_id: i64,
    amount: Money,
    reference: &str,
    now: i64,
) -> StoreResult<Option<CreditOutcome>> {
    let stmt = c
        .prepare_cached("SELECT micros FROM balances WHERE user_id = $1 FOR NO KEY UPDATE")
        .await?;
    let Some(row) = c.query_opt(&stmt, &[&user_id]).await? else {
        return Ok(None);
    };
    let balance = Money::from_micros(rows::get(&row, 0)?);
    let stmt = c
        .prepare_cached(
            "INSERT INTO ledger_entries (user_id, kind, amount_micros, reference, created_at) \
             VALUES ($1, 'credit', $2, $3, $4) \
             ON CONFLICT (user_id, reference) WHERE kind = 'credit' DO NOTHING",
        )
        .await?;
    let first = c
        .execute(&stmt, &[&user_id, &amount.micros(), &reference, &now])
        .await?
        == 1;
    if !first {
        return Ok(Some(CreditOutcome {
            balance,
            created: false,
        }));
    }
    let balance = balance
        .checked_add(amount)
        .ok_or(StoreError::BalanceOverflow)?;
    if !ledger::move_balance(c, user_id, amount).await? {
        return Err(StoreError::BalanceOverflow);
    }
    Ok(Some(CreditOutcome {
        balance,
        created: true,
    }))
}
