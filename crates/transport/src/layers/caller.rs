//! Which internal services may call which methods.
//!
//! rustls accepts any client whose certificate chains to the internal CA.
//! This layer reads the peer's SPIFFE id, records it in the request
//! extensions as [`CallerIdentity`], and refuses with `PERMISSION_DENIED` a
//! method whose allow-list does not name it.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    task::{Context, Poll},
};

use futures::future::{Either, Ready, ready};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use crate::pki::spiffe_identity;

/// The orgplane identity of the mTLS peer of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity(pub String);

/// Allow-lists of caller identities by method path prefix.
#[derive(Debug, Clone, Default)]
pub struct CallerPolicy {
    rules: Vec<(String, Vec<String>)>,
}

/// In an allow-list: any identity that the CA vouches for.
pub const ANY_IDENTITY: &str = "*";

impl CallerPolicy {
    /// A policy that refuses everything not allowed afterwards.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows `identities` to call methods whose path starts with `prefix`,
    /// e.g. `/orgplane.identity.v1.IdentityInternal/` or a full method path.
    /// The longest matching prefix decides.
    pub fn allow(mut self, prefix: &str, identities: &[&str]) -> Self {
        self.rules.push((
            prefix.to_owned(),
            identities.iter().map(|s| (*s).to_owned()).collect(),
        ));
        self
    }

    /// Allows health checks and reflection from any identity.
    pub fn allow_infrastructure(self) -> Self {
        self.allow("/grpc.health.v1.Health/", &[ANY_IDENTITY])
            .allow("/grpc.reflection.", &[ANY_IDENTITY])
    }

    /// Whether `caller` may call `path`.
    pub fn allows(&self, path: &str, caller: &str) -> bool {
        self.rules
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .is_some_and(|(_, ids)| ids.iter().any(|id| id == caller || id == ANY_IDENTITY))
    }
}

/// The identities of the client certificates seen lately, by their DER
/// bytes: a connection presents the same certificate on every call, and
/// parsing it per call was 1.7 % of a read's CPU. Keyed by the bytes, not
/// by the connection, so that an answer can only be the certificate's own.
#[derive(Debug, Default)]
struct KnownCertificates(RwLock<HashMap<Box<[u8]>, Option<String>>>);

/// Certificates [`KnownCertificates`] remembers before it starts over: the
/// internal CA issues a handful per service (one per rotation), and only
/// those pass the handshake.
const KNOWN_CERTIFICATES: usize = 256;

impl KnownCertificates {
    /// [`spiffe_identity`] of `leaf`, parsed once.
    fn identity(&self, leaf: &[u8]) -> Option<String> {
        if let Some(known) = self.0.read().expect("the certificates' lock").get(leaf) {
            return known.clone();
        }
        let identity = spiffe_identity(leaf);
        let mut known = self.0.write().expect("the certificates' lock");
        if known.len() >= KNOWN_CERTIFICATES {
            known.clear();
        }
        known.insert(leaf.into(), identity.clone());
        identity
    }
}

/// Applies a [`CallerPolicy`].
#[derive(Debug, Clone)]
pub struct CallerLayer {
    policy: Arc<CallerPolicy>,
    known: Arc<KnownCertificates>,
}

impl CallerLayer {
    /// A layer enforcing `policy`.
    pub fn new(policy: CallerPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
            known: Arc::default(),
        }
    }
}

impl<S> Layer<S> for CallerLayer {
    type Service = CallerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallerService {
            inner,
            policy: self.policy.clone(),
            known: self.known.clone(),
        }
    }
}

/// See [`CallerLayer`].
#[derive(Debug, Clone)]
pub struct CallerService<S> {
    inner: S,
    policy: Arc<CallerPolicy>,
    known: Arc<KnownCertificates>,
}

impl<S, B, R> Service<http::Request<B>> for CallerService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<S::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let caller = req
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|info| info.peer_certs())
            .and_then(|certs| certs.first().and_then(|leaf| self.known.identity(leaf)));
        let Some(caller) = caller else {
            let status = tonic::Status::unauthenticated(
                "a client certificate with an orgplane identity is required",
            );
            return Either::Left(ready(Ok(status.into_http())));
        };
        let path = req.uri().path();
        if !self.policy.allows(path, &caller) {
            tracing::warn!(caller = %caller, method = %path, "caller not allowed");
            let status = tonic::Status::permission_denied(format!(
                "identity {caller:?} may not call {path}"
            ));
            return Either::Left(ready(Ok(status.into_http())));
        }
        req.extensions_mut().insert(CallerIdentity(caller));
        Either::Right(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{CaDir, CertDir, tests::der_of};

    #[test]
    fn a_known_certificate_answers_its_own_identity() {
        let dir = std::env::temp_dir().join(format!("orgplane-caller-{}", uuid::Uuid::now_v7()));
        let (certs, ca) = (CertDir::new(dir.join("certs")), CaDir::new(dir.join("ca")));
        certs.init(&ca, &["gateway", "agents"], &[]).unwrap();
        let gateway = der_of(&certs.load("gateway").unwrap().cert_pem);
        let agents = der_of(&certs.load("agents").unwrap().cert_pem);
        let ca_cert = der_of(&certs.load("agents").unwrap().ca_pem);
        let known = KnownCertificates::default();
        for _ in 0..2 {
            assert_eq!(known.identity(&gateway).as_deref(), Some("gateway"));
            assert_eq!(known.identity(&agents).as_deref(), Some("agents"));
            assert_eq!(known.identity(&ca_cert), None, "no SPIFFE id");
        }
        // Full: it starts over and still answers.
        for filler in 0..KNOWN_CERTIFICATES {
            known.identity(&filler.to_be_bytes());
        }
        assert!(known.0.read().unwrap().len() <= KNOWN_CERTIFICATES);
        assert_eq!(known.identity(&agents).as_deref(), Some("agents"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn longest_prefix_decides_and_default_is_deny() {
        let policy = CallerPolicy::new()
            .allow_infrastructure()
            .allow("/orgplane.identity.v1.", &["gateway"])
            .allow(
                "/orgplane.identity.v1.IdentityInternal/",
                &["gateway", "organizations"],
            );
        assert!(policy.allows("/orgplane.identity.v1.UserService/GetUser", "gateway"));
        assert!(!policy.allows("/orgplane.identity.v1.UserService/GetUser", "organizations"));
        assert!(policy.allows(
            "/orgplane.identity.v1.IdentityInternal/IntrospectToken",
            "organizations"
        ));
        assert!(!policy.allows(
            "/orgplane.identity.v1.IdentityInternal/IntrospectToken",
            "agents"
        ));
        assert!(policy.allows("/grpc.health.v1.Health/Check", "agents"));
        assert!(!policy.allows("/other.Service/Method", "gateway"));
    }
}
