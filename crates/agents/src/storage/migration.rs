//! The agents service's migrations, applied in order at start-up. Tables
//! and columns are named as strings so that migrations stay as written.

use sea_orm_migration::{prelude::*, schema::*};

/// The agents service's migrator.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Admission),
            Box::new(M0002Connections),
            Box::new(M0003AgentProfiles),
            Box::new(M0004QueueProfiles),
            Box::new(M0005AgentStatuses),
            Box::new(M0006RunService),
            Box::new(M0007ActivityOutbox),
            Box::new(M0008ExpiryIndexes),
            // Answers to idempotent creations (AIP-155 `request_id`).
            Box::new(orgplane_storage::idempotency::CreateTable(
                "m0009_idempotency_keys",
            )),
            Box::new(M0010QueuesByCreation),
            // Which process holds a request id (freed when it dies).
            Box::new(orgplane_storage::idempotency::add_holder(
                "m0011_idempotency_holders",
            )),
            Box::new(M0012LeaseIndexesOfLeasedRuns),
        ]
    }
}

struct M0001Admission;

impl MigrationName for M0001Admission {
    fn name(&self) -> &str {
        "m0001_admission"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0001Admission {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("agents")
                    .col(string("uuid").primary_key())
                    .col(string("organization_uuid"))
                    .col(string("name"))
                    .col(big_integer("create_time"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("queues")
                    .col(string("uuid").primary_key())
                    .col(string("organization_uuid"))
                    .col(string("agent_uuid"))
                    .col(string("name"))
                    .col(integer("priority"))
                    .col(integer("concurrency"))
                    .col(string("strategy"))
                    .col(big_integer("version"))
                    .col(big_integer("create_time"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("queues", "agent_uuid")
                            .to("agents", "uuid")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("runs")
                    .col(string("uuid").primary_key())
                    .col(string("organization_uuid"))
                    .col(string("project"))
                    .col(string("queue_uuid"))
                    .col(string("status"))
                    .col(string("name"))
                    .col(text("spec"))
                    .col(integer("attempts"))
                    .col(string("submitter"))
                    .col(string_null("lease_id"))
                    .col(string_null("lease_agent_uuid"))
                    .col(big_integer_null("lease_expire_time"))
                    .col(text("message"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .to_owned(),
            )
            .await?;
        orgplane_storage::db::create_indexes(
            manager,
            &[
                (
                    "agents",
                    "agents_org_name",
                    &["organization_uuid", "name"][..],
                    true,
                ),
                (
                    "queues",
                    "queues_agent_name",
                    &["agent_uuid", "name"][..],
                    true,
                ),
                (
                    "runs",
                    "runs_queue_status",
                    &["queue_uuid", "status", "uuid"][..],
                    false,
                ),
                (
                    "runs",
                    "runs_queue_status_project",
                    &["queue_uuid", "status", "project", "uuid"][..],
                    false,
                ),
                (
                    "runs",
                    "runs_lease_agent",
                    &["lease_agent_uuid", "status"][..],
                    false,
                ),
            ],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["runs", "queues", "agents"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Connections, and the follower of deleted organizations.
struct M0002Connections;

impl MigrationName for M0002Connections {
    fn name(&self) -> &str {
        "m0002_connections"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0002Connections {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("connections")
                    .col(string("uuid").primary_key())
                    .col(string("organization_uuid"))
                    .col(string("name"))
                    .col(text("description"))
                    .col(text("tags"))
                    .col(string("kind"))
                    .col(text("schema"))
                    .col(string("secret"))
                    .col(string("config_map"))
                    .col(big_integer("version"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(orgplane_storage::deletions::create_table())
            .await?;
        orgplane_storage::db::create_indexes(
            manager,
            &[
                (
                    "connections",
                    "connections_org_name",
                    &["organization_uuid", "name"][..],
                    true,
                ),
                (
                    "connections",
                    "connections_org_created",
                    &["organization_uuid", "create_time", "uuid"][..],
                    false,
                ),
            ],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["sync_cursors", "connections"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// What an agent is (description, tags, where it runs, its settings) and
/// how it last reported; the etag.
struct M0003AgentProfiles;

impl MigrationName for M0003AgentProfiles {
    fn name(&self) -> &str {
        "m0003_agent_profiles"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0003AgentProfiles {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            text("description").default("").to_owned(),
            text("tags").default("").to_owned(),
            string("namespace").default("").to_owned(),
            string("cluster").default("").to_owned(),
            string("agent_version").default("").to_owned(),
            integer("heartbeat_timeout_seconds").default(60).to_owned(),
            text("settings").default("{}").to_owned(),
            big_integer_null("heartbeat_time"),
            big_integer("version").default(1).to_owned(),
            big_integer("update_time").default(0).to_owned(),
        ];
        for column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table("agents")
                        .add_column(column.clone())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            "description",
            "tags",
            "namespace",
            "cluster",
            "agent_version",
            "heartbeat_timeout_seconds",
            "settings",
            "heartbeat_time",
            "version",
            "update_time",
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("agents")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// What a queue is for, the resource its quota counts, and when it changed.
struct M0004QueueProfiles;

impl MigrationName for M0004QueueProfiles {
    fn name(&self) -> &str {
        "m0004_queue_profiles"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0004QueueProfiles {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            text("description").default("").to_owned(),
            string("resource").default("").to_owned(),
            double("quota").default(0.0).to_owned(),
            big_integer("update_time").default(0).to_owned(),
        ];
        for column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table("queues")
                        .add_column(column.clone())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["description", "resource", "quota", "update_time"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("queues")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// The statuses agents report (their heartbeats), and the last one on the
/// agent.
struct M0005AgentStatuses;

impl MigrationName for M0005AgentStatuses {
    fn name(&self) -> &str {
        "m0005_agent_statuses"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0005AgentStatuses {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("agent_statuses")
                    .col(string("uuid").primary_key())
                    .col(string("agent_uuid"))
                    .col(string("type"))
                    .col(string("reason"))
                    .col(text("message"))
                    .col(string("hostname"))
                    .col(string("agent_version"))
                    .col(big_integer("create_time"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("agent_statuses", "agent_uuid")
                            .to("agents", "uuid")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        orgplane_storage::db::create_indexes(
            manager,
            &[(
                "agent_statuses",
                "agent_statuses_agent",
                &["agent_uuid", "uuid"][..],
                false,
            )],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("agent_statuses").to_owned())
            .await?;
        Ok(())
    }
}

/// What the run service needs: each run's demand of its queue's resource
/// (for the quota), and indexes for listing runs newest first.
struct M0006RunService;

impl MigrationName for M0006RunService {
    fn name(&self) -> &str {
        "m0006_run_service"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0006RunService {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("runs")
                    .add_column(double("demand").default(0.0).to_owned())
                    .to_owned(),
            )
            .await?;
        orgplane_storage::db::create_indexes(
            manager,
            &[
                (
                    "runs",
                    "runs_organization",
                    &["organization_uuid", "uuid"][..],
                    false,
                ),
                (
                    "runs",
                    "runs_organization_project",
                    &["organization_uuid", "project", "uuid"][..],
                    false,
                ),
            ],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in ["runs_organization", "runs_organization_project"] {
            manager
                .drop_index(Index::drop().name(index).table("runs").to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("runs")
                    .drop_column("demand")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

/// Activities recorded with each change, until shipped to the store.
struct M0007ActivityOutbox;

impl MigrationName for M0007ActivityOutbox {
    fn name(&self) -> &str {
        "m0007_activity_outbox"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0007ActivityOutbox {
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

/// The background task finds lapsed leases by their expiry, and old agent
/// statuses by their age.
struct M0008ExpiryIndexes;

impl MigrationName for M0008ExpiryIndexes {
    fn name(&self) -> &str {
        "m0008_expiry_indexes"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0008ExpiryIndexes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        orgplane_storage::db::create_indexes(
            manager,
            &[
                (
                    "runs",
                    "runs_lease_expire_time",
                    &["lease_expire_time"][..],
                    false,
                ),
                (
                    "agent_statuses",
                    "agent_statuses_create_time",
                    &["create_time"][..],
                    false,
                ),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, index) in [
            ("runs", "runs_lease_expire_time"),
            ("agent_statuses", "agent_statuses_create_time"),
        ] {
            manager
                .drop_index(Index::drop().name(index).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Finds an organization's first queue (its default while none is set).
struct M0010QueuesByCreation;

impl MigrationName for M0010QueuesByCreation {
    fn name(&self) -> &str {
        "m0010_queues_by_creation"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0010QueuesByCreation {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        orgplane_storage::db::create_indexes(
            manager,
            &[(
                "queues",
                "queues_org_created",
                &["organization_uuid", "create_time", "uuid"][..],
                false,
            )],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("queues_org_created")
                    .table("queues")
                    .to_owned(),
            )
            .await
    }
}

/// The lease indexes hold only runs that have a lease: a queued or finished
/// run's `NULL`s were entries written with every change of the run and
/// never read, since every query of these indexes compares the column
/// (which implies `IS NOT NULL` on both databases, so the partial index
/// serves it). A run's life (queued, leased, done) writes 17 index entries
/// instead of 21 on PostgreSQL, where a status change rewrites them all.
struct M0012LeaseIndexesOfLeasedRuns;

/// The lease indexes: name, full name in M0001/M0008, columns.
const LEASE_INDEXES: [(&str, &str, &[&str]); 2] = [
    (
        "runs_leased_agent",
        "runs_lease_agent",
        &["lease_agent_uuid", "status"],
    ),
    (
        "runs_leased_expire_time",
        "runs_lease_expire_time",
        &["lease_expire_time"],
    ),
];

impl MigrationName for M0012LeaseIndexesOfLeasedRuns {
    fn name(&self) -> &str {
        "m0012_lease_indexes_of_leased_runs"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0012LeaseIndexesOfLeasedRuns {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (partial, full, columns) in LEASE_INDEXES {
            manager
                .drop_index(Index::drop().name(full).table("runs").to_owned())
                .await?;
            let mut index = Index::create();
            index
                .name(partial)
                .table("runs")
                .and_where(Expr::col(columns[0]).is_not_null());
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (partial, full, columns) in LEASE_INDEXES {
            manager
                .drop_index(Index::drop().name(partial).table("runs").to_owned())
                .await?;
            orgplane_storage::db::create_indexes(manager, &[("runs", full, columns, false)])
                .await?;
        }
        Ok(())
    }
}
