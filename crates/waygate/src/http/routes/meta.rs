//! Meta's webhooks (API.md §12): the subscription handshake, and notifications accepted only
//! with a valid `X-Hub-Signature-256` over the raw body; anything else is refused with 403 and
//! nothing is stored. Without a configured app secret every notification is refused.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::error::{ApiError, MAX_BODY_BYTES};
use crate::http::AppState;
use crate::provider::meta::webhook;

fn refuse(reason: &str) -> Response {
    tracing::warn!(reason, "Meta webhook refused");
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({ "error": reason })),
    )
        .into_response()
}

#[utoipa::path(get, path = "/webhooks/meta", tag = "provider webhooks", security(()),
    params(("hub.mode" = String, Query, description = "`subscribe`"),
           ("hub.verify_token" = String, Query, description = "must equal meta_verify_token"),
           ("hub.challenge" = String, Query, description = "echoed back")),
    responses((status = 200, description = "the raw hub.challenge", content_type = "text/plain", body = String),
               (status = 403, description = "not a subscription with our verify token")))]
pub async fn verify(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let expected = app.services.config.meta_verify_token.as_bytes();
    let token_ok = get("hub.verify_token").is_some_and(|given| {
        !expected.is_empty() && subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected).into()
    });
    match (get("hub.mode"), get("hub.challenge")) {
        (Some("subscribe"), Some(challenge)) if token_ok => (
            [(header::CONTENT_TYPE, "text/plain")],
            challenge.to_string(),
        )
            .into_response(),
        _ => refuse("verification refused"),
    }
}

#[utoipa::path(post, path = "/webhooks/meta", tag = "provider webhooks", security(()),
    request_body(content = String, content_type = "application/json", description = "Meta's whatsapp_business_account notification"),
    responses((status = 200, description = "every status, message and change applied, or a repeat that changed nothing"),
               (status = 400, description = "not Meta's notification envelope"),
               (status = 403, description = "signature missing or invalid, or no meta_app_secret configured")))]
pub async fn notify(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let secret = &app.services.config.meta_app_secret;
    if secret.is_empty() {
        // The operator's omission, not a server fault: the request is refused.
        tracing::warn!(
            "a Meta webhook arrived but meta_app_secret is not set: it cannot be verified"
        );
        return refuse("signature cannot be verified");
    }
    let Some(given) = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
    else {
        return refuse("missing X-Hub-Signature-256");
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return refuse("body too large");
    };
    if !webhook::signature_valid(secret, &bytes, given) {
        return refuse("invalid signature");
    }
    let events = match webhook::events(&bytes) {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(error = %e, "a signed Meta webhook is not a notification");
            return (StatusCode::BAD_REQUEST, "not a notification").into_response();
        }
    };
    match app.services.meta_events(events).await {
        Ok(()) => StatusCode::OK.into_response(),
        // Meta posts the notification again on an error, and a repeat changes nothing.
        Err(e) => ApiError::from(e).into_response(),
    }
}
