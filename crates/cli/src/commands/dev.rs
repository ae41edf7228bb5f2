//! `orgplane dev`: the embedded default.

use std::{net::SocketAddr, time::Instant};

use clap::Args;
use orgplane::{
    Stack, StackConfig,
    admin::{AdminSeed, DEV_ADMIN_EMAIL},
};
use orgplane_platform::shutdown;

use super::{
    args::{AgentsArgs, DeadlineArgs, GatewayArgs, IdentityArgs, OpsArgs, StateArgs},
    migrate::report_bootstrap,
};

/// Arguments of `dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// The gateway's address (h2c, plaintext: keep it on loopback).
    #[arg(long, env = "ORGPLANE_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// The admin's password on first start; generated and printed when unset.
    #[arg(long, env = "ORGPLANE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// The admin's email address on first start.
    #[arg(long, env = "ORGPLANE_ADMIN_EMAIL", default_value = DEV_ADMIN_EMAIL)]
    pub admin_email: String,
    #[command(flatten)]
    pub deadline: DeadlineArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub agents: AgentsArgs,
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[command(flatten)]
    pub ops: OpsArgs,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let state = args.state.state();
    let mut stack = Stack::start(StackConfig {
        data_dir: state.data_dir.clone(),
        database_url: state.database_url,
        schema_prefix: state.schema_prefix,
        database_connections: state.database_connections,
        database_read_connections: state.database_read_connections,
        gateway_listen: args.listen,
        metrics_listen: args.ops.metrics_listen,
        identity: args.identity.config(),
        gateway: args.gateway.config(&args.deadline),
        max_run_attempts: args.agents.max_run_attempts,
        request_timeout: args.deadline.deadline(),
        admin: Some(AdminSeed {
            email: args.admin_email,
            password: args.admin_password,
        }),
    })
    .await?;
    if let Some(bootstrap) = stack.bootstrap.take() {
        report_bootstrap(bootstrap);
    }
    let addr = stack.gateway_addr;
    println!(
        "orgplane dev ready in {} ms: gateway on {addr} (h2c), data in {}. Try: grpcurl -plaintext {addr} list",
        started.elapsed().as_millis(),
        state.data_dir.display()
    );
    tokio::select! {
        _ = shutdown::signal() => {}
        result = stack.wait_for_failure() => result?,
    }
    stack.stop().await
}
