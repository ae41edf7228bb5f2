//! Versions of models and components: created in stage `testing`, read,
//! listed, changed with an etag, transferred to another entry or project,
//! deleted.

use orgplane_platform::{
    Error,
    authz::Permission,
    principal::Principal,
    tags,
    time::now_micros,
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::{action, commit_with},
    etag::{check_etag, stale},
    page::{ListQuery, Page, text_keyed_page},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, PaginatorTrait,
    QueryFilter, Set, TransactionTrait, sea_query::Expr,
};

use super::{Kind, Registry, entries::version_activity, spec, stages};
use crate::storage::{entries, versions};

/// Most artifacts named by one version.
const MAX_ARTIFACTS: usize = 1000;
/// Largest metadata object, as JSON.
const MAX_METADATA: usize = 64 * 1024;

/// A version's fields as created or changed; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct VersionFields {
    /// What changed.
    pub description: Option<String>,
    /// Tags (slugs).
    pub tags: Option<Vec<String>>,
    /// Project slug it came from (empty for none).
    pub project: Option<String>,
    /// UUID of the run that produced it (empty for none).
    pub run: Option<String>,
    /// Artifact names.
    pub artifacts: Option<Vec<String>>,
    /// Free-form metadata, a JSON object (models).
    pub metadata: Option<serde_json::Value>,
    /// Connection holding the artifacts (models; empty for none).
    pub connection: Option<String>,
    /// The specification (components).
    pub content: Option<String>,
}

fn check_fields(v: &mut Violations, kind: Kind, f: &VersionFields) {
    if let Some(d) = &f.description {
        v.check("version.description", validate::text(d, 2000));
    }
    if let Some(t) = &f.tags {
        tags::check(v, "version.tags", t);
    }
    if let Some(p) = f.project.as_deref().filter(|p| !p.is_empty()) {
        v.check("version.project", validate::slug(p));
    }
    if let Some(run) = f.run.as_deref().filter(|r| !r.is_empty())
        && uuid::Uuid::parse_str(run).is_err()
    {
        v.add("version.run", "must be a run's UUID");
    }
    if let Some(artifacts) = &f.artifacts {
        if artifacts.len() > MAX_ARTIFACTS {
            v.add("version.artifacts", format!("at most {MAX_ARTIFACTS}"));
        }
        for a in artifacts {
            v.check("version.artifacts", validate::required(a, 500));
        }
    }
    if let Some(m) = &f.metadata {
        if !m.is_object() {
            v.add("version.metadata", "must be an object");
        } else if m.to_string().len() > MAX_METADATA {
            v.add("version.metadata", "must be at most 64 KiB as JSON");
        }
    }
    if let Some(c) = f.connection.as_deref().filter(|c| !c.is_empty()) {
        v.check("version.connection", validate::slug(c));
    }
    match (kind, &f.content) {
        (Kind::Component, Some(content)) => {
            if let Err(problem) = spec::validate(content) {
                v.add("version.content", problem);
            }
        }
        (Kind::Model, Some(content)) if !content.is_empty() => {
            v.add("version.content", "models have no content: use metadata");
        }
        _ => {}
    }
    if kind == Kind::Component
        && (f.metadata.is_some() || f.connection.as_deref().is_some_and(|c| !c.is_empty()))
    {
        v.add(
            "version.metadata",
            "components keep their specification in content",
        );
    }
}

/// The artifacts of a row.
pub fn artifacts_of(row: &versions::Model) -> Vec<String> {
    serde_json::from_str(&row.artifacts).unwrap_or_default()
}

/// The metadata of a row (an empty object when none).
pub fn metadata_of(row: &versions::Model) -> serde_json::Value {
    serde_json::from_str(&row.metadata).unwrap_or_else(|_| serde_json::json!({}))
}

/// What writing `fields` needs: naming a run promotes it to the registry
/// (`registry.manage`); the rest is `registry.write`.
fn version_permission(fields: &VersionFields) -> Permission {
    if fields.run.as_deref().is_some_and(|run| !run.is_empty()) {
        Permission::RegistryManage
    } else {
        Permission::RegistryWrite
    }
}

impl Registry {
    /// The version `name` of `entry`.
    pub(crate) async fn version(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        entry: &entries::Model,
        name: &str,
    ) -> Result<versions::Model, Error> {
        let mut v = Violations::new();
        v.check("version", validate::slug(name));
        v.finish()?;
        versions::Entity::find()
            .filter(versions::Column::EntryUuid.eq(entry.uuid.as_str()))
            .filter(versions::Column::Name.eq(name))
            .one(db)
            .await?
            .ok_or_else(|| Error::not_found("version", name))
    }

