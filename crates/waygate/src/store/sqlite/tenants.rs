//! Users, API keys, senders, templates and credits.

use rusqlite::{params, Connection, OptionalExtension};
use waygate_core::money::Money;

use super::rows::{self, all, one, SENDER_COLUMNS, TEMPLATE_COLUMNS};
use super::statements::Statements;
use super::webhooks::Subscriptions;
use crate::model::*;
use crate::store::catalog::{sender_change_announced, TemplateLists};
use crate::store::{CreditOutcome, StoreError, StoreResult};

pub fn create_user(c: &Connection, name: &str, email: &str, now: i64) -> StoreResult<User> {
    c.prepare_cached("INSERT INTO users (name, email, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![name, email, now])?;
    let id = c.last_insert_rowid();
    c.prepare_cached("INSERT INTO balances (user_id, micros) VALUES (?1, 0)")?
        .execute([id])?;
    Ok(User {
        id,
        name: name.to_string(),
        email: email.to_string(),
        balance: Money::ZERO,
    })
}

pub fn get_user(c: &Connection, id: i64) -> StoreResult<Option<User>> {
    one(
        c,
        "SELECT u.id, u.name, u.email, b.micros FROM users u JOIN balances b ON b.user_id = u.id \
         WHERE u.id = ?1",
        [id],
        |r| {
            Ok(User {
                id: r.get(0)?,
                name: r.get(1)?,
                email: r.get(2)?,
                balance: Money::from_micros(r.get(3)?),
            })
        },
    )
}

fn user_exists(c: &Connection, id: i64) -> StoreResult<bool> {
    Ok(one(c, "SELECT 1 FROM users WHERE id = ?1", [id], |_| Ok(()))?.is_some())
}

pub fn create_api_key(
    c: &Connection,
    user_id: i64,
    name: &str,
    prefix: &str,
    hash: &[u8],
    now: i64,
) -> StoreResult<Option<ApiKeyRecord>> {
    if !user_exists(c, user_id)? {
        return Ok(None);
    }
    c.prepare_cached(
        "INSERT INTO api_keys (user_id, name, prefix, key_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![user_id, name, prefix, hash, now])?;
    Ok(Some(ApiKeyRecord {
        id: c.last_insert_rowid(),
        user_id,
        name: name.to_string(),
        prefix: prefix.to_string(),
    }))
}

pub fn revoke_api_key(c: &Connection, id: i64, now: i64) -> StoreResult<bool> {
    let changed = c
        .prepare_cached("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")?
        .execute(params![id, now])?;
    Ok(changed == 1)
}

pub fn user_for_key(c: &Connection, hash: &[u8]) -> StoreResult<Option<i64>> {
    one(
        c,
        "SELECT user_id FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
        [hash],
        |r| r.get(0),
    )
}

pub fn create_sender(
    c: &Connection,
    user_id: i64,
    s: &NewSender,
    now: i64,
) -> StoreResult<Option<Sender>> {
    if !user_exists(c, user_id)? {
        return Ok(None);
    }
    c.prepare_cached(
        "INSERT INTO senders (user_id, phone_number, display_name, status, quality_rating, \
         messaging_limit, provider, provider_ref, created_at, waba_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        user_id,
        s.phone_number,
        s.display_name,
        s.status.as_str(),
        s.quality_rating.as_str(),
        s.messaging_limit,
        s.provider.as_str(),
        s.provider_ref,
        now,
        s.waba_id
    ])?;
    let id = c.last_insert_rowid();
    super::catalog_sync::schedule_sender(c, id, now)?;
    get_sender(c, id)
}

pub fn update_sender(
    c: &Connection,
    subscriptions: &Subscriptions,
    id: i64,
    p: &SenderPatch,
    now: i64,
) -> StoreResult<Option<Sender>> {
    let Some(before) = get_sender(c, id)? else {
        return Ok(None);
    };
    c.prepare_cached(
        "UPDATE senders SET status = COALESCE(?2, status), quality_rating = COALESCE(?3, quality_rating), \
         messaging_limit = CASE WHEN ?4 THEN ?5 ELSE messaging_limit END, \
         display_name = COALESCE(?6, display_name) WHERE id = ?1",
    )?
    .execute(params![
        id,
        p.status.map(SenderStatus::as_str),
        p.quality_rating.map(QualityRating::as_str),
        p.messaging_limit.is_some(),
        p.messaging_limit.flatten(),
        p.display_name
    ])?;
    let Some(after) = get_sender(c, id)? else {
        return Ok(None);
    };
    if sender_change_announced(&before, &after) {
        super::catalog_sync::announce_sender(c, subscriptions, &after, now)?;
    }
    Ok(Some(after))
}

pub fn get_sender(c: &Connection, id: i64) -> StoreResult<Option<Sender>> {
    one(
        c,
        &format!("SELECT {SENDER_COLUMNS} FROM senders WHERE id = ?1"),
        [id],
        rows::sender,
    )
}

pub fn sender_by_phone(
    c: &Connection,
    phone: &str,
    provider: ProviderKind,
) -> StoreResult<Option<Sender>> {
    one(
        c,
        &format!("SELECT {SENDER_COLUMNS} FROM senders WHERE phone_number = ?1 AND provider = ?2 ORDER BY id LIMIT 1"),
        params![phone, provider.as_str()],
        rows::sender,
    )
}

pub fn list_senders(
    c: &Connection,
    user_id: i64,
    status: Option<SenderStatus>,
) -> StoreResult<Vec<Sender>> {
    all(
        c,
        &format!("SELECT {SENDER_COLUMNS} FROM senders WHERE user_id = ?1 AND (?2 IS NULL OR status = ?2) ORDER BY id"),
        params![user_id, status.map(SenderStatus::as_str)],
        rows::sender,
    )
}

pub fn create_template(
    c: &Connection,
    sender_id: i64,
    t: &NewTemplate,
    now: i64,
) -> StoreResult<Option<Template>> {
    if get_sender(c, sender_id)?.is_none() {
        return Ok(None);
    }
    let lists = TemplateLists::from(t);
    let inserted = c
        .prepare_cached(
            "INSERT INTO templates (sender_id, name, language, category, status, body_text, variables, \
             provider_ref, samples, header_text, footer_text, rejection_reason, created_at, updated_at, \
             buttons) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14) \
             ON CONFLICT (sender_id, name, language) DO NOTHING",
        )?
        .execute(params![
            sender_id,
            t.name,
            t.language,
            t.category.as_str(),
            t.status.as_str(),
            t.body.as_str(),
            lists.variables,
            t.provider_ref,
            lists.samples,
            t.header_text,
            t.footer_text,
            t.rejection_reason,
            now,
            lists.buttons
        ])?;
    if inserted == 0 {
        return Err(crate::store::StoreError::Conflict(
            "a template with this name and language already exists for this sender",
        ));
    }
    let id = c.last_insert_rowid();
    if let Some(at) = t.sync_at {
        super::catalog_sync::schedule_template(c, id, at)?;
    }
    get_template(c, id)
}

pub fn update_template(
    c: &Connection,
    subscriptions: &Subscriptions,
    id: i64,
    p: &TemplatePatch,
    now: i64,
) -> StoreResult<Option<Template>> {
    let Some(before) = get_template(c, id)? else {
        return Ok(None);
    };
    c.prepare_cached(
        "UPDATE templates SET status = COALESCE(?2, status), \
         provider_ref = CASE WHEN ?3 THEN ?4 ELSE provider_ref END, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![
        id,
        p.status.map(TemplateStatus::as_str),
        p.provider_ref.is_some(),
        p.provider_ref.clone().flatten(),
        now
    ])?;
    let Some(after) = get_template(c, id)? else {
        return Ok(None);
    };
    if after.status != before.status {
        super::catalog_sync::announce_template(c, subscriptions, &after, now)?;
    }
    Ok(Some(after))
}

