//! The organizations service's rules over its tables: who may see and do
//! what in an organization ([`access`]), organizations, and members.

pub mod access;
pub mod activities;
pub mod federation;
pub mod feed;
pub mod hidden;
pub mod invitations;
pub mod members;
pub mod organizations;
pub mod project_writes;
pub mod projects;
pub mod settings;
pub mod stats;
pub mod teams;

use orgplane_platform::Error;
use orgplane_storage::{activity::Activity, changes::ChangeFeed};
use orgplane_transport::peers::IdentityPeer;
use sea_orm::{DatabaseConnection, DatabaseTransaction};

/// The organizations service's state.
#[derive(Debug, Clone)]
pub struct Organizations {
    pub(crate) db: DatabaseConnection,
    pub(crate) identity: Option<IdentityPeer>,
    /// The last activity `seq` stored by this process: wakes the feed.
    pub(crate) stored: std::sync::Arc<tokio::sync::watch::Sender<i64>>,
    /// The process's one reader of the activity store for watchers.
    pub(crate) feed: std::sync::Arc<feed::Feed>,
    /// The registry and the agents service, for statistics (and the
    /// registry for what its restrictions hide).
    pub(crate) stats: Option<orgplane_transport::peers::StatsPeers>,
    /// Memberships checked lately, until the next change.
    pub(crate) memberships: access::Memberships,
    /// Organizations where something changed, for every replica and the
    /// services caching access decisions (`WatchAccessChanges`).
    pub(crate) access_changes: ChangeFeed,
    /// Projects created, committed together ([`project_writes`]).
    pub(crate) project_writes:
        orgplane_storage::group_commit::GroupCommit<project_writes::ProjectsCreated>,
}

impl Organizations {
    /// Over a migrated database, on its own: accepting an invitation does not
    /// mark the address verified in identity (storage tests and tools).
    pub fn new(db: DatabaseConnection) -> Self {
        let memberships = access::memberships();
        let stored = std::sync::Arc::new(tokio::sync::watch::Sender::new(0));
        Self {
            feed: feed::Feed::new(db.clone(), stored.clone()),
            access_changes: ChangeFeed::new(db.clone(), "access").forgetting(memberships.clone()),
            memberships,
            project_writes: orgplane_storage::group_commit::GroupCommit::new(
                db.clone(),
                project_writes::ProjectsCreated,
            ),
            db,
            identity: None,
            stored,
            stats: None,
        }
    }

    /// Commits a change with its activity, then forgets the memberships
    /// checked before it, here and (through [`Self::access_changes`]) in
    /// every replica and every service caching access decisions in its
    /// organization (every change goes through here).
    pub(crate) async fn commit_with(
        &self,
        txn: DatabaseTransaction,
        activity: Activity,
    ) -> Result<(), Error> {
        let organization_uuid = activity.organization_uuid.clone();
        let committed =
            orgplane_storage::activity::commit_and_forget(txn, activity, &self.memberships).await;
        self.access_changes.publish(&organization_uuid);
        committed
    }

    /// Changes of access, by organization UUID: what `WatchAccessChanges`
    /// streams.
    pub fn access_changes(&self) -> &ChangeFeed {
        &self.access_changes
    }

    /// With the registry and the agents service, which statistics count.
    pub fn with_stats(mut self, stats: orgplane_transport::peers::StatsPeers) -> Self {
        self.stats = Some(stats);
        self
    }

    /// With the identity service, which accepting an invitation tells that
    /// the invited address is proven.
    pub fn with_identity(mut self, identity: IdentityPeer) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The shipper of this service's own activities into its store.
    pub fn activity_shipper(&self) -> orgplane_storage::activity::Shipper<activities::LocalStore> {
        orgplane_storage::activity::Shipper::new(
            self.db.clone(),
            "organizations",
            activities::LocalStore(self.clone()),
        )
    }

    /// The database (for tests and tools).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}
