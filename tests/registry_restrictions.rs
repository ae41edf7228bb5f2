//! Restrictions of the model registry, the component hub and single
//! models and components (issue 21): who reaches them, through every role,
//! team membership and listing by name; what lists, statistics and the
//! activity feed leave out; who may change them.

use std::time::Duration;

use orgplane_e2e::{
    Admission, RestrictionCaller, TestStack, eventually, expect_code, grant, mask, restricted_code,
    violated_fields,
};
use orgplane_platform::authz::{Permission, Role, allows};
use orgplane_proto::{
    common::Restriction,
    organizations::{EntityKind, ListActivitiesRequest},
    registry::*,
};
use tonic::Code;

fn restricted(users: &[String], teams: &[&str]) -> Option<Restriction> {
    Some(Restriction {
        restricted: true,
        users: users.to_vec(),
        teams: teams.iter().map(|t| (*t).to_owned()).collect(),
    })
}

/// What `role` admitted by `admission` gets listing the restricted model
/// registry: the organization role reads the registry, then the
/// restriction admits.
fn listing(role: Role, admission: Admission) -> Code {
    if role == Role::Outsider {
        Code::NotFound
    } else if !allows(role, Permission::RegistryRead) {
        Code::PermissionDenied
    } else if role < Role::Manager && admission == Admission::None {
        Code::NotFound
    } else {
        Code::Ok
    }
}

async fn create_model(t: &TestStack, token: &str, name: &str) -> Result<(), tonic::Status> {
    t.models_as(token)
        .create_model(CreateModelRequest {
            request_id: String::new(),
            organization: "acme".into(),
            model: Some(Model {
                name: name.into(),
                ..Default::default()
            }),
        })
        .await
        .map(drop)
}

