//! Identity's rules, in plain Rust over its tables: sign-up, login with
//! throttling and lockout, sessions, passwords and their resets, profiles,
//! personal access tokens and token introspection.

pub mod accounts;
pub mod agent_tokens;
pub mod expiry;
pub mod external;
pub mod external_links;
pub mod passwords;
pub mod service_accounts;
pub mod tokens;
pub mod users;

pub use orgplane_platform::secrets;

use std::time::Duration;

use orgplane_platform::{
    Error,
    principal::{Principal, PrincipalKind},
};
use orgplane_storage::changes::ChangeFeed;
use orgplane_transport::peers::OrganizationsPeer;
use sea_orm::DatabaseConnection;

use crate::{domain::passwords::PasswordHasherPool, oidc::OidcVerifier};

/// Tunables of the identity service.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Lifetime of a session from `Login`.
    pub session_ttl: Duration,
    /// Lifetime of a password reset token.
    pub reset_ttl: Duration,
    /// Lifetime of a personal access token created without `expire_time`.
    pub default_token_ttl: Duration,
    /// Longest lifetime of a personal access token.
    pub max_token_ttl: Duration,
    /// Whether anyone may `SignUp` (else only the bootstrap admin and, later,
    /// invitations and identity providers create users).
    pub allow_signup: bool,
    /// Login attempts allowed before the account locks.
    pub max_failed_logins: i32,
    /// How long a locked account stays locked.
    pub lockout: Duration,
    /// Argon2 hashes run at once.
    pub hash_concurrency: usize,
    /// Password checks that may wait for a hashing thread; more are refused
    /// with `UNAVAILABLE` at once.
    pub hash_queue: usize,
    /// Whether identity providers may be fetched over plain HTTP and on
    /// private addresses (tests, local providers; never in production:
    /// an organization's owner chooses the issuer URL).
    pub allow_insecure_issuers: bool,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        let hash_concurrency = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self {
            session_ttl: Duration::from_secs(24 * 3600),
            reset_ttl: Duration::from_secs(3600),
            default_token_ttl: Duration::from_secs(90 * 24 * 3600),
            max_token_ttl: Duration::from_secs(366 * 24 * 3600),
            allow_signup: true,
            max_failed_logins: 10,
            lockout: Duration::from_secs(15 * 60),
            hash_concurrency,
            hash_queue: hash_concurrency * passwords::DEFAULT_QUEUE_PER_THREAD,
            allow_insecure_issuers: false,
        }
    }
}

/// The identity service's state: its database and password hasher.
#[derive(Debug, Clone)]
pub struct Identity {
    pub(crate) db: DatabaseConnection,
    pub(crate) hasher: PasswordHasherPool,
    pub(crate) config: IdentityConfig,
    pub(crate) organizations: Option<OrganizationsPeer>,
    pub(crate) oidc: OidcVerifier,
    /// Users as `GetCurrentUser` shows them, read lately; every change to
    /// what it shows forgets them (see [`users::USER_TTL`]).
    pub(crate) user_rows:
        orgplane_storage::read_cache::ReadCache<String, crate::storage::users::Model>,
    /// Password resets asked per client address.
    pub(crate) reset_requests: accounts::ResetRequests,
    /// Principals whose tokens or profile changed, for every replica and
    /// every gateway (`WatchRevocations`).
    pub(crate) revocations: ChangeFeed,
}

impl Identity {
    /// Identity over a migrated database.
    pub fn new(db: DatabaseConnection, config: IdentityConfig) -> Self {
        let user_rows = orgplane_storage::read_cache::ReadCache::new(10_000, users::USER_TTL);
        Self {
            revocations: ChangeFeed::new(db.clone(), "revocations").forgetting(user_rows.clone()),
            user_rows,
            db,
            hasher: PasswordHasherPool::new(config.hash_concurrency, config.hash_queue),
            oidc: OidcVerifier::new(config.allow_insecure_issuers),
            config,
            organizations: None,
            reset_requests: accounts::ResetRequests::new(),
        }
    }

    /// With the organizations service, which decides who manages service
    /// accounts and whose deletions identity purges. Without it, the
    /// service-account methods answer `UNAVAILABLE`.
    pub fn with_organizations(mut self, organizations: OrganizationsPeer) -> Self {
        self.organizations = Some(organizations);
        self
    }

    /// The database (for tests and tools).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The revocations every replica hears: what `WatchRevocations`
    /// streams, and what the user rows read here forget.
    pub fn revocations(&self) -> &ChangeFeed {
        &self.revocations
    }

    /// After a commit that ended some of `principal_uuid`'s tokens or
    /// changed what its introspection shows: the user rows read by every
    /// replica, and every gateway's cached answers about it, are forgotten.
    pub(crate) fn revoked(&self, principal_uuid: &str) {
        self.revocations.publish(principal_uuid);
    }
}

/// Refuses a principal that is not a user, or whose credential lacks `scope`.
pub(crate) fn require_user_scope(principal: &Principal, scope: &str) -> Result<(), Error> {
    if principal.kind != PrincipalKind::User {
        return Err(Error::permission_denied(
            "USER_REQUIRED",
            "this method is for users, not service accounts or agents",
        ));
    }
    if !principal.has_scope(scope) {
        return Err(Error::permission_denied(
            "MISSING_SCOPE",
            format!("the token lacks the {scope:?} scope"),
        ));
    }
    Ok(())
}
