//! The Messages API handlers (§1): create, fetch and list, each with its scripted or random faults,
//! plus a stats endpoint for benchmarks; the router also serves the Content and Senders APIs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::auth::authorize;
use crate::conn::ConnHandle;
use crate::dates::now_ms;
use crate::errors::ApiError;
use crate::faults::{Fault, ReadEndpoint};
use crate::gate::read_fault;
use crate::resource::Resource;
use crate::server::Shared;
use crate::state::{Message, Record};
use crate::validate::parse_create;

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Messages.json",
            post(create).get(list),
        )
        .route("/2010-04-01/Accounts/{account}/Messages/{file}", get(fetch))
        .route("/_fake/stats", get(stats))
        .merge(crate::content_api::routes())
        .merge(crate::senders_api::routes())
        .fallback(not_found)
        .with_state(shared)
}

/// `POST …/Messages.json`: auth, then the next fault (if any), then validation, then creation.
async fn create(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(account): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    form: Bytes,
) -> Response {
    shared.create_requests.fetch_add(1, Ordering::SeqCst);
    if let Err(e) = authorize(&headers, &shared.config, &account, uri.path()) {
        return e.into_response();
    }
    let fault = shared.create_fault();
    match fault {
        Some(Fault::ServerError) => return ApiError::internal().into_response(),
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            return ApiError::too_many_requests(retry_after_secs).into_response()
        }
        Some(Fault::DropConnection) => {
            conn.kill();
            // Never written: the killed connection fails hyper's write and is closed.
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(Fault::CreatedThenServerError | Fault::Slow { .. }) | None => {}
    }
    let req = match parse_create(&form, |sid| shared.knows_content(sid)) {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };

    let now = now_ms();
    let failure = shared.config.async_failure_for(&req.to);
    let status = if req.messaging_service_sid.is_some() {
        "accepted"
    } else {
        "queued"
    };
    let record = Record {
        message: Message {
            sid: shared.rng.sid("SM"),
            to: req.to,
            from: req.from,
            body: req.body,
            content_sid: req.content_sid,
            content_variables: req.content_variables,
            status_callback: req.status_callback,
            status: status.to_string(),
            error_code: None,
            date_created_ms: now,
        },
        messaging_service_sid: req.messaging_service_sid,
        num_media: req.num_media,
        error_message: None,
        date_updated_ms: now,
        date_sent_ms: None,
    };
    let created = (
        StatusCode::CREATED,
        Json(Resource::new(&record, &shared.config.account_sid)),
    )
        .into_response();
    let sid = record.message.sid.clone();
    shared.store.insert(record);
    shared.callbacks.schedule(&sid, failure);

    match fault {
        Some(Fault::CreatedThenServerError) => ApiError::internal().into_response(),
        Some(Fault::Slow { delay_ms }) => {
            // Created before waiting, so a client that gives up still leaves a message behind.
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            created
        }
        _ => created,
    }
}

/// `GET …/Messages/{Sid}.json`: the current state of one message.
async fn fetch(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path((account, file)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorize(&headers, &shared.config, &account, uri.path()) {
        return e.into_response();
    }
    if let Some(answer) = read_fault(&shared, ReadEndpoint::Fetch, &conn).await {
        return answer;
    }
    let resource = file.strip_suffix(".json").and_then(|sid| {
        shared.store.with(sid, |record| {
            serde_json::to_value(Resource::new(record, &shared.config.account_sid))
        })
    });
    match resource {
        Some(Ok(json)) => Json(json).into_response(),
        Some(Err(_)) => ApiError::internal().into_response(),
        None => ApiError::not_found(uri.path()).into_response(),
    }
}

/// `GET …/Messages.json?To=&From=&PageSize=`: newest first, a single page.
async fn list(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorize(&headers, &shared.config, &account, uri.path()) {
        return e.into_response();
    }
    if let Some(answer) = read_fault(&shared, ReadEndpoint::List, &conn).await {
        return answer;
    }
    let (mut to, mut from, mut page_size) = (None, None, DEFAULT_PAGE_SIZE);
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "To" => to = Some(value.into_owned()),
            "From" => from = Some(value.into_owned()),
            // Out-of-range sizes are clamped rather than refused.
            "PageSize" => {
                page_size = value
                    .parse::<usize>()
                    .map_or(DEFAULT_PAGE_SIZE, |n| n.clamp(1, MAX_PAGE_SIZE))
            }
            _ => {}
        }
    }
    let keep = |m: &Message| {
        to.as_ref().is_none_or(|to| *to == m.to) && from.as_ref().is_none_or(|from| *from == m.from)
    };
    let messages: Result<Vec<_>, _> = shared
        .store
        .newest(page_size, keep, |record| {
            serde_json::to_value(Resource::new(record, &shared.config.account_sid))
        })
        .into_iter()
        .collect();
    let Ok(messages) = messages else {
        return ApiError::internal().into_response();
    };

    let mut page_query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(to) = &to {
        page_query.append_pair("To", to);
    }
    if let Some(from) = &from {
        page_query.append_pair("From", from);
    }
    page_query.append_pair("PageSize", &page_size.to_string());
    page_query.append_pair("Page", "0");
    let page_uri = format!("{}?{}", uri.path(), page_query.finish());
    Json(serde_json::json!({
        "messages": messages,
        "page": 0,
        "page_size": page_size,
        "first_page_uri": page_uri,
        "previous_page_uri": null,
        "next_page_uri": null,
        "uri": page_uri,
    }))
    .into_response()
}

/// `GET /_fake/stats`: the counters `messages()`/`create_requests()`/`callback_stats()` expose
/// in-process, for the benchmark that runs the fake as a separate binary.
async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let callbacks = shared.callbacks.stats();
    Json(serde_json::json!({
        "create_requests": shared.create_requests.load(Ordering::SeqCst),
        "messages": shared.store.len(),
        "callbacks_delivered": callbacks.delivered,
        "callbacks_failed": callbacks.failed,
        "callbacks_dropped": callbacks.dropped,
    }))
    .into_response()
}

async fn not_found(uri: Uri) -> Response {
    ApiError::not_found(uri.path()).into_response()
}
