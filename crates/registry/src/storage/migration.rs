//! The registry's migrations, applied in order at start-up. Tables and
//! columns are named as strings so that migrations stay as written.

use sea_orm_migration::{prelude::*, schema::*};

/// The registry's migrator.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Initial),
            Box::new(M0002ActivityOutbox),
            // Answers to idempotent creations (AIP-155 `request_id`).
            Box::new(orgplane_storage::idempotency::CreateTable(
                "m0003_idempotency_keys",
            )),
            Box::new(M0004Restrictions),
            // Which process holds a request id (freed when it dies).
            Box::new(orgplane_storage::idempotency::add_holder(
                "m0005_idempotency_holders",
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
                    .table("entries")
                    .col(string("uuid").primary_key())
                    .col(string("organization_uuid"))
                    .col(string("kind"))
                    .col(string("name"))
                    .col(text("description"))
                    .col(text("tags"))
                    .col(text("readme"))
                    .col(string("visibility"))
                    .col(big_integer("version"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("versions")
                    .col(string("uuid").primary_key())
                    .col(string("entry_uuid"))
                    .col(string("organization_uuid"))
                    .col(string("name"))
                    .col(text("description"))
                    .col(text("tags"))
                    .col(string("project"))
                    .col(string("run"))
                    .col(text("artifacts"))
                    .col(text("metadata"))
                    .col(string("connection"))
                    .col(text("content"))
                    .col(string("stage"))
                    .col(string("stage_reason"))
                    .col(text("stage_message"))
                    .col(string("stage_actor"))
                    .col(big_integer("stage_time"))
                    .col(big_integer("version"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("versions", "entry_uuid")
                            .to("entries", "uuid")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("stage_history")
                    .col(string("uuid").primary_key())
                    .col(string("version_uuid"))
                    .col(string("stage"))
                    .col(string("reason"))
                    .col(text("message"))
                    .col(string("actor"))
                    .col(big_integer("create_time"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("stage_history", "version_uuid")
                            .to("versions", "uuid")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("registry_settings")
                    .col(string("organization_uuid").primary_key())
                    .col(integer("max_production_model_versions"))
                    .col(integer("max_production_component_versions"))
                    .col(big_integer("version"))
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
                    "entries",
                    "entries_org_kind_name",
                    &["organization_uuid", "kind", "name"][..],
                    true,
                ),
                (
                    "entries",
                    "entries_org_kind_created",
                    &["organization_uuid", "kind", "create_time", "uuid"][..],
                    false,
                ),
                (
                    "entries",
                    "entries_org_kind_updated",
                    &["organization_uuid", "kind", "update_time", "uuid"][..],
                    false,
                ),
                (
                    "versions",
                    "versions_entry_name",
                    &["entry_uuid", "name"][..],
                    true,
                ),
                (
                    "versions",
                    "versions_entry_stage",
                    &["entry_uuid", "stage"][..],
                    false,
                ),
                (
                    "versions",
                    "versions_org",
                    &["organization_uuid"][..],
                    false,
                ),
                (
                    "stage_history",
                    "stage_history_version",
                    &["version_uuid", "uuid"][..],
                    false,
                ),
            ],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "sync_cursors",
            "registry_settings",
            "stage_history",
            "versions",
            "entries",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Activities recorded with each change, until shipped to the store.
struct M0002ActivityOutbox;

impl MigrationName for M0002ActivityOutbox {
    fn name(&self) -> &str {
        "m0002_activity_outbox"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0002ActivityOutbox {
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

/// Restrictions of the model registry, the component hub and single
/// entries (issue 21): JSON text, null while unrestricted; `restricted`
/// indexed, for the lists that leave restricted entries out.
struct M0004Restrictions;

impl MigrationName for M0004Restrictions {
    fn name(&self) -> &str {
        "m0004_restrictions"
    }
}

/// The columns added, one `ALTER TABLE` each (SQLite adds one at a time).
fn restriction_columns() -> [(&'static str, ColumnDef); 4] {
    [
        ("entries", boolean("restricted").default(false).to_owned()),
        ("entries", text_null("restriction")),
        ("registry_settings", text_null("model_registry_restriction")),
        ("registry_settings", text_null("component_hub_restriction")),
    ]
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0004Restrictions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, mut column) in restriction_columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        orgplane_storage::db::create_indexes(
            manager,
            &[(
                "entries",
                "entries_org_kind_restricted",
                &["organization_uuid", "kind", "restricted"][..],
                false,
            )],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("entries_org_kind_restricted")
                    .table("entries")
                    .to_owned(),
            )
            .await?;
        for (table, column) in restriction_columns() {
            let name = column.get_column_name();
            manager
                .alter_table(Table::alter().table(table).drop_column(name).to_owned())
                .await?;
        }
        Ok(())
    }
}
