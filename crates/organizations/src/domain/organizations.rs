//! Organizations: create (the creator becomes owner), read, list the
//! caller's, update with an etag, delete (owners, with confirmation).

use orgplane_platform::{
    Error,
    authz::{Permission, Role, check},
    principal::{Principal, PrincipalKind, SCOPE_READ, SCOPE_WRITE},
    time::now_micros,
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::{Activity, action},
    page::{KeyPart, ListQuery, Page, like_prefix},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
    Set, TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use super::{Organizations, access::Access};
use crate::storage::{deleted_organizations, members, organizations};

/// Slugs no organization may take: they would read as part of the product.
pub const RESERVED_NAMES: &[&str] = &[
    "admin",
    "api",
    "app",
    "auth",
    "dashboard",
    "docs",
    "help",
    "internal",
    "login",
    "logout",
    "me",
    "new",
    "orgplane",
    "public",
    "root",
    "settings",
    "signup",
    "static",
    "support",
    "system",
    "www",
];

/// Visibility strings as stored.
pub const VISIBILITIES: &[&str] = &["private", "public"];

/// The profile fields of an organization, as created or changed.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// Display name.
    pub display_name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Website (https URL).
    pub website: Option<String>,
    /// `private` or `public`.
    pub visibility: Option<String>,
}

/// An organization with the caller's role in it.
#[derive(Debug, Clone)]
pub struct OrganizationView {
    /// The row.
    pub organization: organizations::Model,
    /// The caller's role.
    pub role: Role,
}

fn check_profile(v: &mut Violations, profile: &Profile) {
    if let Some(name) = &profile.display_name {
        v.check("organization.display_name", validate::text(name, 200));
    }
    if let Some(description) = &profile.description {
        v.check(
            "organization.description",
            validate::text(description, 2000),
        );
    }
    if let Some(website) = &profile.website
        && !website.is_empty()
    {
        let ok = website.len() <= 2048
            && website.starts_with("https://")
            && website.len() > "https://".len()
            && !website.chars().any(char::is_whitespace);
        if !ok {
            v.add("organization.website", "must be an https URL");
        }
    }
    if let Some(visibility) = &profile.visibility
        && !VISIBILITIES.contains(&visibility.as_str())
    {
        v.add("organization.visibility", "must be private or public");
    }
}

pub use orgplane_storage::etag::{check_etag, etag, stale};

/// How long a deleted organization is kept (unreachable) before it is
/// purged with everything it owns here.
pub const PURGE_AFTER: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

