//! A user's links to identities at organizations' providers
//! (`LinkExternalIdentity`, `ListExternalIdentities`,
//! `UnlinkExternalIdentity`).
//!
//! Sign-in through a provider reaches an existing account only through a
//! link, and only the account's holder makes one: signed in with a session
//! (not a personal access token, which may have leaked into a CI job), they
//! present an ID token of the identity to link. A leaked link is ended by
//! unlinking; the last way into an account without a password cannot be
//! unlinked.

use orgplane_platform::{
    Error,
    principal::{Principal, SCOPE_READ, SCOPE_WRITE},
    validate::{self, Violations},
};
use orgplane_storage::page::{ListQuery, Page, text_keyed_page};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use super::{Identity, require_user_scope};
use crate::storage::{external_identities, users};

/// Most identities linked to one account.
pub const MAX_LINKS_PER_USER: u64 = 20;

/// Refuses a credential that is not a session: linking and unlinking change
/// how the account is entered.
fn require_session(principal: &Principal) -> Result<(), Error> {
    require_user_scope(principal, SCOPE_WRITE)?;
    if principal.auth_method.is_empty() {
        return Err(Error::permission_denied(
            "SESSION_REQUIRED",
            "sign in (Login or ExchangeExternalToken) to change how your account is entered; \
             access tokens may not",
        ));
    }
    Ok(())
}

impl Identity {
    /// Links the identity `id_token` proves (at `organization`'s provider
    /// `provider`) to the caller's account. Linking the same identity again
    /// returns the link; an identity linked to another account is
    /// `ALREADY_EXISTS`.
    pub async fn link_external_identity(
        &self,
        principal: &Principal,
        organization: &str,
        provider: &str,
        id_token: &str,
    ) -> Result<external_identities::Model, Error> {
        require_session(principal)?;
        let (_, claims) = self
            .verified_claims(organization, provider, id_token)
            .await?;
        if let Some(link) = self.link_of(&claims).await? {
            if link.user_uuid == principal.uuid {
                return Ok(link);
            }
            return Err(Error::already_exists(
                "external identity",
                format!("{} at {}", claims.sub, claims.iss),
            ));
        }
        if self.links_of(&principal.uuid).await? >= MAX_LINKS_PER_USER {
            return Err(Error::precondition(
                "TOO_MANY_LINKS",
                format!("an account links at most {MAX_LINKS_PER_USER} external identities"),
            ));
        }
        self.insert_link(&claims, &principal.uuid).await
    }

    /// The caller's linked identities, oldest first.
    pub async fn list_external_identities(
        &self,
        principal: &Principal,
        query: &ListQuery,
    ) -> Result<Page<external_identities::Model>, Error> {
        require_user_scope(principal, SCOPE_READ)?;
        let page = query.page("")?;
        text_keyed_page(
            &self.db,
            &page,
            external_identities::Entity::find()
                .filter(external_identities::Column::UserUuid.eq(principal.uuid.as_str())),
            external_identities::Column::Uuid,
            false,
            |link| link.uuid.clone(),
        )
        .await
    }

    /// Removes one of the caller's links (by its UUID). The last way into
    /// an account without a password stays: `FAILED_PRECONDITION`
    /// `LAST_SIGN_IN_METHOD`.
    pub async fn unlink_external_identity(
        &self,
        principal: &Principal,
        uuid: &str,
    ) -> Result<(), Error> {
        require_session(principal)?;
        let mut v = Violations::new();
        v.check("uuid", validate::required(uuid, 64));
        v.finish()?;
        let not_found = || Error::not_found("external identity", uuid);
        let link = external_identities::Entity::find_by_id(uuid.to_owned())
            .filter(external_identities::Column::UserUuid.eq(principal.uuid.as_str()))
            .one(&self.db)
            .await?
            .ok_or_else(not_found)?;
        let user = users::Entity::find_by_id(principal.uuid.clone())
            .one(&self.db)
            .await?
            .ok_or_else(not_found)?;
        if user.password_hash.is_none() && self.links_of(&principal.uuid).await? <= 1 {
            return Err(Error::precondition(
                "LAST_SIGN_IN_METHOD",
                "this is the only way into the account: set a password (password reset) first",
            ));
        }
        external_identities::Entity::delete_by_id(link.uuid)
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// How many identities are linked to the user `user_uuid`.
    async fn links_of(&self, user_uuid: &str) -> Result<u64, Error> {
        Ok(external_identities::Entity::find()
            .filter(external_identities::Column::UserUuid.eq(user_uuid))
            .count(&self.db)
            .await?)
    }
}