async fn get_model(t: &TestStack, token: &str, name: &str) -> Code {
    match t
        .models_as(token)
        .get_model(GetModelRequest {
            organization: "acme".into(),
            model: name.into(),
        })
        .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// Changes a model's description (`registry.manage`).
async fn describe_model(t: &TestStack, token: &str, name: &str) -> Code {
    let mut models = t.models_as(token);
    let etag = match models
        .get_model(GetModelRequest {
            organization: "acme".into(),
            model: name.into(),
        })
        .await
    {
        Ok(m) => m.into_inner().model.unwrap().etag,
        Err(status) => return status.code(),
    };
    match models
        .update_model(UpdateModelRequest {
            organization: "acme".into(),
            model: Some(Model {
                name: name.into(),
                description: "changed".into(),
                etag,
                ..Default::default()
            }),
            update_mask: mask(&["description"]),
        })
        .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

async fn list_models(t: &TestStack, token: &str) -> Result<Vec<String>, Code> {
    t.models_as(token)
        .list_models(ListModelsRequest {
            organization: "acme".into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().models.into_iter().map(|m| m.name).collect())
        .map_err(|s| s.code())
}

async fn list_components(t: &TestStack, token: &str) -> Vec<String> {
    t.components_as(token)
        .list_components(ListComponentsRequest {
            organization: "acme".into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .components
        .into_iter()
        .map(|c| c.name)
        .collect()
}

/// Replaces a registry restriction (`path`: `model_registry_restriction` or
/// `component_hub_restriction`) with the etag read just before.
async fn restrict_registry(
    t: &TestStack,
    token: &str,
    path: &str,
    restriction: Option<Restriction>,
) -> Result<RegistrySettings, tonic::Status> {
    let mut models = t.models_as(token);
    let current = models
        .get_registry_settings(GetRegistrySettingsRequest {
            organization: "acme".into(),
        })
        .await?
        .into_inner()
        .settings
        .unwrap();
    let mut settings = RegistrySettings {
        etag: current.etag,
        ..Default::default()
    };
    match path {
        "model_registry_restriction" => settings.model_registry_restriction = restriction,
        _ => settings.component_hub_restriction = restriction,
    }
    models
        .update_registry_settings(UpdateRegistrySettingsRequest {
            organization: "acme".into(),
            settings: Some(settings),
            update_mask: mask(&[path]),
        })
        .await
        .map(|r| r.into_inner().settings.unwrap())
}

/// Replaces a component's restriction.
async fn restrict_component(
    t: &TestStack,
    token: &str,
    name: &str,
    restriction: Option<Restriction>,
) -> Result<Component, tonic::Status> {
    let mut components = t.components_as(token);
    let etag = components
        .get_component(GetComponentRequest {
            organization: "acme".into(),
            component: name.into(),
        })
        .await?
        .into_inner()
        .component
        .unwrap()
        .etag;
    components
        .update_component(UpdateComponentRequest {
            organization: "acme".into(),
            component: Some(Component {
                name: name.into(),
                restriction,
                etag,
                ..Default::default()
            }),
            update_mask: mask(&["restriction"]),
        })
        .await
        .map(|r| r.into_inner().component.unwrap())
}

async fn count(t: &TestStack, token: &str, name: &str) -> i64 {
    let counts = t.organization_counts(token, "acme").await;
    counts.get(name).copied().unwrap_or(0)
}

/// The subjects of model activities in the caller's feed.
async fn model_activities(t: &TestStack, token: &str) -> usize {
    t.activities_as(token)
        .list_activities(ListActivitiesRequest {
            organization: "acme".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .activities
        .into_iter()
        .filter(|a| a.subject_kind.starts_with("model"))
        .count()
}

/// The model registry restricted to a team and listed users × every role ×
/// not admitted, admitted through the team, admitted by name: reading,
/// configuring and listing its models; then a component restricted on its
/// own inside an open hub; statistics, the feed, and who may restrict.
async fn registry_restrictions_over_every_role(t: &TestStack) {
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    for name in ["bert", "gpt"] {
        create_model(t, &owner, name).await.unwrap();
    }
    t.models_as(&owner)
        .create_model_version(CreateModelVersionRequest {
            request_id: String::new(),
            organization: "acme".into(),
            model: "bert".into(),
            version: Some(ModelVersion {
                name: "v1".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    for name in ["tok", "open"] {
        t.components_as(&owner)
            .create_component(CreateComponentRequest {
                request_id: String::new(),
                organization: "acme".into(),
                component: Some(Component {
                    name: name.into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    t.create_team(
        &owner,
        "acme",
        "ml",
        vec![grant(EntityKind::ModelRegistry, "*", "admin")],
    )
    .await;
    let (callers, listed_users) = t.restriction_callers(&owner, "acme", "ml").await;
    let token_of = |name: &str| {
        callers
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.token.clone())
            .unwrap()
    };
    let (admin, admin_in_team, viewer_in_team) = (
        token_of("admin-none"),
        token_of("admin-team"),
        token_of("viewer-team"),
    );

    // Who may restrict: not a viewer (even admitted), and names are checked.
    let to_ml = restricted(&listed_users, &["ml"]);
    let denied = restrict_registry(
        t,
        &viewer_in_team,
        "model_registry_restriction",
        to_ml.clone(),
    )
    .await;
    expect_code(denied, Code::PermissionDenied);
    let unknown = restrict_registry(
        t,
        &owner,
        "model_registry_restriction",
        restricted(&["nobody".into()], &["ghosts"]),
    )
    .await;
    let unknown = expect_code(unknown, Code::InvalidArgument);
    assert_eq!(
        violated_fields(&unknown),
        [
            "settings.model_registry_restriction.teams",
            "settings.model_registry_restriction.users"
        ]
    );
    let settings = restrict_registry(t, &owner, "model_registry_restriction", to_ml.clone())
        .await
        .unwrap();
    assert_eq!(settings.model_registry_restriction, to_ml);
    assert!(!settings.component_hub_restriction.unwrap().restricted);

    for RestrictionCaller {
        role,
        admission,
        name,
        token,
    } in &callers
    {
        let read = get_model(t, token, "bert").await;
        assert_eq!(
            read,
            restricted_code(*role, *admission, Permission::RegistryRead),
            "read as {name}"
        );
        assert_eq!(
            describe_model(t, token, "gpt").await,
            restricted_code(*role, *admission, Permission::RegistryManage),
            "configure as {name}"
        );
        let listed = list_models(t, token).await;
        assert_eq!(
            listed.as_ref().err().copied().unwrap_or(Code::Ok),
            listing(*role, *admission),
            "list as {name}"
        );
        if let Ok(models) = listed {
            assert_eq!(models, ["bert", "gpt"], "listed to {name}");
        }
    }

    // An admin outside the team cannot create in the registry, nor lift its
    // restriction; an admin admitted through the team changes it (with
    // their organization role: the team's role bounds only its grants).
    assert_eq!(
        create_model(t, &admin, "new").await.unwrap_err().code(),
        Code::NotFound
    );
    let lifted = restrict_registry(t, &admin, "model_registry_restriction", None).await;
    expect_code(lifted, Code::NotFound);
    restrict_registry(
        t,
        &admin_in_team,
        "model_registry_restriction",
        to_ml.clone(),
    )
    .await
    .unwrap();

    // Statistics and the feed leave the registry out for the admin outside.
    assert_eq!(count(t, &owner, "models").await, 2);
    assert_eq!(count(t, &owner, "model_versions").await, 1);
    assert_eq!(count(t, &admin, "models").await, 0);
    assert_eq!(count(t, &admin, "model_versions").await, 0);
    eventually(
        Duration::from_secs(10),
        "model activities reach the feed",
        || {
            let owner = owner.clone();
            async move { model_activities(t, &owner).await >= 3 }
        },
    )
    .await;
    assert_eq!(model_activities(t, &admin).await, 0);
    assert!(model_activities(t, &token_of("admin-listed")).await >= 3);

    // A component restricted on its own, in an open hub: the admin outside
    // does not reach or list it, the listed viewer reads it, a manager too.
    restrict_component(t, &owner, "tok", restricted(&["viewer-listed".into()], &[]))
        .await
        .unwrap();
    let get_component = |token: String| async move {
        match t
            .components_as(&token)
            .get_component(GetComponentRequest {
                organization: "acme".into(),
                component: "tok".into(),
            })
            .await
        {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        }
    };
    assert_eq!(get_component(admin.clone()).await, Code::NotFound);
    assert_eq!(list_components(t, &admin).await, ["open"]);
    assert_eq!(get_component(token_of("viewer-listed")).await, Code::Ok);
    assert_eq!(
        list_components(t, &token_of("viewer-listed")).await,
        ["open", "tok"]
    );
    assert_eq!(get_component(token_of("manager-none")).await, Code::Ok);
    assert_eq!(count(t, &admin, "components").await, 1);
    // The listed viewer may not change it; the admin outside does not see it.
    let change = restrict_component(t, &token_of("viewer-listed"), "tok", None).await;
    expect_code(change, Code::PermissionDenied);
    let change = restrict_component(t, &admin, "tok", None).await;
    expect_code(change, Code::NotFound);

    // Lifted, the organization-wide rules are back.
    restrict_registry(t, &owner, "model_registry_restriction", None)
        .await
        .unwrap();
    restrict_component(t, &owner, "tok", None).await.unwrap();
    assert_eq!(get_model(t, &admin, "bert").await, Code::Ok);
    assert_eq!(describe_model(t, &admin, "bert").await, Code::Ok);
    assert_eq!(get_component(admin.clone()).await, Code::Ok);
    assert_eq!(count(t, &admin, "models").await, 2);
    assert!(model_activities(t, &admin).await >= 3);
}

orgplane_e2e::on_both_databases!(registry_restrictions_over_every_role,);
