//! Handing recorded messages to their provider, and recording the answer.

use std::time::Duration;

use super::{backoff_ms, Worker};
use crate::provider::ProviderError;
use crate::store::{DispatchResult, Outgoing, StoreError};

/// What the send endpoint tells its caller.
#[derive(Debug, Clone)]
pub enum DispatchOutcome {
    Accepted {
        sid: String,
        status: String,
    },
    Rejected {
        code: i64,
        message: String,
    },
    /// Still in the outbox; the runner retries it.
    Pending,
}

const RETRY_BASE_MS: i64 = 1_000;
const RETRY_CAP_MS: i64 = 5 * 60_000;

impl Worker {
    /// Sends a message whose job is already claimed and records the result.
    pub async fn dispatch(
        &self,
        job_id: i64,
        outgoing: &Outgoing,
        attempts: i64,
    ) -> Result<DispatchOutcome, StoreError> {
        let sent = match self.providers.for_kind(outgoing.provider) {
            Ok(provider) => provider.send(outgoing).await,
            Err(e) => Err(e),
        };
        let now = self.clock.now_ms();
        let (result, outcome) = match sent {
            Ok(accepted) => {
                let outcome = DispatchOutcome::Accepted {
                    sid: accepted.sid.clone(),
                    status: accepted.status.as_str().to_string(),
                };
                let result = DispatchResult::Accepted {
                    sid: accepted.sid,
                    status: accepted.status,
                    followups: accepted.followups,
                };
                (result, outcome)
            }
            Err(ProviderError::Rejected { code, message }) => (
                DispatchResult::Rejected {
                    code,
                    message: message.clone(),
                },
                DispatchOutcome::Rejected { code, message },
            ),
            Err(ProviderError::Retryable {
                reason,
                retry_after,
            }) => {
                let backoff = backoff_ms(RETRY_BASE_MS, attempts, RETRY_CAP_MS);
                let wait = retry_after
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(RETRY_CAP_MS))
                    .unwrap_or(0)
                    .max(backoff);
                tracing::warn!(message_id = outgoing.message_id, %reason, wait_ms = wait, "send will be retried");
                (
                    DispatchResult::Retry {
                        at: now + wait,
                        error: reason,
                    },
                    DispatchOutcome::Pending,
                )
            }
        };
        let outcome_label = match &outcome {
            DispatchOutcome::Accepted { .. } => "accepted",
            DispatchOutcome::Rejected { .. } => "rejected",
            DispatchOutcome::Pending => "retry",
        };
        metrics::counter!("waygate_dispatch_total", "outcome" => outcome_label).increment(1);
        self.store
            .record_dispatch(job_id, outgoing.message_id, result, now)
            .await?;
        Ok(outcome)
    }

    /// Dispatches, but answers `Pending` after `wait` while the dispatch goes on behind.
    pub async fn dispatch_within(
        self: &std::sync::Arc<Self>,
        job_id: i64,
        outgoing: Outgoing,
        wait: Duration,
    ) -> DispatchOutcome {
        let worker = self.clone();
        let task = tokio::spawn(async move { worker.dispatch(job_id, &outgoing, 0).await });
        match tokio::time::timeout(wait, task).await {
            Ok(Ok(Ok(outcome))) => outcome,
            Ok(Ok(Err(e))) => {
                tracing::error!(error = %e, job_id, "cannot record a dispatch; the job will run again");
                DispatchOutcome::Pending
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, job_id, "dispatch task failed; the job will run again");
                DispatchOutcome::Pending
            }
            Err(_) => DispatchOutcome::Pending,
        }
    }

    /// A send job found in the outbox (after a retry delay or a crash).
    pub(super) async fn dispatch_recorded(
        &self,
        job_id: i64,
        message_id: i64,
        attempts: i64,
    ) -> Result<DispatchOutcome, String> {
        let outgoing = self
            .store
            .outgoing(message_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("message {message_id} not found"))?;
        self.dispatch(job_id, &outgoing, attempts)
            .await
            .map_err(|e| e.to_string())
    }
}
