//! Personal access tokens and token introspection.

use std::time::Duration;

use orgplane_platform::{
    Error,
    authz::Role,
    principal::{Principal, PrincipalKind, SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE},
    time::{add, now_micros},
    validate::{self, Violations},
};
use orgplane_storage::page::{ListQuery, Page, like_prefix, text_keyed_page};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter, Set,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use super::{
    Identity,
    accounts::{KIND_PERSONAL, TokenRow, insert_token},
    require_user_scope, secrets,
};
use crate::storage::{
    service_accounts::{account, token as account_token},
    tokens, users,
};

/// Scopes a personal access token may carry.
pub const GRANTABLE_SCOPES: &[&str] = &[SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN];

/// Last-use times are written at most this often per token.
const LAST_USE_GRANULARITY: Duration = Duration::from_secs(60);

/// A personal access token as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    /// Slug, unique among the user's tokens.
    pub name: String,
    /// Scopes; empty means `read` and `write`.
    pub scopes: Vec<String>,
    /// Expiry in microseconds; `None` for the default lifetime.
    pub expire_time: Option<i64>,
}

/// Changes to a token; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct TokenChanges {
    /// New name.
    pub name: Option<String>,
    /// New scopes (only narrower than the caller's).
    pub scopes: Option<Vec<String>>,
}

/// How an update names the token it changes.
#[derive(Debug, Clone)]
pub enum TokenAddress {
    /// By UUID (needed to rename).
    Uuid(String),
    /// By current name.
    Name(String),
}

/// What a bearer token authenticates.
#[derive(Debug, Clone)]
pub struct Introspection {
    /// The caller.
    pub principal: Principal,
    /// When the token expires.
    pub expire_time: i64,
}

impl Identity {
    /// Creates a personal access token; returns it and its secret.
    pub async fn create_token(
        &self,
        principal: &Principal,
        new: NewToken,
    ) -> Result<(tokens::Model, String), Error> {
        require_user_scope(principal, SCOPE_WRITE)?;
        let now = now_micros();
        let scopes = if new.scopes.is_empty() {
            vec![SCOPE_READ.to_owned(), SCOPE_WRITE.to_owned()]
        } else {
            new.scopes
        };
        let mut v = Violations::new();
        v.check("token.name", validate::slug(&new.name));
        v.check("token.scopes", self.check_scopes(principal, &scopes));
        let max_expiry = add(now, self.config.max_token_ttl);
        let expire_time = new
            .expire_time
            .unwrap_or_else(|| add(now, self.config.default_token_ttl));
        if expire_time <= now || expire_time > max_expiry {
            v.add(
                "token.expire_time",
                "must be in the future and at most a year ahead",
            );
        }
        v.finish()?;
        let secret = secrets::generate(secrets::PERSONAL_PREFIX);
        let token = insert_token(
            &self.db,
            TokenRow {
                user_uuid: &principal.uuid,
                kind: KIND_PERSONAL,
                name: Some(new.name.clone()),
                secret: &secret,
                scopes: &scopes.join(" "),
                expire_time,
                auth_method: "",
            },
        )
        .await
        .map_err(|err| Error::from_db(err, "token", &new.name))?;
        Ok((token, secret))
    }

    fn check_scopes(&self, principal: &Principal, scopes: &[String]) -> Result<(), String> {
        for scope in scopes {
            if !GRANTABLE_SCOPES.contains(&scope.as_str()) {
                return Err(format!(
                    "unknown scope {scope:?}; known: {}",
                    GRANTABLE_SCOPES.join(", ")
                ));
            }
            if !principal.has_scope(scope) || (scope == SCOPE_ADMIN && !principal.instance_admin) {
                return Err(format!(
                    "cannot grant {scope:?}: the caller does not hold it"
                ));
            }
        }
        Ok(())
    }

    /// The caller's personal access tokens.
    pub async fn list_tokens(
        &self,
        principal: &Principal,
        query: &ListQuery,
    ) -> Result<Page<tokens::Model>, Error> {
        require_user_scope(principal, SCOPE_READ)?;
        let order = query.order(&["create_time", "name"])?;
        let terms = query.terms(&["name"])?;
        let page = query.page("")?;
        let mut condition = Condition::all()
            .add(tokens::Column::UserUuid.eq(principal.uuid.as_str()))
            .add(tokens::Column::Kind.eq(KIND_PERSONAL));
        for (_, prefix) in &terms {
            condition = condition.add(
                Expr::col(tokens::Column::Name)
                    .like(LikeExpr::new(like_prefix(prefix)).escape('\\')),
            );
        }
        // UUIDv7 orders by creation time, so `create_time` sorts by uuid.
        let (column, by_name) = match order.field {
            "name" => (tokens::Column::Name, true),
            _ => (tokens::Column::Uuid, false),
        };
        text_keyed_page(
            &self.db,
            &page,
            tokens::Entity::find().filter(condition),
            column,
            order.descending,
            |t| {
                if by_name {
                    t.name.clone().unwrap_or_default()
                } else {
                    t.uuid.clone()
                }
            },
        )
        .await
    }

