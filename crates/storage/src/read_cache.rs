//! A cache of rows a service reads on every call, for the service that owns
//! them: an entry is trusted until the next change this process commits
//! (every write calls [`ReadCache::changed`], which moves a generation
//! count; entries filled before it are ignored), and for at most a TTL, the
//! bound on seeing another replica's change.
//!
//! Why: on SQLite each query costs two thread hand-offs (sqlx runs every
//! connection on its own thread), most of a read's time in the benchmark
//! (`BENCHMARKS.md`).

use std::{
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// See the module documentation.
pub struct ReadCache<K, V> {
    entries: moka::future::Cache<K, (u64, V)>,
    generation: Arc<AtomicU64>,
}

impl<K, V> Clone for ReadCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            generation: self.generation.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for ReadCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// What a commit makes stale: read caches of what it may have changed.
pub trait Forget {
    /// Something changed: forget every value read before.
    fn changed(&self);
}

impl<K, V> Forget for ReadCache<K, V> {
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// When a read began: a value read after it may be kept only if nothing
/// changed meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct ReadTicket(u64);

impl<K, V> ReadCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// At most `capacity` entries, each trusted for `ttl` at most.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            entries: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            generation: Arc::default(),
        }
    }

    /// The value read for `key` since the last change, if any.
    pub async fn get(&self, key: &K) -> Option<V> {
        let (generation, value) = self.entries.get(key).await?;
        (generation == self.generation.load(Ordering::Acquire)).then_some(value)
    }

    /// Take before reading what [`Self::insert`] will keep.
    pub fn ticket(&self) -> ReadTicket {
        ReadTicket(self.generation.load(Ordering::Acquire))
    }

    /// Keeps `value`, read after `ticket` was taken (stale at once if a
    /// change was committed since).
    pub async fn insert(&self, key: K, value: V, ticket: ReadTicket) {
        self.entries.insert(key, (ticket.0, value)).await;
    }

    /// Something changed: forget every value read before.
    pub fn changed(&self) {
        Forget::changed(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_forgets_what_was_read_before_it() {
        let cache = ReadCache::<&str, i32>::new(10, Duration::from_secs(60));
        let ticket = cache.ticket();
        cache.insert("a", 1, ticket).await;
        assert_eq!(cache.get(&"a").await, Some(1));
        cache.changed();
        assert_eq!(cache.get(&"a").await, None, "read before the change");
        // A read that began before a change and ends after it is not kept.
        let ticket = cache.ticket();
        cache.changed();
        cache.insert("b", 2, ticket).await;
        assert_eq!(cache.get(&"b").await, None);
        let ticket = cache.ticket();
        cache.insert("b", 3, ticket).await;
        assert_eq!(cache.get(&"b").await, Some(3));
    }

    #[tokio::test]
    async fn entries_expire() {
        let cache = ReadCache::<&str, i32>::new(10, Duration::from_millis(50));
        cache.insert("a", 1, cache.ticket()).await;
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(cache.get(&"a").await, None);
    }
}
