//! The two send endpoints: parse, call the service, shape the answer (and remember it for
//! idempotent replays).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use waygate_core::phone::E164;
use waygate_core::window::SessionStatus;

use crate::http::auth::Tenant;
use crate::http::body::json_object;
use crate::http::error::ApiError;
use crate::http::ratelimit::Quota;
use crate::http::schemas::*;
use crate::http::AppState;
use crate::input::Fields;
use crate::model::Message;
use crate::service::send::{FreeformSendRequest, SendReply, SendSuccess, TemplateSendRequest};
use crate::service::ServiceError;
use crate::store::{IdempotencyKey, Replay};
use crate::views::session_status;

const MAX_IDEMPOTENCY_KEY: usize = 255;

/// A looked-up name given as a string is parsed and checked on every request.
static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The Idempotency-Key header with a hash of the body (JSON object keys are sorted, so key
/// order and whitespace do not make a different body).
fn idempotency(
    headers: &HeaderMap,
    body: &Map<String, Value>,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = headers.get(&IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = raw.to_str().ok().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY {
        return Err(waygate_core::validation::FieldErrors::single(
            "Idempotency-Key",
            "The Idempotency-Key header must be 1 to 255 characters.",
        )
        .into());
    }
    let canonical = serde_json::to_vec(body).unwrap_or_default();
    Ok(Some(IdempotencyKey {
        key: key.to_string(),
        request_hash: Sha256::digest(&canonical).to_vec(),
    }))
}

fn recipient(app: &AppState, raw: Option<String>) -> Result<E164, ApiError> {
    let raw = raw.unwrap_or_default();
    Ok(app
        .services
        .phones
        .parse(&raw)
        .map_err(|_| ServiceError::InvalidPhone)?)
}

/// A send's answer, serialized straight from the fields (a `json!` object cost a map
/// insertion and allocation per key on every send). Keys in the order a `json!` object gives
/// them, so that fresh answers and stored replays read the same.
#[derive(serde::Serialize)]
struct SuccessBody<'a> {
    conversation_id: i64,
    message_id: i64,
    message_sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_status: Option<&'a SessionStatus>,
    status: &'a str,
    success: bool,
    whatsapp_message_id: i64,
}

fn success_body(s: &SendSuccess) -> String {
    let body = SuccessBody {
        conversation_id: s.conversation_id,
        message_id: s.message_id,
        message_sid: s.message_sid.as_deref(),
        session_status: s.session_status.as_ref(),
        status: &s.status,
        success: true,
        whatsapp_message_id: s.message_id,
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// A replay of a request whose answer was never stored: the message as it stands now.
async fn in_flight_body(app: &AppState, m: &Message, freeform: bool) -> Result<Value, ApiError> {
    let mut body = json!({
        "success": true,
        "conversation_id": m.conversation_id,
        "message_id": m.id,
        "whatsapp_message_id": m.id,
        "message_sid": m.message_sid,
        "status": m.status,
    });
    if freeform {
        let conversation = app
            .services
            .store
            .get_conversation(m.conversation_id)
            .await?;
        let now = app.services.clock.now_ms();
        body["session_status"] = json!(session_status(
            conversation.as_ref(),
            app.services.config.window_template_opens,
            now
        ));
    }
    Ok(body)
}

fn with_quota(mut response: Response, quota: Option<Quota>) -> Response {
    if let Some(quota) = quota {
        quota.write_headers(response.headers_mut());
    }
    response
}

/// Turns the service's answer into a response, storing it for replays when the request
/// recorded a message.
async fn respond(
    app: &AppState,
    tenant: Tenant,
    idem: Option<IdempotencyKey>,
    reply: Result<SendReply, ServiceError>,
    freeform: bool,
) -> Result<Response, ApiError> {
    let (status, body) = match reply {
        Ok(SendReply::Sent(success)) => (StatusCode::OK, success_body(&success)),
        Ok(SendReply::Replayed(Replay::Response { status, body })) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            return Ok((status, axum::Json(body)).into_response());
        }
        Ok(SendReply::Replayed(Replay::InFlight(message))) => {
            return Ok((
                StatusCode::OK,
                axum::Json(in_flight_body(app, &message, freeform).await?),
            )
                .into_response())
        }
        Err(e @ ServiceError::ProviderRejected { .. }) => {
            let (status, body) = ApiError::from(e).status_and_body();
            (status, body.to_string())
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(idem) = idem {
        let saved = app
            .services
            .store
            .save_idempotent_response(tenant.user_id, idem.key, status.as_u16(), body.clone())
            .await;
        if let Err(e) = saved {
            tracing::error!(error = %e, "cannot store the idempotent response; a replay will rebuild it");
        }
    }
    let json = [(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    Ok((status, json, body).into_response())
}

fn count(result: &Result<SendReply, ServiceError>, endpoint: &'static str) {
    let outcome = match result {
        Ok(SendReply::Sent(s)) if s.message_sid.is_some() => "accepted",
        Ok(SendReply::Sent(_)) => "pending",
        Ok(SendReply::Replayed(_)) => "replayed",
        Err(e) => e.label(),
    };
    crate::http::request_metrics::count_send(endpoint, outcome);
}

enum SendRequest {
    Template(TemplateSendRequest),
    Freeform(FreeformSendRequest),
}

/// What both send endpoints do around their own parsing, in the contract's check order:
/// rate limit, body, idempotency key, fields, then the service; then metrics and the answer.
/// The request is taken whole: axum's `HeaderMap` extractor copies the headers.
async fn handle(
    app: AppState,
    tenant: Tenant,
    request: Request,
    parse: impl FnOnce(&AppState, &Map<String, Value>) -> Result<SendRequest, ApiError>,
) -> Result<Response, ApiError> {
    let quota = app.limiter.check(tenant.user_id).await?;
    let (parts, body) = request.into_parts();
    let object = json_object(&parts.headers, body).await?;
    let idem = idempotency(&parts.headers, &object)?;
    let (reply, endpoint, freeform) = match parse(&app, &object)? {
        SendRequest::Template(request) => (
            app.services
                .send_template(tenant.user_id, request, idem.clone())
                .await,
            "send",
            false,
        ),
        SendRequest::Freeform(request) => (
            app.services
                .send_freeform(tenant.user_id, request, idem.clone())
                .await,
            "send-freeform",
            true,
        ),
    };
    count(&reply, endpoint);
    Ok(with_quota(
        respond(&app, tenant, idem, reply, freeform).await?,
        quota,
    ))
}

#[utoipa::path(post, path = "/api/user/whatsapp/send", tag = "whatsapp",
    request_body = SendTemplateBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "At most 255 characters; replays the first answer for 24 h")),
    responses(
        (status = 200, body = SendResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn send_template(
    State(app): State<AppState>,
    tenant: Tenant,
    request: Request,
) -> Result<Response, ApiError> {
    handle(app, tenant, request, |app, object| {
        let mut f = Fields::new(object);
        let sender_id = f.int("sender_id");
        let template_id = f.int("template_id");
        let phone = f.string("recipient_phone", 64);
        let recipient_name = f.opt_string("recipient_name", 255);
        let variables = f.opt_object("variables");
        let (sender_id, template_id) = f.finish_with((sender_id, template_id))?;
        Ok(SendRequest::Template(TemplateSendRequest {
            sender_id,
            template_id,
            recipient: recipient(app, phone)?,
            recipient_name,
            variables,
        }))
    })
    .await
}

#[utoipa::path(post, path = "/api/user/whatsapp/send-freeform", tag = "whatsapp",
    request_body = SendFreeformBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "At most 255 characters; replays the first answer for 24 h")),
    responses(
        (status = 200, body = SendResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn send_freeform(
    State(app): State<AppState>,
    tenant: Tenant,
    request: Request,
) -> Result<Response, ApiError> {
    handle(app, tenant, request, |app, object| {
        let mut f = Fields::new(object);
        let sender_id = f.int("sender_id");
        let phone = f.string("recipient_phone", 64);
        let message = f.string("message", 4096);
        let (sender_id, message) = f.finish_with((sender_id, message))?;
        Ok(SendRequest::Freeform(FreeformSendRequest {
            sender_id,
            recipient: recipient(app, phone)?,
            message,
        }))
    })
    .await
}
