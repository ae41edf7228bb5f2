//! Service accounts of organizations and their tokens.
//!
//! Identity stores them; who may manage them is the organizations service's
//! answer (`service_accounts.read` / `service_accounts.manage`, cached a few
//! seconds by [`PermissionChecker`](orgplane_transport::access::PermissionChecker)).
//! An account's token introspects to a principal that carries the account's
//! organization (slug and UUID) and role, so the account acts in that
//! organization only, with that role, within the token's scopes.
//!
//! Accounts of a deleted organization stop working at once (the organization
//! is gone for every access check) and are purged by
//! [`Identity::purge_deleted_organizations`], which follows the
//! organizations service's deletion tombstones from a stored cursor: a
//! deletion that happens while identity is down is purged when it returns.

use std::time::Duration;

use orgplane_platform::{
    Error,
    authz::{Permission, Role},
    principal::{Principal, SCOPE_READ, SCOPE_WRITE},
    time::{add, now_micros},
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::{Activity, Shipper, action, commit_with},
    deletions,
    page::{ListQuery, Page, like_prefix, text_keyed_page},
};
use orgplane_transport::{
    access::{Entity, Standing},
    peers::OrganizationsPeer,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter, Set,
    TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use super::{Identity, secrets};
use crate::storage::service_accounts::{account, token};

/// Roles a service account may hold: `admin` (the default, as in
/// Polyaxon) and below — never `owner`, `manager` or `billing` (an account
/// does not manage the organization's people, settings or plan).
pub const ACCOUNT_ROLES: &[Role] = &[Role::Admin, Role::Member, Role::Viewer];
/// The role of an account created without one.
pub const DEFAULT_ACCOUNT_ROLE: Role = Role::Admin;
/// The name of the token an account is created with.
pub const FIRST_TOKEN_NAME: &str = "default";

/// Scopes a service account token may carry.
pub const ACCOUNT_SCOPES: &[&str] = &[SCOPE_READ, SCOPE_WRITE];

/// A service account as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewServiceAccount {
    /// Slug, unique in the organization.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Role (API string).
    pub role: String,
}

/// Changes to an account; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ServiceAccountChanges {
    /// New description.
    pub description: Option<String>,
    /// New role.
    pub role: Option<String>,
}

/// A token as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewAccountToken {
    /// Slug, unique per account.
    pub name: String,
    /// Scopes; empty means `read` and `write`.
    pub scopes: Vec<String>,
    /// Expiry in microseconds; `None` for the default lifetime.
    pub expire_time: Option<i64>,
}

/// A new token of the account `account_uuid` and its secret (only the
/// secret's hash is stored).
fn account_token(
    account_uuid: &str,
    name: &str,
    scopes: Vec<String>,
    expire_time: i64,
    now: i64,
) -> (token::ActiveModel, String) {
    let secret = secrets::generate(secrets::SERVICE_ACCOUNT_PREFIX);
    let row = token::ActiveModel {
        uuid: Set(uuid::Uuid::now_v7().to_string()),
        service_account_uuid: Set(account_uuid.to_owned()),
        name: Set(name.to_owned()),
        secret_hash: Set(secrets::hash(&secret)),
        scopes: Set(scopes.join(" ")),
        expire_time: Set(expire_time),
        last_use_time: Set(None),
        create_time: Set(now),
        update_time: Set(now),
    };
    (row, secret)
}

fn check_role(v: &mut Violations, field: &str, role: &str) {
    if !Role::parse(role).is_some_and(|r| ACCOUNT_ROLES.contains(&r)) {
        v.add(field, "must be admin, member or viewer");
    }
}

impl Identity {
    pub(crate) fn organizations(&self) -> Result<&OrganizationsPeer, Error> {
        self.organizations.as_ref().ok_or_else(|| {
            Error::Unavailable("identity runs without the organizations service".into())
        })
    }

