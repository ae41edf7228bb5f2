//! Who is calling: the principal the gateway established from a bearer token,
//! carried to backends in the `x-orgplane-principal-bin` metadata.

use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use orgplane_proto::common;
use prost::Message;

use crate::authz::Role;

/// Metadata key of the encoded principal (binary metadata: base64 on the wire).
pub const PRINCIPAL_METADATA: &str = "x-orgplane-principal-bin";

/// The scope that grants every scope.
pub const SCOPE_ALL: &str = "*";
/// Scope of read-only methods.
pub const SCOPE_READ: &str = "read";
/// Scope of methods that change data.
pub const SCOPE_WRITE: &str = "write";
/// Scope of instance administration.
pub const SCOPE_ADMIN: &str = "admin";

/// `auth_method` of a session opened with a password.
pub const AUTH_PASSWORD: &str = "password";
/// `auth_method` of a session opened with an identity provider's ID token.
pub const AUTH_OIDC: &str = "oidc";

/// Kinds of callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A person.
    User,
    /// A service account of an organization.
    ServiceAccount,
    /// An agent of an organization.
    Agent,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What kind of caller.
    pub kind: PrincipalKind,
    /// UUID of the user, service account or agent.
    pub uuid: String,
    /// Username, or the account's or agent's name.
    pub name: String,
    /// Scopes of the credential used.
    pub scopes: Vec<String>,
    /// Instance administrator.
    pub instance_admin: bool,
    /// UUID of the token used.
    pub token_uuid: String,
    /// Organization of a service account or agent.
    pub organization: Option<String>,
    /// A user's email (lowercase); empty for other kinds.
    pub email: String,
    /// Whether that email is verified.
    pub email_verified: bool,
    /// A service account's role in its organization.
    pub role: Option<Role>,
    /// UUID of the organization of a service account or agent.
    pub organization_uuid: Option<String>,
    /// How a user's session was opened ([`AUTH_PASSWORD`], [`AUTH_OIDC`]);
    /// empty for other credentials.
    pub auth_method: String,
}

impl Principal {
    /// Whether the credential carries `scope` (or every scope).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope || s == SCOPE_ALL)
    }

    /// The wire form.
    pub fn to_proto(&self) -> common::Principal {
        common::Principal {
            kind: match self.kind {
                PrincipalKind::User => common::PrincipalKind::User,
                PrincipalKind::ServiceAccount => common::PrincipalKind::ServiceAccount,
                PrincipalKind::Agent => common::PrincipalKind::Agent,
            } as i32,
            uuid: self.uuid.clone(),
            name: self.name.clone(),
            scopes: self.scopes.clone(),
            instance_admin: self.instance_admin,
            token_uuid: self.token_uuid.clone(),
            organization: self.organization.clone().unwrap_or_default(),
            email: self.email.clone(),
            email_verified: self.email_verified,
            role: self.role.map(|r| r.as_str().to_owned()).unwrap_or_default(),
            organization_uuid: self.organization_uuid.clone().unwrap_or_default(),
            auth_method: self.auth_method.clone(),
        }
    }

    /// From the wire form; `None` when the kind or identity is missing.
    pub fn from_proto(p: common::Principal) -> Option<Self> {
        let kind = match p.kind() {
            common::PrincipalKind::User => PrincipalKind::User,
            common::PrincipalKind::ServiceAccount => PrincipalKind::ServiceAccount,
            common::PrincipalKind::Agent => PrincipalKind::Agent,
            common::PrincipalKind::Unspecified => return None,
        };
        if p.uuid.is_empty() {
            return None;
        }
        Some(Self {
            kind,
            uuid: p.uuid,
            name: p.name,
            scopes: p.scopes,
            instance_admin: p.instance_admin,
            token_uuid: p.token_uuid,
            organization: (!p.organization.is_empty()).then_some(p.organization),
            email: p.email,
            email_verified: p.email_verified,
            role: Role::parse(&p.role),
            organization_uuid: (!p.organization_uuid.is_empty()).then_some(p.organization_uuid),
            auth_method: p.auth_method,
        })
    }

    /// Encodes for the principal metadata (binary metadata value, base64).
    pub fn to_metadata_value(&self) -> String {
        STANDARD_NO_PAD.encode(self.to_proto().encode_to_vec())
    }

    /// Decodes the principal metadata value.
    pub fn from_metadata_value(value: &[u8]) -> Option<Self> {
        let trimmed: Vec<u8> = value.iter().copied().filter(|b| *b != b'=').collect();
        let bytes = STANDARD_NO_PAD.decode(trimmed).ok()?;
        Self::from_proto(common::Principal::decode(bytes.as_slice()).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_metadata() {
        let p = Principal {
            kind: PrincipalKind::User,
            uuid: "0190-aaaa".into(),
            name: "ada".into(),
            scopes: vec![SCOPE_READ.into()],
            instance_admin: false,
            token_uuid: "t".into(),
            organization: None,
            email: "ada@example.com".into(),
            email_verified: true,
            role: None,
            organization_uuid: None,
            auth_method: AUTH_PASSWORD.into(),
        };
        let back = Principal::from_metadata_value(p.to_metadata_value().as_bytes()).unwrap();
        assert_eq!(back, p);
        assert!(back.has_scope(SCOPE_READ));
        assert!(!back.has_scope(SCOPE_WRITE));
        assert!(Principal::from_metadata_value(b"!!").is_none());
    }
}
