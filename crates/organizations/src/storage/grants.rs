//! Grants of a role on chosen entities to one member (teams keep their own
//! grants in the team row).

/// `member_grants`: a role on one project (or `*`), model or component given
/// to one member — how an outsider reaches what they were invited to.
pub mod member {
    use sea_orm::entity::prelude::*;

    /// A grant row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "member_grants")]
    pub struct Model {
        /// UUIDv7.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uuid: String,
        /// The member (deleting the membership deletes its grants).
        pub member_uuid: String,
        /// The organization.
        pub organization_uuid: String,
        /// `project`, `model_registry` or `component_hub`.
        pub kind: String,
        /// Slug of the entity, or `*`.
        pub name: String,
        /// Team role granted: `viewer`, `member` or `admin`.
        pub role: String,
        /// Granted.
        pub create_time: i64,
    }

    /// No relations are navigated through sea-orm.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
