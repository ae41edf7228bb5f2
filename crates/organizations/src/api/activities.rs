//! `orgplane.organizations.v1.ActivityService`.

use orgplane_storage::page::ListQuery;
use std::pin::Pin;

use futures::Stream;
use orgplane_platform::json::json_to_struct;
use orgplane_platform::{
    Error,
    time::{from_optional_timestamp, to_timestamp},
};
use orgplane_proto::organizations::{self as pb, activity_service_server::ActivityService};
use orgplane_transport::grpc::require_principal;
use tonic::{Request, Response, Status};

use crate::{
    domain::{Organizations, stats::Stats},
    storage::activities,
};

pub(super) struct ActivityApi(pub Organizations);

/// An activity as the API shows it, in the organization `organization`.
pub(super) fn activity(a: activities::Model, organization: &str) -> pb::Activity {
    let metadata: serde_json::Value =
        serde_json::from_str(&a.metadata).unwrap_or_else(|_| serde_json::json!({}));
    pb::Activity {
        uuid: a.uuid,
        organization: organization.to_owned(),
        actor: a.actor,
        action: a.action,
        subject_kind: a.subject_kind,
        subject_name: a.subject_name,
        subject_uuid: a.subject_uuid,
        parent: a.parent,
        project: a.project,
        create_time: Some(to_timestamp(a.create_time)),
        metadata: Some(json_to_struct(&metadata)),
    }
}

/// Statistics as the API shows them.
fn shown(stats: Stats) -> (Vec<pb::Count>, Vec<pb::Series>) {
    let counts = stats
        .counts
        .into_iter()
        .map(|(name, value)| pb::Count { name, value })
        .collect();
    let series = stats
        .series
        .into_iter()
        .map(|(name, points)| pb::Series {
            name,
            points: points
                .into_iter()
                .map(|(day, value)| pb::Point {
                    time: Some(to_timestamp(day)),
                    value,
                })
                .collect(),
        })
        .collect();
    (counts, series)
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchActivitiesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ActivityService for ActivityApi {
    async fn list_activities(
        &self,
        req: Request<pb::ListActivitiesRequest>,
    ) -> Result<Response<pb::ListActivitiesResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_activities(
                &principal,
                &r.organization,
                &r.project,
                &r.team,
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListActivitiesResponse {
            activities: page
                .items
                .into_iter()
                .map(|a| activity(a, &r.organization))
                .collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    type WatchActivitiesStream = WatchStream;

    async fn watch_activities(
        &self,
        req: Request<pb::WatchActivitiesRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let watch = self
            .0
            .watch_activities(&principal, &r.organization, &r.project, &r.cursor)
            .await?;
        let organization = r.organization;
        // Each step yields one message; a batch read ahead waits in `ready`.
        let stream = futures::stream::unfold(
            (watch, std::collections::VecDeque::new(), false),
            move |(mut watch, mut ready, failed)| {
                let organization = organization.clone();
                async move {
                    if failed {
                        return None;
                    }
                    if ready.is_empty() {
                        match watch.next().await {
                            Ok(batch) => ready.extend(batch),
                            Err(err) => {
                                let status: Status = Error::into_status(err);
                                return Some((Err(status), (watch, ready, true)));
                            }
                        }
                    }
                    let (row, cursor) = ready.pop_front()?;
                    let message = pb::WatchActivitiesResponse {
                        activity: Some(activity(row, &organization)),
                        cursor,
                    };
                    Some((Ok(message), (watch, ready, false)))
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_organization_stats(
        &self,
        req: Request<pb::GetOrganizationStatsRequest>,
    ) -> Result<Response<pb::GetOrganizationStatsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let stats = self
            .0
            .organization_stats(
                &principal,
                &r.organization,
                from_optional_timestamp(r.start_time.as_ref(), "start_time")?,
                from_optional_timestamp(r.end_time.as_ref(), "end_time")?,
            )
            .await?;
        let (counts, series) = shown(stats);
        Ok(Response::new(pb::GetOrganizationStatsResponse {
            counts,
            series,
        }))
    }

    async fn get_project_stats(
        &self,
        req: Request<pb::GetProjectStatsRequest>,
    ) -> Result<Response<pb::GetProjectStatsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let stats = self
            .0
            .project_stats(
                &principal,
                &r.organization,
                &r.project,
                from_optional_timestamp(r.start_time.as_ref(), "start_time")?,
                from_optional_timestamp(r.end_time.as_ref(), "end_time")?,
            )
            .await?;
        let (counts, series) = shown(stats);
        Ok(Response::new(pb::GetProjectStatsResponse {
            counts,
            series,
        }))
    }
}
