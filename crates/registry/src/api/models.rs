//! `orgplane.registry.v1.ModelRegistryService`.

use orgplane_platform::grpc::{require_principal, required, struct_to_json, update_paths};
use orgplane_platform::{idempotency, restriction::Restriction};
use orgplane_proto::registry::{self as pb, model_registry_service_server::ModelRegistryService};
use tonic::{Request, Response, Status};

use super::convert;
use crate::domain::{
    Kind, Registry, entries::EntryFields, settings::SettingsChanges, stages::Transition,
    versions::VersionFields,
};

pub(super) struct ModelApi(pub Registry);

const KIND: Kind = Kind::Model;

/// Fields of a model an update may name.
const ENTRY_FIELDS: &[&str] = &["description", "tags", "readme", "visibility", "restriction"];
/// Fields of a model version an update may name.
const VERSION_FIELDS: &[&str] = &[
    "description",
    "tags",
    "project",
    "run",
    "artifacts",
    "metadata",
    "connection",
    "model",
];

fn entry_fields(m: &pb::Model, paths: Option<&[String]>) -> EntryFields {
    let has = |p: &str| paths.is_none_or(|paths| paths.iter().any(|x| x == p));
    EntryFields {
        description: has("description").then(|| m.description.clone()),
        tags: has("tags").then(|| m.tags.clone()),
        readme: has("readme").then(|| m.readme.clone()),
        visibility: has("visibility").then(|| convert::visibility_str(m.visibility()).to_owned()),
        restriction: convert::restriction_field(&m.restriction, paths),
    }
}

fn version_fields(v: &pb::ModelVersion, paths: Option<&[String]>) -> VersionFields {
    let has = |p: &str| paths.is_none_or(|paths| paths.iter().any(|x| x == p));
    VersionFields {
        description: has("description").then(|| v.description.clone()),
        tags: has("tags").then(|| v.tags.clone()),
        project: has("project").then(|| v.project.clone()),
        run: has("run").then(|| v.run.clone()),
        artifacts: has("artifacts").then(|| v.artifacts.clone()),
        metadata: has("metadata").then(|| {
            v.metadata
                .as_ref()
                .map(struct_to_json)
                .unwrap_or_else(|| serde_json::json!({}))
        }),
        connection: has("connection").then(|| v.connection.clone()),
        content: None,
    }
}

