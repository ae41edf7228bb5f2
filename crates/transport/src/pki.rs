//! The internal certificate authority: a CA and one certificate per service,
//! each naming its service once as a SPIFFE URI SAN `spiffe://orgplane/<service>`.
//!
//! rustls checks that a peer's chain ends at the CA; which service the peer
//! is, and whether it may call a method, is our check ([`crate::layers::caller`]).

use std::{
    fs,
    io::Write,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

mod live;

pub use live::RELOAD_INTERVAL;

/// Prefix of every orgplane SPIFFE id.
pub const SPIFFE_PREFIX: &str = "spiffe://orgplane/";

/// Every identity the CA issues a certificate for.
pub const IDENTITIES: &[&str] = &["identity", "organizations", "registry", "agents", "gateway"];

/// How long a service certificate is valid.
pub const SERVICE_CERT_VALIDITY: Duration = Duration::from_secs(90 * 86_400);
/// A service certificate is issued again when it expires within this.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// Where the internal CA's certificate and private key live
/// (`<data-dir>/ca`, or `certs init --ca-dir`). Only `certs init` and
/// `dev` read it: no service process needs the CA key, so a compromised
/// service cannot issue itself another identity.
#[derive(Debug, Clone)]
pub struct CaDir(PathBuf);

impl CaDir {
    /// The CA folder `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self(dir.into())
    }

    fn cert(&self) -> PathBuf {
        self.0.join("ca.crt")
    }

    fn key(&self) -> PathBuf {
        self.0.join("ca.key")
    }

    /// The CA's certificate (PEM) and key, created when missing.
    fn open_or_create(&self) -> anyhow::Result<(String, KeyPair)> {
        create_private_dir(&self.0)?;
        if self.cert().exists() {
            let key = KeyPair::from_pem(&fs::read_to_string(self.key())?)
                .context("reading the CA key")?;
            return Ok((fs::read_to_string(self.cert())?, key));
        }
        let (pem, key) = new_ca()?;
        write_private(&self.key(), &key.serialize_pem())?;
        fs::write(self.cert(), &pem)?;
        Ok((pem, key))
    }
}

