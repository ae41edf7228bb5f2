//! Rate limits, in the order a call meets them (see [`Limits`]): its
//! client address's bucket before anything is looked up, then — once the
//! token is checked — its principal's. Failed authentications also take
//! from a small per-address bucket; an address that spent it is refused
//! before its tokens cost identity a lookup.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr},
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
    pub address: RateLimit<AddressKey>,
    /// Per principal (its UUID), once authenticated.
    pub principal: RateLimit<String>,
    /// Failed authentications per client address.
    auth_failures: RateLimit<AddressKey>,
    /// Addresses that spent their failures, until when.
    blocked: Cache<AddressKey, Instant>,
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
    pub fn check_not_blocked(&self, address: &AddressKey) -> Result<(), Duration> {
        match self.blocked.get(address) {
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => Err(wait),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Counts a failed authentication from `address`.
    pub fn authentication_failed(&self, address: &AddressKey) {
        if let Err(wait) = self.auth_failures.check(address) {
            self.blocked.insert(*address, Instant::now() + wait);
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
/// address), an IPv4-mapped IPv6 address as its IPv4 address. A value, not
/// a string: looking its bucket up allocates nothing. Displayed as the
/// gateway reports it to the services (`x-orgplane-client-address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKey {
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// The first four segments of an IPv6 address.
    V6Prefix([u16; 4]),
    /// No address is known (not a TCP connection).
    Unknown,
}

/// The key of the client address `ip` (see [`AddressKey`]).
pub fn address_key(ip: Option<IpAddr>) -> AddressKey {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => AddressKey::V4(v4),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            AddressKey::V6Prefix([s[0], s[1], s[2], s[3]])
        }
        None => AddressKey::Unknown,
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(v4) => v4.fmt(f),
            Self::V6Prefix([a, b, c, d]) => write!(f, "{a:x}:{b:x}:{c:x}:{d:x}::/64"),
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        let key = |s: &str| address_key(Some(s.parse().unwrap()));
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), key("2001:db8:1:2:ffff::1"));
        assert_eq!(key("2001:db8:1:2:3:4:5:6").to_string(), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_eq!(key("::ffff:192.0.2.7").to_string(), "192.0.2.7");
        assert_eq!(address_key(None).to_string(), "unknown");
    }

    #[test]
    fn an_address_that_spends_its_failures_is_blocked() {
        let limits = Limits::new((1000, 1000), (1000, 1000)).unwrap();
        let key = |s: &str| address_key(Some(s.parse().unwrap()));
        for _ in 0..AUTH_FAILURES_BURST {
            assert!(limits.check_not_blocked(&key("192.0.2.7")).is_ok());
            limits.authentication_failed(&key("192.0.2.7"));
        }
        limits.authentication_failed(&key("192.0.2.7"));
        assert!(limits.check_not_blocked(&key("192.0.2.7")).is_err());
        assert!(limits.check_not_blocked(&key("192.0.2.8")).is_ok());
    }
}