#[tonic::async_trait]
impl ModelRegistryService for ModelApi {
    async fn create_model(
        &self,
        req: Request<pb::CreateModelRequest>,
    ) -> Result<Response<pb::CreateModelResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "ModelRegistryService/CreateModel",
            r.request_id.clone(),
            r,
            |r| async move {
                let m = required(r.model, "model")?;
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
                Ok(pb::CreateModelResponse {
                    model: Some(convert::model(row, 0)),
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn get_model(
        &self,
        req: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::GetModelResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let row = self
            .0
            .get_entry(&principal, &r.organization, KIND, &r.model)
            .await?;
        let count = self.0.version_count(&row).await?;
        Ok(Response::new(pb::GetModelResponse {
            model: Some(convert::model(row, count)),
        }))
    }

    async fn list_models(
        &self,
        req: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
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
        let mut models = Vec::with_capacity(page.items.len());
        for row in page.items {
            let count = self.0.version_count(&row).await?;
            models.push(convert::model(row, count));
        }
        Ok(Response::new(pb::ListModelsResponse {
            models,
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn update_model(
        &self,
        req: Request<pb::UpdateModelRequest>,
    ) -> Result<Response<pb::UpdateModelResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let m = required(r.model, "model")?;
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
        Ok(Response::new(pb::UpdateModelResponse {
            model: Some(convert::model(row, count)),
        }))
    }

    async fn delete_model(
        &self,
        req: Request<pb::DeleteModelRequest>,
    ) -> Result<Response<pb::DeleteModelResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        self.0
            .delete_entry(&principal, &r.organization, KIND, &r.model, r.force)
            .await?;
        Ok(Response::new(pb::DeleteModelResponse {}))
    }

    async fn create_model_version(
        &self,
        req: Request<pb::CreateModelVersionRequest>,
    ) -> Result<Response<pb::CreateModelVersionResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "ModelRegistryService/CreateModelVersion",
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
                        &r.model,
                        &v.name,
                        version_fields(&v, None),
                    )
                    .await?;
                Ok(pb::CreateModelVersionResponse {
                    version: Some(convert::model_version(row)),
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn get_model_version(
        &self,
        req: Request<pb::GetModelVersionRequest>,
    ) -> Result<Response<pb::GetModelVersionResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let row = self
            .0
            .get_version(&principal, &r.organization, KIND, &r.model, &r.version)
            .await?;
        Ok(Response::new(pb::GetModelVersionResponse {
            version: Some(convert::model_version(row)),
        }))
    }

    async fn list_model_versions(
        &self,
        req: Request<pb::ListModelVersionsRequest>,
    ) -> Result<Response<pb::ListModelVersionsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_versions(
                &principal,
                &r.organization,
                KIND,
                &r.model,
                r.page_size,
                &r.page_token,
                &r.filter,
                &r.order_by,
            )
            .await?;
        Ok(Response::new(pb::ListModelVersionsResponse {
            versions: page.items.into_iter().map(convert::model_version).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn update_model_version(
        &self,
        req: Request<pb::UpdateModelVersionRequest>,
    ) -> Result<Response<pb::UpdateModelVersionResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let v = required(r.version, "version")?;
        let paths = update_paths(r.update_mask, VERSION_FIELDS)?;
        let target = paths
            .iter()
            .any(|p| p == "model")
            .then_some(r.target_model.as_str());
        let row = self
            .0
            .update_version(
                &principal,
                &r.organization,
                KIND,
                &r.model,
                &v.name,
                version_fields(&v, Some(&paths)),
                target,
                &v.etag,
            )
            .await?;
        Ok(Response::new(pb::UpdateModelVersionResponse {
            version: Some(convert::model_version(row)),
        }))
    }

    async fn delete_model_version(
        &self,
        req: Request<pb::DeleteModelVersionRequest>,
    ) -> Result<Response<pb::DeleteModelVersionResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        self.0
            .delete_version(&principal, &r.organization, KIND, &r.model, &r.version)
            .await?;
        Ok(Response::new(pb::DeleteModelVersionResponse {}))
    }

    async fn transition_model_version_stage(
        &self,
        req: Request<pb::TransitionModelVersionStageRequest>,
    ) -> Result<Response<pb::TransitionModelVersionStageResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let condition = r.condition.unwrap_or_default();
        let row = self
            .0
            .transition(
                &principal,
                &r.organization,
                KIND,
                &r.model,
                &r.version,
                Transition {
                    stage: r.stage,
                    reason: condition.reason,
                    message: condition.message,
                },
            )
            .await?;
        Ok(Response::new(pb::TransitionModelVersionStageResponse {
            version: Some(convert::model_version(row)),
        }))
    }

    async fn list_model_version_stages(
        &self,
        req: Request<pb::ListModelVersionStagesRequest>,
    ) -> Result<Response<pb::ListModelVersionStagesResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_stages(
                &principal,
                &r.organization,
                KIND,
                &r.model,
                &r.version,
                r.page_size,
                &r.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListModelVersionStagesResponse {
            stages: page.items.into_iter().map(convert::stage).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn get_registry_settings(
        &self,
        req: Request<pb::GetRegistrySettingsRequest>,
    ) -> Result<Response<pb::GetRegistrySettingsResponse>, Status> {
        let principal = require_principal(&req)?;
        let settings = self
            .0
            .get_settings(&principal, &req.get_ref().organization)
            .await?;
        Ok(Response::new(pb::GetRegistrySettingsResponse {
            settings: Some(convert::settings(settings)),
        }))
    }

    async fn update_registry_settings(
        &self,
        req: Request<pb::UpdateRegistrySettingsRequest>,
    ) -> Result<Response<pb::UpdateRegistrySettingsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let s = required(r.settings, "settings")?;
        let paths = update_paths(
            r.update_mask,
            &[
                "max_production_model_versions",
                "max_production_component_versions",
                "model_registry_restriction",
                "component_hub_restriction",
            ],
        )?;
        let has = |p: &str| paths.iter().any(|x| x == p);
        let settings = self
            .0
            .update_settings(
                &principal,
                &r.organization,
                SettingsChanges {
                    max_production_model_versions: has("max_production_model_versions")
                        .then_some(s.max_production_model_versions),
                    max_production_component_versions: has("max_production_component_versions")
                        .then_some(s.max_production_component_versions),
                    model_registry_restriction: has("model_registry_restriction")
                        .then(|| Restriction::from_proto(s.model_registry_restriction.clone())),
                    component_hub_restriction: has("component_hub_restriction")
                        .then(|| Restriction::from_proto(s.component_hub_restriction.clone())),
                },
                &s.etag,
            )
            .await?;
        Ok(Response::new(pb::UpdateRegistrySettingsResponse {
            settings: Some(convert::settings(settings)),
        }))
    }
}
