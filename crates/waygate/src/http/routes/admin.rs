//! The operators' API (API.md §8): thin wrappers over `service::admin`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use crate::http::auth::Admin;
use crate::http::body::json_object;
use crate::http::error::ApiError;
use crate::http::path::PathId;
use crate::http::schemas::*;
use crate::http::AppState;
use crate::views::{AdminSenderView, MessageView, TemplateView};

type Created = (StatusCode, Json<Value>);

fn created(value: Value) -> Created {
    (StatusCode::CREATED, Json(value))
}

#[utoipa::path(post, path = "/api/admin/users", tag = "admin",
    request_body = NewUserBody,
    responses((status = 201, description = "{id, name, email}"), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    State(app): State<AppState>,
    _: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Created, ApiError> {
    let object = json_object(&headers, body).await?;
    let user = app.services.create_user(&object).await?;
    Ok(created(
        json!({ "id": user.id, "name": user.name, "email": user.email }),
    ))
}

#[utoipa::path(post, path = "/api/admin/users/{id}/api-keys", tag = "admin", params(("id" = i64, Path)),
    request_body = NewApiKeyBody,
    responses((status = 201, description = "{id, name, prefix, key}; the key is shown once"), (status = 404, body = ErrorBody)))]
pub async fn create_api_key(
    State(app): State<AppState>,
    _: Admin,
    user_id: PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Created, ApiError> {
    let user_id = user_id.known()?;
    let object = json_object(&headers, body).await?;
    let issued = app.services.create_api_key(user_id, &object).await?;
    Ok(created(json!({
        "id": issued.record.id,
        "name": issued.record.name,
        "prefix": issued.record.prefix,
        "key": issued.key,
    })))
}

#[utoipa::path(delete, path = "/api/admin/api-keys/{id}", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_api_key(
    State(app): State<AppState>,
    _: Admin,
    key_id: PathId,
) -> Result<StatusCode, ApiError> {
    app.services.revoke_api_key(key_id.known()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/admin/users/{id}/senders", tag = "admin", params(("id" = i64, Path)),
    request_body = NewSenderBody,
    responses((status = 201, body = AdminSenderView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_sender(
    State(app): State<AppState>,
    _: Admin,
    user_id: PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Created, ApiError> {
    let user_id = user_id.known()?;
    let object = json_object(&headers, body).await?;
    let sender = app.services.create_sender(user_id, &object).await?;
    Ok(created(json!(AdminSenderView::from(&sender))))
}

#[utoipa::path(patch, path = "/api/admin/senders/{id}", tag = "admin", params(("id" = i64, Path)),
    request_body = SenderPatchBody,
    responses((status = 200, body = AdminSenderView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_sender(
    State(app): State<AppState>,
    _: Admin,
    sender_id: PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<AdminSenderView>, ApiError> {
    let sender_id = sender_id.known()?;
    let object = json_object(&headers, body).await?;
    let sender = app.services.update_sender(sender_id, &object).await?;
    Ok(Json(AdminSenderView::from(&sender)))
}

#[utoipa::path(post, path = "/api/admin/senders/{id}/templates", tag = "admin", params(("id" = i64, Path)),
    request_body = NewTemplateBody,
    responses((status = 201, body = TemplateView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_template(
    State(app): State<AppState>,
    _: Admin,
    sender_id: PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Created, ApiError> {
    let sender_id = sender_id.known()?;
    let object = json_object(&headers, body).await?;
    let template = app.services.create_template(sender_id, &object).await?;
    Ok(created(json!(TemplateView::from(&template))))
}

#[utoipa::path(patch, path = "/api/admin/templates/{id}", tag = "admin", params(("id" = i64, Path)),
    request_body = TemplatePatchBody,
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_template(
    State(app): State<AppState>,
    _: Admin,
    template_id: PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<TemplateView>, ApiError> {
    let template_id = template_id.known()?;
    let object = json_object(&headers, body).await?;
    let template = app.services.update_template(template_id, &object).await?;
    Ok(Json(TemplateView::from(&template)))
}

#[utoipa::path(post, path = "/api/admin/users/{id}/credits", tag = "admin", params(("id" = i64, Path)),
    request_body = CreditBody,
    responses((status = 201, description = "{total_balance}"), (status = 200, description = "reference seen before: nothing credited"),
               (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn credit(
    State(app): State<AppState>,
    _: Admin,
    user_id: PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Created, ApiError> {
    let user_id = user_id.known()?;
    let object = json_object(&headers, body).await?;
    let outcome = app.services.credit(user_id, &object).await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "total_balance": outcome.balance }))))
}

#[utoipa::path(post, path = "/api/admin/simulator/inbound", tag = "admin",
    request_body = SimulatorInboundBody,
    responses((status = 201, body = MessageView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn simulator_inbound(
    State(app): State<AppState>,
    _: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Created, ApiError> {
    let object = json_object(&headers, body).await?;
    let message = app.services.simulate_inbound(&object).await?;
    Ok(created(json!(MessageView::from(&message))))
}
