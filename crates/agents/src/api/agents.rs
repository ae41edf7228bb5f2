//! `orgplane.agents.v1.AgentService`.

use orgplane_platform::json::{json_to_struct, struct_to_json};
use orgplane_platform::{
    tags,
    time::{now_micros, to_timestamp},
};
use orgplane_proto::agents::{self as pb, agent_service_server::AgentService};
use orgplane_storage::page::ListQuery;
use orgplane_storage::{etag::etag, idempotency};
use orgplane_transport::grpc::{require_principal, required, revoking, update_paths};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        Agents,
        agents::{AgentFields, AgentReport, health},
    },
    storage::{agent_statuses, agents},
};

pub(super) struct AgentApi(pub Agents);

/// Fields an update may name.
const FIELDS: &[&str] = &[
    "description",
    "tags",
    "namespace",
    "cluster",
    "heartbeat_timeout_seconds",
    "settings",
];

fn agent(a: agents::Model) -> pb::Agent {
    let settings: serde_json::Value =
        serde_json::from_str(&a.settings).unwrap_or_else(|_| serde_json::json!({}));
    pb::Agent {
        health: health(&a, now_micros()).to_owned(),
        settings: Some(json_to_struct(&settings)),
        heartbeat_time: a.heartbeat_time.map(to_timestamp),
        uuid: a.uuid,
        name: a.name,
        description: a.description,
        tags: tags::parse(&a.tags),
        namespace: a.namespace,
        cluster: a.cluster,
        version: a.agent_version,
        heartbeat_timeout_seconds: a.heartbeat_timeout_seconds,
        status: None,
        create_time: Some(to_timestamp(a.create_time)),
        update_time: Some(to_timestamp(a.update_time)),
        etag: etag(a.version),
    }
}

fn fields(a: &pb::Agent, paths: Option<&[String]>) -> AgentFields {
    let has = |p: &str| paths.is_none_or(|paths| paths.iter().any(|x| x == p));
    AgentFields {
        description: has("description").then(|| a.description.clone()),
        tags: has("tags").then(|| a.tags.clone()),
        namespace: has("namespace").then(|| a.namespace.clone()),
        cluster: has("cluster").then(|| a.cluster.clone()),
        heartbeat_timeout_seconds: has("heartbeat_timeout_seconds")
            .then_some(a.heartbeat_timeout_seconds),
        settings: has("settings").then(|| {
            a.settings
                .as_ref()
                .map(struct_to_json)
                .unwrap_or_else(|| serde_json::json!({}))
        }),
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn create_agent(
        &self,
        req: Request<pb::CreateAgentRequest>,
    ) -> Result<Response<pb::CreateAgentResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "AgentService/CreateAgent",
            r.request_id.clone(),
            r,
            |r| async move {
                let a = required(r.agent, "agent")?;
                let (row, token) = self
                    .0
                    .create_agent(principal, &r.organization, &a.name, fields(&a, None))
                    .await?;
                Ok(pb::CreateAgentResponse {
                    agent: Some(agent(row)),
                    token,
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn get_agent(
        &self,
        req: Request<pb::GetAgentRequest>,
    ) -> Result<Response<pb::GetAgentResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let row = self
            .0
            .get_agent(&principal, &r.organization, &r.agent)
            .await?;
        let last = self.0.last_status(&row).await?;
        let mut shown = agent(row);
        shown.status = last.map(status);
        Ok(Response::new(pb::GetAgentResponse { agent: Some(shown) }))
    }

    async fn list_agents(
        &self,
        req: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_agents(
                &principal,
                &r.organization,
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListAgentsResponse {
            agents: page.items.into_iter().map(agent).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn update_agent(
        &self,
        req: Request<pb::UpdateAgentRequest>,
    ) -> Result<Response<pb::UpdateAgentResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let a = required(r.agent, "agent")?;
        let paths = update_paths(r.update_mask, FIELDS)?;
        let row = self
            .0
            .update_agent(
                &principal,
                &r.organization,
                &a.name,
                fields(&a, Some(&paths)),
                &a.etag,
            )
            .await?;
        Ok(Response::new(pb::UpdateAgentResponse {
            agent: Some(agent(row)),
        }))
    }

    async fn delete_agent(
        &self,
        req: Request<pb::DeleteAgentRequest>,
    ) -> Result<Response<pb::DeleteAgentResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let agent_uuid = self
            .0
            .delete_agent(&principal, &r.organization, &r.agent, r.force)
            .await?;
        Ok(revoking(
            Response::new(pb::DeleteAgentResponse {}),
            &agent_uuid,
        ))
    }

    async fn rotate_agent_token(
        &self,
        req: Request<pb::RotateAgentTokenRequest>,
    ) -> Result<Response<pb::RotateAgentTokenResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let (token, agent_uuid) = self
            .0
            .rotate_agent_token(&principal, &r.organization, &r.agent)
            .await?;
        Ok(revoking(
            Response::new(pb::RotateAgentTokenResponse { token }),
            &agent_uuid,
        ))
    }

    async fn report_agent_status(
        &self,
        req: Request<pb::ReportAgentStatusRequest>,
    ) -> Result<Response<pb::ReportAgentStatusResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let condition = required(r.condition, "condition")?;
        let next = self
            .0
            .report_agent_status(
                &principal,
                &r.organization,
                &r.agent,
                AgentReport {
                    state: condition.r#type,
                    reason: condition.reason,
                    message: condition.message,
                    version: r.version,
                    hostname: r.hostname,
                },
            )
            .await?;
        Ok(Response::new(pb::ReportAgentStatusResponse {
            next_report_time: Some(to_timestamp(next)),
        }))
    }

    async fn list_agent_statuses(
        &self,
        req: Request<pb::ListAgentStatusesRequest>,
    ) -> Result<Response<pb::ListAgentStatusesResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_agent_statuses(
                &principal,
                &r.organization,
                &r.agent,
                &ListQuery::pages(r.page_size, &r.page_token).counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListAgentStatusesResponse {
            statuses: page.items.into_iter().map(status).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn get_agent_state(
        &self,
        req: Request<pb::GetAgentStateRequest>,
    ) -> Result<Response<pb::GetAgentStateResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let (to_start, to_stop, health) = self
            .0
            .get_agent_state(&principal, &r.organization, &r.agent)
            .await?;
        let both: Vec<_> = to_start.iter().chain(&to_stop).cloned().collect();
        let labels = self.0.queue_labels(&both).await?;
        let as_run = |run| super::runs::run(run, &labels);
        Ok(Response::new(pb::GetAgentStateResponse {
            runs_to_start: to_start.into_iter().map(as_run).collect(),
            runs_to_stop: to_stop.into_iter().map(as_run).collect(),
            health: health.to_owned(),
        }))
    }
}

fn status(s: agent_statuses::Model) -> orgplane_proto::common::Condition {
    orgplane_proto::common::Condition {
        r#type: s.state,
        reason: s.reason,
        message: s.message,
        actor: s.hostname,
        create_time: Some(to_timestamp(s.create_time)),
    }
}
