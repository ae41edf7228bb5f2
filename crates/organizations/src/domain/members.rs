//! Members: list and read. (Role changes, removal and leaving come with the
//! member lifecycle.)

use orgplane_platform::{
    Error,
    authz::Permission,
    page::{OrderBy, PageRequest, after, like_prefix, parse_filter},
    principal::Principal,
    validate::{self, Violations},
};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Value,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use super::Organizations;
use crate::storage::members;

/// One page of members.
#[derive(Debug, Clone)]
pub struct MemberPage {
    /// The members.
    pub members: Vec<members::Model>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
    /// Matches in all.
    pub total_size: u64,
}

impl Organizations {
    /// Members of an organization, filtered by `role:` and `name:` (username
    /// prefix), ordered by `user` or `create_time`.
    pub async fn list_members(
        &self,
        principal: &Principal,
        organization: &str,
        page_size: i32,
        page_token: &str,
        filter: &str,
        order_by: &str,
    ) -> Result<MemberPage, Error> {
        let access = self
            .require(principal, organization, Permission::MembersRead)
            .await?;
        let order = OrderBy::parse(order_by, &["user", "create_time"])?;
        let terms = parse_filter(filter, &["role", "name"])?;
        let page = PageRequest::parse(page_size, page_token, &format!("{filter}|{order_by}"))?;
        let mut condition = Condition::all()
            .add(members::Column::OrganizationUuid.eq(access.organization.uuid.as_str()));
        for (key, value) in &terms {
            condition = match *key {
                "role" => condition.add(members::Column::Role.eq(*value)),
                _ => condition.add(
                    Expr::col(members::Column::Username)
                        .like(LikeExpr::new(like_prefix(value)).escape('\\')),
                ),
            };
        }
        let total_size = members::Entity::find()
            .filter(condition.clone())
            .count(&self.db)
            .await?;
        let columns: Vec<members::Column> = match order.field {
            "user" => vec![members::Column::Username],
            _ => vec![members::Column::CreateTime, members::Column::Uuid],
        };
        let mut query = members::Entity::find().filter(condition);
        if let Some(key) = &page.after {
            let bad = || Error::invalid("page_token", "is not a valid page token");
            let values: Vec<Value> = match (order.field, key.as_slice()) {
                ("user", [name]) => vec![name.clone().into()],
                (_, [time, uuid]) => vec![
                    time.parse::<i64>().map_err(|_| bad())?.into(),
                    uuid.clone().into(),
                ],
                _ => return Err(bad()),
            };
            query = query.filter(after(&columns, values, order.descending));
        }
        for column in &columns {
            query = if order.descending {
                query.order_by_desc(*column)
            } else {
                query.order_by_asc(*column)
            };
        }
        let rows = query.limit(page.fetch_limit()).all(&self.db).await?;
        let (members, next_page_token) = page.finish(rows, |m| match order.field {
            "user" => vec![m.username.clone()],
            _ => vec![m.create_time.to_string(), m.uuid.clone()],
        });
        Ok(MemberPage {
            members,
            next_page_token,
            total_size,
        })
    }

    /// One member by username.
    pub async fn get_member(
        &self,
        principal: &Principal,
        organization: &str,
        user: &str,
    ) -> Result<members::Model, Error> {
        let access = self
            .require(principal, organization, Permission::MembersRead)
            .await?;
        let mut v = Violations::new();
        v.check("user", validate::slug(user));
        v.finish()?;
        members::Entity::find()
            .filter(members::Column::OrganizationUuid.eq(access.organization.uuid.as_str()))
            .filter(members::Column::Username.eq(user))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("member", user))
    }
}
