//! Graph API error answers (PROVIDERS.md §6.2): `{"error":{message,type,code,error_subcode?,
//! error_data?,fbtrace_id}}`, with the HTTP status Meta's error table gives each code.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::random::mix;

/// What the fake knows of a WhatsApp error code: its HTTP status and Meta's title.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Known {
    pub(crate) http: u16,
    pub(crate) title: &'static str,
}

/// Meta's error table (§6.2); codes it does not list answer 400 "Unknown error".
pub(crate) fn known(code: i64) -> Known {
    let (http, title) = match code {
        1 => (500, "An unknown error occurred"),
        2 => (503, "Service temporarily unavailable"),
        100 => (400, "Invalid parameter"),
        190 => (401, "Error validating access token"),
        368 => (403, "Temporarily blocked for policies violations"),
        80007 => (429, "Rate limit issues"),
        130429 => (429, "Rate limit hit"),
        131000 => (500, "Something went wrong"),
        131026 => (400, "Message undeliverable"),
        131031 => (403, "Account has been locked"),
        131047 => (400, "Re-engagement message"),
        131048 => (400, "Spam rate limit hit"),
        131049 => (
            400,
            "This message was not delivered to maintain healthy ecosystem engagement.",
        ),
        131056 => (
            400,
            "(Business Account, Consumer Account) pair rate limit hit",
        ),
        132000 => (
            400,
            "Number of parameters does not match the expected number of params",
        ),
        132001 => (404, "Template name does not exist in the translation"),
        132015 => (400, "Template is paused"),
        132016 => (400, "Template is disabled"),
        _ => (400, "Unknown error"),
    };
    Known { http, title }
}

/// One Graph error answer.
#[derive(Clone, Debug)]
pub(crate) struct GraphError {
    status: StatusCode,
    code: i64,
    subcode: Option<i64>,
    kind: &'static str,
    message: String,
    details: Option<String>,
}

impl GraphError {
    /// The error Meta answers for `code`, with `details` in `error_data` when given.
    pub(crate) fn code(code: i64, details: Option<String>) -> Self {
        let known = known(code);
        GraphError {
            status: StatusCode::from_u16(known.http).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            subcode: None,
            kind: "OAuthException",
            message: format!("(#{code}) {}", known.title),
            details,
        }
    }

    /// 400/100 naming what is wrong with a parameter.
    pub(crate) fn invalid(details: impl Into<String>) -> Self {
        Self::code(100, Some(details.into()))
    }

    /// 400/100 with Meta's subcode for a template name and language that already exist.
    pub(crate) fn duplicate_template(name: &str, language: &str) -> Self {
        GraphError {
            subcode: Some(2_388_024),
            ..Self::invalid(format!(
                "Content in this language already exists: {name} ({language})"
            ))
        }
    }

    /// 400/100/33: no object with this id, or not one this token may see.
    pub(crate) fn unknown_object(id: &str) -> Self {
        GraphError {
            subcode: Some(33),
            kind: "GraphMethodException",
            message: format!(
                "Unsupported request - Object with ID '{id}' does not exist, cannot be loaded \
                 due to missing permissions, or does not support this operation"
            ),
            ..Self::code(100, None)
        }
    }

    /// 400/100 for a path the Graph API does not serve.
    pub(crate) fn unknown_path(path: &str) -> Self {
        GraphError {
            message: format!("Unknown path components: {path}"),
            ..Self::code(100, None)
        }
    }

    /// 401/190: no bearer token, or not the one the fake was given.
    pub(crate) fn bad_token(present: bool) -> Self {
        let message = if present {
            "Error validating access token: Session has expired or the token is invalid."
        } else {
            "An active access token must be used to query information about the current user."
        };
        GraphError {
            subcode: present.then_some(463),
            message: message.to_string(),
            ..Self::code(190, None)
        }
    }

    /// An internal failure: 500/131000.
    pub(crate) fn internal() -> Self {
        Self::code(131_000, None)
    }
}

/// Opaque like Meta's trace ids, distinct per answer.
fn fbtrace_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0x7ace);
    format!("A{:016x}", mix(NEXT.fetch_add(1, Ordering::Relaxed)))
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "fbtrace_id": fbtrace_id(),
        });
        if let Some(subcode) = self.subcode {
            error["error_subcode"] = subcode.into();
        }
        if let Some(details) = self.details {
            error["error_data"] = serde_json::json!({
                "messaging_product": "whatsapp",
                "details": details,
            });
        }
        (self.status, Json(serde_json::json!({ "error": error }))).into_response()
    }
}
