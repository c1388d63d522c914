//! Handing recorded messages to their provider, and recording the answer.
//!
//! An attempt whose outcome is unknown (timeout, 5xx, connection lost after sending) is never
//! simply repeated: the message keeps `unknown_since`, and its next run first asks the provider
//! for messages from the same sender to the same recipient created since then. One that waygate
//! does not know yet is adopted; none means the attempt did not create a message, so it is sent
//! again; several are ambiguous, so the job is set aside for an operator and nothing is resent.
//! A status callback carrying our message id settles it earlier. How long to wait first is the
//! provider's: Meta, which keeps no message list, only waits for such a callback.

use super::{backoff_ms, Worker};
use crate::provider::{Accepted, Found, Provider, ProviderError};
use crate::store::{CheckRecorded, DispatchResult, Outgoing, StoreError};

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
    /// Still in the outbox; the runner retries or reconciles it.
    Pending,
}

const RETRY_BASE_MS: i64 = 1_000;
const RETRY_CAP_MS: i64 = 5 * 60_000;
/// Clock slack between us and the provider when asking what an unknown attempt created.
const RECONCILE_SLACK_MS: i64 = 60_000;

enum Reconciled {
    Found(Found),
    NotCreated,
    Ambiguous(usize),
}

impl Worker {
    /// Sends a message whose job is already claimed and records the result. `previous` says
    /// why an earlier attempt did not settle the job (`None` on the first).
    pub async fn dispatch(
        &self,
        job_id: i64,
        outgoing: &Outgoing,
        attempts: i64,
        previous: Option<&str>,
    ) -> Result<DispatchOutcome, StoreError> {
        let provider = match self.providers.for_kind(outgoing.provider) {
            Ok(provider) => provider,
            Err(e) => {
                return self
                    .settle(job_id, outgoing, attempts, self.clock.now_ms(), Err(e))
                    .await
            }
        };
        let resend_reason = match outgoing.unknown_since {
            None => previous.map(|error| ("after_retryable_error", error.to_string())),
            Some(since) => match self.reconcile(provider, outgoing, since).await {
                Ok(Reconciled::Found(found)) => {
                    tracing::info!(message_id = outgoing.message_id, sid = %found.sid, "reconciled: the earlier attempt had created the message");
                    metrics::counter!("waygate_reconcile_total", "outcome" => "adopted")
                        .increment(1);
                    let accepted = Accepted {
                        sid: found.sid,
                        status: found.status,
                        followups: Vec::new(),
                    };
                    return self
                        .settle(job_id, outgoing, attempts, since, Ok(accepted))
                        .await;
                }
                Ok(Reconciled::NotCreated) => {
                    metrics::counter!("waygate_reconcile_total", "outcome" => "not_created")
                        .increment(1);
                    Some((
                        "reconciled_not_created",
                        format!(
                            "the provider holds no message from the attempt of unknown outcome ({})",
                            previous.unwrap_or("unknown")
                        ),
                    ))
                }
                Ok(Reconciled::Ambiguous(n)) => {
                    metrics::counter!("waygate_reconcile_total", "outcome" => "ambiguous")
                        .increment(1);
                    let reason = format!(
                        "{n} provider messages to this recipient since the attempt of unknown outcome; not resending, resolve by hand"
                    );
                    return self.set_aside(job_id, outgoing, reason).await;
                }
                Err(e) => {
                    metrics::counter!("waygate_reconcile_total", "outcome" => "failed")
                        .increment(1);
                    // `attempts` counts the claims since the outcome became unknown.
                    if attempts + 1 >= self.reconcile_max_failures {
                        let reason = format!(
                            "reconciliation failed {} times in a row, last: {e}",
                            attempts + 1
                        );
                        return self.set_aside(job_id, outgoing, reason).await;
                    }
                    return self
                        .settle(job_id, outgoing, attempts, since, Err(unknown_still(e)))
                        .await;
                }
            },
        };
        if let Some((label, reason)) = resend_reason {
            tracing::warn!(message_id = outgoing.message_id, attempt = attempts + 1, %reason, "sending again");
            metrics::counter!("waygate_resends_total", "reason" => label).increment(1);
        }
        let started = self.clock.now_ms();
        let sent = provider.send(outgoing).await;
        self.settle(job_id, outgoing, attempts, started, sent).await
    }

    /// When to first look up the status of a message accepted at `now`, if its provider's
    /// reports can be lost.
    fn recheck_at(&self, outgoing: &Outgoing, now: i64) -> Option<i64> {
        self.providers
            .for_kind(outgoing.provider)
            .is_ok_and(|p| p.reports_can_be_lost())
            .then_some(now + self.status_recheck_after_ms)
    }