impl Organizations {
    /// Creates an organization; the caller becomes its owner.
    pub async fn create_organization(
        &self,
        principal: &Principal,
        name: &str,
        profile: Profile,
    ) -> Result<OrganizationView, Error> {
        if principal.kind != PrincipalKind::User || !principal.has_scope(SCOPE_WRITE) {
            return Err(Error::permission_denied(
                "USER_WRITE_REQUIRED",
                "organizations are created by users with a write-scoped token",
            ));
        }
        let mut v = Violations::new();
        v.check("organization.name", validate::slug(name));
        if RESERVED_NAMES.contains(&name) {
            v.add("organization.name", "is reserved");
        }
        check_profile(&mut v, &profile);
        v.finish()?;
        let now = now_micros();
        let org = organizations::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            name: Set(name.to_owned()),
            display_name: Set(profile
                .display_name
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| name.to_owned())),
            description: Set(profile.description.unwrap_or_default()),
            website: Set(profile.website.unwrap_or_default()),
            visibility: Set(profile.visibility.unwrap_or_else(|| "private".into())),
            version: Set(1),
            create_time: Set(now),
            update_time: Set(now),
            delete_time: Set(None),
        };
        let txn = self.db.begin().await?;
        let org = org
            .insert(&txn)
            .await
            .map_err(|err| Error::from_db(err, "organization", name))?;
        members::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            organization_uuid: Set(org.uuid.clone()),
            user_uuid: Set(principal.uuid.clone()),
            username: Set(principal.name.clone()),
            role: Set(Role::Owner.as_str().to_owned()),
            version: Set(1),
            create_time: Set(now),
            update_time: Set(now),
        }
        .insert(&txn)
        .await?;
        super::settings::insert_defaults(&txn, &org.uuid).await?;
        self.commit_with(txn, organization_activity(&org, principal, action::CREATED))
            .await?;
        Ok(OrganizationView {
            organization: org,
            role: Role::Owner,
        })
    }

    /// An organization the caller belongs to.
    pub async fn get_organization(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<OrganizationView, Error> {
        let Access {
            organization, role, ..
        } = self
            .require(principal, name, Permission::OrganizationRead)
            .await?;
        Ok(OrganizationView { organization, role })
    }

    /// The caller's organizations, each with the caller's role.
    pub async fn list_organizations(
        &self,
        principal: &Principal,
        query: &ListQuery,
    ) -> Result<Page<OrganizationView>, Error> {
        if !principal.has_scope(SCOPE_READ) {
            return Err(Error::permission_denied(
                "MISSING_SCOPE",
                "the token lacks the \"read\" scope",
            ));
        }
        let order = query.order(&["name", "create_time"])?;
        let terms = query.terms(&["name", "role"])?;
        let page = query.page("")?;
        let mut condition = Condition::all()
            .add(members::Column::UserUuid.eq(principal.uuid.as_str()))
            .add(members::Column::Role.ne(Role::Outsider.as_str()))
            .add(organizations::Column::DeleteTime.is_null());
        for (key, value) in &terms {
            condition = match *key {
                "name" => condition.add(
                    Expr::col((organizations::Entity, organizations::Column::Name))
                        .like(LikeExpr::new(like_prefix(value)).escape('\\')),
                ),
                _ => {
                    if Role::parse(value).is_none() {
                        return Err(Error::invalid("filter", format!("unknown role {value:?}")));
                    }
                    condition.add(members::Column::Role.eq(*value))
                }
            };
        }
        let base = organizations::Entity::find()
            .find_also_related(members::Entity)
            .filter(condition.clone());
        let (columns, parts): (Vec<organizations::Column>, &[KeyPart]) = match order.field {
            "name" => (vec![organizations::Column::Name], &[KeyPart::Text]),
            _ => (
                vec![
                    organizations::Column::CreateTime,
                    organizations::Column::Uuid,
                ],
                &[KeyPart::Int, KeyPart::Text],
            ),
        };
        let rows = page
            .apply(base, &columns, parts, order.descending)?
            .all(&self.db)
            .await?;
        let (rows, next_page_token) = page.finish(rows, |(org, _)| match order.field {
            "name" => vec![org.name.clone()],
            _ => vec![org.create_time.to_string(), org.uuid.clone()],
        });
        // The same matches as the page's, filter included.
        let matches = organizations::Entity::find()
            .inner_join(members::Entity)
            .filter(condition)
            .into_query();
        let total_size = page
            .total_size(&self.db, rows.len(), &next_page_token, matches)
            .await?;
        let items = rows
            .into_iter()
            .filter_map(|(organization, member)| {
                let role = Role::parse(&member?.role)?;
                Some(OrganizationView { organization, role })
            })
            .collect();
        Ok(Page {
            items,
            next_page_token,
            total_size,
        })
    }

    /// Changes an organization's profile; a stale `etag` is `ABORTED`.
    pub async fn update_organization(
        &self,
        principal: &Principal,
        name: &str,
        profile: Profile,
        etag_seen: &str,
    ) -> Result<OrganizationView, Error> {
        let access = self
            .require(principal, name, Permission::OrganizationUpdate)
            .await?;
        let mut v = Violations::new();
        check_profile(&mut v, &profile);
        v.finish()?;
        let org = access.organization;
        if profile
            .visibility
            .as_ref()
            .is_some_and(|v| *v != org.visibility)
        {
            check(principal, access.role, Permission::OrganizationVisibility)?;
        }
        // Without an etag the update applies to the version just read; with
        // one, it must be the current version's.
        check_etag(etag_seen, org.version, "organization")?;
        let expected = org.version;
        let now = now_micros();
        let mut update = organizations::Entity::update_many()
            .col_expr(organizations::Column::Version, Expr::value(expected + 1))
            .col_expr(organizations::Column::UpdateTime, Expr::value(now));
        if let Some(value) = profile.display_name {
            update = update.col_expr(organizations::Column::DisplayName, Expr::value(value));
        }
        if let Some(value) = profile.description {
            update = update.col_expr(organizations::Column::Description, Expr::value(value));
        }
        if let Some(value) = profile.website {
            update = update.col_expr(organizations::Column::Website, Expr::value(value));
        }
        if let Some(value) = profile.visibility {
            update = update.col_expr(organizations::Column::Visibility, Expr::value(value));
        }
        let txn = self.db.begin().await?;
        let updated = update
            .filter(organizations::Column::Uuid.eq(org.uuid.as_str()))
            .filter(organizations::Column::Version.eq(expected))
            .exec_with_returning(&txn)
            .await?;
        let organization = updated
            .into_iter()
            .next()
            .ok_or_else(|| stale("organization"))?;
        self.commit_with(
            txn,
            organization_activity(&organization, principal, action::UPDATED),
        )
        .await?;
        Ok(OrganizationView {
            organization,
            role: access.role,
        })
    }

    /// Deletes an organization: owners only, `confirm` must repeat its name.
    /// It is unreachable at once (every lookup skips deleted rows).
    pub async fn delete_organization(
        &self,
        principal: &Principal,
        name: &str,
        confirm: &str,
        etag_seen: &str,
    ) -> Result<(), Error> {
        let access = self
            .require(principal, name, Permission::OrganizationDelete)
            .await?;
        if confirm != name {
            return Err(Error::invalid(
                "confirm",
                "must repeat the organization's name",
            ));
        }
        let org = access.organization;
        check_etag(etag_seen, org.version, "organization")?;
        let now = now_micros();
        // The tombstone commits with the deletion: the other services purge
        // from tombstones, so none of them can miss a deletion.
        let txn = self.db.begin().await?;
        let deleted = organizations::Entity::update_many()
            .col_expr(organizations::Column::DeleteTime, Expr::value(now))
            .col_expr(organizations::Column::Version, Expr::value(org.version + 1))
            .filter(organizations::Column::Uuid.eq(org.uuid.as_str()))
            .filter(organizations::Column::Version.eq(org.version))
            .exec(&txn)
            .await?;
        if deleted.rows_affected != 1 {
            return Err(stale("organization"));
        }
        deleted_organizations::ActiveModel {
            uuid: Set(org.uuid.clone()),
            name: Set(org.name.clone()),
            delete_time: Set(now),
        }
        .insert(&txn)
        .await?;
        self.commit_with(txn, organization_activity(&org, principal, action::DELETED))
            .await?;
        // Its agents stop now, not when the agents service purges them
        // (identity's purge revokes their tokens too, should this fail).
        if let Some(identity) = &self.identity
            && let Err(err) = identity.revoke_organization_agent_tokens(&org.uuid).await
        {
            tracing::warn!(organization = %org.name, error = %err, "could not revoke the agent tokens of a deleted organization");
        }
        Ok(())
    }
}

