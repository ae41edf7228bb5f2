//! A keyed token bucket (governor): the gateway's limits per client
//! address and per principal, identity's password resets per address.

use std::{hash::Hash, num::NonZeroU32, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

/// A rate limiter with a bucket per key. The key is a type of the
/// caller's (a client address, a principal's UUID): checking a key that
/// has a bucket allocates nothing, which matters on the gateway's every
/// call.
#[derive(Debug)]
pub struct RateLimit<K: Hash + Eq + Clone = String> {
    limiter: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone> RateLimit<K> {
    /// `per_second` sustained with bursts of `burst`.
    pub fn new(per_second: u32, burst: u32) -> anyhow::Result<Self> {
        let per_second = NonZeroU32::new(per_second)
            .ok_or_else(|| anyhow::anyhow!("the rate limit must be at least 1 per second"))?;
        let burst = NonZeroU32::new(burst.max(per_second.get())).unwrap_or(per_second);
        Ok(Self::with_quota(
            Quota::per_second(per_second).allow_burst(burst),
        ))
    }

    /// `per_hour` an hour, all of them at once if asked for.
    pub fn per_hour(per_hour: NonZeroU32) -> Self {
        Self::with_quota(Quota::per_hour(per_hour))
    }

    fn with_quota(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// `Ok` when `key` may call now, else how long to wait.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        match self.limiter.check_key(key) {
            Ok(()) => Ok(()),
            Err(not_until) => Err(not_until.wait_time_from(self.clock.now())),
        }
    }

    /// Forgets idle keys; call now and then.
    pub fn shrink(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_key_separately() {
        let limit = RateLimit::new(1, 2).unwrap();
        let (ada, bob) = ("ada".to_owned(), "bob".to_owned());
        assert!(limit.check(&ada).is_ok());
        assert!(limit.check(&ada).is_ok());
        assert!(limit.check(&ada).is_err(), "burst spent");
        assert!(limit.check(&bob).is_ok(), "another key has its own bucket");
    }

    #[test]
    fn an_hourly_quota_is_spent_then_waits() {
        let limit = RateLimit::<u32>::per_hour(NonZeroU32::new(2).unwrap());
        assert!(limit.check(&7).is_ok());
        assert!(limit.check(&7).is_ok());
        let wait = limit.check(&7).unwrap_err();
        assert!(wait > Duration::from_secs(60), "{wait:?}");
    }
}
