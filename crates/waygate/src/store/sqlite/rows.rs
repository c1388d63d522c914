//! Column lists and row mappers, one per record, shared by every query that loads it.

use rusqlite::{Connection, OptionalExtension, Params, Row};
use waygate_core::money::Money;
use waygate_core::pricing::Category;
use waygate_core::template::TemplateBody;
use waygate_core::template_submission::Button;

use crate::model::*;
pub use crate::store::columns::*;
use crate::store::{StoreError, StoreResult};

fn corrupt(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unexpected {what}: {value}").into(),
    )
}

pub fn parsed<T>(
    row: &Row<'_>,
    idx: usize,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    parse(&text).ok_or_else(|| corrupt(what, &text))
}

fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|_| corrupt("JSON", &text))
}

/// A status history stored as its steps joined by commas (`messaging::history_text`).
fn status_history(row: &Row<'_>, idx: usize) -> rusqlite::Result<Vec<StatusStep>> {
    let steps: String = row.get(idx)?;
    serde_json::from_str(&format!("[{steps}]")).map_err(|_| corrupt("status history", &steps))
}

pub fn sender(row: &Row<'_>) -> rusqlite::Result<Sender> {
    Ok(Sender {
        id: row.get(0)?,
        user_id: row.get(1)?,
        phone_number: row.get(2)?,
        display_name: row.get(3)?,
        status: parsed(row, 4, "sender status", SenderStatus::parse)?,
        quality_rating: parsed(row, 5, "quality rating", QualityRating::parse)?,
        messaging_limit: row.get(6)?,
        provider: parsed(row, 7, "provider", ProviderKind::parse)?,
        provider_ref: row.get(8)?,
        waba_id: row.get(9)?,
    })
}

pub fn template(row: &Row<'_>) -> rusqlite::Result<Template> {
    Ok(Template {
        id: row.get(0)?,
        sender_id: row.get(1)?,
        name: row.get(2)?,
        language: row.get(3)?,
        category: parsed(row, 4, "category", Category::parse)?,
        status: parsed(row, 5, "template status", TemplateStatus::parse)?,
        body: parsed(row, 6, "template body", |text| {
            TemplateBody::parse(text).ok()
        })?,
        variables: json(row, 7)?,
        provider_ref: row.get(8)?,
        samples: json(row, 9)?,
        header_text: row.get(10)?,
        footer_text: row.get(11)?,
        rejection_reason: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
        buttons: Button::parse_all(json(row, 15)?).map_err(|_| {
            corrupt(
                "template buttons",
                &row.get::<_, String>(15).unwrap_or_default(),
            )
        })?,
    })
}

pub fn conversation(row: &Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: row.get(0)?,
        user_id: row.get(1)?,
        sender_id: row.get(2)?,
        recipient_phone: row.get(3)?,
        customer_name: row.get(4)?,
        last_message_at: row.get(5)?,
        last_customer_message_at: row.get(6)?,
        last_template_at: row.get(7)?,
    })
}

pub fn message(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: row.get(0)?,
        conversation_id: row.get(1)?,
        user_id: row.get(2)?,
        direction: parsed(row, 3, "direction", Direction::parse)?,
        sender_id: row.get(4)?,
        recipient_phone: row.get(5)?,
        template_id: row.get(6)?,
        body: row.get(7)?,
        status: row.get(8)?,
        message_sid: row.get(9)?,
        error_code: row.get(10)?,
        error_message: row.get(11)?,
        price: Money::from_micros(row.get(12)?),
        created_at: row.get(13)?,
        status_history: status_history(row, 14)?,
        media: row
            .get::<_, Option<String>>(15)?
            .map(|text| serde_json::from_str(&text).map_err(|_| corrupt("media JSON", &text)))
            .transpose()?
            .unwrap_or_default(),
        button_payload: row.get(16)?,
        status_unknown: match (
            row.get::<_, Option<i64>>(17)?,
            row.get::<_, Option<String>>(18)?,
        ) {
            (Some(since), reason) => Some(StatusUnknown {
                since,
                reason: reason.unwrap_or_default(),
            }),
            (None, _) => None,
        },
        reply_to_sid: row.get(19)?,
    })
}

pub fn webhook(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    let previous: Option<String> = row.get(5)?;
    let until: Option<i64> = row.get(6)?;
    Ok(Webhook {
        id: row.get(0)?,
        user_id: row.get(1)?,
        url: row.get(2)?,
        events: json(row, 3)?,
        secret: row.get(4)?,
        previous_secret: previous.zip(until),
        created_at: row.get(7)?,
    })
}

/// One row or none, through a cached statement.
pub fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Option<T>> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params, map)
        .optional()?)
}

/// Every row, through a cached statement.
pub fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, map)?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::from)
}
