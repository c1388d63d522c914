//! Sends through `POST /{phone_number_id}/messages` (§6.1). Meta keeps no list of messages to
//! reconcile with: every send carries our message id in `biz_opaque_callback_data`, so that a
//! status webhook settles an attempt whose answer was lost.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use waygate_core::status::MessageStatus;

use super::{success, Meta};
use crate::provider::{Accepted, Found, Provider, ProviderError};
use crate::store::Outgoing;

#[derive(Deserialize)]
struct SendAnswer {
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

/// The request body for `m`: its template by name and language with the body parameters in
/// order, or a text message.
fn body(m: &Outgoing) -> Result<Value, ProviderError> {
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": m.to,
        "biz_opaque_callback_data": m.message_id.to_string(),
    });
    if m.template_ref.is_none() && m.template_locale.is_none() {
        body["type"] = "text".into();
        body["text"] = json!({"preview_url": false, "body": m.body});
        return Ok(body);
    }
    let Some(locale) = &m.template_locale else {
        return Err(ProviderError::Retryable {
            reason: "the template's name and language are unknown".into(),
            retry_after: None,
        });
    };
    let mut template = json!({
        "name": locale.name,
        "language": {"policy": "deterministic", "code": locale.language},
    });
    if !m.variables.is_empty() {
        let parameters: Vec<Value> = m
            .variables
            .iter()
            .map(|v| json!({"type": "text", "text": v}))
            .collect();
        template["components"] = json!([{"type": "body", "parameters": parameters}]);
    }
    body["type"] = "template".into();
    body["template"] = template;
    Ok(body)
}

#[async_trait]
impl Provider for Meta {
    async fn send(&self, m: &Outgoing) -> Result<Accepted, ProviderError> {
        let Some(phone_number_id) = &m.sender_ref else {
            // The operator has not linked the sender to its Meta number: it waits until then.
            tracing::error!(
                message_id = m.message_id,
                "a Meta sender has no provider_ref (its phone number id); its messages wait"
            );
            return Err(ProviderError::Retryable {
                reason: "the sender has no Meta phone number id (provider_ref)".into(),
                retry_after: None,
            });
        };
        let body = body(m)?;
        let answer = self
            .call("POST", &format!("{phone_number_id}/messages"), Some(&body))
            .await;
        let sent: SendAnswer = success(answer)?;
        let sid = sent
            .messages
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or_else(|| ProviderError::Unknown {
                reason: "Meta accepted the message without naming it".into(),
            })?;
        Ok(Accepted {
            sid,
            status: MessageStatus::Accepted,
            followups: Vec::new(),
        })
    }

    fn reconcile_after_ms(&self) -> i64 {
        self.unknown_wait_ms
    }

    /// Meta has no list of messages: a status webhook carrying our id is the only news of an
    /// attempt, so when none came within the wait the attempt created nothing.
    async fn created_since(&self, _: &Outgoing, _: i64) -> Result<Vec<Found>, ProviderError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProviderKind;
    use crate::store::TemplateLocale;

    fn outgoing(template: bool) -> Outgoing {
        Outgoing {
            message_id: 42,
            sid: None,
            unknown_since: None,
            provider: ProviderKind::Meta,
            from: "+15550783881".into(),
            to: "+14155551234".into(),
            body: "Hello Ada, your code is 1234.".into(),
            template_ref: template.then(|| "1234567890".into()),
            template_locale: template.then(|| TemplateLocale {
                name: "code".into(),
                language: "en_US".into(),
            }),
            variables: if template {
                vec!["Ada".into(), "1234".into()]
            } else {
                Vec::new()
            },
            sender_ref: Some("106540352242922".into()),
        }
    }

    #[test]
    fn a_template_send_names_the_template_and_its_parameters_in_order() {
        let body = body(&outgoing(true)).unwrap();
        assert_eq!(body["type"], "template");
        assert_eq!(body["biz_opaque_callback_data"], "42");
        assert_eq!(body["template"]["name"], "code");
        assert_eq!(body["template"]["language"]["code"], "en_US");
        assert_eq!(
            body["template"]["components"][0]["parameters"],
            json!([{"type": "text", "text": "Ada"}, {"type": "text", "text": "1234"}])
        );
    }

    #[test]
    fn a_freeform_send_is_text() {
        let body = body(&outgoing(false)).unwrap();
        assert_eq!(body["type"], "text");
        assert_eq!(body["text"]["body"], "Hello Ada, your code is 1234.");
        assert!(body.get("template").is_none());
    }
}
