//! `orgplane certs`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use orgplane_transport::pki::{CaDir, CertDir, IDENTITIES};

/// Certificate subcommands.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create the internal CA and one certificate per service. Each
    /// certificate names its service as the SPIFFE id
    /// `spiffe://orgplane/<service>`, is valid for `<service>`, `localhost`,
    /// 127.0.0.1 and ::1, plus every --san, and lasts 90 days; run again to
    /// issue those that expire within 30 days (the others are kept).
    /// Each service's files go to `certs/<service>/` (`tls.crt`, `tls.key`,
    /// `ca.crt`); the CA's key stays in --ca-dir, which no service reads.
    Init(InitArgs),
    /// Print the certificates `init` made as Kubernetes Secret manifests,
    /// for clusters without cert-manager: one `kubernetes.io/tls` Secret
    /// `orgplane-<service>-tls` per service (`tls.crt`, `tls.key`,
    /// `ca.crt`), the Secrets deploy/kubernetes mounts and cert-manager
    /// would make. They hold private keys: apply them
    /// (`kubectl apply -f -`), do not commit them.
    Kubernetes(KubernetesArgs),
}

/// Arguments of `certs kubernetes`.
#[derive(Debug, Args)]
pub struct KubernetesArgs {
    /// Data folder whose `certs/` folder `certs init` filled.
    #[arg(long, env = "ORGPLANE_DATA_DIR", default_value = "./.orgplane")]
    pub data_dir: PathBuf,
    /// Namespace of the Secrets.
    #[arg(long, default_value = "orgplane")]
    pub namespace: String,
}

/// Arguments of `certs init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Data folder; certificates go to its `certs/` folder, where `serve`
    /// reads them.
    #[arg(long, env = "ORGPLANE_DATA_DIR", default_value = "./.orgplane")]
    pub data_dir: PathBuf,
    /// Folder of the CA's certificate and private key (`<data-dir>/ca` when
    /// unset). Keep it where no service runs: only `certs init` needs it.
    #[arg(long, env = "ORGPLANE_CA_DIR")]
    pub ca_dir: Option<PathBuf>,
    /// Extra DNS name or IP address for every certificate (repeatable), e.g.
    /// the Kubernetes service names.
    #[arg(long = "san", env = "ORGPLANE_CERT_SANS", value_delimiter = ',')]
    pub sans: Vec<String>,
}

pub fn run(cmd: CertsCommand) -> anyhow::Result<()> {
    match cmd {
        CertsCommand::Kubernetes(args) => {
            print!(
                "{}",
                secrets(&CertDir::new(args.data_dir.join("certs")), &args.namespace)?
            );
            Ok(())
        }
        CertsCommand::Init(args) => {
            let path = args.data_dir.join("certs");
            let ca = CaDir::new(args.ca_dir.unwrap_or_else(|| args.data_dir.join("ca")));
            let issued = CertDir::new(&path).init(&ca, IDENTITIES, &args.sans)?;
            if issued.is_empty() {
                println!(
                    "certificates in {} are complete and not near expiry; nothing issued",
                    path.display()
                );
            } else {
                println!("issued {} in {}", issued.join(", "), path.display());
            }
            Ok(())
        }
    }
}

/// The Secret manifests of every service's files in `certs`.
fn secrets(certs: &CertDir, namespace: &str) -> anyhow::Result<String> {
    use base64::Engine as _;

    if !namespace
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || namespace.is_empty()
    {
        anyhow::bail!("invalid namespace {namespace:?}");
    }
    let mut out = String::new();
    for service in IDENTITIES {
        let dir = certs.service_dir(service);
        let mut data = String::new();
        for file in ["tls.crt", "tls.key", "ca.crt"] {
            let path = dir.join(file);
            let bytes = std::fs::read(&path).map_err(|err| {
                anyhow::anyhow!(
                    "reading {} (run `orgplane certs init` first): {err}",
                    path.display()
                )
            })?;
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            data.push_str(&format!("  {file}: {encoded}\n"));
        }
        out.push_str(&format!(
            "---\n\
             # The certificate of {service}, made by `orgplane certs init`.\n\
             apiVersion: v1\n\
             kind: Secret\n\
             metadata:\n  \
               name: orgplane-{service}-tls\n  \
               namespace: {namespace}\n  \
               labels:\n    \
                 app.kubernetes.io/name: {service}\n    \
                 app.kubernetes.io/part-of: orgplane\n\
             type: kubernetes.io/tls\n\
             data:\n{data}"
        ));
    }
    Ok(out)
}
