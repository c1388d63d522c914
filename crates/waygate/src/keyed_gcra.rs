//! GCRA state per key, kept in this process: the send rate limit per user and the pace per
//! provider sender share it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use waygate_core::gcra::{Decision, Gcra};

use crate::clock::Clock;

/// Beyond this many tracked keys, idle entries are dropped.
const SWEEP_AT: usize = 100_000;

pub struct KeyedGcra<K> {
    gcra: Gcra,
    clock: Clock,
    tats: Mutex<HashMap<K, i64>>,
}

impl<K: Hash + Eq + Clone> KeyedGcra<K> {
    pub fn new(per_second: u32, burst: u32, clock: Clock) -> Self {
        KeyedGcra {
            gcra: Gcra::new(per_second, burst),
            clock,
            tats: Mutex::new(HashMap::new()),
        }
    }

    pub fn limit(&self) -> u32 {
        self.gcra.limit()
    }

    pub fn check(&self, key: &K) -> Decision {
        let now_us = self.clock.now_ms().saturating_mul(1000);
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        if tats.len() > SWEEP_AT {
            tats.retain(|_, tat| *tat > now_us);
        }
        let mut tat = tats.get(key).copied();
        let decision = self.gcra.check(&mut tat, now_us);
        if let Some(tat) = tat {
            tats.insert(key.clone(), tat);
        }
        decision
    }
}
