//! `orgplane.registry.v1.ModelRegistryService`.

use orgplane_platform::json::struct_to_json;
use orgplane_platform::restriction::Restriction;
use orgplane_proto::registry::{self as pb, model_registry_service_server::ModelRegistryService};
use orgplane_storage::idempotency;
use orgplane_transport::grpc::{require_principal, required, update_paths};
use tonic::{Request, Response, Status};

use super::{convert, entry_api::entry_api};
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

entry_api! {
    impl ModelRegistryService for ModelApi;
    entry: model, entries: models, target: target_model;
    convert: convert::model, convert::model_version;
    create_model(CreateModelRequest, CreateModelResponse, "CreateModel");
    get_model(GetModelRequest, GetModelResponse);
    list_models(ListModelsRequest, ListModelsResponse);
    update_model(UpdateModelRequest, UpdateModelResponse);
    delete_model(DeleteModelRequest, DeleteModelResponse);
    create_model_version(CreateModelVersionRequest, CreateModelVersionResponse, "CreateModelVersion");
    get_model_version(GetModelVersionRequest, GetModelVersionResponse);
    list_model_versions(ListModelVersionsRequest, ListModelVersionsResponse);
    update_model_version(UpdateModelVersionRequest, UpdateModelVersionResponse);
    delete_model_version(DeleteModelVersionRequest, DeleteModelVersionResponse);
    transition_model_version_stage(TransitionModelVersionStageRequest, TransitionModelVersionStageResponse);
    list_model_version_stages(ListModelVersionStagesRequest, ListModelVersionStagesResponse);

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
