//! Teams: groups of members with team roles, granted a role on chosen
//! projects, model registries and component hubs. On such an entity a user
//! acts with the strongest of their organization role and the roles their
//! teams grant on it ([`Organizations::require_on`]).

use std::collections::HashMap;

use orgplane_platform::{
    Error,
    authz::{Permission, Role},
    principal::Principal,
    time::now_micros,
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::{Activity, action},
    page::{KeyPart, ListQuery, Page, after, key_values, like_prefix},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Set, TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr},
};
use serde::{Deserialize, Serialize};

use super::{
    Organizations,
    access::Access,
    organizations::{check_etag, stale},
};
use crate::storage::{grants, members, teams};

/// Kinds of entities a team can be granted.
pub const ENTITY_KINDS: &[&str] = &["project", "model_registry", "component_hub"];
/// Team roles.
pub const TEAM_ROLES: &[Role] = &[Role::Viewer, Role::Member, Role::Admin];
/// Most grants of one team.
pub const MAX_GRANTS: usize = 100;

/// A role granted by a team on one entity (or `*`: every entity of the kind).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// `project`, `model_registry` or `component_hub`.
    pub kind: String,
    /// Slug of the entity, or `*`.
    pub name: String,
    /// `viewer`, `member` or `admin`.
    pub role: String,
    /// When the entity was first granted, microseconds (the server sets it;
    /// 0 in rows written before it existed, read as the team's last
    /// change). A grant on a model or component applies only to the entry
    /// of that name that existed by then, never to a later one of the same
    /// name.
    #[serde(default)]
    pub granted_at: i64,
}

/// A role the caller holds on entities of one kind through a team or a
/// grant of their own.
#[derive(Debug, Clone)]
pub(crate) struct Granted {
    /// Slug of the entity, or `*`.
    pub name: String,
    pub role: Role,
    /// When the entity was granted (see [`Grant::granted_at`]).
    pub granted_at: i64,
}

impl Granted {
    /// Whether this grant reaches the entity `name` created at `created`
    /// (when the caller knows it: the registry's entries; projects' grants
    /// are deleted with them instead).
    pub fn reaches(&self, name: &str, created: Option<i64>) -> bool {
        self.name == "*" || (self.name == name && created.is_none_or(|c| self.granted_at >= c))
    }
}

/// A team's fields as created or changed; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct TeamFields {
    /// New name (rename).
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Grants (replaced whole).
    pub grants: Option<Vec<Grant>>,
}

/// The grants of a team row.
pub fn grants_of(team: &teams::team::Model) -> Vec<Grant> {
    let mut grants: Vec<Grant> = serde_json::from_str(&team.grants).unwrap_or_default();
    for grant in &mut grants {
        if grant.granted_at == 0 {
            grant.granted_at = team.update_time;
        }
    }
    grants
}

/// `grants` as stored: each stamped with when its entity was first granted
/// (kept from `before` when the entity was granted already, else `now`).
fn stamped(mut grants: Vec<Grant>, before: &[Grant], now: i64) -> Vec<Grant> {
    for grant in &mut grants {
        grant.granted_at = before
            .iter()
            .find(|b| b.kind == grant.kind && b.name == grant.name)
            .map_or(now, |b| b.granted_at);
    }
    grants
}

/// Ends every grant on the entity `kind`/`name` of an organization made
/// before `before` — its members' own grants and its teams' — inside `txn`
/// (the entity is deleted: a grant made since names a new entity of that
/// name). Teams that change get a new etag.
pub(crate) async fn revoke_grants_on(
    txn: &sea_orm::DatabaseTransaction,
    organization_uuid: &str,
    (kind, name): (&str, &str),
    before: i64,
) -> Result<(), Error> {
    grants::member::Entity::delete_many()
        .filter(grants::member::Column::OrganizationUuid.eq(organization_uuid))
        .filter(grants::member::Column::Kind.eq(kind))
        .filter(grants::member::Column::Name.eq(name))
        .filter(grants::member::Column::CreateTime.lt(before))
        .exec(txn)
        .await?;
    let now = now_micros();
    for team in teams::team::Entity::find()
        .filter(teams::team::Column::OrganizationUuid.eq(organization_uuid))
        .all(txn)
        .await?
    {
        let held = grants_of(&team);
        let kept: Vec<Grant> = held
            .iter()
            .filter(|g| !(g.kind == kind && g.name == name && g.granted_at < before))
            .cloned()
            .collect();
        if kept.len() == held.len() {
            continue;
        }
        teams::team::Entity::update_many()
            .col_expr(
                teams::team::Column::Grants,
                Expr::value(serde_json::to_string(&kept).map_err(anyhow::Error::from)?),
            )
            .col_expr(
                teams::team::Column::Version,
                Expr::col(teams::team::Column::Version).add(1),
            )
            .col_expr(teams::team::Column::UpdateTime, Expr::value(now))
            .filter(teams::team::Column::Uuid.eq(team.uuid.as_str()))
            .exec(txn)
            .await?;
    }
    Ok(())
}

