//! Stages of versions: `testing`, `staging`, `production`, `disabled`.
//!
//! A transition records a condition (reason, message, who, when) in the
//! append-only `stage_history`, in the same transaction as the change. The
//! registry's rules (at most N production versions per model or component)
//! are checked under the entry's row lock, so concurrent transitions cannot
//! both pass.

use orgplane_platform::{
    Error,
    authz::Permission,
    principal::Principal,
    time::now_micros,
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::commit_with,
    page::{ListQuery, Page, text_keyed_page},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set,
    TransactionTrait, sea_query::Expr,
};

use super::{Kind, Registry, versions::lock_entry};
use crate::storage::{stages, versions};

/// A new version's stage.
pub const TESTING: &str = "testing";
/// The stage before production.
pub const STAGING: &str = "staging";
/// Serving; limited per entry by the registry's settings.
pub const PRODUCTION: &str = "production";
/// Retired.
pub const DISABLED: &str = "disabled";
/// Every stage.
pub const STAGES: &[&str] = &[TESTING, STAGING, PRODUCTION, DISABLED];

/// Why a version enters a stage.
#[derive(Debug, Clone, Default)]
pub struct Transition {
    /// The stage.
    pub stage: String,
    /// Machine-readable reason, UpperCamelCase; `Promoted`/`Demoted`-like
    /// defaults when empty.
    pub reason: String,
    /// For people.
    pub message: String,
}

/// Appends the version's current stage to its history.
pub(crate) async fn record(db: &impl ConnectionTrait, row: &versions::Model) -> Result<(), Error> {
    stages::ActiveModel {
        uuid: Set(uuid::Uuid::now_v7().to_string()),
        version_uuid: Set(row.uuid.clone()),
        stage: Set(row.stage.clone()),
        reason: Set(row.stage_reason.clone()),
        message: Set(row.stage_message.clone()),
        actor: Set(row.stage_actor.clone()),
        create_time: Set(row.stage_time),
    }
    .insert(db)
    .await?;
    Ok(())
}

fn is_reason(value: &str) -> bool {
    value.len() <= 64
        && value.starts_with(|c: char| c.is_ascii_uppercase())
        && value.chars().all(|c| c.is_ascii_alphanumeric())
}

impl Registry {
    /// Moves a version to `transition.stage`, recording why.
    pub async fn transition(
        &self,
        principal: &Principal,
        organization: &str,
        kind: Kind,
        entry_name: &str,
        name: &str,
        transition: Transition,
    ) -> Result<versions::Model, Error> {
        let (_, entry) = self
            .entry_with(
                principal,
                organization,
                kind,
                entry_name,
                Permission::RegistryWrite,
            )
            .await?;
        let mut v = Violations::new();
        if !STAGES.contains(&transition.stage.as_str()) {
            v.add("stage", "must be testing, staging, production or disabled");
        }
        if !transition.reason.is_empty() && !is_reason(&transition.reason) {
            v.add(
                "condition.reason",
                "must be UpperCamelCase letters and digits, at most 64",
            );
        }
        v.check(
            "condition.message",
            validate::text(&transition.message, 2000),
        );
        v.finish()?;
        let txn = self.db.begin().await?;
        // The entry's lock first: reading the version, counting production
        // versions and the change are one step for every concurrent
        // transition of this entry's versions.
        lock_entry(&txn, &entry).await?;
        let row = self.version(&txn, &entry, name).await?;
        if row.stage == transition.stage {
            return Err(Error::precondition(
                "ALREADY_IN_STAGE",
                format!("the version is already in {}", row.stage),
            ));
        }
        if transition.stage == PRODUCTION {
            self.ensure_room_in_production(&txn, kind, &entry).await?;
        }
        let reason = if transition.reason.is_empty() {
            let rank = |s: &str| STAGES.iter().position(|x| *x == s).unwrap_or(0);
            if rank(&transition.stage) > rank(&row.stage) {
                "Promoted".to_owned()
            } else {
                "Demoted".to_owned()
            }
        } else {
            transition.reason
        };
        let now = now_micros();
        orgplane_storage::etag::update_at_version(
            &txn,
            versions::Entity::update_many()
                .col_expr(
                    versions::Column::Stage,
                    Expr::value(transition.stage.clone()),
                )
                .col_expr(versions::Column::StageReason, Expr::value(reason.clone()))
                .col_expr(
                    versions::Column::StageMessage,
                    Expr::value(transition.message.clone()),
                )
                .col_expr(
                    versions::Column::StageActor,
                    Expr::value(principal.name.clone()),
                )
                .col_expr(versions::Column::StageTime, Expr::value(now))
                .col_expr(versions::Column::UpdateTime, Expr::value(now)),
            (versions::Column::Uuid, row.uuid.as_str()),
            (versions::Column::Version, row.version),
            "version",
        )
        .await?;
        let updated = versions::Entity::find_by_id(row.uuid)
            .one(&txn)
            .await?
            .ok_or_else(|| Error::not_found("version", name))?;
        record(&txn, &updated).await?;
        let activity =
            super::entries::version_activity(&entry, &updated, principal, "transitioned").metadata(
                serde_json::json!({
                    "from": row.stage,
                    "to": updated.stage,
                    "reason": updated.stage_reason,
                }),
            );
        commit_with(txn, activity).await?;
        Ok(updated)
    }

    /// A version's stage history, newest first.
    pub async fn list_stages(
        &self,
        principal: &Principal,
        organization: &str,
        kind: Kind,
        entry_name: &str,
        name: &str,
        query: &ListQuery,
    ) -> Result<Page<stages::Model>, Error> {
        let (_, entry) = self
            .entry_with(
                principal,
                organization,
                kind,
                entry_name,
                Permission::RegistryRead,
            )
            .await?;
        let row = self.version(&self.db, &entry, name).await?;
        let page = query.page("stages")?;
        text_keyed_page(
            &self.db,
            &page,
            stages::Entity::find().filter(stages::Column::VersionUuid.eq(row.uuid.as_str())),
            stages::Column::Uuid,
            true,
            |s| s.uuid.clone(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_upper_camel_case() {
        assert!(is_reason("PassedEvaluation"));
        assert!(is_reason("V2"));
        assert!(!is_reason("passed"));
        assert!(!is_reason("Passed evaluation"));
        assert!(!is_reason(&"A".repeat(65)));
    }
}