    async fn require_in(
        &self,
        principal: &Principal,
        organization: &str,
        permission: Permission,
    ) -> Result<Standing, Error> {
        self.organizations()?
            .permissions
            .require(principal, organization, permission, Entity::Organization)
            .await
    }

    async fn account(&self, standing: &Standing, name: &str) -> Result<account::Model, Error> {
        let mut v = Violations::new();
        v.check("service_account", validate::slug(name));
        v.finish()?;
        account::Entity::find()
            .filter(account::Column::OrganizationUuid.eq(standing.organization_uuid.as_str()))
            .filter(account::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("service account", name))
    }

    /// Creates a service account.
    pub async fn create_service_account(
        &self,
        principal: &Principal,
        organization: &str,
        mut new: NewServiceAccount,
    ) -> Result<(account::Model, token::Model, String), Error> {
        let standing = self
            .require_in(principal, organization, Permission::ServiceAccountsManage)
            .await?;
        if new.role.is_empty() {
            new.role = DEFAULT_ACCOUNT_ROLE.as_str().to_owned();
        }
        let mut v = Violations::new();
        v.check("service_account.name", validate::slug(&new.name));
        v.check(
            "service_account.description",
            validate::text(&new.description, 2000),
        );
        check_role(&mut v, "service_account.role", &new.role);
        v.finish()?;
        let now = now_micros();
        let txn = self.db.begin().await?;
        let row = account::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            organization_uuid: Set(standing.organization_uuid),
            organization: Set(organization.to_owned()),
            name: Set(new.name.clone()),
            description: Set(new.description),
            role: Set(new.role),
            create_time: Set(now),
            update_time: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|err| Error::from_db(err, "service account", &new.name))?;
        // Its first token, as in Polyaxon: read and write, the default
        // lifetime, shown once.
        let (first, secret) = account_token(
            &row.uuid,
            FIRST_TOKEN_NAME,
            vec![SCOPE_READ.to_owned(), SCOPE_WRITE.to_owned()],
            add(now, self.config.default_token_ttl),
            now,
        );
        let first = first.insert(&txn).await?;
        commit_with(txn, account_activity(&row, principal, action::CREATED)).await?;
        Ok((row, first, secret))
    }

    /// One service account.
    pub async fn get_service_account(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
    ) -> Result<account::Model, Error> {
        let standing = self
            .require_in(principal, organization, Permission::ServiceAccountsRead)
            .await?;
        self.account(&standing, name).await
    }

    /// An organization's service accounts, filtered by `name:` and `role:`.
    pub async fn list_service_accounts(
        &self,
        principal: &Principal,
        organization: &str,
        query: &ListQuery,
    ) -> Result<Page<account::Model>, Error> {
        let standing = self
            .require_in(principal, organization, Permission::ServiceAccountsRead)
            .await?;
        let order = query.order(&["name", "create_time"])?;
        let terms = query.terms(&["name", "role"])?;
        let page = query.page("")?;
        let mut condition = Condition::all()
            .add(account::Column::OrganizationUuid.eq(standing.organization_uuid.as_str()));
        for (key, value) in &terms {
            condition = condition.add(match *key {
                "name" => Expr::col(account::Column::Name)
                    .like(LikeExpr::new(like_prefix(value)).escape('\\')),
                _ => account::Column::Role.eq(*value),
            });
        }
        // UUIDv7 orders by creation time.
        let (column, by_name) = match order.field {
            "name" => (account::Column::Name, true),
            _ => (account::Column::Uuid, false),
        };
        text_keyed_page(
            &self.db,
            &page,
            account::Entity::find().filter(condition),
            column,
            order.descending,
            |a| {
                if by_name {
                    a.name.clone()
                } else {
                    a.uuid.clone()
                }
            },
        )
        .await
    }

    /// Changes an account's description or role; a new role applies to its
    /// tokens as soon as the gateway's token cache expires.
    pub async fn update_service_account(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        changes: ServiceAccountChanges,
    ) -> Result<account::Model, Error> {
        let standing = self
            .require_in(principal, organization, Permission::ServiceAccountsManage)
            .await?;
        let mut v = Violations::new();
        if let Some(d) = &changes.description {
            v.check("service_account.description", validate::text(d, 2000));
        }
        if let Some(role) = &changes.role {
            check_role(&mut v, "service_account.role", role);
        }
        v.finish()?;
        let row = self.account(&standing, name).await?;
        let mut active = row.into_active_model();
        if let Some(d) = changes.description {
            active.description = Set(d);
        }
        if let Some(role) = changes.role {
            active.role = Set(role);
        }
        active.update_time = Set(now_micros());
        let txn = self.db.begin().await?;
        let row = active.update(&txn).await?;
        commit_with(txn, account_activity(&row, principal, action::UPDATED)).await?;
        self.revoked(&row.uuid);
        Ok(row)
    }

    /// Deletes an account and its tokens.
    pub async fn delete_service_account(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
    ) -> Result<String, Error> {
        let standing = self
            .require_in(principal, organization, Permission::ServiceAccountsManage)
            .await?;
        let row = self.account(&standing, name).await?;
        let txn = self.db.begin().await?;
        account::Entity::delete_by_id(row.uuid.clone())
            .exec(&txn)
            .await?;
        commit_with(txn, account_activity(&row, principal, action::DELETED)).await?;
        self.revoked(&row.uuid);
        Ok(row.uuid)
    }

    /// Creates a token for an account; returns it and its secret.
    pub async fn create_service_account_token(
        &self,
        principal: &Principal,
        organization: &str,
        account_name: &str,
        new: NewAccountToken,
    ) -> Result<(token::Model, String), Error> {
        let standing = self
            .require_in(principal, organization, Permission::ServiceAccountsManage)
            .await?;
        let now = now_micros();
        let scopes = if new.scopes.is_empty() {
            vec![SCOPE_READ.to_owned(), SCOPE_WRITE.to_owned()]
        } else {
            new.scopes
        };
        let mut v = Violations::new();
        v.check("token.name", validate::slug(&new.name));
        for scope in &scopes {
            if !ACCOUNT_SCOPES.contains(&scope.as_str()) {
                v.add("token.scopes", format!("{scope:?} is not read or write"));
            }
        }
        let expire_time = new
            .expire_time
            .unwrap_or_else(|| add(now, self.config.default_token_ttl));
        if expire_time <= now || expire_time > add(now, self.config.max_token_ttl) {
            v.add(
                "token.expire_time",
                "must be in the future and at most a year ahead",
            );
        }
        v.finish()?;
        let account = self.account(&standing, account_name).await?;
        let (row, secret) = account_token(&account.uuid, &new.name, scopes, expire_time, now);
        let txn = self.db.begin().await?;
        let row = row
            .insert(&txn)
            .await
            .map_err(|err| Error::from_db(err, "token", &new.name))?;
        let activity = token_activity(&account, &row.name, principal, action::CREATED)
            .subject_uuid(&row.uuid)
            .metadata(serde_json::json!({"scopes": row.scopes.split(' ').collect::<Vec<_>>()}));
        commit_with(txn, activity).await?;
        Ok((row, secret))
    }

    /// An account's tokens, filtered by `name:`.
    pub async fn list_service_account_tokens(
        &self,
        principal: &Principal,
        organization: &str,
        account_name: &str,
        query: &ListQuery,
    ) -> Result<Page<token::Model>, Error> {
        let standing = self
            .require_in(principal, organization, Permission::ServiceAccountsRead)
            .await?;
        let order = query.order(&["create_time", "name"])?;
        let terms = query.terms(&["name"])?;
        let page = query.page("")?;
        let account = self.account(&standing, account_name).await?;
        let mut condition =
            Condition::all().add(token::Column::ServiceAccountUuid.eq(account.uuid.as_str()));
        for (_, prefix) in &terms {
            condition = condition.add(
                Expr::col(token::Column::Name)
                    .like(LikeExpr::new(like_prefix(prefix)).escape('\\')),
            );
        }
        let (column, by_name) = match order.field {
            "name" => (token::Column::Name, true),
            _ => (token::Column::Uuid, false),
        };
        text_keyed_page(
            &self.db,
            &page,
            token::Entity::find().filter(condition),
            column,
            order.descending,
            |t| {
                if by_name {
                    t.name.clone()
                } else {
                    t.uuid.clone()
                }
            },
        )
        .await
    }

    /// Deletes an account's token; the gateway stops accepting it within its
    /// cache TTL.
    pub async fn delete_service_account_token(
        &self,
        principal: &Principal,
        organization: &str,
        account_name: &str,
        token_name: &str,
    ) -> Result<String, Error> {
        let standing = self
            .require_in(principal, organization, Permission::ServiceAccountsManage)
            .await?;
        let mut v = Violations::new();
        v.check("token", validate::slug(token_name));
        v.finish()?;
        let account = self.account(&standing, account_name).await?;
        let txn = self.db.begin().await?;
        let deleted = token::Entity::delete_many()
            .filter(token::Column::ServiceAccountUuid.eq(account.uuid.as_str()))
            .filter(token::Column::Name.eq(token_name))
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(Error::not_found("token", token_name));
        }
        commit_with(
            txn,
            token_activity(&account, token_name, principal, action::DELETED),
        )
        .await?;
        self.revoked(&account.uuid);
        Ok(account.uuid)
    }

    /// The shipper of this service's activities to the activity store
    /// (`UNAVAILABLE` without the organizations service).
    pub fn activity_shipper(&self) -> Result<Shipper<OrganizationsPeer>, Error> {
        Ok(Shipper::new(
            self.db.clone(),
            "identity",
            self.organizations()?.clone(),
        ))
    }

    /// Purges the service accounts of organizations deleted since the last
    /// run (see [`orgplane_storage::deletions`]). Returns how many.
    pub async fn purge_deleted_organizations(&self) -> Result<u64, Error> {
        deletions::purge_deleted(&self.db, self.organizations()?, |uuids| async move {
            let deleted = account::Entity::delete_many()
                .filter(account::Column::OrganizationUuid.is_in(uuids.clone()))
                .exec(&self.db)
                .await?;
            // Revoked at deletion already; here should that call have failed.
            let agent_tokens = crate::storage::agent_tokens::Entity::delete_many()
                .filter(crate::storage::agent_tokens::Column::OrganizationUuid.is_in(uuids))
                .exec(&self.db)
                .await?;
            Ok(deleted.rows_affected + agent_tokens.rows_affected)
        })
        .await
    }

    /// Runs [`Self::purge_deleted_organizations`] and
    /// [`Self::purge_expired`] every `interval` until `stop` completes.
    pub async fn run_purger(self, interval: Duration, stop: impl std::future::Future<Output = ()>) {
        deletions::run_every(
            &self.db,
            interval,
            stop,
            "purged service accounts of deleted organizations and expired secrets",
            || async {
                Ok(self.purge_deleted_organizations().await?
                    + self.purge_expired(now_micros()).await?)
            },
        )
        .await
    }
}

/// What `actor` did to a service account.
fn account_activity(account: &account::Model, actor: &Principal, action: &str) -> Activity {
    Activity::new(
        &account.organization_uuid,
        actor,
        action,
        "service_account",
        &account.name,
    )
    .subject_uuid(&account.uuid)
}

/// What `actor` did to a token of a service account.
fn token_activity(
    account: &account::Model,
    token: &str,
    actor: &Principal,
    action: &str,
) -> Activity {
    Activity::new(
        &account.organization_uuid,
        actor,
        action,
        "service_account_token",
        token,
    )
    .parent("service_account", &account.name)
}
