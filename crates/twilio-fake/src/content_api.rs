//! The Content API (§4): create, fetch, list and delete templates, submit one to WhatsApp and
//! read its approval, with ISO-8601 dates and absolute URLs.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::conn::ConnHandle;
use crate::content::{content_type, Approval, Content};
use crate::content_request::{parse_approval, parse_content};
use crate::dates::{iso8601, now_ms};
use crate::errors::ApiError;
use crate::faults::ReadEndpoint;
use crate::gate::admit;
use crate::paging::Paging;
use crate::server::Shared;

type Answer = Result<Response, Response>;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/Content", post(create).get(list))
        .route("/v1/Content/{sid}", get(fetch).delete(delete))
        .route("/v1/Content/{sid}/ApprovalRequests", get(fetch_approval))
        .route("/v1/Content/{sid}/ApprovalRequests/whatsapp", post(submit))
}

fn url(shared: &Shared, sid: &str) -> String {
    format!("{}/v1/Content/{sid}", shared.base_url)
}

/// The Content resource.
fn resource(shared: &Shared, content: &Content) -> Value {
    let url = url(shared, &content.sid);
    json!({
        "sid": content.sid,
        "account_sid": shared.config.account_sid,
        "friendly_name": content.friendly_name,
        "language": content.language,
        "variables": content.variables,
        "types": content.types,
        "url": url,
        "date_created": iso8601(content.date_created_ms),
        "date_updated": iso8601(content.date_updated_ms),
        "links": {
            "approval_create": format!("{url}/ApprovalRequests/whatsapp"),
            "approval_fetch": format!("{url}/ApprovalRequests"),
        },
    })
}

/// The approval fields the submission answer shows (and the fetch answer nests).
fn approval_json(approval: &Approval) -> Value {
    json!({
        "name": approval.name,
        "category": approval.category,
        "content_type": approval.content_type,
        "status": approval.status,
        "rejection_reason": approval.rejection_reason,
        "allow_category_change": approval.allow_category_change,
    })
}

fn not_found(uri: &Uri) -> Response {
    ApiError::not_found(uri.path()).into_response()
}

/// `POST /v1/Content` → 201.
async fn create(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    admit(&shared, &conn, &headers, ReadEndpoint::ContentCreate).await?;
    let fields = parse_content(&body).map_err(IntoResponse::into_response)?;
    let content = shared
        .contents
        .insert(shared.rng.sid("HX"), fields, now_ms());
    Ok((StatusCode::CREATED, Json(resource(&shared, &content))).into_response())
}

/// `GET /v1/Content/{HX…}`.
async fn fetch(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(sid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Answer {
    admit(&shared, &conn, &headers, ReadEndpoint::ContentFetch).await?;
    let content = shared.contents.get(&sid).ok_or_else(|| not_found(&uri))?;
    Ok(Json(resource(&shared, &content)).into_response())
}

/// `GET /v1/Content?PageSize=&Page=`: oldest first.
async fn list(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Answer {
    admit(&shared, &conn, &headers, ReadEndpoint::ContentList).await?;
    let list_url = format!("{}{}", shared.base_url, uri.path());
    let (page, meta) =
        Paging::from_query(query.as_deref()).page(shared.contents.all(), &list_url, "contents");
    let contents: Vec<Value> = page.iter().map(|c| resource(&shared, c)).collect();
    Ok(Json(json!({ "contents": contents, "meta": meta })).into_response())
}

/// `DELETE /v1/Content/{HX…}` → 204; the SID is no longer accepted as a `ContentSid`.
async fn delete(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(sid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Answer {
    admit(&shared, &conn, &headers, ReadEndpoint::ContentDelete).await?;
    if !shared.contents.remove(&sid) {
        return Err(not_found(&uri));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/Content/{HX…}/ApprovalRequests/whatsapp` → 201; a new submission restarts the review.
async fn submit(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(sid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    admit(&shared, &conn, &headers, ReadEndpoint::ApprovalCreate).await?;
    if !shared.contents.contains(&sid) {
        return Err(not_found(&uri));
    }
    let request = parse_approval(&body).map_err(IntoResponse::into_response)?;
    let approval = shared
        .contents
        .submit(&sid, request, now_ms())
        .and_then(|content| content.approval)
        .ok_or_else(|| not_found(&uri))?;
    Ok((StatusCode::CREATED, Json(approval_json(&approval))).into_response())
}

/// `GET /v1/Content/{HX…}/ApprovalRequests`: `unsubmitted` until a submission.
async fn fetch_approval(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(sid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Answer {
    admit(&shared, &conn, &headers, ReadEndpoint::ApprovalFetch).await?;
    let content = shared.contents.get(&sid).ok_or_else(|| not_found(&uri))?;
    let approval = content.approval.unwrap_or_else(|| Approval {
        name: String::new(),
        category: String::new(),
        content_type: content_type(&content.types).to_string(),
        status: "unsubmitted".to_string(),
        rejection_reason: String::new(),
        allow_category_change: false,
    });
    let mut whatsapp = approval_json(&approval);
    whatsapp["type"] = json!("whatsapp");
    whatsapp["flows"] = Value::Null;
    Ok(Json(json!({
        "sid": content.sid,
        "account_sid": shared.config.account_sid,
        "url": format!("{}/ApprovalRequests", url(&shared, &content.sid)),
        "whatsapp": whatsapp,
    }))
    .into_response())
}
