//! Reading the JSON bodies of the Content and Senders APIs. Every refusal is a 400 with Twilio's
//! "Invalid Parameter" code, naming the field.

use serde_json::{Map, Value};

use crate::errors::ApiError;

/// Twilio's "Invalid Parameter".
const INVALID_PARAMETER: i64 = 20422;

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(INVALID_PARAMETER, message)
}

pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(invalid("The request body must be a JSON object")),
    }
}

/// A string field: Err if present but not a string.
pub(crate) fn string<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{name} must be a string"))),
    }
}

pub(crate) fn required<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, ApiError> {
    string(fields, name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("Missing required parameter {name}")))
}

/// Refuses fields outside `allowed` (the schemas are closed: `additionalProperties: false`).
pub(crate) fn only(
    fields: &Map<String, Value>,
    allowed: &[&str],
    place: &str,
) -> Result<(), ApiError> {
    match fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(invalid(format!("Unknown field {unknown} in {place}"))),
        None => Ok(()),
    }
}