/// What `actor` did to an organization.
fn organization_activity(org: &organizations::Model, actor: &Principal, action: &str) -> Activity {
    Activity::new(&org.uuid, actor, action, "organization", &org.name).subject_uuid(&org.uuid)
}

impl Organizations {
    /// The live (not deleted) organization named `name`, after checking the
    /// name is a slug.
    pub(crate) async fn live_organization(
        &self,
        name: &str,
    ) -> Result<Option<organizations::Model>, Error> {
        let mut v = Violations::new();
        v.check("organization", validate::slug(name));
        v.finish()?;
        Ok(organizations::Entity::find()
            .filter(organizations::Column::Name.eq(name))
            .filter(organizations::Column::DeleteTime.is_null())
            .one(&self.db)
            .await?)
    }

    /// Purges organizations deleted before `deleted_before` (microseconds),
    /// with their members, settings, projects, invitations and teams (the
    /// foreign keys cascade). Returns how many were purged.
    pub async fn purge_deleted(&self, deleted_before: i64) -> Result<u64, Error> {
        let gone: Vec<String> = organizations::Entity::find()
            .select_only()
            .column(organizations::Column::Uuid)
            .filter(organizations::Column::DeleteTime.lt(deleted_before))
            .into_tuple()
            .all(&self.db)
            .await?;
        if gone.is_empty() {
            return Ok(0);
        }
        crate::storage::activities::Entity::delete_many()
            .filter(crate::storage::activities::Column::OrganizationUuid.is_in(gone.clone()))
            .exec(&self.db)
            .await?;
        let purged = organizations::Entity::delete_many()
            .filter(organizations::Column::Uuid.is_in(gone))
            .exec(&self.db)
            .await?;
        self.access_changes.publish_everything();
        Ok(purged.rows_affected)
    }

    /// Purges, every `interval`, organizations deleted longer than
    /// [`PURGE_AFTER`] ago, until `shutdown` completes.
    pub async fn run_purger(
        self,
        interval: std::time::Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        orgplane_storage::deletions::run_every(
            &self.db,
            interval,
            shutdown,
            "purged deleted organizations, expired activities, messages and idempotency keys",
            || async {
                let now = now_micros();
                Ok(self
                    .purge_deleted(now - PURGE_AFTER.as_micros() as i64)
                    .await?
                    + self.purge_expired_activities(now).await?
                    + orgplane_storage::outbox::purge(&self.db, now).await?
                    + orgplane_storage::idempotency::purge(&self.db, now).await?)
            },
        )
        .await
    }
}
