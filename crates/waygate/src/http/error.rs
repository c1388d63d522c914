//! The API's error envelope (API.md §2). The only place that knows HTTP status codes.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use waygate_core::validation::FieldErrors;

use crate::model::ProviderKind;
use crate::service::ServiceError;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unauthenticated")]
    Unauthenticated,
    #[error("invalid JSON: {0}")]
    InvalidJson(&'static str),
    #[error("payload too large")]
    PayloadTooLarge,
    /// The request (its body, typically) took longer than `request_timeout_ms`.
    #[error("request timed out")]
    RequestTimeout,
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64, limit: u32 },
    /// The shared send limit could not be read and the configuration says to fail closed.
    #[error("rate limit unavailable")]
    RateLimitUnavailable,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The admin API is switched off (no admin token configured).
    #[error("admin API disabled")]
    AdminDisabled,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        ApiError::Service(ServiceError::Validation(errors))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Service(ServiceError::from(e))
    }
}

/// (status, error_code, text, extra fields)
fn parts(err: &ApiError) -> (StatusCode, String, String, Map<String, Value>) {
    use ServiceError as S;
    let mut extra = Map::new();
    let simple = |status, code: &str, text: &str| (status, code.to_string(), text.to_string());
    let (status, code, text) = match err {
        ApiError::Unauthenticated => {
            extra.insert("message".into(), json!("Unauthenticated."));
            simple(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "Unauthenticated.")
        }
        ApiError::InvalidJson(why) => simple(StatusCode::BAD_REQUEST, "INVALID_JSON", why),
        ApiError::PayloadTooLarge => simple(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "The request body is larger than 64 KiB.",
        ),
        ApiError::RequestTimeout => simple(
            StatusCode::REQUEST_TIMEOUT,
            "REQUEST_TIMEOUT",
            "The request was not received and answered in time.",
        ),
        ApiError::RateLimited { retry_after_secs, .. } => {
            extra.insert("message".into(), json!("Too Many Attempts."));
            extra.insert("retry_after".into(), json!(retry_after_secs));
            simple(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "Too Many Attempts.")
        }
        ApiError::RateLimitUnavailable => simple(
            StatusCode::SERVICE_UNAVAILABLE,
            "RATE_LIMIT_UNAVAILABLE",
            "The send rate limit cannot be checked right now; try again shortly.",
        ),
        ApiError::MethodNotAllowed => simple(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "This method is not allowed on this route.",
        ),
        ApiError::AdminDisabled => simple(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found."),
        ApiError::Service(e) => match e {
            S::Validation(errors) => {
                extra.insert("errors".into(), json!(errors));
                simple(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", "The given data was invalid.")
            }
            S::InvalidPhone => simple(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_PHONE",
                "Invalid phone number format. Use E.164 format (e.g., +14155551234).",
            ),
            S::SenderNotFound => simple(
                StatusCode::NOT_FOUND,
                "SENDER_NOT_FOUND",
                "Sender not found or does not belong to you",
            ),
            S::SenderOffline { status, freeform } => {
                let code = if *freeform {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                let text = format!("Sender is not online. Current status: {}", status.capitalised());
                (code, "SENDER_OFFLINE".into(), text)
            }
            S::TemplateNotFound => simple(
                StatusCode::NOT_FOUND,
                "TEMPLATE_NOT_FOUND",
                "Template not found or does not belong to this sender",
            ),
            S::TemplateNotApproved(status) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "TEMPLATE_NOT_APPROVED".into(),
                format!("Template is not approved. Current status: {}", status.as_str()),
            ),
            S::TemplateNotSynced(provider) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "TEMPLATE_NOT_SYNCED".into(),
                format!(
                    "Template is not synced with the sender's provider ({}): it has no provider template reference.",
                    provider.as_str()
                ),
            ),
            S::TemplateMismatch(errors) => {
                extra.insert("errors".into(), json!(errors));
                simple(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "TEMPLATE_MISMATCH",
                    "The variables do not match the template.",
                )
            }
            S::SessionExpired(session) => {
                extra.insert("session_status".into(), json!(session));
                simple(
                    StatusCode::FORBIDDEN,
                    "SESSION_EXPIRED",
                    "The 24-hour messaging window is closed. Customer must reply first, or use a template message.",
                )
            }
            S::MessagingLimitReached => simple(
                StatusCode::UNPROCESSABLE_ENTITY,
                "MESSAGING_LIMIT_REACHED",
                "The sender's messaging limit of unique recipients for the rolling 24 hours is reached.",
            ),
            S::InsufficientBalance => simple(
                StatusCode::PAYMENT_REQUIRED,
                "INSUFFICIENT_BALANCE",
                "Insufficient balance. Please top up your account.",
            ),
            S::IdempotencyKeyReused => simple(
                StatusCode::CONFLICT,
                "IDEMPOTENCY_KEY_REUSED",
                "This Idempotency-Key was already used with a different request body.",
            ),
            S::ProviderRejected { provider, code, message } => {
                let family = match provider {
                    ProviderKind::Meta => "META_ERROR",
                    ProviderKind::Twilio | ProviderKind::Simulator => "TWILIO_ERROR",
                };
                (StatusCode::UNPROCESSABLE_ENTITY, format!("{family}_{code}"), message.clone())
            }
            S::ProviderUnavailable { reason, .. } => simple(
                StatusCode::SERVICE_UNAVAILABLE,
                "PROVIDER_UNAVAILABLE",
                &format!("The provider could not be reached; nothing was kept. Try again. ({reason})"),
            ),
            S::NotFound => simple(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found."),
            S::Conflict(what) => {
                extra.insert("errors".into(), json!(FieldErrors::single("name", *what)));
                simple(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", "The given data was invalid.")
            }
            S::Store(e) => {
                tracing::error!(error = %e, "internal error");
                simple(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "Internal server error.")
            }
        },
    };
    (status, code, text, extra)
}

impl ApiError {
    /// The status and JSON body, for responses and for idempotent replays.
    pub fn status_and_body(&self) -> (StatusCode, Value) {
        let (status, code, text, extra) = parts(self);
        let mut body = Map::new();
        body.insert("success".into(), json!(false));
        body.insert("error".into(), json!(text));
        body.insert("error_code".into(), json!(code));
        body.extend(extra);
        (status, Value::Object(body))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.status_and_body();
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::RateLimited {
            retry_after_secs,
            limit,
        } = self
        {
            let headers = response.headers_mut();
            headers.insert("retry-after", HeaderValue::from(retry_after_secs));
            let quota = super::ratelimit::Quota {
                limit,
                remaining: 0,
            };
            quota.write_headers(headers);
        }
        response
    }
}
