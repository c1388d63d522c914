//! Validation of the create-message form (§1.2), with Twilio's synchronous error codes (§1.5).

use std::collections::HashMap;
use std::ops::RangeInclusive;

use crate::errors::ApiError;

const MAX_BODY_CHARS: usize = 1600;

/// A create request that passed validation.
#[derive(Debug, Default)]
pub(crate) struct CreateRequest {
    pub(crate) to: String,
    pub(crate) from: String,
    pub(crate) body: Option<String>,
    pub(crate) content_sid: Option<String>,
    pub(crate) content_variables: Option<String>,
    pub(crate) status_callback: Option<String>,
    pub(crate) messaging_service_sid: Option<String>,
    pub(crate) num_media: usize,
}

/// Parses and checks a form body. Repeated keys are allowed: scalars take their first value, and
/// each `MediaUrl` counts. Empty values count as absent, as with Twilio.
/// `known_content` tells whether a well-formed `ContentSid` names a template.
pub(crate) fn parse_create(
    form: &[u8],
    known_content: impl Fn(&str) -> bool,
) -> Result<CreateRequest, ApiError> {
    let mut to = None;
    let mut from = None;
    let mut req = CreateRequest::default();
    for (name, value) in url::form_urlencoded::parse(form) {
        let slot = match name.as_ref() {
            "To" => &mut to,
            "From" => &mut from,
            "Body" => &mut req.body,
            "ContentSid" => &mut req.content_sid,
            "ContentVariables" => &mut req.content_variables,
            "StatusCallback" => &mut req.status_callback,
            "MessagingServiceSid" => &mut req.messaging_service_sid,
            "MediaUrl" => {
                req.num_media += usize::from(!value.is_empty());
                continue;
            }
            _ => continue,
        };
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value.into_owned());
        }
    }

    let to = to.ok_or_else(|| ApiError::bad_request(21604, "A 'To' phone number is required."))?;
    if !is_whatsapp_number(&to, 8..=15) {
        return Err(ApiError::bad_request(
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        ));
    }
    let from =
        from.ok_or_else(|| ApiError::bad_request(21603, "A 'From' phone number is required."))?;
    if !is_whatsapp_number(&from, 1..=15) {
        return Err(ApiError::bad_request(
            21212,
            format!(
                "The 'From' number {from} is not a valid phone number, shortcode, or \
                 alphanumeric sender ID."
            ),
        ));
    }
    if req.content_variables.is_some() && req.content_sid.is_none() {
        return Err(ApiError::bad_request(21654, "ContentSid Required"));
    }
    if req.body.is_none() && req.content_sid.is_none() && req.num_media == 0 {
        return Err(ApiError::bad_request(
            21619,
            "A text message body or media URL must be specified.",
        ));
    }
    if let Some(sid) = &req.content_sid {
        if !is_sid(sid, "HX") || !known_content(sid) {
            return Err(ApiError::bad_request(21655, "The Content SID is Invalid."));
        }
    }
    if let Some(vars) = &req.content_variables {
        if serde_json::from_str::<HashMap<String, String>>(vars).is_err() {
            return Err(ApiError::bad_request(
                21656,
                "The ContentVariables Parameter is invalid.",
            ));
        }
    }
    if req
        .body
        .as_ref()
        .is_some_and(|b| b.chars().count() > MAX_BODY_CHARS)
    {
        return Err(ApiError::bad_request(
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    if let Some(callback) = &req.status_callback {
        let valid = url::Url::parse(callback).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        });
        if !valid {
            return Err(ApiError::bad_request(21609, "Invalid StatusCallback url"));
        }
    }
    req.to = to;
    req.from = from;
    Ok(req)
}

/// `whatsapp:+<digits>` with a digit count in `lengths`.
fn is_whatsapp_number(address: &str, lengths: RangeInclusive<usize>) -> bool {
    address.strip_prefix("whatsapp:+").is_some_and(|digits| {
        lengths.contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// `prefix` + 32 hex digits.
fn is_sid(sid: &str, prefix: &str) -> bool {
    sid.strip_prefix(prefix)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}
