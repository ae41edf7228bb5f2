//! `orgplane.organizations.v1.MemberService`.

use orgplane_platform::{Error, grpc::require_principal};
use orgplane_proto::organizations::{self as pb, member_service_server::MemberService};
use tonic::{Request, Response, Status};

use super::convert;
use crate::domain::Organizations;

pub(super) struct MemberApi(pub Organizations);

fn not_yet<T>(what: &str) -> Result<Response<T>, Status> {
    Err(Error::Unimplemented(format!("{what} is not implemented yet")).into())
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
        _req: Request<pb::UpdateMemberRequest>,
    ) -> Result<Response<pb::UpdateMemberResponse>, Status> {
        not_yet("UpdateMember")
    }

    async fn remove_member(
        &self,
        _req: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::RemoveMemberResponse>, Status> {
        not_yet("RemoveMember")
    }

    async fn leave_organization(
        &self,
        _req: Request<pb::LeaveOrganizationRequest>,
    ) -> Result<Response<pb::LeaveOrganizationResponse>, Status> {
        not_yet("LeaveOrganization")
    }
}
