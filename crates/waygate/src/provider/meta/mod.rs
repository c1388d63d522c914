//! Meta's WhatsApp Cloud API (PROVIDERS.md §6, API.md §12): JSON requests to the Graph API with
//! a bearer token, its error envelope classified by what it says about the message.

mod catalog;
mod messages;
pub mod webhook;

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderValue, Request, StatusCode, Uri};
use serde::Deserialize;

use super::transport::{Answer, Transport, TransportError};
use super::ProviderError;
use crate::config::Config;

pub struct Meta {
    http: Transport,
    /// `{meta_api_base}/{meta_api_version}`, which every path follows.
    graph: String,
    /// `Bearer {meta_access_token}`, marked sensitive.
    authorization: HeaderValue,
    /// `meta_unknown_wait_ms`.
    unknown_wait_ms: i64,
}

/// Graph's error envelope: `{"error":{"message","type","code",…}}`.
#[derive(Deserialize)]
struct ErrorEnvelope {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<i64>,
}

/// Throughput (130429), pair rate (131056) and API rate (80007) limits: the message is not at
/// fault and goes later.
const RATE_LIMIT_CODES: [i64; 3] = [130_429, 131_056, 80_007];
/// An expired or invalid access token.
const TOKEN_CODE: i64 = 190;

impl Meta {
    /// `None` without an access token.
    pub fn from_config(config: &Config) -> Option<Meta> {
        if config.meta_access_token.is_empty() {
            return None;
        }
        let graph = format!(
            "{}/{}",
            config.meta_api_base.trim_end_matches('/'),
            config.meta_api_version
        );
        let target = Uri::try_from(graph.as_str())
            .map_err(|e| tracing::error!(error = %e, "invalid Meta Graph API URL; Meta is off"))
            .ok()?;
        let http = Transport::for_target(
            &target,
            Duration::from_millis(config.meta_timeout_ms),
            "Meta",
        )?;
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", config.meta_access_token))
                .map_err(|e| tracing::error!(error = %e, "the Meta access token cannot form a header; Meta is off"))
                .ok()?;
        authorization.set_sensitive(true);
        Some(Meta {
            http,
            graph,
            authorization,
            unknown_wait_ms: i64::try_from(config.meta_unknown_wait_ms).unwrap_or(i64::MAX),
        })
    }

    /// `method {graph}/{path}` with our token and, when given, a JSON body.
    async fn call(
        &self,
        method: &str,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<Answer, TransportError> {
        let uri = Uri::try_from(format!("{}/{path}", self.graph))
            .map_err(|e| TransportError::Connect(format!("cannot form a Meta URL: {e}")))?;
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(header::ACCEPT, "application/json");
        let body = match json {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(json.to_string())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(body)
            .map_err(|e| TransportError::Connect(format!("cannot form a Meta request: {e}")))?;
        self.http.exchange(request).await
    }
}

/// What a request that brought no answer says about whether Meta may have acted on it.
fn transport_error(e: TransportError) -> ProviderError {
    match e {
        TransportError::Connect(reason) => ProviderError::Retryable {
            reason,
            retry_after: None,
        },
        TransportError::Failed(reason) => ProviderError::Unknown { reason },
    }
}

/// Classifies an answer that is not a success (§6.2): rate limits are retried, a refused token
/// keeps the message waiting for an operator, a server error may have acted, anything else is
/// Meta's refusal of the request itself.
fn refusal(answer: &Answer) -> ProviderError {
    let status = answer.status;
    let error = serde_json::from_slice::<ErrorEnvelope>(&answer.body)
        .ok()
        .map(|e| e.error);
    let code = error.as_ref().and_then(|e| e.code);
    let message = error
        .and_then(|e| e.message)
        .unwrap_or_else(|| format!("Meta answered {status}"));
    if status == StatusCode::TOO_MANY_REQUESTS
        || code.is_some_and(|c| RATE_LIMIT_CODES.contains(&c))
    {
        return ProviderError::Retryable {
            reason: format!("Meta's rate limit: {message}"),
            retry_after: answer.retry_after(),
        };
    }
    if status == StatusCode::UNAUTHORIZED || code == Some(TOKEN_CODE) {
        // Our token is wrong or expired: the message is not at fault, so it waits in the
        // outbox until an operator sets a valid meta_access_token.
        tracing::error!(%message, "Meta refused waygate's access token; check meta_access_token");
        return ProviderError::Retryable {
            reason: format!("Meta refused the access token: {message}"),
            retry_after: None,
        };
    }
    if status.is_server_error() || !status.is_client_error() {
        return ProviderError::Unknown {
            reason: format!("Meta answered {status}: {message}"),
        };
    }
    ProviderError::Rejected {
        code: code.unwrap_or(i64::from(status.as_u16())),
        message,
    }
}

/// A successful answer's body, or the refusal it is.
fn success<T: serde::de::DeserializeOwned>(
    answer: Result<Answer, TransportError>,
) -> Result<T, ProviderError> {
    let answer = answer.map_err(transport_error)?;
    if !answer.status.is_success() {
        return Err(refusal(&answer));
    }
    serde_json::from_slice(&answer.body).map_err(|e| ProviderError::Unknown {
        reason: format!(
            "Meta answered {} with an unreadable body: {e}",
            answer.status
        ),
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        }
    }

    fn error(status: u16, code: i64) -> ProviderError {
        refusal(&answer(
            status,
            &format!(
                r#"{{"error":{{"message":"(#{code}) text","type":"OAuthException","code":{code}}}}}"#
            ),
        ))
    }

    #[test]
    fn errors_are_classified_as_meta_documents_them() {
        for (status, code) in [(429, 130_429), (400, 131_056), (429, 80_007), (400, 80_007)] {
            assert!(
                matches!(error(status, code), ProviderError::Retryable { .. }),
                "{code}"
            );
        }
        assert!(matches!(error(401, 190), ProviderError::Retryable { .. }));
        assert!(matches!(error(500, 131_000), ProviderError::Unknown { .. }));
        assert!(matches!(error(503, 2), ProviderError::Unknown { .. }));
        match error(404, 132_001) {
            ProviderError::Rejected { code, message } => {
                assert_eq!(code, 132_001);
                assert_eq!(message, "(#132001) text");
            }
            other => panic!("{other:?}"),
        }
        match refusal(&answer(400, "not json")) {
            ProviderError::Rejected { code, .. } => assert_eq!(code, 400),
            other => panic!("{other:?}"),
        }
    }
}
