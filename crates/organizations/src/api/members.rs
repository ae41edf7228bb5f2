//! `orgplane.organizations.v1.MemberService`.

use orgplane_platform::Error;
use orgplane_proto::organizations::{self as pb, member_service_server::MemberService};
use orgplane_storage::page::ListQuery;
use orgplane_transport::grpc::{require_principal, required, update_paths};
use tonic::{Request, Response, Status};

use super::convert;
use crate::{
    domain::{Organizations, members::MemberChanges, teams::Grant},
    storage::members,
};

pub(super) struct MemberApi(pub Organizations);

/// `members` as the API shows them, outsiders with their grants.
pub(super) async fn shown(
    organizations: &Organizations,
    members: Vec<members::Model>,
) -> Result<Vec<pb::Member>, Error> {
    let mut grants = organizations.outsider_grants(&members).await?;
    Ok(members
        .into_iter()
        .map(|m| {
            let own = grants.remove(&m.uuid).unwrap_or_default();
            convert::member(m, own)
        })
        .collect())
}

#[tonic::async_trait]
impl MemberService for MemberApi {
    async fn list_members(
        &self,
        req: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let page = self
            .0
            .list_members(
                &principal,
                &r.organization,
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListMembersResponse {
            members: shown(&self.0, page.items).await?,
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn get_member(
        &self,
        req: Request<pb::GetMemberRequest>,
    ) -> Result<Response<pb::GetMemberResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let member = self
            .0
            .get_member(&principal, &r.organization, &r.user)
            .await?;
        Ok(Response::new(pb::GetMemberResponse {
            member: shown(&self.0, vec![member]).await?.pop(),
        }))
    }

    async fn update_member(
        &self,
        req: Request<pb::UpdateMemberRequest>,
    ) -> Result<Response<pb::UpdateMemberResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let paths = update_paths(r.update_mask, &["role", "grants"])?;
        let member = required(r.member, "member")?;
        let changes = MemberChanges {
            role: paths
                .iter()
                .any(|p| p == "role")
                .then(|| member.role.clone()),
            grants: paths.iter().any(|p| p == "grants").then(|| {
                member
                    .grants
                    .iter()
                    .map(|g| Grant {
                        kind: convert::kind_str(g.kind()).to_owned(),
                        name: g.name.clone(),
                        role: g.role.clone(),
                        granted_at: 0,
                    })
                    .collect()
            }),
        };
        let member = self
            .0
            .update_member(&principal, &r.organization, &member.user, changes)
            .await?;
        Ok(Response::new(pb::UpdateMemberResponse {
            member: shown(&self.0, vec![member]).await?.pop(),
        }))
    }

    async fn remove_member(
        &self,
        req: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::RemoveMemberResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        self.0
            .remove_member(&principal, &r.organization, &r.user)
            .await?;
        Ok(Response::new(pb::RemoveMemberResponse {}))
    }

    async fn leave_organization(
        &self,
        req: Request<pb::LeaveOrganizationRequest>,
    ) -> Result<Response<pb::LeaveOrganizationResponse>, Status> {
        let principal = require_principal(&req)?;
        self.0
            .leave_organization(&principal, &req.get_ref().organization)
            .await?;
        Ok(Response::new(pb::LeaveOrganizationResponse {}))
    }
}