/// Where the services' certificates live (`<data-dir>/certs`): one folder
/// per service holding only what that service needs — `tls.crt`, `tls.key`
/// and the CA's certificate `ca.crt` (the names of a Kubernetes TLS
/// secret) — and the CA's certificate at the top for clients.
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

    /// The CA certificate, PEM (public: for clients such as grpcurl).
    pub fn ca_cert(&self) -> PathBuf {
        self.0.join("ca.crt")
    }

    /// The folder of one service's files.
    pub fn service_dir(&self, service: &str) -> PathBuf {
        self.0.join(service)
    }

    /// A service's certificate, PEM.
    pub fn cert(&self, service: &str) -> PathBuf {
        self.service_dir(service).join("tls.crt")
    }

    /// A service's private key, PEM.
    pub fn key(&self, service: &str) -> PathBuf {
        self.service_dir(service).join("tls.key")
    }

    /// Creates the CA (in `ca`) if missing and a certificate for each
    /// identity that has none or whose certificate expires within
    /// [`RENEW_BEFORE`], with `extra_sans` (DNS names or IPs) besides the
    /// defaults. Other files are kept. Returns the identities issued now.
    pub fn init(
        &self,
        ca: &CaDir,
        identities: &[&str],
        extra_sans: &[String],
    ) -> anyhow::Result<Vec<String>> {
        fs::create_dir_all(&self.0).with_context(|| format!("creating {}", self.0.display()))?;
        self.move_legacy_ca(ca)?;
        let (ca_pem, ca_key) = ca.open_or_create()?;
        fs::write(self.ca_cert(), &ca_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("loading the CA")?;
        let renew_after = SystemTime::now() + RENEW_BEFORE;
        let mut issued = Vec::new();
        for identity in identities {
            let dir = self.service_dir(identity);
            create_private_dir(&dir)?;
            fs::write(dir.join("ca.crt"), &ca_pem)?;
            let current = fs::read_to_string(self.cert(identity))
                .ok()
                .filter(|_| self.key(identity).exists())
                .and_then(|pem| not_after(&pem));
            if current.is_some_and(|end| end > renew_after) {
                continue;
            }
            let (cert, key) = issue(&issuer, identity, extra_sans)?;
            write_private(&self.key(identity), &key)?;
            fs::write(self.cert(identity), cert)?;
            issued.push((*identity).to_owned());
        }
        Ok(issued)
    }

    /// Moves a CA from the layout of earlier versions (its key beside the
    /// service keys, `certs/ca-key.pem`) to `ca`, and removes the service
    /// files of that layout (they are issued again in their folders).
    fn move_legacy_ca(&self, ca: &CaDir) -> anyhow::Result<()> {
        let (legacy_cert, legacy_key) = (self.0.join("ca.pem"), self.0.join("ca-key.pem"));
        if legacy_key.exists() && !ca.key().exists() {
            create_private_dir(&ca.0)?;
            fs::rename(&legacy_key, ca.key())?;
            fs::rename(&legacy_cert, ca.cert())?;
            tracing::warn!(ca = %ca.0.display(), "moved the CA key out of the certificate folder");
        }
        for identity in IDENTITIES {
            for legacy in [format!("{identity}.pem"), format!("{identity}-key.pem")] {
                let _ = fs::remove_file(self.0.join(legacy));
            }
        }
        let _ = fs::remove_file(legacy_key);
        let _ = fs::remove_file(legacy_cert);
        Ok(())
    }

    /// Loads the material a service needs for mTLS, from its own folder
    /// only.
    pub fn load(&self, service: &str) -> anyhow::Result<ServiceTls> {
        let files = live::Files {
            cert: self.cert(service),
            key: self.key(service),
            ca: self.service_dir(service).join("ca.crt"),
        };
        let contents = files.read().with_context(|| {
            format!("the certificates of {service} (run `orgplane certs init` to create them)")
        })?;
        let pem = |bytes: &Vec<u8>| {
            String::from_utf8(bytes.clone())
                .with_context(|| format!("the certificates of {service} are not PEM text"))
        };
        let [cert_pem, key_pem, ca_pem] =
            [pem(&contents[0])?, pem(&contents[1])?, pem(&contents[2])?];
        Ok(ServiceTls {
            service: service.to_owned(),
            ca_pem,
            cert_pem,
            key_pem,
            live: live::Live::open(files, contents)
                .with_context(|| format!("loading the certificates of {service}"))?,
        })
    }
}

/// When the certificate `pem` stops being valid.
fn not_after(pem: &str) -> Option<SystemTime> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = parsed.parse_x509().ok()?;
    let seconds = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Creates `dir` readable by its owner only.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    Ok(())
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
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + SERVICE_CERT_VALIDITY;
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

/// One service's CA, certificate and key: PEM-encoded as loaded, and
/// followed on disk for the connections made from then on ([`live`]).
#[derive(Clone)]
pub struct ServiceTls {
    /// The service these belong to.
    pub service: String,
    /// The CA bundle every peer must chain to, as loaded.
    pub ca_pem: String,
    /// This service's certificate, as loaded.
    pub cert_pem: String,
    /// This service's private key, as loaded.
    pub key_pem: String,
    live: std::sync::Arc<live::Live>,
}

impl std::fmt::Debug for ServiceTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTls")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl ServiceTls {
    /// Server side, following the files: present our current certificate,
    /// require a client certificate that chains to the current CA bundle.
    pub fn rustls_server(&self) -> anyhow::Result<std::sync::Arc<rustls::ServerConfig>> {
        self.live.server_config()
    }

    /// Client side, following the files: trust the current CA bundle and
    /// present our current certificate (the server's name is given at each
    /// connection).
    pub fn rustls_client(&self) -> anyhow::Result<std::sync::Arc<rustls::ClientConfig>> {
        self.live.client_config()
    }

    /// Server side as loaded (tonic's configuration; does not follow the
    /// files): present our certificate, require a client certificate that
    /// chains to the CA.
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
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
pub(crate) mod tests {
    use super::*;