fn team_role(field: &str, v: &mut Violations, role: &str) {
    if !Role::parse(role).is_some_and(|r| TEAM_ROLES.contains(&r)) {
        v.add(field, "must be viewer, member or admin");
    }
}

fn check_fields(v: &mut Violations, f: &TeamFields) {
    if let Some(name) = &f.name {
        v.check("team.name", validate::slug(name));
    }
    if let Some(d) = &f.description {
        v.check("team.description", validate::text(d, 2000));
    }
    if f.grants.as_ref().is_some_and(|g| g.len() > MAX_GRANTS) {
        v.add("team.grants", format!("at most {MAX_GRANTS} grants"));
        return;
    }
    for grant in f.grants.iter().flatten() {
        if !ENTITY_KINDS.contains(&grant.kind.as_str()) {
            v.add(
                "team.grants.kind",
                "must be project, model_registry or component_hub",
            );
        }
        if grant.name != "*" {
            v.check("team.grants.name", validate::slug(&grant.name));
        }
        team_role("team.grants.role", v, &grant.role);
    }
}

impl Organizations {
    /// Every `(name, role)` granted to the caller on entities of `kind`, by
    /// their teams and to them alone.
    pub(crate) async fn granted_roles(
        &self,
        access: &Access,
        kind: &str,
    ) -> Result<Vec<Granted>, Error> {
        let team_roles = self.team_roles_of(access).await?;
        let mut granted = Vec::new();
        if !team_roles.is_empty() {
            let rows = teams::team::Entity::find()
                .filter(teams::team::Column::Uuid.is_in(team_roles.keys().cloned()))
                .all(&self.db)
                .await?;
            for team in &rows {
                let own = team_roles[&team.uuid];
                granted.extend(
                    grants_of(team)
                        .into_iter()
                        .filter(|g| g.kind == kind)
                        .filter_map(|g| {
                            Some(Granted {
                                // Bounded by the caller's own role in the team.
                                role: Role::parse(&g.role)?.min(own),
                                name: g.name,
                                granted_at: g.granted_at,
                            })
                        }),
                );
            }
        }
        if let Some(member) = &access.member {
            let own = grants::member::Entity::find()
                .filter(grants::member::Column::MemberUuid.eq(member.uuid.as_str()))
                .filter(grants::member::Column::Kind.eq(kind))
                .all(&self.db)
                .await?;
            granted.extend(own.into_iter().filter_map(|g| {
                Some(Granted {
                    role: Role::parse(&g.role)?,
                    name: g.name,
                    granted_at: g.create_time,
                })
            }));
        }
        Ok(granted)
    }

