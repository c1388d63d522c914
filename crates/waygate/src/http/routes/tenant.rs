//! Account, senders, templates and session status.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::{json, Value};
use waygate_core::phone::E164;

use crate::http::auth::Tenant;
use crate::http::error::ApiError;
use crate::http::path::PathId;
use crate::http::query::{restore_plus, Query};
use crate::http::schemas::*;
use crate::http::AppState;
use crate::model::{SenderStatus, TemplateStatus};
use crate::service::ServiceError;
use crate::views::{session_body, SenderView, TemplateView};

#[utoipa::path(get, path = "/api/user/me", tag = "account",
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody)))]
pub async fn me(State(app): State<AppState>, tenant: Tenant) -> Result<Json<Value>, ApiError> {
    let user = app
        .services
        .store
        .get_user(tenant.user_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    Ok(Json(json!({
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "total_balance": user.balance,
        "currency": app.services.config.currency,
    })))
}

#[utoipa::path(get, path = "/api/user/whatsapp/senders", tag = "whatsapp",
    params(("status" = Option<String>, Query, description = "online (default), offline or all")),
    responses((status = 200, body = SenderList), (status = 422, body = ErrorBody)))]
pub async fn senders(
    State(app): State<AppState>,
    tenant: Tenant,
    RawQuery(q): RawQuery,
) -> Result<Json<SenderList>, ApiError> {
    let query = Query::parse(q.as_deref());
    let status = match query.get("status").unwrap_or("online") {
        "all" => None,
        other => Some(SenderStatus::parse(other).ok_or_else(|| {
            ApiError::from(waygate_core::validation::FieldErrors::single(
                "status",
                "The status field must be one of: online, offline, all.",
            ))
        })?),
    };
    let senders = app
        .services
        .store
        .list_senders(tenant.user_id, status)
        .await?;
    Ok(Json(SenderList {
        data: senders.iter().map(SenderView::from).collect(),
    }))
}

#[utoipa::path(get, path = "/api/user/whatsapp/senders/{sender_id}/templates", tag = "whatsapp",
    params(("sender_id" = i64, Path), ("status" = Option<String>, Query, description = "approved (default), pending, rejected, paused, disabled or all")),
    responses((status = 200, body = TemplateList), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn templates(
    State(app): State<AppState>,
    tenant: Tenant,
    PathId(sender_id): PathId,
    RawQuery(q): RawQuery,
) -> Result<Json<TemplateList>, ApiError> {
    let query = Query::parse(q.as_deref());
    let status = match query.get("status").unwrap_or("approved") {
        "all" => None,
        other => Some(TemplateStatus::parse(other).ok_or_else(|| {
            ApiError::from(waygate_core::validation::FieldErrors::single(
                "status",
                format!(
                    "The status field must be one of: {}, all.",
                    TemplateStatus::choices()
                ),
            ))
        })?),
    };
    let sender = app.owned_sender(tenant, sender_id).await?;
    let templates = app.services.store.list_templates(sender.id, status).await?;
    Ok(Json(TemplateList {
        data: templates.iter().map(TemplateView::from).collect(),
    }))
}

#[utoipa::path(get, path = "/api/user/whatsapp/session-status", tag = "whatsapp",
    params(("sender_id" = i64, Query), ("recipient_phone" = String, Query, description = "E.164; a raw `+` (decoded as a space) is accepted")),
    responses((status = 200, description = "open, expired or no-conversation shape"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn session_status(
    State(app): State<AppState>,
    tenant: Tenant,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = Query::parse(q.as_deref());
    let mut errors = waygate_core::validation::FieldErrors::new();
    let sender_id = match query.get("sender_id") {
        None | Some("") => {
            errors.add("sender_id", "The sender_id field is required.");
            None
        }
        Some(raw) => {
            let id = raw.trim().parse::<i64>().ok();
            if id.is_none() {
                errors.add("sender_id", "The sender_id field must be an integer.");
            }
            id
        }
    };
    let phone = query
        .get("recipient_phone")
        .filter(|p| !p.trim().is_empty());
    if phone.is_none() {
        errors.add("recipient_phone", "The recipient_phone field is required.");
    }
    let (Some(sender_id), Some(phone)) = (sender_id, phone) else {
        return Err(errors.into());
    };
    let recipient = E164::parse(&restore_plus(phone)).map_err(|_| ServiceError::InvalidPhone)?;
    let sender = app.owned_sender(tenant, Some(sender_id)).await?;
    let conversation = app
        .services
        .store
        .conversation(sender.id, recipient.as_str().to_string())
        .await?;
    let now = app.services.clock.now_ms();
    Ok(Json(session_body(
        conversation.as_ref(),
        app.services.config.window_template_opens,
        now,
    )))
}
