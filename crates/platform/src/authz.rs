//! Roles and what they may do: the one role → permission table of orgplane.
//!
//! Every public RPC of every service names the [`Permission`] it needs; the
//! organizations service answers `CheckPermission` from this table, and the
//! role matrix tests are generated from it.

use crate::{
    Error,
    principal::{Principal, SCOPE_READ, SCOPE_WRITE},
};

/// A role in an organization (Polyaxon's roles: `docs/permissions.md`),
/// strongest last among the member roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Not a member: reaches only the projects and teams it was invited to.
    Outsider,
    /// Billing and plan only.
    Billing,
    /// Reads projects, registry, hub, versions, activity within reach.
    Viewer,
    /// Creates and updates runs, model and component versions.
    Member,
    /// Creates and configures projects, registries, hubs; org analytics.
    Admin,
    /// Organization settings, members (never owners), teams, agents, queues.
    Manager,
    /// Everything, including deleting the organization and managing owners.
    Owner,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 7] = [
        Role::Owner,
        Role::Manager,
        Role::Admin,
        Role::Member,
        Role::Viewer,
        Role::Billing,
        Role::Outsider,
    ];

    /// The API string.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
            Role::Billing => "billing",
            Role::Outsider => "outsider",
        }
    }

    /// From the API string.
    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == value)
    }
}

/// What an RPC needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See the organization (its profile, not its settings).
    OrganizationRead,
    /// Change the organization's profile.
    OrganizationUpdate,
    /// Make the organization public or private.
    OrganizationVisibility,
    /// Delete the organization.
    OrganizationDelete,
    /// Read the settings: auth settings, identity providers, allowed
    /// domains, defaults.
    SettingsRead,
    /// Change settings, including auth settings.
    SettingsUpdate,
    /// List and read members.
    MembersRead,
    /// Change roles of, and remove, members other than owners; invite.
    MembersManage,
    /// Grant, revoke or remove the owner role.
    OwnersManage,
    /// Read teams.
    TeamsRead,
    /// Create and change teams and their grants.
    TeamsManage,
    /// Read projects within reach.
    ProjectsRead,
    /// Create, configure, archive and delete projects.
    ProjectsManage,
    /// Restrict a project to chosen users and teams, or lift it.
    RestrictionsManage,
    /// Read models, components and versions.
    RegistryRead,
    /// Create and update versions.
    RegistryWrite,
    /// Create and configure models and components; delete versions; promote
    /// a run to the registry (a version made from a run).
    RegistryManage,
    /// Read agents, queues and connections.
    AgentsRead,
    /// Manage agents, queues and connections.
    AgentsManage,
    /// Submit and cancel runs.
    RunsWrite,
    /// Read the organization's own activity feed and statistics (org-level
    /// analytics; a project's feed and statistics need `projects.read`).
    ActivityRead,
    /// Billing and plan.
    BillingManage,
    /// Read the organization's service accounts and their tokens.
    ServiceAccountsRead,
    /// Create, change and delete service accounts and their tokens.
    ServiceAccountsManage,
}

impl Permission {
    /// Every permission with its API string, as `CheckPermission` takes it.
    pub const NAMES: &[(Permission, &str)] = &[
        (P::OrganizationRead, "organization.read"),
        (P::OrganizationUpdate, "organization.update"),
        (P::OrganizationVisibility, "organization.visibility"),
        (P::OrganizationDelete, "organization.delete"),
        (P::SettingsRead, "settings.read"),
        (P::SettingsUpdate, "settings.update"),
        (P::MembersRead, "members.read"),
        (P::MembersManage, "members.manage"),
        (P::OwnersManage, "owners.manage"),
        (P::TeamsRead, "teams.read"),
        (P::TeamsManage, "teams.manage"),
        (P::ProjectsRead, "projects.read"),
        (P::ProjectsManage, "projects.manage"),
        (P::RestrictionsManage, "restrictions.manage"),
        (P::RegistryRead, "registry.read"),
        (P::RegistryWrite, "registry.write"),
        (P::RegistryManage, "registry.manage"),
        (P::AgentsRead, "agents.read"),
        (P::AgentsManage, "agents.manage"),
        (P::RunsWrite, "runs.write"),
        (P::ActivityRead, "activity.read"),
        (P::BillingManage, "billing.manage"),
        (P::ServiceAccountsRead, "service_accounts.read"),
        (P::ServiceAccountsManage, "service_accounts.manage"),
    ];

