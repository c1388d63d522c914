//! Tenants' own templates (API.md §11): submitted for WhatsApp's review, read, synced from
//! the provider now, deleted. Thin wrappers over `service::templates` and `service::catalog`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;

use crate::http::auth::Tenant;
use crate::http::body::json_object;
use crate::http::error::ApiError;
use crate::http::path::PathId;
use crate::http::schemas::{ErrorBody, SubmittedTemplateBody};
use crate::http::AppState;
use crate::views::TemplateView;

#[utoipa::path(post, path = "/api/user/whatsapp/senders/{sender_id}/templates", tag = "whatsapp",
    params(("sender_id" = i64, Path)),
    request_body = SubmittedTemplateBody,
    responses((status = 201, body = TemplateView, description = "created at the provider and submitted for review: `pending`"),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "VALIDATION_ERROR naming each bad field, or the provider's refusal (TWILIO_ERROR_<code>, META_ERROR_<code>)"),
        (status = 503, body = ErrorBody, description = "PROVIDER_UNAVAILABLE: nothing was kept")))]
pub async fn create(
    State(app): State<AppState>,
    tenant: Tenant,
    PathId(sender_id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<TemplateView>), ApiError> {
    let sender = app.owned_sender(tenant, sender_id).await?;
    let object = json_object(&headers, body).await?;
    let template = app.services.submit_template(&sender, &object).await?;
    Ok((StatusCode::CREATED, Json(TemplateView::from(&template))))
}

#[utoipa::path(get, path = "/api/user/whatsapp/templates/{id}", tag = "whatsapp",
    params(("id" = i64, Path)),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<AppState>,
    tenant: Tenant,
    id: PathId,
) -> Result<Json<TemplateView>, ApiError> {
    let (_, template) = app
        .services
        .tenant_template(tenant.user_id, id.known()?)
        .await?;
    Ok(Json(TemplateView::from(&template)))
}

#[utoipa::path(delete, path = "/api/user/whatsapp/templates/{id}", tag = "whatsapp",
    params(("id" = i64, Path)),
    responses((status = 204, description = "deleted here and at the provider; sent messages keep its id"),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete(
    State(app): State<AppState>,
    tenant: Tenant,
    id: PathId,
) -> Result<StatusCode, ApiError> {
    app.services
        .delete_template(tenant.user_id, id.known()?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/user/whatsapp/templates/{id}/sync", tag = "whatsapp",
    params(("id" = i64, Path)),
    responses((status = 200, body = TemplateView, description = "its status as the provider has it now"),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn sync(
    State(app): State<AppState>,
    tenant: Tenant,
    id: PathId,
) -> Result<Json<TemplateView>, ApiError> {
    let (_, template) = app
        .services
        .tenant_template(tenant.user_id, id.known()?)
        .await?;
    let template = app.services.sync_template(template).await?;
    Ok(Json(TemplateView::from(&template)))
}
