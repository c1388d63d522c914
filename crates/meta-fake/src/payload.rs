//! The JSON Meta posts (§6.3): the `whatsapp_business_account` envelope, `messages` changes with
//! their metadata, and status elements; several items due together share one body.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::errors::known;
use crate::messages::{Message, Transition};
use crate::server::Shared;

/// One element of a POST: a `statuses[]` entry of a phone number, or a change of its own.
#[derive(Clone, Debug)]
pub(crate) enum Item {
    Status {
        phone_number_id: String,
        status: Value,
    },
    Change(Value),
}

/// Unix seconds as a string, as every Meta timestamp is.
pub(crate) fn timestamp() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string()
}

/// One `statuses[]` element (§6.3).
pub(crate) fn status_json(message: &Message, transition: Transition) -> Value {
    let mut status = json!({
        "id": message.id,
        "status": transition.status(),
        "timestamp": timestamp(),
        "recipient_id": message.to,
    });
    if let Some(data) = &message.biz_opaque_callback_data {
        status["biz_opaque_callback_data"] = data.clone().into();
    }
    match transition {
        Transition::Failed { code } => {
            let title = known(code).title;
            status["errors"] = json!([{
                "code": code,
                "title": title,
                "message": title,
                "error_data": {"details": title},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }]);
        }
        Transition::Sent | Transition::Delivered => {
            let service = message.category == "service";
            status["pricing"] = json!({
                "billable": !service,
                "pricing_model": "PMP",
                "type": if service { "free_customer_service" } else { "regular" },
                "category": message.category,
            });
        }
        Transition::Read => {}
    }
    status
}

/// The `messages` change of one phone number: metadata plus statuses and/or inbound messages.
pub(crate) fn messages_change(shared: &Shared, phone_number_id: &str, mut value: Value) -> Value {
    let display = shared
        .config
        .phone_number(phone_number_id)
        .map_or("", |p| p.display_phone_number.as_str());
    value["messaging_product"] = "whatsapp".into();
    value["metadata"] = json!({
        "display_phone_number": display,
        "phone_number_id": phone_number_id,
    });
    json!({"field": "messages", "value": value})
}

/// The `whatsapp_business_account` envelope around some changes.
pub(crate) fn envelope(shared: &Shared, changes: Vec<Value>) -> Vec<u8> {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": shared.config.waba_id, "changes": changes}],
    });
    body.to_string().into_bytes()
}

/// One POST's body: the statuses of each phone number gathered in one change, in first-seen
/// order, then the other changes.
pub(crate) fn body(shared: &Shared, items: &[Item]) -> Vec<u8> {
    let mut statuses: Vec<(&str, Vec<Value>)> = Vec::new();
    let mut others = Vec::new();
    for item in items {
        match item {
            Item::Status {
                phone_number_id,
                status,
            } => match statuses.iter_mut().find(|(id, _)| id == phone_number_id) {
                Some((_, list)) => list.push(status.clone()),
                None => statuses.push((phone_number_id, vec![status.clone()])),
            },
            Item::Change(change) => others.push(change.clone()),
        }
    }
    let mut changes: Vec<Value> = statuses
        .into_iter()
        .map(|(id, list)| messages_change(shared, id, json!({ "statuses": list })))
        .collect();
    changes.extend(others);
    envelope(shared, changes)
}
