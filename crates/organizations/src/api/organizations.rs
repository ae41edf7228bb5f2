//! `orgplane.organizations.v1.OrganizationService`.

use orgplane_platform::{
    Error,
    grpc::{require_principal, required, update_paths},
};
use orgplane_proto::organizations::{self as pb, organization_service_server::OrganizationService};
use tonic::{Request, Response, Status};

use super::convert;
use crate::domain::{Organizations, organizations::Profile};

pub(super) struct OrganizationApi(pub Organizations);

fn profile(o: &pb::Organization, paths: Option<&[String]>) -> Profile {
    let has = |p: &str| paths.is_none_or(|paths| paths.iter().any(|x| x == p));
    Profile {
        display_name: has("display_name").then(|| o.display_name.clone()),
        description: has("description").then(|| o.description.clone()),
        website: has("website").then(|| o.website.clone()),
        visibility: has("visibility").then(|| convert::visibility_str(o.visibility()).to_owned()),
    }
}

#[tonic::async_trait]
impl OrganizationService for OrganizationApi {
    async fn create_organization(
        &self,
        req: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::CreateOrganizationResponse>, Status> {
        let principal = require_principal(&req)?;
        let org = required(req.into_inner().organization, "organization")?;
        let view = self
            .0
            .create_organization(&principal, &org.name, profile(&org, None))
            .await?;
        Ok(Response::new(pb::CreateOrganizationResponse {
            organization: Some(convert::organization(view)),
        }))
    }

    async fn get_organization(
        &self,
        req: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::GetOrganizationResponse>, Status> {
        let principal = require_principal(&req)?;
        let view = self
            .0
            .get_organization(&principal, &req.get_ref().organization)
            .await?;
        Ok(Response::new(pb::GetOrganizationResponse {
            organization: Some(convert::organization(view)),
        }))
    }

    async fn list_organizations(
        &self,
        req: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let page = self
            .0
            .list_organizations(
                &principal,
                r.page_size,
                &r.page_token,
                &r.filter,
                &r.order_by,
            )
            .await?;
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: page
                .organizations
                .into_iter()
                .map(convert::organization)
                .collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn update_organization(
        &self,
        req: Request<pb::UpdateOrganizationRequest>,
    ) -> Result<Response<pb::UpdateOrganizationResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let paths = update_paths(
            r.update_mask,
            &["display_name", "description", "website", "visibility"],
        )?;
        let org = required(r.organization, "organization")?;
        let view = self
            .0
            .update_organization(
                &principal,
                &org.name,
                profile(&org, Some(&paths)),
                &org.etag,
            )
            .await?;
        Ok(Response::new(pb::UpdateOrganizationResponse {
            organization: Some(convert::organization(view)),
        }))
    }

    async fn delete_organization(
        &self,
        req: Request<pb::DeleteOrganizationRequest>,
    ) -> Result<Response<pb::DeleteOrganizationResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        self.0
            .delete_organization(&principal, &r.organization, &r.confirm, &r.etag)
            .await?;
        Ok(Response::new(pb::DeleteOrganizationResponse {}))
    }

    async fn get_organization_settings(
        &self,
        _req: Request<pb::GetOrganizationSettingsRequest>,
    ) -> Result<Response<pb::GetOrganizationSettingsResponse>, Status> {
        Err(Error::Unimplemented("organization settings are not implemented yet".into()).into())
    }

    async fn update_organization_settings(
        &self,
        _req: Request<pb::UpdateOrganizationSettingsRequest>,
    ) -> Result<Response<pb::UpdateOrganizationSettingsResponse>, Status> {
        Err(Error::Unimplemented("organization settings are not implemented yet".into()).into())
    }
}
