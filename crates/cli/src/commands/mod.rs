//! The subcommands. Every flag also reads an `ORGPLANE_*` variable.

mod args;
mod certs;
mod dev;
mod migrate;
mod serve;

use clap::{Parser, Subcommand};
use orgplane_platform::shutdown;

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
    #[command(subcommand)]
    Serve(serve::ServeCommand),
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
            Command::Serve(service) => service.name(),
            Command::Dev(_) => "orgplane-dev",
            Command::Certs(_) | Command::Migrate(_) | Command::Admin(_) => "orgplane-cli",
        }
    }

    /// Runs the subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Serve(args) => {
                shutdown::install();
                serve::run(args).await
            }
            Command::Dev(args) => {
                shutdown::install();
                dev::run(args).await
            }
            Command::Certs(cmd) => certs::run(cmd),
            Command::Migrate(args) => migrate::run(args).await,
            Command::Admin(cmd) => migrate::run_admin(cmd).await,
        }
    }
}
