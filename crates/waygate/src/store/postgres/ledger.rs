//! Balances and the append-only ledger that explains them.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::Type;
use waygate_core::money::Money;

use crate::store::StoreResult;

pub use crate::store::ledger::Entry;

/// Appends a ledger entry and moves the balance with it; `false` when the balance would go
/// below zero (nothing written).
pub async fn post_entry(c: &impl GenericClient, entry: &Entry<'_>) -> StoreResult<bool> {
    if !move_balance(c, entry.user_id, entry.amount).await? {
        return Ok(false);
    }
    record_entry(c, entry).await?;
    Ok(true)
}

/// Adds `amount` to the balance unless that would take it below zero or past the largest
/// amount; returns whether it moved. The row lock it takes orders concurrent charges of one
/// user across nodes. Pair it with `record_entry` in the same transaction.
pub async fn move_balance(
    c: &impl GenericClient,
    user_id: i64,
    amount: Money,
) -> StoreResult<bool> {
    let stmt = c
        .prepare_typed_cached(
            "UPDATE balances SET micros = micros + $2 \
             WHERE user_id = $1 AND micros::numeric + $2::numeric BETWEEN 0 AND 9223372036854775807",
            &[Type::INT8, Type::INT8],
        )
        .await?;
    Ok(c.execute(&stmt, &[&user_id, &amount.micros()]).await? == 1)
}

/// The ledger line for a balance move made by `move_balance`.
pub async fn record_entry(c: &impl GenericClient, e: &Entry<'_>) -> StoreResult<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO ledger_entries (user_id, kind, amount_micros, message_id, reference, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    c.execute(
        &stmt,
        &[
            &e.user_id,
            &e.kind,
            &e.amount.micros(),
            &e.message_id,
            &e.reference,
            &e.at,
        ],
    )
    .await?;
    Ok(())
}
