//! Certificates that follow their files: a service's certificate, key and
//! CA bundle are read again when the files change (cert-manager renews
//! them in place; an operator rotates the CA by a bundle of old and new),
//! and every connection made or accepted from then on uses the new ones —
//! open connections keep theirs. No restart.
//!
//! The rustls configurations built here ([`ServiceTls::rustls_server`],
//! [`ServiceTls::rustls_client`]) ask [`Live`] for the current material at
//! each handshake. A task polls the files every [`RELOAD_INTERVAL`]; a
//! change that does not parse (a half-written file) keeps the material in
//! use and is tried again at the next poll.
//!
//! [`ServiceTls::rustls_server`]: super::ServiceTls::rustls_server
//! [`ServiceTls::rustls_client`]: super::ServiceTls::rustls_client

use std::{
    hash::{Hash, Hasher},
    path::PathBuf,
    sync::{Arc, RwLock, Weak},
    time::Duration,
};

use anyhow::Context as _;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
    client::{
        ResolvesClientCert, WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
    server::{
        ClientHello, ResolvesServerCert, WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::CertifiedKey,
};

/// How often the files are looked at.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// The files of one service: `tls.crt`, `tls.key`, `ca.crt`.
#[derive(Debug, Clone)]
pub(super) struct Files {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl Files {
    /// Their contents: certificate, key, CA bundle.
    pub fn read(&self) -> anyhow::Result<[Vec<u8>; 3]> {
        let read = |path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        };
        Ok([read(&self.cert)?, read(&self.key)?, read(&self.ca)?])
    }
}

/// What a handshake uses.
struct Material {
    /// Of the three files' bytes: a change is a different value.
    digest: u64,
    key: Arc<CertifiedKey>,
    clients: Arc<dyn ClientCertVerifier>,
    servers: Arc<WebPkiServerVerifier>,
}

fn digest(files: &[Vec<u8>; 3]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    files.hash(&mut hasher);
    hasher.finish()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn material(files: [Vec<u8>; 3]) -> anyhow::Result<Material> {
    let digest = digest(&files);
    let [cert, key, ca] = files;
    let chain = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<Vec<_>, _>>()
        .context("reading the certificate")?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in tls.crt");
    let key = PrivateKeyDer::from_pem_slice(&key).context("reading the private key")?;
    let provider = provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .context("loading the private key")?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&ca) {
        roots
            .add(ca.context("reading the CA bundle")?)
            .context("adding a CA certificate")?;
    }
    anyhow::ensure!(!roots.is_empty(), "no CA certificate in ca.crt");
    let roots = Arc::new(roots);
    Ok(Material {
        digest,
        key: Arc::new(CertifiedKey::new(chain, signing)),
        clients: WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .context("building the client verifier")?,
        servers: WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .context("building the server verifier")?,
    })
}

/// A service's TLS material, current.
pub(super) struct Live {
    files: Files,
    current: RwLock<Arc<Material>>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("cert", &self.files.cert)
            .finish_non_exhaustive()
    }
}

impl Live {
    /// The material `contents` (what `files` held just now; an error if it
    /// is not TLS material) and, inside a runtime, `files` followed for as
    /// long as the result lives.
    pub fn open(files: Files, contents: [Vec<u8>; 3]) -> anyhow::Result<Arc<Self>> {
        let current = material(contents)?;
        let live = Arc::new(Self {
            files,
            current: RwLock::new(Arc::new(current)),
            provider: provider(),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(follow(Arc::downgrade(&live)));
        }
        Ok(live)
    }

    fn current(&self) -> Arc<Material> {
        self.current.read().expect("tls material lock").clone()
    }

    /// Reads the files again; whether the material changed.
    pub fn reload(&self) -> anyhow::Result<bool> {
        let files = self.files.read()?;
        if digest(&files) == self.current().digest {
            return Ok(false);
        }
        let fresh = material(files)?;
        *self.current.write().expect("tls material lock") = Arc::new(fresh);
        Ok(true)
    }

    /// The server side: this certificate, and clients chaining to the CA
    /// bundle; HTTP/2.
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(self.clone())
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// The client side: servers chaining to the CA bundle, this certificate
    /// presented; HTTP/2.
    pub fn client_config(self: &Arc<Self>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(self.clone())
            .with_client_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Polls the files of `live` until it is dropped.
async fn follow(live: Weak<Live>) {
    let mut failing = false;
    loop {
        tokio::time::sleep(RELOAD_INTERVAL).await;
        let Some(live) = live.upgrade() else {
            return;
        };
        match live.reload() {
            Ok(true) => {
                failing = false;
                tracing::info!(cert = %live.files.cert.display(), "certificates changed: new connections use them");
            }
            Ok(false) => failing = false,
            Err(err) => {
                if !failing {
                    tracing::warn!(cert = %live.files.cert.display(), error = %format!("{err:#}"), "changed certificates do not load; keeping those in use");
                }
                failing = true;
            }
        }
    }
}

impl Live {
    /// A handshake signature checked by the provider's algorithms (what
    /// rustls' WebPKI verifiers do, on either side).
    fn signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        verify: fn(
            &[u8],
            &CertificateDer<'_>,
            &DigitallySignedStruct,
            &rustls::crypto::WebPkiSupportedAlgorithms,
        ) -> Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
}

impl ResolvesServerCert for Live {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().key.clone())
    }
}

impl ResolvesClientCert for Live {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ClientCertVerifier for Live {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: every orgplane client has one certificate to offer.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .clients
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(message, cert, dss, rustls::crypto::verify_tls12_signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(message, cert, dss, rustls::crypto::verify_tls13_signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ServerCertVerifier for Live {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.current().servers.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(message, cert, dss, rustls::crypto::verify_tls12_signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(message, cert, dss, rustls::crypto::verify_tls13_signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
