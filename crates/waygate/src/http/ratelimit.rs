//! The per-user send limit (API.md §4), GCRA state kept in this process.

use std::collections::HashMap;
use std::sync::Mutex;

use waygate_core::gcra::{Decision, Gcra};

use super::error::ApiError;
use crate::clock::Clock;

/// Beyond this many tracked users, idle entries are dropped.
const SWEEP_AT: usize = 100_000;

pub struct RateLimiter {
    gcra: Gcra,
    clock: Clock,
    tats: Mutex<HashMap<i64, i64>>,
}

/// What an allowed request may report in its headers.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
}

impl RateLimiter {
    pub fn new(per_second: u32, clock: Clock) -> Self {
        RateLimiter {
            gcra: Gcra::new(per_second, per_second),
            clock,
            tats: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, user_id: i64) -> Result<Quota, ApiError> {
        let now_us = self.clock.now_ms().saturating_mul(1000);
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        if tats.len() > SWEEP_AT {
            tats.retain(|_, tat| *tat > now_us);
        }
        let mut tat = tats.get(&user_id).copied();
        let decision = self.gcra.check(&mut tat, now_us);
        if let Some(tat) = tat {
            tats.insert(user_id, tat);
        }
        match decision {
            Decision::Allow { remaining } => Ok(Quota {
                limit: self.gcra.limit(),
                remaining,
            }),
            Decision::Deny { retry_after_micros } => Err(ApiError::RateLimited {
                retry_after_secs: retry_after_micros.div_ceil(1_000_000).max(1),
                limit: self.gcra.limit(),
            }),
        }
    }
}
