//! Access: the caller's role in an organization, checked against the
//! permission table. An organization the caller does not belong to is
//! `NOT_FOUND` (its existence is not leaked); a member who lacks the
//! permission gets `PERMISSION_DENIED`.

use orgplane_platform::{
    Error,
    authz::{Permission, Role, allows},
    principal::{Principal, PrincipalKind, SCOPE_READ, SCOPE_WRITE},
    validate,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::Organizations;
use crate::storage::{members, organizations};

/// A caller's standing in one organization.
#[derive(Debug, Clone)]
pub struct Access {
    /// The organization.
    pub organization: organizations::Model,
    /// The caller's membership.
    pub member: members::Model,
    /// The caller's role.
    pub role: Role,
}

/// The answer of `CheckPermission`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The organization exists and the caller may see it.
    pub visible: bool,
    /// The action is allowed.
    pub allowed: bool,
    /// The caller's role, when visible.
    pub role: Option<Role>,
    /// The organization's UUID, when visible.
    pub organization_uuid: Option<String>,
}

impl Organizations {
    /// The caller's access to `organization`, or `NOT_FOUND`.
    pub async fn access(&self, principal: &Principal, organization: &str) -> Result<Access, Error> {
        let mut v = validate::Violations::new();
        v.check("organization", validate::slug(organization));
        v.finish()?;
        let not_found = || Error::not_found("organization", organization);
        if principal.kind != PrincipalKind::User {
            return Err(not_found());
        }
        let Some((org, Some(member))) = organizations::Entity::find()
            .filter(organizations::Column::Name.eq(organization))
            .filter(organizations::Column::DeleteTime.is_null())
            .find_also_related(members::Entity)
            .filter(members::Column::UserUuid.eq(principal.uuid.as_str()))
            .one(&self.db)
            .await?
        else {
            return Err(not_found());
        };
        let role = Role::parse(&member.role)
            .ok_or_else(|| anyhow::anyhow!("stored role {:?} is unknown", member.role))?;
        if role == Role::Outsider {
            return Err(not_found());
        }
        Ok(Access {
            organization: org,
            member,
            role,
        })
    }

    /// The caller's access, if they hold `permission` (and their token the
    /// matching scope).
    pub async fn require(
        &self,
        principal: &Principal,
        organization: &str,
        permission: Permission,
    ) -> Result<Access, Error> {
        let access = self.access(principal, organization).await?;
        check(principal, access.role, permission)?;
        Ok(access)
    }

    /// Answers "may `principal` do `permission` in `organization` (on this
    /// entity, through team grants)?" for the other services.
    pub async fn check_permission(
        &self,
        principal: &Principal,
        organization: &str,
        permission: &str,
        entity: Option<(&str, &str)>,
    ) -> Result<Decision, Error> {
        let permission = Permission::parse(permission)
            .ok_or_else(|| Error::invalid("permission", "is not a known permission"))?;
        match self.access(principal, organization).await {
            Ok(access) => {
                let role = match entity {
                    Some((kind, name)) => self.effective_role(&access, kind, name).await?,
                    None => access.role,
                };
                Ok(Decision {
                    visible: true,
                    allowed: check(principal, role, permission).is_ok(),
                    role: Some(role),
                    organization_uuid: Some(access.organization.uuid),
                })
            }
            Err(Error::NotFound { .. }) => Ok(Decision {
                visible: false,
                allowed: false,
                role: None,
                organization_uuid: None,
            }),
            Err(other) => Err(other),
        }
    }
}

/// `PERMISSION_DENIED` unless `role` holds `permission` and the token the
/// scope it needs.
pub fn check(principal: &Principal, role: Role, permission: Permission) -> Result<(), Error> {
    let scope = if permission.is_read() {
        SCOPE_READ
    } else {
        SCOPE_WRITE
    };
    if !principal.has_scope(scope) {
        return Err(Error::permission_denied(
            "MISSING_SCOPE",
            format!("the token lacks the {scope:?} scope"),
        ));
    }
    if !allows(role, permission) {
        return Err(Error::permission_denied(
            "ROLE_TOO_WEAK",
            format!("the {} role may not {}", role.as_str(), permission.as_str()),
        ));
    }
    Ok(())
}
