//! Agents and queues as the run cycle reads them on every call — the
//! calling agent, the queue a run names, the names a run is shown with —
//! kept in [`ReadCache`]s: until the next change of an agent or a queue
//! this process commits (every such commit goes through
//! [`Agents::commit_with`]) and for [`CATALOG_TTL`] at most (another
//! replica's change).
//!
//! Why: on SQLite each query is two thread hand-offs, and without these a
//! run cost eight of them besides its writes (`BENCHMARKS.md`).

use std::{collections::HashMap, time::Duration};

use orgplane_platform::Error;
use orgplane_storage::{
    activity::Activity,
    read_cache::{Forget, ReadCache},
};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};

use super::Agents;
use crate::storage::{agents, queues};

/// How long another replica's change of an agent or a queue may go unseen.
pub const CATALOG_TTL: Duration = Duration::from_secs(1);
const CAPACITY: u64 = 10_000;

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    /// Agents by UUID.
    agents: ReadCache<String, agents::Model>,
    /// An agent and its queue by (organization UUID, agent, queue).
    queues: ReadCache<(String, String, String), (agents::Model, queues::Model)>,
    /// `(agent, queue)` names by queue UUID.
    labels: ReadCache<String, (String, String)>,
}

impl Forget for Catalog {
    /// An agent or a queue changed: forget everything read before.
    fn changed(&self) {
        self.agents.changed();
        self.queues.changed();
        self.labels.changed();
    }
}

impl Catalog {
    pub fn new() -> Self {
        Self {
            agents: ReadCache::new(CAPACITY, CATALOG_TTL),
            queues: ReadCache::new(CAPACITY, CATALOG_TTL),
            labels: ReadCache::new(CAPACITY, CATALOG_TTL),
        }
    }
}

impl Agents {
    /// Commits a change with its activity, then forgets the agents and
    /// queues read before it (every change of them goes through here).
    pub(crate) async fn commit_with(
        &self,
        txn: DatabaseTransaction,
        activity: Activity,
    ) -> Result<(), Error> {
        orgplane_storage::activity::commit_and_forget(txn, activity, &self.catalog).await
    }

    /// The agent `uuid`, if it exists.
    pub(crate) async fn agent_by_uuid(&self, uuid: &str) -> Result<Option<agents::Model>, Error> {
        let key = uuid.to_owned();
        if let Some(agent) = self.catalog.agents.get(&key).await {
            return Ok(Some(agent));
        }
        let ticket = self.catalog.agents.ticket();
        let found = agents::Entity::find_by_id(key.clone())
            .one(&self.db)
            .await?;
        if let Some(agent) = &found {
            self.catalog.agents.insert(key, agent.clone(), ticket).await;
        }
        Ok(found)
    }

    /// The agent `agent` of the organization and its queue `queue`.
    pub(crate) async fn agent_and_queue(
        &self,
        organization_uuid: &str,
        agent: &str,
        queue: &str,
    ) -> Result<(agents::Model, queues::Model), Error> {
        let key = (
            organization_uuid.to_owned(),
            agent.to_owned(),
            queue.to_owned(),
        );
        if let Some(found) = self.catalog.queues.get(&key).await {
            return Ok(found);
        }
        let ticket = self.catalog.queues.ticket();
        let found = self
            .read_agent_and_queue(organization_uuid, agent, queue)
            .await?;
        self.catalog.queues.insert(key, found.clone(), ticket).await;
        Ok(found)
    }

    /// `(agent, queue)` names of the queues `uuids`, by queue UUID.
    pub(crate) async fn labels_of_queues(
        &self,
        mut uuids: Vec<String>,
    ) -> Result<HashMap<String, (String, String)>, Error> {
        uuids.sort();
        uuids.dedup();
        let mut labels = HashMap::with_capacity(uuids.len());
        let mut missing = Vec::new();
        for uuid in uuids {
            match self.catalog.labels.get(&uuid).await {
                Some(label) => {
                    labels.insert(uuid, label);
                }
                None => missing.push(uuid),
            }
        }
        if missing.is_empty() {
            return Ok(labels);
        }
        let ticket = self.catalog.labels.ticket();
        let queue_rows = queues::Entity::find()
            .filter(queues::Column::Uuid.is_in(missing))
            .all(&self.db)
            .await?;
        let mut agent_uuids: Vec<String> =
            queue_rows.iter().map(|q| q.agent_uuid.clone()).collect();
        agent_uuids.sort();
        agent_uuids.dedup();
        let agent_names: HashMap<String, String> = agents::Entity::find()
            .filter(agents::Column::Uuid.is_in(agent_uuids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|a| (a.uuid, a.name))
            .collect();
        for q in queue_rows {
            let Some(agent) = agent_names.get(&q.agent_uuid) else {
                // Its agent went meanwhile: shown without, not kept.
                labels.insert(q.uuid, (String::new(), q.name));
                continue;
            };
            let label = (agent.clone(), q.name);
            self.catalog
                .labels
                .insert(q.uuid.clone(), label.clone(), ticket)
                .await;
            labels.insert(q.uuid, label);
        }
        Ok(labels)
    }
}
