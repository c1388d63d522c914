//! The per-user send limit (API.md §4).

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use waygate_core::gcra::Decision;

use super::error::ApiError;
use crate::clock::Clock;
use crate::keyed_gcra::KeyedGcra;

pub struct RateLimiter {
    limits: KeyedGcra<i64>,
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
    /// `per_second` requests per second per user, with an equal burst.
    pub fn new(per_second: u32, clock: Clock) -> Self {
        RateLimiter {
            limits: KeyedGcra::new(per_second, per_second, clock),
        }
    }

    pub fn check(&self, user_id: i64) -> Result<Quota, ApiError> {
        let limit = self.limits.limit();
        match self.limits.check(&user_id) {
            Decision::Allow { remaining } => Ok(Quota { limit, remaining }),
            Decision::Deny { retry_after_micros } => Err(ApiError::RateLimited {
                retry_after_secs: retry_after_micros.div_ceil(1_000_000).max(1),
                limit,
            }),
        }
    }
}
