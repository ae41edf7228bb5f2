//! `orgplane.organizations.v1.InvitationService`.

use orgplane_platform::time::{now_micros, to_timestamp};
use orgplane_proto::organizations::{self as pb, invitation_service_server::InvitationService};
use orgplane_storage::idempotency;
use orgplane_storage::page::ListQuery;
use orgplane_transport::grpc::{require_principal, required};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        Organizations,
        invitations::{InvitationState, NewInvitation, slugs_of, state_of},
    },
    storage::invitations,
};

pub(super) struct InvitationApi(pub Organizations);

fn invitation(row: invitations::Model) -> pb::Invitation {
    let state = match state_of(&row, now_micros()) {
        InvitationState::Pending => pb::InvitationState::Pending,
        InvitationState::Accepted => pb::InvitationState::Accepted,
        InvitationState::Revoked => pb::InvitationState::Revoked,
        InvitationState::Expired => pb::InvitationState::Expired,
    };
    pb::Invitation {
        uuid: row.uuid,
        email: row.email,
        role: row.role,
        projects: slugs_of(&row.projects),
        teams: slugs_of(&row.teams),
        state: state as i32,
        inviter: row.inviter,
        expire_time: Some(to_timestamp(row.expire_time)),
        create_time: Some(to_timestamp(row.create_time)),
        update_time: Some(to_timestamp(row.update_time)),
    }
}

#[tonic::async_trait]
impl InvitationService for InvitationApi {
    async fn create_invitation(
        &self,
        req: Request<pb::CreateInvitationRequest>,
    ) -> Result<Response<pb::CreateInvitationResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "InvitationService/CreateInvitation",
            r.request_id.clone(),
            r,
            |r| async move {
                let i = required(r.invitation, "invitation")?;
                let (row, token) = self
                    .0
                    .create_invitation(
                        principal,
                        &r.organization,
                        NewInvitation {
                            email: i.email,
                            role: i.role,
                            projects: i.projects,
                            teams: i.teams,
                        },
                    )
                    .await?;
                Ok(pb::CreateInvitationResponse {
                    invitation: Some(invitation(row)),
                    token,
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn list_invitations(
        &self,
        req: Request<pb::ListInvitationsRequest>,
    ) -> Result<Response<pb::ListInvitationsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let page = self
            .0
            .list_invitations(
                &principal,
                &r.organization,
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListInvitationsResponse {
            invitations: page.items.into_iter().map(invitation).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn resend_invitation(
        &self,
        req: Request<pb::ResendInvitationRequest>,
    ) -> Result<Response<pb::ResendInvitationResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let (row, token) = self
            .0
            .resend_invitation(&principal, &r.organization, &r.invitation)
            .await?;
        Ok(Response::new(pb::ResendInvitationResponse {
            invitation: Some(invitation(row)),
            token,
        }))
    }

    async fn revoke_invitation(
        &self,
        req: Request<pb::RevokeInvitationRequest>,
    ) -> Result<Response<pb::RevokeInvitationResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        self.0
            .revoke_invitation(&principal, &r.organization, &r.invitation)
            .await?;
        Ok(Response::new(pb::RevokeInvitationResponse {}))
    }

    async fn accept_invitation(
        &self,
        req: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::AcceptInvitationResponse>, Status> {
        let principal = require_principal(&req)?;
        let (organization, member) = self
            .0
            .accept_invitation(&principal, &req.get_ref().token)
            .await?;
        Ok(Response::new(pb::AcceptInvitationResponse {
            organization,
            member: super::members::shown(&self.0, vec![member]).await?.pop(),
        }))
    }

    async fn join_organization(
        &self,
        req: Request<pb::JoinOrganizationRequest>,
    ) -> Result<Response<pb::JoinOrganizationResponse>, Status> {
        let principal = require_principal(&req)?;
        let member = self
            .0
            .join_organization(&principal, &req.get_ref().organization)
            .await?;
        Ok(Response::new(pb::JoinOrganizationResponse {
            member: super::members::shown(&self.0, vec![member]).await?.pop(),
        }))
    }
}
