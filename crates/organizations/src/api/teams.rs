//! `orgplane.organizations.v1.TeamService`.

use orgplane_platform::time::to_timestamp;
use orgplane_proto::organizations::{self as pb, team_service_server::TeamService};
use orgplane_storage::idempotency;
use orgplane_storage::page::ListQuery;
use orgplane_transport::grpc::{require_principal, required, update_paths};
use tonic::{Request, Response, Status};

use super::convert;
use crate::{
    domain::{
        Organizations,
        organizations::etag,
        teams::{Grant, TeamFields, grants_of},
    },
    storage::teams,
};

pub(super) struct TeamApi(pub Organizations);

fn team(t: teams::team::Model) -> pb::Team {
    pb::Team {
        grants: grants_of(&t)
            .into_iter()
            .map(|g| pb::TeamGrant {
                kind: convert::kind_of(&g.kind) as i32,
                name: g.name,
                role: g.role,
            })
            .collect(),
        uuid: t.uuid,
        name: t.name,
        description: t.description,
        create_time: Some(to_timestamp(t.create_time)),
        update_time: Some(to_timestamp(t.update_time)),
        etag: etag(t.version),
    }
}

fn member(m: teams::member::Model) -> pb::TeamMember {
    pb::TeamMember {
        user: m.username,
        role: m.role,
        create_time: Some(to_timestamp(m.create_time)),
    }
}

fn grants(t: &pb::Team) -> Vec<Grant> {
    t.grants
        .iter()
        .map(|g| Grant {
            kind: convert::kind_str(g.kind()).to_owned(),
            name: g.name.clone(),
            role: g.role.clone(),
            granted_at: 0,
        })
        .collect()
}

#[tonic::async_trait]
impl TeamService for TeamApi {
    async fn create_team(
        &self,
        req: Request<pb::CreateTeamRequest>,
    ) -> Result<Response<pb::CreateTeamResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "TeamService/CreateTeam",
            r.request_id.clone(),
            r,
            |r| async move {
                let t = required(r.team, "team")?;
                let fields = TeamFields {
                    name: (!t.name.is_empty()).then(|| t.name.clone()),
                    description: Some(t.description.clone()),
                    grants: Some(grants(&t)),
                };
                let created = self
                    .0
                    .create_team(principal, &r.organization, fields)
                    .await?;
                Ok(pb::CreateTeamResponse {
                    team: Some(team(created)),
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn get_team(
        &self,
        req: Request<pb::GetTeamRequest>,
    ) -> Result<Response<pb::GetTeamResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let t = self
            .0
            .get_team(&principal, &r.organization, &r.team)
            .await?;
        Ok(Response::new(pb::GetTeamResponse {
            team: Some(team(t)),
        }))
    }

    async fn list_teams(
        &self,
        req: Request<pb::ListTeamsRequest>,
    ) -> Result<Response<pb::ListTeamsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let page = self
            .0
            .list_teams(
                &principal,
                &r.organization,
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListTeamsResponse {
            teams: page.items.into_iter().map(team).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn update_team(
        &self,
        req: Request<pb::UpdateTeamRequest>,
    ) -> Result<Response<pb::UpdateTeamResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let paths = update_paths(r.update_mask, &["description", "grants"])?;
        let t = required(r.team, "team")?;
        let has = |p: &str| paths.iter().any(|x| x == p);
        let fields = TeamFields {
            name: None,
            description: has("description").then(|| t.description.clone()),
            grants: has("grants").then(|| grants(&t)),
        };
        let updated = self
            .0
            .update_team(&principal, &r.organization, &t.name, fields, &t.etag)
            .await?;
        Ok(Response::new(pb::UpdateTeamResponse {
            team: Some(team(updated)),
        }))
    }

    async fn delete_team(
        &self,
        req: Request<pb::DeleteTeamRequest>,
    ) -> Result<Response<pb::DeleteTeamResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        self.0
            .delete_team(&principal, &r.organization, &r.team)
            .await?;
        Ok(Response::new(pb::DeleteTeamResponse {}))
    }

    async fn add_team_member(
        &self,
        req: Request<pb::AddTeamMemberRequest>,
    ) -> Result<Response<pb::AddTeamMemberResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let m = required(r.member, "member")?;
        let added = self
            .0
            .add_team_member(&principal, &r.organization, &r.team, &m.user, &m.role)
            .await?;
        Ok(Response::new(pb::AddTeamMemberResponse {
            member: Some(member(added)),
        }))
    }

    async fn list_team_members(
        &self,
        req: Request<pb::ListTeamMembersRequest>,
    ) -> Result<Response<pb::ListTeamMembersResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let page = self
            .0
            .list_team_members(
                &principal,
                &r.organization,
                &r.team,
                &ListQuery::pages(r.page_size, &r.page_token).counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListTeamMembersResponse {
            members: page.items.into_iter().map(member).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn update_team_member(
        &self,
        req: Request<pb::UpdateTeamMemberRequest>,
    ) -> Result<Response<pb::UpdateTeamMemberResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        update_paths(r.update_mask, &["role"])?;
        let m = required(r.member, "member")?;
        let updated = self
            .0
            .update_team_member(&principal, &r.organization, &r.team, &m.user, &m.role)
            .await?;
        Ok(Response::new(pb::UpdateTeamMemberResponse {
            member: Some(member(updated)),
        }))
    }

    async fn remove_team_member(
        &self,
        req: Request<pb::RemoveTeamMemberRequest>,
    ) -> Result<Response<pb::RemoveTeamMemberResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        self.0
            .remove_team_member(&principal, &r.organization, &r.team, &r.user)
            .await?;
        Ok(Response::new(pb::RemoveTeamMemberResponse {}))
    }
}
