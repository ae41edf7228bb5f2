//! Signing in with an organization's identity provider
//! (`ExchangeExternalToken`).
//!
//! 1. The organization's enabled OIDC providers come from the organizations
//!    service (its auth settings); the named one must exist.
//! 2. The ID token is verified against the provider's published keys, for
//!    the provider's client id ([`crate::oidc`]).
//! 3. The token must carry an address the provider verified, in one of the
//!    provider's allowed domains.
//! 4. The user is found by their identity at the issuer (`iss`, `sub`) —
//!    linked when the account was created by this sign-in, or by the user
//!    themselves with `LinkExternalIdentity` ([`super::external_links`]).
//!    An unlinked identity whose address belongs to an existing account is
//!    refused (`ACCOUNT_EXISTS`): an organization's owner chooses its
//!    provider, so a provider's word on an address never opens someone
//!    else's account. Otherwise the user is created without a password,
//!    their address *unverified* for the instance: the provider vouched for
//!    it to its own organization only (another organization open to that
//!    domain must not take one owner's provider at its word).
//! 5. The organizations service admits them: a member stays, an open
//!    organization adds them with its default role when the address's domain
//!    is allowed, an invited user may go on to accept the invitation. Anyone
//!    else is refused — and a user created by this call is removed again.
//! 6. A session opens, as with `Login`.

use orgplane_platform::{
    Error,
    principal::{AUTH_OIDC, Principal, PrincipalKind, SCOPE_ALL},
    time::now_micros,
    validate::{self, Violations},
};
use orgplane_transport::peers::ExternalProvider;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::{Identity, accounts::Session};
use crate::{
    oidc::{IdClaims, OidcError},
    storage::{external_identities, users},
};

/// Longest ID token accepted.
const MAX_ID_TOKEN: usize = 16 * 1024;

impl From<OidcError> for Error {
    fn from(err: OidcError) -> Self {
        match err {
            OidcError::InvalidToken(_) => {
                Error::unauthenticated("INVALID_ID_TOKEN", err.to_string())
            }
            OidcError::IssuerUnavailable(detail) => {
                // What the issuer answered stays in the log: the caller may
                // be probing what the service can reach.
                tracing::warn!(detail, "an identity provider could not be fetched");
                Error::Unavailable("the identity provider is unavailable".into())
            }
        }
    }
}

impl Identity {
    /// Exchanges an ID token of `organization`'s provider `provider` for a
    /// session.
    pub async fn exchange_external_token(
        &self,
        organization: &str,
        provider: &str,
        id_token: &str,
    ) -> Result<Session, Error> {
        let (provider, claims) = self
            .verified_claims(organization, provider, id_token)
            .await?;
        let email = verified_email(&claims)?;
        let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        if !provider.allowed_email_domains.is_empty()
            && !provider.allowed_email_domains.iter().any(|d| d == domain)
        {
            return Err(Error::permission_denied(
                "EMAIL_DOMAIN_NOT_ALLOWED",
                format!("this provider does not sign in addresses of {domain}"),
            ));
        }
        let (user, created) = self.external_user(&claims, &email).await?;
        let principal = Principal {
            kind: PrincipalKind::User,
            uuid: user.uuid.clone(),
            name: user.username.clone(),
            scopes: vec![SCOPE_ALL.to_owned()],
            instance_admin: user.instance_admin,
            token_uuid: String::new(),
            organization: None,
            email: user.email.clone(),
            // This organization's own provider vouched for the address: it
            // counts for this organization's admission (and nowhere else).
            email_verified: true,
            role: None,
            organization_uuid: None,
            auth_method: AUTH_OIDC.to_owned(),
        };
        let admission = match self
            .organizations()?
            .admit_external_user(&principal, organization)
            .await
        {
            Ok(admission) => admission,
            Err(err) => {
                self.forget_if_created(&user, created).await;
                return Err(err);
            }
        };
        if admission.role.is_none() && !admission.invited {
            self.forget_if_created(&user, created).await;
            return Err(Error::permission_denied(
                "NOT_ADMITTED",
                "the organization admits you by invitation only; ask for one",
            ));
        }
        self.open_session(user, AUTH_OIDC).await
    }

