//! `orgplane.registry.v1.ComponentHubService`.

use orgplane_proto::registry::{self as pb, component_hub_service_server::ComponentHubService};
use orgplane_storage::idempotency;
use orgplane_transport::grpc::{require_principal, required, update_paths};
use tonic::{Request, Response, Status};

use super::{convert, entry_api::entry_api};
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

entry_api! {
    impl ComponentHubService for ComponentApi;
    entry: component, entries: components, target: target_component;
    convert: convert::component, convert::component_version;
    create_component(CreateComponentRequest, CreateComponentResponse, "CreateComponent");
    get_component(GetComponentRequest, GetComponentResponse);
    list_components(ListComponentsRequest, ListComponentsResponse);
    update_component(UpdateComponentRequest, UpdateComponentResponse);
    delete_component(DeleteComponentRequest, DeleteComponentResponse);
    create_component_version(CreateComponentVersionRequest, CreateComponentVersionResponse, "CreateComponentVersion");
    get_component_version(GetComponentVersionRequest, GetComponentVersionResponse);
    list_component_versions(ListComponentVersionsRequest, ListComponentVersionsResponse);
    update_component_version(UpdateComponentVersionRequest, UpdateComponentVersionResponse);
    delete_component_version(DeleteComponentVersionRequest, DeleteComponentVersionResponse);
    transition_component_version_stage(TransitionComponentVersionStageRequest, TransitionComponentVersionStageResponse);
    list_component_version_stages(ListComponentVersionStagesRequest, ListComponentVersionStagesResponse);
}
