//! `orgplane.agents.v1.QueueService`.

use orgplane_platform::time::to_timestamp;
use orgplane_proto::agents::{self as pb, queue_service_server::QueueService};
use orgplane_storage::page::ListQuery;
use orgplane_storage::{etag::etag, idempotency};
use orgplane_transport::grpc::{require_principal, required, update_paths};
use tonic::{Request, Response, Status};

use crate::{
    domain::{Agents, queues::QueueFields},
    storage::queues,
};

pub(super) struct QueueApi(pub Agents);

/// Fields an update may name.
const FIELDS: &[&str] = &[
    "description",
    "priority",
    "concurrency",
    "resource",
    "quota",
    "strategy",
];

fn strategy(value: &str) -> pb::SchedulingStrategy {
    match value {
        "fair" => pb::SchedulingStrategy::Fair,
        _ => pb::SchedulingStrategy::Fifo,
    }
}

fn strategy_str(value: pb::SchedulingStrategy) -> &'static str {
    match value {
        pb::SchedulingStrategy::Fair => "fair",
        pb::SchedulingStrategy::Fifo | pb::SchedulingStrategy::Unspecified => "fifo",
    }
}

fn queue(q: queues::Model, agent: &str) -> pb::Queue {
    pb::Queue {
        strategy: strategy(&q.strategy) as i32,
        uuid: q.uuid,
        name: q.name,
        agent: agent.to_owned(),
        description: q.description,
        priority: q.priority,
        concurrency: q.concurrency,
        resource: q.resource,
        quota: q.quota,
        create_time: Some(to_timestamp(q.create_time)),
        update_time: Some(to_timestamp(q.update_time)),
        etag: etag(q.version),
    }
}

fn fields(q: &pb::Queue, paths: Option<&[String]>) -> QueueFields {
    let has = |p: &str| paths.is_none_or(|paths| paths.iter().any(|x| x == p));
    QueueFields {
        description: has("description").then(|| q.description.clone()),
        priority: has("priority").then_some(q.priority),
        concurrency: has("concurrency").then_some(q.concurrency),
        resource: has("resource").then(|| q.resource.clone()),
        quota: has("quota").then_some(q.quota),
        strategy: has("strategy").then(|| strategy_str(q.strategy()).to_owned()),
    }
}

#[tonic::async_trait]
impl QueueService for QueueApi {
    async fn create_queue(
        &self,
        req: Request<pb::CreateQueueRequest>,
    ) -> Result<Response<pb::CreateQueueResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "QueueService/CreateQueue",
            r.request_id.clone(),
            r,
            |r| async move {
                let q = required(r.queue, "queue")?;
                let row = self
                    .0
                    .create_queue(
                        principal,
                        &r.organization,
                        &r.agent,
                        &q.name,
                        fields(&q, None),
                    )
                    .await?;
                Ok(pb::CreateQueueResponse {
                    queue: Some(queue(row, &r.agent)),
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn get_queue(
        &self,
        req: Request<pb::GetQueueRequest>,
    ) -> Result<Response<pb::GetQueueResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let row = self
            .0
            .get_queue(&principal, &r.organization, &r.agent, &r.queue)
            .await?;
        Ok(Response::new(pb::GetQueueResponse {
            queue: Some(queue(row, &r.agent)),
        }))
    }

    async fn list_queues(
        &self,
        req: Request<pb::ListQueuesRequest>,
    ) -> Result<Response<pb::ListQueuesResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_queues(
                &principal,
                &r.organization,
                &r.agent,
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListQueuesResponse {
            queues: page.items.into_iter().map(|q| queue(q, &r.agent)).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn update_queue(
        &self,
        req: Request<pb::UpdateQueueRequest>,
    ) -> Result<Response<pb::UpdateQueueResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let q = required(r.queue, "queue")?;
        let paths = update_paths(r.update_mask, FIELDS)?;
        let row = self
            .0
            .update_queue(
                &principal,
                &r.organization,
                &r.agent,
                &q.name,
                fields(&q, Some(&paths)),
                &q.etag,
            )
            .await?;
        Ok(Response::new(pb::UpdateQueueResponse {
            queue: Some(queue(row, &r.agent)),
        }))
    }

    async fn delete_queue(
        &self,
        req: Request<pb::DeleteQueueRequest>,
    ) -> Result<Response<pb::DeleteQueueResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        self.0
            .delete_queue(&principal, &r.organization, &r.agent, &r.queue, r.force)
            .await?;
        Ok(Response::new(pb::DeleteQueueResponse {}))
    }

    async fn get_queue_stats(
        &self,
        req: Request<pb::GetQueueStatsRequest>,
    ) -> Result<Response<pb::GetQueueStatsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let stats = self
            .0
            .get_queue_stats(&principal, &r.organization, &r.agent, &r.queue)
            .await?;
        Ok(Response::new(pb::GetQueueStatsResponse {
            queued: stats.queued as i64,
            leased: stats.leased as i64,
            running: stats.running as i64,
            done: stats.done as i64,
            oldest_wait: stats
                .oldest_wait
                .and_then(|d| prost_types::Duration::try_from(d).ok()),
        }))
    }
}
