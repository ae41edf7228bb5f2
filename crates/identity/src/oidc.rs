//! Verification of OIDC ID tokens against their issuer's published keys.
//!
//! The keys come from the issuer's discovery document
//! (`<issuer>/.well-known/openid-configuration` → `jwks_uri`) and are cached
//! per issuer; a token signed with a key id the cache does not know causes
//! one refetch (issuers rotate keys), at most once per
//! [`REFETCH_INTERVAL`] per issuer so that forged key ids cannot make us
//! hammer the issuer. Issuers are fetched over HTTPS with the web PKI roots.
//!
//! An organization's owner chooses the issuer URL, so a fetch must not let
//! them probe the network orgplane runs in: unless the verifier is built
//! to allow insecure issuers (`--allow-insecure-issuers`, for tests and
//! local identity providers), plain HTTP is refused, and so is every
//! address that is not public — loopback, private, link-local, unique
//! local, shared (CGNAT), multicast, unspecified — whether written in the
//! URL or resolved from its name (the connection goes to the checked
//! address, so a name cannot resolve differently between check and
//! connect). Why a fetch failed is logged; the caller learns only that the
//! provider is unavailable.
//!
//! Signatures, `iss`, `aud`, `exp` and `nbf` are checked by `jsonwebtoken`;
//! only asymmetric algorithms are accepted (a JWKS never holds HMAC secrets,
//! and `none` is never valid).

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::{
    client::legacy::{
        Client,
        connect::{HttpConnector, dns::Name},
    },
    rt::TokioExecutor,
};
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    jwk::{Jwk, JwkSet},
};
use moka::future::Cache;
use serde::Deserialize;

/// How long an issuer's keys are reused before being fetched again.
pub const KEYS_TTL: Duration = Duration::from_secs(600);
/// Least time between two fetches of one issuer's keys.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(2);
/// Longest wait for an issuer's answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest discovery document or key set read.
const MAX_DOCUMENT: usize = 1 << 20;
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 60;

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The token is malformed, signed by an unknown key, expired, or for
    /// another issuer or audience.
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
    /// The issuer could not be reached or answered nonsense.
    #[error("the identity provider is unavailable: {0}")]
    IssuerUnavailable(String),
}

/// What orgplane uses of a verified ID token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IdClaims {
    /// The issuer.
    pub iss: String,
    /// The user's stable id at the issuer.
    pub sub: String,
    /// The user's address, if the scope asked for it.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the issuer verified that address.
    #[serde(default)]
    pub email_verified: Option<bool>,
    /// A display name.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

type HttpsClient =
    Client<hyper_rustls::HttpsConnector<HttpConnector<PublicResolver>>, Empty<Bytes>>;

/// Whether `ip` is an address of the public internet (see the module
/// documentation for what is not).
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// Resolves issuer host names, keeping public addresses only (unless
/// insecure issuers are allowed).
#[derive(Clone, Debug)]
pub struct PublicResolver {
    allow_private: bool,
}

impl tower::Service<Name> for PublicResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(std::io::Error::other(format!(
                    "{} resolves to no public address",
                    name.as_str()
                )));
            }
            Ok(addrs.into_iter())
        })
    }
}

/// Verifies ID tokens; cheap to clone.
#[derive(Clone)]
pub struct OidcVerifier {
    http: HttpsClient,
    allow_insecure: bool,
    keys: Cache<String, Arc<JwkSet>>,
    recently_fetched: Cache<String, ()>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuers", &self.keys.entry_count())
            .finish()
    }
}

impl Default for OidcVerifier {
    fn default() -> Self {
        Self::new(false)
    }
}

