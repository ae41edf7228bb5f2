//! `orgplane migrate` and `orgplane admin`.

use clap::{Args, Subcommand};
use orgplane::admin::{ADMIN_USERNAME, Bootstrap, bootstrap_admin};
use orgplane_identity::{Identity, IdentityConfig, Migrator as IdentityMigrator};
use orgplane_proto::Backend;
use orgplane_storage::db::connect_and_migrate;

use super::args::StateArgs;

/// Arguments of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub state: StateArgs,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    connect_identity(&args.state).await?;
    println!("identity: migrated");
    let target = args.state.target(Backend::Organizations)?;
    connect_and_migrate::<orgplane_organizations::Migrator>(&target).await?;
    println!("organizations: migrated");
    let target = args.state.target(Backend::Registry)?;
    connect_and_migrate::<orgplane_registry::Migrator>(&target).await?;
    println!("registry: migrated");
    connect_and_migrate::<orgplane_agents::Migrator>(&args.state.target(Backend::Agents)?).await?;
    println!("agents: migrated");
    Ok(())
}

async fn connect_identity(state: &StateArgs) -> anyhow::Result<Identity> {
    let target = state.target(Backend::Identity)?;
    let db = connect_and_migrate::<IdentityMigrator>(&target).await?;
    Ok(Identity::new(db, IdentityConfig::default()))
}

/// Admin subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create the instance admin user `admin` unless it exists. The password
    /// comes from ORGPLANE_ADMIN_PASSWORD, else one is generated and printed
    /// once.
    Bootstrap(BootstrapArgs),
}

/// Arguments of `admin bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// The admin's password (8 to 128 characters).
    #[arg(long, env = "ORGPLANE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// The admin's email address: a mailbox the operator holds (password
    /// resets go there, and no one else may claim it). Required.
    #[arg(long, env = "ORGPLANE_ADMIN_EMAIL")]
    pub admin_email: String,
}

pub async fn run_admin(cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Bootstrap(args) => {
            let identity = connect_identity(&args.state).await?;
            report_bootstrap(
                bootstrap_admin(&identity, &args.admin_email, args.admin_password).await?,
            );
            Ok(())
        }
    }
}

/// Tells the operator what bootstrap did.
pub fn report_bootstrap(outcome: Bootstrap) {
    match outcome {
        Bootstrap::Existed => println!("admin user {ADMIN_USERNAME:?} exists; unchanged"),
        Bootstrap::Created {
            generated_password: Some(password),
        } => println!(
            "created admin user {ADMIN_USERNAME:?} with password {password} (shown once: save it)"
        ),
        Bootstrap::Created {
            generated_password: None,
        } => println!(
            "created admin user {ADMIN_USERNAME:?} with the password of ORGPLANE_ADMIN_PASSWORD"
        ),
    }
}
