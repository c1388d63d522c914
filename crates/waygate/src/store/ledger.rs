//! The ledger's lines, the same in every backend.

use waygate_core::money::Money;

/// One line of the append-only ledger; `amount` is negative for a charge.
pub struct Entry<'a> {
    pub user_id: i64,
    pub kind: &'a str,
    pub amount: Money,
    pub message_id: Option<i64>,
    pub reference: Option<&'a str>,
    pub at: i64,
}
