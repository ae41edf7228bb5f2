//! `orgplane certs`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use orgplane_platform::pki::{CertDir, IDENTITIES};

/// Certificate subcommands.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create the internal CA and one certificate per service (kept when they
    /// exist). Each certificate names its service as the SPIFFE id
    /// `spiffe://orgplane/<service>` and is valid for `<service>`,
    /// `localhost`, 127.0.0.1 and ::1, plus every --san.
    Init(InitArgs),
}

/// Arguments of `certs init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Data folder; certificates go to its `certs/` folder, where `serve`
    /// reads them.
    #[arg(long, env = "ORGPLANE_DATA_DIR", default_value = "./.orgplane")]
    pub data_dir: PathBuf,
    /// Extra DNS name or IP address for every certificate (repeatable), e.g.
    /// the Kubernetes service names.
    #[arg(long = "san", env = "ORGPLANE_CERT_SANS", value_delimiter = ',')]
    pub sans: Vec<String>,
}

pub fn run(cmd: CertsCommand) -> anyhow::Result<()> {
    match cmd {
        CertsCommand::Init(args) => {
            let path = args.data_dir.join("certs");
            let issued = CertDir::new(&path).init(IDENTITIES, &args.sans)?;
            if issued.is_empty() {
                println!(
                    "certificates in {} are complete; nothing issued",
                    path.display()
                );
            } else {
                println!("issued {} in {}", issued.join(", "), path.display());
            }
            Ok(())
        }
    }
}