    /// Creates a version of an entry, in stage `testing`. Promoting a run
    /// (a version naming its `run`) needs `registry.manage`, admin and up
    /// as in Polyaxon; any other version `registry.write`.
    pub async fn create_version(
        &self,
        principal: &Principal,
        organization: &str,
        kind: Kind,
        entry_name: &str,
        name: &str,
        fields: VersionFields,
    ) -> Result<versions::Model, Error> {
        let (_, entry) = self
            .entry_with(
                principal,
                organization,
                kind,
                entry_name,
                version_permission(&fields),
            )
            .await?;
        let mut v = Violations::new();
        v.check("version.name", validate::slug(name));
        if kind == Kind::Component && fields.content.as_deref().unwrap_or("").is_empty() {
            v.add(
                "version.content",
                "a component version needs its specification",
            );
        } else {
            check_fields(&mut v, kind, &fields);
        }
        v.finish()?;
        let now = now_micros();
        let txn = self.db.begin().await?;
        let row = versions::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            entry_uuid: Set(entry.uuid.clone()),
            organization_uuid: Set(entry.organization_uuid.clone()),
            name: Set(name.to_owned()),
            description: Set(fields.description.unwrap_or_default()),
            tags: Set(tags::store(&fields.tags.unwrap_or_default())),
            project: Set(fields.project.unwrap_or_default()),
            run: Set(fields.run.unwrap_or_default()),
            artifacts: Set(serde_json::to_string(&fields.artifacts.unwrap_or_default())
                .map_err(anyhow::Error::from)?),
            metadata: Set(fields
                .metadata
                .unwrap_or_else(|| serde_json::json!({}))
                .to_string()),
            connection: Set(fields.connection.unwrap_or_default()),
            content: Set(fields.content.unwrap_or_default()),
            stage: Set(stages::TESTING.to_owned()),
            stage_reason: Set("Created".to_owned()),
            stage_message: Set(String::new()),
            stage_actor: Set(principal.name.clone()),
            stage_time: Set(now),
            version: Set(1),
            create_time: Set(now),
            update_time: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|err| Error::from_db(err, "version", name))?;
        stages::record(&txn, &row).await?;
        commit_with(
            txn,
            version_activity(&entry, &row, principal, action::CREATED),
        )
        .await?;
        Ok(row)
    }

    /// One version.
    pub async fn get_version(
        &self,
        principal: &Principal,
        organization: &str,
        kind: Kind,
        entry_name: &str,
        name: &str,
    ) -> Result<versions::Model, Error> {
        let (_, entry) = self
            .entry_with(
                principal,
                organization,
                kind,
                entry_name,
                Permission::RegistryRead,
            )
            .await?;
        self.version(&self.db, &entry, name).await
    }

    /// An entry's versions, filtered by `stage:`, `tag:` and `project:`.
    pub async fn list_versions(
        &self,
        principal: &Principal,
        organization: &str,
        kind: Kind,
        entry_name: &str,
        query: &ListQuery,
    ) -> Result<Page<versions::Model>, Error> {
        let (_, entry) = self
            .entry_with(
                principal,
                organization,
                kind,
                entry_name,
                Permission::RegistryRead,
            )
            .await?;
        let order = query.order(&["create_time", "name"])?;
        let terms = query.terms(&["stage", "tag", "project"])?;
        let page = query.page("")?;
        let mut condition =
            Condition::all().add(versions::Column::EntryUuid.eq(entry.uuid.as_str()));
        for (key, value) in &terms {
            condition = condition.add(match *key {
                "stage" => {
                    if !stages::STAGES.contains(value) {
                        return Err(Error::invalid(
                            "filter",
                            "stage is testing, staging, production or disabled",
                        ));
                    }
                    versions::Column::Stage.eq(*value)
                }
                "tag" => {
                    validate::slug(value)
                        .map_err(|e| Error::invalid("filter", format!("tag {e}")))?;
                    versions::Column::Tags.contains(tags::pattern(value))
                }
                _ => versions::Column::Project.eq(*value),
            });
        }
        // UUIDv7 orders by creation time.
        let (column, by_name) = match order.field {
            "name" => (versions::Column::Name, true),
            _ => (versions::Column::Uuid, false),
        };
        text_keyed_page(
            &self.db,
            &page,
            versions::Entity::find().filter(condition),
            column,
            order.descending,
            |r| {
                if by_name {
                    r.name.clone()
                } else {
                    r.uuid.clone()
                }
            },
        )
        .await
    }

    /// Changes a version's fields; with `target` it moves to that entry of
    /// the same kind (where its name must be free and, in production, the
    /// target's production limit holds).
    #[expect(
        clippy::too_many_arguments,
        reason = "the caller, the version addressed, its fields, a transfer target and the etag read"
    )]
    pub async fn update_version(
        &self,
        principal: &Principal,
        organization: &str,
        kind: Kind,
        entry_name: &str,
        name: &str,
        fields: VersionFields,
        target: Option<&str>,
        etag_seen: &str,
    ) -> Result<versions::Model, Error> {
        let (_, entry) = self
            .entry_with(
                principal,
                organization,
                kind,
                entry_name,
                version_permission(&fields),
            )
            .await?;
        let mut v = Violations::new();
        check_fields(&mut v, kind, &fields);
        if let Some(target) = target {
            v.check(&format!("target_{}", kind.field()), validate::slug(target));
        }
        v.finish()?;
        let target_entry = match target {
            Some(target) if target != entry.name => Some(
                self.entry_with(
                    principal,
                    organization,
                    kind,
                    target,
                    Permission::RegistryWrite,
                )
                .await?
                .1,
            ),
            _ => None,
        };
        let txn = self.db.begin().await?;
        let row = self.version(&txn, &entry, name).await?;
        check_etag(etag_seen, row.version, "version")?;
        if let Some(target) = &target_entry
            && row.stage == stages::PRODUCTION
        {
            lock_entry(&txn, target).await?;
            self.ensure_room_in_production(&txn, kind, target).await?;
        }
        let mut update = versions::Entity::update_many()
            .col_expr(versions::Column::Version, Expr::value(row.version + 1))
            .col_expr(versions::Column::UpdateTime, Expr::value(now_micros()));
        if let Some(d) = fields.description {
            update = update.col_expr(versions::Column::Description, Expr::value(d));
        }
        if let Some(t) = fields.tags {
            update = update.col_expr(versions::Column::Tags, Expr::value(tags::store(&t)));
        }
        if let Some(p) = fields.project {
            update = update.col_expr(versions::Column::Project, Expr::value(p));
        }
        if let Some(r) = fields.run {
            update = update.col_expr(versions::Column::Run, Expr::value(r));
        }
        if let Some(a) = fields.artifacts {
            let json = serde_json::to_string(&a).map_err(anyhow::Error::from)?;
            update = update.col_expr(versions::Column::Artifacts, Expr::value(json));
        }
        if let Some(m) = fields.metadata {
            update = update.col_expr(versions::Column::Metadata, Expr::value(m.to_string()));
        }
        if let Some(c) = fields.connection {
            update = update.col_expr(versions::Column::Connection, Expr::value(c));
        }
        if let Some(c) = fields.content {
            update = update.col_expr(versions::Column::Content, Expr::value(c));
        }
        if let Some(target) = &target_entry {
            update = update.col_expr(
                versions::Column::EntryUuid,
                Expr::value(target.uuid.clone()),
            );
        }
        let changed = update
            .filter(versions::Column::Uuid.eq(row.uuid.as_str()))
            .filter(versions::Column::Version.eq(row.version))
            .exec(&txn)
            .await
            .map_err(|err| Error::from_db(err, "version", name))?;
        if changed.rows_affected != 1 {
            return Err(stale("version"));
        }
        let updated = versions::Entity::find_by_id(row.uuid)
            .one(&txn)
            .await?
            .ok_or_else(|| Error::not_found("version", name))?;
        let mut activity = version_activity(&entry, &updated, principal, action::UPDATED);
        if let Some(target) = &target_entry {
            activity = activity.metadata(serde_json::json!({"moved_to": target.name}));
        }
        commit_with(txn, activity).await?;
        Ok(updated)
    }

    /// Deletes a version and its history.
    pub async fn delete_version(
        &self,
        principal: &Principal,
        organization: &str,
        kind: Kind,
        entry_name: &str,
        name: &str,
    ) -> Result<(), Error> {
        let (_, entry) = self
            .entry_with(
                principal,
                organization,
                kind,
                entry_name,
                Permission::RegistryManage,
            )
            .await?;
        let row = self.version(&self.db, &entry, name).await?;
        let txn = self.db.begin().await?;
        versions::Entity::delete_by_id(row.uuid.clone())
            .exec(&txn)
            .await?;
        commit_with(
            txn,
            version_activity(&entry, &row, principal, action::DELETED),
        )
        .await
    }

    /// Fails when `entry` has as many production versions as the
    /// organization allows. Call with the entry locked ([`lock_entry`]).
    pub(crate) async fn ensure_room_in_production(
        &self,
        txn: &DatabaseTransaction,
        kind: Kind,
        entry: &entries::Model,
    ) -> Result<(), Error> {
        let limit = self
            .settings_of(txn, &entry.organization_uuid)
            .await?
            .limit(kind);
        if limit == 0 {
            return Ok(());
        }
        let in_production = versions::Entity::find()
            .filter(versions::Column::EntryUuid.eq(entry.uuid.as_str()))
            .filter(versions::Column::Stage.eq(stages::PRODUCTION))
            .count(txn)
            .await?;
        if in_production >= limit as u64 {
            return Err(Error::precondition(
                "PRODUCTION_LIMIT",
                format!(
                    "the {} {} already has {in_production} version(s) in production (the limit is {limit}): move one out first",
                    kind.as_str(),
                    entry.name
                ),
            ));
        }
        Ok(())
    }
}

/// Takes the row lock of `entry` (a no-op write): on PostgreSQL concurrent
/// transitions of its versions wait for each other; SQLite serializes
/// writers anyway.
pub(crate) async fn lock_entry(
    txn: &DatabaseTransaction,
    entry: &entries::Model,
) -> Result<(), Error> {
    entries::Entity::update_many()
        .col_expr(
            entries::Column::Version,
            Expr::col(entries::Column::Version),
        )
        .filter(entries::Column::Uuid.eq(entry.uuid.as_str()))
        .exec(txn)
        .await?;
    Ok(())
}
