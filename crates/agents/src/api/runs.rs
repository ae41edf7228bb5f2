//! `orgplane.agents.v1.RunService`, and runs as the API shows them.

use orgplane_storage::page::ListQuery;
use std::{collections::HashMap, time::Duration};

use orgplane_platform::json::{json_to_struct, struct_to_json};
use orgplane_platform::{
    Error,
    time::{from_duration, to_timestamp},
};
use orgplane_proto::agents::{self as pb, run_service_server::RunService};
use orgplane_storage::idempotency;
use orgplane_transport::grpc::require_principal;
use tonic::{Request, Response, Status};

use crate::{
    domain::{Agents, runs::Submission},
    storage::runs,
};

pub(super) struct RunApi(pub Agents);

/// `(agent, queue)` names by queue UUID, from `Agents::queue_labels`.
pub(super) type QueueLabels = HashMap<String, (String, String)>;

/// A run, its queue shown as `agent/queue` and its lease with the agent's
/// name (the agent of the queue is the only one that leases its runs).
pub(super) fn run(r: runs::Model, labels: &QueueLabels) -> pb::Run {
    let spec: serde_json::Value =
        serde_json::from_str(&r.spec).unwrap_or_else(|_| serde_json::json!({}));
    let (agent, queue) = labels
        .get(&r.queue_uuid)
        .map(|(agent, queue)| (agent.clone(), format!("{agent}/{queue}")))
        .unwrap_or_default();
    pb::Run {
        lease: r.lease_id.clone().map(|id| pb::Lease {
            id,
            agent,
            expire_time: r.lease_expire_time.map(to_timestamp),
        }),
        uuid: r.uuid,
        project: r.project,
        queue,
        status: r.status,
        name: r.name,
        spec: Some(json_to_struct(&spec)),
        attempts: r.attempts,
        submitter: r.submitter,
        message: r.message,
        create_time: Some(to_timestamp(r.create_time)),
        update_time: Some(to_timestamp(r.update_time)),
    }
}

/// A lease length as asked for; `None` when unset.
fn lease(value: Option<prost_types::Duration>) -> Result<Option<Duration>, Error> {
    value
        .map(|d| from_duration(&d, "lease_duration"))
        .transpose()
}

impl RunApi {
    /// `runs` as the API shows them.
    async fn shown(&self, runs: Vec<runs::Model>) -> Result<Vec<pb::Run>, Error> {
        let labels = self.0.queue_labels(&runs).await?;
        Ok(runs.into_iter().map(|r| run(r, &labels)).collect())
    }

    async fn one(&self, r: runs::Model) -> Result<Option<pb::Run>, Error> {
        Ok(self.shown(vec![r]).await?.pop())
    }
}

#[tonic::async_trait]
impl RunService for RunApi {
    async fn submit_run(
        &self,
        req: Request<pb::SubmitRunRequest>,
    ) -> Result<Response<pb::SubmitRunResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "RunService/SubmitRun",
            r.request_id.clone(),
            r,
            |r| async move {
                let submission = Submission {
                    project: r.project,
                    queue: r.queue,
                    name: r.name,
                    spec: r
                        .spec
                        .as_ref()
                        .map(struct_to_json)
                        .unwrap_or_else(|| serde_json::json!({})),
                };
                let created = self
                    .0
                    .submit_run(principal, &r.organization, submission)
                    .await?;
                Ok(pb::SubmitRunResponse {
                    run: self.one(created).await?,
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn get_run(
        &self,
        req: Request<pb::GetRunRequest>,
    ) -> Result<Response<pb::GetRunResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let found = self.0.get_run(&principal, &r.organization, &r.run).await?;
        Ok(Response::new(pb::GetRunResponse {
            run: self.one(found).await?,
        }))
    }

    async fn list_runs(
        &self,
        req: Request<pb::ListRunsRequest>,
    ) -> Result<Response<pb::ListRunsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_runs(
                &principal,
                &r.organization,
                &r.project,
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListRunsResponse {
            runs: self.shown(page.items).await?,
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn cancel_run(
        &self,
        req: Request<pb::CancelRunRequest>,
    ) -> Result<Response<pb::CancelRunResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let cancelled = self
            .0
            .cancel_run(&principal, &r.organization, &r.run)
            .await?;
        Ok(Response::new(pb::CancelRunResponse {
            run: self.one(cancelled).await?,
        }))
    }

    async fn acquire_runs(
        &self,
        req: Request<pb::AcquireRunsRequest>,
    ) -> Result<Response<pb::AcquireRunsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let leased = self
            .0
            .acquire_runs(
                &principal,
                &r.organization,
                &r.agent,
                r.max_runs,
                lease(r.lease_duration)?,
            )
            .await?;
        Ok(Response::new(pb::AcquireRunsResponse {
            runs: self.shown(leased).await?,
        }))
    }

    async fn renew_lease(
        &self,
        req: Request<pb::RenewLeaseRequest>,
    ) -> Result<Response<pb::RenewLeaseResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let renewed = self
            .0
            .renew_lease(
                &principal,
                &r.organization,
                &r.run,
                &r.lease,
                lease(r.lease_duration)?,
            )
            .await?;
        Ok(Response::new(pb::RenewLeaseResponse {
            run: self.one(renewed).await?,
        }))
    }

    async fn report_run_status(
        &self,
        req: Request<pb::ReportRunStatusRequest>,
    ) -> Result<Response<pb::ReportRunStatusResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let reported = self
            .0
            .report_run_status(
                &principal,
                &r.organization,
                &r.run,
                &r.lease,
                &r.status,
                &r.message,
            )
            .await?;
        Ok(Response::new(pb::ReportRunStatusResponse {
            run: self.one(reported).await?,
        }))
    }
}