    /// The API string.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(p, _)| *p == self)
            .map(|(_, name)| *name)
            .unwrap_or("unknown")
    }

    /// From the API string.
    pub fn parse(value: &str) -> Option<Permission> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == value)
            .map(|(p, _)| *p)
    }

    /// Whether the permission only reads (a token's `read` scope suffices);
    /// every other one needs `write`.
    pub fn is_read(self) -> bool {
        self.as_str().ends_with(".read")
    }
}

use Permission as P;
use Role as R;

/// The table: for each permission, the roles that hold it.
pub const TABLE: &[(Permission, &[Role])] = &[
    (
        P::OrganizationRead,
        &[
            R::Owner,
            R::Manager,
            R::Admin,
            R::Member,
            R::Viewer,
            R::Billing,
        ],
    ),
    (P::OrganizationUpdate, &[R::Owner, R::Manager]),
    // Polyaxon: only the owner changes the organization's visibility.
    (P::OrganizationVisibility, &[R::Owner]),
    (P::OrganizationDelete, &[R::Owner]),
    // Polyaxon: only owners and managers reach the organization's settings
    // (identity providers and allowed domains are not for every member).
    (P::SettingsRead, &[R::Owner, R::Manager]),
    (P::SettingsUpdate, &[R::Owner, R::Manager]),
    (
        P::MembersRead,
        &[R::Owner, R::Manager, R::Admin, R::Member, R::Viewer],
    ),
    (P::MembersManage, &[R::Owner, R::Manager]),
    (P::OwnersManage, &[R::Owner]),
    (
        P::TeamsRead,
        &[R::Owner, R::Manager, R::Admin, R::Member, R::Viewer],
    ),
    (P::TeamsManage, &[R::Owner, R::Manager]),
    (
        P::ProjectsRead,
        &[R::Owner, R::Manager, R::Admin, R::Member, R::Viewer],
    ),
    (P::ProjectsManage, &[R::Owner, R::Manager, R::Admin]),
    // Polyaxon: admins configure projects, registries and hubs, their
    // restrictions included — on what they reach (a restricted entity is
    // NOT_FOUND to an admin not admitted); owners and managers reach all.
    (P::RestrictionsManage, &[R::Owner, R::Manager, R::Admin]),
    (
        P::RegistryRead,
        &[R::Owner, R::Manager, R::Admin, R::Member, R::Viewer],
    ),
    (
        P::RegistryWrite,
        &[R::Owner, R::Manager, R::Admin, R::Member],
    ),
    (P::RegistryManage, &[R::Owner, R::Manager, R::Admin]),
    (
        P::AgentsRead,
        &[R::Owner, R::Manager, R::Admin, R::Member, R::Viewer],
    ),
    (P::AgentsManage, &[R::Owner, R::Manager]),
    (P::RunsWrite, &[R::Owner, R::Manager, R::Admin, R::Member]),
    // Polyaxon: "view org-level analytics and activity logs" is admin and
    // up; viewers and members read the feeds of the projects they read.
    (P::ActivityRead, &[R::Owner, R::Manager, R::Admin]),
    (P::BillingManage, &[R::Owner, R::Billing]),
    (P::ServiceAccountsRead, &[R::Owner, R::Manager, R::Admin]),
    (P::ServiceAccountsManage, &[R::Owner, R::Manager]),
];

/// Whether `role` holds `permission`.
pub fn allows(role: Role, permission: Permission) -> bool {
    TABLE
        .iter()
        .find(|(p, _)| *p == permission)
        .is_some_and(|(_, roles)| roles.contains(&role))
}

