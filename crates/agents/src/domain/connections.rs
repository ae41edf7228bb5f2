//! Connections of an organization: how runs reach storage (host paths,
//! volume claims, S3, GCS, Azure blobs), code (git) and image registries.
//!
//! Each kind has required fields in `schema`, checked on write. Credentials
//! never live here: a connection names the Kubernetes `secret` that holds
//! them, and a schema key that looks like a credential is refused.

use orgplane_platform::{
    Error,
    authz::Permission,
    principal::Principal,
    tags,
    time::now_micros,
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::{Activity, action},
    etag::{check_etag, update_at_version},
    page::{KeyPart, ListQuery, Page, keyed_page, like_prefix},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set, TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr},
};
use serde_json::Value;

use super::Agents;
use crate::storage::connections;

/// The kinds, each with the `schema` fields it requires.
pub const KINDS: &[(&str, &[&str])] = &[
    ("host_path", &["host_path", "mount_path"]),
    ("volume_claim", &["volume_claim", "mount_path"]),
    ("s3", &["bucket"]),
    ("gcs", &["bucket"]),
    ("wasb", &["bucket"]),
    ("git", &["url"]),
    ("registry", &["url"]),
    ("custom", &[]),
];

/// Schema keys that would hold a credential: those go in a secret.
const CREDENTIAL_KEYS: &[&str] = &[
    "password",
    "secret",
    "secret_key",
    "access_key",
    "access_key_id",
    "secret_access_key",
    "token",
    "private_key",
    "api_key",
];

/// A connection's fields as created or changed; `None` leaves one alone.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFields {
    /// What it is for.
    pub description: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// The kind (only on create).
    pub kind: Option<String>,
    /// Kind-specific fields.
    pub schema: Option<Value>,
    /// Name of the credentials' secret.
    pub secret: Option<String>,
    /// Name of a config map.
    pub config_map: Option<String>,
}

/// A Kubernetes object name (RFC 1123 subdomain).
fn k8s_name(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err("must be a Kubernetes name: lowercase letters, digits, '-' and '.'".into())
    }
}

/// Checks `schema` for `kind`: an object with the kind's required fields,
/// well formed, and no credentials.
pub fn check_schema(v: &mut Violations, kind: &str, schema: &Value) {
    let field = "connection.schema";
    let Some(object) = schema.as_object() else {
        v.add(field, "must be an object");
        return;
    };
    let Some((_, required)) = KINDS.iter().find(|(k, _)| *k == kind) else {
        return;
    };
    for key in *required {
        match object.get(*key).and_then(Value::as_str) {
            Some(value) if !value.trim().is_empty() => {}
            _ => v.add(
                field,
                format!("a {kind} connection needs `{key}` (a string)"),
            ),
        }
    }
    let text = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or("");
    for key in ["host_path", "mount_path"] {
        let path = text(key);
        if !path.is_empty() && !path.starts_with('/') {
            v.add(field, format!("`{key}` must be an absolute path"));
        }
    }
    if kind == "volume_claim"
        && let Err(e) = k8s_name(text("volume_claim"))
    {
        v.add(field, format!("`volume_claim` {e}"));
    }
    let scheme = match kind {
        "s3" => Some(&["s3://"][..]),
        "gcs" => Some(&["gs://"][..]),
        "wasb" => Some(&["wasb://", "wasbs://", "abfs://", "abfss://"][..]),
        "git" => Some(&["https://", "ssh://", "git@"][..]),
        "registry" => None,
        _ => None,
    };
    let value = match kind {
        "git" => text("url"),
        _ => text("bucket"),
    };
    if let Some(schemes) = scheme
        && !value.is_empty()
        && !schemes.iter().any(|s| value.starts_with(s))
    {
        let key = if kind == "git" { "url" } else { "bucket" };
        v.add(
            field,
            format!(
                "`{key}` of a {kind} connection starts with {}",
                schemes.join(" or ")
            ),
        );
    }
    for key in object.keys() {
        if CREDENTIAL_KEYS.contains(&key.to_lowercase().as_str()) {
            v.add(
                field,
                format!("`{key}` looks like a credential: put it in a Kubernetes secret and name it in `secret`"),
            );
        }
    }
    if schema.to_string().len() > 16 * 1024 {
        v.add(field, "must be at most 16 KiB as JSON");
    }
}