pub fn get_template(c: &Connection, id: i64) -> StoreResult<Option<Template>> {
    one(
        c,
        &format!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = ?1"),
        [id],
        rows::template,
    )
}

/// The template a provider knows by `provider_ref`, on one of that provider's senders.
pub fn template_by_provider_ref(
    c: &Connection,
    provider_ref: &str,
    provider: ProviderKind,
) -> StoreResult<Option<Template>> {
    let columns = TEMPLATE_COLUMNS
        .split(", ")
        .map(|column| format!("t.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    one(
        c,
        &format!(
            "SELECT {columns} FROM templates t JOIN senders s ON s.id = t.sender_id \
             WHERE t.provider_ref = ?1 AND s.provider = ?2 ORDER BY t.id LIMIT 1"
        ),
        params![provider_ref, provider.as_str()],
        rows::template,
    )
}

pub fn list_templates(
    c: &Connection,
    sender_id: i64,
    status: Option<TemplateStatus>,
) -> StoreResult<Vec<Template>> {
    all(
        c,
        &format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE sender_id = ?1 AND (?2 IS NULL OR status = ?2) ORDER BY id"
        ),
        params![sender_id, status.map(TemplateStatus::as_str)],
        rows::template,
    )
}

pub use crate::store::ledger::Entry;

