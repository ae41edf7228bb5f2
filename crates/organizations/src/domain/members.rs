//! Members: list, read, change roles, remove, leave, under the invariants
//! (each refused with an `ErrorInfo` reason):
//! - an organization always keeps an owner (`LAST_OWNER`);
//! - only owners grant, revoke or remove `owner` (`OWNER_REQUIRED`);
//! - nobody raises their own role (`SELF_ELEVATION`).
//!
//! Membership changes of one organization are serialized by locking its row
//! first in the transaction (a no-op update: a row lock on PostgreSQL, the
//! write lock on SQLite), so two owners demoting each other at once cannot
//! leave it without one.

use std::collections::HashMap;

use orgplane_platform::{
    Error,
    authz::{Permission, Role, allows},
    principal::Principal,
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::{Activity, action},
    page::{KeyPart, ListQuery, Page, keyed_page, like_prefix},
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use super::{
    Organizations,
    access::{Access, check, stored_role},
    teams::{Grant, MAX_GRANTS, TEAM_ROLES},
};
use crate::storage::{grants, members, organizations, teams};

/// What `UpdateMember` changes; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct MemberChanges {
    /// A new organization role (never `outsider`).
    pub role: Option<String>,
    /// An outsider's grants, replacing theirs: each must name an entity
    /// they already reach on their own (an outsider reaches more only by a
    /// new invitation or a team); its role may change.
    pub grants: Option<Vec<Grant>>,
}

impl MemberChanges {
    /// A change of role alone.
    pub fn role(role: &str) -> Self {
        Self {
            role: Some(role.to_owned()),
            grants: None,
        }
    }
}