    /// The caller's role in each of their teams, by team UUID.
    async fn team_roles_of(&self, access: &Access) -> Result<HashMap<String, Role>, Error> {
        Ok(teams::member::Entity::find()
            .filter(teams::member::Column::OrganizationUuid.eq(access.organization.uuid.as_str()))
            .filter(teams::member::Column::UserUuid.eq(access.caller_uuid.as_str()))
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|m| Some((m.team_uuid, Role::parse(&m.role)?)))
            .collect())
    }

    /// The names of the teams the caller of `access` belongs to.
    pub(crate) async fn team_names_of(&self, access: &Access) -> Result<Vec<String>, Error> {
        let team_uuids: Vec<String> = self.team_roles_of(access).await?.into_keys().collect();
        if team_uuids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(teams::team::Entity::find()
            .filter(teams::team::Column::Uuid.is_in(team_uuids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect())
    }

    pub(crate) async fn team(
        &self,
        access: &Access,
        name: &str,
        field: &str,
    ) -> Result<teams::team::Model, Error> {
        let mut v = Violations::new();
        v.check(field, validate::slug(name));
        v.finish()?;
        teams::team::Entity::find()
            .filter(teams::team::Column::OrganizationUuid.eq(access.organization.uuid.as_str()))
            .filter(teams::team::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("team", name))
    }

    /// Creates a team.
    pub async fn create_team(
        &self,
        principal: &Principal,
        organization: &str,
        fields: TeamFields,
    ) -> Result<teams::team::Model, Error> {
        let access = self
            .require(principal, organization, Permission::TeamsManage)
            .await?;
        let mut v = Violations::new();
        if fields.name.is_none() {
            v.add("team.name", "must not be empty");
        }
        check_fields(&mut v, &fields);
        v.finish()?;
        let name = fields.name.unwrap_or_default();
        let now = now_micros();
        let txn = self.db.begin().await?;
        let row = teams::team::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            organization_uuid: Set(access.organization.uuid.clone()),
            name: Set(name.clone()),
            description: Set(fields.description.unwrap_or_default()),
            grants: Set(serde_json::to_string(&stamped(
                fields.grants.unwrap_or_default(),
                &[],
                now,
            ))
            .map_err(anyhow::Error::from)?),
            version: Set(1),
            create_time: Set(now),
            update_time: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|err| Error::from_db(err, "team", &name))?;
        self.commit_with(txn, team_activity(&row, principal, action::CREATED))
            .await?;
        Ok(row)
    }

    /// A team.
    pub async fn get_team(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
    ) -> Result<teams::team::Model, Error> {
        let access = self
            .require(principal, organization, Permission::TeamsRead)
            .await?;
        self.team(&access, name, "team").await
    }

    /// Teams, filtered by `name:`.
    pub async fn list_teams(
        &self,
        principal: &Principal,
        organization: &str,
        query: &ListQuery,
    ) -> Result<Page<teams::team::Model>, Error> {
        let access = self
            .require(principal, organization, Permission::TeamsRead)
            .await?;
        let order = query.order(&["name", "create_time"])?;
        let terms = query.terms(&["name"])?;
        let page = query.page("")?;
        let mut condition = Condition::all()
            .add(teams::team::Column::OrganizationUuid.eq(access.organization.uuid.as_str()));
        for (_, prefix) in &terms {
            condition = condition.add(
                Expr::col(teams::team::Column::Name)
                    .like(LikeExpr::new(like_prefix(prefix)).escape('\\')),
            );
        }
        let (column, part) = match order.field {
            "name" => (teams::team::Column::Name, KeyPart::Text),
            _ => (teams::team::Column::Uuid, KeyPart::Text),
        };
        let mut query = teams::team::Entity::find().filter(condition.clone());
        if let Some(key) = &page.after {
            query = query.filter(after(
                &[column],
                key_values(key, &[part])?,
                order.descending,
            ));
        }
        query = if order.descending {
            query.order_by_desc(column)
        } else {
            query.order_by_asc(column)
        };
        let rows = query.limit(page.fetch_limit()).all(&self.db).await?;
        let (items, next_page_token) = page.finish(rows, |t| match order.field {
            "name" => vec![t.name.clone()],
            _ => vec![t.uuid.clone()],
        });
        let matches = teams::team::Entity::find().filter(condition).into_query();
        let total_size = page
            .total_size(&self.db, items.len(), &next_page_token, matches)
            .await?;
        Ok(Page {
            items,
            next_page_token,
            total_size,
        })
    }

    /// Renames a team or changes its description or grants.
    pub async fn update_team(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        fields: TeamFields,
        etag_seen: &str,
    ) -> Result<teams::team::Model, Error> {
        let access = self
            .require(principal, organization, Permission::TeamsManage)
            .await?;
        let team = self.team(&access, name, "team.name").await?;
        let mut v = Violations::new();
        check_fields(&mut v, &fields);
        v.finish()?;
        check_etag(etag_seen, team.version, "team")?;
        let now = now_micros();
        let mut update = teams::team::Entity::update_many()
            .col_expr(teams::team::Column::Version, Expr::value(team.version + 1))
            .col_expr(teams::team::Column::UpdateTime, Expr::value(now));
        if let Some(x) = &fields.name {
            update = update.col_expr(teams::team::Column::Name, Expr::value(x.clone()));
        }
        if let Some(x) = fields.description {
            update = update.col_expr(teams::team::Column::Description, Expr::value(x));
        }
        if let Some(x) = fields.grants {
            let json = serde_json::to_string(&stamped(x, &grants_of(&team), now))
                .map_err(anyhow::Error::from)?;
            update = update.col_expr(teams::team::Column::Grants, Expr::value(json));
        }
        let txn = self.db.begin().await?;
        let row = update
            .filter(teams::team::Column::Uuid.eq(team.uuid.as_str()))
            .filter(teams::team::Column::Version.eq(team.version))
            .exec_with_returning(&txn)
            .await
            .map_err(|err| Error::from_db(err, "team", fields.name.unwrap_or_default()))?
            .into_iter()
            .next()
            .ok_or_else(|| stale("team"))?;
        self.commit_with(txn, team_activity(&row, principal, action::UPDATED))
            .await?;
        Ok(row)
    }

    /// Deletes a team; its grants end.
    pub async fn delete_team(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
    ) -> Result<(), Error> {
        let access = self
            .require(principal, organization, Permission::TeamsManage)
            .await?;
        let team = self.team(&access, name, "team").await?;
        let txn = self.db.begin().await?;
        teams::member::Entity::delete_many()
            .filter(teams::member::Column::TeamUuid.eq(team.uuid.as_str()))
            .exec(&txn)
            .await?;
        teams::team::Entity::delete_by_id(team.uuid.clone())
            .exec(&txn)
            .await?;
        self.commit_with(txn, team_activity(&team, principal, action::DELETED))
            .await
    }

    /// Adds an organization member to a team.
    pub async fn add_team_member(
        &self,
        principal: &Principal,
        organization: &str,
        team: &str,
        user: &str,
        role: &str,
    ) -> Result<teams::member::Model, Error> {
        let access = self
            .require(principal, organization, Permission::TeamsManage)
            .await?;
        let team = self.team(&access, team, "team").await?;
        let mut v = Violations::new();
        v.check("member.user", validate::slug(user));
        team_role("member.role", &mut v, role);
        v.finish()?;
        let member = members::Entity::find()
            .filter(members::Column::OrganizationUuid.eq(access.organization.uuid.as_str()))
            .filter(members::Column::Username.eq(user))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("member", user))?;
        let txn = self.db.begin().await?;
        let row = teams::member::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            team_uuid: Set(team.uuid.clone()),
            organization_uuid: Set(access.organization.uuid.clone()),
            user_uuid: Set(member.user_uuid),
            username: Set(member.username),
            role: Set(role.to_owned()),
            create_time: Set(now_micros()),
        }
        .insert(&txn)
        .await
        .map_err(|err| Error::from_db(err, "team member", user))?;
        let activity = team_member_activity(&team, user, principal, action::CREATED)
            .metadata(serde_json::json!({"role": role}));
        self.commit_with(txn, activity).await?;
        Ok(row)
    }

    /// A team's members, by username.
    pub async fn list_team_members(
        &self,
        principal: &Principal,
        organization: &str,
        team: &str,
        query: &ListQuery,
    ) -> Result<Page<teams::member::Model>, Error> {
        let access = self
            .require(principal, organization, Permission::TeamsRead)
            .await?;
        let team = self.team(&access, team, "team").await?;
        let page = query.page("")?;
        let condition = teams::member::Column::TeamUuid.eq(team.uuid.as_str());
        let mut query = teams::member::Entity::find().filter(condition.clone());
        if let Some(key) = &page.after {
            query = query.filter(after(
                &[teams::member::Column::Username],
                key_values(key, &[KeyPart::Text])?,
                false,
            ));
        }
        let rows = query
            .order_by_asc(teams::member::Column::Username)
            .limit(page.fetch_limit())
            .all(&self.db)
            .await?;
        let (items, next_page_token) = page.finish(rows, |m| vec![m.username.clone()]);
        let matches = teams::member::Entity::find().filter(condition).into_query();
        let total_size = page
            .total_size(&self.db, items.len(), &next_page_token, matches)
            .await?;
        Ok(Page {
            items,
            next_page_token,
            total_size,
        })
    }

    /// Changes a team member's role.
    pub async fn update_team_member(
        &self,
        principal: &Principal,
        organization: &str,
        team: &str,
        user: &str,
        role: &str,
    ) -> Result<teams::member::Model, Error> {
        let access = self
            .require(principal, organization, Permission::TeamsManage)
            .await?;
        let team = self.team(&access, team, "team").await?;
        let mut v = Violations::new();
        v.check("member.user", validate::slug(user));
        team_role("member.role", &mut v, role);
        v.finish()?;
        let txn = self.db.begin().await?;
        let row = teams::member::Entity::update_many()
            .col_expr(teams::member::Column::Role, Expr::value(role))
            .filter(teams::member::Column::TeamUuid.eq(team.uuid.as_str()))
            .filter(teams::member::Column::Username.eq(user))
            .exec_with_returning(&txn)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found("team member", user))?;
        let activity = team_member_activity(&team, user, principal, action::UPDATED)
            .metadata(serde_json::json!({"role": role}));
        self.commit_with(txn, activity).await?;
        Ok(row)
    }

    /// Removes a member from a team.
    pub async fn remove_team_member(
        &self,
        principal: &Principal,
        organization: &str,
        team: &str,
        user: &str,
    ) -> Result<(), Error> {
        let access = self
            .require(principal, organization, Permission::TeamsManage)
            .await?;
        let team = self.team(&access, team, "team").await?;
        let mut v = Violations::new();
        v.check("user", validate::slug(user));
        v.finish()?;
        let txn = self.db.begin().await?;
        let removed = teams::member::Entity::delete_many()
            .filter(teams::member::Column::TeamUuid.eq(team.uuid.as_str()))
            .filter(teams::member::Column::Username.eq(user))
            .exec(&txn)
            .await?;
        if removed.rows_affected == 0 {
            return Err(Error::not_found("team member", user));
        }
        self.commit_with(
            txn,
            team_member_activity(&team, user, principal, action::DELETED),
        )
        .await
    }
}

