//! Templates at the WhatsApp Business Account (`/{waba_id}/message_templates`, read back by
//! template id) and the sender's phone number as Graph reports it (API.md §11).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{success, Meta};
use crate::model::{
    QualityRating, Review, Sender, SenderReport, SenderStatus, Template, TemplateStatus,
};
use crate::provider::catalog::{Catalog, Submitted};
use crate::provider::ProviderError;

#[derive(Deserialize)]
struct Created {
    id: String,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct TemplateRead {
    status: String,
    #[serde(default)]
    rejected_reason: Option<String>,
}

#[derive(Deserialize)]
struct PhoneRead {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    quality_rating: Option<String>,
    #[serde(default)]
    messaging_limit_tier: Option<String>,
}

/// Waygate's status for Meta's template status or event; `None` for one waygate does not
/// track (FLAGGED, DELETED, …), which leaves the template as it is.
pub(super) fn template_status(meta: &str) -> Option<TemplateStatus> {
    Some(match meta {
        "APPROVED" | "REINSTATED" => TemplateStatus::Approved,
        "PENDING" | "IN_APPEAL" => TemplateStatus::Pending,
        "REJECTED" => TemplateStatus::Rejected,
        "PAUSED" => TemplateStatus::Paused,
        "DISABLED" => TemplateStatus::Disabled,
        _ => return None,
    })
}

/// What review says, the reason kept only for a template that is not approved or pending
/// (Meta says `"NONE"` when there is none).
pub(super) fn review(status: TemplateStatus, reason: Option<String>) -> Review {
    let keeps_reason = !matches!(status, TemplateStatus::Approved | TemplateStatus::Pending);
    Review {
        status,
        rejection_reason: reason.filter(|r| keeps_reason && !r.is_empty() && r != "NONE"),
    }
}

/// `messaging_limit_tier` as a number of customers per 24 h; `None` is unlimited (and any
/// tier waygate does not know, which sets no limit of its own).
fn messaging_limit(tier: &str) -> Option<i64> {
    match tier {
        "TIER_250" => Some(250),
        "TIER_1K" => Some(1_000),
        "TIER_2K" => Some(2_000),
        "TIER_10K" => Some(10_000),
        "TIER_100K" => Some(100_000),
        _ => None,
    }
}

/// The phone number as waygate sees it; what Meta leaves out keeps the sender's last value.
fn sender_report(sender: &Sender, phone: PhoneRead) -> SenderReport {
    SenderReport {
        status: match phone.status.as_deref() {
            Some("CONNECTED") => SenderStatus::Online,
            _ => SenderStatus::Offline,
        },
        quality_rating: phone
            .quality_rating
            .as_deref()
            .and_then(QualityRating::parse),
        messaging_limit: match phone.messaging_limit_tier.as_deref() {
            Some(tier) => messaging_limit(tier),
            None => sender.messaging_limit,
        },
    }
}

/// The creation request: HEADER, BODY with its samples, FOOTER and BUTTONS.
fn creation(template: &Template) -> Value {
    let mut components = Vec::new();
    if let Some(header) = &template.header_text {
        components.push(json!({"type": "HEADER", "format": "TEXT", "text": header}));
    }
    let mut body = json!({"type": "BODY", "text": template.body.as_str()});
    if !template.samples.is_empty() {
        body["example"] = json!({ "body_text": [template.samples] });
    }
    components.push(body);
    if let Some(footer) = &template.footer_text {
        components.push(json!({"type": "FOOTER", "text": footer}));
    }
    if !template.buttons.is_empty() {
        // Submitted as `{"type": "quick_reply" | "url" | "phone_number", …}`; Meta spells the
        // types in capitals and takes the same fields.
        let buttons: Vec<Value> = template
            .buttons
            .iter()
            .filter_map(|b| serde_json::to_value(b).ok())
            .map(|mut b| {
                let kind = b["type"].as_str().unwrap_or_default().to_ascii_uppercase();
                b["type"] = kind.into();
                b
            })
            .collect();
        components.push(json!({"type": "BUTTONS", "buttons": buttons}));
    }
    json!({
        "name": template.name,
        "language": template.language,
        "category": template.category.as_str().to_ascii_uppercase(),
        "components": components,
    })
}

fn waba_id(sender: &Sender) -> Result<&str, ProviderError> {
    sender
        .waba_id
        .as_deref()
        .ok_or_else(|| ProviderError::Retryable {
            reason: "the sender has no WhatsApp Business Account id (waba_id)".into(),
            retry_after: None,
        })
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    query.finish()
}

#[async_trait]
impl Catalog for Meta {
    async fn submit(
        &self,
        sender: &Sender,
        template: &Template,
    ) -> Result<Submitted, ProviderError> {
        let path = format!("{}/message_templates", waba_id(sender)?);
        let created: Created = success(self.call("POST", &path, Some(&creation(template))).await)?;
        let status = created
            .status
            .as_deref()
            .and_then(template_status)
            .unwrap_or(TemplateStatus::Pending);
        Ok(Submitted {
            provider_ref: Some(created.id),
            review: review(status, None),
        })
    }

