//! `teams` and `team_members`: groups of members granted a role on chosen
//! projects, model registries and component hubs.

/// `teams`.
pub mod team {
    use sea_orm::entity::prelude::*;

    /// A team row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "teams")]
    pub struct Model {
        /// UUIDv7.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uuid: String,
        /// The organization.
        pub organization_uuid: String,
        /// Slug unique within the organization.
        pub name: String,
        /// Description.
        pub description: String,
        /// Grants, JSON (see `domain::teams::Grant`).
        pub grants: String,
        /// Bumped by every change; the etag.
        pub version: i64,
        /// Created.
        pub create_time: i64,
        /// Last changed.
        pub update_time: i64,
    }

    /// No relations are navigated through sea-orm.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `team_members`.
pub mod member {
    use sea_orm::entity::prelude::*;

    /// A team membership row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "team_members")]
    pub struct Model {
        /// UUIDv7.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uuid: String,
        /// The team.
        pub team_uuid: String,
        /// The organization (for lookups by user).
        pub organization_uuid: String,
        /// The user.
        pub user_uuid: String,
        /// The user's username.
        pub username: String,
        /// Team role: `viewer`, `member` or `admin`.
        pub role: String,
        /// Joined the team.
        pub create_time: i64,
    }

    /// No relations are navigated through sea-orm.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