/// Appends a ledger entry and moves the cached balance with it; `false` when the balance
/// would go below zero (nothing written).
pub fn post_entry(statements: &Statements<'_>, entry: &Entry<'_>) -> StoreResult<bool> {
    if !move_balance(statements, entry.user_id, entry.amount)? {
        return Ok(false);
    }
    record_entry(statements, entry)?;
    Ok(true)
}

/// Adds `amount` to the balance, unless that would take it below zero or past the largest
/// integer (SQLite would store the sum as a REAL); returns whether it moved. Pair it with
/// `record_entry` in the same transaction.
pub fn move_balance(statements: &Statements<'_>, user_id: i64, amount: Money) -> StoreResult<bool> {
    let moved = statements
        .get(
            "UPDATE balances SET micros = micros + ?2 \
             WHERE user_id = ?1 AND micros + ?2 >= 0 AND typeof(micros + ?2) = 'integer'",
        )?
        .execute(params![user_id, amount.micros()])?;
    Ok(moved == 1)
}

/// The ledger line for a balance move made by `move_balance`.
pub fn record_entry(statements: &Statements<'_>, e: &Entry<'_>) -> StoreResult<()> {
    statements.get(
        "INSERT INTO ledger_entries (user_id, kind, amount_micros, message_id, reference, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![e.user_id, e.kind, e.amount.micros(), e.message_id, e.reference, e.at])?;
    Ok(())
}

pub fn credit(
    c: &Connection,
    statements: &Statements<'_>,
    user_id: i64,
    amount: Money,
    reference: &str,
    now: i64,
) -> StoreResult<Option<CreditOutcome>> {
    let Some(user) = get_user(c, user_id)? else {
        return Ok(None);
    };
    let seen = c
        .prepare_cached("SELECT 1 FROM ledger_entries WHERE user_id = ?1 AND kind = 'credit' AND reference = ?2")?
        .query_row(params![user_id, reference], |_| Ok(()))
        .optional()?
        .is_some();
    if seen {
        return Ok(Some(CreditOutcome {
            balance: user.balance,
            created: false,
        }));
    }
    // Checked here, not by SQLite: its integer overflow would store the sum as a REAL.
    let balance = user
        .balance
        .checked_add(amount)
        .ok_or(StoreError::BalanceOverflow)?;
    let entry = Entry {
        user_id,
        kind: "credit",
        amount,
        message_id: None,
        reference: Some(reference),
        at: now,
    };
    post_entry(statements, &entry)?;
    Ok(Some(CreditOutcome {
        balance,
        created: true,
    }))
}
