//! Organization settings: general ones and auth settings (invite-only by
//! default; open sign-up for verified emails of allowed domains; OIDC
//! providers).

use orgplane_platform::{
    Error,
    authz::{Permission, Role},
    principal::Principal,
    time::now_micros,
    validate::{self, Violations},
};
use orgplane_storage::activity::{Activity, action};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set,
    TransactionTrait, sea_query::Expr,
};
use serde::{Deserialize, Serialize};

use super::{
    Organizations,
    organizations::{check_etag, etag, stale},
};
use crate::storage::settings;

/// Roles an organization may give to members who join without one.
pub const DEFAULT_ROLES: &[Role] = &[Role::Viewer, Role::Member, Role::Admin];

/// How people sign in to and join an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSettings {
    /// Joining is by invitation only.
    pub invite_only: bool,
    /// Email domains whose verified users may join when not invite-only.
    pub allowed_email_domains: Vec<String>,
    /// Members may sign in with a password.
    pub password_enabled: bool,
    /// OIDC providers.
    pub providers: Vec<AuthProvider>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            invite_only: true,
            allowed_email_domains: Vec::new(),
            password_enabled: true,
            providers: Vec::new(),
        }
    }
}

/// An OIDC identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthProvider {
    /// Slug unique within the organization.
    pub name: String,
    /// Issuer URL.
    pub issuer: String,
    /// Client id (the ID tokens' audience).
    pub client_id: String,
    /// Email domains it may sign in; empty allows any.
    pub allowed_email_domains: Vec<String>,
    /// In use.
    pub enabled: bool,
}

/// An organization's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Support email.
    pub support_email: String,
    /// Role of members who join without one.
    pub default_role: Role,
    /// Default queue, `agent/queue`.
    pub default_queue: String,
    /// Activity retention in days; 0 keeps forever.
    pub activity_retention_days: i32,
    /// Auth settings.
    pub auth: AuthSettings,
    /// Opaque version.
    pub etag: String,
}

/// Changes to settings; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct SettingsChanges {
    /// New support email.
    pub support_email: Option<String>,
    /// New default role (API string).
    pub default_role: Option<String>,
    /// New default queue.
    pub default_queue: Option<String>,
    /// New retention.
    pub activity_retention_days: Option<i32>,
    /// New invite-only flag.
    pub invite_only: Option<bool>,
    /// New allowed domains.
    pub allowed_email_domains: Option<Vec<String>>,
    /// New password flag.
    pub password_enabled: Option<bool>,
    /// New providers (replaced whole).
    pub providers: Option<Vec<AuthProvider>>,
}

/// Writes the default settings of a new organization.
pub(crate) async fn insert_defaults(
    db: &impl ConnectionTrait,
    organization_uuid: &str,
) -> Result<(), Error> {
    settings::ActiveModel {
        organization_uuid: Set(organization_uuid.to_owned()),
        support_email: Set(String::new()),
        default_role: Set(Role::Member.as_str().to_owned()),
        default_queue: Set(String::new()),
        activity_retention_days: Set(0),
        auth: Set(serde_json::to_string(&AuthSettings::default()).map_err(anyhow::Error::from)?),
        version: Set(1),
        update_time: Set(now_micros()),
    }
    .insert(db)
    .await?;
    Ok(())
}

fn from_row(row: settings::Model) -> Result<Settings, Error> {
    Ok(Settings {
        support_email: row.support_email,
        default_role: Role::parse(&row.default_role).unwrap_or(Role::Member),
        default_queue: row.default_queue,
        activity_retention_days: row.activity_retention_days,
        auth: serde_json::from_str(&row.auth).map_err(anyhow::Error::from)?,
        etag: etag(row.version),
    })
}

/// Most identity providers of an organization.
pub const MAX_PROVIDERS: usize = 20;
/// Most allowed email domains of an organization (and of each provider).
pub const MAX_DOMAINS: usize = 100;

