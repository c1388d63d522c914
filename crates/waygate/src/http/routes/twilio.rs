//! Twilio's webhooks (API.md §7 "In"): accepted only with a valid `X-Twilio-Signature`,
//! computed over the public URL Twilio called; anything else is refused with 403 and nothing
//! is stored. Without a configured auth token every request is refused.

use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::error::MAX_BODY_BYTES;
use crate::http::AppState;
use crate::model::{Media, ProviderKind};
use crate::provider::twilio::signature;
use crate::service::provider_webhooks::{ProviderInbound, ProviderStatus};

struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn owned(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }
}

fn refuse(reason: &str) -> Response {
    tracing::warn!(reason, "Twilio webhook refused");
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({ "error": reason })),
    )
        .into_response()
}

/// The form parameters of a request that Twilio really sent, or the refusal.
async fn verified(
    app: &AppState,
    uri: &OriginalUri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Form, Response> {
    let token = &app.services.config.twilio_auth_token;
    if token.is_empty() {
        // The operator's omission, not a server fault: the request is refused.
        tracing::warn!(
            "a Twilio webhook arrived but twilio_auth_token is not set: it cannot be verified"
        );
        return Err(refuse("signature cannot be verified"));
    }
    let Some(given) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(refuse("missing X-Twilio-Signature"));
    };
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| refuse("body too large"))?;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{path}", app.services.config.public_base_url());
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return match signature::valid_json(token, &url, &bytes, given) {
            true => Ok(Form(Vec::new())),
            false => Err(refuse("invalid signature")),
        };
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    if !signature::valid_form(token, &url, &params, given) {
        return Err(refuse("invalid signature"));
    }
    Ok(Form(params))
}

fn strip_channel(address: &str) -> String {
    address
        .strip_prefix("whatsapp:")
        .unwrap_or(address)
        .to_string()
}

#[utoipa::path(post, path = "/webhooks/twilio/status", tag = "provider webhooks", security(()),
    params(("message_id" = Option<i64>, Query, description = "waygate's message id, set in the StatusCallback URL")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "Twilio status callback"),
    responses((status = 204, description = "applied, or a repeat that changed nothing"), (status = 400, description = "MessageSid or MessageStatus missing"),
               (status = 403, description = "signature missing or invalid")))]
pub async fn status(
    State(app): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match verified(&app, &uri, &headers, body).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let message_id = uri
        .query()
        .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "message_id"))
        .and_then(|(_, v)| v.parse().ok());
    let (Some(sid), Some(status)) = (
        form.owned("MessageSid").or(form.owned("SmsSid")),
        form.owned("MessageStatus").or(form.owned("SmsStatus")),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "MessageSid and MessageStatus are required",
        )
            .into_response();
    };
    let update = ProviderStatus {
        sid,
        status,
        error_code: form.get("ErrorCode").and_then(|c| c.parse().ok()),
        error_message: form.owned("ErrorMessage"),
        message_id,
    };
    match app.services.provider_status(update).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        // Twilio retries on errors, so a passing store failure loses nothing.
        Err(e) => crate::http::error::ApiError::from(e).into_response(),
    }
}

const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";

#[utoipa::path(post, path = "/webhooks/twilio/inbound", tag = "provider webhooks", security(()),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "Twilio inbound WhatsApp message"),
    responses((status = 200, description = "empty TwiML: stored, seen before, or for an unknown number"), (status = 400, description = "MessageSid, From or To missing"),
               (status = 403, description = "signature missing or invalid")))]
pub async fn inbound(
    State(app): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match verified(&app, &uri, &headers, body).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let (Some(sid), Some(from), Some(to)) = (
        form.owned("MessageSid").or(form.owned("SmsMessageSid")),
        form.get("From"),
        form.get("To"),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "MessageSid, From and To are required",
        )
            .into_response();
    };
    let media_count: usize = form
        .get("NumMedia")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let media = (0..media_count.min(10))
        .filter_map(|i| {
            Some(Media {
                url: Some(form.owned(&format!("MediaUrl{i}"))?),
                content_type: form
                    .owned(&format!("MediaContentType{i}"))
                    .unwrap_or_default(),
                provider_media_id: None,
            })
        })
        .collect();
    // A customer without a phone number (a WhatsApp username) still has a WaId or an id.
    let from = strip_channel(from);
    let from = match (from.starts_with('+'), form.get("WaId")) {
        (false, Some(wa_id)) if wa_id.chars().all(|c| c.is_ascii_digit()) => format!("+{wa_id}"),
        _ => from,
    };
    let inbound = ProviderInbound {
        sid,
        to: strip_channel(to),
        from,
        body: form
            .owned("Body")
            .or(form.owned("ButtonText"))
            .unwrap_or_default(),
        profile_name: form.owned("ProfileName"),
        media,
        button_payload: form.owned("ButtonPayload"),
        reply_to_sid: None,
    };
    match app
        .services
        .provider_inbound(ProviderKind::Twilio, inbound)
        .await
    {
        Ok(_) => ([(header::CONTENT_TYPE, "text/xml")], EMPTY_TWIML).into_response(),
        Err(e) => crate::http::error::ApiError::from(e).into_response(),
    }
}
