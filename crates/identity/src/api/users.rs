//! `orgplane.identity.v1.UserService`.

use orgplane_proto::identity::{self as pb, user_service_server::UserService};
use orgplane_storage::page::ListQuery;
use orgplane_transport::grpc::{require_principal, required, update_paths};
use tonic::{Request, Response, Status};

use super::convert;
use crate::domain::{Identity, users::ProfileChanges};

pub(super) struct UserApi(pub Identity);

#[tonic::async_trait]
impl UserService for UserApi {
    async fn get_current_user(
        &self,
        req: Request<pb::GetCurrentUserRequest>,
    ) -> Result<Response<pb::GetCurrentUserResponse>, Status> {
        let principal = require_principal(&req)?;
        let user = self.0.current_user(&principal).await?;
        Ok(Response::new(pb::GetCurrentUserResponse {
            user: Some(convert::user(user)),
        }))
    }

    async fn update_current_user(
        &self,
        req: Request<pb::UpdateCurrentUserRequest>,
    ) -> Result<Response<pb::UpdateCurrentUserResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let paths = update_paths(r.update_mask, &["display_name", "email"])?;
        let user = required(r.user, "user")?;
        let has = |p: &str| paths.iter().any(|x| x == p);
        let changes = ProfileChanges {
            display_name: has("display_name").then(|| user.display_name.clone()),
            email: has("email").then(|| user.email.clone()),
            current_password: r.current_password,
        };
        let user = self.0.update_current_user(&principal, changes).await?;
        Ok(Response::new(pb::UpdateCurrentUserResponse {
            user: Some(convert::user(user)),
        }))
    }

    async fn get_user(
        &self,
        req: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let principal = require_principal(&req)?;
        let view = self.0.get_user(&principal, &req.get_ref().user).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(convert::user_view(view)),
        }))
    }

    async fn list_users(
        &self,
        req: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let page = self
            .0
            .list_users(
                &principal,
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: page.items.into_iter().map(convert::user).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn link_external_identity(
        &self,
        req: Request<pb::LinkExternalIdentityRequest>,
    ) -> Result<Response<pb::LinkExternalIdentityResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let link = self
            .0
            .link_external_identity(&principal, &r.organization, &r.provider, &r.id_token)
            .await?;
        Ok(Response::new(pb::LinkExternalIdentityResponse {
            external_identity: Some(convert::external_identity(link)),
        }))
    }

    async fn list_external_identities(
        &self,
        req: Request<pb::ListExternalIdentitiesRequest>,
    ) -> Result<Response<pb::ListExternalIdentitiesResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_external_identities(
                &principal,
                &ListQuery::pages(r.page_size, &r.page_token).counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListExternalIdentitiesResponse {
            external_identities: page
                .items
                .into_iter()
                .map(convert::external_identity)
                .collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn unlink_external_identity(
        &self,
        req: Request<pb::UnlinkExternalIdentityRequest>,
    ) -> Result<Response<pb::UnlinkExternalIdentityResponse>, Status> {
        let principal = require_principal(&req)?;
        self.0
            .unlink_external_identity(&principal, &req.get_ref().uuid)
            .await?;
        Ok(Response::new(pb::UnlinkExternalIdentityResponse {}))
    }
}
