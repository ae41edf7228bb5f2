//! A small OIDC issuer on loopback for the tests: a discovery document, a
//! JWKS of P-256 keys, and ID tokens signed with them. Keys can be rotated
//! and the issuer stopped, as real identity providers do.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{Json, Router, extract::State, routing::get};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// A signing key with its id.
struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl Key {
    fn generate(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate().expect("P-256 key");
        let raw = pair.public_key_raw();
        assert_eq!(raw.len(), 65, "uncompressed P-256 point");
        Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk: json!({
                "kty": "EC",
                "crv": "P-256",
                "alg": "ES256",
                "use": "sig",
                "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
            }),
        }
    }
}

struct Keys {
    published: Vec<Key>,
    fetches: usize,
}

/// The issuer.
pub struct OidcIssuer {
    /// Its URL (`iss`).
    pub url: String,
    keys: Arc<Mutex<Keys>>,
    server: JoinHandle<()>,
}

/// Claims of a token to issue; `None` leaves a claim out.
#[derive(Debug, Clone)]
pub struct IdToken {
    /// `sub`.
    pub subject: String,
    /// `email`.
    pub email: Option<String>,
    /// `email_verified`.
    pub email_verified: Option<bool>,
    /// `aud`.
    pub audience: String,
    /// `iss` (the issuer's own URL unless set).
    pub issuer: Option<String>,
    /// Seconds from now until `exp` (negative: already expired).
    pub expires_in: i64,
}

impl IdToken {
    /// A valid token for `email` (verified) and `audience`.
    pub fn for_email(email: &str, audience: &str) -> Self {
        Self {
            subject: format!("sub-{email}"),
            email: Some(email.to_owned()),
            email_verified: Some(true),
            audience: audience.to_owned(),
            issuer: None,
            expires_in: 300,
        }
    }
}

impl OidcIssuer {
    /// Starts serving on an ephemeral loopback port with one key.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let keys = Arc::new(Mutex::new(Keys {
            published: vec![Key::generate("key-1")],
            fetches: 0,
        }));
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/keys"),
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let discovery = discovery.clone();
                    async move { Json(discovery) }
                }),
            )
            .route(
                "/keys",
                get(|State(keys): State<Arc<Mutex<Keys>>>| async move {
                    let mut keys = keys.lock().unwrap();
                    keys.fetches += 1;
                    let jwks: Vec<Value> = keys.published.iter().map(|k| k.jwk.clone()).collect();
                    Json(json!({ "keys": jwks }))
                }),
            )
            .with_state(keys.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, keys, server }
    }

    /// Signs `token` with the newest published key.
    pub fn issue(&self, token: &IdToken) -> String {
        let keys = self.keys.lock().unwrap();
        let key = keys.published.last().unwrap();
        self.sign(token, &key.kid, &key.encoding)
    }

    /// Signs `token` with a key the issuer never published, under the key
    /// id `kid`.
    pub fn forge(&self, token: &IdToken, kid: &str) -> String {
        let rogue = Key::generate(kid);
        self.sign(token, &rogue.kid, &rogue.encoding)
    }

    fn sign(&self, token: &IdToken, kid: &str, key: &EncodingKey) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut claims = json!({
            "iss": token.issuer.clone().unwrap_or_else(|| self.url.clone()),
            "sub": token.subject,
            "aud": token.audience,
            "iat": now,
            "exp": now + token.expires_in,
            "name": "Ada Lovelace",
        });
        if let Some(email) = &token.email {
            claims["email"] = json!(email);
        }
        if let Some(verified) = token.email_verified {
            claims["email_verified"] = json!(verified);
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        encode(&header, &claims, key).expect("signing")
    }

    /// Publishes a new key and signs with it from now on (the old one stays
    /// published, as during a real rotation).
    pub fn rotate(&self, kid: &str) {
        self.keys.lock().unwrap().published.push(Key::generate(kid));
    }

    /// How many times the key set was fetched.
    pub fn key_fetches(&self) -> usize {
        self.keys.lock().unwrap().fetches
    }

    /// Stops answering.
    pub fn stop(&self) {
        self.server.abort();
    }
}

impl Drop for OidcIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}
