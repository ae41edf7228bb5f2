//! Both faces of the registry through one interface, so a test body about
//! entries, versions and stages runs for models and for components alike
//! (`ModelRegistryService` and `ComponentHubService` are the same RPCs with
//! their own message names).

use orgplane_proto::{common::Condition, registry::*};
use prost_types::FieldMask;
use tonic::Status;

use crate::TestStack;

/// Which face of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The model registry.
    Model,
    /// The component hub.
    Component,
}

/// What a test reads of a model or component version.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// Its name.
    pub name: String,
    /// Its stage.
    pub stage: String,
    /// The run it was made from.
    pub run: String,
    /// Its artifacts.
    pub artifacts: Vec<String>,
    /// Why it is in its stage.
    pub stage_condition: Option<Condition>,
}

/// A valid component specification (components must carry one).
pub const COMPONENT_SPEC: &str = "\
version: 1.1
kind: component
name: train
run:
  kind: job
  container:
    image: python:3.12
";

impl From<ModelVersion> for Version {
    fn from(v: ModelVersion) -> Self {
        Self {
            name: v.name,
            stage: v.stage,
            run: v.run,
            artifacts: v.artifacts,
            stage_condition: v.stage_condition,
        }
    }
}

impl From<ComponentVersion> for Version {
    fn from(v: ComponentVersion) -> Self {
        Self {
            name: v.name,
            stage: v.stage,
            run: v.run,
            artifacts: v.artifacts,
            stage_condition: v.stage_condition,
        }
    }
}

