//! The internal certificate authority: a CA and one certificate per service,
//! each naming its service once as a SPIFFE URI SAN `spiffe://orgplane/<service>`.
//!
//! rustls checks that a peer's chain ends at the CA; which service the peer
//! is, and whether it may call a method, is our check ([`crate::caller`]).

use std::{
    fs,
    io::Write,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// Prefix of every orgplane SPIFFE id.
pub const SPIFFE_PREFIX: &str = "spiffe://orgplane/";

/// Every identity the CA issues a certificate for.
pub const IDENTITIES: &[&str] = &["identity", "organizations", "registry", "agents", "gateway"];

/// Where the certificates of one data directory live (`<data-dir>/certs`).
#[derive(Debug, Clone)]
pub struct CertDir(PathBuf);

impl CertDir {
    /// The certificate folder under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self(dir.into())
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The CA certificate, PEM.
    pub fn ca_cert(&self) -> PathBuf {
        self.0.join("ca.pem")
    }

    fn ca_key(&self) -> PathBuf {
        self.0.join("ca-key.pem")
    }

    /// A service's certificate, PEM.
    pub fn cert(&self, service: &str) -> PathBuf {
        self.0.join(format!("{service}.pem"))
    }

    /// A service's private key, PEM.
    pub fn key(&self, service: &str) -> PathBuf {
        self.0.join(format!("{service}-key.pem"))
    }

    /// Creates the CA if missing and a certificate for each identity that has
    /// none, with `extra_sans` (DNS names or IPs) besides the defaults.
    /// Existing files are kept. Returns the identities issued now.
    pub fn init(&self, identities: &[&str], extra_sans: &[String]) -> anyhow::Result<Vec<String>> {
        fs::create_dir_all(&self.0).with_context(|| format!("creating {}", self.0.display()))?;
        let (ca_pem, ca_key) = if self.ca_cert().exists() {
            let key = KeyPair::from_pem(&fs::read_to_string(self.ca_key())?)
                .context("reading the CA key")?;
            (fs::read_to_string(self.ca_cert())?, key)
        } else {
            let (pem, key) = new_ca()?;
            write_private(&self.ca_key(), &key.serialize_pem())?;
            fs::write(self.ca_cert(), &pem)?;
            (pem, key)
        };
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("loading the CA")?;
        let mut issued = Vec::new();
        for identity in identities {
            if self.cert(identity).exists() && self.key(identity).exists() {
                continue;
            }
            let (cert, key) = issue(&issuer, identity, extra_sans)?;
            write_private(&self.key(identity), &key)?;
            fs::write(self.cert(identity), cert)?;
            issued.push((*identity).to_owned());
        }
        Ok(issued)
    }

    /// Loads the material a service needs for mTLS.
    pub fn load(&self, service: &str) -> anyhow::Result<ServiceTls> {
        let read = |path: PathBuf| {
            fs::read_to_string(&path).with_context(|| {
                format!(
                    "reading {} (run `orgplane certs init` to create certificates)",
                    path.display()
                )
            })
        };
        Ok(ServiceTls {
            service: service.to_owned(),
            ca_pem: read(self.ca_cert())?,
            cert_pem: read(self.cert(service))?,
            key_pem: read(self.key(service))?,
        })
    }
}

fn new_ca() -> anyhow::Result<(String, KeyPair)> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "orgplane internal CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let key = KeyPair::generate()?;
    let ca = CertifiedIssuer::self_signed(params, key)?;
    let pem = ca.pem();
    let key = KeyPair::from_pem(&ca.key().serialize_pem())?;
    Ok((pem, key))
}

fn issue(
    issuer: &Issuer<'_, KeyPair>,
    identity: &str,
    extra_sans: &[String],
) -> anyhow::Result<(String, String)> {
    if identity.is_empty() || !identity.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
        bail!("invalid identity {identity:?}");
    }
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, identity);
    params.distinguished_name = dn;
    let mut sans = vec![
        SanType::DnsName(identity.try_into()?),
        SanType::DnsName("localhost".try_into()?),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        SanType::URI(format!("{SPIFFE_PREFIX}{identity}").try_into()?),
    ];
    for extra in extra_sans {
        sans.push(match extra.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(extra.as_str().try_into()?),
        });
    }
    params.subject_alt_names = sans;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// One service's CA, certificate and key, PEM-encoded.
#[derive(Clone)]
pub struct ServiceTls {
    /// The service these belong to.
    pub service: String,
    /// The CA that every peer must chain to.
    pub ca_pem: String,
    /// This service's certificate.
    pub cert_pem: String,
    /// This service's private key.
    pub key_pem: String,
}

impl std::fmt::Debug for ServiceTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTls")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl ServiceTls {
    /// Server side: present our certificate, require a client certificate
    /// that chains to the CA.
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
    }

    /// Client side: trust only the CA, expect the server to be `server`
    /// (its DNS SAN), and present our certificate.
    pub fn client_config(&self, server: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name(server)
    }
}

/// The orgplane identity named by a certificate's SPIFFE URI SAN, if it has
/// exactly one.
pub fn spiffe_identity(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    let mut ids = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => uri.strip_prefix(SPIFFE_PREFIX),
            _ => None,
        });
    let id = ids.next()?;
    if ids.next().is_some() || id.is_empty() || id.contains('/') {
        return None;
    }
    Some(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der_of(pem_text: &str) -> Vec<u8> {
        let b64: String = pem_text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    }

    #[test]
    fn issues_certificates_with_one_spiffe_id() {
        let dir = std::env::temp_dir().join(format!("orgplane-pki-{}", uuid::Uuid::now_v7()));
        let certs = CertDir::new(&dir);
        let issued = certs.init(&["identity", "gateway"], &[]).unwrap();
        assert_eq!(issued, ["identity", "gateway"]);
        assert!(
            certs.init(&["identity"], &[]).unwrap().is_empty(),
            "kept on rerun"
        );
        let tls = certs.load("identity").unwrap();
        assert_eq!(
            spiffe_identity(&der_of(&tls.cert_pem)).as_deref(),
            Some("identity")
        );
        assert_eq!(spiffe_identity(&der_of(&tls.ca_pem)), None);
        let mode = fs::metadata(certs.key("identity")).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
