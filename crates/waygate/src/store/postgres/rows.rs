//! Row mappers, one per record, shared by every query that loads it (columns in the order of
//! `store::columns`).

use tokio_postgres::Row;
use waygate_core::money::Money;
use waygate_core::pricing::Category;
use waygate_core::template::TemplateBody;
use waygate_core::template_submission::Button;

use crate::model::*;
pub use crate::store::columns::*;
use crate::store::{StoreError, StoreResult};

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unexpected {what}: {value}"))
}

/// A column read as its Rust type; a type mismatch is a corrupt row, not a panic.
pub(super) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    idx: usize,
) -> StoreResult<T> {
    row.try_get(idx)
        .map_err(|e| StoreError::Corrupt(format!("column {idx}: {e}")))
}

pub(super) fn parsed<T>(
    row: &Row,
    idx: usize,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> StoreResult<T> {
    let text: String = get(row, idx)?;
    parse(&text).ok_or_else(|| corrupt(what, &text))
}

fn json<T: serde::de::DeserializeOwned>(row: &Row, idx: usize) -> StoreResult<T> {
    let text: String = get(row, idx)?;
    serde_json::from_str(&text).map_err(|_| corrupt("JSON", &text))
}

/// A status history stored as its steps joined by commas.
fn status_history(row: &Row, idx: usize) -> StoreResult<Vec<StatusStep>> {
    let steps: String = get(row, idx)?;
    serde_json::from_str(&format!("[{steps}]")).map_err(|_| corrupt("status history", &steps))
}

pub fn sender(row: &Row) -> StoreResult<Sender> {
    Ok(Sender {
        id: get(row, 0)?,
        user_id: get(row, 1)?,
        phone_number: get(row, 2)?,
        display_name: get(row, 3)?,
        status: parsed(row, 4, "sender status", SenderStatus::parse)?,
        quality_rating: parsed(row, 5, "quality rating", QualityRating::parse)?,
        messaging_limit: get(row, 6)?,
        provider: parsed(row, 7, "provider", ProviderKind::parse)?,
        provider_ref: get(row, 8)?,
        waba_id: get(row, 9)?,
    })
}

pub fn template(row: &Row) -> StoreResult<Template> {
    let buttons: String = get(row, 15)?;
    Ok(Template {
        id: get(row, 0)?,
        sender_id: get(row, 1)?,
        name: get(row, 2)?,
        language: get(row, 3)?,
        category: parsed(row, 4, "category", Category::parse)?,
        status: parsed(row, 5, "template status", TemplateStatus::parse)?,
        body: parsed(row, 6, "template body", |text| {
            TemplateBody::parse(text).ok()
        })?,
        variables: json(row, 7)?,
        provider_ref: get(row, 8)?,
        samples: json(row, 9)?,
        header_text: get(row, 10)?,
        footer_text: get(row, 11)?,
        rejection_reason: get(row, 12)?,
        created_at: get(row, 13)?,
        updated_at: get(row, 14)?,
        buttons: serde_json::from_str(&buttons)
            .ok()
            .and_then(|values| Button::parse_all(values).ok())
            .ok_or_else(|| corrupt("template buttons", &buttons))?,
    })
}

pub fn conversation(row: &Row) -> StoreResult<Conversation> {
    Ok(Conversation {
        id: get(row, 0)?,
        user_id: get(row, 1)?,
        sender_id: get(row, 2)?,
        recipient_phone: get(row, 3)?,
        customer_name: get(row, 4)?,
        last_message_at: get(row, 5)?,
        last_customer_message_at: get(row, 6)?,
        last_template_at: get(row, 7)?,
    })
}

pub fn message(row: &Row) -> StoreResult<Message> {
    let media: Option<String> = get(row, 15)?;
    let unknown_since: Option<i64> = get(row, 17)?;
    let unknown_reason: Option<String> = get(row, 18)?;
    Ok(Message {
        id: get(row, 0)?,
        conversation_id: get(row, 1)?,
        user_id: get(row, 2)?,
        direction: parsed(row, 3, "direction", Direction::parse)?,
        sender_id: get(row, 4)?,
        recipient_phone: get(row, 5)?,
        template_id: get(row, 6)?,
        body: get(row, 7)?,
        status: get(row, 8)?,
        message_sid: get(row, 9)?,
        error_code: get(row, 10)?,
        error_message: get(row, 11)?,
        price: Money::from_micros(get(row, 12)?),
        created_at: get(row, 13)?,
        status_history: status_history(row, 14)?,
        media: media
            .map(|text| serde_json::from_str(&text).map_err(|_| corrupt("media JSON", &text)))
            .transpose()?
            .unwrap_or_default(),
        button_payload: get(row, 16)?,
        status_unknown: unknown_since.map(|since| StatusUnknown {
            since,
            reason: unknown_reason.unwrap_or_default(),
        }),
        reply_to_sid: get(row, 19)?,
    })
}

pub fn webhook(row: &Row) -> StoreResult<Webhook> {
    let previous: Option<String> = get(row, 5)?;
    let until: Option<i64> = get(row, 6)?;
    Ok(Webhook {
        id: get(row, 0)?,
        user_id: get(row, 1)?,
        url: get(row, 2)?,
        events: json(row, 3)?,
        secret: get(row, 4)?,
        previous_secret: previous.zip(until),
        created_at: get(row, 7)?,
    })
}

/// Maps every row, stopping at the first corrupt one.
pub fn all<T>(rows: Vec<Row>, map: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(map).collect()
}
