//! `orgplane.organizations.v1.OrganizationsInternal`.

use orgplane_platform::{
    Error,
    principal::Principal,
    restriction::Restriction,
    time::{from_timestamp, to_timestamp},
    validate::Violations,
};
use orgplane_proto::organizations::{
    self as pb, organizations_internal_server::OrganizationsInternal,
};
use orgplane_storage::activity::Delivery;
use orgplane_transport::grpc::required;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::convert;
use crate::domain::{Organizations, access::EntityRef, federation::Admission};

pub(super) struct InternalApi(pub Organizations);

/// How long callers may cache a `CheckPermission` answer: the bound on
/// seeing a role change should its `WatchAccessChanges` notice be lost.
const DECISION_TTL_SECONDS: i32 = 3;

type AccessChangeStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchAccessChangesResponse, Status>> + Send>>;

/// Most restrictions one entity lies under (the registry's: its hub's and
/// its own).
const MAX_RESTRICTIONS: usize = 4;

#[tonic::async_trait]
impl OrganizationsInternal for InternalApi {
    type WatchAccessChangesStream = AccessChangeStream;

    async fn watch_access_changes(
        &self,
        _req: Request<pb::WatchAccessChangesRequest>,
    ) -> Result<Response<AccessChangeStream>, Status> {
        let notices = self.0.access_changes().changes().map(|notice| {
            Ok(pb::WatchAccessChangesResponse {
                organization_uuids: notice.keys,
                everything: notice.everything,
            })
        });
        Ok(Response::new(Box::pin(notices)))
    }

    async fn check_permission(
        &self,
        req: Request<pb::CheckPermissionRequest>,
    ) -> Result<Response<pb::CheckPermissionResponse>, Status> {
        let r = req.into_inner();
        let principal = Principal::from_proto(required(r.principal.clone(), "principal")?)
            .ok_or_else(|| Error::invalid("principal", "needs a kind and a uuid"))?;
        let kind = match r.entity_kind() {
            pb::EntityKind::Unspecified => None,
            pb::EntityKind::Project => Some("project"),
            pb::EntityKind::ModelRegistry => Some("model_registry"),
            pb::EntityKind::ComponentHub => Some("component_hub"),
        };
        let created = r
            .entity_create_time
            .as_ref()
            .map(|t| from_timestamp(t, "entity_create_time"))
            .transpose()?;
        let mut v = Violations::new();
        if r.restrictions.len() > MAX_RESTRICTIONS {
            v.add(
                "restrictions",
                format!("at most {MAX_RESTRICTIONS} restrictions over one entity"),
            );
        }
        let restrictions: Vec<Restriction> = r
            .restrictions
            .iter()
            .take(MAX_RESTRICTIONS)
            .map(|x| Restriction::from_proto(Some(x.clone())))
            .collect();
        for restriction in &restrictions {
            restriction.check(&mut v, "restrictions");
        }
        if kind.is_none() && !restrictions.is_empty() {
            v.add("restrictions", "only over an entity");
        }
        v.finish()?;
        let entity = kind.map(|kind| EntityRef {
            kind,
            name: r.entity.as_str(),
            created,
            restrictions: &restrictions,
        });
        let decision = self
            .0
            .check_permission(
                &principal,
                &r.organization,
                &r.permission,
                entity,
                r.include_teams,
            )
            .await?;
        Ok(Response::new(pb::CheckPermissionResponse {
            allowed: decision.allowed,
            visible: decision.visible,
            role: decision
                .role
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
            organization_uuid: decision.organization_uuid.unwrap_or_default(),
            ttl_seconds: DECISION_TTL_SECONDS,
            denial_reason: decision.denial_reason.unwrap_or_default().to_owned(),
            hidden_projects: decision.hidden_projects,
            teams: decision.teams,
        }))
    }

    async fn list_deleted_organizations(
        &self,
        req: Request<pb::ListDeletedOrganizationsRequest>,
    ) -> Result<Response<pb::ListDeletedOrganizationsResponse>, Status> {
        let r = req.into_inner();
        let (rows, next_page_token) = self
            .0
            .list_deleted_organizations(r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListDeletedOrganizationsResponse {
            deleted_organizations: rows
                .into_iter()
                .map(|d| pb::DeletedOrganization {
                    uuid: d.uuid,
                    name: d.name,
                    delete_time: Some(to_timestamp(d.delete_time)),
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn get_external_auth_providers(
        &self,
        req: Request<pb::GetExternalAuthProvidersRequest>,
    ) -> Result<Response<pb::GetExternalAuthProvidersResponse>, Status> {
        let providers = self
            .0
            .external_providers(&req.get_ref().organization)
            .await?;
        Ok(Response::new(pb::GetExternalAuthProvidersResponse {
            providers: providers.into_iter().map(convert::auth_provider).collect(),
        }))
    }

    async fn admit_external_user(
        &self,
        req: Request<pb::AdmitExternalUserRequest>,
    ) -> Result<Response<pb::AdmitExternalUserResponse>, Status> {
        let r = req.into_inner();
        let principal = Principal::from_proto(required(r.principal, "principal")?)
            .ok_or_else(|| Error::invalid("principal", "needs a kind and a uuid"))?;
        let admission = self
            .0
            .admit_external_user(&principal, &r.organization)
            .await?;
        Ok(Response::new(match admission {
            Admission::Member { role, joined } => pb::AdmitExternalUserResponse {
                role: role.as_str().to_owned(),
                joined,
                invited: false,
            },
            Admission::Invited => pb::AdmitExternalUserResponse {
                invited: true,
                ..Default::default()
            },
            Admission::Refused => pb::AdmitExternalUserResponse::default(),
        }))
    }

    async fn get_run_routing(
        &self,
        req: Request<pb::GetRunRoutingRequest>,
    ) -> Result<Response<pb::GetRunRoutingResponse>, Status> {
        let r = req.into_inner();
        let routing = self.0.run_routing(&r.organization_uuid, &r.project).await?;
        Ok(Response::new(pb::GetRunRoutingResponse {
            project_uuid: routing.project_uuid,
            archived: routing.archived,
            project_default_queue: routing.project_default_queue,
            organization_default_queue: routing.organization_default_queue,
            allowed_agents: routing.allowed_agents,
            allowed_queues: routing.allowed_queues,
            allowed_connections: routing.allowed_connections,
        }))
    }

    async fn check_restriction(
        &self,
        req: Request<pb::CheckRestrictionRequest>,
    ) -> Result<Response<pb::CheckRestrictionResponse>, Status> {
        let r = req.into_inner();
        let restriction = Restriction::from_proto(r.restriction);
        let mut v = Violations::new();
        restriction.check(&mut v, "restriction");
        v.finish()?;
        let (unknown_users, unknown_teams) = self
            .0
            .unknown_in_restriction(&r.organization_uuid, &restriction)
            .await?;
        Ok(Response::new(pb::CheckRestrictionResponse {
            unknown_users,
            unknown_teams,
        }))
    }

    async fn record_activities(
        &self,
        req: Request<pb::RecordActivitiesRequest>,
    ) -> Result<Response<pb::RecordActivitiesResponse>, Status> {
        let batch = req
            .into_inner()
            .activities
            .into_iter()
            .map(Delivery::from_proto)
            .collect::<Result<Vec<_>, _>>()?;
        let recorded = self.0.record_activities(batch).await?;
        Ok(Response::new(pb::RecordActivitiesResponse {
            recorded: recorded as i32,
        }))
    }
}
