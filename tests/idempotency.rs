//! Idempotent creations (AIP-155) end to end through the gateway: every
//! `Create*` method and `SubmitRun` answers a retry with the same
//! `request_id` with the first response and creates nothing more; the same
//! id with another request, or an id that is not a UUID, is refused; a
//! failed call may be retried under its id; the contract carries
//! `request_id` on exactly those methods.

use orgplane_e2e::{TestStack, expect_code, violated_fields};
use orgplane_proto::{
    agents as ag_pb, identity as id_pb, organizations as org_pb, prost::Message, registry as reg_pb,
};
use tonic::Code;

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Calls `$client.$method` twice with one fresh `request_id`: both answers
/// must be the same (the second is the first's, replayed). The answer.
macro_rules! twice {
    ($client:expr, $method:ident, $request:expr) => {{
        let mut request = $request;
        request.request_id = new_id();
        let first = $client
            .$method(request.clone())
            .await
            .unwrap_or_else(|s| panic!("{}: {s:?}", stringify!($method)))
            .into_inner();
        let again = $client
            .$method(request)
            .await
            .unwrap_or_else(|s| panic!("{} retried: {s:?}", stringify!($method)))
            .into_inner();
        assert_eq!(first, again, "{} retried", stringify!($method));
        first
    }};
}

