//! `orgplane`: the organization control plane of an ML platform.

mod commands;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = commands::Cli::parse();
    let _telemetry = match orgplane_transport::telemetry::init(cli.command.process_name()) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("orgplane: setting up telemetry: {err:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match cli.command.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "orgplane failed");
            eprintln!("orgplane: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