fn check_fields(v: &mut Violations, kind: &str, f: &ConnectionFields) {
    if let Some(d) = &f.description {
        v.check("connection.description", validate::text(d, 2000));
    }
    if let Some(t) = &f.tags {
        tags::check(v, "connection.tags", t);
    }
    if let Some(schema) = &f.schema {
        check_schema(v, kind, schema);
    }
    for (field, value) in [
        ("connection.secret", &f.secret),
        ("connection.config_map", &f.config_map),
    ] {
        if let Some(name) = value.as_deref().filter(|n| !n.is_empty()) {
            v.check(field, k8s_name(name));
        }
    }
}

impl Agents {
    /// Creates a connection.
    pub async fn create_connection(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        fields: ConnectionFields,
    ) -> Result<connections::Model, Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsManage)
            .await?;
        let kind = fields.kind.clone().unwrap_or_default();
        let mut v = Violations::new();
        v.check("connection.name", validate::slug(name));
        if !KINDS.iter().any(|(k, _)| *k == kind) {
            v.add(
                "connection.kind",
                "must be host_path, volume_claim, s3, gcs, wasb, git, registry or custom",
            );
        }
        let fields = ConnectionFields {
            schema: Some(
                fields
                    .schema
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({})),
            ),
            ..fields
        };
        check_fields(&mut v, &kind, &fields);
        v.finish()?;
        let now = now_micros();
        let txn = self.db.begin().await?;
        let row = connections::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            organization_uuid: Set(standing.organization_uuid),
            name: Set(name.to_owned()),
            description: Set(fields.description.unwrap_or_default()),
            tags: Set(tags::store(&fields.tags.unwrap_or_default())),
            kind: Set(kind),
            schema: Set(fields.schema.unwrap_or_default().to_string()),
            secret: Set(fields.secret.unwrap_or_default()),
            config_map: Set(fields.config_map.unwrap_or_default()),
            version: Set(1),
            create_time: Set(now),
            update_time: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|err| Error::from_db(err, "connection", name))?;
        let activity = Activity::new(
            &row.organization_uuid,
            principal,
            action::CREATED,
            "connection",
            name,
        )
        .subject_uuid(&row.uuid);
        self.commit_with(txn, activity).await?;
        Ok(row)
    }

    /// The organization's connection `name`.
    pub(crate) async fn connection(
        &self,
        organization_uuid: &str,
        name: &str,
    ) -> Result<connections::Model, Error> {
        let mut v = Violations::new();
        v.check("connection", validate::slug(name));
        v.finish()?;
        connections::Entity::find()
            .filter(connections::Column::OrganizationUuid.eq(organization_uuid))
            .filter(connections::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("connection", name))
    }

    /// One connection.
    pub async fn get_connection(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
    ) -> Result<connections::Model, Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsRead)
            .await?;
        self.connection(&standing.organization_uuid, name).await
    }

    /// An organization's connections, filtered by `name:`, `kind:`, `tag:`.
    pub async fn list_connections(
        &self,
        principal: &Principal,
        organization: &str,
        query: &ListQuery,
    ) -> Result<Page<connections::Model>, Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsRead)
            .await?;
        let order = query.order(&["name", "create_time"])?;
        let terms = query.terms(&["name", "kind", "tag"])?;
        let page = query.page("")?;
        let mut condition = Condition::all()
            .add(connections::Column::OrganizationUuid.eq(standing.organization_uuid.as_str()));
        for (key, value) in &terms {
            condition = condition.add(match *key {
                "name" => Expr::col(connections::Column::Name)
                    .like(LikeExpr::new(like_prefix(value)).escape('\\')),
                "kind" => connections::Column::Kind.eq(*value),
                _ => connections::Column::Tags.contains(tags::pattern(value)),
            });
        }
        let (columns, parts): (Vec<connections::Column>, &[KeyPart]) = match order.field {
            "name" => (vec![connections::Column::Name], &[KeyPart::Text]),
            _ => (
                vec![connections::Column::CreateTime, connections::Column::Uuid],
                &[KeyPart::Int, KeyPart::Text],
            ),
        };
        keyed_page(
            &self.db,
            &page,
            connections::Entity::find().filter(condition),
            &columns,
            parts,
            order.descending,
            |c| match order.field {
                "name" => vec![c.name.clone()],
                _ => vec![c.create_time.to_string(), c.uuid.clone()],
            },
        )
        .await
    }

    /// Changes a connection; its kind stays. A stale `etag_seen` is
    /// `ABORTED`.
    pub async fn update_connection(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        fields: ConnectionFields,
        etag_seen: &str,
    ) -> Result<connections::Model, Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsManage)
            .await?;
        let row = self.connection(&standing.organization_uuid, name).await?;
        let mut v = Violations::new();
        if fields.kind.as_ref().is_some_and(|k| *k != row.kind) {
            v.add(
                "connection.kind",
                "cannot change: create another connection",
            );
        }
        check_fields(&mut v, &row.kind, &fields);
        v.finish()?;
        check_etag(etag_seen, row.version, "connection")?;
        let mut update = connections::Entity::update_many()
            .col_expr(connections::Column::UpdateTime, Expr::value(now_micros()));
        if let Some(d) = fields.description {
            update = update.col_expr(connections::Column::Description, Expr::value(d));
        }
        if let Some(t) = fields.tags {
            update = update.col_expr(connections::Column::Tags, Expr::value(tags::store(&t)));
        }
        if let Some(s) = fields.schema {
            update = update.col_expr(connections::Column::Schema, Expr::value(s.to_string()));
        }
        if let Some(s) = fields.secret {
            update = update.col_expr(connections::Column::Secret, Expr::value(s));
        }
        if let Some(c) = fields.config_map {
            update = update.col_expr(connections::Column::ConfigMap, Expr::value(c));
        }
        let txn = self.db.begin().await?;
        update_at_version(
            &txn,
            update,
            (connections::Column::Uuid, row.uuid.as_str()),
            (connections::Column::Version, row.version),
            "connection",
        )
        .await?;
        let activity = Activity::new(
            &row.organization_uuid,
            principal,
            action::UPDATED,
            "connection",
            name,
        )
        .subject_uuid(&row.uuid);
        self.commit_with(txn, activity).await?;
        self.connection(&standing.organization_uuid, name).await
    }

    /// Deletes a connection.
    pub async fn delete_connection(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
    ) -> Result<(), Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsManage)
            .await?;
        let row = self.connection(&standing.organization_uuid, name).await?;
        let txn = self.db.begin().await?;
        connections::Entity::delete_by_id(row.uuid.clone())
            .exec(&txn)
            .await?;
        let activity = Activity::new(
            &row.organization_uuid,
            principal,
            action::DELETED,
            "connection",
            name,
        )
        .subject_uuid(&row.uuid);
        self.commit_with(txn, activity).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(kind: &str, schema: Value) -> Vec<String> {
        let mut v = Violations::new();
        check_schema(&mut v, kind, &schema);
        match v.finish() {
            Ok(()) => Vec::new(),
            Err(Error::InvalidArgument(violations)) => {
                violations.into_iter().map(|v| v.description).collect()
            }
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_kind_needs_its_fields() {
        use serde_json::json;
        assert!(problems("s3", json!({"bucket": "s3://data"})).is_empty());
        assert!(
            problems(
                "host_path",
                json!({"host_path": "/data", "mount_path": "/mnt"})
            )
            .is_empty()
        );
        assert!(problems("git", json!({"url": "https://github.com/acme/repo"})).is_empty());
        assert!(problems("custom", json!({"anything": 1})).is_empty());
        assert!(problems("s3", json!({}))[0].contains("needs `bucket`"));
        assert!(problems("gcs", json!({"bucket": "s3://x"}))[0].contains("gs://"));
        assert!(
            problems(
                "host_path",
                json!({"host_path": "data", "mount_path": "/m"})
            )[0]
            .contains("absolute")
        );
        assert!(
            problems(
                "volume_claim",
                json!({"volume_claim": "Bad_Name", "mount_path": "/m"})
            )[0]
            .contains("Kubernetes name")
        );
        assert!(
            problems(
                "s3",
                json!({"bucket": "s3://x", "secret_access_key": "abc"})
            )[0]
            .contains("credential")
        );
        assert!(problems("s3", json!([1]))[0].contains("object"));
    }
}
