//! Twilio's Messages API (PROVIDERS.md §1): sends as form posts with HTTP Basic auth,
//! errors classified by what they say about whether the message was created.

mod catalog;
pub mod signature;

use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::http::{header, HeaderValue, Request, Uri};
use serde::Deserialize;
use waygate_core::gcra::Decision;
use waygate_core::status::MessageStatus;

use super::transport::{Transport, TransportError};
use super::{Accepted, Found, Provider, ProviderError, Reported};
use crate::clock::Clock;
use crate::config::Config;
use crate::keyed_gcra::KeyedGcra;
use crate::store::Outgoing;
use catalog::Endpoint;

pub struct Twilio {
    http: Transport,
    /// The Content API (templates and their WhatsApp approval), on its own host.
    content: Endpoint,
    /// The Messaging API v2 (WhatsApp senders), on its own host.
    messaging: Endpoint,
    /// Parsed once: parsing it again for every request was a twentieth of the dispatcher's
    /// CPU in the drain.
    messages_url: Uri,
    /// HTTP Basic credentials for every send, encoded once.
    authorization: HeaderValue,
    callback_base: String,
    /// Paces each WhatsApp sender to its throughput.
    pace: KeyedGcra<String>,
    /// `twilio_reconcile_after_ms`.
    reconcile_after_ms: i64,
}

#[derive(Deserialize)]
struct MessageResource {
    sid: String,
    status: String,
    #[serde(default)]
    date_created: Option<String>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    error_message: Option<String>,
}

#[derive(Deserialize)]
struct MessageList {
    messages: Vec<MessageResource>,
}

#[derive(Deserialize)]
pub(super) struct ErrorBody {
    pub(super) code: Option<i64>,
    pub(super) message: Option<String>,
}

