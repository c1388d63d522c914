//! The job runner: claims due outbox rows and executes them. The background loop and the
//! tests' `run_due` share one code path.

mod delivery;
mod dispatch;
mod status_check;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub use dispatch::DispatchOutcome;

use crate::clock::Clock;
use crate::config::Config;
use crate::model::Job;
use crate::provider::Providers;
use crate::store::{Outgoing, Store, StoreResult};

const BATCH: i64 = 256;
/// Scheduled status steps applied per write operation, at first. Small, so that the steps
/// never hold the writer long ahead of the sends queued behind it: at half the peak rate,
/// one operation of up to 2,048 gave p50 4.6 ms and p99 19.6 ms, these lanes 2.7–3.2 ms and
/// 8.9–10.9 ms (docs/PERFORMANCE.md).
const STATUS_BATCH: i64 = 32;
/// While steps fall behind, a lane doubles its batch up to this, so that they catch up
/// (two lanes of 256 apply ~100k steps/s at a 5 ms round trip; 2,048 held the writer for up
/// to 20 ms on a slow machine).
const STATUS_BATCH_MAX: i64 = 256;
/// Background tasks applying status steps, each with one small operation in flight, so that
/// the steps keep up with the sends although each operation waits for its commit.
const STATUS_LANES: usize = 2;
const IDLE_POLL: Duration = Duration::from_millis(100);
const DEPTH_EVERY: Duration = Duration::from_secs(1);

pub struct Worker {
    pub store: Arc<dyn Store>,
    pub providers: Arc<Providers>,
    pub clock: Clock,
    pub http: reqwest::Client,
    pub allow_private_webhooks: bool,
    /// How long a claimed job stays invisible to other claimers.
    pub lease_ms: i64,
    /// Reconciliations of an unknown outcome that may fail in a row before the send is set
    /// aside for an operator.
    pub reconcile_max_failures: i64,
    /// When a provider-accepted message's status is first fetched, unless final by then.
    pub status_recheck_after_ms: i64,
    /// Age after which a message's status is no longer fetched.
    pub status_recheck_max_age_ms: i64,
}