    /// Checks the request, finds `organization`'s enabled provider
    /// `provider` and verifies `id_token` with it: what `ExchangeExternalToken`
    /// and `LinkExternalIdentity` share.
    pub(super) async fn verified_claims(
        &self,
        organization: &str,
        provider: &str,
        id_token: &str,
    ) -> Result<(ExternalProvider, IdClaims), Error> {
        let mut v = Violations::new();
        v.check("organization", validate::slug(organization));
        v.check("provider", validate::slug(provider));
        v.check("id_token", validate::required(id_token, MAX_ID_TOKEN));
        v.finish()?;
        let provider = self
            .organizations()?
            .external_providers(organization)
            .await?
            .into_iter()
            .find(|p| p.name == provider)
            .ok_or_else(|| Error::not_found("identity provider", provider))?;
        let claims = self
            .oidc
            .verify(&provider.issuer, &provider.client_id, id_token)
            .await?;
        Ok((provider, claims))
    }

    /// The user an external identity maps to, and whether it was created now.
    /// Never an existing account that the identity is not linked to.
    async fn external_user(
        &self,
        claims: &IdClaims,
        email: &str,
    ) -> Result<(users::Model, bool), Error> {
        if let Some(user) = self.linked_user(claims).await? {
            return Ok((user, false));
        }
        let taken = users::Entity::find()
            .filter(users::Column::Email.eq(email))
            .one(&self.db)
            .await?;
        if taken.is_some() {
            return Err(Error::precondition(
                "ACCOUNT_EXISTS",
                "an account with this email address exists: sign in to it and link this \
                 identity with UserService.LinkExternalIdentity",
            ));
        }
        let user = self.create_external_user(claims, email).await?;
        if let Err(err) = self.insert_link(claims, &user.uuid).await {
            // Another sign-in of the same identity linked first.
            self.forget_if_created(&user, true).await;
            return Err(err);
        }
        Ok((user, true))
    }

    /// The user `claims`' identity at its issuer is linked to, if any.
    pub(super) async fn linked_user(
        &self,
        claims: &IdClaims,
    ) -> Result<Option<users::Model>, Error> {
        let Some(link) = self.link_of(claims).await? else {
            return Ok(None);
        };
        Ok(users::Entity::find_by_id(link.user_uuid)
            .one(&self.db)
            .await?)
    }

    /// The link of `claims`' identity at its issuer, if any.
    pub(super) async fn link_of(
        &self,
        claims: &IdClaims,
    ) -> Result<Option<external_identities::Model>, Error> {
        Ok(external_identities::Entity::find()
            .filter(external_identities::Column::Issuer.eq(claims.iss.as_str()))
            .filter(external_identities::Column::Subject.eq(claims.sub.as_str()))
            .one(&self.db)
            .await?)
    }

