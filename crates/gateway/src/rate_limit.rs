//! Rate limits, in the order a call meets them (see [`Limits`]): its
//! client address's bucket before anything is looked up, then — once the
//! token is checked — its principal's. Failed authentications also take
//! from a small per-address bucket; an address that spent it is refused
//! before its tokens cost identity a lookup.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use moka::sync::Cache;
pub use orgplane_platform::rate_limit::RateLimit;

/// Failed authentications allowed to one client address per second,
/// sustained.
pub const AUTH_FAILURES_PER_SECOND: u32 = 5;
/// Failed authentications one client address may make in a burst.
pub const AUTH_FAILURES_BURST: u32 = 50;

/// Every limit of the gateway.
#[derive(Debug)]
pub struct Limits {
    /// Per client address (IPv6 grouped by /64), before authentication.
    pub address: RateLimit,
    /// Per principal, once authenticated.
    pub principal: RateLimit,
    /// Failed authentications per client address.
    auth_failures: RateLimit,
    /// Addresses that spent their failures, until when.
    blocked: Cache<String, Instant>,
}

impl Limits {
    /// Limits with these quotas for addresses and principals.
    pub fn new(address: (u32, u32), principal: (u32, u32)) -> anyhow::Result<Self> {
        Ok(Self {
            address: RateLimit::new(address.0, address.1)?,
            principal: RateLimit::new(principal.0, principal.1)?,
            auth_failures: RateLimit::new(AUTH_FAILURES_PER_SECOND, AUTH_FAILURES_BURST)?,
            blocked: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        })
    }

    /// `Ok` unless `address` spent its failed authentications: then how
    /// long to wait.
    pub fn check_not_blocked(&self, address: &str) -> Result<(), Duration> {
        match self.blocked.get(address) {
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => Err(wait),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Counts a failed authentication from `address`.
    pub fn authentication_failed(&self, address: &str) {
        if let Err(wait) = self.auth_failures.check(address) {
            self.blocked
                .insert(address.to_owned(), Instant::now() + wait);
        }
    }

    /// Forgets idle keys; call now and then.
    pub fn shrink(&self) {
        self.address.shrink();
        self.principal.shrink();
        self.auth_failures.shrink();
    }
}

/// The rate-limit key of a client address: an IPv4 address as it is, an
/// IPv6 address by its /64 (one host holds a whole /64 as easily as one
/// address), an IPv4-mapped IPv6 address as its IPv4 address.
pub fn address_key(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        let key = |s: &str| address_key(Some(s.parse().unwrap()));
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), key("2001:db8:1:2:ffff::1"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(address_key(None), "unknown");
    }

    #[test]
    fn an_address_that_spends_its_failures_is_blocked() {
        let limits = Limits::new((1000, 1000), (1000, 1000)).unwrap();
        for _ in 0..AUTH_FAILURES_BURST {
            assert!(limits.check_not_blocked("192.0.2.7").is_ok());
            limits.authentication_failed("192.0.2.7");
        }
        limits.authentication_failed("192.0.2.7");
        assert!(limits.check_not_blocked("192.0.2.7").is_err());
        assert!(limits.check_not_blocked("192.0.2.8").is_ok());
    }
}
