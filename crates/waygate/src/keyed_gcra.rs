//! GCRA state per key, kept in this process: the send rate limit per user and the pace per
//! provider sender share it.

use std::borrow::Borrow;
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

    /// Takes the key borrowed (a sender's number as `&str`): a known key is hashed once and
    /// never copied; only a new one is.
    pub fn check<Q>(&self, key: &Q) -> Decision
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let now_us = self.clock.now_ms().saturating_mul(1000);
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        if tats.len() > SWEEP_AT {
            tats.retain(|_, tat| *tat > now_us);
        }
        let known = tats.get_mut(key);
        let mut tat = known.as_deref().copied();
        let decision = self.gcra.check(&mut tat, now_us);
        match (known, tat) {
            (Some(slot), Some(tat)) => *slot = tat,
            (None, Some(tat)) => {
                tats.insert(key.to_owned(), tat);
            }
            (_, None) => {}
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_key_has_its_own_burst_and_a_known_key_keeps_its_state() {
        let clock = Clock::default();
        let limits: KeyedGcra<String> = KeyedGcra::new(1, 2, clock.clone());
        let allowed = |key: &str| matches!(limits.check(key), Decision::Allow { .. });
        assert!(allowed("+14155550100"));
        assert!(allowed("+14155550100"));
        assert!(!allowed("+14155550100"), "the burst of two is spent");
        assert!(allowed("+14155550199"), "another key starts full");
        clock.advance(Duration::from_secs(1));
        assert!(allowed("+14155550100"));
        assert!(!allowed("+14155550100"), "one second gave back one");
    }
}
