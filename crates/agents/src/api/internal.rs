//! `orgplane.agents.v1.AgentsInternal`.

use orgplane_platform::{
    Error,
    time::{from_optional_timestamp, to_timestamp},
    validate,
};
use orgplane_proto::agents::{self as pb, agents_internal_server::AgentsInternal};
use tonic::{Request, Response, Status};

use crate::domain::Agents;

pub(super) struct InternalApi(pub Agents);

#[tonic::async_trait]
impl AgentsInternal for InternalApi {
    async fn get_agents_stats(
        &self,
        req: Request<pb::GetAgentsStatsRequest>,
    ) -> Result<Response<pb::GetAgentsStatsResponse>, Status> {
        let r = req.into_inner();
        validate::required(&r.organization_uuid, 64)
            .map_err(|e| Error::invalid("organization_uuid", e))?;
        let start = from_optional_timestamp(r.start_time.as_ref(), "start_time")?.unwrap_or(0);
        let end = from_optional_timestamp(r.end_time.as_ref(), "end_time")?.unwrap_or(i64::MAX);
        let (counts, days) = self
            .0
            .stats(
                &r.organization_uuid,
                (&r.project, &r.hidden_projects),
                (start, end),
            )
            .await?;
        Ok(Response::new(pb::GetAgentsStatsResponse {
            counts: counts.into_iter().collect(),
            runs_per_queue_day: days
                .into_iter()
                .map(|d| pb::QueueDay {
                    queue: d.queue,
                    day: Some(to_timestamp(d.day)),
                    runs: d.runs,
                })
                .collect(),
        }))
    }
}
