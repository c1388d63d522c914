//! Copies of what every send reads (key → user, senders, templates), so the hot path does
//! not touch the database. Changes made through this process invalidate at once; changes made
//! by another process (the CLI) move the store's directory version, which a background task
//! polls every `POLL_EVERY` and answers by dropping everything (`ReadCache::clear_all`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::{Sender, Template};

/// How often the directory version is read.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// A safety net: an entry is read again after this long even if no change was seen.
pub const TTL: Duration = Duration::from_secs(60);
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

    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        let entries = self.lock();
        let (value, stored) = entries.get(key)?;
        (stored.elapsed() < TTL).then(|| value.clone())
    }

    /// Stores `value` unless the cache was cleared since `read_at` (the value may predate
    /// the change that cleared it).
    pub fn put(&self, read_at: Generation<'_>, key: K, value: V) {
        let mut entries = self.lock();
        if !read_at.current() {
            return;
        }
        if entries.len() >= SWEEP_AT {
            entries.retain(|_, (_, stored)| stored.elapsed() < TTL);
        }
        entries.insert(key, (value, Instant::now()));
    }

    pub fn forget(&self, key: &K) {
        self.lock().remove(key);
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

/// When a value was read, relative to the cache's clears.
#[derive(Clone, Copy)]
pub struct Generation<'a> {
    counter: &'a AtomicU64,
    seen: u64,
}

impl Generation<'_> {
    fn current(&self) -> bool {
        self.counter.load(Ordering::Acquire) == self.seen
    }
}

#[derive(Default)]
pub struct ReadCache {
    /// API key as presented → user id (only keys that exist; unknown keys are not
    /// remembered). Keyed by the key itself, as the request held it anyway, so that a hit
    /// costs no SHA-256 (a twentieth of a send's CPU on the tokio threads).
    pub keys: TtlCache<String, i64>,
    /// Shared, so that a hit costs a reference count rather than a copy of every string.
    pub senders: TtlCache<i64, Arc<Sender>>,
    pub templates: TtlCache<i64, Arc<Template>>,
    clears: AtomicU64,
    /// The directory version the entries agree with (`None` until first read).
    version: Mutex<Option<i64>>,
}

impl ReadCache {
    /// Take before reading from the store what is then `put`.
    pub fn generation(&self) -> Generation<'_> {
        Generation {
            counter: &self.clears,
            seen: self.clears.load(Ordering::Acquire),
        }
    }

    /// Drops every entry; values read before this are not stored afterwards.
    pub fn clear_all(&self) {
        self.clears.fetch_add(1, Ordering::AcqRel);
        self.keys.clear();
        self.senders.clear();
        self.templates.clear();
    }

    /// Clears everything if the store's directory version moved since the last call.
    pub fn observe_version(&self, version: i64) {
        let mut known = self.version.lock().unwrap_or_else(|p| p.into_inner());
        if known.is_some_and(|v| v != version) {
            self.clear_all();
        }
        *known = Some(version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_forgets() {
        let cache = ReadCache::default();
        assert!(cache.senders.get(&1).is_none());
        cache
            .senders
            .put(cache.generation(), 1, Arc::new(sender(1)));
        assert_eq!(cache.senders.get(&1).map(|s| s.id), Some(1));
        cache.senders.forget(&1);
        assert!(cache.senders.get(&1).is_none());
        cache.keys.put(cache.generation(), "k2".to_string(), 2);
        cache.clear_all();
        assert_eq!(cache.keys.get("k2"), None);
    }

    #[test]
    fn a_value_read_before_a_clear_is_not_stored_after_it() {
        let cache = ReadCache::default();
        let read_at = cache.generation();
        cache.clear_all();
        cache.keys.put(read_at, "k1".to_string(), 1);
        assert_eq!(cache.keys.get("k1"), None);
        cache.keys.put(cache.generation(), "k1".to_string(), 1);
        assert_eq!(cache.keys.get("k1"), Some(1));
    }

    #[test]
    fn a_moved_directory_version_clears_everything() {
        let cache = ReadCache::default();
        cache.observe_version(7);
        cache.keys.put(cache.generation(), "k1".to_string(), 1);
        cache.observe_version(7);
        assert_eq!(cache.keys.get("k1"), Some(1));
        cache.observe_version(8);
        assert_eq!(cache.keys.get("k1"), None);
    }

    fn sender(id: i64) -> Sender {
        use crate::model::{ProviderKind, QualityRating, SenderStatus};
        Sender {
            id,
            user_id: 1,
            phone_number: "+14155550100".into(),
            display_name: "x".into(),
            status: SenderStatus::Online,
            quality_rating: QualityRating::Green,
            messaging_limit: None,
            provider: ProviderKind::Simulator,
            provider_ref: None,
            waba_id: None,
        }
    }
}
