//! Accounts: sign-up, login (throttled, then locked), sessions, logout,
//! password change and reset, and the bootstrap of the instance admin.

use std::time::Duration;

use orgplane_platform::{
    Error,
    principal::{AUTH_PASSWORD, Principal, SCOPE_ALL, SCOPE_WRITE},
    rate_limit::RateLimit,
    time::{add, now_micros},
    validate::{self, Violations},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
    TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::{Identity, passwords, require_user_scope, secrets};
use crate::storage::{login_failures, outbox, password_resets, tokens, users};

/// The client address of a login that did not come through the gateway.
pub const UNKNOWN_ADDRESS: &str = "unknown";
/// Password reset messages one account gets per hour.
pub const RESETS_PER_ACCOUNT: u64 = 3;
/// Password resets one client address may ask for per hour.
pub const RESETS_PER_ADDRESS: u32 = 10;

/// How often each client address may ask for password resets (in this
/// process: each replica counts its own).
#[derive(Debug, Clone)]
pub(crate) struct ResetRequests(std::sync::Arc<RateLimit>);

impl ResetRequests {
    pub(crate) fn new() -> Self {
        let per_hour = std::num::NonZeroU32::new(RESETS_PER_ADDRESS).expect("non-zero");
        Self(std::sync::Arc::new(RateLimit::per_hour(per_hour)))
    }

    fn check(&self, address: &str) -> Result<(), Error> {
        self.0
            .check(&address.to_owned())
            .map_err(|wait| Error::ResourceExhausted {
                reason: "RATE_LIMITED",
                message: "too many password resets asked from this address: try later".into(),
                retry_after: Some(wait),
            })
    }
}

/// Token kind of sessions.
pub const KIND_SESSION: &str = "session";
/// Token kind of personal access tokens.
pub const KIND_PERSONAL: &str = "personal";

/// A new user as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Slug.
    pub username: String,
    /// Email.
    pub email: String,
    /// Password in clear, hashed before it is stored.
    pub password: String,
    /// Display name; the username when empty.
    pub display_name: String,
}

/// A session handed out by `Login`.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer secret.
    pub token: String,
    /// Expiry, microseconds.
    pub expire_time: i64,
    /// Who signed in.
    pub user: users::Model,
}

impl Identity {
    /// Creates a user with a password.
    pub async fn sign_up(&self, new: NewUser) -> Result<users::Model, Error> {
        if !self.config.allow_signup {
            return Err(Error::precondition(
                "SIGNUP_DISABLED",
                "sign-up is disabled on this instance; ask for an invitation",
            ));
        }
        self.create_user(new, false).await
    }

    /// Creates the instance admin unless a user of that name exists. Returns
    /// whether it was created.
    pub async fn bootstrap_admin(&self, new: NewUser) -> Result<bool, Error> {
        let existing = users::Entity::find()
            .filter(users::Column::Username.eq(new.username.as_str()))
            .one(&self.db)
            .await?;
        if existing.is_some() {
            return Ok(false);
        }
        self.create_user(new, true).await?;
        Ok(true)
    }