    /// The DER bytes of the one certificate of `pem_text`.
    pub(crate) fn der_of(pem_text: &str) -> Vec<u8> {
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
    fn issues_certificates_with_one_spiffe_id_and_keeps_the_ca_key_apart() {
        let dir = std::env::temp_dir().join(format!("orgplane-pki-{}", uuid::Uuid::now_v7()));
        let (certs, ca) = (CertDir::new(dir.join("certs")), CaDir::new(dir.join("ca")));
        let issued = certs.init(&ca, &["identity", "gateway"], &[]).unwrap();
        assert_eq!(issued, ["identity", "gateway"]);
        assert!(
            certs.init(&ca, &["identity"], &[]).unwrap().is_empty(),
            "kept on rerun"
        );
        let tls = certs.load("identity").unwrap();
        assert_eq!(
            spiffe_identity(&der_of(&tls.cert_pem)).as_deref(),
            Some("identity")
        );
        assert_eq!(spiffe_identity(&der_of(&tls.ca_pem)), None);
        let mode = |path: &Path| {
            std::os::unix::fs::PermissionsExt::mode(&fs::metadata(path).unwrap().permissions())
                & 0o777
        };
        assert_eq!(mode(&certs.key("identity")), 0o600);
        assert_eq!(mode(&certs.service_dir("identity")), 0o700);
        // Issue 15, item 14: no private key but the service's own in its
        // folder, none at all under certs/ but the services' own, and the
        // CA key in its own folder.
        let files_in = |path: &Path| -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            files_in(&certs.service_dir("gateway")),
            ["ca.crt", "tls.crt", "tls.key"]
        );
        assert_eq!(files_in(certs.path()), ["ca.crt", "gateway", "identity"]);
        assert_eq!(files_in(&dir.join("ca")), ["ca.crt", "ca.key"]);
        assert_eq!(mode(&dir.join("ca")), 0o700);
        // Service certificates last 90 days.
        let end = not_after(&tls.cert_pem).unwrap();
        let days = end.duration_since(SystemTime::now()).unwrap().as_secs() / 86_400;
        assert!((89..=90).contains(&days), "{days} days");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn certificates_near_their_expiry_are_issued_again_and_a_legacy_ca_moves_out() {
        let dir = std::env::temp_dir().join(format!("orgplane-pki-{}", uuid::Uuid::now_v7()));
        let (certs, ca) = (CertDir::new(dir.join("certs")), CaDir::new(dir.join("ca")));
        // The earlier layout: the CA key beside the service files.
        fs::create_dir_all(certs.path()).unwrap();
        let (ca_pem, ca_key) = new_ca().unwrap();
        fs::write(certs.path().join("ca.pem"), &ca_pem).unwrap();
        fs::write(certs.path().join("ca-key.pem"), ca_key.serialize_pem()).unwrap();
        fs::write(certs.path().join("identity-key.pem"), "old").unwrap();
        certs.init(&ca, &["identity"], &[]).unwrap();
        assert!(!certs.path().join("ca-key.pem").exists());
        assert!(!certs.path().join("identity-key.pem").exists());
        assert_eq!(
            fs::read_to_string(certs.ca_cert()).unwrap(),
            ca_pem,
            "the same CA"
        );
        // A certificate that expires within 30 days is issued again.
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.not_after = OffsetDateTime::now_utc() + time::Duration::days(10);
        let key = KeyPair::generate().unwrap();
        let soon = params.signed_by(&key, &issuer).unwrap();
        fs::write(certs.cert("identity"), soon.pem()).unwrap();
        assert_eq!(certs.init(&ca, &["identity"], &[]).unwrap(), ["identity"]);
        fs::remove_dir_all(dir).unwrap();
    }
}
