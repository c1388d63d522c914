//! Templates through Twilio's Content API and their WhatsApp approval (PROVIDERS.md §4), and
//! senders through the Senders API v2 (§5). Both live on hosts of their own
//! (`twilio_content_api_base`, `twilio_messaging_api_base`).

use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::http::{StatusCode, Uri};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use waygate_core::template_submission::Button;

use super::{ErrorBody, Twilio};
use crate::model::{
    QualityRating, Review, Sender, SenderReport, SenderStatus, Template, TemplateStatus,
};
use crate::provider::catalog::{Catalog, Submitted};
use crate::provider::transport::{Answer, Transport};
use crate::provider::ProviderError;

/// One of Twilio's API hosts, and the client that reaches it.
pub(super) struct Endpoint {
    base: String,
    http: Transport,
}

impl Endpoint {
    /// `None` (Twilio off, logged) when the base URL cannot be used.
    pub(super) fn new(base: &str, timeout: Duration) -> Option<Endpoint> {
        let base = base.trim_end_matches('/').to_string();
        let target = Uri::try_from(base.as_str())
            .map_err(
                |e| tracing::error!(error = %e, %base, "invalid Twilio API base; Twilio is off"),
            )
            .ok()?;
        Some(Endpoint {
            http: Transport::for_target(&target, timeout, "Twilio")?,
            base,
        })
    }

    fn uri(&self, path: &str) -> Result<Uri, ProviderError> {
        Uri::try_from(format!("{}{path}", self.base)).map_err(|e| ProviderError::Retryable {
            reason: format!("cannot form a Twilio URL: {e}"),
            retry_after: None,
        })
    }
}

#[derive(Deserialize)]
struct ContentResource {
    sid: String,
}

#[derive(Deserialize)]
struct ApprovalFetch {
    whatsapp: Approval,
}

#[derive(Deserialize)]
struct Approval {
    status: String,
    #[serde(default)]
    rejection_reason: Option<String>,
}

#[derive(Deserialize)]
struct SenderResource {
    status: String,
    #[serde(default)]
    properties: Option<SenderProperties>,
}

#[derive(Deserialize)]
struct SenderProperties {
    #[serde(default)]
    quality_rating: Option<String>,
    #[serde(default)]
    messaging_limit: Option<String>,
}

impl Twilio {
    /// Sends `body` as JSON (or nothing) to `path` on `endpoint`, and reads the answer.
    async fn call(
        &self,
        endpoint: &Endpoint,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, ProviderError> {
        let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let request = self.request_of(method, endpoint.uri(path)?, bytes, "application/json")?;
        endpoint
            .http
            .exchange(request)
            .await
            .map_err(|e| ProviderError::Retryable {
                reason: format!("Twilio did not answer: {e:?}"),
                retry_after: None,
            })
    }
}

/// A refusal with Twilio's code for a 4xx answer, a failure to try again for any other.
fn refusal(answer: &Answer, what: &str) -> ProviderError {
    let status = answer.status;
    let body: Option<ErrorBody> = serde_json::from_slice(&answer.body).ok();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS => ProviderError::Retryable {
            reason: format!("{what}: Twilio answered {status}"),
            retry_after: answer.retry_after(),
        },
        s if s.is_client_error() => ProviderError::Rejected {
            code: body
                .as_ref()
                .and_then(|b| b.code)
                .unwrap_or(i64::from(s.as_u16())),
            message: body
                .and_then(|b| b.message)
                .unwrap_or_else(|| format!("{what}: Twilio answered {s}")),
        },
        s => ProviderError::Retryable {
            reason: format!("{what}: Twilio answered {s}"),
            retry_after: answer.retry_after(),
        },
    }
}

fn read<T: for<'de> Deserialize<'de>>(answer: &Answer, what: &str) -> Result<T, ProviderError> {
    serde_json::from_slice(&answer.body).map_err(|e| ProviderError::Retryable {
        reason: format!("{what}: unreadable answer from Twilio: {e}"),
        retry_after: None,
    })
}

