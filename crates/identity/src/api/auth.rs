//! `orgplane.identity.v1.AuthService`.

use orgplane_platform::time::to_timestamp;
use orgplane_proto::identity::{self as pb, auth_service_server::AuthService};
use orgplane_transport::grpc::{client_address, require_principal, revoking};
use tonic::{Request, Response, Status};

use super::convert;
use crate::domain::{
    Identity,
    accounts::{NewUser, UNKNOWN_ADDRESS},
};

pub(super) struct AuthApi(pub Identity);

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn sign_up(
        &self,
        req: Request<pb::SignUpRequest>,
    ) -> Result<Response<pb::SignUpResponse>, Status> {
        let r = req.into_inner();
        let user = self
            .0
            .sign_up(NewUser {
                username: r.username,
                email: r.email,
                password: r.password,
                display_name: r.display_name,
            })
            .await?;
        Ok(Response::new(pb::SignUpResponse {
            user: Some(convert::user(user)),
        }))
    }

    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let address = client_address(&req).unwrap_or_else(|| UNKNOWN_ADDRESS.to_owned());
        let r = req.into_inner();
        let session = self
            .0
            .login_from(&r.username, &r.password, &address)
            .await?;
        Ok(Response::new(pb::LoginResponse {
            access_token: session.token,
            expire_time: Some(to_timestamp(session.expire_time)),
            user: Some(convert::user(session.user)),
        }))
    }

    async fn logout(
        &self,
        req: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let principal = require_principal(&req)?;
        self.0.logout(&principal).await?;
        Ok(revoking(
            Response::new(pb::LogoutResponse {}),
            &principal.uuid,
        ))
    }

    async fn change_password(
        &self,
        req: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        self.0
            .change_password(&principal, &r.current_password, &r.new_password)
            .await?;
        Ok(revoking(
            Response::new(pb::ChangePasswordResponse {}),
            &principal.uuid,
        ))
    }

    async fn request_password_reset(
        &self,
        req: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::RequestPasswordResetResponse>, Status> {
        let address = client_address(&req).unwrap_or_else(|| UNKNOWN_ADDRESS.to_owned());
        self.0
            .request_password_reset_from(&req.into_inner().email, &address)
            .await?;
        Ok(Response::new(pb::RequestPasswordResetResponse {}))
    }

    async fn confirm_password_reset(
        &self,
        req: Request<pb::ConfirmPasswordResetRequest>,
    ) -> Result<Response<pb::ConfirmPasswordResetResponse>, Status> {
        let r = req.into_inner();
        let user_uuid = self
            .0
            .confirm_password_reset(&r.token, &r.new_password)
            .await?;
        Ok(revoking(
            Response::new(pb::ConfirmPasswordResetResponse {}),
            &user_uuid,
        ))
    }

    async fn exchange_external_token(
        &self,
        req: Request<pb::ExchangeExternalTokenRequest>,
    ) -> Result<Response<pb::ExchangeExternalTokenResponse>, Status> {
        let r = req.get_ref();
        let session = self
            .0
            .exchange_external_token(&r.organization, &r.provider, &r.id_token)
            .await?;
        Ok(Response::new(pb::ExchangeExternalTokenResponse {
            access_token: session.token,
            expire_time: Some(to_timestamp(session.expire_time)),
            user: Some(convert::user(session.user)),
        }))
    }
}
