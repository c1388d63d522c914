//! The Graph API handlers: sends (§6.1–6.2), templates and phone numbers (API.md §11), each with
//! its scripted or random faults, plus a stats endpoint for benchmarks.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::conn::Conn;
use crate::errors::GraphError;
use crate::faults::{Fault, ReadEndpoint, ReadFault};
use crate::messages::Message;
use crate::send::{self, Content, TemplateSend};
use crate::server::Shared;
use crate::templates::{self, TemplateStatus};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_fake/stats", get(stats))
        .route("/{version}/{id}", get(read_object))
        .route("/{version}/{id}/messages", post(send_message))
        .route(
            "/{version}/{id}/message_templates",
            post(create_template).delete(delete_template),
        )
        .fallback(unknown_path)
        .method_not_allowed_fallback(unknown_path)
        .with_state(shared)
}

/// Graph versions look like `v23.0`.
fn valid_version(version: &str) -> bool {
    let Some((major, minor)) = version.strip_prefix('v').and_then(|v| v.split_once('.')) else {
        return false;
    };
    [major, minor]
        .iter()
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// The version must be well formed and the bearer token the account's.
fn check(shared: &Shared, version: &str, headers: &HeaderMap) -> Result<(), GraphError> {
    if !valid_version(version) {
        return Err(GraphError::unknown_path(&format!("/{version}")));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match token {
        Some(token) if token == shared.config.access_token => Ok(()),
        Some(_) => Err(GraphError::bad_token(true)),
        None => Err(GraphError::bad_token(false)),
    }
}

/// `POST /{version}/{phone_number_id}/messages`: auth, then the next fault (if any), then
/// validation, then acceptance.
async fn send_message(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.send_requests.fetch_add(1, Ordering::SeqCst);
    if let Err(e) = check(&shared, &version, &headers) {
        return e.into_response();
    }
    let fault = shared.send_fault();
    match fault {
        Some(Fault::ServerError) => return GraphError::internal().into_response(),
        Some(Fault::Error { code }) => return GraphError::code(code, None).into_response(),
        Some(Fault::DropConnection) => {
            conn.kill();
            // Never written: the killed connection fails hyper's write and is closed.
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(Fault::AcceptedThenServerError | Fault::Slow { .. }) | None => {}
    }
    let accepted = match accept(&shared, &phone_number_id, &body) {
        Ok(accepted) => accepted,
        Err(e) => return e.into_response(),
    };
    match fault {
        Some(Fault::AcceptedThenServerError) => GraphError::internal().into_response(),
        Some(Fault::Slow { delay_ms }) => {
            // Accepted before waiting, so a client that gives up still leaves a message behind.
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            accepted
        }
        _ => accepted,
    }
}

/// Validates a send, stores the message, schedules its statuses and builds the 200 answer.
fn accept(shared: &Shared, phone_number_id: &str, body: &[u8]) -> Result<Response, GraphError> {
    if shared.config.phone_number(phone_number_id).is_none() {
        return Err(GraphError::unknown_object(phone_number_id));
    }
    let request = send::parse(body)?;
    let (template, text, category) = match request.content {
        Content::Template(template) => {
            let category = template_category(shared, &template)?;
            (Some(template), None, category)
        }
        Content::Text(text) => (None, Some(text), "service".to_string()),
    };
    let message = Message {
        id: shared.rng.wamid(),
        phone_number_id: phone_number_id.to_string(),
        to: request.to.clone(),
        template,
        text,
        biz_opaque_callback_data: request.biz_opaque_callback_data,
        status: "accepted".to_string(),
        error_code: None,
        category,
    };
    let answer = Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": request.input, "wa_id": request.to}],
        "messages": [{"id": message.id}],
    }))
    .into_response();
    let id = message.id.clone();
    shared.messages.insert(message);
    shared
        .webhooks
        .schedule_message(&id, shared.config.async_failure_for(&request.to));
    Ok(answer)
}

/// The category (lower case, as pricing names it) of the approved template a send names, or
/// Meta's refusal. A template the fake does not know, when allowed, is priced as marketing (the
/// dearest category), since nothing says otherwise.
fn template_category(shared: &Shared, send: &TemplateSend) -> Result<String, GraphError> {
    let missing = || {
        GraphError::code(
            132_001,
            Some(format!(
                "template name ({}) does not exist in {}",
                send.name, send.language
            )),
        )
    };
    let Some(template) = shared.templates.find(&send.name, &send.language) else {
        return if shared.config.known_templates_only {
            Err(missing())
        } else {
            Ok("marketing".to_string())
        };
    };
    match template.status {
        TemplateStatus::Approved if template.placeholders == send.body_parameters.len() => {
            Ok(template.category.to_ascii_lowercase())
        }
        TemplateStatus::Approved => Err(GraphError::code(
            132_000,
            Some(format!(
                "body: number of localizable_params ({}) does not match the expected number \
                 of params ({})",
                send.body_parameters.len(),
                template.placeholders
            )),
        )),
        TemplateStatus::Paused => Err(GraphError::code(132_015, None)),
        TemplateStatus::Disabled => Err(GraphError::code(132_016, None)),
        TemplateStatus::Pending | TemplateStatus::Rejected => Err(missing()),
    }
}