/// Replaces the grants of the outsider `member` with `wanted`, each of
/// which must name one of theirs (its role may change; when it was first
/// granted stays).
async fn set_outsider_grants(
    txn: &DatabaseTransaction,
    member: &members::Model,
    wanted: &[Grant],
) -> Result<(), Error> {
    let held = grants::member::Entity::find()
        .filter(grants::member::Column::MemberUuid.eq(member.uuid.as_str()))
        .all(txn)
        .await?;
    let find = |g: &Grant| held.iter().find(|h| h.kind == g.kind && h.name == g.name);
    if let Some(new) = wanted.iter().find(|g| find(g).is_none()) {
        return Err(Error::invalid(
            "member.grants",
            format!(
                "{} {} is not one the outsider was invited to: invite them to it",
                new.kind, new.name
            ),
        ));
    }
    for h in &held {
        match wanted.iter().find(|g| g.kind == h.kind && g.name == h.name) {
            None => {
                grants::member::Entity::delete_by_id(h.uuid.clone())
                    .exec(txn)
                    .await?;
            }
            Some(g) if g.role != h.role => {
                grants::member::Entity::update_many()
                    .col_expr(grants::member::Column::Role, Expr::value(g.role.clone()))
                    .filter(grants::member::Column::Uuid.eq(h.uuid.as_str()))
                    .exec(txn)
                    .await?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

impl Organizations {
    /// Members of an organization, filtered by `role:` and `name:` (username
    /// prefix), ordered by `user` or `create_time`.
    pub async fn list_members(
        &self,
        principal: &Principal,
        organization: &str,
        query: &ListQuery,
    ) -> Result<Page<members::Model>, Error> {
        let access = self
            .require(principal, organization, Permission::MembersRead)
            .await?;
        let order = query.order(&["user", "create_time"])?;
        let terms = query.terms(&["role", "name"])?;
        let page = query.page("")?;
        let mut condition = Condition::all()
            .add(members::Column::OrganizationUuid.eq(access.organization.uuid.as_str()));
        for (key, value) in &terms {
            condition = match *key {
                "role" => condition.add(members::Column::Role.eq(*value)),
                _ => condition.add(
                    Expr::col(members::Column::Username)
                        .like(LikeExpr::new(like_prefix(value)).escape('\\')),
                ),
            };
        }
        let (columns, parts): (Vec<members::Column>, &[KeyPart]) = match order.field {
            "user" => (vec![members::Column::Username], &[KeyPart::Text]),
            _ => (
                vec![members::Column::CreateTime, members::Column::Uuid],
                &[KeyPart::Int, KeyPart::Text],
            ),
        };
        keyed_page(
            &self.db,
            &page,
            members::Entity::find().filter(condition),
            &columns,
            parts,
            order.descending,
            |m| match order.field {
                "user" => vec![m.username.clone()],
                _ => vec![m.create_time.to_string(), m.uuid.clone()],
            },
        )
        .await
    }

    /// One member by username.
    pub async fn get_member(
        &self,
        principal: &Principal,
        organization: &str,
        user: &str,
    ) -> Result<members::Model, Error> {
        let access = self
            .require(principal, organization, Permission::MembersRead)
            .await?;
        let mut v = Violations::new();
        v.check("user", validate::slug(user));
        v.finish()?;
        members::Entity::find()
            .filter(members::Column::OrganizationUuid.eq(access.organization.uuid.as_str()))
            .filter(members::Column::Username.eq(user))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("member", user))
    }
}

impl Organizations {
    /// Changes a member's role, or an outsider's grants (see
    /// [`MemberChanges`]), in one transaction with one activity.
    pub async fn update_member(
        &self,
        principal: &Principal,
        organization: &str,
        user: &str,
        changes: MemberChanges,
    ) -> Result<members::Model, Error> {
        let access = self
            .require(principal, organization, Permission::MembersManage)
            .await?;
        let mut v = Violations::new();
        v.check("member.user", validate::slug(user));
        let new_role = match &changes.role {
            Some(role) => {
                let parsed = Role::parse(role).filter(|r| *r != Role::Outsider);
                if parsed.is_none() {
                    v.add(
                        "member.role",
                        "must be one of owner, manager, admin, member, viewer, billing",
                    );
                }
                parsed
            }
            None => None,
        };
        if let Some(grants) = &changes.grants {
            v.list("member.grants", grants, MAX_GRANTS, |g| {
                if Role::parse(&g.role).is_some_and(|r| TEAM_ROLES.contains(&r)) {
                    Ok(())
                } else {
                    Err("role must be viewer, member or admin".into())
                }
            });
        }
        v.finish()?;
        let txn = self.lock_memberships(&access).await?;
        let target = find_member(&txn, &access, user).await?;
        let current = stored_role(&target)?;
        let mut metadata = serde_json::Map::new();
        let mut updated = target.clone();
        if let Some(new_role) = new_role {
            if target.user_uuid == access.caller_uuid && new_role > current {
                return Err(Error::permission_denied(
                    "SELF_ELEVATION",
                    "nobody raises their own role",
                ));
            }
            if current == Role::Owner || new_role == Role::Owner {
                require_owner(principal, &access)?;
            }
            metadata.insert("from".into(), current.as_str().into());
            metadata.insert("to".into(), new_role.as_str().into());
            updated.role = new_role.as_str().to_owned();
        }
        if let Some(grants) = changes.grants {
            if stored_role(&updated)? != Role::Outsider {
                return Err(Error::precondition(
                    "NOT_AN_OUTSIDER",
                    "only an outsider holds grants of their own; members act with their role",
                ));
            }
            set_outsider_grants(&txn, &target, &grants).await?;
            metadata.insert(
                "grants".into(),
                grants
                    .iter()
                    .map(|g| format!("{}/{}:{}", g.kind, g.name, g.role))
                    .collect::<Vec<_>>()
                    .into(),
            );
        }
        let now = orgplane_platform::time::now_micros();
        let updated = members::Entity::update_many()
            .col_expr(members::Column::Role, Expr::value(updated.role))
            .col_expr(members::Column::Version, Expr::value(target.version + 1))
            .col_expr(members::Column::UpdateTime, Expr::value(now))
            .filter(members::Column::Uuid.eq(target.uuid.as_str()))
            .exec_with_returning(&txn)
            .await?;
        ensure_an_owner_remains(&txn, &access).await?;
        let activity = member_activity(&access, &target, principal, action::UPDATED)
            .metadata(serde_json::Value::Object(metadata));
        self.commit_with(txn, activity).await?;
        updated
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found("member", user))
    }

    /// The grants of the outsiders among `members`, by member UUID.
    pub async fn outsider_grants(
        &self,
        members: &[members::Model],
    ) -> Result<HashMap<String, Vec<Grant>>, Error> {
        let outsiders: Vec<&str> = members
            .iter()
            .filter(|m| m.role == Role::Outsider.as_str())
            .map(|m| m.uuid.as_str())
            .collect();
        let mut by_member: HashMap<String, Vec<Grant>> = HashMap::new();
        if outsiders.is_empty() {
            return Ok(by_member);
        }
        for g in grants::member::Entity::find()
            .filter(grants::member::Column::MemberUuid.is_in(outsiders))
            .order_by_asc(grants::member::Column::Kind)
            .order_by_asc(grants::member::Column::Name)
            .all(&self.db)
            .await?
        {
            by_member.entry(g.member_uuid).or_default().push(Grant {
                kind: g.kind,
                name: g.name,
                role: g.role,
                granted_at: g.create_time,
            });
        }
        Ok(by_member)
    }

    /// Removes a member.
    pub async fn remove_member(
        &self,
        principal: &Principal,
        organization: &str,
        user: &str,
    ) -> Result<(), Error> {
        let access = self
            .require(principal, organization, Permission::MembersManage)
            .await?;
        let mut v = Violations::new();
        v.check("user", validate::slug(user));
        v.finish()?;
        let txn = self.lock_memberships(&access).await?;
        let target = find_member(&txn, &access, user).await?;
        if stored_role(&target)? == Role::Owner {
            require_owner(principal, &access)?;
        }
        delete_membership(&txn, &target).await?;
        ensure_an_owner_remains(&txn, &access).await?;
        self.commit_with(
            txn,
            member_activity(&access, &target, principal, action::DELETED),
        )
        .await
    }

    /// Removes the caller from the organization.
    pub async fn leave_organization(
        &self,
        principal: &Principal,
        organization: &str,
    ) -> Result<(), Error> {
        // Outsiders leave too: `membership`, not the organization-level
        // `access`.
        let access = self.membership(principal, organization).await?;
        let Some(member) = access.member.clone() else {
            return Err(Error::precondition(
                "NOT_A_MEMBER",
                "a service account does not leave its organization: delete it instead",
            ));
        };
        let txn = self.lock_memberships(&access).await?;
        delete_membership(&txn, &member).await?;
        ensure_an_owner_remains(&txn, &access).await?;
        self.commit_with(txn, member_activity(&access, &member, principal, "left"))
            .await
    }

    /// Opens a transaction holding the organization's membership lock.
    async fn lock_memberships(&self, access: &Access) -> Result<DatabaseTransaction, Error> {
        let txn = self.db.begin().await?;
        organizations::Entity::update_many()
            .col_expr(
                organizations::Column::UpdateTime,
                Expr::col(organizations::Column::UpdateTime),
            )
            .filter(organizations::Column::Uuid.eq(access.organization.uuid.as_str()))
            .exec(&txn)
            .await?;
        Ok(txn)
    }
}

async fn find_member(
    db: &impl ConnectionTrait,
    access: &Access,
    user: &str,
) -> Result<members::Model, Error> {
    members::Entity::find()
        .filter(members::Column::OrganizationUuid.eq(access.organization.uuid.as_str()))
        .filter(members::Column::Username.eq(user))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("member", user))
}

/// Deletes a membership with the team memberships it held (its own grants
/// go with it by foreign key): someone who comes back starts afresh.
async fn delete_membership(
    txn: &DatabaseTransaction,
    member: &members::Model,
) -> Result<(), Error> {
    teams::member::Entity::delete_many()
        .filter(teams::member::Column::OrganizationUuid.eq(member.organization_uuid.as_str()))
        .filter(teams::member::Column::UserUuid.eq(member.user_uuid.as_str()))
        .exec(txn)
        .await?;
    members::Entity::delete_by_id(member.uuid.clone())
        .exec(txn)
        .await?;
    Ok(())
}

fn require_owner(principal: &Principal, access: &Access) -> Result<(), Error> {
    if allows(access.role, Permission::OwnersManage) {
        return check(principal, access.role, Permission::OwnersManage);
    }
    Err(Error::permission_denied(
        "OWNER_REQUIRED",
        "only owners grant, revoke or remove the owner role",
    ))
}

async fn ensure_an_owner_remains(db: &DatabaseTransaction, access: &Access) -> Result<(), Error> {
    let owners = members::Entity::find()
        .filter(members::Column::OrganizationUuid.eq(access.organization.uuid.as_str()))
        .filter(members::Column::Role.eq(Role::Owner.as_str()))
        .count(db)
        .await?;
    if owners == 0 {
        return Err(Error::precondition(
            "LAST_OWNER",
            "an organization keeps at least one owner: make someone else owner first",
        ));
    }
    Ok(())
}

/// What `actor` did to a membership.
fn member_activity(
    access: &Access,
    member: &members::Model,
    actor: &Principal,
    action: &str,
) -> Activity {
    Activity::new(
        &access.organization.uuid,
        actor,
        action,
        "member",
        &member.username,
    )
    .subject_uuid(&member.uuid)
}
