//! Models and components: created, read, listed, changed with an etag, and
//! deleted — with their versions only when asked to (`force`). Lists leave
//! out what restrictions hide from the caller.

use orgplane_platform::{
    Error,
    authz::Permission,
    principal::Principal,
    restriction::Restriction,
    tags,
    time::now_micros,
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::{Activity, action, commit_with},
    etag::{check_etag, update_at_version},
    page::{KeyPart, ListQuery, Page, keyed_page, like_prefix},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, Set,
    TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use super::{Kind, Registry};
use crate::storage::{entries, versions};

/// Visibilities as stored.
pub const VISIBILITIES: &[&str] = &["private", "public"];

/// An entry's fields as created or changed; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct EntryFields {
    /// What it is.
    pub description: Option<String>,
    /// Tags (slugs).
    pub tags: Option<Vec<String>>,
    /// Markdown.
    pub readme: Option<String>,
    /// `private` or `public`.
    pub visibility: Option<String>,
    /// Who reaches it besides owners and managers (`restrictions.manage`).
    pub restriction: Option<Restriction>,
}

fn check_fields(v: &mut Violations, kind: Kind, f: &EntryFields) {
    let field = |name: &str| format!("{}.{name}", kind.field());
    if let Some(d) = &f.description {
        v.check(&field("description"), validate::text(d, 2000));
    }
    if let Some(t) = &f.tags {
        tags::check(v, &field("tags"), t);
    }
    if let Some(readme) = &f.readme {
        v.check(&field("readme"), validate::text(readme, 100_000));
    }
    if let Some(vis) = &f.visibility
        && !VISIBILITIES.contains(&vis.as_str())
    {
        v.add(&field("visibility"), "must be private or public");
    }
    if let Some(r) = &f.restriction {
        r.check(v, &field("restriction"));
    }
}

