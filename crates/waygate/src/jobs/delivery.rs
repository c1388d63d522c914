//! Delivering webhook events to tenants' endpoints, signed per Standard Webhooks, retried
//! durably: 30 s, 60 s, 120 s, … for up to `MAX_ATTEMPTS` tries.

use serde::Deserialize;

use super::{backoff_ms, Worker};
use crate::model::Job;
use crate::signature::standard_webhook;
use crate::store::StoreError;

pub const MAX_ATTEMPTS: i64 = 8;
const FIRST_RETRY_MS: i64 = 30_000;
const RETRY_CAP_MS: i64 = 6 * 60 * 60_000;

#[derive(Deserialize)]
struct Delivery {
    webhook_id: i64,
    event_id: String,
    body: String,
}

impl Worker {
    pub(super) async fn deliver(&self, job: &Job) -> Result<(), StoreError> {
        let delivery: Delivery = match serde_json::from_str(&job.payload) {
            Ok(d) => d,
            Err(e) => {
                return self
                    .store
                    .bury_job(job.id, format!("bad payload: {e}"))
                    .await
            }
        };
        let Some(webhook) = self.store.get_webhook(delivery.webhook_id).await? else {
            // The subscription was deleted: nobody is waiting for this event any more.
            return self.store.complete_job(job.id).await;
        };
        let failure = match self.attempt(&webhook, &delivery).await {
            Ok(()) => {
                metrics::counter!("waygate_webhook_deliveries_total", "outcome" => "delivered")
                    .increment(1);
                return self.store.complete_job(job.id).await;
            }
            Err(reason) => reason,
        };
        let attempts = job.attempts + 1;
        tracing::warn!(webhook_id = webhook.id, event_id = %delivery.event_id, attempts, %failure, "webhook delivery failed");
        if attempts >= MAX_ATTEMPTS {
            metrics::counter!("waygate_webhook_deliveries_total", "outcome" => "abandoned")
                .increment(1);
            return self.store.bury_job(job.id, failure).await;
        }
        metrics::counter!("waygate_webhook_deliveries_total", "outcome" => "retry").increment(1);
        let at = self.clock.now_ms() + backoff_ms(FIRST_RETRY_MS, job.attempts, RETRY_CAP_MS);
        self.store.retry_job(job.id, at, failure).await
    }

    async fn attempt(
        &self,
        webhook: &crate::model::Webhook,
        delivery: &Delivery,
    ) -> Result<(), String> {
        // A named host is judged by the client's resolver, on the addresses it connects to.
        let url = crate::webhook_target::parse(&webhook.url, self.allow_private_webhooks)
            .map_err(|e| e.to_string())?;
        let now = self.clock.now_ms();
        let timestamp = now / 1000;
        let mut signatures = vec![standard_webhook(
            &webhook.secret,
            &delivery.event_id,
            timestamp,
            &delivery.body,
        )
        .ok_or("subscription secret is malformed")?];
        if let Some((old, until)) = &webhook.previous_secret {
            if *until > now {
                signatures.extend(standard_webhook(
                    old,
                    &delivery.event_id,
                    timestamp,
                    &delivery.body,
                ));
            }
        }
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("waygate/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", &delivery.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures.join(" "))
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(|e| format!("request failed: {}", with_causes(&e)))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("endpoint answered {}", response.status()))
        }
    }
}

/// An error followed by its causes: reqwest's own text stops at "error sending request",
/// short of why (such as a host with no public address).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::with_causes;

    #[tokio::test]
    async fn a_host_without_a_public_address_fails_with_that_reason() {
        let error = crate::webhook_target::delivery_client(false)
            .post("http://localhost:9/hook")
            .send()
            .await
            .unwrap_err();
        let reason = with_causes(&error);
        assert!(reason.contains("not a public address"), "{reason}");
    }
}
