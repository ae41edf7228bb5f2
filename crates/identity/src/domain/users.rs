//! Profiles: the caller's own, others' (email hidden), and the instance's
//! users for instance administrators.

use orgplane_platform::{
    Error,
    principal::{Principal, SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE},
    time::now_micros,
    validate::{self, Violations},
};
use orgplane_storage::page::{KeyPart, ListQuery, Page, keyed_page, like_prefix};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter, Set,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use super::{Identity, passwords, require_user_scope};
use crate::storage::users;

/// How long a user row read for `GetCurrentUser` is trusted when nothing
/// changed it in this process: the bound on seeing another replica's change
/// (the gateway trusts a token check twice as long).
pub const USER_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// A user as shown to a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    /// The row.
    pub user: users::Model,
    /// Whether the caller may see the email (self or instance admin).
    pub show_email: bool,
}

/// Changes to the caller's profile; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New email (unverified again).
    pub email: Option<String>,
    /// The caller's password, which a new email needs: whoever holds the
    /// address can reset the password, so a stolen session must not be
    /// enough to move it.
    pub current_password: String,
}

impl Identity {
    /// Marks the user's address verified if it is still `email` (someone
    /// proved they hold that mailbox); returns whether it is verified now.
    pub async fn mark_email_verified(&self, user_uuid: &str, email: &str) -> Result<bool, Error> {
        let email = email.trim().to_lowercase();
        let mut v = Violations::new();
        v.check("user_uuid", validate::required(user_uuid, 64));
        v.check("email", validate::email(&email));
        v.finish()?;
        users::Entity::update_many()
            .col_expr(users::Column::EmailVerified, Expr::value(true))
            .col_expr(users::Column::UpdateTime, Expr::value(now_micros()))
            .filter(users::Column::Uuid.eq(user_uuid))
            .filter(users::Column::Email.eq(email.as_str()))
            .filter(users::Column::EmailVerified.eq(false))
            .exec(&self.db)
            .await?;
        self.revoked(user_uuid);
        let user = users::Entity::find_by_id(user_uuid.to_owned())
            .one(&self.db)
            .await?;
        Ok(user.is_some_and(|u| u.email == email && u.email_verified))
    }

    /// The caller.
    pub async fn current_user(&self, principal: &Principal) -> Result<users::Model, Error> {
        require_user_scope(principal, SCOPE_READ)?;
        if let Some(user) = self.user_rows.get(&principal.uuid).await {
            return Ok(user);
        }
        let ticket = self.user_rows.ticket();
        let user = self.user_by_uuid(&principal.uuid).await?;
        self.user_rows
            .insert(principal.uuid.clone(), user.clone(), ticket)
            .await;
        Ok(user)
    }

    /// Changes the caller's display name or email.
    pub async fn update_current_user(
        &self,
        principal: &Principal,
        changes: ProfileChanges,
    ) -> Result<users::Model, Error> {
        require_user_scope(principal, SCOPE_WRITE)?;
        let email = changes.email.map(|e| e.trim().to_lowercase());
        let mut v = Violations::new();
        if let Some(name) = &changes.display_name {
            v.check("user.display_name", validate::required(name, 200));
        }
        if let Some(email) = &email {
            v.check("user.email", validate::email(email));
        }
        v.finish()?;
        let user = self.user_by_uuid(&principal.uuid).await?;
        if email.as_ref().is_some_and(|e| *e != user.email) {
            let Some(hash) = user.password_hash.as_deref() else {
                return Err(Error::precondition(
                    "PASSWORD_REQUIRED",
                    "set a password (password reset) before changing your email address",
                ));
            };
            let mut v = Violations::new();
            v.check(
                "current_password",
                validate::required(&changes.current_password, passwords::MAX_PASSWORD_LEN),
            );
            v.finish()?;
            if !self
                .hasher
                .verify(&changes.current_password, Some(hash))
                .await?
            {
                return Err(Error::invalid(
                    "current_password",
                    "is not the current password",
                ));
            }
        }
        let mut active = user.clone().into_active_model();
        if let Some(name) = changes.display_name {
            active.display_name = Set(name);
        }
        if let Some(email) = &email
            && *email != user.email
        {
            active.email = Set(email.clone());
            active.email_verified = Set(false);
        }
        active.update_time = Set(now_micros());
        let updated = active
            .update(&self.db)
            .await
            .map_err(|err| Error::from_db(err, "email", email.unwrap_or_default()));
        self.revoked(&user.uuid);
        updated
    }

    /// A user by username. Everyone signed in may look a user up (to invite
    /// them, say); only the user and instance admins see the email.
    pub async fn get_user(&self, principal: &Principal, username: &str) -> Result<UserView, Error> {
        if !principal.has_scope(SCOPE_READ) {
            return Err(Error::permission_denied(
                "MISSING_SCOPE",
                "the token lacks the \"read\" scope",
            ));
        }
        let mut v = Violations::new();
        v.check("user", validate::slug(username));
        v.finish()?;
        let user = users::Entity::find()
            .filter(users::Column::Username.eq(username))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("user", username))?;
        let show_email = principal.instance_admin || user.uuid == principal.uuid;
        Ok(UserView { user, show_email })
    }

    /// The instance's users, for instance administrators.
    pub async fn list_users(
        &self,
        principal: &Principal,
        query: &ListQuery,
    ) -> Result<Page<users::Model>, Error> {
        if !principal.instance_admin {
            return Err(Error::permission_denied(
                "INSTANCE_ADMIN_REQUIRED",
                "only instance administrators list users",
            ));
        }
        require_user_scope(principal, SCOPE_ADMIN)?;
        let order = query.order(&["username", "create_time"])?;
        let terms = query.terms(&["username", "email"])?;
        let page = query.page("")?;

        let mut condition = Condition::all();
        for (key, value) in &terms {
            let column = if *key == "username" {
                users::Column::Username
            } else {
                users::Column::Email
            };
            condition = condition.add(
                Expr::col(column)
                    .like(LikeExpr::new(like_prefix(&value.to_lowercase())).escape('\\')),
            );
        }
        let (columns, parts): (Vec<users::Column>, &[KeyPart]) = match order.field {
            "username" => (vec![users::Column::Username], &[KeyPart::Text]),
            _ => (
                vec![users::Column::CreateTime, users::Column::Uuid],
                &[KeyPart::Int, KeyPart::Text],
            ),
        };
        keyed_page(
            &self.db,
            &page,
            users::Entity::find().filter(condition),
            &columns,
            parts,
            order.descending,
            |u| match order.field {
                "username" => vec![u.username.clone()],
                _ => vec![u.create_time.to_string(), u.uuid.clone()],
            },
        )
        .await
    }
}