impl Registry {
    /// Creates a model or component.
    pub async fn create_entry(
        &self,
        principal: &Principal,
        organization: &str,
        kind: Kind,
        name: &str,
        fields: EntryFields,
    ) -> Result<entries::Model, Error> {
        let standing = self
            .require(principal, organization, Permission::OrganizationRead)
            .await?;
        let hub = self
            .restrictions_over(&standing.organization_uuid, kind, None)
            .await?;
        let standing = self
            .organizations
            .permissions
            .require_within(
                principal,
                organization,
                Permission::RegistryManage,
                // Not created yet: a grant naming it (left from a deleted
                // entry of that name) does not reach it; the organization
                // role or a `*` grant does.
                kind.entity(name, Some(now_micros())),
                &hub,
                false,
            )
            .await?;
        let mut v = Violations::new();
        v.check(&format!("{}.name", kind.field()), validate::slug(name));
        check_fields(&mut v, kind, &fields);
        v.finish()?;
        self.check_new_restriction(principal, &standing, kind, &fields)
            .await?;
        let restriction = fields.restriction.unwrap_or_default();
        let now = now_micros();
        let txn = self.db.begin().await?;
        let row = entries::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            organization_uuid: Set(standing.organization_uuid),
            kind: Set(kind.as_str().to_owned()),
            name: Set(name.to_owned()),
            description: Set(fields.description.unwrap_or_default()),
            tags: Set(tags::store(&fields.tags.unwrap_or_default())),
            readme: Set(fields.readme.unwrap_or_default()),
            visibility: Set(fields.visibility.unwrap_or_else(|| "private".into())),
            version: Set(1),
            create_time: Set(now),
            update_time: Set(now),
            restricted: Set(restriction.restricted),
            restriction: Set(restriction.store()),
        }
        .insert(&txn)
        .await
        .map_err(|err| Error::from_db(err, kind.as_str(), name))?;
        commit_with(txn, entry_activity(&row, principal, action::CREATED)).await?;
        Ok(row)
    }

    /// One model or component.
    pub async fn get_entry(
        &self,
        principal: &Principal,
        organization: &str,
        kind: Kind,
        name: &str,
    ) -> Result<entries::Model, Error> {
        let (_, entry) = self
            .entry_with(
                principal,
                organization,
                kind,
                name,
                Permission::RegistryRead,
            )
            .await?;
        Ok(entry)
    }

    /// How many versions an entry has.
    pub async fn version_count(&self, entry: &entries::Model) -> Result<u64, Error> {
        Ok(versions::Entity::find()
            .filter(versions::Column::EntryUuid.eq(entry.uuid.as_str()))
            .count(&self.db)
            .await?)
    }

    /// An organization's models or components, filtered by `name:` and
    /// `tag:`. Those who read the whole registry see every entry; everyone
    /// else in the organization sees the public ones.
    pub async fn list_entries(
        &self,
        principal: &Principal,
        organization: &str,
        kind: Kind,
        query: &ListQuery,
    ) -> Result<Page<entries::Model>, Error> {
        let standing = self
            .require(principal, organization, Permission::RegistryRead)
            .await?;
        let order = query.order(&["name", "create_time", "update_time"])?;
        let terms = query.terms(&["name", "tag"])?;
        let page = query.page("")?;
        let mut condition = Condition::all()
            .add(entries::Column::OrganizationUuid.eq(standing.organization_uuid.as_str()))
            .add(entries::Column::Kind.eq(kind.as_str()));
        let settings = self
            .settings_of(&self.db, &standing.organization_uuid)
            .await?;
        if let Some(viewer) = self
            .admit_to_hub(principal, organization, &standing, (kind, &settings))
            .await?
        {
            let hidden = self
                .hidden_names(&self.db, &standing.organization_uuid, kind, &viewer)
                .await?;
            if !hidden.is_empty() {
                condition = condition.add(entries::Column::Name.is_not_in(hidden));
            }
        }
        for (key, value) in &terms {
            condition = condition.add(match *key {
                "name" => Expr::col(entries::Column::Name)
                    .like(LikeExpr::new(like_prefix(value)).escape('\\')),
                _ => {
                    validate::slug(value)
                        .map_err(|e| Error::invalid("filter", format!("tag {e}")))?;
                    entries::Column::Tags.contains(tags::pattern(value))
                }
            });
        }
        let (columns, parts): (Vec<entries::Column>, &[KeyPart]) = match order.field {
            "name" => (vec![entries::Column::Name], &[KeyPart::Text]),
            "create_time" => (
                vec![entries::Column::CreateTime, entries::Column::Uuid],
                &[KeyPart::Int, KeyPart::Text],
            ),
            _ => (
                vec![entries::Column::UpdateTime, entries::Column::Uuid],
                &[KeyPart::Int, KeyPart::Text],
            ),
        };
        keyed_page(
            &self.db,
            &page,
            entries::Entity::find().filter(condition),
            &columns,
            parts,
            order.descending,
            |e| match order.field {
                "name" => vec![e.name.clone()],
                "create_time" => vec![e.create_time.to_string(), e.uuid.clone()],
                _ => vec![e.update_time.to_string(), e.uuid.clone()],
            },
        )
        .await
    }

    /// Changes an entry's fields; a stale `etag_seen` is `ABORTED`.
    pub async fn update_entry(
        &self,
        principal: &Principal,
        organization: &str,
        kind: Kind,
        name: &str,
        fields: EntryFields,
        etag_seen: &str,
    ) -> Result<entries::Model, Error> {
        let (standing, entry) = self
            .entry_with(
                principal,
                organization,
                kind,
                name,
                Permission::RegistryManage,
            )
            .await?;
        let mut v = Violations::new();
        check_fields(&mut v, kind, &fields);
        v.finish()?;
        self.check_new_restriction(principal, &standing, kind, &fields)
            .await?;
        check_etag(etag_seen, entry.version, kind.as_str())?;
        let now = now_micros();
        let mut update =
            entries::Entity::update_many().col_expr(entries::Column::UpdateTime, Expr::value(now));
        if let Some(d) = fields.description {
            update = update.col_expr(entries::Column::Description, Expr::value(d));
        }
        if let Some(t) = fields.tags {
            update = update.col_expr(entries::Column::Tags, Expr::value(tags::store(&t)));
        }
        if let Some(r) = fields.readme {
            update = update.col_expr(entries::Column::Readme, Expr::value(r));
        }
        if let Some(vis) = fields.visibility {
            update = update.col_expr(entries::Column::Visibility, Expr::value(vis));
        }
        if let Some(r) = fields.restriction {
            update = update
                .col_expr(entries::Column::Restricted, Expr::value(r.restricted))
                .col_expr(entries::Column::Restriction, Expr::value(r.store()));
        }
        let txn = self.db.begin().await?;
        update_at_version(
            &txn,
            update,
            (entries::Column::Uuid, entry.uuid.as_str()),
            (entries::Column::Version, entry.version),
            kind.as_str(),
        )
        .await?;
        commit_with(txn, entry_activity(&entry, principal, action::UPDATED)).await?;
        entries::Entity::find_by_id(entry.uuid)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found(kind.as_str(), name))
    }

    /// When `fields` set a restriction: `restrictions.manage` with the
    /// caller's effective role on the entry, and users and teams the
    /// organization has.
    async fn check_new_restriction(
        &self,
        principal: &Principal,
        standing: &orgplane_transport::access::Standing,
        kind: Kind,
        fields: &EntryFields,
    ) -> Result<(), Error> {
        let Some(r) = &fields.restriction else {
            return Ok(());
        };
        orgplane_platform::authz::check(principal, standing.role, Permission::RestrictionsManage)?;
        self.organizations
            .check_restriction(
                &standing.organization_uuid,
                r,
                &format!("{}.restriction", kind.field()),
            )
            .await
    }

    /// Deletes an entry; one with versions only with `force` (they go too).
    pub async fn delete_entry(
        &self,
        principal: &Principal,
        organization: &str,
        kind: Kind,
        name: &str,
        force: bool,
    ) -> Result<(), Error> {
        let (_, entry) = self
            .entry_with(
                principal,
                organization,
                kind,
                name,
                Permission::RegistryManage,
            )
            .await?;
        if !force && self.version_count(&entry).await? > 0 {
            return Err(Error::precondition(
                "HAS_VERSIONS",
                format!(
                    "the {} has versions: delete them first, or delete with force",
                    kind.as_str()
                ),
            ));
        }
        let txn = self.db.begin().await?;
        entries::Entity::delete_by_id(entry.uuid.clone())
            .exec(&txn)
            .await?;
        commit_with(txn, entry_activity(&entry, principal, action::DELETED)).await
    }
}

/// What `actor` did to a model or component.
pub(crate) fn entry_activity(entry: &entries::Model, actor: &Principal, action: &str) -> Activity {
    Activity::new(
        &entry.organization_uuid,
        actor,
        action,
        &entry.kind,
        &entry.name,
    )
    .subject_uuid(&entry.uuid)
}

/// What `actor` did to a version of `entry`.
pub(crate) fn version_activity(
    entry: &entries::Model,
    version: &crate::storage::versions::Model,
    actor: &Principal,
    action: &str,
) -> Activity {
    Activity::new(
        &entry.organization_uuid,
        actor,
        action,
        &format!("{}_version", entry.kind),
        &version.name,
    )
    .subject_uuid(&version.uuid)
    .parent(&entry.kind, &entry.name)
    .project(&version.project)
}
