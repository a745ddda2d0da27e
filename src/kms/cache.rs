//! A bounded cache with a time to live: at most `max_entries` entries, the
//! least recently used evicted first, and entries older than the TTL never
//! returned.
//!
//! kube-apiserver's KMS v2 caches are unbounded (entries leave only by TTL),
//! so a cluster that is never re-encrypted grows them without limit
//! (kubernetes/kubernetes issues 131853 and 134774). Here every cache has a
//! bound.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::kms::Clock;

/// The size and lifetime limits of one cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheLimits {
    /// The most entries kept; the least recently used goes first. Zero
    /// disables the cache.
    pub max_entries: usize,
    /// How long an entry stays usable after it was inserted; `None` keeps it
    /// until evicted.
    pub ttl: Option<Duration>,
}

impl CacheLimits {
    /// Limits with the given size and TTL.
    pub const fn new(max_entries: usize, ttl: Option<Duration>) -> Self {
        Self { max_entries, ttl }
    }

    /// No caching at all.
    pub const fn disabled() -> Self {
        Self {
            max_entries: 0,
            ttl: None,
        }
    }

    /// These options with another `max_entries`: the most entries kept; the least recently used goes first.
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// These options with another `ttl`: how long an entry stays usable after it was inserted; `None` keeps it until evicted.
    pub fn with_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }
}

struct Entry<V> {
    value: V,
    inserted: Instant,
}

/// A thread-safe bounded LRU cache with a TTL.
pub(crate) struct BoundedCache<K: Hash + Eq, V> {
    entries: Option<Mutex<LruCache<K, Entry<V>>>>,
    ttl: Option<Duration>,
    clock: Arc<dyn Clock>,
}

impl<K: Hash + Eq, V: Clone> BoundedCache<K, V> {
    pub(crate) fn new(limits: CacheLimits, clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: NonZeroUsize::new(limits.max_entries)
                .map(|cap| Mutex::new(LruCache::new(cap))),
            ttl: limits.ttl,
            clock,
        }
    }

    /// The value for `key`, if present and not expired; marks it used.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self
            .entries
            .as_ref()?
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(key)?;
        if self.expired(entry) {
            entries.pop(key);
            return None;
        }
        Some(entry.value.clone())
    }

    /// Inserts or replaces `key`, evicting the least recently used entry
    /// when full.
    pub(crate) fn insert(&self, key: K, value: V) {
        let Some(entries) = &self.entries else {
            return;
        };
        let inserted = self.clock.now();
        let mut entries = entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.put(key, Entry { value, inserted });
    }

    /// Number of entries held (expired ones included until looked up).
    pub(crate) fn len(&self) -> usize {
        self.entries
            .as_ref()
            .map_or(0, |e| e.lock().unwrap_or_else(|e| e.into_inner()).len())
    }

    fn expired(&self, entry: &Entry<V>) -> bool {
        self.ttl
            .is_some_and(|ttl| self.clock.now().saturating_duration_since(entry.inserted) >= ttl)
    }
}

impl<K: Hash + Eq, V> fmt::Debug for BoundedCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kms::ManualClock;

    fn cache(max: usize, ttl: Option<Duration>) -> (BoundedCache<String, u32>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        (
            BoundedCache::new(CacheLimits::new(max, ttl), clock.clone()),
            clock,
        )
    }

    #[test]
    fn evicts_the_least_recently_used_entry() {
        let (cache, _) = cache(2, None);
        cache.insert("a".into(), 1);
        cache.insert("b".into(), 2);
        assert_eq!(cache.get("a"), Some(1)); // b is now the least recently used
        cache.insert("c".into(), 3);
        assert_eq!(cache.get("b"), None);
        assert_eq!(cache.get("a"), Some(1));
        assert_eq!(cache.get("c"), Some(3));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let (cache, clock) = cache(10, Some(Duration::from_secs(60)));
        cache.insert("a".into(), 1);
        clock.advance(Duration::from_secs(59));
        assert_eq!(cache.get("a"), Some(1));
        clock.advance(Duration::from_secs(1));
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn zero_entries_disables_the_cache() {
        let (cache, _) = cache(0, None);
        cache.insert("a".into(), 1);
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.len(), 0);
    }
}
