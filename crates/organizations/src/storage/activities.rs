//! `activities`: the activity store of every service, in the order stored
//! (`seq`); `activity_sequence` hands out `seq` under a row lock, so that a
//! reader never sees a later activity committed before an earlier one.

use sea_orm::entity::prelude::*;

/// A stored activity.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activities")]
pub struct Model {
    /// Position in the store: increasing in commit order (watch cursors).
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    /// UUIDv7 given where it happened.
    pub uuid: String,
    /// `<service>:<uuid>`: stored once whatever the retries.
    pub idempotency_key: String,
    /// The organization.
    pub organization_uuid: String,
    /// Who acted.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// Kind of the subject.
    pub subject_kind: String,
    /// Name of the subject.
    pub subject_name: String,
    /// UUID of the subject, or empty.
    pub subject_uuid: String,
    /// `kind/name` of the parent, or empty.
    pub parent: String,
    /// Project slug, or empty.
    pub project: String,
    /// Details, JSON.
    pub metadata: String,
    /// When it happened.
    pub create_time: i64,
    /// When the store received it.
    pub record_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// `activity_sequence`: one row, the last `seq` handed out.
pub mod sequence {
    use sea_orm::entity::prelude::*;

    /// The counter row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "activity_sequence")]
    pub struct Model {
        /// Always 1.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        /// The last `seq` handed out.
        pub last: i64,
    }

    /// No relations are navigated through sea-orm.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
