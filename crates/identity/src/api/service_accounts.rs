//! `orgplane.identity.v1.ServiceAccountService`.

use orgplane_platform::time::{from_optional_timestamp, to_timestamp};
use orgplane_proto::identity::{self as pb, service_account_service_server::ServiceAccountService};
use orgplane_storage::idempotency;
use orgplane_storage::page::ListQuery;
use orgplane_transport::grpc::{require_principal, required, revoking, update_paths};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        Identity,
        service_accounts::{NewAccountToken, NewServiceAccount, ServiceAccountChanges},
    },
    storage::service_accounts::{account, token},
};

pub(super) struct ServiceAccountApi(pub Identity);

fn service_account(a: account::Model) -> pb::ServiceAccount {
    pb::ServiceAccount {
        uuid: a.uuid,
        name: a.name,
        organization: a.organization,
        description: a.description,
        role: a.role,
        create_time: Some(to_timestamp(a.create_time)),
        update_time: Some(to_timestamp(a.update_time)),
    }
}

fn account_token(t: token::Model) -> pb::Token {
    pb::Token {
        uuid: t.uuid,
        name: t.name,
        scopes: t.scopes.split_whitespace().map(str::to_owned).collect(),
        expire_time: Some(to_timestamp(t.expire_time)),
        create_time: Some(to_timestamp(t.create_time)),
        update_time: Some(to_timestamp(t.update_time)),
        last_use_time: t.last_use_time.map(to_timestamp),
    }
}

#[tonic::async_trait]
impl ServiceAccountService for ServiceAccountApi {
    async fn create_service_account(
        &self,
        req: Request<pb::CreateServiceAccountRequest>,
    ) -> Result<Response<pb::CreateServiceAccountResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "ServiceAccountService/CreateServiceAccount",
            r.request_id.clone(),
            r,
            |r| async move {
                let a = required(r.service_account, "service_account")?;
                let (row, first, key) = self
                    .0
                    .create_service_account(
                        principal,
                        &r.organization,
                        NewServiceAccount {
                            name: a.name,
                            description: a.description,
                            role: a.role,
                        },
                    )
                    .await?;
                Ok(pb::CreateServiceAccountResponse {
                    service_account: Some(service_account(row)),
                    token: Some(account_token(first)),
                    key,
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn get_service_account(
        &self,
        req: Request<pb::GetServiceAccountRequest>,
    ) -> Result<Response<pb::GetServiceAccountResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let row = self
            .0
            .get_service_account(&principal, &r.organization, &r.service_account)
            .await?;
        Ok(Response::new(pb::GetServiceAccountResponse {
            service_account: Some(service_account(row)),
        }))
    }

    async fn list_service_accounts(
        &self,
        req: Request<pb::ListServiceAccountsRequest>,
    ) -> Result<Response<pb::ListServiceAccountsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_service_accounts(
                &principal,
                &r.organization,
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListServiceAccountsResponse {
            service_accounts: page.items.into_iter().map(service_account).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn update_service_account(
        &self,
        req: Request<pb::UpdateServiceAccountRequest>,
    ) -> Result<Response<pb::UpdateServiceAccountResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let a = required(r.service_account, "service_account")?;
        let paths = update_paths(r.update_mask, &["description", "role"])?;
        let has = |p: &str| paths.iter().any(|x| x == p);
        let row = self
            .0
            .update_service_account(
                &principal,
                &r.organization,
                &a.name,
                ServiceAccountChanges {
                    description: has("description").then(|| a.description.clone()),
                    role: has("role").then(|| a.role.clone()),
                },
            )
            .await?;
        Ok(Response::new(pb::UpdateServiceAccountResponse {
            service_account: Some(service_account(row)),
        }))
    }

    async fn delete_service_account(
        &self,
        req: Request<pb::DeleteServiceAccountRequest>,
    ) -> Result<Response<pb::DeleteServiceAccountResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let account_uuid = self
            .0
            .delete_service_account(&principal, &r.organization, &r.service_account)
            .await?;
        Ok(revoking(
            Response::new(pb::DeleteServiceAccountResponse {}),
            &account_uuid,
        ))
    }

    async fn create_service_account_token(
        &self,
        req: Request<pb::CreateServiceAccountTokenRequest>,
    ) -> Result<Response<pb::CreateServiceAccountTokenResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "ServiceAccountService/CreateServiceAccountToken",
            r.request_id.clone(),
            r,
            |r| async move {
                let t = required(r.token, "token")?;
                let (row, key) = self
                    .0
                    .create_service_account_token(
                        principal,
                        &r.organization,
                        &r.service_account,
                        NewAccountToken {
                            name: t.name,
                            scopes: t.scopes,
                            expire_time: from_optional_timestamp(
                                t.expire_time.as_ref(),
                                "token.expire_time",
                            )?,
                        },
                    )
                    .await?;
                Ok(pb::CreateServiceAccountTokenResponse {
                    token: Some(account_token(row)),
                    key,
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn list_service_account_tokens(
        &self,
        req: Request<pb::ListServiceAccountTokensRequest>,
    ) -> Result<Response<pb::ListServiceAccountTokensResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_service_account_tokens(
                &principal,
                &r.organization,
                &r.service_account,
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListServiceAccountTokensResponse {
            tokens: page.items.into_iter().map(account_token).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn delete_service_account_token(
        &self,
        req: Request<pb::DeleteServiceAccountTokenRequest>,
    ) -> Result<Response<pb::DeleteServiceAccountTokenResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let account_uuid = self
            .0
            .delete_service_account_token(&principal, &r.organization, &r.service_account, &r.token)
            .await?;
        Ok(revoking(
            Response::new(pb::DeleteServiceAccountTokenResponse {}),
            &account_uuid,
        ))
    }
}