/// The role × permission table as Markdown, as `docs/permissions.md` shows
/// it (a test keeps the two equal).
pub fn markdown_table() -> String {
    let mut out = String::from("| permission |");
    for role in Role::ALL {
        out.push_str(&format!(" {} |", role.as_str()));
    }
    out.push_str("\n|---|");
    for _ in Role::ALL {
        out.push_str(":---:|");
    }
    for (permission, _) in TABLE {
        out.push_str(&format!("\n| `{}` |", permission.as_str()));
        for role in Role::ALL {
            out.push_str(if allows(role, *permission) {
                " ✓ |"
            } else {
                " |"
            });
        }
    }
    out.push('\n');
    out
}

/// The `ErrorInfo` reasons of access denials, as `CheckPermission` passes
/// them on.
pub const DENIAL_REASONS: &[&str] = &[ROLE_TOO_WEAK, MISSING_SCOPE, PASSWORD_SIGN_IN_DISABLED];
/// The caller's role does not hold the permission.
pub const ROLE_TOO_WEAK: &str = "ROLE_TOO_WEAK";
/// The caller's token lacks the scope the permission needs.
pub const MISSING_SCOPE: &str = "MISSING_SCOPE";
/// A password session in an organization that disabled password sign-in.
pub const PASSWORD_SIGN_IN_DISABLED: &str = "PASSWORD_SIGN_IN_DISABLED";

/// The denial for `reason` (one of [`DENIAL_REASONS`]).
pub fn denial(reason: &str) -> Error {
    match DENIAL_REASONS.iter().find(|r| **r == reason) {
        Some(&PASSWORD_SIGN_IN_DISABLED) => Error::permission_denied(
            PASSWORD_SIGN_IN_DISABLED,
            "this organization requires signing in with its identity provider",
        ),
        Some(known) => Error::permission_denied(known, "the caller may not do this here"),
        None => Error::permission_denied("PERMISSION_DENIED", "the caller may not do this here"),
    }
}

/// `PERMISSION_DENIED` unless `role` holds `permission` and the caller's
/// token the scope it needs (`read` for reads, `write` for the rest). Every
/// service decides through this one function.
pub fn check(principal: &Principal, role: Role, permission: Permission) -> Result<(), Error> {
    let scope = if permission.is_read() {
        SCOPE_READ
    } else {
        SCOPE_WRITE
    };
    if !principal.has_scope(scope) {
        return Err(Error::permission_denied(
            MISSING_SCOPE,
            format!("the token lacks the {scope:?} scope"),
        ));
    }
    if !allows(role, permission) {
        return Err(Error::permission_denied(
            ROLE_TOO_WEAK,
            format!("the {} role may not {}", role.as_str(), permission.as_str()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_the_table_is_complete() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admiral"), None);
        assert!(allows(Role::Owner, Permission::OrganizationDelete));
        assert!(!allows(Role::Manager, Permission::OrganizationDelete));
        assert!(!allows(Role::Manager, Permission::OwnersManage));
        assert!(allows(Role::Billing, Permission::BillingManage));
        assert!(!allows(Role::Billing, Permission::ProjectsRead));
        assert!(!allows(Role::Outsider, Permission::OrganizationRead));
        for (permission, roles) in TABLE {
            assert!(roles.contains(&Role::Owner), "owners may do everything");
            assert_eq!(Permission::parse(permission.as_str()), Some(*permission));
        }
        assert_eq!(TABLE.len(), Permission::NAMES.len());
    }

    /// `docs/permissions.md` shows [`TABLE`] between its markers; run with
    /// `ORGPLANE_WRITE_DOCS=1` to rewrite it after changing the table.
    #[test]
    fn the_permissions_document_shows_the_table() {
        const START: &str = "<!-- generated from platform::authz::TABLE -->\n";
        const END: &str = "<!-- end of the generated table -->";
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/permissions.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (head, rest) = doc.split_once(START).expect("the start marker");
        let (shown, tail) = rest.split_once(END).expect("the end marker");
        let table = markdown_table();
        if shown != table && std::env::var_os("ORGPLANE_WRITE_DOCS").is_some() {
            std::fs::write(&path, format!("{head}{START}{table}{END}{tail}")).unwrap();
            return;
        }
        assert_eq!(
            shown, table,
            "docs/permissions.md is out of date: run ORGPLANE_WRITE_DOCS=1 cargo test -p orgplane-platform"
        );
    }
}
