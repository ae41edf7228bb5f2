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

use orgplane_platform::{
    Error,
    activity::{Activity, action},
    authz::{Permission, Role, allows},
    page::{KeyPart, OrderBy, PageRequest, like_prefix, parse_filter},
    principal::Principal,
    validate::{self, Violations},
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait,
    QueryFilter, TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use super::{
    Organizations,
    access::{Access, check, stored_role},
};
use crate::storage::{members, organizations, teams};

/// One page of members.
#[derive(Debug, Clone)]
pub struct MemberPage {
    /// The members.
    pub members: Vec<members::Model>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
    /// Matches in all.
    pub total_size: u64,
}

impl Organizations {
    /// Members of an organization, filtered by `role:` and `name:` (username
    /// prefix), ordered by `user` or `create_time`.
    pub async fn list_members(
        &self,
        principal: &Principal,
        organization: &str,
        page_size: i32,
        page_token: &str,
        filter: &str,
        order_by: &str,
    ) -> Result<MemberPage, Error> {
        let access = self
            .require(principal, organization, Permission::MembersRead)
            .await?;
        let order = OrderBy::parse(order_by, &["user", "create_time"])?;
        let terms = parse_filter(filter, &["role", "name"])?;
        let page = PageRequest::parse(page_size, page_token, &format!("{filter}|{order_by}"))?;
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
        let total_size = members::Entity::find()
            .filter(condition.clone())
            .count(&self.db)
            .await?;
        let (columns, parts): (Vec<members::Column>, &[KeyPart]) = match order.field {
            "user" => (vec![members::Column::Username], &[KeyPart::Text]),
            _ => (
                vec![members::Column::CreateTime, members::Column::Uuid],
                &[KeyPart::Int, KeyPart::Text],
            ),
        };
        let rows = page
            .apply(
                members::Entity::find().filter(condition),
                &columns,
                parts,
                order.descending,
            )?
            .all(&self.db)
            .await?;
        let (members, next_page_token) = page.finish(rows, |m| match order.field {
            "user" => vec![m.username.clone()],
            _ => vec![m.create_time.to_string(), m.uuid.clone()],
        });
        Ok(MemberPage {
            members,
            next_page_token,
            total_size,
        })
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
    /// Changes a member's role.
    pub async fn update_member(
        &self,
        principal: &Principal,
        organization: &str,
        user: &str,
        role: &str,
    ) -> Result<members::Model, Error> {
        let access = self
            .require(principal, organization, Permission::MembersManage)
            .await?;
        let mut v = Violations::new();
        v.check("member.user", validate::slug(user));
        let new_role = Role::parse(role).filter(|r| *r != Role::Outsider);
        if new_role.is_none() {
            v.add(
                "member.role",
                "must be one of owner, manager, admin, member, viewer, billing",
            );
        }
        v.finish()?;
        let new_role = new_role.unwrap_or(Role::Viewer);
        let txn = self.lock_memberships(&access).await?;
        let target = find_member(&txn, &access, user).await?;
        let current = stored_role(&target)?;
        if target.user_uuid == access.caller_uuid && new_role > current {
            return Err(Error::permission_denied(
                "SELF_ELEVATION",
                "nobody raises their own role",
            ));
        }
        if current == Role::Owner || new_role == Role::Owner {
            require_owner(principal, &access)?;
        }
        let now = orgplane_platform::time::now_micros();
        let updated = members::Entity::update_many()
            .col_expr(members::Column::Role, Expr::value(new_role.as_str()))
            .col_expr(members::Column::Version, Expr::value(target.version + 1))
            .col_expr(members::Column::UpdateTime, Expr::value(now))
            .filter(members::Column::Uuid.eq(target.uuid.as_str()))
            .exec_with_returning(&txn)
            .await?;
        ensure_an_owner_remains(&txn, &access).await?;
        let activity = member_activity(&access, &target, principal, action::UPDATED)
            .metadata(serde_json::json!({"from": current.as_str(), "to": new_role.as_str()}));
        self.commit_with(txn, activity).await?;
        updated
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found("member", user))
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
