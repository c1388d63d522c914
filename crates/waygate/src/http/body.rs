//! Reading request bodies and fields into typed values, collecting every field error.

use axum::body::Body;
use axum::http::{header, HeaderMap};
use serde_json::{Map, Value};

use super::error::{ApiError, MAX_BODY_BYTES};

/// The body as a JSON object: wrong Content-Type, bad JSON or a non-object → INVALID_JSON,
/// over 64 KiB → PAYLOAD_TOO_LARGE.
pub async fn json_object(headers: &HeaderMap, body: Body) -> Result<Map<String, Value>, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false);
    let declared_too_large = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len > MAX_BODY_BYTES);
    if declared_too_large {
        return Err(ApiError::PayloadTooLarge);
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    if !is_json {
        return Err(ApiError::InvalidJson(
            "The request must have Content-Type: application/json.",
        ));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::InvalidJson(
            "The request body must be a JSON object.",
        )),
        Err(_) => Err(ApiError::InvalidJson("The request body is not valid JSON.")),
    }
}
