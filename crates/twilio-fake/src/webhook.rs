//! Signed, form-encoded POSTs the way Twilio sends webhooks (§2), shared by status callbacks and
//! simulated inbound messages.

use reqwest::header::{CONTENT_TYPE, USER_AGENT};

use crate::server::Shared;
use crate::signature::signature;

/// Posts `params` to `url`, signed over `url` exactly as given; returns the answer's HTTP status.
pub(crate) async fn post_signed(
    shared: &Shared,
    url: &str,
    params: &[(String, String)],
) -> reqwest::Result<u16> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let response = shared
        .http
        .post(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(USER_AGENT, "TwilioProxy/1.1")
        .header(
            "X-Twilio-Signature",
            signature(&shared.config.auth_token, url, params),
        )
        // Fresh per post, as Twilio does: a retried delivery gets a new token too.
        .header("I-Twilio-Idempotency-Token", shared.rng.uuid())
        .header("X-Home-Region", "us1")
        .body(body)
        .send()
        .await?;
    Ok(response.status().as_u16())
}
