//! The agents service's rules.
//!
//! - [`admission`]: runs from submission to a terminal status, under leases;
//! - [`agents`]: agents, their tokens (issued by identity) and health;
//! - `catalog`: agents and queues as the run cycle reads them, cached;
//! - [`connections`]: how runs reach storage, code and registries;
//! - [`queues`]: queues of agents;
//! - [`runs`]: runs as people submit them and agents lease them: routing
//!   and authorization over [`admission`];
//! - `run_writes`: the group commits of the run cycle's hot writes.

pub mod admission;
pub mod agents;
mod catalog;
pub mod connections;
pub mod queues;
mod run_writes;
pub mod runs;
pub mod stats;

use orgplane_platform::{Error, authz::Permission, principal::Principal, time::now_micros};
use orgplane_storage::{activity::Shipper, deletions, read_cache::Forget};
use orgplane_transport::{
    access::{Entity, Standing},
    peers::{IdentityPeer, OrganizationsPeer},
};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::storage::{
    agent_statuses, agents as agent_rows, connections as connection_rows, runs as run_rows,
};

/// How long the statuses agents report are kept.
pub const STATUS_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// The agents service's state.
#[derive(Debug, Clone)]
pub struct Agents {
    pub(crate) db: DatabaseConnection,
    pub(crate) organizations: Option<OrganizationsPeer>,
    pub(crate) identity: Option<IdentityPeer>,
    /// Leases a run gets before an expiry fails it.
    pub(crate) max_attempts: i32,
    /// Agents and queues as the run cycle reads them.
    pub(crate) catalog: catalog::Catalog,
    /// Submissions and reports, group committed.
    pub(crate) writes: run_writes::RunWrites,
}

impl Agents {
    /// Over a migrated database, on its own (the admission engine's tests):
    /// methods that authorize a caller answer `UNAVAILABLE`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            writes: run_writes::RunWrites::new(&db),
            catalog: catalog::Catalog::new(),
            db,
            organizations: None,
            identity: None,
            max_attempts: admission::DEFAULT_MAX_ATTEMPTS,
        }
    }

    /// With `attempts` leases per run before an expired lease fails it
    /// instead of putting it back in its queue (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.clamp(1, i32::MAX as u32) as i32;
        self
    }

    /// With the identity service, which issues agents' tokens.
    pub fn with_identity(mut self, identity: IdentityPeer) -> Self {
        self.identity = Some(identity);
        self
    }

    /// With the organizations service, which decides who may do what.
    pub fn with_organizations(mut self, organizations: OrganizationsPeer) -> Self {
        self.organizations = Some(organizations);
        self
    }

    fn peer(&self) -> Result<&OrganizationsPeer, Error> {
        self.organizations.as_ref().ok_or_else(|| {
            Error::Unavailable("the agents service runs without the organizations service".into())
        })
    }

    /// The caller's standing if they hold `permission` in `organization`.
    pub(crate) async fn require(
        &self,
        principal: &Principal,
        organization: &str,
        permission: Permission,
    ) -> Result<Standing, Error> {
        self.peer()?
            .permissions
            .require(principal, organization, permission, Entity::Organization)
            .await
    }

    /// Purges what this service holds of organizations deleted since the
    /// last run.
    pub async fn purge_deleted_organizations(&self) -> Result<u64, Error> {
        deletions::purge_deleted(&self.db, self.peer()?, |uuids| async move {
            let deleted = connection_rows::Entity::delete_many()
                .filter(connection_rows::Column::OrganizationUuid.is_in(uuids.clone()))
                .exec(&self.db)
                .await?;
            let agents = agent_rows::Entity::delete_many()
                .filter(agent_rows::Column::OrganizationUuid.is_in(uuids.clone()))
                .exec(&self.db)
                .await?;
            let runs = run_rows::Entity::delete_many()
                .filter(run_rows::Column::OrganizationUuid.is_in(uuids))
                .exec(&self.db)
                .await?;
            self.catalog.changed();
            Ok(deleted.rows_affected + agents.rows_affected + runs.rows_affected)
        })
        .await
    }

    /// Deletes the statuses agents reported more than
    /// [`STATUS_RETENTION`] before `now` (one row per heartbeat: about
    /// 3,000 per agent a day), and expired answers to idempotent creations.
    pub async fn purge_old_statuses(&self, now: i64) -> Result<u64, Error> {
        let deleted = agent_statuses::Entity::delete_many()
            .filter(
                agent_statuses::Column::CreateTime
                    .lt(now.saturating_sub(STATUS_RETENTION.as_micros() as i64)),
            )
            .exec(&self.db)
            .await?;
        let keys = orgplane_storage::idempotency::purge(&self.db, now).await?;
        Ok(deleted.rows_affected + keys)
    }

    /// Until `stop` completes: every second, puts back the runs whose
    /// lease lapsed ([`Self::expire_lapsed_leases`]); every `interval`,
    /// [`Self::purge_deleted_organizations`] and
    /// [`Self::purge_old_statuses`].
    pub async fn run_purger(
        self,
        interval: std::time::Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut next_purge = tokio::time::Instant::now();
        let this = &self;
        deletions::run_every(
            &self.db,
            admission::LEASE_SWEEP_INTERVAL,
            stop,
            "swept lapsed leases and purged the agents data of deleted organizations",
            || {
                let purge = tokio::time::Instant::now() >= next_purge;
                if purge {
                    next_purge += interval;
                }
                async move {
                    // The purge is not skipped for a whole interval when the
                    // sweep fails (nor the other way round).
                    let swept = this.expire_lapsed_leases().await;
                    let purged: Result<u64, Error> = if purge {
                        let deleted = this.purge_deleted_organizations().await;
                        let statuses = this.purge_old_statuses(now_micros()).await;
                        Ok(deleted? + statuses?)
                    } else {
                        Ok(0)
                    };
                    Ok(swept? + purged?)
                }
            },
        )
        .await
    }

    /// The shipper of this service's activities to the activity store
    /// (`UNAVAILABLE` without the organizations service).
    pub fn activity_shipper(&self) -> Result<Shipper<OrganizationsPeer>, Error> {
        Ok(Shipper::new(
            self.db.clone(),
            "agents",
            self.peer()?.clone(),
        ))
    }

    /// The database (for tests and tools).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}
