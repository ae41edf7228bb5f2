//! Identity's migrations, applied in order at start-up (`orgplane migrate`
//! applies them without starting servers). Migrations name tables and
//! columns as strings so that they stay as written when entities change.

use sea_orm_migration::{prelude::*, schema::*};

/// Identity's migrator.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Initial),
            Box::new(M0002ServiceAccounts),
            Box::new(M0003AgentTokens),
            Box::new(M0004ActivityOutbox),
            Box::new(M0005LoginFailures),
            // Messages carrying secrets are purged when the secret dies.
            Box::new(orgplane_storage::outbox::add_expiry("m0006_outbox_expiry")),
            // Answers to idempotent creations (AIP-155 `request_id`).
            Box::new(orgplane_storage::idempotency::CreateTable(
                "m0007_idempotency_keys",
            )),
            // Which process holds a request id (freed when it dies).
            Box::new(orgplane_storage::idempotency::add_holder(
                "m0008_idempotency_holders",
            )),
        ]
    }
}

struct M0001Initial;

impl MigrationName for M0001Initial {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0001Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(string("uuid").primary_key())
                    .col(string_uniq("username"))
                    .col(string_uniq("email"))
                    .col(string("display_name"))
                    .col(string_null("password_hash"))
                    .col(boolean("instance_admin"))
                    .col(boolean("email_verified"))
                    .col(integer("failed_logins"))
                    .col(big_integer_null("locked_until"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("users_create_time")
                    .table("users")
                    .col("create_time")
                    .col("uuid")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("tokens")
                    .col(string("uuid").primary_key())
                    .col(string("user_uuid"))
                    .col(string("kind"))
                    .col(string_null("name"))
                    .col(string_uniq("secret_hash"))
                    .col(string("scopes"))
                    .col(big_integer("expire_time"))
                    .col(big_integer_null("revoke_time"))
                    .col(big_integer_null("last_use_time"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("tokens", "user_uuid")
                            .to("users", "uuid")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tokens_user_name")
                    .table("tokens")
                    .col("user_uuid")
                    .col("name")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tokens_user_kind_uuid")
                    .table("tokens")
                    .col("user_uuid")
                    .col("kind")
                    .col("uuid")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("password_resets")
                    .col(string("uuid").primary_key())
                    .col(string("user_uuid"))
                    .col(string_uniq("token_hash"))
                    .col(big_integer("expire_time"))
                    .col(big_integer_null("use_time"))
                    .col(big_integer("create_time"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("password_resets", "user_uuid")
                            .to("users", "uuid")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("delivery_outbox")
                    .col(string("uuid").primary_key())
                    .col(string("kind"))
                    .col(string("recipient"))
                    .col(text("payload"))
                    .col(big_integer("create_time"))
                    .col(big_integer_null("deliver_time"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["delivery_outbox", "password_resets", "tokens", "users"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Service accounts, their tokens, the cursor of the purge of deleted
/// organizations, the external identities users sign in with, and how each
/// session was opened.
struct M0002ServiceAccounts;

impl MigrationName for M0002ServiceAccounts {
    fn name(&self) -> &str {
        "m0002_service_accounts"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0002ServiceAccounts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("service_accounts")
                    .col(string("uuid").primary_key())
                    .col(string("organization_uuid"))
                    .col(string("organization"))
                    .col(string("name"))
                    .col(text("description"))
                    .col(string("role"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("service_account_tokens")
                    .col(string("uuid").primary_key())
                    .col(string("service_account_uuid"))
                    .col(string("name"))
                    .col(string_uniq("secret_hash"))
                    .col(string("scopes"))
                    .col(big_integer("expire_time"))
                    .col(big_integer_null("last_use_time"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("service_account_tokens", "service_account_uuid")
                            .to("service_accounts", "uuid")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(orgplane_storage::deletions::create_table())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("tokens")
                    .add_column(string("auth_method").default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("external_identities")
                    .col(string("uuid").primary_key())
                    .col(string("issuer"))
                    .col(string("subject"))
                    .col(string("user_uuid"))
                    .col(big_integer("create_time"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("external_identities", "user_uuid")
                            .to("users", "uuid")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        orgplane_storage::db::create_indexes(
            manager,
            &[
                (
                    "external_identities",
                    "external_identities_issuer_subject",
                    &["issuer", "subject"][..],
                    true,
                ),
                (
                    "service_accounts",
                    "service_accounts_org_name",
                    &["organization_uuid", "name"][..],
                    true,
                ),
                (
                    "service_account_tokens",
                    "service_account_tokens_account_name",
                    &["service_account_uuid", "name"][..],
                    true,
                ),
            ],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "external_identities",
            "sync_cursors",
            "service_account_tokens",
            "service_accounts",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("tokens")
                    .drop_column("auth_method")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

/// The tokens of agents.
struct M0003AgentTokens;

impl MigrationName for M0003AgentTokens {
    fn name(&self) -> &str {
        "m0003_agent_tokens"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0003AgentTokens {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("agent_tokens")
                    .col(string("uuid").primary_key())
                    .col(string("agent_uuid"))
                    .col(string("agent_name"))
                    .col(string("organization"))
                    .col(string("organization_uuid"))
                    .col(string_uniq("secret_hash"))
                    .col(big_integer("create_time"))
                    .to_owned(),
            )
            .await?;
        orgplane_storage::db::create_indexes(
            manager,
            &[(
                "agent_tokens",
                "agent_tokens_agent",
                &["agent_uuid"][..],
                false,
            )],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("agent_tokens").to_owned())
            .await?;
        Ok(())
    }
}

/// Activities recorded with each change, until shipped to the store.
struct M0004ActivityOutbox;

impl MigrationName for M0004ActivityOutbox {
    fn name(&self) -> &str {
        "m0004_activity_outbox"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0004ActivityOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(orgplane_storage::activity::create_outbox_table())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("activity_outbox").to_owned())
            .await
    }
}

/// Failed logins per (account, client address): the lockout of one address
/// does not lock the account's holder out from elsewhere.
struct M0005LoginFailures;

impl MigrationName for M0005LoginFailures {
    fn name(&self) -> &str {
        "m0005_login_failures"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0005LoginFailures {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("login_failures")
                    .col(string("uuid").primary_key())
                    .col(string("user_uuid"))
                    .col(string("address"))
                    .col(integer("failures"))
                    .col(big_integer_null("locked_until"))
                    .col(big_integer("update_time"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("login_failures", "user_uuid")
                            .to("users", "uuid")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        orgplane_storage::db::create_indexes(
            manager,
            &[
                (
                    "login_failures",
                    "login_failures_user_address",
                    &["user_uuid", "address"][..],
                    true,
                ),
                (
                    "login_failures",
                    "login_failures_update_time",
                    &["update_time"][..],
                    false,
                ),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("login_failures").to_owned())
            .await
    }
}