/// What `actor` did to a team.
fn team_activity(team: &teams::team::Model, actor: &Principal, action: &str) -> Activity {
    Activity::new(&team.organization_uuid, actor, action, "team", &team.name)
        .subject_uuid(&team.uuid)
}

/// What `actor` did to `user`'s membership of a team.
fn team_member_activity(
    team: &teams::team::Model,
    user: &str,
    actor: &Principal,
    action: &str,
) -> Activity {
    Activity::new(&team.organization_uuid, actor, action, "team_member", user)
        .parent("team", &team.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(name: &str, granted_at: i64) -> Grant {
        Grant {
            kind: "model_registry".into(),
            name: name.into(),
            role: "admin".into(),
            granted_at,
        }
    }

    #[test]
    fn a_named_grant_reaches_only_entities_created_before_it() {
        let granted = |name: &str| Granted {
            name: name.into(),
            role: Role::Admin,
            granted_at: 100,
        };
        assert!(granted("bert").reaches("bert", Some(50)));
        assert!(granted("bert").reaches("bert", Some(100)));
        assert!(!granted("bert").reaches("bert", Some(101)), "a later bert");
        assert!(!granted("bert").reaches("gpt", Some(50)));
        assert!(granted("bert").reaches("bert", None), "projects: by name");
        assert!(granted("*").reaches("gpt", Some(1_000)), "`*` reaches all");
    }

    #[test]
    fn replacing_grants_keeps_when_each_entity_was_first_granted() {
        let before = [grant("bert", 10), grant("gpt", 20)];
        let after = stamped(vec![grant("gpt", 0), grant("t5", 0)], &before, 99);
        let times: Vec<_> = after
            .iter()
            .map(|g| (g.name.as_str(), g.granted_at))
            .collect();
        assert_eq!(times, [("gpt", 20), ("t5", 99)]);
    }
}