fn domain_name(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value.contains('.')
        && !value.starts_with(['.', '-'])
        && !value.ends_with(['.', '-'])
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!("{value:?} is not a lowercase domain name"))
    }
}

fn issuer_url(value: &str) -> Result<(), String> {
    let loopback = value.starts_with("http://127.0.0.1") || value.starts_with("http://localhost");
    if (value.starts_with("https://") || loopback)
        && value.len() <= 2048
        && !value.chars().any(char::is_whitespace)
    {
        Ok(())
    } else {
        Err("must be an https URL (http only on loopback)".into())
    }
}

fn check(v: &mut Violations, c: &SettingsChanges) {
    if let Some(email) = c.support_email.as_deref().filter(|e| !e.is_empty()) {
        v.check("settings.support_email", validate::email(email));
    }
    if let Some(role) = &c.default_role
        && !Role::parse(role).is_some_and(|r| DEFAULT_ROLES.contains(&r))
    {
        v.add("settings.default_role", "must be viewer, member or admin");
    }
    if let Some(queue) = c.default_queue.as_deref().filter(|q| !q.is_empty()) {
        let ok = queue
            .split_once('/')
            .is_some_and(|(a, q)| validate::slug(a).is_ok() && validate::slug(q).is_ok());
        if !ok {
            v.add("settings.default_queue", "must be agent/queue");
        }
    }
    if let Some(days) = c.activity_retention_days
        && !(0..=3650).contains(&days)
    {
        v.add("settings.activity_retention_days", "must be 0 to 3650");
    }
    if let Some(domains) = &c.allowed_email_domains {
        v.list(
            "settings.auth.allowed_email_domains",
            domains,
            MAX_DOMAINS,
            |d| domain_name(d),
        );
    }
    if let Some(providers) = &c.providers {
        if providers.len() > MAX_PROVIDERS {
            v.add(
                "settings.auth.providers",
                format!("at most {MAX_PROVIDERS} providers"),
            );
            return;
        }
        let mut names = Vec::new();
        for p in providers {
            v.check("settings.auth.providers.name", validate::slug(&p.name));
            if names.contains(&&p.name) {
                v.add(
                    "settings.auth.providers.name",
                    format!("{:?} appears twice", p.name),
                );
            }
            names.push(&p.name);
            v.check("settings.auth.providers.issuer", issuer_url(&p.issuer));
            v.check(
                "settings.auth.providers.client_id",
                validate::required(&p.client_id, 200),
            );
            v.list(
                "settings.auth.providers.allowed_email_domains",
                &p.allowed_email_domains,
                MAX_DOMAINS,
                |d| domain_name(d),
            );
        }
    }
}

