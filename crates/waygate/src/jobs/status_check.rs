//! Statuses recovered from providers whose callbacks can be lost (Twilio does not retry one
//! that found waygate down). A message a provider accepted is looked up by its id once
//! `status_reconcile_after_ms` has passed without a final status, then again after twice
//! the wait each time, until it is final or older than `status_reconcile_max_age_ms`. What
//! the provider says moves the message on the same state machine as a callback (a failure
//! refunds once). A message the provider does not know, or whose status could not be read
//! by the end, is marked `status_unknown` for an operator.

use std::time::Duration;

use futures_util::StreamExt;

use super::{backoff_ms, Worker};
use crate::model::StatusUnknown;
use crate::provider::{ProviderError, Reported};
use crate::store::{CheckRecorded, StatusCheck, StatusTarget, StatusUpdate, StoreResult};

/// Checks claimed per pass, and run at once: each is one small request to the provider.
const BATCH: i64 = 64;
const CONCURRENCY: usize = 8;
/// Delays between checks double from `status_reconcile_after_ms` up to this.
const MAX_DELAY_MS: i64 = 6 * 60 * 60 * 1000;
/// How often the runner looks for due checks.
pub(super) const EVERY: Duration = Duration::from_secs(1);

impl Worker {
    /// Runs the status checks due at `now`; returns how many ran.
    pub async fn check_statuses(&self, now: i64) -> StoreResult<usize> {
        let due = self
            .store
            .claim_status_checks(now, self.lease_ms, BATCH)
            .await?;
        let count = due.len();
        futures_util::stream::iter(due)
            .for_each_concurrent(CONCURRENCY, |check| async move {
                let id = check.message_id;
                if let Err(e) = self.check_status(check).await {
                    tracing::error!(message_id = id, error = %e, "cannot record a status check");
                }
            })
            .await;
        Ok(count)
    }

    async fn check_status(&self, check: StatusCheck) -> StoreResult<()> {
        let reported = match self.providers.for_kind(check.provider) {
            Ok(provider) => provider.fetch_status(&check.sid).await,
            Err(e) => Err(e),
        };
        let now = self.clock.now_ms();
        let too_old = now - check.created_at >= self.status_recheck_max_age_ms;
        let next_at = (!too_old).then(|| {
            now + backoff_ms(
                self.status_recheck_after_ms,
                check.rechecks + 1,
                MAX_DELAY_MS,
            )
        });
        let recorded = match reported {
            Ok(Some(Reported {
                status,
                error_code,
                error_message,
            })) => {
                metrics::counter!("waygate_status_checks_total", "outcome" => "found").increment(1);
                let applied = self
                    .store
                    .apply_status(StatusUpdate {
                        target: StatusTarget::MessageId(check.message_id),
                        status,
                        error_code,
                        error_message,
                        at: now,
                    })
                    .await?;
                tracing::debug!(
                    message_id = check.message_id,
                    status = status.as_str(),
                    ?applied,
                    "status fetched from the provider"
                );
                CheckRecorded {
                    next_at: next_at.filter(|_| !status.is_final()),
                    unknown: None,
                }
            }
            Ok(None) => {
                metrics::counter!("waygate_status_checks_total", "outcome" => "not_found")
                    .increment(1);
                tracing::warn!(message_id = check.message_id, sid = %check.sid, "the provider does not know this message");
                CheckRecorded {
                    next_at,
                    unknown: Some(StatusUnknown {
                        since: now,
                        reason: format!("the provider does not know message {}", check.sid),
                    }),
                }
            }
            Err(e) => {
                metrics::counter!("waygate_status_checks_total", "outcome" => "failed")
                    .increment(1);
                tracing::warn!(message_id = check.message_id, error = %e, "cannot fetch a status from the provider");
                CheckRecorded {
                    next_at,
                    unknown: next_at.is_none().then(|| gave_up(now, &e)),
                }
            }
        };
        self.store
            .record_status_check(check.message_id, recorded)
            .await
    }
}

fn gave_up(now: i64, e: &ProviderError) -> StatusUnknown {
    StatusUnknown {
        since: now,
        reason: format!("the status could not be fetched from the provider: {e}"),
    }
}
