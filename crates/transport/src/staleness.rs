//! When a cached answer about a key (an organization, a principal) went
//! stale: a change clock instead of scanning the cache at every change.
//!
//! Why: moka's `invalidate_entries_if` keeps each predicate until it has
//! scanned the whole cache. Access changes come with every write of an
//! organization (1,000 a second under load), and the predicates piled up
//! faster than they ran: hundreds of MiB, and a scan of every cached
//! decision per write. Here a change costs one map insert; a cached answer
//! carries the clock's reading from before it was asked, and is trusted
//! only if nothing about its key changed since.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// See the module documentation. Cheap to share (`Arc` it).
#[derive(Debug)]
pub struct ChangeClock {
    /// Ticks once per change.
    now: AtomicU64,
    /// The tick of each key's last change, kept for `memory` after it (longer
    /// than any answer asked before it lives).
    changed: moka::sync::Cache<String, u64>,
    /// The tick of the last change of any key (or of everything).
    any: AtomicU64,
    /// The tick at which everything was last forgotten.
    everything: AtomicU64,
}

/// The clock's reading when an answer was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked(u64);

impl ChangeClock {
    /// A clock whose answers live at most `answers_live`.
    pub fn new(answers_live: Duration) -> Self {
        Self {
            now: AtomicU64::new(1),
            changed: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                // An answer asked before a change and cached after it must
                // find the change: keep it well past the answer's life.
                .time_to_live(answers_live * 4 + Duration::from_secs(10))
                .build(),
            any: AtomicU64::new(0),
            everything: AtomicU64::new(0),
        }
    }

    /// Take before asking for an answer to cache.
    pub fn asked(&self) -> Asked {
        Asked(self.now.load(Ordering::Acquire))
    }

    /// What was known about `keys` changed.
    pub fn changed<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let tick = self.now.fetch_add(1, Ordering::AcqRel) + 1;
        for key in keys {
            self.changed.insert(key.to_owned(), tick);
        }
        self.any.fetch_max(tick, Ordering::AcqRel);
    }

    /// Everything may have changed.
    pub fn changed_everything(&self) {
        let tick = self.now.fetch_add(1, Ordering::AcqRel) + 1;
        self.everything.fetch_max(tick, Ordering::AcqRel);
        self.any.fetch_max(tick, Ordering::AcqRel);
    }

    /// Whether an answer about `key` asked at `asked` still holds: nothing
    /// about `key` (nor everything) changed after it was asked.
    pub fn holds(&self, key: &str, asked: Asked) -> bool {
        // A change ticked at or before the reading was committed before the
        // ask began (changes are heard after their commit): the answer saw it.
        self.everything.load(Ordering::Acquire) <= asked.0
            && self.changed.get(key).is_none_or(|tick| tick <= asked.0)
    }

    /// Whether an answer that depends on every key (e.g. "not visible":
    /// the caller may have joined anywhere) still holds.
    pub fn holds_for_any(&self, asked: Asked) -> bool {
        self.any.load(Ordering::Acquire) <= asked.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_after_the_ask_makes_the_answer_stale() {
        let clock = ChangeClock::new(Duration::from_secs(3));
        let asked = clock.asked();
        assert!(clock.holds("a", asked) && clock.holds_for_any(asked));
        clock.changed(["b"]);
        assert!(clock.holds("a", asked), "another key changed");
        assert!(!clock.holds("b", asked));
        assert!(!clock.holds_for_any(asked));
        let later = clock.asked();
        assert!(clock.holds("b", later), "asked after the change");
        clock.changed_everything();
        assert!(!clock.holds("a", later));
        assert!(clock.holds("a", clock.asked()));
    }

    #[test]
    fn a_change_during_the_ask_makes_the_answer_stale() {
        let clock = ChangeClock::new(Duration::from_secs(3));
        let asked = clock.asked();
        // The answer comes back after the key changed: not to be cached.
        clock.changed(["a"]);
        assert!(!clock.holds("a", asked));
    }
}
