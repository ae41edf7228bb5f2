//! The subcommands. Every flag also reads an `ORGPLANE_*` variable.

mod certs;
mod dev;
mod migrate;
mod serve;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use orgplane_platform::db::DbTarget;

/// orgplane: organizations, members, teams, projects, registries and agents
/// of an ML platform, as gRPC services behind one gateway.
#[derive(Debug, Parser)]
#[command(name = "orgplane", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one service (one process per service in production).
    Serve(serve::ServeArgs),
    /// Run the whole control plane in one process: certificates, migrations,
    /// the admin user, every service and the gateway over loopback mTLS.
    Dev(dev::DevArgs),
    /// Manage the internal certificate authority.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Bring every service's tables up to date, then exit.
    Migrate(migrate::MigrateArgs),
    /// Instance administration.
    #[command(subcommand)]
    Admin(migrate::AdminCommand),
}

impl Command {
    /// The name this process reports in traces.
    pub fn process_name(&self) -> &'static str {
        match self {
            Command::Serve(args) => args.service.name(),
            Command::Dev(_) => "orgplane-dev",
            Command::Certs(_) | Command::Migrate(_) | Command::Admin(_) => "orgplane-cli",
        }
    }

    /// Runs the subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Serve(args) => serve::run(args).await,
            Command::Dev(args) => dev::run(args).await,
            Command::Certs(cmd) => certs::run(cmd),
            Command::Migrate(args) => migrate::run(args).await,
            Command::Admin(cmd) => migrate::run_admin(cmd).await,
        }
    }
}

/// Where state lives: shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// Folder for certificates and, without --database-url, SQLite files.
    #[arg(long, env = "ORGPLANE_DATA_DIR", default_value = "./.orgplane")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (postgres://user@host:port/db). Every service then
    /// keeps its tables in its own schema of that database. Unset: SQLite
    /// files in the data folder.
    #[arg(long, env = "ORGPLANE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Prefix of the PostgreSQL schema names (e.g. `staging_` gives
    /// `staging_identity`).
    #[arg(long, env = "ORGPLANE_SCHEMA_PREFIX", default_value = "")]
    pub schema_prefix: String,
}

impl StateArgs {
    /// Where `backend` keeps its tables.
    pub fn target(&self, backend: orgplane_proto::Backend) -> anyhow::Result<DbTarget> {
        DbTarget::for_service(
            self.database_url.as_deref(),
            &self.data_dir,
            &self.schema_prefix,
            backend.name(),
        )
    }

    /// The certificate folder.
    pub fn certs_dir(&self) -> PathBuf {
        self.data_dir.join("certs")
    }
}
