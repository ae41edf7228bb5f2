//! `orgplane.registry.v1.ComponentHubService`.

use orgplane_platform::grpc::{require_principal, required, update_paths};
use orgplane_platform::idempotency;
use orgplane_proto::registry::{self as pb, component_hub_service_server::ComponentHubService};
use tonic::{Request, Response, Status};

use super::convert;
use crate::domain::{
    Kind, Registry, entries::EntryFields, stages::Transition, versions::VersionFields,
};

pub(super) struct ComponentApi(pub Registry);

const KIND: Kind = Kind::Component;

/// Fields of a component an update may name.
const ENTRY_FIELDS: &[&str] = &["description", "tags", "readme", "visibility", "restriction"];
/// Fields of a component version an update may name.
const VERSION_FIELDS: &[&str] = &[
    "description",
    "tags",
    "content",
    "project",
    "run",
    "artifacts",
    "component",
];

fn entry_fields(m: &pb::Component, paths: Option<&[String]>) -> EntryFields {
    let has = |p: &str| paths.is_none_or(|paths| paths.iter().any(|x| x == p));
    EntryFields {
        description: has("description").then(|| m.description.clone()),
        tags: has("tags").then(|| m.tags.clone()),
        readme: has("readme").then(|| m.readme.clone()),
        visibility: has("visibility").then(|| convert::visibility_str(m.visibility()).to_owned()),
        restriction: convert::restriction_field(&m.restriction, paths),
    }
}

fn version_fields(v: &pb::ComponentVersion, paths: Option<&[String]>) -> VersionFields {
    let has = |p: &str| paths.is_none_or(|paths| paths.iter().any(|x| x == p));
    VersionFields {
        description: has("description").then(|| v.description.clone()),
        tags: has("tags").then(|| v.tags.clone()),
        project: has("project").then(|| v.project.clone()),
        run: has("run").then(|| v.run.clone()),
        artifacts: has("artifacts").then(|| v.artifacts.clone()),
        metadata: None,
        connection: None,
        content: has("content").then(|| v.content.clone()),
    }
}

