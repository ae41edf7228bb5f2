//! `orgplane.identity.v1.IdentityInternal`.

use orgplane_platform::time::to_timestamp;
use orgplane_proto::identity::{self as pb, identity_internal_server::IdentityInternal};
use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::domain::{Identity, agent_tokens::AgentIdentity};

pub(super) struct InternalApi(pub Identity);

type RevocationStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchRevocationsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl IdentityInternal for InternalApi {
    type WatchRevocationsStream = RevocationStream;

    async fn watch_revocations(
        &self,
        _req: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<RevocationStream>, Status> {
        let notices = self.0.revocations().changes().map(|notice| {
            Ok(pb::WatchRevocationsResponse {
                principal_uuids: notice.keys,
                everything: notice.everything,
            })
        });
        Ok(Response::new(Box::pin(notices)))
    }

    async fn introspect_token(
        &self,
        req: Request<pb::IntrospectTokenRequest>,
    ) -> Result<Response<pb::IntrospectTokenResponse>, Status> {
        let answer = self.0.introspect(&req.get_ref().token).await?;
        Ok(Response::new(match answer {
            Some(found) => pb::IntrospectTokenResponse {
                active: true,
                principal: Some(found.principal.to_proto()),
                expire_time: Some(to_timestamp(found.expire_time)),
            },
            None => pb::IntrospectTokenResponse::default(),
        }))
    }

    async fn mark_email_verified(
        &self,
        req: Request<pb::MarkEmailVerifiedRequest>,
    ) -> Result<Response<pb::MarkEmailVerifiedResponse>, Status> {
        let r = req.into_inner();
        let verified = self.0.mark_email_verified(&r.user_uuid, &r.email).await?;
        Ok(Response::new(pb::MarkEmailVerifiedResponse { verified }))
    }

    async fn issue_agent_token(
        &self,
        req: Request<pb::IssueAgentTokenRequest>,
    ) -> Result<Response<pb::IssueAgentTokenResponse>, Status> {
        let r = req.into_inner();
        let token = self
            .0
            .issue_agent_token(AgentIdentity {
                agent_uuid: r.agent_uuid,
                agent_name: r.agent_name,
                organization: r.organization,
                organization_uuid: r.organization_uuid,
            })
            .await?;
        Ok(Response::new(pb::IssueAgentTokenResponse { token }))
    }

    async fn revoke_agent_tokens(
        &self,
        req: Request<pb::RevokeAgentTokensRequest>,
    ) -> Result<Response<pb::RevokeAgentTokensResponse>, Status> {
        let revoked = self
            .0
            .revoke_agent_tokens(&req.get_ref().agent_uuid)
            .await?;
        Ok(Response::new(pb::RevokeAgentTokensResponse {
            revoked: revoked as i32,
        }))
    }

    async fn revoke_organization_agent_tokens(
        &self,
        req: Request<pb::RevokeOrganizationAgentTokensRequest>,
    ) -> Result<Response<pb::RevokeOrganizationAgentTokensResponse>, Status> {
        let revoked = self
            .0
            .revoke_organization_agent_tokens(&req.get_ref().organization_uuid)
            .await?;
        Ok(Response::new(pb::RevokeOrganizationAgentTokensResponse {
            revoked: revoked as i32,
        }))
    }
}