/// The Content create body: the body text with its samples as `variables`, as the richest
/// types the template's parts call for (a card for a header or footer, quick replies or calls
/// to action for buttons), each with a plain fallback Twilio picks when it must.
fn content(template: &Template) -> Value {
    let body = template.body.as_str();
    let samples: Map<String, Value> = template
        .samples
        .iter()
        .enumerate()
        .map(|(i, v)| ((i + 1).to_string(), Value::String(v.clone())))
        .collect();
    let replies: Vec<Value> = template
        .buttons
        .iter()
        .filter_map(|b| match b {
            Button::QuickReply { text } => {
                Some(json!({"type": "QUICK_REPLY", "title": text, "id": text}))
            }
            _ => None,
        })
        .collect();
    let calls: Vec<Value> = template
        .buttons
        .iter()
        .filter_map(|b| match b {
            Button::Url { text, url } => Some(json!({"type": "URL", "title": text, "url": url})),
            Button::PhoneNumber { text, phone_number } => {
                Some(json!({"type": "PHONE_NUMBER", "title": text, "phone": phone_number.as_str()}))
            }
            Button::QuickReply { .. } => None,
        })
        .collect();
    let mut types = Map::new();
    types.insert("twilio/text".into(), json!({ "body": body }));
    if !replies.is_empty() {
        types.insert(
            "twilio/quick-reply".into(),
            json!({"body": body, "actions": replies}),
        );
    }
    if !calls.is_empty() {
        types.insert(
            "twilio/call-to-action".into(),
            json!({"body": body, "actions": calls}),
        );
    }
    if template.header_text.is_some() || template.footer_text.is_some() {
        let mut card = json!({ "body": body });
        if let Some(header) = &template.header_text {
            card["header_text"] = json!(header);
        }
        if let Some(footer) = &template.footer_text {
            card["footer"] = json!(footer);
        }
        let actions: Vec<Value> = replies.iter().chain(&calls).cloned().collect();
        if !actions.is_empty() {
            card["actions"] = Value::Array(actions);
        }
        types.insert("whatsapp/card".into(), card);
    }
    json!({
        "friendly_name": template.name,
        "language": template.language,
        "variables": samples,
        "types": types,
    })
}

/// Twilio's approval status as waygate's template status (PROVIDERS.md §4).
fn review(approval: Approval) -> Review {
    let reason = approval.rejection_reason.filter(|r| !r.is_empty());
    let status = match approval.status.to_ascii_lowercase().as_str() {
        "approved" => TemplateStatus::Approved,
        "rejected" => TemplateStatus::Rejected,
        "paused" => TemplateStatus::Paused,
        "disabled" | "deleted" | "pending_deletion" => TemplateStatus::Disabled,
        // unsubmitted, received, pending, in_appeal, and anything new: not decided yet.
        _ => TemplateStatus::Pending,
    };
    Review {
        rejection_reason: (status == TemplateStatus::Rejected)
            .then_some(reason)
            .flatten(),
        status,
    }
}

/// The limit string of the Senders API (`"10K Customers/24hr"`, `"250"`, `"Unlimited"`), read
/// leniently: `Some(None)` is unlimited, `None` unreadable.
fn messaging_limit(text: &str) -> Option<Option<i64>> {
    let first = text.split_whitespace().next()?.to_ascii_uppercase();
    if first.starts_with("UNLIMITED") {
        return Some(None);
    }
    let (digits, scale) = match first.strip_suffix('K') {
        Some(d) => (d, 1_000),
        None => match first.strip_suffix('M') {
            Some(d) => (d, 1_000_000),
            None => (first.as_str(), 1),
        },
    };
    let number: f64 = digits.replace(',', "").parse().ok()?;
    Some(Some((number * f64::from(scale)).round() as i64))
}

fn quality(text: &str) -> Option<QualityRating> {
    match text.to_ascii_uppercase().as_str() {
        "HIGH" | "GREEN" => Some(QualityRating::Green),
        "MEDIUM" | "YELLOW" => Some(QualityRating::Yellow),
        "LOW" | "RED" => Some(QualityRating::Red),
        _ => None,
    }
}

#[async_trait]
impl Catalog for Twilio {
    async fn submit(&self, _: &Sender, template: &Template) -> Result<Submitted, ProviderError> {
        let created = self
            .call(
                &self.content,
                "POST",
                "/v1/Content",
                Some(content(template)),
            )
            .await?;
        if created.status != StatusCode::CREATED && !created.status.is_success() {
            return Err(refusal(&created, "creating the template"));
        }
        let sid = read::<ContentResource>(&created, "creating the template")?.sid;
        let approval = json!({
            "name": template.name,
            "category": template.category.as_str().to_ascii_uppercase(),
        });
        let path = format!("/v1/Content/{sid}/ApprovalRequests/whatsapp");
        let submitted = self
            .call(&self.content, "POST", &path, Some(approval))
            .await;
        let refused = match submitted {
            Ok(answer) if answer.status.is_success() => {
                let approval: Approval = read(&answer, "submitting the template")?;
                return Ok(Submitted {
                    provider_ref: Some(sid),
                    review: review(approval),
                });
            }
            Ok(answer) => refusal(&answer, "submitting the template"),
            Err(e) => e,
        };
        // Nothing is kept of a template whose submission failed, at Twilio either.
        let path = format!("/v1/Content/{sid}");
        if let Err(e) = self.call(&self.content, "DELETE", &path, None).await {
            tracing::error!(%sid, error = %e, "a Content whose approval request failed could not be deleted");
        }
        Err(refused)
    }

