//! Bearer tokens → principals, through `IdentityInternal.IntrospectToken`,
//! with answers cached briefly (keyed by the token's hash, never the token).

use std::{collections::HashSet, future::Future, sync::Arc, time::Duration};

use moka::future::Cache;
use orgplane_platform::{
    principal::Principal,
    time::{from_timestamp, now_micros},
};
use orgplane_proto::identity::{
    IntrospectTokenRequest, WatchRevocationsRequest, WatchRevocationsResponse,
    identity_internal_client::IdentityInternalClient,
};
use orgplane_transport::{client::Channel, follow::follow, telemetry::propagate_trace_context};
use sha2::{Digest, Sha256};
use tonic::service::interceptor::InterceptedService;

type Client = IdentityInternalClient<
    InterceptedService<
        Channel,
        fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
    >,
>;

/// Why a call is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The token is unknown, expired or revoked.
    Invalid,
    /// Identity could not be asked.
    Unavailable(String),
}

/// Authenticates bearer tokens; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    client: Client,
    /// Shared answers: a hit costs a reference count, not a copy of the
    /// principal's strings (the cache hands out a clone of its value).
    cache: Cache<[u8; 32], Option<Arc<Authenticated>>>,
}

/// Who a token authenticates, as the gateway forwards it; shared in an
/// `Arc`, never copied.
#[derive(Debug)]
pub struct Authenticated {
    /// The principal.
    pub principal: Principal,
    /// [`Principal::to_metadata_value`] as a header value, encoded once
    /// per introspection rather than on every call the answer serves.
    pub metadata: http::HeaderValue,
    /// When the token expires (µs since the epoch): a cached answer never
    /// outlives it.
    expire_time: i64,
}

impl Authenticated {
    fn new(principal: Principal, expire_time: i64) -> Option<Arc<Self>> {
        let metadata = http::HeaderValue::from_str(&principal.to_metadata_value()).ok()?;
        Some(Arc::new(Self {
            principal,
            metadata,
            expire_time,
        }))
    }

    /// `this` while the token has not expired.
    fn current(this: Arc<Self>) -> Option<Arc<Self>> {
        (this.expire_time > now_micros()).then_some(this)
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

/// The longest an answer may be cached: a revoked token must stop working
/// within 5 seconds.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(5);

impl Authenticator {
    /// Asks identity over `channel`; answers live `ttl` (at most 5 s).
    pub fn new(channel: Channel, ttl: Duration) -> Self {
        let interceptor: fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> =
            propagate_trace_context;
        Self {
            client: IdentityInternalClient::with_interceptor(channel, interceptor),
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl.min(MAX_CACHE_TTL))
                .support_invalidation_closures()
                .build(),
        }
    }

    /// Forgets every cached answer for the principals `uuids` (some of
    /// their tokens were revoked, or they changed): their next calls are
    /// looked up again.
    pub fn forget_principals(&self, uuids: impl IntoIterator<Item = String>) {
        let uuids: HashSet<String> = uuids.into_iter().collect();
        if uuids.is_empty() {
            return;
        }
        if let Err(err) = self.cache.invalidate_entries_if(move |_, answer| {
            answer
                .as_ref()
                .is_some_and(|answer| uuids.contains(&answer.principal.uuid))
        }) {
            tracing::warn!(%err, "could not forget a revoked principal's tokens; they expire with the cache");
        }
    }

    /// Follows identity's revocations, made through any gateway and any
    /// replica of identity, until `stop` completes: a revoked token stops
    /// working here as soon as the notice arrives, not when its cached
    /// answer expires.
    pub async fn follow_revocations(self, stop: impl Future<Output = ()>) {
        let client = self.client.clone();
        follow(
            "revocations",
            move || {
                let mut client = client.clone();
                async move { client.watch_revocations(WatchRevocationsRequest {}).await }
            },
            |notice: WatchRevocationsResponse| {
                if notice.everything {
                    self.cache.invalidate_all();
                } else {
                    self.forget_principals(notice.principal_uuids);
                }
            },
            || self.cache.invalidate_all(),
            stop,
        )
        .await;
    }

    /// The principal `token` authenticates, if that answer is cached (no
    /// lookup is made).
    pub async fn cached(&self, token: &str) -> Option<Arc<Authenticated>> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        Authenticated::current(self.cache.get(&key).await.flatten()?)
    }

    /// The principal `token` authenticates. Counted in
    /// `orgplane_token_cache_lookups_total` and, when identity is asked,
    /// `orgplane_token_cache_misses_total`: their ratio is the cache's.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<Authenticated>, AuthError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        metrics::counter!("orgplane_token_cache_lookups_total").increment(1);
        let answer = match self.cache.get(&key).await {
            Some(answer) => answer,
            // Boxed: a miss is rare, and inline it would make every call's
            // future — moved as the call is set up — as large as a gRPC
            // call's. A hit allocates nothing.
            None => Box::pin(self.cache.try_get_with(key, self.introspect(token)))
                .await
                .map_err(|err| AuthError::Unavailable((*err).clone()))?,
        };
        answer
            .and_then(Authenticated::current)
            .ok_or(AuthError::Invalid)
    }

    /// Asks identity who `token` authenticates: `None` when no one (the
    /// token is unknown, expired or revoked).
    async fn introspect(&self, token: &str) -> Result<Option<Arc<Authenticated>>, String> {
        metrics::counter!("orgplane_token_cache_misses_total").increment(1);
        let reply = self
            .client
            .clone()
            .introspect_token(IntrospectTokenRequest {
                token: token.to_owned(),
            })
            .await
            .map_err(|status| status.message().to_owned())?
            .into_inner();
        let expire_time = reply
            .expire_time
            .as_ref()
            .and_then(|t| from_timestamp(t, "expire_time").ok());
        Ok(match (reply.active, reply.principal, expire_time) {
            (true, Some(principal), Some(expire_time)) => {
                Principal::from_proto(principal).and_then(|p| Authenticated::new(p, expire_time))
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use orgplane_platform::principal::{AUTH_PASSWORD, PrincipalKind, SCOPE_READ};

    use super::*;

    fn ada() -> Principal {
        Principal {
            kind: PrincipalKind::User,
            uuid: "0190-aaaa".into(),
            name: "ada".into(),
            scopes: vec![SCOPE_READ.into()],
            instance_admin: false,
            token_uuid: "t".into(),
            organization: None,
            email: "ada@example.com".into(),
            email_verified: true,
            role: None,
            organization_uuid: None,
            auth_method: AUTH_PASSWORD.into(),
        }
    }

    #[test]
    fn the_cached_header_is_the_principal_and_lives_no_longer_than_its_token() {
        let now = now_micros();
        let answer = Authenticated::new(ada(), now + 60_000_000).unwrap();
        let forwarded = Principal::from_metadata_value(answer.metadata.as_bytes()).unwrap();
        assert_eq!(forwarded, ada());
        assert!(Authenticated::current(answer.clone()).is_some());
        let expired = Authenticated::new(ada(), now - 1).unwrap();
        assert!(
            Authenticated::current(expired).is_none(),
            "an expired token's answer is not used"
        );
    }
}
