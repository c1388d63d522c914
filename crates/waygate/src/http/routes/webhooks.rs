//! Tenants' webhook subscriptions (API.md §3 "Beyond the portal", §7).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use waygate_core::time::{from_millis, rfc3339};

use crate::http::auth::Tenant;
use crate::http::body::json_object;
use crate::http::error::ApiError;
use crate::http::path::PathId;
use crate::http::schemas::*;
use crate::http::AppState;
use crate::input::Fields;
use crate::model::Webhook;
use crate::secrets::new_webhook_secret;
use crate::service::ServiceError;

use crate::model::EVENT_TYPES as EVENTS;
/// How long the secret before a rotation keeps signing.
const ROTATION_OVERLAP_MS: i64 = 24 * 60 * 60 * 1000;

fn view(w: &Webhook) -> WebhookView {
    WebhookView {
        id: w.id,
        url: w.url.clone(),
        events: w.events.clone(),
        created_at: rfc3339(from_millis(w.created_at)),
    }
}

async fn owned(app: &AppState, tenant: Tenant, id: PathId) -> Result<Webhook, ApiError> {
    let id = id.known()?;
    Ok(app
        .services
        .store
        .get_webhook(id)
        .await?
        .filter(|w| w.user_id == tenant.user_id)
        .ok_or(ServiceError::NotFound)?)
}

#[utoipa::path(post, path = "/api/user/webhooks", tag = "webhooks", request_body = WebhookBody,
    responses((status = 201, body = WebhookCreated), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(app): State<AppState>,
    tenant: Tenant,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<WebhookCreated>), ApiError> {
    let object = json_object(&headers, body).await?;
    let mut f = Fields::new(&object);
    let url = f.string("url", 2048);
    let events = f.string_list("events");
    match &events {
        Some(list) if list.is_empty() => {
            f.error("events", "The events field must name at least one event.")
        }
        Some(list) => {
            for event in list.iter().filter(|e| !EVENTS.contains(&e.as_str())) {
                f.error(
                    "events",
                    format!("Unknown event {event}; known: {}.", EVENTS.join(", ")),
                );
            }
        }
        None => {}
    }
    if let Some(url) = &url {
        if let Err(e) =
            crate::webhook_target::check(url, app.services.config.webhooks_allow_private).await
        {
            f.error("url", format!("The url {e}."));
        }
    }
    let (url, mut events) = f.finish_with((url, events))?;
    events.dedup();
    let webhook = app
        .services
        .store
        .create_webhook(
            tenant.user_id,
            url,
            events,
            new_webhook_secret(),
            app.services.clock.now_ms(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated {
            id: webhook.id,
            url: webhook.url,
            events: webhook.events,
            secret: webhook.secret,
        }),
    ))
}

#[utoipa::path(get, path = "/api/user/webhooks", tag = "webhooks", responses((status = 200, body = WebhookList)))]
pub async fn list(
    State(app): State<AppState>,
    tenant: Tenant,
) -> Result<Json<WebhookList>, ApiError> {
    let hooks = app.services.store.list_webhooks(tenant.user_id).await?;
    Ok(Json(WebhookList {
        data: hooks.iter().map(view).collect(),
    }))
}

#[utoipa::path(delete, path = "/api/user/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(app): State<AppState>,
    tenant: Tenant,
    id: PathId,
) -> Result<StatusCode, ApiError> {
    let webhook = owned(&app, tenant, id).await?;
    app.services
        .store
        .delete_webhook(webhook.id, app.services.clock.now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/user/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 200, body = SecretResponse), (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(app): State<AppState>,
    tenant: Tenant,
    id: PathId,
) -> Result<Json<SecretResponse>, ApiError> {
    let webhook = owned(&app, tenant, id).await?;
    let secret = new_webhook_secret();
    let until = app.services.clock.now_ms() + ROTATION_OVERLAP_MS;
    app.services
        .store
        .rotate_webhook_secret(webhook.id, secret.clone(), until)
        .await?;
    Ok(Json(SecretResponse { secret }))
}
