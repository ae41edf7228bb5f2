//! Restrictions (Polyaxon's): access to one entity narrowed to chosen users
//! and teams. The service that owns an entity keeps its restriction —
//! organizations for projects, the registry for the model registry, the
//! component hub and each model and component — and every service judges it
//! with [`Restriction::admits`], so admission means the same everywhere.
//!
//! Owners and managers pass every restriction; below them, a caller passes
//! when listed by username or in a listed team. The organizations service's
//! `effective_role` turns a failed admission into `outsider` (the entity is
//! `NOT_FOUND`); organization-wide lists, feeds and statistics leave the
//! entity out.

use serde::{Deserialize, Serialize};

use crate::{authz::Role, validate};

/// Most users, and most teams, one restriction may list.
pub const MAX_ADMITTED: usize = 100;

/// Who reaches an entity besides owners and managers, when `restricted`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Restriction {
    /// Whether the entity is restricted.
    pub restricted: bool,
    /// Usernames admitted.
    pub users: Vec<String>,
    /// Teams whose members are admitted.
    pub teams: Vec<String>,
}

impl Restriction {
    /// Whether a restriction binds a caller of organization `role`: owners
    /// and managers pass every restriction.
    pub fn binds(role: Role) -> bool {
        role < Role::Manager
    }

    /// Whether the caller — a user known by `username` (`None` for service
    /// accounts, which no restriction lists), member of `teams` — is
    /// admitted. Callers the restriction does not bind are admitted without
    /// asking (see [`Self::binds`]).
    pub fn admits(&self, username: Option<&str>, teams: &[String]) -> bool {
        self.admits_user(username) || self.teams.iter().any(|t| teams.contains(t))
    }

    /// Whether the restriction is off or lists `username` — an answer that
    /// needs no team lookup.
    pub fn admits_user(&self, username: Option<&str>) -> bool {
        !self.restricted || username.is_some_and(|u| self.users.iter().any(|x| x == u))
    }

    /// Records what is wrong with the lists under `field` (`field.users`,
    /// `field.teams`): slugs, at most [`MAX_ADMITTED`] each. Whether the
    /// users and teams exist is the organizations service's to say.
    pub fn check(&self, v: &mut validate::Violations, field: &str) {
        let slug = |s: &String| validate::slug(s);
        v.list(&format!("{field}.users"), &self.users, MAX_ADMITTED, slug);
        v.list(&format!("{field}.teams"), &self.teams, MAX_ADMITTED, slug);
    }

    /// From the wire (absent: not restricted).
    pub fn from_proto(r: Option<orgplane_proto::common::Restriction>) -> Self {
        let r = r.unwrap_or_default();
        Self {
            restricted: r.restricted,
            users: r.users,
            teams: r.teams,
        }
    }

    /// For the wire.
    pub fn to_proto(&self) -> orgplane_proto::common::Restriction {
        orgplane_proto::common::Restriction {
            restricted: self.restricted,
            users: self.users.clone(),
            teams: self.teams.clone(),
        }
    }

    /// As stored in a text column: JSON, or `None` when not restricted.
    pub fn store(&self) -> Option<String> {
        self.restricted
            .then(|| serde_json::to_string(self).expect("a restriction serializes"))
    }

    /// From a text column written by [`Self::store`].
    pub fn load(stored: Option<&str>) -> Result<Self, crate::Error> {
        match stored {
            None | Some("") => Ok(Self::default()),
            Some(text) => serde_json::from_str(text).map_err(|err| {
                crate::Error::Internal(anyhow::anyhow!("stored restriction {text:?}: {err}"))
            }),
        }
    }
}

/// The violations of a restriction under `field` that names `users` and
/// `teams` its organization lacks.
pub fn unknown_in_restriction(
    field: &str,
    users: &[String],
    teams: &[String],
) -> validate::Violations {
    let mut v = validate::Violations::new();
    for team in teams {
        v.add(&format!("{field}.teams"), format!("no team {team}"));
    }
    for user in users {
        v.add(&format!("{field}.users"), format!("{user} is not a member"));
    }
    v
}

/// A caller restrictions bind (below `manager`), as they judge them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Viewer {
    /// A user's username; `None` for a service account.
    pub username: Option<String>,
    /// The teams the caller belongs to.
    pub teams: Vec<String>,
}

impl Viewer {
    /// Whether `restriction` admits this viewer.
    pub fn admitted_by(&self, restriction: &Restriction) -> bool {
        restriction.admits(self.username.as_deref(), &self.teams)
    }

    /// From the wire.
    pub fn from_proto(v: orgplane_proto::registry::RestrictedViewer) -> Self {
        Self {
            username: Some(v.username).filter(|u| !u.is_empty()),
            teams: v.teams,
        }
    }

    /// For the wire.
    pub fn to_proto(&self) -> orgplane_proto::registry::RestrictedViewer {
        orgplane_proto::registry::RestrictedViewer {
            username: self.username.clone().unwrap_or_default(),
            teams: self.teams.clone(),
        }
    }
}

/// What the registry's restrictions hide from one [`Viewer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HiddenEntries {
    /// The whole model registry.
    pub model_registry: bool,
    /// The whole component hub.
    pub component_hub: bool,
    /// Models hidden by their own restriction.
    pub models: Vec<String>,
    /// Components hidden by their own restriction.
    pub components: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restricted(users: &[&str], teams: &[&str]) -> Restriction {
        Restriction {
            restricted: true,
            users: users.iter().map(|s| s.to_string()).collect(),
            teams: teams.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn an_unrestricted_entity_admits_everyone() {
        assert!(Restriction::default().admits(None, &[]));
        assert!(Restriction::default().admits(Some("eve"), &[]));
    }

    #[test]
    fn a_restriction_admits_listed_users_and_members_of_listed_teams() {
        let r = restricted(&["ann"], &["ml"]);
        assert!(r.admits(Some("ann"), &[]));
        assert!(r.admits(Some("bob"), &["web".into(), "ml".into()]));
        assert!(!r.admits(Some("bob"), &["web".into()]));
        assert!(!r.admits(None, &[]), "service accounts are never listed");
        assert!(!restricted(&[], &[]).admits(Some("ann"), &["ml".into()]));
    }

    #[test]
    fn only_owners_and_managers_pass_every_restriction() {
        for role in Role::ALL {
            assert_eq!(
                Restriction::binds(role),
                !matches!(role, Role::Owner | Role::Manager),
                "{role:?}"
            );
        }
    }

    #[test]
    fn storage_round_trips_and_unrestricted_is_null() {
        assert_eq!(Restriction::default().store(), None);
        let r = restricted(&["ann"], &["ml"]);
        assert_eq!(Restriction::load(r.store().as_deref()).unwrap(), r);
        assert_eq!(Restriction::load(None).unwrap(), Restriction::default());
        assert!(Restriction::load(Some("{")).is_err());
    }

    #[test]
    fn lists_are_checked() {
        let mut v = validate::Violations::new();
        restricted(&["Not A Slug"], &[]).check(&mut v, "model.restriction");
        let too_many: Vec<String> = (0..=MAX_ADMITTED).map(|i| format!("t{i}")).collect();
        Restriction {
            restricted: true,
            users: vec![],
            teams: too_many,
        }
        .check(&mut v, "settings.restriction");
        let Err(crate::Error::InvalidArgument(violations)) = v.finish() else {
            panic!("bad lists pass");
        };
        let fields: Vec<&str> = violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["model.restriction.users", "settings.restriction.teams"]
        );
    }
}
