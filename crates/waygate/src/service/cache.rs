//! Short-lived copies of what every send reads (key → user, senders, templates), so the hot
//! path does not touch the database. Changes made through this process take effect at once
//! (they invalidate); changes made by another process (the CLI) within `TTL`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::{Sender, Template};

pub const TTL: Duration = Duration::from_secs(2);
/// Beyond this many entries, expired ones are dropped.
const SWEEP_AT: usize = 100_000;

pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Hash + Eq, V: Clone> Default for TtlCache<K, V> {
    fn default() -> Self {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.lock();
        let (value, stored) = entries.get(key)?;
        (stored.elapsed() < TTL).then(|| value.clone())
    }

    pub fn put(&self, key: K, value: V) {
        let mut entries = self.lock();
        if entries.len() >= SWEEP_AT {
            entries.retain(|_, (_, stored)| stored.elapsed() < TTL);
        }
        entries.insert(key, (value, Instant::now()));
    }

    pub fn forget(&self, key: &K) {
        self.lock().remove(key);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[derive(Default)]
pub struct ReadCache {
    /// API key hash → user id (only keys that exist; unknown keys are not remembered).
    pub keys: TtlCache<Vec<u8>, i64>,
    pub senders: TtlCache<i64, Sender>,
    pub templates: TtlCache<i64, Template>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_forgets() {
        let cache: TtlCache<i64, &str> = TtlCache::default();
        assert_eq!(cache.get(&1), None);
        cache.put(1, "a");
        assert_eq!(cache.get(&1), Some("a"));
        cache.forget(&1);
        assert_eq!(cache.get(&1), None);
        cache.put(2, "b");
        cache.clear();
        assert_eq!(cache.get(&2), None);
    }
}