impl Twilio {
    /// `None` without an account SID.
    pub fn from_config(config: &Config, clock: Clock) -> Option<Twilio> {
        if config.twilio_account_sid.is_empty() {
            return None;
        }
        let (username, password) = if config.twilio_api_key_sid.is_empty() {
            (
                config.twilio_account_sid.clone(),
                config.twilio_auth_token.clone(),
            )
        } else {
            (
                config.twilio_api_key_sid.clone(),
                config.twilio_api_key_secret.clone(),
            )
        };
        let messages_url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            config.twilio_api_base.trim_end_matches('/'),
            config.twilio_account_sid
        );
        let messages_url = Uri::try_from(messages_url)
            .map_err(|e| tracing::error!(error = %e, "invalid Twilio messages URL; Twilio is off"))
            .ok()?;
        let http = Transport::for_target(
            &messages_url,
            Duration::from_millis(config.twilio_timeout_ms),
            "Twilio",
        )?;
        let authorization = basic_authorization(&username, &password)?;
        let timeout = Duration::from_millis(config.twilio_timeout_ms);
        Some(Twilio {
            http,
            content: Endpoint::new(&config.twilio_content_api_base, timeout)?,
            messaging: Endpoint::new(&config.twilio_messaging_api_base, timeout)?,
            messages_url,
            authorization,
            callback_base: config.public_base_url(),
            pace: KeyedGcra::new(config.twilio_sender_mps, config.twilio_sender_mps, clock),
            reconcile_after_ms: i64::try_from(config.twilio_reconcile_after_ms).unwrap_or(i64::MAX),
        })
    }

    /// Where Twilio reports this message's statuses; it carries our id so that a message
    /// whose send answer was lost still finds its way.
    pub fn status_callback(&self, message_id: i64) -> String {
        format!(
            "{}/webhooks/twilio/status?message_id={message_id}",
            self.callback_base
        )
    }

    async fn paced(&self, sender: &str) {
        while let Decision::Deny { retry_after_micros } = self.pace.check(sender) {
            tokio::time::sleep(Duration::from_micros(retry_after_micros)).await;
        }
    }

    /// The send's form body, encoded straight into one string (serde_urlencoded's
    /// serializer cost more than the encoding itself).
    fn form(&self, m: &Outgoing) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::with_capacity(512));
        form.append_pair("To", &format!("whatsapp:{}", m.to));
        form.append_pair("From", &format!("whatsapp:{}", m.from));
        form.append_pair("StatusCallback", &self.status_callback(m.message_id));
        match &m.template_ref {
            Some(content_sid) => {
                form.append_pair("ContentSid", content_sid);
                if !m.variables.is_empty() {
                    let vars: serde_json::Map<String, serde_json::Value> = m
                        .variables
                        .iter()
                        .enumerate()
                        .map(|(i, v)| ((i + 1).to_string(), serde_json::Value::String(v.clone())))
                        .collect();
                    form.append_pair(
                        "ContentVariables",
                        &serde_json::Value::Object(vars).to_string(),
                    );
                }
            }
            None => {
                form.append_pair("Body", &m.body);
            }
        }
        form.finish()
    }

    /// The Messages list filtered by `query`.
    fn list_uri(&self, query: &str) -> Result<Uri, ProviderError> {
        uri(format!("{}?{query}", self.messages_url))
    }

    /// One message's resource: `…/Messages/{sid}.json`.
    fn message_uri(&self, sid: &str) -> Result<Uri, ProviderError> {
        let list = self.messages_url.to_string();
        uri(format!("{}/{sid}.json", list.trim_end_matches(".json")))
    }

    /// A request to `uri` with our credentials.
    fn request(
        &self,
        method: &str,
        uri: Uri,
        body: Bytes,
    ) -> Result<Request<Bytes>, ProviderError> {
        self.request_of(method, uri, body, "application/x-www-form-urlencoded")
    }

    /// A request to `uri` with our credentials and a body of `content_type`.
    fn request_of(
        &self,
        method: &str,
        uri: Uri,
        body: Bytes,
        content_type: &str,
    ) -> Result<Request<Bytes>, ProviderError> {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(header::ACCEPT, "application/json");
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        request.body(body).map_err(|e| ProviderError::Retryable {
            reason: format!("cannot form a Twilio request: {e}"),
            retry_after: None,
        })
    }
}

fn uri(text: String) -> Result<Uri, ProviderError> {
    Uri::try_from(text).map_err(|e| ProviderError::Retryable {
        reason: format!("cannot form a Twilio URL: {e}"),
        retry_after: None,
    })
}

