//! `orgplane`: the organization control plane of an ML platform.

mod commands;

use clap::Parser;

/// mimalloc rather than glibc's malloc, which took about a fifth of the
/// CPU of a read: reads −29 % CPU, lists −16 %, run admission −20 %, for
/// about 14 MiB more at the peak (`BENCHMARKS.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