#[derive(Deserialize)]
struct MessageJob {
    message_id: i64,
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        providers: Arc<Providers>,
        clock: Clock,
        config: &Config,
    ) -> Worker {
        let http = crate::webhook_target::delivery_client(config.webhooks_allow_private);
        Worker {
            store,
            providers,
            clock,
            http,
            allow_private_webhooks: config.webhooks_allow_private,
            lease_ms: millis(config.job_lease_ms),
            reconcile_max_failures: i64::from(config.reconcile_max_failures),
            status_recheck_after_ms: millis(config.status_reconcile_after_ms),
            status_recheck_max_age_ms: millis(config.status_reconcile_max_age_ms),
        }
    }

    /// Applies every status step due now, then claims and runs the jobs due now, once;
    /// returns how much ran. The background runner does the same, with the steps in lanes.
    pub async fn run_due(&self) -> StoreResult<usize> {
        let now = self.clock.now_ms();
        let mut statuses = 0;
        loop {
            match self.store.apply_due_statuses(now, STATUS_BATCH).await? {
                0 => break,
                applied => statuses += applied,
            }
        }
        let checks = self.check_statuses(now).await?;
        Ok(statuses + checks + self.run_claimed(now).await?)
    }

    /// Claims the jobs due at `now` (not status steps) and runs them; returns how many.
    async fn run_claimed(&self, now: i64) -> StoreResult<usize> {
        let jobs = self.store.claim_jobs(now, self.lease_ms, BATCH).await?;
        let count = jobs.len();
        // The messages behind send jobs, read in one go rather than one read per job.
        // Each send job's message id, parsed once.
        let jobs: Vec<(Job, Option<i64>)> = jobs
            .into_iter()
            .map(|job| {
                let id = (job.kind == "send")
                    .then(|| serde_json::from_str::<MessageJob>(&job.payload).ok())
                    .flatten()
                    .map(|p| p.message_id);
                (job, id)
            })
            .collect();
        let message_ids: Vec<i64> = jobs.iter().filter_map(|(_, id)| *id).collect();
        let mut outgoing: HashMap<i64, Outgoing> = match message_ids.is_empty() {
            true => HashMap::new(),
            false => self
                .store
                .outgoing(message_ids)
                .await?
                .into_iter()
                .map(|o| (o.message_id, o))
                .collect(),
        };
        let runs = jobs.into_iter().map(|(job, id)| {
            let message = id.and_then(|id| outgoing.remove(&id));
            self.execute(job, message)
        });
        futures_util::future::join_all(runs).await;
        Ok(count)
    }

    /// Runs due jobs until stopped.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let lanes: Vec<_> = (0..STATUS_LANES)
            .map(|_| tokio::spawn(self.clone().step_statuses(stop.clone())))
            .collect();
        let checks = tokio::spawn(self.clone().recheck_statuses(stop.clone()));
        let mut last_depth = std::time::Instant::now() - DEPTH_EVERY;
        loop {
            let ran = match self.run_claimed(self.clock.now_ms()).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "job runner cannot claim jobs");
                    0
                }
            };
            // Counting the outbox costs a scan: once a second is plenty for a gauge.
            if last_depth.elapsed() >= DEPTH_EVERY {
                last_depth = std::time::Instant::now();
                publish_gauges(self.store.as_ref()).await;
            }
            if !idle_or_stopped(ran, IDLE_POLL, &stop).await {
                break;
            }
        }
        futures_util::future::join_all(lanes).await;
        let _ = checks.await;
    }

    /// Looks up the statuses due a check, every `status_check::EVERY` (more often while a
    /// whole batch was due), until stopped.
    async fn recheck_statuses(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let ran = match self.check_statuses(self.clock.now_ms()).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "job runner cannot claim status checks");
                    0
                }
            };
            if !idle_or_stopped(ran, status_check::EVERY, &stop).await {
                return;
            }
        }
    }

    /// One lane of status steps: applies due steps, one operation at a time, in batches
    /// that grow while a whole batch was due and shrink back once one was not.
    async fn step_statuses(self: Arc<Self>, stop: CancellationToken) {
        let mut batch = STATUS_BATCH;
        loop {
            let now = self.clock.now_ms();
            let applied = match self.store.apply_due_statuses(now, batch).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "job runner cannot apply status steps");
                    0
                }
            };
            batch = match applied as i64 >= batch {
                true => (batch * 2).min(STATUS_BATCH_MAX),
                false => (batch / 2).max(STATUS_BATCH),
            };
            if !idle_or_stopped(applied, IDLE_POLL, &stop).await {
                return;
            }
        }
    }

    async fn execute(&self, job: Job, message: Option<Outgoing>) {
        let result = match job.kind.as_str() {
            "send" => match message {
                Some(outgoing) => {
                    self.dispatch_recorded(
                        job.id,
                        outgoing,
                        job.attempts,
                        job.last_error.as_deref(),
                    )
                    .await
                }
                None => Err("bad payload or message not found".to_string()),
            },
            "webhook" => self
                .deliver(&job)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            other => Err(format!("unknown job kind {other}")),
        };
        if let Err(reason) = result {
            tracing::error!(job_id = job.id, %reason, "job failed");
            if let Err(e) = self.store.bury_job(job.id, reason).await {
                tracing::error!(job_id = job.id, error = %e, "cannot bury job");
            }
        }
    }
}

fn millis(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Sets the gauges of the outbox and of what needs an operator.
pub async fn publish_gauges(store: &dyn Store) {
    match store.queue_gauges().await {
        Ok(g) => {
            metrics::gauge!("waygate_queue_depth").set(g.live as f64);
            metrics::gauge!("waygate_jobs_set_aside").set(g.set_aside as f64);
            metrics::gauge!("waygate_messages_status_unknown").set(g.status_unknown as f64);
        }
        Err(e) => tracing::warn!(error = %e, "cannot count the outbox"),
    }
}

/// After a pass that did `done` things: waits `idle` if it did nothing; returns whether to go
/// on (false once stopped). Every background loop paces itself with this.
pub(crate) async fn idle_or_stopped(done: usize, idle: Duration, stop: &CancellationToken) -> bool {
    if done == 0 {
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(idle) => {}
        }
    }
    !stop.is_cancelled()
}

/// Exponential backoff: `base` doubled per earlier attempt, capped, plus up to 10 % jitter.
pub fn backoff_ms(base_ms: i64, attempts: i64, cap_ms: i64) -> i64 {
    let exp = base_ms.saturating_mul(1i64 << attempts.clamp(0, 30));
    let delay = exp.min(cap_ms);
    delay + crate::secrets::jitter_ms((delay / 10).max(0) as u64) as i64
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_and_caps() {
        for (attempts, base) in [(0, 30_000), (1, 60_000), (2, 120_000), (3, 240_000)] {
            let d = backoff_ms(30_000, attempts, 3_600_000);
            assert!(d >= base && d < base + base / 10 + 1, "{attempts}: {d}");
        }
        assert!(backoff_ms(30_000, 40, 3_600_000) <= 3_960_000);
    }
}