    async fn create_user(&self, new: NewUser, instance_admin: bool) -> Result<users::Model, Error> {
        let email = new.email.trim().to_lowercase();
        let mut v = Violations::new();
        v.check("username", validate::slug(&new.username));
        v.check("email", validate::email(&email));
        v.check("password", passwords::check_policy(&new.password));
        v.check("display_name", validate::text(&new.display_name, 200));
        v.finish()?;

        self.ensure_free(&new.username, &email).await?;
        let password_hash = self.hasher.hash(&new.password).await?;
        let now = now_micros();
        let display_name = if new.display_name.is_empty() {
            new.username.clone()
        } else {
            new.display_name
        };
        let user = users::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            username: Set(new.username.clone()),
            email: Set(email),
            display_name: Set(display_name),
            password_hash: Set(Some(password_hash)),
            instance_admin: Set(instance_admin),
            email_verified: Set(false),
            failed_logins: Set(0),
            locked_until: Set(None),
            create_time: Set(now),
            update_time: Set(now),
        };
        // A concurrent sign-up can take the name between the check and here;
        // the unique index decides.
        user.insert(&self.db)
            .await
            .map_err(|err| Error::from_db(err, "user", &new.username))
    }

    async fn ensure_free(&self, username: &str, email: &str) -> Result<(), Error> {
        let taken = users::Entity::find()
            .filter(
                users::Column::Username
                    .eq(username)
                    .or(users::Column::Email.eq(email)),
            )
            .all(&self.db)
            .await?;
        if taken.iter().any(|u| u.username == username) {
            return Err(Error::already_exists("user", username));
        }
        if taken.iter().any(|u| u.email == email) {
            return Err(Error::already_exists("email", email));
        }
        Ok(())
    }

    /// [`Identity::login_from`] an unknown address (tools and tests that
    /// call the domain directly).
    pub async fn login(&self, identifier: &str, password: &str) -> Result<Session, Error> {
        self.login_from(identifier, password, UNKNOWN_ADDRESS).await
    }

    /// Signs in with a username or email and a password, from the client
    /// address `address` (as the gateway saw it).
    ///
    /// Each attempt is counted per (account, address) *before* the password
    /// is checked, in one atomic `UPDATE`, so parallel attempts cannot get
    /// past the limit: at most `max_failed_logins` passwords from one
    /// address are ever verified before the account locks — for that
    /// address only, so that an attacker's guesses do not lock the holder
    /// out from elsewhere. Failures are also counted for the whole account,
    /// which only slows failures down (past the third). A success resets
    /// both counts.
    pub async fn login_from(
        &self,
        identifier: &str,
        password: &str,
        address: &str,
    ) -> Result<Session, Error> {
        let mut v = Violations::new();
        v.check(
            "username",
            validate::required(identifier, validate::MAX_EMAIL_LEN),
        );
        v.check(
            "password",
            validate::required(password, passwords::MAX_PASSWORD_LEN),
        );
        v.finish()?;

        let invalid =
            || Error::unauthenticated("INVALID_CREDENTIALS", "wrong username or password");
        let identifier = identifier.trim().to_lowercase();
        let column = if identifier.contains('@') {
            users::Column::Email
        } else {
            users::Column::Username
        };
        let Some(user) = users::Entity::find()
            .filter(column.eq(identifier.as_str()))
            .one(&self.db)
            .await?
        else {
            self.hasher.verify(password, None).await?;
            return Err(invalid());
        };

        let address = if address.is_empty() {
            UNKNOWN_ADDRESS
        } else {
            address
        };
        let now = now_micros();
        let Some(attempt) = self.count_attempt(&user.uuid, address, now).await? else {
            return Err(locked());
        };
        if attempt > self.config.max_failed_logins {
            self.lock(&user.uuid, address, now).await?;
            return Err(locked());
        }

        if !self
            .hasher
            .verify(password, user.password_hash.as_deref())
            .await?
        {
            let account_failures = users::Entity::update_many()
                .col_expr(
                    users::Column::FailedLogins,
                    Expr::col(users::Column::FailedLogins).add(1),
                )
                .filter(users::Column::Uuid.eq(user.uuid.as_str()))
                .exec_with_returning(&self.db)
                .await?
                .first()
                .map_or(attempt, |u| u.failed_logins);
            if attempt >= self.config.max_failed_logins {
                self.lock(&user.uuid, address, now).await?;
                tracing::warn!(user = %user.username, address, "account locked for an address after failed logins");
            }
            let failures = Ord::max(attempt, account_failures);
            if failures > 3 {
                let delay = Duration::from_millis(100 << Ord::min(failures - 3, 4));
                tokio::time::sleep(delay).await;
            }
            return Err(invalid());
        }

        login_failures::Entity::delete_many()
            .filter(login_failures::Column::UserUuid.eq(user.uuid.as_str()))
            .filter(login_failures::Column::Address.eq(address))
            .exec(&self.db)
            .await?;
        users::Entity::update_many()
            .col_expr(users::Column::FailedLogins, Expr::value(0))
            .filter(users::Column::Uuid.eq(user.uuid.as_str()))
            .filter(users::Column::FailedLogins.ne(0))
            .exec(&self.db)
            .await?;
        self.open_session(user, AUTH_PASSWORD).await
    }

    /// Counts a login attempt on `user_uuid` from `address`; the count so
    /// far, or `None` while the account is locked for that address.
    ///
    /// The row is made if missing, then counted with a guarded `UPDATE`. A
    /// concurrent success deletes the row (resetting the count) and may do
    /// so between the two: then the update finds no row although none is
    /// locked, and the attempt is counted again on a new row.
    async fn count_attempt(
        &self,
        user_uuid: &str,
        address: &str,
        now: i64,
    ) -> Result<Option<i32>, Error> {
        use login_failures::Column as C;
        for _ in 0..3 {
            login_failures::Entity::insert(login_failures::ActiveModel {
                uuid: Set(uuid::Uuid::now_v7().to_string()),
                user_uuid: Set(user_uuid.to_owned()),
                address: Set(address.to_owned()),
                failures: Set(0),
                locked_until: Set(None),
                update_time: Set(now),
            })
            .on_conflict(
                OnConflict::columns([C::UserUuid, C::Address])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
            let counted = login_failures::Entity::update_many()
                .col_expr(C::Failures, Expr::col(C::Failures).add(1))
                .col_expr(C::UpdateTime, Expr::value(now))
                .filter(C::UserUuid.eq(user_uuid))
                .filter(C::Address.eq(address))
                .filter(C::LockedUntil.is_null().or(C::LockedUntil.lte(now)))
                .exec_with_returning(&self.db)
                .await?;
            if let Some(row) = counted.first() {
                return Ok(Some(row.failures));
            }
            let locked = login_failures::Entity::find()
                .filter(C::UserUuid.eq(user_uuid))
                .filter(C::Address.eq(address))
                .filter(C::LockedUntil.gt(now))
                .one(&self.db)
                .await?;
            if locked.is_some() {
                return Ok(None);
            }
        }
        Err(Error::Unavailable(
            "too many logins of this account at once: try again".into(),
        ))
    }

    /// Opens a session for a user who proved who they are, by `auth_method`.
    pub(crate) async fn open_session(
        &self,
        user: users::Model,
        auth_method: &str,
    ) -> Result<Session, Error> {
        let token = secrets::generate(secrets::SESSION_PREFIX);
        let expire_time = add(now_micros(), self.config.session_ttl);
        insert_token(
            &self.db,
            TokenRow {
                user_uuid: &user.uuid,
                kind: KIND_SESSION,
                name: None,
                secret: &token,
                scopes: SCOPE_ALL,
                expire_time,
                auth_method,
            },
        )
        .await?;
        Ok(Session {
            token,
            expire_time,
            user,
        })
    }

    /// Locks `user_uuid`'s logins from `address` for the lockout period.
    async fn lock(&self, user_uuid: &str, address: &str, now: i64) -> Result<(), Error> {
        use login_failures::Column as C;
        login_failures::Entity::update_many()
            .col_expr(C::LockedUntil, Expr::value(add(now, self.config.lockout)))
            .col_expr(C::Failures, Expr::value(0))
            .filter(C::UserUuid.eq(user_uuid))
            .filter(C::Address.eq(address))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Revokes the token the caller used.
    pub async fn logout(&self, principal: &Principal) -> Result<(), Error> {
        let now = now_micros();
        tokens::Entity::update_many()
            .col_expr(tokens::Column::RevokeTime, Expr::value(now))
            .col_expr(tokens::Column::UpdateTime, Expr::value(now))
            .filter(tokens::Column::Uuid.eq(principal.token_uuid.as_str()))
            .filter(tokens::Column::RevokeTime.is_null())
            .exec(&self.db)
            .await?;
        self.revoked(&principal.uuid);
        Ok(())
    }

    /// Changes the caller's password given the current one; every other
    /// session of the user ends.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
    ) -> Result<(), Error> {
        require_user_scope(principal, SCOPE_WRITE)?;
        let mut v = Violations::new();
        v.check(
            "current_password",
            validate::required(current, passwords::MAX_PASSWORD_LEN),
        );
        v.check("new_password", passwords::check_policy(new));
        v.finish()?;
        let user = self.user_by_uuid(&principal.uuid).await?;
        if !self
            .hasher
            .verify(current, user.password_hash.as_deref())
            .await?
        {
            return Err(Error::invalid(
                "current_password",
                "is not the current password",
            ));
        }
        let hash = self.hasher.hash(new).await?;
        let now = now_micros();
        let txn = self.db.begin().await?;
        users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, Expr::value(Some(hash)))
            .col_expr(users::Column::UpdateTime, Expr::value(now))
            .filter(users::Column::Uuid.eq(user.uuid.as_str()))
            .exec(&txn)
            .await?;
        revoke_tokens(
            &txn,
            &user.uuid,
            Revoke::OtherSessions(&principal.token_uuid),
            now,
        )
        .await?;
        txn.commit().await?;
        self.revoked(&user.uuid);
        Ok(())
    }

    /// [`Identity::request_password_reset_from`] an unknown address.
    pub async fn request_password_reset(&self, email: &str) -> Result<(), Error> {
        self.request_password_reset_from(email, UNKNOWN_ADDRESS)
            .await
    }

    /// Starts a password reset for `email`, asked from the client address
    /// `address`. Whether or not the account exists, the answer is the
    /// same. An address asks at most [`RESETS_PER_ADDRESS`] times an hour
    /// (`RESOURCE_EXHAUSTED`, which says nothing of accounts); an account
    /// gets at most [`RESETS_PER_ACCOUNT`] messages an hour, further asks
    /// are answered the same and send nothing — no mailbox is flooded.
    pub async fn request_password_reset_from(
        &self,
        email: &str,
        address: &str,
    ) -> Result<(), Error> {
        let email = email.trim().to_lowercase();
        let mut v = Violations::new();
        v.check("email", validate::email(&email));
        v.finish()?;
        self.reset_requests.check(address)?;
        let Some(user) = users::Entity::find()
            .filter(users::Column::Email.eq(email.as_str()))
            .one(&self.db)
            .await?
        else {
            return Ok(());
        };
        let now = now_micros();
        let recent = password_resets::Entity::find()
            .filter(password_resets::Column::UserUuid.eq(user.uuid.as_str()))
            .filter(password_resets::Column::CreateTime.gt(now - 3600 * 1_000_000))
            .count(&self.db)
            .await?;
        if recent >= RESETS_PER_ACCOUNT {
            tracing::warn!(user = %user.username, "password reset not sent: too many this hour");
            return Ok(());
        }
        let token = secrets::generate(secrets::RESET_PREFIX);
        let expire_time = add(now, self.config.reset_ttl);
        let txn = self.db.begin().await?;
        password_resets::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            user_uuid: Set(user.uuid.clone()),
            token_hash: Set(secrets::hash(&token)),
            expire_time: Set(expire_time),
            use_time: Set(None),
            create_time: Set(now),
        }
        .insert(&txn)
        .await?;
        outbox::enqueue(
            &txn,
            "password_reset",
            &user.email,
            serde_json::json!({ "username": user.username, "token": token }),
            expire_time,
        )
        .await?;
        txn.commit().await?;
        tracing::info!(user = %user.username, "password reset queued for delivery");
        Ok(())
    }

    /// Sets a new password with a reset token. The token is spent by a
    /// conditional update, so two concurrent uses cannot both succeed.
    /// Returns the UUID of the user whose password it reset.
    pub async fn confirm_password_reset(&self, token: &str, new: &str) -> Result<String, Error> {
        let mut v = Violations::new();
        v.check("token", validate::required(token, 200));
        v.check("new_password", passwords::check_policy(new));
        v.finish()?;
        let bad_token = || Error::invalid("token", "is invalid, used or expired");
        let now = now_micros();
        let reset = password_resets::Entity::find()
            .filter(password_resets::Column::TokenHash.eq(secrets::hash(token)))
            .one(&self.db)
            .await?
            .ok_or_else(bad_token)?;
        if reset.use_time.is_some() || reset.expire_time <= now {
            return Err(bad_token());
        }
        let hash = self.hasher.hash(new).await?;
        let txn = self.db.begin().await?;
        let spent = password_resets::Entity::update_many()
            .col_expr(password_resets::Column::UseTime, Expr::value(now))
            .filter(password_resets::Column::Uuid.eq(reset.uuid.as_str()))
            .filter(password_resets::Column::UseTime.is_null())
            .exec(&txn)
            .await?;
        if spent.rows_affected != 1 {
            return Err(bad_token());
        }
        users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, Expr::value(Some(hash)))
            .col_expr(users::Column::FailedLogins, Expr::value(0))
            .col_expr(users::Column::LockedUntil, Expr::value(Option::<i64>::None))
            .col_expr(users::Column::UpdateTime, Expr::value(now))
            .filter(users::Column::Uuid.eq(reset.user_uuid.as_str()))
            .exec(&txn)
            .await?;
        // Whoever reset the password holds the mailbox, maybe not the
        // tokens: every bearer token of the user ends, access tokens too.
        revoke_tokens(&txn, &reset.user_uuid, Revoke::Every, now).await?;
        // Guesses at the old password say nothing of the new one: the
        // lockouts end everywhere (OWASP ASVS: reset clears the counter).
        login_failures::Entity::delete_many()
            .filter(login_failures::Column::UserUuid.eq(reset.user_uuid.as_str()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.revoked(&reset.user_uuid);
        Ok(reset.user_uuid)
    }

    pub(crate) async fn user_by_uuid(&self, uuid: &str) -> Result<users::Model, Error> {
        users::Entity::find_by_id(uuid.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                Error::unauthenticated("USER_GONE", "the user of this token no longer exists")
            })
    }
}

