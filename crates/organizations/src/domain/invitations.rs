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
    principal::{Principal, PrincipalKind, SCOPE_WRITE},
    secrets,
    time::{add, now_micros},
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::{Activity, action},
    outbox,
    page::{KeyPart, ListQuery, Page, keyed_page, like_prefix},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, Set, TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use super::{
    Organizations,
    access::{Access, check},
};
use crate::storage::{grants, invitations, members, organizations, projects, teams};

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

/// An invitation as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewInvitation {
    /// The address invited.
    pub email: String,
    /// The role given on acceptance.
    pub role: String,
    /// For `outsider`: slugs of the projects granted (with the `member` team
    /// role: they may create and update runs there).
    pub projects: Vec<String>,
    /// For `outsider`: slugs of the teams joined (as team `member`s).
    pub teams: Vec<String>,
}

/// The team role an outsider invitation grants on its projects and teams.
pub const OUTSIDER_GRANT_ROLE: Role = Role::Member;

/// Slugs as stored: space-separated.
pub fn slugs_of(stored: &str) -> Vec<String> {
    stored.split_whitespace().map(str::to_owned).collect()
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
    /// Invites `new.email` with `new.role` (an outsider to chosen projects
    /// and teams); returns the invitation and its token.
    pub async fn create_invitation(
        &self,
        principal: &Principal,
        organization: &str,
        new: NewInvitation,
    ) -> Result<(invitations::Model, String), Error> {
        let access = self
            .require(principal, organization, Permission::MembersManage)
            .await?;
        let email = new.email.trim().to_lowercase();
        let role = new.role.as_str();
        let mut v = Violations::new();
        v.check("invitation.email", validate::email(&email));
        let role_parsed = Role::parse(role);
        if role_parsed.is_none() {
            v.add("invitation.role", "is not a role");
        }
        let outsider = role_parsed == Some(Role::Outsider);
        if outsider && new.projects.is_empty() && new.teams.is_empty() {
            v.add(
                "invitation.projects",
                "an outsider invitation names at least one project or team",
            );
        }
        for (field, names) in [
            ("invitation.projects", &new.projects),
            ("invitation.teams", &new.teams),
        ] {
            if !outsider && !names.is_empty() {
                v.add(field, "only outsider invitations name projects or teams");
            }
            if names.len() > 100 {
                v.add(field, "at most 100");
            }
            for name in names {
                v.check(field, validate::slug(name));
            }
        }
        v.finish()?;
        if outsider {
            self.require_reachable(&access, &new.projects, &new.teams)
                .await?;
        }
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
            projects: Set(new.projects.join(" ")),
            teams: Set(new.teams.join(" ")),
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
                "projects": new.projects,
                "teams": new.teams,
                "token": token,
            }),
            add(now, INVITATION_TTL),
        )
        .await?;
        let activity = invitation_activity(&row, principal, action::CREATED).metadata(
            serde_json::json!({"role": row.role, "projects": new.projects, "teams": new.teams}),
        );
        self.commit_with(txn, activity).await?;
        Ok((row, token))
    }

    /// `INVALID_ARGUMENT` naming every project or team that does not exist.
    async fn require_reachable(
        &self,
        access: &Access,
        project_names: &[String],
        team_names: &[String],
    ) -> Result<(), Error> {
        let org = access.organization.uuid.as_str();
        let found_projects: Vec<String> = projects::Entity::find()
            .filter(projects::Column::OrganizationUuid.eq(org))
            .filter(projects::Column::Name.is_in(project_names.to_vec()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|p| p.name)
            .collect();
        let found_teams: Vec<String> = teams::team::Entity::find()
            .filter(teams::team::Column::OrganizationUuid.eq(org))
            .filter(teams::team::Column::Name.is_in(team_names.to_vec()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        let mut v = Violations::new();
        for name in project_names.iter().filter(|n| !found_projects.contains(n)) {
            v.add(
                "invitation.projects",
                format!("no project is named {name:?}"),
            );
        }
        for name in team_names.iter().filter(|n| !found_teams.contains(n)) {
            v.add("invitation.teams", format!("no team is named {name:?}"));
        }
        v.finish()
    }

    /// An organization's invitations, filtered by `state:` and `email:`.
    pub async fn list_invitations(
        &self,
        principal: &Principal,
        organization: &str,
        query: &ListQuery,
    ) -> Result<Page<invitations::Model>, Error> {
        let access = self
            .require(principal, organization, Permission::MembersManage)
            .await?;
        let order = query.order(&["create_time", "email"])?;
        let terms = query.terms(&["state", "email"])?;
        let page = query.page("")?;
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
        let (columns, parts): (Vec<invitations::Column>, &[KeyPart]) = match order.field {
            "email" => (
                vec![invitations::Column::Email, invitations::Column::Uuid],
                &[KeyPart::Text, KeyPart::Text],
            ),
            // UUIDv7 orders by creation time.
            _ => (vec![invitations::Column::Uuid], &[KeyPart::Text]),
        };
        keyed_page(
            &self.db,
            &page,
            invitations::Entity::find().filter(condition),
            &columns,
            parts,
            order.descending,
            |i| match order.field {
                "email" => vec![i.email.clone(), i.uuid.clone()],
                _ => vec![i.uuid.clone()],
            },
        )
        .await
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
            updated.expire_time,
        )
        .await?;
        self.commit_with(txn, invitation_activity(&updated, principal, "resent"))
            .await?;
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
        let txn = self.db.begin().await?;
        invitations::Entity::update_many()
            .col_expr(invitations::Column::State, Expr::value("revoked"))
            .col_expr(invitations::Column::UpdateTime, Expr::value(now_micros()))
            .filter(invitations::Column::Uuid.eq(row.uuid.as_str()))
            .filter(invitations::Column::State.eq("pending"))
            .exec(&txn)
            .await?;
        self.commit_with(txn, invitation_activity(&row, principal, "revoked"))
            .await
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
        // Holding a token that was sent to the address proves the mailbox:
        // identity marks it verified first, outside the transaction below
        // (no transaction is held across a call to another service; if the
        // acceptance then fails, the address is proven all the same).
        if let Some(identity) = &self.identity {
            identity
                .mark_email_verified(&principal.uuid, &row.email)
                .await?;
        }
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
        self.grant_reach(&txn, &member, &row).await?;
        let activity = invitation_activity(&row, principal, "accepted")
            .metadata(serde_json::json!({"member": member.username, "role": member.role}));
        self.commit_with(txn, activity).await?;
        Ok((org.name, member))
    }

    /// Gives an accepted outsider invitation's reach: the `member` team role
    /// on its projects and membership of its teams (those that still exist).
    async fn grant_reach(
        &self,
        txn: &DatabaseTransaction,
        member: &members::Model,
        invitation: &invitations::Model,
    ) -> Result<(), Error> {
        let now = now_micros();
        let role = OUTSIDER_GRANT_ROLE.as_str();
        let existing_projects = projects::Entity::find()
            .filter(projects::Column::OrganizationUuid.eq(member.organization_uuid.as_str()))
            .filter(projects::Column::Name.is_in(slugs_of(&invitation.projects)))
            .all(txn)
            .await?;
        for project in existing_projects {
            grants::member::ActiveModel {
                uuid: Set(uuid::Uuid::now_v7().to_string()),
                member_uuid: Set(member.uuid.clone()),
                organization_uuid: Set(member.organization_uuid.clone()),
                kind: Set("project".into()),
                name: Set(project.name),
                role: Set(role.into()),
                create_time: Set(now),
            }
            .insert(txn)
            .await?;
        }
        let existing_teams = teams::team::Entity::find()
            .filter(teams::team::Column::OrganizationUuid.eq(member.organization_uuid.as_str()))
            .filter(teams::team::Column::Name.is_in(slugs_of(&invitation.teams)))
            .all(txn)
            .await?;
        for team in existing_teams {
            teams::member::ActiveModel {
                uuid: Set(uuid::Uuid::now_v7().to_string()),
                team_uuid: Set(team.uuid),
                organization_uuid: Set(member.organization_uuid.clone()),
                user_uuid: Set(member.user_uuid.clone()),
                username: Set(member.username.clone()),
                role: Set(role.into()),
                create_time: Set(now),
            }
            .insert(txn)
            .await?;
        }
        Ok(())
    }

    /// Joins an open organization with its default role.
    pub async fn join_organization(
        &self,
        principal: &Principal,
        organization: &str,
    ) -> Result<members::Model, Error> {
        require_user_writer(principal)?;
        let not_found = || Error::not_found("organization", organization);
        let org = self
            .live_organization(organization)
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
        let txn = self.db.begin().await?;
        let member =
            insert_member(&txn, &org.uuid, principal, settings.default_role.as_str()).await?;
        self.commit_with(txn, joined_activity(&org.uuid, &member, principal))
            .await?;
        Ok(member)
    }
}

/// What `actor` did to an invitation (named by the address it went to).
fn invitation_activity(
    invitation: &invitations::Model,
    actor: &Principal,
    action: &str,
) -> Activity {
    Activity::new(
        &invitation.organization_uuid,
        actor,
        action,
        "invitation",
        &invitation.email,
    )
    .subject_uuid(&invitation.uuid)
}

/// A user joined an organization on their own (open sign-up or SSO).
pub(crate) fn joined_activity(
    organization_uuid: &str,
    member: &members::Model,
    actor: &Principal,
) -> Activity {
    Activity::new(
        organization_uuid,
        actor,
        "joined",
        "member",
        &member.username,
    )
    .subject_uuid(&member.uuid)
    .metadata(serde_json::json!({"role": member.role}))
}
