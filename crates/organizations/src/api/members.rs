//! `orgplane.organizations.v1.MemberService`.

use orgplane_platform::grpc::{require_principal, required, update_paths};
use orgplane_proto::organizations::{self as pb, member_service_server::MemberService};
use tonic::{Request, Response, Status};

use super::convert;
use crate::domain::Organizations;

pub(super) struct MemberApi(pub Organizations);

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
                r.page_size,
                &r.page_token,
                &r.filter,
                &r.order_by,
            )
            .await?;
        Ok(Response::new(pb::ListMembersResponse {
            members: page.members.into_iter().map(convert::member).collect(),
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
            member: Some(convert::member(member)),
        }))
    }

    async fn update_member(
        &self,
        req: Request<pb::UpdateMemberRequest>,
    ) -> Result<Response<pb::UpdateMemberResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        update_paths(r.update_mask, &["role"])?;
        let member = required(r.member, "member")?;
        let member = self
            .0
            .update_member(&principal, &r.organization, &member.user, &member.role)
            .await?;
        Ok(Response::new(pb::UpdateMemberResponse {
            member: Some(convert::member(member)),
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
