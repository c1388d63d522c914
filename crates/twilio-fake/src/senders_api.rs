//! The Senders API v2 (§5): register, fetch, update, list and delete WhatsApp senders. A sender
//! registered here starts `CREATING` and moves only when a verification code is posted
//! (`VERIFYING`) or a test sets its state.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::conn::ConnHandle;
use crate::errors::ApiError;
use crate::faults::ReadEndpoint;
use crate::gate::admit;
use crate::json_body::{invalid, object, only, required};
use crate::paging::Paging;
use crate::senders::{Sections, SenderState, CONFIGURATION_KEYS, PROFILE_KEYS, WEBHOOK_KEYS};
use crate::server::Shared;

type Answer = Result<Response, Response>;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v2/Channels/Senders", post(create).get(list))
        .route(
            "/v2/Channels/Senders/{sid}",
            get(fetch).post(update).delete(delete),
        )
}

/// The writable sections of a create or update body, each closed to its known keys.
fn sections(fields: &Map<String, Value>) -> Result<Sections, ApiError> {
    let section = |name: &str, keys: &[&str]| match fields.get(name) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(section)) => {
            only(section, keys, name)?;
            Ok(section.clone())
        }
        Some(_) => Err(invalid(format!("{name} must be an object"))),
    };
    Ok(Sections {
        configuration: section("configuration", &CONFIGURATION_KEYS)?,
        webhook: section("webhook", &WEBHOOK_KEYS)?,
        profile: section("profile", &PROFILE_KEYS)?,
    })
}

const SECTIONS: [&str; 3] = ["configuration", "webhook", "profile"];

/// `whatsapp:+<1 to 15 digits>`.
fn is_whatsapp_sender(id: &str) -> bool {
    id.strip_prefix("whatsapp:+").is_some_and(|digits| {
        (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn not_found(uri: &Uri) -> Response {
    ApiError::not_found(uri.path()).into_response()
}

/// `POST /v2/Channels/Senders` → 202 `CREATING`; only `sender_id` is required.
async fn create(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    admit(&shared, &conn, &headers, ReadEndpoint::SenderCreate).await?;
    let fields = object(&body).map_err(IntoResponse::into_response)?;
    only(
        &fields,
        &["sender_id", "configuration", "webhook", "profile"],
        "the sender",
    )
    .map_err(IntoResponse::into_response)?;
    let sender_id = required(&fields, "sender_id").map_err(IntoResponse::into_response)?;
    if !is_whatsapp_sender(sender_id) {
        return Err(invalid(format!(
            "Invalid sender_id {sender_id}: expected whatsapp:+E164"
        ))
        .into_response());
    }
    let state = SenderState {
        sender_id: sender_id.to_string(),
        status: "CREATING".to_string(),
        quality_rating: None,
        messaging_limit: None,
        offline_reasons: Vec::new(),
    };
    let sections = sections(&fields).map_err(IntoResponse::into_response)?;
    let sid = shared.rng.sid("XE");
    shared.senders.insert(sid.clone(), state, sections);
    let sender = shared
        .senders
        .json(&sid, &shared.base_url)
        .ok_or_else(|| ApiError::internal().into_response())?;
    Ok((StatusCode::ACCEPTED, Json(sender)).into_response())
}

/// `GET /v2/Channels/Senders/{XE…}`.
async fn fetch(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(sid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Answer {
    admit(&shared, &conn, &headers, ReadEndpoint::SenderFetch).await?;
    let sender = shared
        .senders
        .json(&sid, &shared.base_url)
        .ok_or_else(|| not_found(&uri))?;
    Ok(Json(sender).into_response())
}

/// `POST /v2/Channels/Senders/{XE…}` → 202: merges the sections given.
async fn update(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(sid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    admit(&shared, &conn, &headers, ReadEndpoint::SenderUpdate).await?;
    if !shared.senders.contains(&sid) {
        return Err(not_found(&uri));
    }
    let fields = object(&body).map_err(IntoResponse::into_response)?;
    only(&fields, &SECTIONS, "the sender update").map_err(IntoResponse::into_response)?;
    let sections = sections(&fields).map_err(IntoResponse::into_response)?;
    let sender = shared
        .senders
        .update(&sid, sections, &shared.base_url)
        .ok_or_else(|| not_found(&uri))?;
    Ok((StatusCode::ACCEPTED, Json(sender)).into_response())
}

/// `DELETE /v2/Channels/Senders/{XE…}` → 204.
async fn delete(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(sid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Answer {
    admit(&shared, &conn, &headers, ReadEndpoint::SenderDelete).await?;
    if !shared.senders.remove(&sid) {
        return Err(not_found(&uri));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v2/Channels/Senders?Channel=whatsapp&PageSize=&Page=`: oldest first (every sender here is
/// a WhatsApp one).
async fn list(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Answer {
    admit(&shared, &conn, &headers, ReadEndpoint::SenderList).await?;
    let list_url = format!("{}{}", shared.base_url, uri.path());
    let (senders, meta) = Paging::from_query(query.as_deref()).page(
        shared.senders.all_json(&shared.base_url),
        &list_url,
        "senders",
    );
    Ok(Json(json!({ "senders": senders, "meta": meta })).into_response())
}