fn locked() -> Error {
    Error::unauthenticated(
        "ACCOUNT_LOCKED",
        "too many failed logins: the account is locked for a while",
    )
}

/// A user's token to store.
pub(crate) struct TokenRow<'a> {
    pub user_uuid: &'a str,
    /// [`KIND_SESSION`] or [`KIND_PERSONAL`].
    pub kind: &'a str,
    /// A personal token's name.
    pub name: Option<String>,
    /// The secret (only its hash is stored).
    pub secret: &'a str,
    /// Space-separated scopes.
    pub scopes: &'a str,
    pub expire_time: i64,
    /// How a session was opened; empty for personal tokens.
    pub auth_method: &'a str,
}

/// Stores a new token (its hash) for a user.
pub(crate) async fn insert_token(
    db: &impl ConnectionTrait,
    row: TokenRow<'_>,
) -> Result<tokens::Model, sea_orm::DbErr> {
    let now = now_micros();
    tokens::ActiveModel {
        uuid: Set(uuid::Uuid::now_v7().to_string()),
        user_uuid: Set(row.user_uuid.to_owned()),
        kind: Set(row.kind.to_owned()),
        name: Set(row.name),
        secret_hash: Set(secrets::hash(row.secret)),
        scopes: Set(row.scopes.to_owned()),
        expire_time: Set(row.expire_time),
        revoke_time: Set(None),
        last_use_time: Set(None),
        create_time: Set(now),
        update_time: Set(now),
        auth_method: Set(row.auth_method.to_owned()),
    }
    .insert(db)
    .await
}

/// Which of a user's tokens [`revoke_tokens`] ends.
enum Revoke<'a> {
    /// Every session but this one (a password change).
    OtherSessions(&'a str),
    /// Every token: sessions and personal access tokens (a password reset).
    Every,
}

/// Revokes `which` of the user's tokens.
async fn revoke_tokens(
    db: &impl ConnectionTrait,
    user_uuid: &str,
    which: Revoke<'_>,
    now: i64,
) -> Result<(), Error> {
    let mut update = tokens::Entity::update_many()
        .col_expr(tokens::Column::RevokeTime, Expr::value(now))
        .col_expr(tokens::Column::UpdateTime, Expr::value(now))
        .filter(tokens::Column::UserUuid.eq(user_uuid))
        .filter(tokens::Column::RevokeTime.is_null());
    if let Revoke::OtherSessions(keep) = which {
        update = update
            .filter(tokens::Column::Kind.eq(KIND_SESSION))
            .filter(tokens::Column::Uuid.ne(keep));
    }
    update.exec(db).await?;
    Ok(())
}
