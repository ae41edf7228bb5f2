//! What the organizations service answers the other services beyond
//! `CheckPermission`: the deletions they purge from, the sign-in of users
//! through an organization's identity provider, and where a project's runs
//! may go.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use orgplane_platform::{
    Error,
    authz::Role,
    principal::{Principal, PrincipalKind},
    time::now_micros,
};
use orgplane_transport::peers::RunRouting;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Organizations, projects::settings_of, settings::AuthProvider};
use crate::storage::{deleted_organizations, invitations, projects};

/// Most deletions per `ListDeletedOrganizations` page.
const MAX_DELETIONS_PAGE: u64 = 1000;
/// Deletions per page when the caller does not say.
const DEFAULT_DELETIONS_PAGE: u64 = 100;

/// What `AdmitExternalUser` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// A member (or just added, when `joined`) with this role.
    Member {
        /// The role.
        role: Role,
        /// Added by this call.
        joined: bool,
    },
    /// Not a member, but a pending invitation awaits acceptance.
    Invited,
    /// Neither.
    Refused,
}

fn encode_cursor(delete_time: i64, uuid: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{delete_time}/{uuid}"))
}

fn decode_cursor(token: &str) -> Result<Option<(i64, String)>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid("page_token", "is not a valid page token");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (time, uuid) = text.split_once('/').ok_or_else(bad)?;
    Ok(Some((time.parse().map_err(|_| bad())?, uuid.to_owned())))
}

impl Organizations {
    /// Where the runs of `project` in the organization `organization_uuid`
    /// go (the caller has authorized the submitter already).
    pub async fn run_routing(
        &self,
        organization_uuid: &str,
        project: &str,
    ) -> Result<RunRouting, Error> {
        let row = projects::Entity::find()
            .filter(projects::Column::OrganizationUuid.eq(organization_uuid))
            .filter(projects::Column::Name.eq(project))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("project", project))?;
        let settings = settings_of(&row)?;
        let organization = self.settings_of_org(organization_uuid).await?;
        Ok(RunRouting {
            project_uuid: row.uuid,
            archived: row.archived,
            project_default_queue: settings.default_queue,
            organization_default_queue: organization.default_queue,
            allowed_agents: settings.allowed_agents,
            allowed_queues: settings.allowed_queues,
            allowed_connections: settings.connections,
        })
    }

    /// Deletions after `page_token`, oldest first, and where to continue
    /// (the same token when nothing is new).
    pub async fn list_deleted_organizations(
        &self,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<deleted_organizations::Model>, String), Error> {
        let size = match page_size {
            0 => DEFAULT_DELETIONS_PAGE,
            n if n < 0 => return Err(Error::invalid("page_size", "must not be negative")),
            n => (n as u64).min(MAX_DELETIONS_PAGE),
        };
        let cursor = decode_cursor(page_token)?;
        let mut query = deleted_organizations::Entity::find();
        if let Some((time, uuid)) = &cursor {
            use deleted_organizations::Column as C;
            query = query.filter(
                sea_orm::Condition::any().add(C::DeleteTime.gt(*time)).add(
                    sea_orm::Condition::all()
                        .add(C::DeleteTime.eq(*time))
                        .add(C::Uuid.gt(uuid.as_str())),
                ),
            );
        }
        let rows = query
            .order_by_asc(deleted_organizations::Column::DeleteTime)
            .order_by_asc(deleted_organizations::Column::Uuid)
            .limit(size)
            .all(&self.db)
            .await?;
        let next = match rows.last() {
            Some(last) => encode_cursor(last.delete_time, &last.uuid),
            None => page_token.to_owned(),
        };
        Ok((rows, next))
    }

    /// The enabled OIDC providers of a live organization (none for an
    /// unknown or deleted one).
    pub async fn external_providers(&self, organization: &str) -> Result<Vec<AuthProvider>, Error> {
        let Some(org) = self.live_organization(organization).await? else {
            return Ok(Vec::new());
        };
        let settings = self.settings_of_org(&org.uuid).await?;
        Ok(settings
            .auth
            .providers
            .into_iter()
            .filter(|p| p.enabled)
            .collect())
    }

    /// Admits a user whom an identity provider of `organization` vouched for:
    /// a member stays as they are; an open organization takes a verified
    /// address of an allowed domain with its default role; an invited user
    /// is told to accept their invitation.
    pub async fn admit_external_user(
        &self,
        principal: &Principal,
        organization: &str,
    ) -> Result<Admission, Error> {
        if principal.kind != PrincipalKind::User {
            return Err(Error::invalid("principal", "must be a user"));
        }
        match self.membership(principal, organization).await {
            Ok(access) => {
                return Ok(Admission::Member {
                    role: access.role,
                    joined: false,
                });
            }
            Err(Error::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
        match self.join_organization(principal, organization).await {
            Ok(member) => {
                let role = Role::parse(&member.role)
                    .ok_or_else(|| anyhow::anyhow!("stored role {:?} is unknown", member.role))?;
                return Ok(Admission::Member { role, joined: true });
            }
            Err(Error::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
        let Some(org) = self.live_organization(organization).await? else {
            return Ok(Admission::Refused);
        };
        let pending = invitations::Entity::find()
            .filter(invitations::Column::OrganizationUuid.eq(org.uuid.as_str()))
            .filter(invitations::Column::Email.eq(principal.email.to_lowercase()))
            .filter(invitations::Column::State.eq("pending"))
            .filter(invitations::Column::ExpireTime.gt(now_micros()))
            .count(&self.db)
            .await?;
        Ok(if pending > 0 {
            Admission::Invited
        } else {
            Admission::Refused
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let token = encode_cursor(1_700_000_000_000_000, "0190-abc");
        assert_eq!(
            decode_cursor(&token).unwrap(),
            Some((1_700_000_000_000_000, "0190-abc".to_owned()))
        );
        assert_eq!(decode_cursor("").unwrap(), None);
        assert!(decode_cursor("!!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("x/y")).is_err());
    }
}