    /// One of the caller's personal access tokens, by name.
    pub async fn get_token(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<tokens::Model, Error> {
        require_user_scope(principal, SCOPE_READ)?;
        self.own_token(principal, name, "token").await
    }

    async fn own_token(
        &self,
        principal: &Principal,
        name: &str,
        field: &str,
    ) -> Result<tokens::Model, Error> {
        let mut v = Violations::new();
        v.check(field, validate::slug(name));
        v.finish()?;
        tokens::Entity::find()
            .filter(tokens::Column::UserUuid.eq(principal.uuid.as_str()))
            .filter(tokens::Column::Kind.eq(KIND_PERSONAL))
            .filter(tokens::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("token", name))
    }

    /// Renames a token (addressed by UUID) or changes its scopes.
    pub async fn update_token(
        &self,
        principal: &Principal,
        address: TokenAddress,
        changes: TokenChanges,
    ) -> Result<tokens::Model, Error> {
        require_user_scope(principal, SCOPE_WRITE)?;
        let token = match &address {
            TokenAddress::Name(name) => {
                if changes.name.as_ref().is_some_and(|new| new != name) {
                    return Err(Error::invalid(
                        "token.uuid",
                        "is required to rename a token",
                    ));
                }
                self.own_token(principal, name, "token.name").await?
            }
            TokenAddress::Uuid(uuid) => tokens::Entity::find_by_id(uuid.clone())
                .filter(tokens::Column::UserUuid.eq(principal.uuid.as_str()))
                .filter(tokens::Column::Kind.eq(KIND_PERSONAL))
                .one(&self.db)
                .await?
                .ok_or_else(|| Error::not_found("token", uuid))?,
        };
        let mut v = Violations::new();
        if let Some(new_name) = &changes.name {
            v.check("token.name", validate::slug(new_name));
        }
        if let Some(scopes) = &changes.scopes {
            if scopes.is_empty() {
                v.add("token.scopes", "must name at least one scope");
            }
            v.check("token.scopes", self.check_scopes(principal, scopes));
        }
        v.finish()?;
        let mut active = token.into_active_model();
        if let Some(new_name) = &changes.name {
            active.name = Set(Some(new_name.clone()));
        }
        if let Some(scopes) = changes.scopes {
            active.scopes = Set(scopes.join(" "));
        }
        active.update_time = Set(now_micros());
        let updated = active
            .update(&self.db)
            .await
            .map_err(|err| Error::from_db(err, "token", changes.name.unwrap_or_default()))?;
        self.revoked(&principal.uuid);
        Ok(updated)
    }

    /// Deletes a token; every gateway stops accepting it once it hears of
    /// it (`WatchRevocations`), within its cache TTL at worst.
    pub async fn delete_token(&self, principal: &Principal, name: &str) -> Result<(), Error> {
        require_user_scope(principal, SCOPE_WRITE)?;
        let token = self.own_token(principal, name, "token").await?;
        tokens::Entity::delete_by_id(token.uuid)
            .exec(&self.db)
            .await?;
        self.revoked(&principal.uuid);
        Ok(())
    }

    /// What a bearer secret authenticates, or `None` for an unknown,
    /// expired or revoked one.
    pub async fn introspect(&self, secret: &str) -> Result<Option<Introspection>, Error> {
        if secret.is_empty() || secret.len() > 256 {
            return Ok(None);
        }
        if secret.starts_with(secrets::SERVICE_ACCOUNT_PREFIX) {
            return self.introspect_service_account(secret).await;
        }
        if secret.starts_with(secrets::AGENT_PREFIX) {
            return self.introspect_agent(secret).await;
        }
        let now = now_micros();
        let Some((token, Some(user))) = tokens::Entity::find()
            .filter(tokens::Column::SecretHash.eq(secrets::hash(secret)))
            .find_also_related(users::Entity)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if token.revoke_time.is_some() || token.expire_time <= now {
            return Ok(None);
        }
        if token
            .last_use_time
            .is_none_or(|t| add(t, LAST_USE_GRANULARITY) < now)
        {
            tokens::Entity::update_many()
                .col_expr(tokens::Column::LastUseTime, Expr::value(now))
                .filter(tokens::Column::Uuid.eq(token.uuid.as_str()))
                .exec(&self.db)
                .await?;
        }
        Ok(Some(Introspection {
            principal: Principal {
                kind: PrincipalKind::User,
                uuid: user.uuid,
                name: user.username,
                scopes: token.scopes.split_whitespace().map(str::to_owned).collect(),
                instance_admin: user.instance_admin,
                token_uuid: token.uuid,
                organization: None,
                email: user.email,
                email_verified: user.email_verified,
                role: None,
                organization_uuid: None,
                auth_method: token.auth_method.clone(),
            },
            expire_time: token.expire_time,
        }))
    }
}

impl Identity {
    async fn introspect_service_account(
        &self,
        secret: &str,
    ) -> Result<Option<Introspection>, Error> {
        let now = now_micros();
        let Some((token, Some(account))) = account_token::Entity::find()
            .filter(account_token::Column::SecretHash.eq(secrets::hash(secret)))
            .find_also_related(account::Entity)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if token.expire_time <= now {
            return Ok(None);
        }
        if token
            .last_use_time
            .is_none_or(|t| add(t, LAST_USE_GRANULARITY) < now)
        {
            account_token::Entity::update_many()
                .col_expr(account_token::Column::LastUseTime, Expr::value(now))
                .filter(account_token::Column::Uuid.eq(token.uuid.as_str()))
                .exec(&self.db)
                .await?;
        }
        Ok(Some(Introspection {
            principal: Principal {
                kind: PrincipalKind::ServiceAccount,
                uuid: account.uuid,
                name: account.name,
                scopes: token.scopes.split_whitespace().map(str::to_owned).collect(),
                instance_admin: false,
                token_uuid: token.uuid,
                organization: Some(account.organization),
                email: String::new(),
                email_verified: false,
                role: Role::parse(&account.role),
                organization_uuid: Some(account.organization_uuid),
                auth_method: String::new(),
            },
            expire_time: token.expire_time,
        }))
    }
}