    /// How long after an attempt of unknown outcome its provider wants the reconciliation.
    fn reconcile_after_ms(&self, outgoing: &Outgoing) -> i64 {
        self.providers
            .for_kind(outgoing.provider)
            .map_or(0, |p| p.reconcile_after_ms())
    }

    /// Gives up on a send whose outcome cannot be settled, where an operator sees it.
    async fn set_aside(
        &self,
        job_id: i64,
        outgoing: &Outgoing,
        reason: String,
    ) -> Result<DispatchOutcome, StoreError> {
        tracing::error!(message_id = outgoing.message_id, job_id, %reason, "send set aside for an operator");
        metrics::counter!("waygate_jobs_set_aside_total", "kind" => "send").increment(1);
        self.store
            .set_aside_send(job_id, outgoing.message_id, reason, self.clock.now_ms())
            .await?;
        Ok(DispatchOutcome::Pending)
    }

    async fn reconcile(
        &self,
        provider: &dyn Provider,
        outgoing: &Outgoing,
        since: i64,
    ) -> Result<Reconciled, ProviderError> {
        let candidates = provider
            .created_since(outgoing, since - RECONCILE_SLACK_MS)
            .await?;
        let sids: Vec<String> = candidates.iter().map(|f| f.sid.clone()).collect();
        let known = self
            .store
            .known_sids(sids)
            .await
            .map_err(|e| ProviderError::Retryable {
                reason: e.to_string(),
                retry_after: None,
            })?;
        let mut unknown: Vec<Found> = candidates
            .into_iter()
            .filter(|f| !known.contains(&f.sid))
            .collect();
        Ok(match unknown.len() {
            0 => Reconciled::NotCreated,
            1 => Reconciled::Found(unknown.remove(0)),
            n => Reconciled::Ambiguous(n),
        })
    }

    /// Records what the provider said about the attempt begun at `started`.
    async fn settle(
        &self,
        job_id: i64,
        outgoing: &Outgoing,
        attempts: i64,
        started: i64,
        sent: Result<Accepted, ProviderError>,
    ) -> Result<DispatchOutcome, StoreError> {
        let now = self.clock.now_ms();
        let (result, outcome, label) = match sent {
            Ok(accepted) => (
                DispatchResult::Accepted {
                    sid: accepted.sid.clone(),
                    status: accepted.status,
                    followups: accepted.followups,
                    recheck_at: self.recheck_at(outgoing, now),
                },
                DispatchOutcome::Accepted {
                    sid: accepted.sid,
                    status: accepted.status.as_str().to_string(),
                },
                "accepted",
            ),
            Err(ProviderError::Rejected { code, message }) => (
                DispatchResult::Rejected {
                    code,
                    message: message.clone(),
                },
                DispatchOutcome::Rejected { code, message },
                "rejected",
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
                    "retry",
                )
            }
            Err(ProviderError::Unknown { reason }) => {
                tracing::warn!(message_id = outgoing.message_id, %reason, "send outcome unknown; will reconcile before resending");
                let wait = self.reconcile_after_ms(outgoing);
                (
                    DispatchResult::Unknown {
                        since: started,
                        // A reconciliation that failed is tried again later and later.
                        at: now
                            + match outgoing.unknown_since {
                                None => wait,
                                Some(_) => backoff_ms(wait, attempts, RETRY_CAP_MS.max(wait)),
                            },
                        error: reason,
                    },
                    DispatchOutcome::Pending,
                    "unknown",
                )
            }
        };
        metrics::counter!("waygate_dispatch_total", "outcome" => label).increment(1);
        self.store
            .record_dispatch(job_id, outgoing.message_id, result, now)
            .await?;
        Ok(outcome)
    }

    /// A send job found in the outbox (after a retry delay, an unknown outcome or a crash).
    pub(super) async fn dispatch_recorded(
        &self,
        job_id: i64,
        outgoing: Outgoing,
        attempts: i64,
        previous: Option<&str>,
    ) -> Result<(), String> {
        if outgoing.sid.is_some() {
            // A callback already told us the provider has it; its later reports may still be
            // lost, so its status is looked up like any accepted message's.
            if let Some(next_at) = self.recheck_at(&outgoing, self.clock.now_ms()) {
                let check = CheckRecorded {
                    next_at: Some(next_at),
                    unknown: None,
                };
                self.store
                    .record_status_check(outgoing.message_id, check)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            return self
                .store
                .complete_job(job_id)
                .await
                .map_err(|e| e.to_string());
        }
        self.dispatch(job_id, &outgoing, attempts, previous)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// A failed look at what an attempt of unknown outcome created leaves the outcome unknown:
/// looked at again later, never resent meanwhile.
fn unknown_still(e: ProviderError) -> ProviderError {
    ProviderError::Unknown {
        reason: format!("reconciliation failed: {e}"),
    }
}