/// `POST /{version}/{waba_id}/message_templates`: a new template, PENDING until reviewed.
async fn create_template(
    State(shared): State<Arc<Shared>>,
    Path((version, waba_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let created = check(&shared, &version, &headers)
        .and_then(|()| own_waba(&shared, &waba_id))
        .and_then(|()| templates::parse_create(&body))
        .and_then(|new| {
            shared
                .templates
                .create(shared.rng.graph_id(), new, TemplateStatus::Pending)
        });
    match created {
        Ok(template) => {
            shared.schedule_review(&template);
            Json(json!({
                "id": template.id,
                "status": template.status.as_str(),
                "category": template.category,
            }))
            .into_response()
        }
        Err(e) => e.into_response(),
    }
}

fn own_waba(shared: &Shared, waba_id: &str) -> Result<(), GraphError> {
    if waba_id == shared.config.waba_id {
        Ok(())
    } else {
        Err(GraphError::unknown_object(waba_id))
    }
}

/// `DELETE /{version}/{waba_id}/message_templates?name=…[&hsm_id=…]`: every language of the
/// name, or the one template with that id.
async fn delete_template(
    State(shared): State<Arc<Shared>>,
    Path((version, waba_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let deleted = check(&shared, &version, &headers)
        .and_then(|()| own_waba(&shared, &waba_id))
        .and_then(|()| {
            let name = query
                .get("name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| GraphError::invalid("The parameter name is required."))?;
            match shared
                .templates
                .delete(name, query.get("hsm_id").map(String::as_str))
            {
                0 => Err(GraphError::invalid(format!(
                    "Message template not found: {name}"
                ))),
                _ => Ok(()),
            }
        });
    match deleted {
        Ok(()) => Json(json!({ "success": true })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Applies the read endpoint's next fault, if any: an answer that replaces the real one, or a
/// delay before it.
async fn read_fault(shared: &Shared, endpoint: ReadEndpoint, conn: &Conn) -> Option<Response> {
    match shared.read_fault(endpoint)? {
        ReadFault::ServerError => Some(GraphError::internal().into_response()),
        ReadFault::RateLimited => Some(GraphError::code(80_007, None).into_response()),
        ReadFault::DropConnection => {
            conn.kill();
            Some(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        ReadFault::Slow { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            None
        }
    }
}

/// `GET /{version}/{id}?fields=…`: a phone number or a template.
async fn read_object(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = check(&shared, &version, &headers) {
        return e.into_response();
    }
    let (endpoint, node) = if shared.phones.get(&id).is_some() {
        (ReadEndpoint::PhoneNumber, "WhatsAppBusinessPhoneNumber")
    } else if shared.templates.get(&id).is_some() {
        (ReadEndpoint::Template, "WhatsAppMessageTemplate")
    } else {
        return GraphError::unknown_object(&id).into_response();
    };
    if let Some(answer) = read_fault(&shared, endpoint, &conn).await {
        return answer;
    }
    // Read after the fault's delay, so a slow answer tells the state at answer time.
    let all = match endpoint {
        ReadEndpoint::PhoneNumber => phone_json(&shared, &id),
        ReadEndpoint::Template => template_json(&shared, &id),
    };
    let Some(all) = all else {
        return GraphError::unknown_object(&id).into_response();
    };
    match select(all, query.get("fields").map(String::as_str), node) {
        Ok(json) => Json(json).into_response(),
        Err(e) => e.into_response(),
    }
}

fn phone_json(shared: &Shared, id: &str) -> Option<Value> {
    let state = shared.phones.get(id)?;
    let number = shared.config.phone_number(id)?;
    Some(json!({
        "id": id,
        "display_phone_number": number.display_phone_number,
        "status": state.status,
        "quality_rating": state.quality_rating,
        "messaging_limit_tier": state.messaging_limit_tier,
    }))
}

fn template_json(shared: &Shared, id: &str) -> Option<Value> {
    let t = shared.templates.get(id)?;
    Some(json!({
        "id": t.id,
        "name": t.name,
        "language": t.language,
        "category": t.category,
        "status": t.status.as_str(),
        "rejected_reason": t.rejected_reason.as_deref().unwrap_or("NONE"),
        "quality_score": {"score": "UNKNOWN"},
        "components": t.components,
    }))
}

/// Graph answers `id` plus the fields asked for (all of them when none are), and refuses a field
/// the node does not have.
fn select(all: Value, fields: Option<&str>, node: &str) -> Result<Value, GraphError> {
    let Some(fields) = fields.filter(|f| !f.trim().is_empty()) else {
        return Ok(all);
    };
    let mut picked = serde_json::Map::new();
    picked.insert("id".to_string(), all["id"].clone());
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let value = all.get(field).ok_or_else(|| {
            GraphError::invalid(format!(
                "Tried accessing nonexisting field ({field}) on node type ({node})"
            ))
        })?;
        picked.insert(field.to_string(), value.clone());
    }
    Ok(Value::Object(picked))
}

/// `GET /_fake/stats`: the counters `FakeMeta` exposes in-process, for benchmarks that run the
/// fake as a separate binary.
async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let webhooks = shared.webhooks.stats();
    Json(json!({
        "send_requests": shared.send_requests.load(Ordering::SeqCst),
        "messages": shared.messages.len(),
        "webhooks_delivered": webhooks.delivered,
        "webhooks_failed": webhooks.failed,
        "webhooks_dropped": webhooks.dropped,
        "webhook_items_delivered": webhooks.items_delivered,
    }))
    .into_response()
}

async fn unknown_path(uri: Uri) -> Response {
    GraphError::unknown_path(uri.path()).into_response()
}

#[cfg(test)]
mod tests {
    use super::valid_version;

    #[test]
    fn versions_are_v_major_dot_minor() {
        for ok in ["v23.0", "v21.0", "v9.1"] {
            assert!(valid_version(ok), "{ok}");
        }
        for bad in ["23.0", "v23", "v23.", "v.0", "v23.0a", "latest"] {
            assert!(!valid_version(bad), "{bad}");
        }
    }
}