    async fn review(&self, _: &Sender, template: &Template) -> Result<Review, ProviderError> {
        let Some(id) = &template.provider_ref else {
            return Err(ProviderError::Retryable {
                reason: "the template has no Meta template id".into(),
                retry_after: None,
            });
        };
        let path = format!("{id}?{}", query(&[("fields", "status,rejected_reason")]));
        let read: TemplateRead = success(self.call("GET", &path, None).await)?;
        let status = template_status(&read.status).ok_or_else(|| ProviderError::Retryable {
            reason: format!(
                "template {id} has a status waygate does not track: {}",
                read.status
            ),
            retry_after: None,
        })?;
        Ok(review(status, read.rejected_reason))
    }

    async fn delete(&self, sender: &Sender, template: &Template) -> Result<(), ProviderError> {
        let mut pairs = vec![("name", template.name.as_str())];
        // Only this language's template, when its id is known (the name covers them all).
        if let Some(id) = &template.provider_ref {
            pairs.push(("hsm_id", id.as_str()));
        }
        let path = format!("{}/message_templates?{}", waba_id(sender)?, query(&pairs));
        let answer = self.call("DELETE", &path, None).await;
        match success::<Value>(answer) {
            Ok(_) => Ok(()),
            Err(ProviderError::Rejected { message, .. })
                if message.to_ascii_lowercase().contains("not found") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn sender(&self, sender: &Sender) -> Result<Option<SenderReport>, ProviderError> {
        let Some(id) = &sender.provider_ref else {
            return Ok(None);
        };
        let path = format!(
            "{id}?{}",
            query(&[("fields", "status,quality_rating,messaging_limit_tier")])
        );
        let phone: PhoneRead = success(self.call("GET", &path, None).await)?;
        Ok(Some(sender_report(sender, phone)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(status: &str, quality: &str, tier: &str) -> PhoneRead {
        PhoneRead {
            status: Some(status.into()),
            quality_rating: Some(quality.into()),
            messaging_limit_tier: Some(tier.into()),
        }
    }

    #[test]
    fn a_phone_number_reads_as_section_11_says() {
        let sender = Sender {
            id: 1,
            user_id: 1,
            phone_number: "+15550783881".into(),
            display_name: "Acme".into(),
            status: SenderStatus::Online,
            quality_rating: QualityRating::Yellow,
            messaging_limit: Some(1_000),
            provider: crate::model::ProviderKind::Meta,
            provider_ref: Some("1".into()),
            waba_id: Some("2".into()),
        };
        let report = sender_report(&sender, phone("CONNECTED", "GREEN", "TIER_10K"));
        assert_eq!(report.status, SenderStatus::Online);
        assert_eq!(report.quality_rating, Some(QualityRating::Green));
        assert_eq!(report.messaging_limit, Some(10_000));
        let report = sender_report(&sender, phone("FLAGGED", "UNKNOWN", "TIER_UNLIMITED"));
        assert_eq!(report.status, SenderStatus::Offline);
        assert_eq!(report.quality_rating, None, "UNKNOWN keeps the last rating");
        assert_eq!(report.messaging_limit, None, "unlimited");
        assert_eq!(messaging_limit("TIER_250"), Some(250));
        assert_eq!(messaging_limit("TIER_100K"), Some(100_000));
    }

    #[test]
    fn template_statuses_map_to_waygates() {
        assert_eq!(template_status("IN_APPEAL"), Some(TemplateStatus::Pending));
        assert_eq!(template_status("PAUSED"), Some(TemplateStatus::Paused));
        assert_eq!(template_status("FLAGGED"), None);
        let rejected = review(TemplateStatus::Rejected, Some("INVALID_FORMAT".into()));
        assert_eq!(rejected.rejection_reason.as_deref(), Some("INVALID_FORMAT"));
        assert_eq!(
            review(TemplateStatus::Approved, Some("NONE".into())).rejection_reason,
            None
        );
    }
}