/// `Basic base64(user:password)`, marked sensitive so that it never shows in debug output.
fn basic_authorization(username: &str, password: &str) -> Option<HeaderValue> {
    use base64::Engine;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .map_err(|e| tracing::error!(error = %e, "Twilio credentials cannot form a header; Twilio is off"))
        .ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// What a failed request says about whether Twilio may have created the message.
fn transport_error(e: TransportError) -> ProviderError {
    match e {
        TransportError::Connect(reason) => ProviderError::Retryable {
            reason,
            retry_after: None,
        },
        TransportError::Failed(reason) => ProviderError::Unknown { reason },
    }
}

#[async_trait]
impl Provider for Twilio {
    async fn send(&self, m: &Outgoing) -> Result<Accepted, ProviderError> {
        self.paced(&m.from).await;
        let request = self.request("POST", self.messages_url.clone(), Bytes::from(self.form(m)))?;
        let answer = self.http.exchange(request).await.map_err(transport_error)?;
        let (status, body) = (answer.status, &answer.body);
        if status.is_success() {
            let resource: MessageResource =
                serde_json::from_slice(body).map_err(|e| ProviderError::Unknown {
                    reason: format!("Twilio answered {status} with an unreadable body: {e}"),
                })?;
            return Ok(Accepted {
                status: MessageStatus::parse(&resource.status).unwrap_or(MessageStatus::Queued),
                sid: resource.sid,
                followups: Vec::new(),
            });
        }
        if status.as_u16() == 401 {
            // Our credentials are wrong: the message is not at fault, so it waits in the
            // outbox until an operator fixes the configuration.
            tracing::error!("Twilio refused waygate's credentials (401); check twilio_account_sid and the auth token or API key");
            return Err(ProviderError::Retryable {
                reason: "Twilio refused the credentials (401)".into(),
                retry_after: None,
            });
        }
        if status.as_u16() == 429 {
            return Err(ProviderError::Retryable {
                reason: "Twilio answered 429 Too Many Requests".into(),
                retry_after: answer.retry_after(),
            });
        }
        if status.is_client_error() {
            let error: Option<ErrorBody> = serde_json::from_slice(body).ok();
            let code = error
                .as_ref()
                .and_then(|e| e.code)
                .unwrap_or(i64::from(status.as_u16()));
            let message = error
                .and_then(|e| e.message)
                .unwrap_or_else(|| format!("Twilio answered {status}"));
            return Err(ProviderError::Rejected { code, message });
        }
        Err(ProviderError::Unknown {
            reason: format!("Twilio answered {status}"),
        })
    }

    fn reconcile_after_ms(&self) -> i64 {
        self.reconcile_after_ms
    }

    async fn created_since(
        &self,
        m: &Outgoing,
        since_ms: i64,
    ) -> Result<Vec<Found>, ProviderError> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("To", &format!("whatsapp:{}", m.to))
            .append_pair("From", &format!("whatsapp:{}", m.from))
            .append_pair("PageSize", "50")
            .finish();
        let request = self.request("GET", self.list_uri(&query)?, Bytes::new())?;
        let answer = self.http.exchange(request).await.map_err(transport_error)?;
        if !answer.status.is_success() {
            return Err(ProviderError::Retryable {
                reason: format!("listing messages answered {}", answer.status),
                retry_after: answer.retry_after(),
            });
        }
        let list: MessageList =
            serde_json::from_slice(&answer.body).map_err(|e| ProviderError::Retryable {
                reason: format!("unreadable message list: {e}"),
                retry_after: None,
            })?;
        // RFC 2822 dates have whole seconds.
        let since_secs = since_ms.div_euclid(1000);
        Ok(list
            .messages
            .into_iter()
            .filter(|r| {
                r.date_created
                    .as_deref()
                    .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                    .is_some_and(|d| d.timestamp() >= since_secs)
            })
            .filter_map(|r| {
                Some(Found {
                    status: MessageStatus::parse(&r.status)?,
                    sid: r.sid,
                })
            })
            .collect())
    }

    fn reports_can_be_lost(&self) -> bool {
        // Twilio does not retry a status callback that failed to arrive.
        true
    }

    async fn fetch_status(&self, sid: &str) -> Result<Option<Reported>, ProviderError> {
        let request = self.request("GET", self.message_uri(sid)?, Bytes::new())?;
        let answer = self.http.exchange(request).await.map_err(|e| match e {
            TransportError::Connect(reason) | TransportError::Failed(reason) => {
                ProviderError::Retryable {
                    reason,
                    retry_after: None,
                }
            }
        })?;
        if answer.status.as_u16() == 404 {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(ProviderError::Retryable {
                reason: format!("fetching message {sid} answered {}", answer.status),
                retry_after: answer.retry_after(),
            });
        }
        let resource: MessageResource =
            serde_json::from_slice(&answer.body).map_err(|e| ProviderError::Retryable {
                reason: format!("unreadable message {sid}: {e}"),
                retry_after: None,
            })?;
        let status =
            MessageStatus::parse(&resource.status).ok_or_else(|| ProviderError::Retryable {
                reason: format!("message {sid} has an unknown status {:?}", resource.status),
                retry_after: None,
            })?;
        Ok(Some(Reported {
            status,
            error_code: resource.error_code,
            error_message: resource.error_message,
        }))
    }
}
