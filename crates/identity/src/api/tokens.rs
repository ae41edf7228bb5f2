//! `orgplane.identity.v1.TokenService`.

use orgplane_platform::time::from_optional_timestamp;
use orgplane_proto::identity::{self as pb, token_service_server::TokenService};
use orgplane_storage::idempotency;
use orgplane_storage::page::ListQuery;
use orgplane_transport::grpc::{require_principal, required, revoking, update_paths};
use tonic::{Request, Response, Status};

use super::convert;
use crate::domain::{
    Identity,
    tokens::{NewToken, TokenAddress, TokenChanges},
};

pub(super) struct TokenApi(pub Identity);

#[tonic::async_trait]
impl TokenService for TokenApi {
    async fn create_token(
        &self,
        req: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "TokenService/CreateToken",
            r.request_id.clone(),
            r,
            |r| async move {
                let token = required(r.token, "token")?;
                let (token, key) = self
                    .0
                    .create_token(
                        principal,
                        NewToken {
                            name: token.name,
                            scopes: token.scopes,
                            expire_time: from_optional_timestamp(
                                token.expire_time.as_ref(),
                                "token.expire_time",
                            )?,
                        },
                    )
                    .await?;
                Ok(pb::CreateTokenResponse {
                    token: Some(convert::token(token)),
                    key,
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn list_tokens(
        &self,
        req: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let page = self
            .0
            .list_tokens(
                &principal,
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListTokensResponse {
            tokens: page.items.into_iter().map(convert::token).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn get_token(
        &self,
        req: Request<pb::GetTokenRequest>,
    ) -> Result<Response<pb::GetTokenResponse>, Status> {
        let principal = require_principal(&req)?;
        let token = self.0.get_token(&principal, &req.get_ref().token).await?;
        Ok(Response::new(pb::GetTokenResponse {
            token: Some(convert::token(token)),
        }))
    }

    async fn update_token(
        &self,
        req: Request<pb::UpdateTokenRequest>,
    ) -> Result<Response<pb::UpdateTokenResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let paths = update_paths(r.update_mask, &["name", "scopes"])?;
        let token = required(r.token, "token")?;
        let has = |p: &str| paths.iter().any(|x| x == p);
        let address = if token.uuid.is_empty() {
            TokenAddress::Name(token.name.clone())
        } else {
            TokenAddress::Uuid(token.uuid.clone())
        };
        let changes = TokenChanges {
            name: has("name").then(|| token.name.clone()),
            scopes: has("scopes").then(|| token.scopes.clone()),
        };
        let token = self.0.update_token(&principal, address, changes).await?;
        Ok(revoking(
            Response::new(pb::UpdateTokenResponse {
                token: Some(convert::token(token)),
            }),
            &principal.uuid,
        ))
    }

    async fn delete_token(
        &self,
        req: Request<pb::DeleteTokenRequest>,
    ) -> Result<Response<pb::DeleteTokenResponse>, Status> {
        let principal = require_principal(&req)?;
        self.0
            .delete_token(&principal, &req.get_ref().token)
            .await?;
        Ok(revoking(
            Response::new(pb::DeleteTokenResponse {}),
            &principal.uuid,
        ))
    }
}
