//! Templates' and senders' statuses kept in step with their providers, without an operator:
//! each is read back on a schedule (a pending template every `template_pending_poll_s`, other
//! templates every `template_sync_s`, senders every `sender_sync_s`), and a change is applied
//! once and announced once (`template.status`, `sender.status`) by the store.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{ServiceError, Services};
use crate::model::{Sender, Template, TemplateStatus};

/// Readings claimed per pass; each is one small request to a provider.
const BATCH: i64 = 32;
/// How often the background task looks for due readings.
const EVERY: Duration = Duration::from_secs(1);
/// How long a claimed reading belongs to this process before another may take it.
const LEASE_MS: i64 = 60_000;

impl Services {
    /// When a template in `status` is next read from its provider.
    pub(crate) fn next_template_sync(&self, status: TemplateStatus, now: i64) -> i64 {
        let every_s = match status {
            TemplateStatus::Pending => self.config.template_pending_poll_s,
            _ => self.config.template_sync_s,
        };
        now.saturating_add(seconds(every_s))
    }

    fn next_sender_sync(&self, now: i64) -> i64 {
        now.saturating_add(seconds(self.config.sender_sync_s))
    }

    /// Reads every template and sender whose reading is due; returns how many were read.
    pub async fn sync_due_catalog(&self) -> Result<usize, ServiceError> {
        let now = self.clock.now_ms();
        let templates = self
            .store
            .claim_template_syncs(now, LEASE_MS, BATCH)
            .await?;
        let senders = self.store.claim_sender_syncs(now, LEASE_MS, BATCH).await?;
        let count = templates.len() + senders.len();
        for template in templates {
            let id = template.id;
            if let Err(e) = self.sync_template(template).await {
                tracing::warn!(template_id = id, error = %e, "cannot read a template's status");
            }
        }
        for sender in senders {
            let id = sender.id;
            if let Err(e) = self.sync_sender(sender).await {
                tracing::warn!(sender_id = id, error = %e, "cannot read a sender's status");
            }
        }
        Ok(count)
    }

    /// Reads the template's status from its provider now and applies it; the template as it
    /// stands afterwards. A reading that fails leaves the template as it was, due again on
    /// its schedule.
    pub async fn sync_template(&self, template: Template) -> Result<Template, ServiceError> {
        let now = self.clock.now_ms();
        let sender = self
            .store
            .get_sender(template.sender_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let catalog = self.worker.providers.catalog_for(sender.provider);
        let review = match catalog {
            Ok(catalog) => catalog.review(&sender, &template).await,
            Err(e) => Err(e),
        };
        let review = match review {
            Ok(review) => review,
            Err(e) => {
                self.store
                    .record_review(
                        template.id,
                        crate::model::Review {
                            status: template.status,
                            rejection_reason: template.rejection_reason.clone(),
                        },
                        Some(self.next_template_sync(template.status, now)),
                        now,
                    )
                    .await?;
                return Err(ServiceError::from_provider(sender.provider, e));
            }
        };
        let next_at = self.next_template_sync(review.status, now);
        match self
            .store
            .record_review(template.id, review, Some(next_at), now)
            .await?
        {
            Some(changed) => {
                tracing::info!(
                    template_id = changed.id,
                    status = changed.status.as_str(),
                    "template status changed at the provider"
                );
                self.cache.templates.forget(&changed.id);
                Ok(changed)
            }
            None => Ok(template),
        }
    }

    async fn sync_sender(&self, sender: Sender) -> Result<(), ServiceError> {
        let now = self.clock.now_ms();
        let next_at = self.next_sender_sync(now);
        let report = match self.worker.providers.catalog_for(sender.provider) {
            Ok(catalog) => catalog.sender(&sender).await,
            Err(e) => Err(e),
        };
        let report = match report {
            Ok(Some(report)) => report,
            // Nothing to read (the simulator): the operator's settings stand.
            Ok(None) => {
                self.store
                    .record_sender_report(sender.id, unchanged(&sender), next_at, now)
                    .await?;
                return Ok(());
            }
            Err(e) => {
                self.store
                    .record_sender_report(sender.id, unchanged(&sender), next_at, now)
                    .await?;
                return Err(ServiceError::from_provider(sender.provider, e));
            }
        };
        if let Some(changed) = self
            .store
            .record_sender_report(sender.id, report, next_at, now)
            .await?
        {
            tracing::info!(
                sender_id = changed.id,
                status = changed.status.as_str(),
                "sender changed at the provider"
            );
            self.cache.senders.forget(&changed.id);
        }
        Ok(())
    }

    /// Reads due templates and senders every second until `stop`.
    pub async fn run_catalog_sync(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let read = match self.sync_due_catalog().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim template and sender readings");
                    0
                }
            };
            if !crate::jobs::idle_or_stopped(read, EVERY, &stop).await {
                return;
            }
        }
    }
}

/// A report that changes nothing: the sender as it stands.
fn unchanged(sender: &Sender) -> crate::model::SenderReport {
    crate::model::SenderReport {
        status: sender.status,
        quality_rating: Some(sender.quality_rating),
        messaging_limit: sender.messaging_limit,
    }
}

fn seconds(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}