impl Organizations {
    /// The settings row, written with defaults for organizations created
    /// before settings existed.
    async fn settings_row(&self, organization_uuid: &str) -> Result<settings::Model, Error> {
        if let Some(row) = settings::Entity::find_by_id(organization_uuid.to_owned())
            .one(&self.db)
            .await?
        {
            return Ok(row);
        }
        match insert_defaults(&self.db, organization_uuid).await {
            Ok(()) | Err(Error::Internal(_)) => {}
            Err(other) => return Err(other),
        }
        settings::Entity::find_by_id(organization_uuid.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no settings for {organization_uuid}").into())
    }

    /// The settings of an organization by UUID, whoever asks (for joins).
    pub(crate) async fn settings_of_org(&self, organization_uuid: &str) -> Result<Settings, Error> {
        from_row(self.settings_row(organization_uuid).await?)
    }

    /// An organization's settings (owners and managers: they name the
    /// identity providers and allowed domains).
    pub async fn get_settings(
        &self,
        principal: &Principal,
        organization: &str,
    ) -> Result<Settings, Error> {
        let access = self
            .require(principal, organization, Permission::SettingsRead)
            .await?;
        from_row(self.settings_row(&access.organization.uuid).await?)
    }

    /// Changes settings; a stale `etag` is `ABORTED`.
    pub async fn update_settings(
        &self,
        principal: &Principal,
        organization: &str,
        changes: SettingsChanges,
        etag_seen: &str,
    ) -> Result<Settings, Error> {
        let access = self
            .require(principal, organization, Permission::SettingsUpdate)
            .await?;
        let mut v = Violations::new();
        check(&mut v, &changes);
        v.finish()?;
        let row = self.settings_row(&access.organization.uuid).await?;
        check_etag(etag_seen, row.version, "settings")?;
        let changed_fields: Vec<&str> = [
            ("support_email", changes.support_email.is_some()),
            ("default_role", changes.default_role.is_some()),
            ("default_queue", changes.default_queue.is_some()),
            (
                "activity_retention_days",
                changes.activity_retention_days.is_some(),
            ),
            ("auth.invite_only", changes.invite_only.is_some()),
            (
                "auth.allowed_email_domains",
                changes.allowed_email_domains.is_some(),
            ),
            ("auth.password_enabled", changes.password_enabled.is_some()),
            ("auth.providers", changes.providers.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, given)| given.then_some(field))
        .collect();
        let mut next = from_row(row.clone())?;
        if let Some(x) = changes.support_email {
            next.support_email = x;
        }
        if let Some(x) = changes.default_role.as_deref().and_then(Role::parse) {
            next.default_role = x;
        }
        if let Some(x) = changes.default_queue {
            next.default_queue = x;
        }
        if let Some(x) = changes.activity_retention_days {
            next.activity_retention_days = x;
        }
        if let Some(x) = changes.invite_only {
            next.auth.invite_only = x;
        }
        if let Some(x) = changes.allowed_email_domains {
            next.auth.allowed_email_domains = x;
        }
        if let Some(x) = changes.password_enabled {
            next.auth.password_enabled = x;
        }
        if let Some(x) = changes.providers {
            next.auth.providers = x;
        }
        let auth = serde_json::to_string(&next.auth).map_err(anyhow::Error::from)?;
        let txn = self.db.begin().await?;
        let updated = settings::Entity::update_many()
            .col_expr(
                settings::Column::SupportEmail,
                Expr::value(next.support_email.clone()),
            )
            .col_expr(
                settings::Column::DefaultRole,
                Expr::value(next.default_role.as_str()),
            )
            .col_expr(
                settings::Column::DefaultQueue,
                Expr::value(next.default_queue.clone()),
            )
            .col_expr(
                settings::Column::ActivityRetentionDays,
                Expr::value(next.activity_retention_days),
            )
            .col_expr(settings::Column::Auth, Expr::value(auth))
            .col_expr(settings::Column::Version, Expr::value(row.version + 1))
            .col_expr(settings::Column::UpdateTime, Expr::value(now_micros()))
            .filter(settings::Column::OrganizationUuid.eq(row.organization_uuid.as_str()))
            .filter(settings::Column::Version.eq(row.version))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            return Err(stale("settings"));
        }
        // Which fields changed, never their values (auth settings hold
        // provider details).
        let activity = Activity::new(
            &row.organization_uuid,
            principal,
            action::UPDATED,
            "organization_settings",
            organization,
        )
        .metadata(serde_json::json!({"fields": changed_fields}));
        self.commit_with(txn, activity).await?;
        next.etag = etag(row.version + 1);
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_only_by_default_and_checks() {
        assert!(AuthSettings::default().invite_only);
        assert!(domain_name("example.com").is_ok());
        for bad in [
            "",
            "Example.com",
            "localhost",
            ".example.com",
            "ex ample.com",
        ] {
            assert!(domain_name(bad).is_err(), "{bad}");
        }
        assert!(issuer_url("https://accounts.example.com").is_ok());
        assert!(issuer_url("http://127.0.0.1:8080").is_ok());
        assert!(issuer_url("http://evil.example.com").is_err());
    }
}
