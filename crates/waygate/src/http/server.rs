//! The HTTP listener: accepts connections up to a cap, holds each to its idle and
//! header-read deadlines, and on stop drains in-flight requests within a bound.

mod capacity;
mod deadline;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use self::deadline::{Deadlines, Watched};
use crate::config::Config;

/// Warnings about refused connections or failed accepts: at most one per this interval.
const WARN_EVERY: Duration = Duration::from_secs(1);
/// Pause after a failed accept (out of descriptors, most likely), which would fail again at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The listener's bounds, from the configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub drain: Duration,
    pub max_connections: usize,
}

impl Limits {
    /// Raises the open-files limit as far as allowed and derives the connection cap from it.
    pub fn from_config(config: &Config) -> Limits {
        let nofile = capacity::raise_nofile_limit();
        let max_connections = capacity::connection_limit(config.max_connections, nofile);
        tracing::info!(
            max_connections,
            open_files_limit = nofile,
            "connection limit"
        );
        Limits {
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(config.idle_timeout_ms),
            drain: Duration::from_millis(config.shutdown_drain_ms),
            max_connections,
        }
    }
}

/// Serves `router` on `listener` until `stop`, then lets open requests finish until the
/// drain bound and cuts what is left. Returns that bound's deadline, which the rest of
/// shutdown (the job runner) keeps to as well.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
) -> Instant {
    let mut builder = http1::Builder::new();
    // Our own deadlines (see `deadline`) replace hyper's header timeout, which would also
    // end kept-alive connections after the header timeout rather than the idle one.
    builder.header_read_timeout(None);
    let listening = Listening {
        builder,
        router,
        permits: Arc::new(Semaphore::new(limits.max_connections)),
        graceful: GracefulShutdown::new(),
        cut: CancellationToken::new(),
        limits,
    };
    listening.accept_until(&listener, &stop).await;
    drop(listener);
    listening.drain().await
}

struct Listening {
    builder: http1::Builder,
    router: Router,
    permits: Arc<Semaphore>,
    graceful: GracefulShutdown,
    /// Cancelled when the drain deadline passes: every connection still open closes.
    cut: CancellationToken,
    limits: Limits,
}

impl Listening {
    async fn accept_until(&self, listener: &TcpListener, stop: &CancellationToken) {
        let mut refused = Throttle::default();
        let mut failed = Throttle::default();
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if let Some(failures) = failed.note() {
                        tracing::warn!(error = %e, failures, "cannot accept connections");
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            };
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => self.spawn(stream, Place::new(permit)),
                // Dropping the stream closes it: a prompt refusal the client can retry,
                // rather than a wait in the backlog that starves everyone.
                Err(_) => {
                    metrics::counter!("waygate_http_connections_refused_total").increment(1);
                    if let Some(refusals) = refused.note() {
                        tracing::warn!(
                            refusals,
                            max_connections = self.limits.max_connections,
                            "connection limit reached: refusing connections"
                        );
                    }
                }
            }
        }
    }

    fn spawn(&self, stream: TcpStream, place: Place) {
        let deadlines = Deadlines::new(self.limits.idle_timeout, self.limits.header_read_timeout);
        let service = {
            let (router, deadlines) = (self.router.clone(), deadlines.clone());
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                deadlines.request_started();
                let (router, deadlines) = (router.clone(), deadlines.clone());
                async move {
                    let response = router.oneshot(request).await;
                    deadlines.request_finished();
                    response
                }
            })
        };
        let io = TokioIo::new(Watched::new(stream, deadlines.clone()));
        let connection = self
            .graceful
            .watch(self.builder.serve_connection(io, service));
        let cut = self.cut.clone();
        tokio::spawn(async move {
            tokio::select! {
                served = connection => if let Err(e) = served {
                    tracing::debug!(error = %e, "connection ended with an error");
                },
                expiry = deadlines.expired() => {
                    tracing::debug!(?expiry, "connection timed out");
                }
                _ = cut.cancelled() => {}
            }
            drop(place);
        });
    }

    /// Asks every connection to finish its request and close, waits up to the drain bound,
    /// then cuts the rest.
    async fn drain(self) -> Instant {
        let deadline = Instant::now() + self.limits.drain;
        if tokio::time::timeout_at(deadline, self.graceful.shutdown())
            .await
            .is_err()
        {
            // Counted (as places taken under the cap) before the cut closes them.
            let left = self.limits.max_connections - self.permits.available_permits();
            self.cut.cancel();
            tracing::warn!(
                connections = left,
                drain_ms = self.limits.drain.as_millis() as u64,
                "drain deadline passed: cut the connections still open"
            );
        }
        deadline
    }
}

/// A connection's place under the cap, counted in `waygate_http_connections` while taken.
struct Place {
    /// Given back when the connection ends.
    _permit: OwnedSemaphorePermit,
}

impl Place {
    fn new(permit: OwnedSemaphorePermit) -> Place {
        metrics::gauge!("waygate_http_connections").increment(1.0);
        Place { _permit: permit }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        metrics::gauge!("waygate_http_connections").decrement(1.0);
    }
}

/// Lets a repeated warning through at most once per `WARN_EVERY`, so that a flood of
/// refusals does not flood the log.
#[derive(Default)]
pub(crate) struct Throttle {
    last: Option<Instant>,
    since: u64,
}

impl Throttle {
    /// Counts one occurrence; returns how many occurred since the last warning when it is
    /// time for another.
    pub(crate) fn note(&mut self) -> Option<u64> {
        self.since += 1;
        let now = Instant::now();
        if self.last.is_some_and(|last| now - last < WARN_EVERY) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_warns_once_per_interval_with_the_count_since() {
        let mut throttle = Throttle::default();
        assert_eq!(throttle.note(), Some(1));
        assert_eq!(throttle.note(), None);
        assert_eq!(throttle.note(), None);
        throttle.last = Some(Instant::now() - WARN_EVERY);
        assert_eq!(throttle.note(), Some(3));
    }
}