impl OidcVerifier {
    /// A verifier with an empty key cache; `allow_insecure` also fetches
    /// plain-HTTP issuers and issuers on private addresses (tests, local
    /// identity providers: never in production).
    pub fn new(allow_insecure: bool) -> Self {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots(),
        })
        .with_no_client_auth();
        let mut http = HttpConnector::new_with_resolver(PublicResolver {
            allow_private: allow_insecure,
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(FETCH_TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
            allow_insecure,
            keys: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(KEYS_TTL)
                .build(),
            recently_fetched: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(REFETCH_INTERVAL)
                .build(),
        }
    }

    /// Verifies `token` as an ID token of `issuer` for `client_id`.
    pub async fn verify(
        &self,
        issuer: &str,
        client_id: &str,
        token: &str,
    ) -> Result<IdClaims, OidcError> {
        let invalid = |e: &dyn std::fmt::Display| OidcError::InvalidToken(e.to_string());
        let header = decode_header(token).map_err(|e| invalid(&e))?;
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        ) {
            return Err(invalid(&format!("{:?} is not accepted", header.alg)));
        }
        let jwk = self.key(issuer, header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| invalid(&e))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        let data = decode::<IdClaims>(token, &key, &validation).map_err(|e| invalid(&e))?;
        Ok(data.claims)
    }

    /// The issuer's key `kid` (or its only key when the token names none).
    async fn key(&self, issuer: &str, kid: Option<&str>) -> Result<Jwk, OidcError> {
        let pick = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        if let Some(set) = self.keys.get(issuer).await
            && let Some(jwk) = pick(&set)
        {
            return Ok(jwk);
        }
        if self.recently_fetched.contains_key(issuer) && self.keys.contains_key(issuer) {
            return Err(OidcError::InvalidToken(
                "the token's key is not among the issuer's keys".into(),
            ));
        }
        let set = Arc::new(self.fetch_keys(issuer).await?);
        self.recently_fetched.insert(issuer.to_owned(), ()).await;
        self.keys.insert(issuer.to_owned(), set.clone()).await;
        pick(&set).ok_or_else(|| {
            OidcError::InvalidToken("the token's key is not among the issuer's keys".into())
        })
    }

    async fn fetch_keys(&self, issuer: &str) -> Result<JwkSet, OidcError> {
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(&discovery_url).await?;
        if discovery.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(OidcError::IssuerUnavailable(format!(
                "the discovery document names issuer {:?}",
                discovery.issuer
            )));
        }
        self.get_json(&discovery.jwks_uri).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let unavailable = |e: &dyn std::fmt::Display| {
            OidcError::IssuerUnavailable(format!("fetching {url}: {e}"))
        };
        let uri: http::Uri = url.parse().map_err(|e| unavailable(&e))?;
        if !self.allow_insecure {
            if uri.scheme_str() != Some("https") {
                return Err(unavailable(&"only https issuers are fetched"));
            }
            // An address written in the URL is not resolved: check it here.
            if let Some(ip) = uri
                .host()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
                .and_then(|h| h.parse::<IpAddr>().ok())
                && !is_public(ip)
            {
                return Err(unavailable(&"the issuer's address is not public"));
            }
        }
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| unavailable(&e))?;
        let response = tokio::time::timeout(FETCH_TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| unavailable(&"timed out"))?
            .map_err(|e| unavailable(&e))?;
        if !response.status().is_success() {
            return Err(unavailable(&response.status()));
        }
        let body = tokio::time::timeout(
            FETCH_TIMEOUT,
            Limited::new(response.into_body(), MAX_DOCUMENT).collect(),
        )
        .await
        .map_err(|_| unavailable(&"timed out"))?
        .map_err(|e| unavailable(&e))?
        .to_bytes();
        serde_json::from_slice(&body).map_err(|e| unavailable(&e))
    }
}

fn webpki_roots() -> Vec<rustls::pki_types::TrustAnchor<'static>> {
    webpki_roots::TLS_SERVER_ROOTS.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_fetched() {
        for (ip, public) in [
            ("93.184.215.14", true),
            ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", true),
            ("127.0.0.1", false),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("0.0.0.0", false),
            ("::1", false),
            ("fd00::1", false),
            ("fe80::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
        ] {
            assert_eq!(is_public(ip.parse().unwrap()), public, "{ip}");
        }
    }

    /// Issue 15, item 15: without the dev flag, a plain-HTTP issuer, an
    /// issuer written as a private address, and a name that resolves only
    /// to loopback are all refused before any connection, as unavailable.
    #[tokio::test]
    async fn private_and_plain_http_issuers_are_refused() {
        let verifier = OidcVerifier::new(false);
        for url in [
            "http://issuer.example.com/keys",
            "https://127.0.0.1:8443/keys",
            "https://[::1]/keys",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost:8443/keys",
        ] {
            let err = verifier
                .get_json::<serde_json::Value>(url)
                .await
                .unwrap_err();
            assert!(
                matches!(err, OidcError::IssuerUnavailable(_)),
                "{url}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn refuses_symmetric_and_unsigned_tokens_before_any_fetch() {
        let verifier = OidcVerifier::new(false);
        // {"alg":"HS256","typ":"JWT"} . {} . signature
        let hs256 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl";
        let err = verifier
            .verify("https://issuer.example.com", "client", hs256)
            .await
            .unwrap_err();
        assert!(matches!(err, OidcError::InvalidToken(_)), "{err}");
        // {"alg":"none"} is not even an algorithm jsonwebtoken parses.
        let none = "eyJhbGciOiJub25lIn0.e30.";
        let err = verifier
            .verify("https://issuer.example.com", "client", none)
            .await
            .unwrap_err();
        assert!(matches!(err, OidcError::InvalidToken(_)), "{err}");
    }
}