    async fn review(&self, _: &Sender, template: &Template) -> Result<Review, ProviderError> {
        let Some(sid) = &template.provider_ref else {
            // Typed in by an operator without its Content sid: nothing to read.
            return Ok(Review {
                status: template.status,
                rejection_reason: template.rejection_reason.clone(),
            });
        };
        let path = format!("/v1/Content/{sid}/ApprovalRequests");
        let answer = self.call(&self.content, "GET", &path, None).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(Review {
                status: TemplateStatus::Disabled,
                rejection_reason: Some(format!("Content {sid} no longer exists at Twilio")),
            });
        }
        if !answer.status.is_success() {
            return Err(refusal(&answer, "reading the template's approval"));
        }
        Ok(review(
            read::<ApprovalFetch>(&answer, "reading the template's approval")?.whatsapp,
        ))
    }

    async fn delete(&self, _: &Sender, template: &Template) -> Result<(), ProviderError> {
        let Some(sid) = &template.provider_ref else {
            return Ok(());
        };
        let answer = self
            .call(&self.content, "DELETE", &format!("/v1/Content/{sid}"), None)
            .await?;
        match answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
            true => Ok(()),
            false => Err(refusal(&answer, "deleting the template")),
        }
    }

    async fn sender(&self, sender: &Sender) -> Result<Option<SenderReport>, ProviderError> {
        let Some(sid) = &sender.provider_ref else {
            return Ok(None);
        };
        let path = format!("/v2/Channels/Senders/{sid}");
        let answer = self.call(&self.messaging, "GET", &path, None).await?;
        if !answer.status.is_success() {
            return Err(refusal(&answer, "reading the sender"));
        }
        let resource: SenderResource = read(&answer, "reading the sender")?;
        let properties = resource.properties;
        let rating = properties
            .as_ref()
            .and_then(|p| p.quality_rating.as_deref())
            .and_then(quality);
        let limit = properties
            .as_ref()
            .and_then(|p| p.messaging_limit.as_deref())
            .and_then(messaging_limit)
            .unwrap_or(sender.messaging_limit);
        Ok(Some(SenderReport {
            status: match resource.status.to_ascii_uppercase().as_str() {
                "ONLINE" | "ONLINE:UPDATING" => SenderStatus::Online,
                _ => SenderStatus::Offline,
            },
            quality_rating: rating,
            messaging_limit: limit,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_leniently() {
        assert_eq!(messaging_limit("10K Customers/24hr"), Some(Some(10_000)));
        assert_eq!(messaging_limit("250 Customers/24hr"), Some(Some(250)));
        assert_eq!(messaging_limit("1k"), Some(Some(1_000)));
        assert_eq!(messaging_limit("100K"), Some(Some(100_000)));
        assert_eq!(messaging_limit("Unlimited"), Some(None));
        assert_eq!(messaging_limit("soon"), None);
        assert_eq!(messaging_limit(""), None);
    }

    #[test]
    fn approval_states_map_to_template_statuses() {
        let of = |status: &str, reason: &str| {
            review(Approval {
                status: status.into(),
                rejection_reason: Some(reason.into()),
            })
        };
        assert_eq!(of("approved", "").status, TemplateStatus::Approved);
        assert_eq!(of("received", "").status, TemplateStatus::Pending);
        assert_eq!(of("IN_APPEAL", "").status, TemplateStatus::Pending);
        assert_eq!(of("paused", "").status, TemplateStatus::Paused);
        assert_eq!(of("deleted", "").status, TemplateStatus::Disabled);
        let rejected = of("rejected", "INVALID_FORMAT");
        assert_eq!(rejected.status, TemplateStatus::Rejected);
        assert_eq!(rejected.rejection_reason.as_deref(), Some("INVALID_FORMAT"));
        assert_eq!(of("approved", "stale").rejection_reason, None);
    }
}
