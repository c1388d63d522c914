//! The per-user send limit (API.md §4): kept in this process, or in Redis so that every node
//! shares one limit.

pub mod redis;

use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use waygate_core::gcra::{Decision, Gcra};

use self::redis::RedisGcra;
use super::error::ApiError;
use super::server::Throttle;
use crate::clock::Clock;
use crate::config::Config;
use crate::keyed_gcra::KeyedGcra;

/// Where the limit's state lives. Without Redis each node limits alone: N nodes allow N times
/// the configured rate.
pub enum RateLimiter {
    Local(KeyedGcra<i64>),
    Shared(Shared),
}

/// The Redis-backed limit and what to do while Redis cannot answer.
pub struct Shared {
    redis: RedisGcra,
    fail_open: bool,
    warnings: Mutex<Throttle>,
}

/// What an allowed request may report in its headers.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
}

// Parsed once: a name given as a string is checked again on every insert.
const LIMIT_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-remaining");

impl Quota {
    /// `X-RateLimit-Limit` and `X-RateLimit-Remaining`.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(LIMIT_HEADER, HeaderValue::from(self.limit));
        headers.insert(REMAINING_HEADER, HeaderValue::from(self.remaining));
    }
}

impl RateLimiter {
    /// `per_second` requests per second per user, with an equal burst, in this process.
    pub fn local(per_second: u32, clock: Clock) -> Self {
        RateLimiter::Local(KeyedGcra::new(per_second, per_second, clock))
    }

    /// In Redis when `redis_url` is set, else in this process.
    pub fn from_config(config: &Config, clock: Clock) -> anyhow::Result<Self> {
        if config.redis_url.is_empty() {
            if matches!(config.database(), Ok(crate::config::Database::Postgres(_))) {
                tracing::warn!(
                    "several nodes may share this PostgreSQL database, but without redis_url \
                     each node keeps the per-user send limit alone: N nodes allow N times \
                     rate_limit_per_second"
                );
            }
            return Ok(Self::local(config.rate_limit_per_second, clock));
        }
        let per_second = config.rate_limit_per_second;
        let redis = RedisGcra::new(
            &config.redis_url,
            config.redis_key_prefix.clone(),
            Duration::from_millis(config.redis_timeout_ms),
            Gcra::new(per_second, per_second),
        )?;
        Ok(RateLimiter::Shared(Shared {
            redis,
            fail_open: config.redis_fail_open,
            warnings: Mutex::default(),
        }))
    }

    /// The quota left after this request, or why it may not go. `None`: allowed without a
    /// known quota (Redis failed and the limit fails open).
    pub async fn check(&self, user_id: i64) -> Result<Option<Quota>, ApiError> {
        match self {
            RateLimiter::Local(limits) => answer(limits.limit(), limits.check(&user_id)).map(Some),
            RateLimiter::Shared(shared) => shared.check(user_id).await,
        }
    }
}

impl Shared {
    async fn check(&self, user_id: i64) -> Result<Option<Quota>, ApiError> {
        match self.redis.check(&user_id.to_string()).await {
            Ok(checked) => answer(self.redis.limit(), checked.decision).map(Some),
            Err(error) => {
                metrics::counter!("waygate_rate_limit_errors_total").increment(1);
                let due = self
                    .warnings
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .note();
                if let Some(failures) = due {
                    tracing::warn!(%error, failures, fail_open = self.fail_open,
                        "send rate limit: Redis did not answer");
                }
                if self.fail_open {
                    Ok(None)
                } else {
                    Err(ApiError::RateLimitUnavailable)
                }
            }
        }
    }
}

/// One decision as the API reports it: `Retry-After` in whole seconds, at least 1.
pub fn answer(limit: u32, decision: Decision) -> Result<Quota, ApiError> {
    match decision {
        Decision::Allow { remaining } => Ok(Quota { limit, remaining }),
        Decision::Deny { retry_after_micros } => Err(ApiError::RateLimited {
            retry_after_secs: retry_after_micros.div_ceil(1_000_000).max(1),
            limit,
        }),
    }
}