impl Kind {
    /// The settings field that bounds this kind's production versions.
    pub fn max_production_field(self) -> &'static str {
        match self {
            Kind::Model => "max_production_model_versions",
            Kind::Component => "max_production_component_versions",
        }
    }

    /// This kind's production bound in `settings`.
    pub fn max_production(self, settings: &RegistrySettings) -> i32 {
        match self {
            Kind::Model => settings.max_production_model_versions,
            Kind::Component => settings.max_production_component_versions,
        }
    }

    /// Settings that set this kind's production bound to `limit` under
    /// `etag`, and the mask that names it.
    pub fn with_max_production(self, limit: i32, etag: String) -> (RegistrySettings, FieldMask) {
        let mut settings = RegistrySettings {
            etag,
            ..Default::default()
        };
        match self {
            Kind::Model => settings.max_production_model_versions = limit,
            Kind::Component => settings.max_production_component_versions = limit,
        }
        let mask = FieldMask {
            paths: vec![self.max_production_field().to_owned()],
        };
        (settings, mask)
    }

    /// Creates entry `name` in `org`, private.
    pub async fn create(
        self,
        t: &TestStack,
        token: &str,
        org: &str,
        name: &str,
    ) -> Result<(), Status> {
        let visibility = Visibility::Private as i32;
        match self {
            Kind::Model => t
                .models_as(token)
                .create_model(CreateModelRequest {
                    request_id: String::new(),
                    organization: org.into(),
                    model: Some(Model {
                        name: name.into(),
                        description: format!("the {name} model"),
                        visibility,
                        ..Default::default()
                    }),
                })
                .await
                .map(drop),
            Kind::Component => t
                .components_as(token)
                .create_component(CreateComponentRequest {
                    request_id: String::new(),
                    organization: org.into(),
                    component: Some(Component {
                        name: name.into(),
                        description: format!("the {name} component"),
                        visibility,
                        ..Default::default()
                    }),
                })
                .await
                .map(drop),
        }
    }

    /// Creates version `name` of `entry` in project `vision`, made from `run`
    /// when it is not empty.
    pub async fn create_version(
        self,
        t: &TestStack,
        token: &str,
        org: &str,
        entry: &str,
        name: &str,
        run: &str,
    ) -> Result<Version, Status> {
        match self {
            Kind::Model => t
                .models_as(token)
                .create_model_version(CreateModelVersionRequest {
                    request_id: String::new(),
                    organization: org.into(),
                    model: entry.into(),
                    version: Some(ModelVersion {
                        name: name.into(),
                        project: "vision".into(),
                        run: run.into(),
                        artifacts: vec!["artifact.bin".into()],
                        ..Default::default()
                    }),
                })
                .await
                .map(|r| r.into_inner().version.unwrap().into()),
            Kind::Component => t
                .components_as(token)
                .create_component_version(CreateComponentVersionRequest {
                    request_id: String::new(),
                    organization: org.into(),
                    component: entry.into(),
                    version: Some(ComponentVersion {
                        name: name.into(),
                        project: "vision".into(),
                        run: run.into(),
                        artifacts: vec!["artifact.bin".into()],
                        content: COMPONENT_SPEC.into(),
                        ..Default::default()
                    }),
                })
                .await
                .map(|r| r.into_inner().version.unwrap().into()),
        }
    }

    /// Moves `version` of `entry` to `stage`, with `condition` (none: the
    /// service says why).
    #[expect(
        clippy::too_many_arguments,
        reason = "a test helper naming the whole address"
    )]
    pub async fn transition(
        self,
        t: &TestStack,
        token: &str,
        org: &str,
        entry: &str,
        version: &str,
        stage: &str,
        condition: Option<Condition>,
    ) -> Result<Version, Status> {
        match self {
            Kind::Model => t
                .models_as(token)
                .transition_model_version_stage(TransitionModelVersionStageRequest {
                    organization: org.into(),
                    model: entry.into(),
                    version: version.into(),
                    stage: stage.into(),
                    condition,
                })
                .await
                .map(|r| r.into_inner().version.unwrap().into()),
            Kind::Component => t
                .components_as(token)
                .transition_component_version_stage(TransitionComponentVersionStageRequest {
                    organization: org.into(),
                    component: entry.into(),
                    version: version.into(),
                    stage: stage.into(),
                    condition,
                })
                .await
                .map(|r| r.into_inner().version.unwrap().into()),
        }
    }

    /// The stages `version` of `entry` went through, newest first.
    pub async fn history(
        self,
        t: &TestStack,
        token: &str,
        org: &str,
        entry: &str,
        version: &str,
    ) -> Result<Vec<String>, Status> {
        let stages = match self {
            Kind::Model => {
                t.models_as(token)
                    .list_model_version_stages(ListModelVersionStagesRequest {
                        organization: org.into(),
                        model: entry.into(),
                        version: version.into(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner()
                    .stages
            }
            Kind::Component => {
                t.components_as(token)
                    .list_component_version_stages(ListComponentVersionStagesRequest {
                        organization: org.into(),
                        component: entry.into(),
                        version: version.into(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner()
                    .stages
            }
        };
        Ok(stages.into_iter().map(|c| c.r#type).collect())
    }

    /// The versions of `entry` that `filter` selects, and their total.
    pub async fn list_versions(
        self,
        t: &TestStack,
        token: &str,
        org: &str,
        entry: &str,
        filter: &str,
    ) -> Result<(Vec<Version>, i64), Status> {
        Ok(match self {
            Kind::Model => {
                let page = t
                    .models_as(token)
                    .list_model_versions(ListModelVersionsRequest {
                        organization: org.into(),
                        model: entry.into(),
                        filter: filter.into(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                (
                    page.versions.into_iter().map(Into::into).collect(),
                    page.total_size,
                )
            }
            Kind::Component => {
                let page = t
                    .components_as(token)
                    .list_component_versions(ListComponentVersionsRequest {
                        organization: org.into(),
                        component: entry.into(),
                        filter: filter.into(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                (
                    page.versions.into_iter().map(Into::into).collect(),
                    page.total_size,
                )
            }
        })
    }

    /// How many versions `entry` has, as reading it says.
    pub async fn version_count(
        self,
        t: &TestStack,
        token: &str,
        org: &str,
        entry: &str,
    ) -> Result<i32, Status> {
        Ok(match self {
            Kind::Model => {
                t.models_as(token)
                    .get_model(GetModelRequest {
                        organization: org.into(),
                        model: entry.into(),
                    })
                    .await?
                    .into_inner()
                    .model
                    .unwrap()
                    .version_count
            }
            Kind::Component => {
                t.components_as(token)
                    .get_component(GetComponentRequest {
                        organization: org.into(),
                        component: entry.into(),
                    })
                    .await?
                    .into_inner()
                    .component
                    .unwrap()
                    .version_count
            }
        })
    }

    /// Reads `version` of `entry`.
    pub async fn get_version(
        self,
        t: &TestStack,
        token: &str,
        org: &str,
        entry: &str,
        version: &str,
    ) -> Result<Version, Status> {
        match self {
            Kind::Model => t
                .models_as(token)
                .get_model_version(GetModelVersionRequest {
                    organization: org.into(),
                    model: entry.into(),
                    version: version.into(),
                })
                .await
                .map(|r| r.into_inner().version.unwrap().into()),
            Kind::Component => t
                .components_as(token)
                .get_component_version(GetComponentVersionRequest {
                    organization: org.into(),
                    component: entry.into(),
                    version: version.into(),
                })
                .await
                .map(|r| r.into_inner().version.unwrap().into()),
        }
    }

    /// Deletes `entry` (with its versions only when `force`).
    pub async fn delete(
        self,
        t: &TestStack,
        token: &str,
        org: &str,
        entry: &str,
        force: bool,
    ) -> Result<(), Status> {
        match self {
            Kind::Model => t
                .models_as(token)
                .delete_model(DeleteModelRequest {
                    organization: org.into(),
                    model: entry.into(),
                    force,
                })
                .await
                .map(drop),
            Kind::Component => t
                .components_as(token)
                .delete_component(DeleteComponentRequest {
                    organization: org.into(),
                    component: entry.into(),
                    force,
                })
                .await
                .map(drop),
        }
    }
}