#[tonic::async_trait]
impl ComponentHubService for ComponentApi {
    async fn create_component(
        &self,
        req: Request<pb::CreateComponentRequest>,
    ) -> Result<Response<pb::CreateComponentResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "ComponentHubService/CreateComponent",
            r.request_id.clone(),
            r,
            |r| async move {
                let m = required(r.component, "component")?;
                let row = self
                    .0
                    .create_entry(
                        principal,
                        &r.organization,
                        KIND,
                        &m.name,
                        entry_fields(&m, None),
                    )
                    .await?;
                Ok(pb::CreateComponentResponse {
                    component: Some(convert::component(row, 0)),
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn get_component(
        &self,
        req: Request<pb::GetComponentRequest>,
    ) -> Result<Response<pb::GetComponentResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let row = self
            .0
            .get_entry(&principal, &r.organization, KIND, &r.component)
            .await?;
        let count = self.0.version_count(&row).await?;
        Ok(Response::new(pb::GetComponentResponse {
            component: Some(convert::component(row, count)),
        }))
    }

    async fn list_components(
        &self,
        req: Request<pb::ListComponentsRequest>,
    ) -> Result<Response<pb::ListComponentsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_entries(
                &principal,
                &r.organization,
                KIND,
                r.page_size,
                &r.page_token,
                &r.filter,
                &r.order_by,
            )
            .await?;
        let mut components = Vec::with_capacity(page.items.len());
        for row in page.items {
            let count = self.0.version_count(&row).await?;
            components.push(convert::component(row, count));
        }
        Ok(Response::new(pb::ListComponentsResponse {
            components,
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn update_component(
        &self,
        req: Request<pb::UpdateComponentRequest>,
    ) -> Result<Response<pb::UpdateComponentResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let m = required(r.component, "component")?;
        let paths = update_paths(r.update_mask, ENTRY_FIELDS)?;
        let row = self
            .0
            .update_entry(
                &principal,
                &r.organization,
                KIND,
                &m.name,
                entry_fields(&m, Some(&paths)),
                &m.etag,
            )
            .await?;
        let count = self.0.version_count(&row).await?;
        Ok(Response::new(pb::UpdateComponentResponse {
            component: Some(convert::component(row, count)),
        }))
    }

    async fn delete_component(
        &self,
        req: Request<pb::DeleteComponentRequest>,
    ) -> Result<Response<pb::DeleteComponentResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        self.0
            .delete_entry(&principal, &r.organization, KIND, &r.component, r.force)
            .await?;
        Ok(Response::new(pb::DeleteComponentResponse {}))
    }

    async fn create_component_version(
        &self,
        req: Request<pb::CreateComponentVersionRequest>,
    ) -> Result<Response<pb::CreateComponentVersionResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "ComponentHubService/CreateComponentVersion",
            r.request_id.clone(),
            r,
            |r| async move {
                let v = required(r.version, "version")?;
                let row = self
                    .0
                    .create_version(
                        principal,
                        &r.organization,
                        KIND,
                        &r.component,
                        &v.name,
                        version_fields(&v, None),
                    )
                    .await?;
                Ok(pb::CreateComponentVersionResponse {
                    version: Some(convert::component_version(row)),
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn get_component_version(
        &self,
        req: Request<pb::GetComponentVersionRequest>,
    ) -> Result<Response<pb::GetComponentVersionResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let row = self
            .0
            .get_version(&principal, &r.organization, KIND, &r.component, &r.version)
            .await?;
        Ok(Response::new(pb::GetComponentVersionResponse {
            version: Some(convert::component_version(row)),
        }))
    }

    async fn list_component_versions(
        &self,
        req: Request<pb::ListComponentVersionsRequest>,
    ) -> Result<Response<pb::ListComponentVersionsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_versions(
                &principal,
                &r.organization,
                KIND,
                &r.component,
                r.page_size,
                &r.page_token,
                &r.filter,
                &r.order_by,
            )
            .await?;
        Ok(Response::new(pb::ListComponentVersionsResponse {
            versions: page
                .items
                .into_iter()
                .map(convert::component_version)
                .collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn update_component_version(
        &self,
        req: Request<pb::UpdateComponentVersionRequest>,
    ) -> Result<Response<pb::UpdateComponentVersionResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let v = required(r.version, "version")?;
        let paths = update_paths(r.update_mask, VERSION_FIELDS)?;
        let target = paths
            .iter()
            .any(|p| p == "component")
            .then_some(r.target_component.as_str());
        let row = self
            .0
            .update_version(
                &principal,
                &r.organization,
                KIND,
                &r.component,
                &v.name,
                version_fields(&v, Some(&paths)),
                target,
                &v.etag,
            )
            .await?;
        Ok(Response::new(pb::UpdateComponentVersionResponse {
            version: Some(convert::component_version(row)),
        }))
    }

    async fn delete_component_version(
        &self,
        req: Request<pb::DeleteComponentVersionRequest>,
    ) -> Result<Response<pb::DeleteComponentVersionResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        self.0
            .delete_version(&principal, &r.organization, KIND, &r.component, &r.version)
            .await?;
        Ok(Response::new(pb::DeleteComponentVersionResponse {}))
    }

    async fn transition_component_version_stage(
        &self,
        req: Request<pb::TransitionComponentVersionStageRequest>,
    ) -> Result<Response<pb::TransitionComponentVersionStageResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let condition = r.condition.unwrap_or_default();
        let row = self
            .0
            .transition(
                &principal,
                &r.organization,
                KIND,
                &r.component,
                &r.version,
                Transition {
                    stage: r.stage,
                    reason: condition.reason,
                    message: condition.message,
                },
            )
            .await?;
        Ok(Response::new(pb::TransitionComponentVersionStageResponse {
            version: Some(convert::component_version(row)),
        }))
    }

    async fn list_component_version_stages(
        &self,
        req: Request<pb::ListComponentVersionStagesRequest>,
    ) -> Result<Response<pb::ListComponentVersionStagesResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_stages(
                &principal,
                &r.organization,
                KIND,
                &r.component,
                &r.version,
                r.page_size,
                &r.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListComponentVersionStagesResponse {
            stages: page.items.into_iter().map(convert::stage).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }
}