#[tokio::test]
async fn every_creation_answers_a_retry_with_its_first_response() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;

    let org = twice!(
        t.orgs_as(&owner),
        create_organization,
        org_pb::CreateOrganizationRequest {
            request_id: String::new(),
            organization: Some(org_pb::Organization {
                name: "acme".into(),
                ..Default::default()
            }),
        }
    );
    assert_eq!(org.organization.unwrap().name, "acme");
    twice!(
        t.projects_as(&owner),
        create_project,
        org_pb::CreateProjectRequest {
            request_id: String::new(),
            organization: "acme".into(),
            project: Some(org_pb::Project {
                name: "vision".into(),
                ..Default::default()
            }),
        }
    );
    twice!(
        t.teams_as(&owner),
        create_team,
        org_pb::CreateTeamRequest {
            request_id: String::new(),
            organization: "acme".into(),
            team: Some(org_pb::Team {
                name: "ml".into(),
                ..Default::default()
            }),
        }
    );
    let invited = twice!(
        t.invitations_as(&owner),
        create_invitation,
        org_pb::CreateInvitationRequest {
            request_id: String::new(),
            organization: "acme".into(),
            invitation: Some(org_pb::Invitation {
                email: "bob@example.com".into(),
                role: "member".into(),
                ..Default::default()
            }),
        }
    );
    assert!(!invited.token.is_empty(), "the token is answered again");

    let token = twice!(
        t.tokens_as(&owner),
        create_token,
        id_pb::CreateTokenRequest {
            request_id: String::new(),
            token: Some(id_pb::Token {
                name: "laptop".into(),
                ..Default::default()
            }),
        }
    );
    assert!(!token.key.is_empty());
    twice!(
        t.service_accounts_as(&owner),
        create_service_account,
        id_pb::CreateServiceAccountRequest {
            request_id: String::new(),
            organization: "acme".into(),
            service_account: Some(id_pb::ServiceAccount {
                name: "nightly".into(),
                role: "member".into(),
                ..Default::default()
            }),
        }
    );
    twice!(
        t.service_accounts_as(&owner),
        create_service_account_token,
        id_pb::CreateServiceAccountTokenRequest {
            request_id: String::new(),
            organization: "acme".into(),
            service_account: "nightly".into(),
            token: Some(id_pb::Token {
                name: "ci".into(),
                ..Default::default()
            }),
        }
    );

    twice!(
        t.models_as(&owner),
        create_model,
        reg_pb::CreateModelRequest {
            request_id: String::new(),
            organization: "acme".into(),
            model: Some(reg_pb::Model {
                name: "resnet".into(),
                ..Default::default()
            }),
        }
    );
    twice!(
        t.models_as(&owner),
        create_model_version,
        reg_pb::CreateModelVersionRequest {
            request_id: String::new(),
            organization: "acme".into(),
            model: "resnet".into(),
            version: Some(reg_pb::ModelVersion {
                name: "v1".into(),
                ..Default::default()
            }),
        }
    );
    twice!(
        t.components_as(&owner),
        create_component,
        reg_pb::CreateComponentRequest {
            request_id: String::new(),
            organization: "acme".into(),
            component: Some(reg_pb::Component {
                name: "trainer".into(),
                ..Default::default()
            }),
        }
    );
    twice!(
        t.components_as(&owner),
        create_component_version,
        reg_pb::CreateComponentVersionRequest {
            request_id: String::new(),
            organization: "acme".into(),
            component: "trainer".into(),
            version: Some(reg_pb::ComponentVersion {
                name: "v1".into(),
                content: "kind: component\nrun:\n  kind: job\n".into(),
                ..Default::default()
            }),
        }
    );

    let agent = twice!(
        t.agents_as(&owner),
        create_agent,
        ag_pb::CreateAgentRequest {
            request_id: String::new(),
            organization: "acme".into(),
            agent: Some(ag_pb::Agent {
                name: "box".into(),
                ..Default::default()
            }),
        }
    );
    assert!(!agent.token.is_empty());
    twice!(
        t.queues_as(&owner),
        create_queue,
        ag_pb::CreateQueueRequest {
            request_id: String::new(),
            organization: "acme".into(),
            agent: "box".into(),
            queue: Some(ag_pb::Queue {
                name: "q".into(),
                ..Default::default()
            }),
        }
    );
    twice!(
        t.connections_as(&owner),
        create_connection,
        ag_pb::CreateConnectionRequest {
            request_id: String::new(),
            organization: "acme".into(),
            connection: Some(ag_pb::Connection {
                name: "data".into(),
                kind: "s3".into(),
                schema: Some(orgplane_platform::json::json_to_struct(
                    &serde_json::json!({"bucket": "s3://data"}),
                )),
                ..Default::default()
            }),
        }
    );
    twice!(
        t.runs_as(&owner),
        submit_run,
        ag_pb::SubmitRunRequest {
            request_id: String::new(),
            organization: "acme".into(),
            project: "vision".into(),
            queue: "box/q".into(),
            name: "train".into(),
            spec: None,
        }
    );
    let runs = t
        .runs_as(&owner)
        .list_runs(ag_pb::ListRunsRequest {
            organization: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(runs.runs.len(), 1, "one run, however many retries");
    let tokens = t
        .tokens_as(&owner)
        .list_tokens(id_pb::ListTokensRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tokens.tokens.len(), 1, "one token minted");
}

#[tokio::test]
async fn a_request_id_names_one_request_of_one_caller() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let submit = |request_id: &str, name: &str| ag_pb::SubmitRunRequest {
        request_id: request_id.into(),
        organization: "acme".into(),
        project: "vision".into(),
        queue: "box/q".into(),
        name: name.into(),
        spec: None,
    };
    let project = |request_id: &str, name: &str| org_pb::CreateProjectRequest {
        request_id: request_id.into(),
        organization: "acme".into(),
        project: Some(org_pb::Project {
            name: name.into(),
            ..Default::default()
        }),
    };
    let mut projects = t.projects_as(&owner);

    // Not a UUID.
    let bad = expect_code(
        projects.create_project(project("retry-1", "vision")).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&bad), ["request_id"]);

    // A failed call leaves its id free: the corrected request goes through.
    let id = new_id();
    expect_code(
        projects.create_project(project(&id, "Not A Slug")).await,
        Code::InvalidArgument,
    );
    projects
        .create_project(project(&id, "vision"))
        .await
        .unwrap();
    // The same id with another request is refused, naming the field.
    let reused = expect_code(
        projects.create_project(project(&id, "nlp")).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&reused), ["request_id"]);

    // Another caller's id is theirs: a second owner using it creates their
    // own organization's project.
    let other = t.user("other").await;
    t.create_organization(&other, "globex").await;
    let mut theirs = project(&id, "vision");
    theirs.organization = "globex".into();
    let created = t
        .projects_as(&other)
        .create_project(theirs)
        .await
        .unwrap()
        .into_inner()
        .project
        .unwrap();
    assert_eq!(created.name, "vision");

    // No queue yet: the refusal is not remembered; once the queue exists
    // the same submission under the same id is accepted once.
    let id = new_id();
    let mut runs = t.runs_as(&owner);
    expect_code(runs.submit_run(submit(&id, "train")).await, Code::NotFound);
    let (agents, queues) = (&mut t.agents_as(&owner), &mut t.queues_as(&owner));
    agents
        .create_agent(ag_pb::CreateAgentRequest {
            request_id: String::new(),
            organization: "acme".into(),
            agent: Some(ag_pb::Agent {
                name: "box".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    queues
        .create_queue(ag_pb::CreateQueueRequest {
            request_id: String::new(),
            organization: "acme".into(),
            agent: "box".into(),
            queue: Some(ag_pb::Queue {
                name: "q".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let first = runs
        .submit_run(submit(&id, "train"))
        .await
        .unwrap()
        .into_inner();
    let again = runs
        .submit_run(submit(&id, "train"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.run.unwrap().uuid, again.run.unwrap().uuid);
}

/// The contract: `request_id` (a string) on the request of every public
/// `Create*` method and `SubmitRun`, and on no other.
#[test]
fn request_id_is_on_every_creation_and_nowhere_else() {
    let set = prost_types::FileDescriptorSet::decode(orgplane_proto::FILE_DESCRIPTOR_SET).unwrap();
    let messages: std::collections::HashMap<String, &prost_types::DescriptorProto> = set
        .file
        .iter()
        .flat_map(|f| {
            let package = f.package().to_owned();
            f.message_type
                .iter()
                .map(move |m| (format!(".{package}.{}", m.name()), m))
        })
        .collect();
    let mut creating = Vec::new();
    for file in &set.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            if !orgplane_proto::PUBLIC_SERVICES
                .iter()
                .any(|(name, _)| *name == full)
            {
                continue;
            }
            for method in &service.method {
                let input = messages[method.input_type()];
                let has_id = input.field.iter().any(|f| {
                    f.name() == "request_id"
                        && f.r#type() == prost_types::field_descriptor_proto::Type::String
                });
                let should = method.name().starts_with("Create") || method.name() == "SubmitRun";
                assert_eq!(has_id, should, "{full}/{}", method.name());
                if has_id {
                    creating.push(method.name().to_owned());
                }
            }
        }
    }
    assert_eq!(creating.len(), 15, "{creating:?}");
}
