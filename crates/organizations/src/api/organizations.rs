//! `orgplane.organizations.v1.OrganizationService`.

use orgplane_proto::organizations::{self as pb, organization_service_server::OrganizationService};
use orgplane_storage::idempotency;
use orgplane_storage::page::ListQuery;
use orgplane_transport::grpc::{require_principal, required, update_paths};
use tonic::{Request, Response, Status};

use super::convert;
use crate::domain::{
    Organizations,
    organizations::Profile,
    settings::{AuthProvider, SettingsChanges},
};

pub(super) struct OrganizationApi(pub Organizations);

/// Settings fields an update mask may name (`auth` names every auth field).
const SETTINGS_PATHS: &[&str] = &[
    "support_email",
    "default_role",
    "default_queue",
    "activity_retention_days",
    "auth",
    "auth.invite_only",
    "auth.allowed_email_domains",
    "auth.password_enabled",
    "auth.providers",
];

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
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "OrganizationService/CreateOrganization",
            r.request_id.clone(),
            r,
            |r| async move {
                let org = required(r.organization, "organization")?;
                let view = self
                    .0
                    .create_organization(principal, &org.name, profile(&org, None))
                    .await?;
                Ok(pb::CreateOrganizationResponse {
                    organization: Some(convert::organization(view)),
                })
            },
        )
        .await?;
        Ok(Response::new(response))
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
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: page.items.into_iter().map(convert::organization).collect(),
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
        req: Request<pb::GetOrganizationSettingsRequest>,
    ) -> Result<Response<pb::GetOrganizationSettingsResponse>, Status> {
        let principal = require_principal(&req)?;
        let settings = self
            .0
            .get_settings(&principal, &req.get_ref().organization)
            .await?;
        Ok(Response::new(pb::GetOrganizationSettingsResponse {
            settings: Some(convert::settings(settings)),
        }))
    }

    async fn update_organization_settings(
        &self,
        req: Request<pb::UpdateOrganizationSettingsRequest>,
    ) -> Result<Response<pb::UpdateOrganizationSettingsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let paths = update_paths(r.update_mask, SETTINGS_PATHS)?;
        let settings = required(r.settings, "settings")?;
        let has = |p: &str| {
            paths
                .iter()
                .any(|x| x == p || (x == "auth" && p.starts_with("auth.")))
        };
        let auth = settings.auth.clone().unwrap_or_default();
        let changes = SettingsChanges {
            support_email: has("support_email").then(|| settings.support_email.clone()),
            default_role: has("default_role").then(|| settings.default_role.clone()),
            default_queue: has("default_queue").then(|| settings.default_queue.clone()),
            activity_retention_days: has("activity_retention_days")
                .then_some(settings.activity_retention_days),
            invite_only: has("auth.invite_only").then_some(auth.invite_only),
            allowed_email_domains: has("auth.allowed_email_domains")
                .then(|| auth.allowed_email_domains.clone()),
            password_enabled: has("auth.password_enabled").then_some(auth.password_enabled),
            providers: has("auth.providers").then(|| {
                auth.providers
                    .iter()
                    .map(|p| AuthProvider {
                        name: p.name.clone(),
                        issuer: p.issuer.clone(),
                        client_id: p.client_id.clone(),
                        allowed_email_domains: p.allowed_email_domains.clone(),
                        enabled: p.enabled,
                    })
                    .collect()
            }),
        };
        let settings = self
            .0
            .update_settings(&principal, &r.organization, changes, &settings.etag)
            .await?;
        Ok(Response::new(pb::UpdateOrganizationSettingsResponse {
            settings: Some(convert::settings(settings)),
        }))
    }
}
