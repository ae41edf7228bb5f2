//! The registry end to end through the gateway: models and components,
//! versions and their stages under the registry's rules, authorized by the
//! organizations service.

use std::time::Duration;

use orgplane_e2e::{
    TestStack,
    catalog::{self, Kind},
    eventually, expect_code, expect_reason, expected_code, grant, mask, violated_fields,
};
use orgplane_platform::authz::Permission;
use orgplane_proto::{
    common::Condition,
    organizations::{
        DeleteOrganizationRequest, EntityKind, GetOrganizationRequest, Team, TeamGrant,
    },
    registry::*,
};
use tonic::Code;

async fn model(t: &TestStack, token: &str, org: &str, name: &str, visibility: Visibility) {
    t.models_as(token)
        .create_model(CreateModelRequest {
            request_id: String::new(),
            organization: org.into(),
            model: Some(Model {
                name: name.into(),
                description: format!("the {name} model"),
                tags: vec!["vision".into()],
                visibility: visibility as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("create model");
}

/// A version of `model` (not made from a run: promoting a run needs admin).
async fn version(t: &TestStack, token: &str, org: &str, model: &str, name: &str) -> ModelVersion {
    t.models_as(token)
        .create_model_version(CreateModelVersionRequest {
            request_id: String::new(),
            organization: org.into(),
            model: model.into(),
            version: Some(ModelVersion {
                name: name.into(),
                project: "vision".into(),
                artifacts: vec!["model.onnx".into()],
                metadata: Some(prost_types::Struct {
                    fields: [(
                        "accuracy".to_owned(),
                        prost_types::Value {
                            kind: Some(prost_types::value::Kind::NumberValue(0.93)),
                        },
                    )]
                    .into(),
                }),
                ..Default::default()
            }),
        })
        .await
        .expect("create model version")
        .into_inner()
        .version
        .unwrap()
}

async fn transition(
    t: &TestStack,
    token: &str,
    org: &str,
    model: &str,
    version: &str,
    stage: &str,
) -> Result<ModelVersion, tonic::Status> {
    t.models_as(token)
        .transition_model_version_stage(TransitionModelVersionStageRequest {
            organization: org.into(),
            model: model.into(),
            version: version.into(),
            stage: stage.into(),
            condition: Some(Condition {
                reason: "Evaluated".into(),
                message: format!("{version} to {stage}"),
                ..Default::default()
            }),
        })
        .await
        .map(|r| r.into_inner().version.unwrap())
}

async fn history(t: &TestStack, token: &str, org: &str, model: &str, version: &str) -> Vec<String> {
    t.models_as(token)
        .list_model_version_stages(ListModelVersionStagesRequest {
            organization: org.into(),
            model: model.into(),
            version: version.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .stages
        .into_iter()
        .map(|c| c.r#type)
        .collect()
}

const RUN: &str = "01900000-0000-7000-8000-00000000abcd";

/// A condition with a reason, as a caller gives it.
fn evaluated(version: &str, stage: &str) -> Option<Condition> {
    Some(Condition {
        reason: "Evaluated".into(),
        message: format!("{version} to {stage}"),
        ..Default::default()
    })
}

/// Moves `version` of acme's `detector` to `stage`, with a reason.
async fn move_to(
    t: &TestStack,
    kind: Kind,
    token: &str,
    version: &str,
    stage: &str,
) -> Result<catalog::Version, tonic::Status> {
    let reason = evaluated(version, stage);
    kind.transition(t, token, "acme", "detector", version, stage, reason)
        .await
}

/// An entry of `kind` from its first version to production and back: the
/// stage rules, the history, lists, counts and deletion.
async fn an_entry_from_first_version_to_production_and_back(t: &TestStack, kind: Kind) {
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let member = t.user("maker").await;
    t.add_member("acme", "maker", "member").await;
    kind.create(t, &owner, "acme", "detector").await.unwrap();

    // Promoting a run to the registry is for admins and up (Polyaxon); a
    // member creates versions that name no run.
    expect_reason(
        kind.create_version(t, &member, "acme", "detector", "from-run", RUN)
            .await,
        Code::PermissionDenied,
        "ROLE_TOO_WEAK",
    );
    let promoted = kind
        .create_version(t, &owner, "acme", "detector", "from-run", RUN)
        .await
        .unwrap();
    assert_eq!(promoted.run, RUN);
    let v1 = kind
        .create_version(t, &member, "acme", "detector", "v1", "")
        .await
        .unwrap();
    assert_eq!(v1.stage, "testing");
    assert_eq!(v1.artifacts, ["artifact.bin"]);
    assert_eq!(v1.stage_condition.as_ref().unwrap().actor, "maker");
    let staged = move_to(t, kind, &member, "v1", "staging").await.unwrap();
    assert_eq!(staged.stage_condition.as_ref().unwrap().reason, "Evaluated");
    move_to(t, kind, &member, "v1", "production").await.unwrap();

    // At most one production version per entry (the default rule).
    kind.create_version(t, &member, "acme", "detector", "v2", "")
        .await
        .unwrap();
    expect_reason(
        move_to(t, kind, &member, "v2", "production").await,
        Code::FailedPrecondition,
        "PRODUCTION_LIMIT",
    );
    expect_reason(
        move_to(t, kind, &member, "v1", "production").await,
        Code::FailedPrecondition,
        "ALREADY_IN_STAGE",
    );
    move_to(t, kind, &member, "v1", "disabled").await.unwrap();
    move_to(t, kind, &member, "v2", "production").await.unwrap();
    // ...and back, with the reason the service gives.
    let back = kind
        .transition(t, &member, "acme", "detector", "v2", "staging", None)
        .await
        .unwrap();
    assert_eq!(back.stage_condition.unwrap().reason, "Demoted");

    // The history is append-only, newest first.
    assert_eq!(
        kind.history(t, &member, "acme", "detector", "v1")
            .await
            .unwrap(),
        ["disabled", "production", "staging", "testing"]
    );
    assert_eq!(
        kind.history(t, &member, "acme", "detector", "v2")
            .await
            .unwrap(),
        ["staging", "production", "testing"]
    );

    // Lists with filters and the version count.
    let (disabled, total) = kind
        .list_versions(t, &member, "acme", "detector", "stage:disabled")
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(disabled[0].name, "v1");
    assert_eq!(
        kind.version_count(t, &member, "acme", "detector")
            .await
            .unwrap(),
        3,
        "from-run, v1 and v2"
    );

    // An entry with versions goes only with `force`.
    expect_reason(
        kind.delete(t, &owner, "acme", "detector", false).await,
        Code::FailedPrecondition,
        "HAS_VERSIONS",
    );
    kind.delete(t, &owner, "acme", "detector", true)
        .await
        .unwrap();
    expect_code(
        kind.get_version(t, &owner, "acme", "detector", "v1").await,
        Code::NotFound,
    );
}

/// Concurrent promotions of versions of one entry of `kind` never pass the
/// production bound, which is a setting of the kind.
async fn concurrent_transitions_keep_the_production_rule(t: &TestStack, kind: Kind) {
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    kind.create(t, &owner, "acme", "ranker").await.unwrap();
    let names: Vec<String> = (0..12).map(|i| format!("v{i}")).collect();
    for name in &names {
        kind.create_version(t, &owner, "acme", "ranker", name, "")
            .await
            .unwrap();
    }
    let promote_all = || {
        futures::future::join_all(
            names
                .iter()
                .map(|name| kind.transition(t, &owner, "acme", "ranker", name, "production", None)),
        )
    };
    let results = promote_all().await;
    let promoted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(promoted, 1, "exactly one wins the single production slot");
    for failed in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(failed.code(), Code::FailedPrecondition, "{failed:?}");
    }

    // The rule is a setting: three production versions at once.
    let settings = t
        .models_as(&owner)
        .get_registry_settings(GetRegistrySettingsRequest {
            organization: "acme".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(kind.max_production(&settings), 1);
    let update = |limit: i32| {
        let (settings, mask) = kind.with_max_production(limit, settings.etag.clone());
        let mut registry = t.models_as(&owner);
        async move {
            registry
                .update_registry_settings(UpdateRegistrySettingsRequest {
                    organization: "acme".into(),
                    settings: Some(settings),
                    update_mask: Some(mask),
                })
                .await
        }
    };
    update(3).await.unwrap();
    expect_reason(update(5).await, Code::Aborted, "STALE_ETAG");
    let results = promote_all().await;
    let (_, in_production) = kind
        .list_versions(t, &owner, "acme", "ranker", "stage:production")
        .await
        .unwrap();
    assert_eq!(in_production, 3, "{results:?}");
}

async fn a_model_from_first_version_to_production_and_back(t: &TestStack) {
    an_entry_from_first_version_to_production_and_back(t, Kind::Model).await;
}

async fn a_component_from_first_version_to_production_and_back(t: &TestStack) {
    an_entry_from_first_version_to_production_and_back(t, Kind::Component).await;
}

async fn concurrent_model_transitions_keep_the_production_rule(t: &TestStack) {
    concurrent_transitions_keep_the_production_rule(t, Kind::Model).await;
}

async fn concurrent_component_transitions_keep_the_production_rule(t: &TestStack) {
    concurrent_transitions_keep_the_production_rule(t, Kind::Component).await;
}

const GOOD_SPEC: &str = "\
version: 1.1
kind: component
name: train
inputs:
  - name: epochs
    type: int
run:
  kind: job
  container:
    image: python:3.12
";

#[tokio::test]
async fn component_specifications_are_validated_on_write() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let mut hub = t.components_as(&owner);
    hub.create_component(CreateComponentRequest {
        request_id: String::new(),
        organization: "acme".into(),
        component: Some(Component {
            name: "trainer".into(),
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    let create = |name: &str, content: &str| CreateComponentVersionRequest {
        request_id: String::new(),
        organization: "acme".into(),
        component: "trainer".into(),
        version: Some(ComponentVersion {
            name: name.into(),
            content: content.into(),
            ..Default::default()
        }),
    };
    let v1 = hub
        .create_component_version(create("v1", GOOD_SPEC))
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap();
    assert_eq!(v1.content, GOOD_SPEC);
    hub.create_component_version(create(
        "v2",
        r#"{"kind": "component", "run": {"kind": "service"}}"#,
    ))
    .await
    .unwrap();
    for (content, expected) in [
        (
            "kind: component\nrun:\n  kind: 7\n",
            "line 3: `run.kind` must be a string",
        ),
        ("kind: component\n", "`run` is required"),
        (
            "kind: component\nrun: {kind: job\n",
            "line 2, column 6: invalid YAML: unclosed bracket",
        ),
        (
            "{\"kind\": \"component\",\n \"run\": [] }",
            "line 2: `run` must be a mapping",
        ),
        ("", "needs its specification"),
    ] {
        let status = expect_code(
            hub.create_component_version(create("bad", content)).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["version.content"], "{content:?}");
        assert!(
            status.message().contains(expected),
            "{content:?}: {}",
            status.message()
        );
    }
    // An update is validated the same way.
    let status = expect_code(
        hub.update_component_version(UpdateComponentVersionRequest {
            organization: "acme".into(),
            component: "trainer".into(),
            version: Some(ComponentVersion {
                name: "v1".into(),
                content: "kind: operation\nrun: {kind: job}\n".into(),
                ..Default::default()
            }),
            update_mask: mask(&["content"]),
            target_component: String::new(),
        })
        .await,
        Code::InvalidArgument,
    );
    assert!(
        status
            .message()
            .contains("line 1: `kind` must be `component`")
    );
    // Component stages follow the same rules.
    hub.transition_component_version_stage(TransitionComponentVersionStageRequest {
        organization: "acme".into(),
        component: "trainer".into(),
        version: "v1".into(),
        stage: "production".into(),
        condition: None,
    })
    .await
    .unwrap();
    expect_reason(
        hub.transition_component_version_stage(TransitionComponentVersionStageRequest {
            organization: "acme".into(),
            component: "trainer".into(),
            version: "v2".into(),
            stage: "production".into(),
            condition: None,
        })
        .await,
        Code::FailedPrecondition,
        "PRODUCTION_LIMIT",
    );
}

#[tokio::test]
async fn a_version_moves_to_another_model_or_project() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    model(&t, &owner, "acme", "draft", Visibility::Private).await;
    model(&t, &owner, "acme", "final", Visibility::Private).await;
    version(&t, &owner, "acme", "draft", "v1").await;
    version(&t, &owner, "acme", "draft", "v2").await;
    version(&t, &owner, "acme", "final", "v2").await;
    transition(&t, &owner, "acme", "final", "v2", "production")
        .await
        .unwrap();
    transition(&t, &owner, "acme", "draft", "v1", "production")
        .await
        .unwrap();
    let mut models = t.models_as(&owner);
    let transfer = |name: &str, target: &str| UpdateModelVersionRequest {
        organization: "acme".into(),
        model: "draft".into(),
        version: Some(ModelVersion {
            name: name.into(),
            ..Default::default()
        }),
        update_mask: mask(&["model"]),
        target_model: target.into(),
    };
    // The name is taken there; the target's production slot is taken.
    expect_code(
        models.update_model_version(transfer("v2", "final")).await,
        Code::AlreadyExists,
    );
    expect_reason(
        models.update_model_version(transfer("v1", "final")).await,
        Code::FailedPrecondition,
        "PRODUCTION_LIMIT",
    );
    transition(&t, &owner, "acme", "draft", "v1", "staging")
        .await
        .unwrap();
    models
        .update_model_version(transfer("v1", "final"))
        .await
        .unwrap();
    let moved = models
        .get_model_version(GetModelVersionRequest {
            organization: "acme".into(),
            model: "final".into(),
            version: "v1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap();
    assert_eq!(history(&t, &owner, "acme", "final", "v1").await.len(), 3);
    // To another project, with an etag.
    let updated = models
        .update_model_version(UpdateModelVersionRequest {
            organization: "acme".into(),
            model: "final".into(),
            version: Some(ModelVersion {
                name: "v1".into(),
                project: "robotics".into(),
                etag: moved.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["project"]),
            target_model: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap();
    assert_eq!(updated.project, "robotics");
    expect_reason(
        models
            .update_model_version(UpdateModelVersionRequest {
                organization: "acme".into(),
                model: "final".into(),
                version: Some(ModelVersion {
                    name: "v1".into(),
                    description: "lost update".into(),
                    etag: moved.etag,
                    ..Default::default()
                }),
                update_mask: mask(&["description"]),
                target_model: String::new(),
            })
            .await,
        Code::Aborted,
        "STALE_ETAG",
    );
}

/// Issue 15, item 10: a team's grant on a model does not reach a new model
/// created with a deleted one's name — at once, in the registry's checks —
/// and the grant itself is removed once the deletion reaches the activity
/// store; granting again reaches the new model.
#[tokio::test]
async fn grants_die_with_the_model_they_name() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    model(&t, &owner, "acme", "bert", Visibility::Private).await;
    let reader = t.user("reader").await;
    t.add_member("acme", "reader", "viewer").await;
    let grant = || TeamGrant {
        kind: EntityKind::ModelRegistry as i32,
        name: "bert".into(),
        role: "admin".into(),
    };
    t.create_team(&owner, "acme", "ml", vec![grant()]).await;
    t.teams_as(&owner)
        .add_team_member(orgplane_proto::organizations::AddTeamMemberRequest {
            organization: "acme".into(),
            team: "ml".into(),
            member: Some(orgplane_proto::organizations::TeamMember {
                user: "reader".into(),
                // The grant applies up to the member's own team role.
                role: "admin".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let describe = || {
        let mut models = t.models_as(&reader);
        async move {
            models
                .update_model(UpdateModelRequest {
                    organization: "acme".into(),
                    model: Some(Model {
                        name: "bert".into(),
                        description: "changed".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["description"]),
                })
                .await
                .err()
                .map_or(Code::Ok, |s| s.code())
        }
    };
    eventually(Duration::from_secs(5), "the team grant applies", || async {
        describe().await == Code::Ok
    })
    .await;

    t.models_as(&owner)
        .delete_model(DeleteModelRequest {
            organization: "acme".into(),
            model: "bert".into(),
            force: true,
        })
        .await
        .unwrap();
    model(&t, &owner, "acme", "bert", Visibility::Private).await;
    assert_eq!(
        describe().await,
        Code::PermissionDenied,
        "the new bert is not the old one's"
    );
    let grants = || {
        let mut teams = t.teams_as(&owner);
        async move {
            teams
                .get_team(orgplane_proto::organizations::GetTeamRequest {
                    organization: "acme".into(),
                    team: "ml".into(),
                })
                .await
                .unwrap()
                .into_inner()
                .team
                .unwrap()
        }
    };
    eventually(
        Duration::from_secs(5),
        "the dead grant is removed",
        || async { grants().await.grants.is_empty() },
    )
    .await;
    assert_eq!(describe().await, Code::PermissionDenied);

    // Granted again, it reaches the new model.
    let team = grants().await;
    t.teams_as(&owner)
        .update_team(orgplane_proto::organizations::UpdateTeamRequest {
            organization: "acme".into(),
            team: Some(Team {
                name: "ml".into(),
                grants: vec![grant()],
                etag: team.etag,
                ..Default::default()
            }),
            update_mask: mask(&["grants"]),
        })
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "the new grant applies", || async {
        describe().await == Code::Ok
    })
    .await;
}

#[tokio::test]
async fn team_grants_reach_beyond_roles_and_visibility_widens_nothing() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    model(&t, &owner, "acme", "granted", Visibility::Private).await;
    model(&t, &owner, "acme", "secret", Visibility::Private).await;
    model(&t, &owner, "acme", "open", Visibility::Public).await;
    let viewer = t.user("reader").await;
    t.add_member("acme", "reader", "viewer").await;
    let billing = t.user("accountant").await;
    t.add_member("acme", "accountant", "billing").await;
    t.create_team(
        &owner,
        "acme",
        "ml",
        vec![grant(EntityKind::ModelRegistry, "granted", "admin")],
    )
    .await;
    t.teams_as(&owner)
        .add_team_member(orgplane_proto::organizations::AddTeamMemberRequest {
            organization: "acme".into(),
            team: "ml".into(),
            member: Some(orgplane_proto::organizations::TeamMember {
                user: "reader".into(),
                // The grant applies up to the member's own team role.
                role: "admin".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let describe = |token: String, name: &'static str| {
        let mut models = t.models_as(&token);
        async move {
            models
                .update_model(UpdateModelRequest {
                    organization: "acme".into(),
                    model: Some(Model {
                        name: name.into(),
                        description: "changed".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["description"]),
                })
                .await
                .err()
                .map_or(Code::Ok, |s| s.code())
        }
    };
    // The team's admin grant reaches its model only (within 5 s of joining).
    eventually(Duration::from_secs(5), "the team grant applies", || {
        let viewer = viewer.clone();
        async move { describe(viewer, "granted").await == Code::Ok }
    })
    .await;
    assert_eq!(
        describe(viewer.clone(), "secret").await,
        Code::PermissionDenied
    );
    // Billing reads no model, public or not (Polyaxon: billing sees no
    // projects or registry).
    let get = |token: String, name: &'static str| {
        let mut models = t.models_as(&token);
        async move {
            models
                .get_model(GetModelRequest {
                    organization: "acme".into(),
                    model: name.into(),
                })
                .await
                .err()
                .map_or(Code::Ok, |s| s.code())
        }
    };
    assert_eq!(get(billing.clone(), "open").await, Code::PermissionDenied);
    assert_eq!(get(billing.clone(), "secret").await, Code::PermissionDenied);
    expect_code(
        t.models_as(&billing)
            .list_models(ListModelsRequest {
                organization: "acme".into(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
    );
    assert_eq!(
        t.models_as(&viewer)
            .list_models(ListModelsRequest {
                organization: "acme".into(),
                filter: "tag:vision".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .total_size,
        3
    );
}

/// Every registry RPC with the permission it needs, called on organization
/// `org` where a private model `m` with version `v1` and a component `c`
/// exist. A call that passes authorization fails afterwards in a
/// recognizable way where it would change something.
const RPCS: &[(&str, Permission, Code)] = &[
    (
        "CreateModel",
        Permission::RegistryManage,
        Code::InvalidArgument,
    ),
    ("GetModel", Permission::RegistryRead, Code::Ok),
    ("ListModels", Permission::RegistryRead, Code::Ok),
    (
        "UpdateModel",
        Permission::RegistryManage,
        Code::InvalidArgument,
    ),
    (
        "DeleteModel",
        Permission::RegistryManage,
        Code::FailedPrecondition,
    ),
    (
        "CreateModelVersion",
        Permission::RegistryWrite,
        Code::InvalidArgument,
    ),
    ("GetModelVersion", Permission::RegistryRead, Code::Ok),
    ("ListModelVersions", Permission::RegistryRead, Code::Ok),
    (
        "UpdateModelVersion",
        Permission::RegistryWrite,
        Code::InvalidArgument,
    ),
    (
        "DeleteModelVersion",
        Permission::RegistryManage,
        Code::NotFound,
    ),
    (
        "TransitionModelVersionStage",
        Permission::RegistryWrite,
        Code::InvalidArgument,
    ),
    ("ListModelVersionStages", Permission::RegistryRead, Code::Ok),
    ("GetRegistrySettings", Permission::RegistryRead, Code::Ok),
    (
        "UpdateRegistrySettings",
        Permission::RegistryManage,
        Code::InvalidArgument,
    ),
    (
        "CreateComponent",
        Permission::RegistryManage,
        Code::InvalidArgument,
    ),
    ("GetComponent", Permission::RegistryRead, Code::Ok),
    ("ListComponents", Permission::RegistryRead, Code::Ok),
    (
        "UpdateComponent",
        Permission::RegistryManage,
        Code::InvalidArgument,
    ),
    (
        "DeleteComponent",
        Permission::RegistryManage,
        Code::FailedPrecondition,
    ),
    (
        "CreateComponentVersion",
        Permission::RegistryWrite,
        Code::InvalidArgument,
    ),
    ("GetComponentVersion", Permission::RegistryRead, Code::Ok),
    ("ListComponentVersions", Permission::RegistryRead, Code::Ok),
    (
        "UpdateComponentVersion",
        Permission::RegistryWrite,
        Code::InvalidArgument,
    ),
    (
        "DeleteComponentVersion",
        Permission::RegistryManage,
        Code::NotFound,
    ),
    (
        "TransitionComponentVersionStage",
        Permission::RegistryWrite,
        Code::InvalidArgument,
    ),
    (
        "ListComponentVersionStages",
        Permission::RegistryRead,
        Code::Ok,
    ),
];

async fn call(t: &TestStack, token: &str, org: &str, rpc: &str) -> Code {
    let o = || org.to_owned();
    let mut models = t.models_as(token);
    let mut hub = t.components_as(token);
    let bad_condition = || {
        Some(Condition {
            reason: "not camel".into(),
            ..Default::default()
        })
    };
    let result = match rpc {
        "CreateModel" => models
            .create_model(CreateModelRequest {
                request_id: String::new(),
                organization: o(),
                model: Some(Model {
                    name: "Not A Slug".into(),
                    ..Default::default()
                }),
            })
            .await
            .map(|_| ()),
        "GetModel" => models
            .get_model(GetModelRequest {
                organization: o(),
                model: "m".into(),
            })
            .await
            .map(|_| ()),
        "ListModels" => models
            .list_models(ListModelsRequest {
                organization: o(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "UpdateModel" => models
            .update_model(UpdateModelRequest {
                organization: o(),
                model: Some(Model {
                    name: "m".into(),
                    tags: vec!["Not A Slug".into()],
                    ..Default::default()
                }),
                update_mask: mask(&["tags"]),
            })
            .await
            .map(|_| ()),
        "DeleteModel" => models
            .delete_model(DeleteModelRequest {
                organization: o(),
                model: "m".into(),
                force: false,
            })
            .await
            .map(|_| ()),
        "CreateModelVersion" => models
            .create_model_version(CreateModelVersionRequest {
                request_id: String::new(),
                organization: o(),
                model: "m".into(),
                version: Some(ModelVersion {
                    name: "Not A Slug".into(),
                    ..Default::default()
                }),
            })
            .await
            .map(|_| ()),
        "GetModelVersion" => models
            .get_model_version(GetModelVersionRequest {
                organization: o(),
                model: "m".into(),
                version: "v1".into(),
            })
            .await
            .map(|_| ()),
        "ListModelVersions" => models
            .list_model_versions(ListModelVersionsRequest {
                organization: o(),
                model: "m".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "UpdateModelVersion" => models
            .update_model_version(UpdateModelVersionRequest {
                organization: o(),
                model: "m".into(),
                version: Some(ModelVersion {
                    name: "v1".into(),
                    project: "Not A Slug".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["project"]),
                target_model: String::new(),
            })
            .await
            .map(|_| ()),
        "DeleteModelVersion" => models
            .delete_model_version(DeleteModelVersionRequest {
                organization: o(),
                model: "m".into(),
                version: "never-made".into(),
            })
            .await
            .map(|_| ()),
        "TransitionModelVersionStage" => models
            .transition_model_version_stage(TransitionModelVersionStageRequest {
                organization: o(),
                model: "m".into(),
                version: "v1".into(),
                stage: "production".into(),
                condition: bad_condition(),
            })
            .await
            .map(|_| ()),
        "ListModelVersionStages" => models
            .list_model_version_stages(ListModelVersionStagesRequest {
                organization: o(),
                model: "m".into(),
                version: "v1".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "GetRegistrySettings" => models
            .get_registry_settings(GetRegistrySettingsRequest { organization: o() })
            .await
            .map(|_| ()),
        "UpdateRegistrySettings" => models
            .update_registry_settings(UpdateRegistrySettingsRequest {
                organization: o(),
                settings: Some(RegistrySettings {
                    max_production_model_versions: -1,
                    ..Default::default()
                }),
                update_mask: mask(&["max_production_model_versions"]),
            })
            .await
            .map(|_| ()),
        "CreateComponent" => hub
            .create_component(CreateComponentRequest {
                request_id: String::new(),
                organization: o(),
                component: Some(Component {
                    name: "Not A Slug".into(),
                    ..Default::default()
                }),
            })
            .await
            .map(|_| ()),
        "GetComponent" => hub
            .get_component(GetComponentRequest {
                organization: o(),
                component: "c".into(),
            })
            .await
            .map(|_| ()),
        "ListComponents" => hub
            .list_components(ListComponentsRequest {
                organization: o(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "UpdateComponent" => hub
            .update_component(UpdateComponentRequest {
                organization: o(),
                component: Some(Component {
                    name: "c".into(),
                    visibility: Visibility::Public as i32,
                    description: "x".repeat(3000),
                    ..Default::default()
                }),
                update_mask: mask(&["description"]),
            })
            .await
            .map(|_| ()),
        "DeleteComponent" => hub
            .delete_component(DeleteComponentRequest {
                organization: o(),
                component: "c".into(),
                force: false,
            })
            .await
            .map(|_| ()),
        "CreateComponentVersion" => hub
            .create_component_version(CreateComponentVersionRequest {
                request_id: String::new(),
                organization: o(),
                component: "c".into(),
                version: Some(ComponentVersion {
                    name: "v9".into(),
                    content: "kind: nothing".into(),
                    ..Default::default()
                }),
            })
            .await
            .map(|_| ()),
        "GetComponentVersion" => hub
            .get_component_version(GetComponentVersionRequest {
                organization: o(),
                component: "c".into(),
                version: "v1".into(),
            })
            .await
            .map(|_| ()),
        "ListComponentVersions" => hub
            .list_component_versions(ListComponentVersionsRequest {
                organization: o(),
                component: "c".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "UpdateComponentVersion" => hub
            .update_component_version(UpdateComponentVersionRequest {
                organization: o(),
                component: "c".into(),
                version: Some(ComponentVersion {
                    name: "v1".into(),
                    content: "kind: nothing".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["content"]),
                target_component: String::new(),
            })
            .await
            .map(|_| ()),
        "DeleteComponentVersion" => hub
            .delete_component_version(DeleteComponentVersionRequest {
                organization: o(),
                component: "c".into(),
                version: "never-made".into(),
            })
            .await
            .map(|_| ()),
        "TransitionComponentVersionStage" => hub
            .transition_component_version_stage(TransitionComponentVersionStageRequest {
                organization: o(),
                component: "c".into(),
                version: "v1".into(),
                stage: "production".into(),
                condition: bad_condition(),
            })
            .await
            .map(|_| ()),
        "ListComponentVersionStages" => hub
            .list_component_version_stages(ListComponentVersionStagesRequest {
                organization: o(),
                component: "c".into(),
                version: "v1".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        other => panic!("no call for {other}"),
    };
    result.err().map_or(Code::Ok, |s| s.code())
}

/// `org` with a private model `m` (version `v1`) and component `c`
/// (version `v1`), owned by `token`.
async fn furnish(t: &TestStack, token: &str, org: &str) {
    t.create_organization(token, org).await;
    model(t, token, org, "m", Visibility::Private).await;
    version(t, token, org, "m", "v1").await;
    t.components_as(token)
        .create_component(CreateComponentRequest {
            request_id: String::new(),
            organization: org.into(),
            component: Some(Component {
                name: "c".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    t.components_as(token)
        .create_component_version(CreateComponentVersionRequest {
            request_id: String::new(),
            organization: org.into(),
            component: "c".into(),
            version: Some(ComponentVersion {
                name: "v1".into(),
                content: GOOD_SPEC.into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn role_matrix_from_the_permission_table() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    furnish(&t, &owner, "matrix").await;
    let mut callers = t.role_callers("matrix", owner).await;
    let stranger = t.user("stranger").await;
    callers.push((None, stranger));
    for (rpc, permission, authorized) in RPCS {
        for (role, token) in &callers {
            let expected = expected_code(*role, *permission, *authorized);
            assert_eq!(
                call(&t, token, "matrix", rpc).await,
                expected,
                "{rpc} as {role:?}"
            );
        }
    }
}

#[tokio::test]
async fn another_organization_is_not_found_on_every_rpc() {
    let t = TestStack::start().await;
    let a = t.user("alpha-owner").await;
    let b = t.user("beta-owner").await;
    furnish(&t, &a, "alpha").await;
    furnish(&t, &b, "beta").await;
    for (rpc, _, _) in RPCS {
        assert_eq!(call(&t, &b, "alpha", rpc).await, Code::NotFound, "{rpc}");
        assert_eq!(
            call(&t, &b, "no-such-org", rpc).await,
            Code::NotFound,
            "{rpc}: a missing and a foreign organization look the same"
        );
    }
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    furnish(&t, &owner, "acme").await;
    let mut models = t.models_as(&owner);
    for (request, field) in [
        (
            CreateModelRequest {
                request_id: String::new(),
                organization: "acme".into(),
                model: None,
            },
            "model",
        ),
        (
            CreateModelRequest {
                request_id: String::new(),
                organization: "Bad Org".into(),
                model: Some(Model {
                    name: "ok".into(),
                    ..Default::default()
                }),
            },
            "organization",
        ),
        (
            CreateModelRequest {
                request_id: String::new(),
                organization: "acme".into(),
                model: Some(Model {
                    name: "ok".into(),
                    readme: "x".repeat(200_000),
                    ..Default::default()
                }),
            },
            "model.readme",
        ),
    ] {
        let status = expect_code(models.create_model(request).await, Code::InvalidArgument);
        assert_eq!(violated_fields(&status), [field]);
    }
    expect_code(
        models
            .create_model(CreateModelRequest {
                request_id: String::new(),
                organization: "acme".into(),
                model: Some(Model {
                    name: "m".into(),
                    ..Default::default()
                }),
            })
            .await,
        Code::AlreadyExists,
    );
    let status = expect_code(
        models
            .list_model_versions(ListModelVersionsRequest {
                organization: "acme".into(),
                model: "m".into(),
                filter: "stage:retired".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["filter"]);
    let status = expect_code(
        models
            .transition_model_version_stage(TransitionModelVersionStageRequest {
                organization: "acme".into(),
                model: "m".into(),
                version: "v1".into(),
                stage: "archived".into(),
                condition: None,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["stage"]);
    let status = expect_code(
        models
            .update_model_version(UpdateModelVersionRequest {
                organization: "acme".into(),
                model: "m".into(),
                version: Some(ModelVersion {
                    name: "v1".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["stage"]),
                target_model: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["update_mask"]);
    let status = expect_code(
        models
            .get_model_version(GetModelVersionRequest {
                organization: "acme".into(),
                model: "m".into(),
                version: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["version"]);
    expect_code(
        models
            .list_models(ListModelsRequest {
                organization: "acme".into(),
                page_token: "garbage".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
}

#[tokio::test]
async fn a_deleted_organization_is_gone_here_at_once_and_purged_later() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    furnish(&t, &owner, "acme").await;
    let etag = t
        .orgs_as(&owner)
        .get_organization(GetOrganizationRequest {
            organization: "acme".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap()
        .etag;
    t.orgs_as(&owner)
        .delete_organization(DeleteOrganizationRequest {
            organization: "acme".into(),
            confirm: "acme".into(),
            etag,
        })
        .await
        .unwrap();
    // The permission cache may answer for up to 3 s.
    eventually(
        Duration::from_secs(5),
        "the registry stops seeing it",
        || async { call(&t, &owner, "acme", "GetModel").await == Code::NotFound },
    )
    .await;
    assert_eq!(
        t.stack
            .registry
            .purge_deleted_organizations()
            .await
            .unwrap(),
        2,
        "the model and the component"
    );
    assert_eq!(
        t.stack
            .registry
            .purge_deleted_organizations()
            .await
            .unwrap(),
        0
    );
}

orgplane_e2e::on_both_databases!(
    a_model_from_first_version_to_production_and_back,
    a_component_from_first_version_to_production_and_back,
    concurrent_model_transitions_keep_the_production_rule,
    concurrent_component_transitions_keep_the_production_rule,
);
