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