    /// Links `claims`' identity at its issuer to the user `user_uuid`; the
    /// unique (issuer, subject) index refuses a second link of it.
    pub(super) async fn insert_link(
        &self,
        claims: &IdClaims,
        user_uuid: &str,
    ) -> Result<external_identities::Model, Error> {
        external_identities::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            issuer: Set(claims.iss.clone()),
            subject: Set(claims.sub.clone()),
            user_uuid: Set(user_uuid.to_owned()),
            create_time: Set(now_micros()),
        }
        .insert(&self.db)
        .await
        .map_err(|err| Error::from_db(err, "external identity", &claims.sub))
    }

    /// A user without a password, named after their address.
    async fn create_external_user(
        &self,
        claims: &IdClaims,
        email: &str,
    ) -> Result<users::Model, Error> {
        let base = username_from_email(email);
        let now = now_micros();
        for attempt in 0..20 {
            let username = match attempt {
                0 => base.clone(),
                n if n < 10 => format!("{base}-{}", n + 1),
                _ => format!(
                    "{base}-{}",
                    &uuid::Uuid::now_v7().simple().to_string()[24..]
                ),
            };
            let row = users::ActiveModel {
                uuid: Set(uuid::Uuid::now_v7().to_string()),
                username: Set(username.clone()),
                email: Set(email.to_owned()),
                display_name: Set(claims
                    .name
                    .clone()
                    .filter(|n| validate::text(n, 200).is_ok() && !n.is_empty())
                    .unwrap_or_else(|| username.clone())),
                password_hash: Set(None),
                instance_admin: Set(false),
                // See the module doc: verified for the provider's own
                // organization only.
                email_verified: Set(false),
                failed_logins: Set(0),
                locked_until: Set(None),
                create_time: Set(now),
                update_time: Set(now),
            };
            match row.insert(&self.db).await {
                Ok(user) => return Ok(user),
                Err(err) => match Error::from_db(err, "user", &username) {
                    Error::AlreadyExists { .. } => continue,
                    other => return Err(other),
                },
            }
        }
        Err(Error::Internal(anyhow::anyhow!(
            "no free username derived from {email}"
        )))
    }

    /// Removes a user this exchange created, when it is refused after all.
    async fn forget_if_created(&self, user: &users::Model, created: bool) {
        if !created {
            return;
        }
        if let Err(err) = users::Entity::delete_by_id(user.uuid.clone())
            .exec(&self.db)
            .await
        {
            tracing::warn!(user = %user.username, error = %err, "could not remove a refused external user");
        }
        self.revoked(&user.uuid);
    }
}

/// The token's address, if the provider verified it.
fn verified_email(claims: &IdClaims) -> Result<String, Error> {
    let email = claims
        .email
        .as_deref()
        .map(|e| e.trim().to_lowercase())
        .filter(|e| validate::email(e).is_ok())
        .ok_or_else(|| {
            Error::unauthenticated(
                "EMAIL_REQUIRED",
                "the ID token carries no email address (ask for the `email` scope)",
            )
        })?;
    if claims.email_verified != Some(true) {
        return Err(Error::unauthenticated(
            "EMAIL_NOT_VERIFIED",
            "the identity provider has not verified this email address",
        ));
    }
    Ok(email)
}

/// A username slug from an address's local part: `Ada.Lovelace+x@…` →
/// `ada-lovelace-x`.
pub fn username_from_email(email: &str) -> String {
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    let mut slug = String::new();
    for c in local.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_end_matches('-').to_owned();
    if !slug.starts_with(|c: char| c.is_ascii_lowercase()) {
        slug.insert_str(0, "user-");
    }
    slug.truncate(40);
    slug.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_from_addresses_are_slugs() {
        for (email, expected) in [
            ("Ada.Lovelace+x@example.com", "ada-lovelace-x"),
            ("42@example.com", "user-42"),
            ("__@example.com", "user"),
            ("a--b@example.com", "a-b"),
        ] {
            let name = username_from_email(email);
            assert_eq!(name, expected);
            assert!(validate::slug(&name).is_ok(), "{name}");
        }
    }

    fn claims(email: Option<&str>, verified: Option<bool>) -> IdClaims {
        IdClaims {
            iss: "https://issuer".into(),
            sub: "1".into(),
            email: email.map(str::to_owned),
            email_verified: verified,
            name: None,
        }
    }

    #[test]
    fn only_verified_addresses_sign_in() {
        assert_eq!(
            verified_email(&claims(Some("Ada@Example.com"), Some(true))).unwrap(),
            "ada@example.com"
        );
        assert!(verified_email(&claims(Some("ada@example.com"), Some(false))).is_err());
        assert!(verified_email(&claims(Some("ada@example.com"), None)).is_err());
        assert!(verified_email(&claims(None, Some(true))).is_err());
        assert!(verified_email(&claims(Some("not an address"), Some(true))).is_err());
    }
}
