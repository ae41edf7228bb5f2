//! Invitations, and joining open organizations.
//!
//! An invitation carries a single-use token that expires (7 days by
//! default); the token goes to the caller once and to the delivery outbox.
//! Resending issues a new token and the old one dies. Only a signed-in user
//! whose email is the invited one can accept. `JoinOrganization` admits
//! users whose verified email is in an allowed domain of an organization
//! that is not invite-only, with its default role; to anyone else the
//! organization does not exist.

use std::time::Duration;

use orgplane_platform::{
    Error,
    authz::{Permission, Role},
    outbox,
    page::{KeyPart, OrderBy, PageRequest, like_prefix, parse_filter},
    principal::{Principal, PrincipalKind, SCOPE_WRITE},
    secrets,
    time::{add, now_micros},
    validate::{self, Violations},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, Set, TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use super::{Organizations, access::check};
use crate::storage::{invitations, members, organizations};

/// How long an invitation token lives.
pub const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationState {
    /// Waiting.
    Pending,
    /// Accepted.
    Accepted,
    /// Revoked.
    Revoked,
    /// Pending past its expiry.
    Expired,
}

/// The state of a row now.
pub fn state_of(row: &invitations::Model, now: i64) -> InvitationState {
    match row.state.as_str() {
        "accepted" => InvitationState::Accepted,
        "revoked" => InvitationState::Revoked,
        _ if row.expire_time <= now => InvitationState::Expired,
        _ => InvitationState::Pending,
    }
}

/// One page of invitations.
#[derive(Debug, Clone)]
pub struct InvitationPage {
    /// The invitations.
    pub invitations: Vec<invitations::Model>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
    /// Matches in all.
    pub total_size: u64,
}

fn require_user_writer(principal: &Principal) -> Result<(), Error> {
    if principal.kind != PrincipalKind::User || !principal.has_scope(SCOPE_WRITE) {
        return Err(Error::permission_denied(
            "USER_WRITE_REQUIRED",
            "this needs a user's write-scoped token",
        ));
    }
    Ok(())
}

async fn insert_member(
    db: &impl ConnectionTrait,
    organization_uuid: &str,
    principal: &Principal,
    role: &str,
) -> Result<members::Model, Error> {
    let now = now_micros();
    members::ActiveModel {
        uuid: Set(uuid::Uuid::now_v7().to_string()),
        organization_uuid: Set(organization_uuid.to_owned()),
        user_uuid: Set(principal.uuid.clone()),
        username: Set(principal.name.clone()),
        role: Set(role.to_owned()),
        version: Set(1),
        create_time: Set(now),
        update_time: Set(now),
    }
    .insert(db)
    .await
    .map_err(|err| match Error::from_db(err, "member", &principal.name) {
        Error::AlreadyExists { .. } => Error::precondition(
            "ALREADY_MEMBER",
            "you are already a member of this organization",
        ),
        other => other,
    })
}

impl Organizations {
    /// Invites `email` with `role`; returns the invitation and its token.
    pub async fn create_invitation(
        &self,
        principal: &Principal,
        organization: &str,
        email: &str,
        role: &str,
    ) -> Result<(invitations::Model, String), Error> {
        let access = self
            .require(principal, organization, Permission::MembersManage)
            .await?;
        let email = email.trim().to_lowercase();
        let mut v = Violations::new();
        v.check("invitation.email", validate::email(&email));
        let role_parsed = Role::parse(role);
        match role_parsed {
            None => v.add("invitation.role", "is not a role"),
            Some(Role::Outsider) => v.add(
                "invitation.role",
                "outsider invitations (to chosen projects or teams) are not supported yet",
            ),
            Some(_) => {}
        }
        v.finish()?;
        if role_parsed == Some(Role::Owner) {
            check(principal, access.role, Permission::OwnersManage).map_err(|_| {
                Error::permission_denied("OWNER_REQUIRED", "only owners invite owners")
            })?;
        }
        let now = now_micros();
        let pending = invitations::Entity::find()
            .filter(invitations::Column::OrganizationUuid.eq(access.organization.uuid.as_str()))
            .filter(invitations::Column::Email.eq(email.as_str()))
            .filter(invitations::Column::State.eq("pending"))
            .filter(invitations::Column::ExpireTime.gt(now))
            .count(&self.db)
            .await?;
        if pending > 0 {
            return Err(Error::already_exists("invitation", &email));
        }
        let token = secrets::generate(secrets::INVITATION_PREFIX);
        let txn = self.db.begin().await?;
        let row = invitations::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            organization_uuid: Set(access.organization.uuid.clone()),
            email: Set(email.clone()),
            role: Set(role.to_owned()),
            state: Set("pending".into()),
            inviter: Set(principal.name.clone()),
            token_hash: Set(secrets::hash(&token)),
            expire_time: Set(add(now, INVITATION_TTL)),
            create_time: Set(now),
            update_time: Set(now),
        }
        .insert(&txn)
        .await?;
        outbox::enqueue(
            &txn,
            "invitation",
            &email,
            serde_json::json!({
                "organization": access.organization.name,
                "inviter": principal.name,
                "role": role,
                "token": token,
            }),
        )
        .await?;
        txn.commit().await?;
        Ok((row, token))
    }

    /// An organization's invitations, filtered by `state:` and `email:`.
    pub async fn list_invitations(
        &self,
        principal: &Principal,
        organization: &str,
        page_size: i32,
        page_token: &str,
        filter: &str,
        order_by: &str,
    ) -> Result<InvitationPage, Error> {
        let access = self
            .require(principal, organization, Permission::MembersManage)
            .await?;
        let order = OrderBy::parse(order_by, &["create_time", "email"])?;
        let terms = parse_filter(filter, &["state", "email"])?;
        let page = PageRequest::parse(page_size, page_token, &format!("{filter}|{order_by}"))?;
        let now = now_micros();
        let mut condition = Condition::all()
            .add(invitations::Column::OrganizationUuid.eq(access.organization.uuid.as_str()));
        for (key, value) in &terms {
            condition = match (*key, *value) {
                ("email", prefix) => condition.add(
                    Expr::col(invitations::Column::Email)
                        .like(LikeExpr::new(like_prefix(&prefix.to_lowercase())).escape('\\')),
                ),
                (_, "pending") => condition
                    .add(invitations::Column::State.eq("pending"))
                    .add(invitations::Column::ExpireTime.gt(now)),
                (_, "expired") => condition
                    .add(invitations::Column::State.eq("pending"))
                    .add(invitations::Column::ExpireTime.lte(now)),
                (_, state @ ("accepted" | "revoked")) => {
                    condition.add(invitations::Column::State.eq(state))
                }
                _ => {
                    return Err(Error::invalid(
                        "filter",
                        "state is pending, accepted, revoked or expired",
                    ));
                }
            };
        }
        let total_size = invitations::Entity::find()
            .filter(condition.clone())
            .count(&self.db)
            .await?;
        let (columns, parts): (Vec<invitations::Column>, &[KeyPart]) = match order.field {
            "email" => (
                vec![invitations::Column::Email, invitations::Column::Uuid],
                &[KeyPart::Text, KeyPart::Text],
            ),
            // UUIDv7 orders by creation time.
            _ => (vec![invitations::Column::Uuid], &[KeyPart::Text]),
        };
        let rows = page
            .apply(
                invitations::Entity::find().filter(condition),
                &columns,
                parts,
                order.descending,
            )?
            .all(&self.db)
            .await?;
        let (invitations, next_page_token) = page.finish(rows, |i| match order.field {
            "email" => vec![i.email.clone(), i.uuid.clone()],
            _ => vec![i.uuid.clone()],
        });
        Ok(InvitationPage {
            invitations,
            next_page_token,
            total_size,
        })
    }

    async fn pending_invitation(
        &self,
        principal: &Principal,
        organization: &str,
        uuid: &str,
    ) -> Result<(super::access::Access, invitations::Model), Error> {
        let access = self
            .require(principal, organization, Permission::MembersManage)
            .await?;
        let row = invitations::Entity::find_by_id(uuid.to_owned())
            .filter(invitations::Column::OrganizationUuid.eq(access.organization.uuid.as_str()))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("invitation", uuid))?;
        match state_of(&row, now_micros()) {
            InvitationState::Pending | InvitationState::Expired => Ok((access, row)),
            InvitationState::Accepted => Err(Error::precondition(
                "INVITATION_ACCEPTED",
                "the invitation was accepted already",
            )),
            InvitationState::Revoked => Err(Error::precondition(
                "INVITATION_REVOKED",
                "the invitation was revoked",
            )),
        }
    }

    /// Issues a new token (and expiry) for an unaccepted invitation.
    pub async fn resend_invitation(
        &self,
        principal: &Principal,
        organization: &str,
        uuid: &str,
    ) -> Result<(invitations::Model, String), Error> {
        let (access, row) = self
            .pending_invitation(principal, organization, uuid)
            .await?;
        let token = secrets::generate(secrets::INVITATION_PREFIX);
        let now = now_micros();
        let txn = self.db.begin().await?;
        let updated = invitations::Entity::update_many()
            .col_expr(
                invitations::Column::TokenHash,
                Expr::value(secrets::hash(&token)),
            )
            .col_expr(
                invitations::Column::ExpireTime,
                Expr::value(add(now, INVITATION_TTL)),
            )
            .col_expr(invitations::Column::UpdateTime, Expr::value(now))
            .filter(invitations::Column::Uuid.eq(row.uuid.as_str()))
            .filter(invitations::Column::State.eq("pending"))
            .exec_with_returning(&txn)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found("invitation", uuid))?;
        outbox::enqueue(
            &txn,
            "invitation",
            &row.email,
            serde_json::json!({
                "organization": access.organization.name,
                "inviter": principal.name,
                "role": row.role,
                "token": token,
            }),
        )
        .await?;
        txn.commit().await?;
        Ok((updated, token))
    }

    /// Revokes an unaccepted invitation.
    pub async fn revoke_invitation(
        &self,
        principal: &Principal,
        organization: &str,
        uuid: &str,
    ) -> Result<(), Error> {
        let (_, row) = self
            .pending_invitation(principal, organization, uuid)
            .await?;
        invitations::Entity::update_many()
            .col_expr(invitations::Column::State, Expr::value("revoked"))
            .col_expr(invitations::Column::UpdateTime, Expr::value(now_micros()))
            .filter(invitations::Column::Uuid.eq(row.uuid.as_str()))
            .filter(invitations::Column::State.eq("pending"))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Accepts an invitation by its token, as the user whose email it names.
    /// Returns the organization's name and the new membership.
    pub async fn accept_invitation(
        &self,
        principal: &Principal,
        token: &str,
    ) -> Result<(String, members::Model), Error> {
        require_user_writer(principal)?;
        let mut v = Violations::new();
        v.check("token", validate::required(token, 200));
        v.finish()?;
        let row = invitations::Entity::find()
            .filter(invitations::Column::TokenHash.eq(secrets::hash(token)))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("invitation", "with this token"))?;
        match state_of(&row, now_micros()) {
            InvitationState::Pending => {}
            InvitationState::Expired => {
                return Err(Error::precondition(
                    "INVITATION_EXPIRED",
                    "the invitation expired: ask for it to be resent",
                ));
            }
            InvitationState::Accepted => {
                return Err(Error::precondition(
                    "INVITATION_ACCEPTED",
                    "the invitation was used",
                ));
            }
            InvitationState::Revoked => {
                return Err(Error::precondition(
                    "INVITATION_REVOKED",
                    "the invitation was revoked",
                ));
            }
        }
        if !principal.email.eq_ignore_ascii_case(&row.email) {
            return Err(Error::permission_denied(
                "EMAIL_MISMATCH",
                "the invitation is for another email address",
            ));
        }
        let org = organizations::Entity::find_by_id(row.organization_uuid.clone())
            .filter(organizations::Column::DeleteTime.is_null())
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("invitation", "with this token"))?;
        let txn = self.db.begin().await?;
        let spent = invitations::Entity::update_many()
            .col_expr(invitations::Column::State, Expr::value("accepted"))
            .col_expr(invitations::Column::UpdateTime, Expr::value(now_micros()))
            .filter(invitations::Column::Uuid.eq(row.uuid.as_str()))
            .filter(invitations::Column::State.eq("pending"))
            .exec(&txn)
            .await?;
        if spent.rows_affected != 1 {
            return Err(Error::precondition(
                "INVITATION_ACCEPTED",
                "the invitation was used",
            ));
        }
        let member = insert_member(&txn, &org.uuid, principal, &row.role).await?;
        txn.commit().await?;
        Ok((org.name, member))
    }

    /// Joins an open organization with its default role.
    pub async fn join_organization(
        &self,
        principal: &Principal,
        organization: &str,
    ) -> Result<members::Model, Error> {
        require_user_writer(principal)?;
        let mut v = Violations::new();
        v.check("organization", validate::slug(organization));
        v.finish()?;
        let not_found = || Error::not_found("organization", organization);
        let org = organizations::Entity::find()
            .filter(organizations::Column::Name.eq(organization))
            .filter(organizations::Column::DeleteTime.is_null())
            .one(&self.db)
            .await?
            .ok_or_else(not_found)?;
        let settings = self.settings_of_org(&org.uuid).await?;
        let domain = principal
            .email
            .rsplit_once('@')
            .map(|(_, d)| d.to_lowercase());
        let admitted = !settings.auth.invite_only
            && principal.email_verified
            && domain.is_some_and(|d| settings.auth.allowed_email_domains.contains(&d));
        if !admitted {
            // Invite-only and closed organizations do not exist for you.
            return Err(not_found());
        }
        insert_member(
            &self.db,
            &org.uuid,
            principal,
            settings.default_role.as_str(),
        )
        .await
    }
}
