//! Twilio's legacy JSON error envelope (§1.4) and the errors the fake answers with.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answer: `{"code","message","more_info","status"}` with the matching HTTP status.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: i64,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    pub(crate) fn bad_request(code: i64, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub(crate) fn unauthenticated() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: 20003,
            message: "Authenticate".to_string(),
            retry_after_secs: None,
        }
    }

    pub(crate) fn not_found(path: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: 20404,
            message: format!("The requested resource {path} was not found"),
            retry_after_secs: None,
        }
    }

    pub(crate) fn internal() -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: 20500,
            message: "An internal server error has occurred".to_string(),
            retry_after_secs: None,
        }
    }

    pub(crate) fn too_many_requests(retry_after_secs: u64) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: 20429,
            message: "Too Many Requests".to_string(),
            retry_after_secs: Some(retry_after_secs),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status.as_u16(),
        });
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
