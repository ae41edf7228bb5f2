//! Service accounts of organizations and their tokens. Identity owns them;
//! the organizations service knows an account only through the principal
//! its token introspects to (organization, UUID and role).

/// `service_accounts`.
pub mod account {
    use sea_orm::entity::prelude::*;

    /// An account row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "service_accounts")]
    pub struct Model {
        /// UUIDv7.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uuid: String,
        /// UUID of the organization (slugs may be reused after a purge).
        pub organization_uuid: String,
        /// Slug of the organization (it never changes while it lives).
        pub organization: String,
        /// Slug, unique within the organization.
        pub name: String,
        /// What the account is for.
        pub description: String,
        /// Role in the organization (never `owner` or `outsider`).
        pub role: String,
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

/// `service_account_tokens`: only the SHA-256 of a secret is stored.
pub mod token {
    use sea_orm::entity::prelude::*;

    /// A token row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "service_account_tokens")]
    pub struct Model {
        /// UUIDv7.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uuid: String,
        /// The account (deleting it deletes its tokens).
        pub service_account_uuid: String,
        /// Slug, unique per account.
        pub name: String,
        /// Hex SHA-256 of the secret.
        #[sea_orm(unique)]
        pub secret_hash: String,
        /// Space-separated scopes.
        pub scopes: String,
        /// Expiry.
        pub expire_time: i64,
        /// Last authenticated a call, to within a minute.
        pub last_use_time: Option<i64>,
        /// Created.
        pub create_time: i64,
        /// Last changed.
        pub update_time: i64,
    }

    /// No relations are navigated through sea-orm.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    // Lets `find_also_related` join a token to its account.
    impl sea_orm::Related<super::account::Entity> for Entity {
        fn to() -> sea_orm::RelationDef {
            Entity::belongs_to(super::account::Entity)
                .from(Column::ServiceAccountUuid)
                .to(super::account::Column::Uuid)
                .into()
        }
    }
}
