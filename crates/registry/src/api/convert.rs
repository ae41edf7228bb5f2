//! Rows → proto messages, and the request fields shared by both faces.

use orgplane_platform::json::json_to_struct;
use orgplane_platform::{restriction::Restriction, tags, time::to_timestamp};
use orgplane_proto::{common, registry as pb};
use orgplane_storage::etag::etag;

use crate::{
    domain::{
        settings::RegistrySettings,
        versions::{artifacts_of, metadata_of},
    },
    storage::{entries, stages, versions},
};

/// Stored visibility → proto.
pub fn visibility(value: &str) -> pb::Visibility {
    match value {
        "public" => pb::Visibility::Public,
        _ => pb::Visibility::Private,
    }
}

/// Proto visibility → stored; unspecified means private.
pub fn visibility_str(value: pb::Visibility) -> &'static str {
    match value {
        pb::Visibility::Public => "public",
        pb::Visibility::Private | pb::Visibility::Unspecified => "private",
    }
}

/// An entry's restriction as stored; a row the registry wrote always reads
/// back (an unreadable one shows as unrestricted here, while every check
/// refuses it).
fn stored_restriction(stored: Option<&str>) -> common::Restriction {
    Restriction::load(stored).unwrap_or_default().to_proto()
}

/// The restriction an entry request sets: when named in the update mask
/// (`paths`), or on creation (no mask) when given restricted.
pub fn restriction_field(
    r: &Option<common::Restriction>,
    paths: Option<&[String]>,
) -> Option<Restriction> {
    match paths {
        Some(paths) => paths
            .iter()
            .any(|p| p == "restriction")
            .then(|| Restriction::from_proto(r.clone())),
        None => r
            .as_ref()
            .filter(|r| r.restricted)
            .map(|r| Restriction::from_proto(Some(r.clone()))),
    }
}

/// A model.
pub fn model(e: entries::Model, version_count: u64) -> pb::Model {
    pb::Model {
        uuid: e.uuid,
        name: e.name,
        description: e.description,
        tags: tags::parse(&e.tags),
        readme: e.readme,
        visibility: visibility(&e.visibility) as i32,
        version_count: version_count as i32,
        create_time: Some(to_timestamp(e.create_time)),
        update_time: Some(to_timestamp(e.update_time)),
        restriction: Some(stored_restriction(e.restriction.as_deref())),
        etag: etag(e.version),
    }
}

/// A component.
pub fn component(e: entries::Model, version_count: u64) -> pb::Component {
    pb::Component {
        uuid: e.uuid,
        name: e.name,
        description: e.description,
        tags: tags::parse(&e.tags),
        readme: e.readme,
        visibility: visibility(&e.visibility) as i32,
        version_count: version_count as i32,
        create_time: Some(to_timestamp(e.create_time)),
        update_time: Some(to_timestamp(e.update_time)),
        restriction: Some(stored_restriction(e.restriction.as_deref())),
        etag: etag(e.version),
    }
}

/// The condition of a version's current stage.
fn stage_condition(v: &versions::Model) -> common::Condition {
    common::Condition {
        r#type: v.stage.clone(),
        reason: v.stage_reason.clone(),
        message: v.stage_message.clone(),
        actor: v.stage_actor.clone(),
        create_time: Some(to_timestamp(v.stage_time)),
    }
}

/// A model version.
pub fn model_version(v: versions::Model) -> pb::ModelVersion {
    pb::ModelVersion {
        stage_condition: Some(stage_condition(&v)),
        artifacts: artifacts_of(&v),
        metadata: Some(json_to_struct(&metadata_of(&v))),
        uuid: v.uuid,
        name: v.name,
        description: v.description,
        tags: tags::parse(&v.tags),
        project: v.project,
        run: v.run,
        connection: v.connection,
        stage: v.stage,
        create_time: Some(to_timestamp(v.create_time)),
        update_time: Some(to_timestamp(v.update_time)),
        etag: etag(v.version),
    }
}

/// A component version.
pub fn component_version(v: versions::Model) -> pb::ComponentVersion {
    pb::ComponentVersion {
        stage_condition: Some(stage_condition(&v)),
        artifacts: artifacts_of(&v),
        uuid: v.uuid,
        name: v.name,
        description: v.description,
        tags: tags::parse(&v.tags),
        content: v.content,
        project: v.project,
        run: v.run,
        stage: v.stage,
        create_time: Some(to_timestamp(v.create_time)),
        update_time: Some(to_timestamp(v.update_time)),
        etag: etag(v.version),
    }
}

/// A stage history entry.
pub fn stage(s: stages::Model) -> common::Condition {
    common::Condition {
        r#type: s.stage,
        reason: s.reason,
        message: s.message,
        actor: s.actor,
        create_time: Some(to_timestamp(s.create_time)),
    }
}

/// The registry's rules.
pub fn settings(s: RegistrySettings) -> pb::RegistrySettings {
    pb::RegistrySettings {
        max_production_model_versions: s.max_production_model_versions,
        max_production_component_versions: s.max_production_component_versions,
        model_registry_restriction: Some(s.model_registry_restriction.to_proto()),
        component_hub_restriction: Some(s.component_hub_restriction.to_proto()),
        etag: s.etag,
    }
}
