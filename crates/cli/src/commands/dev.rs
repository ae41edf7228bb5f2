//! `orgplane dev`: the embedded default.

use std::{net::SocketAddr, path::PathBuf, time::Instant};

use clap::Args;
use orgplane::{
    Stack, StackConfig,
    admin::{DEV_ADMIN_EMAIL, bootstrap_admin},
};
use orgplane_identity::IdentityConfig;
use orgplane_platform::shutdown;

use super::{
    migrate::report_bootstrap,
    serve::{AgentsArgs, GatewayArgs},
};

/// Arguments of `dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Folder for certificates and SQLite files; kept between starts.
    #[arg(long, env = "ORGPLANE_DATA_DIR", default_value = "./.orgplane")]
    pub data_dir: PathBuf,
    /// The gateway's address (h2c, plaintext: keep it on loopback).
    #[arg(long, env = "ORGPLANE_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// PostgreSQL URL; every service then uses its own schema of it.
    #[arg(long, env = "ORGPLANE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Prefix of the PostgreSQL schema names.
    #[arg(long, env = "ORGPLANE_SCHEMA_PREFIX", default_value = "")]
    pub schema_prefix: String,
    /// The admin's password on first start; generated and printed when unset.
    #[arg(long, env = "ORGPLANE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Also fetch identity providers over plain HTTP and on private or
    /// loopback addresses (a local provider); see `serve --help`.
    #[arg(long, env = "ORGPLANE_ALLOW_INSECURE_ISSUERS")]
    pub allow_insecure_issuers: bool,
    /// The admin's email address on first start.
    #[arg(long, env = "ORGPLANE_ADMIN_EMAIL", default_value = DEV_ADMIN_EMAIL)]
    pub admin_email: String,
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[command(flatten)]
    pub agents: AgentsArgs,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut stack = Stack::start(StackConfig {
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        schema_prefix: args.schema_prefix.clone(),
        gateway_listen: args.listen,
        identity: IdentityConfig {
            allow_insecure_issuers: args.allow_insecure_issuers,
            ..IdentityConfig::default()
        },
        gateway: args.gateway.config(),
        max_run_attempts: args.agents.max_run_attempts,
    })
    .await?;
    report_bootstrap(
        bootstrap_admin(&stack.identity, &args.admin_email, args.admin_password).await?,
    );
    let addr = stack.gateway_addr;
    println!(
        "orgplane dev ready in {} ms: gateway on {addr} (h2c), data in {}. Try: grpcurl -plaintext {addr} list",
        started.elapsed().as_millis(),
        args.data_dir.display()
    );
    tokio::select! {
        _ = shutdown::signal() => {}
        result = stack.wait_for_failure() => result?,
    }
    stack.stop().await
}
