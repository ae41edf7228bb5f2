//! Service accounts end to end: managed through identity's
//! `ServiceAccountService` (authorized by the organizations service), their
//! tokens acting in their organization with their role.

use std::time::Duration;

use orgplane_e2e::{
    TestStack, eventually, expect_code, expect_reason, expected_code, violated_fields,
};
use orgplane_platform::authz::Permission;
use orgplane_proto::{
    identity::*,
    organizations::{
        CreateProjectRequest, DeleteOrganizationRequest, GetOrganizationRequest,
        LeaveOrganizationRequest, ListProjectsRequest, Member, Project, UpdateMemberRequest,
    },
};
use prost_types::FieldMask;
use tonic::Code;

fn account(name: &str, role: &str) -> Option<ServiceAccount> {
    Some(ServiceAccount {
        name: name.into(),
        role: role.into(),
        description: format!("{name} runs the nightly jobs"),
        ..Default::default()
    })
}

async fn create_account(t: &TestStack, token: &str, org: &str, name: &str, role: &str) {
    t.service_accounts_as(token)
        .create_service_account(CreateServiceAccountRequest {
            request_id: String::new(),
            organization: org.into(),
            service_account: account(name, role),
        })
        .await
        .expect("create service account");
}

async fn account_token(t: &TestStack, token: &str, org: &str, name: &str) -> String {
    t.service_accounts_as(token)
        .create_service_account_token(CreateServiceAccountTokenRequest {
            request_id: String::new(),
            organization: org.into(),
            service_account: name.into(),
            token: Some(Token {
                name: "ci".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("create service account token")
        .into_inner()
        .key
}

async fn create_project(t: &TestStack, token: &str, org: &str, name: &str) -> Result<(), Code> {
    t.projects_as(token)
        .create_project(CreateProjectRequest {
            request_id: String::new(),
            organization: org.into(),
            project: Some(Project {
                name: name.into(),
                ..Default::default()
            }),
        })
        .await
        .map(|_| ())
        .map_err(|s| s.code())
}

#[tokio::test]
async fn a_service_account_acts_in_its_organization_with_its_role() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    t.create_organization(&owner, "other").await;
    create_account(&t, &owner, "acme", "nightly", "member").await;
    let key = account_token(&t, &owner, "acme", "nightly").await;
    assert!(key.starts_with("opa_"), "{key}");

    // It reads its organization and acts as a member there.
    t.orgs_as(&key)
        .get_organization(GetOrganizationRequest {
            organization: "acme".into(),
        })
        .await
        .unwrap();
    t.projects_as(&key)
        .list_projects(ListProjectsRequest {
            organization: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    expect_reason(
        t.projects_as(&key)
            .create_project(CreateProjectRequest {
                request_id: String::new(),
                organization: "acme".into(),
                project: Some(Project {
                    name: "from-ci".into(),
                    ..Default::default()
                }),
            })
            .await,
        Code::PermissionDenied,
        "ROLE_TOO_WEAK",
    );
    // Another organization of its owner does not exist for it.
    expect_code(
        t.orgs_as(&key)
            .get_organization(GetOrganizationRequest {
                organization: "other".into(),
            })
            .await,
        Code::NotFound,
    );
    // It never leaves: it is deleted.
    expect_reason(
        t.members_as(&key)
            .leave_organization(LeaveOrganizationRequest {
                organization: "acme".into(),
            })
            .await,
        Code::FailedPrecondition,
        "NOT_A_MEMBER",
    );
    // It is not a user.
    expect_reason(
        t.users_as(&key)
            .get_current_user(GetCurrentUserRequest {})
            .await,
        Code::PermissionDenied,
        "USER_REQUIRED",
    );

    // Raising its role takes effect within 5 s (the gateway's token cache
    // and the permission cache together).
    t.service_accounts_as(&owner)
        .update_service_account(UpdateServiceAccountRequest {
            organization: "acme".into(),
            service_account: account("nightly", "admin"),
            update_mask: Some(FieldMask {
                paths: vec!["role".into()],
            }),
        })
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "the new role applies", || async {
        create_project(&t, &key, "acme", "from-ci").await.is_ok()
    })
    .await;

    // Deleting its token ends it within the gateway's cache bound.
    t.service_accounts_as(&owner)
        .delete_service_account_token(DeleteServiceAccountTokenRequest {
            organization: "acme".into(),
            service_account: "nightly".into(),
            token: "ci".into(),
        })
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "the token dies", || async {
        matches!(
            t.orgs_as(&key).get_organization(GetOrganizationRequest {
                organization: "acme".into(),
            }).await,
            Err(s) if s.code() == Code::Unauthenticated
        )
    })
    .await;
}

async fn service_accounts_are_listed_read_updated_and_deleted(t: &TestStack) {
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    for (name, role) in [("alpha", "viewer"), ("beta", "member"), ("gamma", "member")] {
        create_account(t, &owner, "acme", name, role).await;
    }
    let mut accounts = t.service_accounts_as(&owner);
    let page = accounts
        .list_service_accounts(ListServiceAccountsRequest {
            organization: "acme".into(),
            page_size: 2,
            filter: "role:member".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total_size, 2);
    let names: Vec<_> = page
        .service_accounts
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["beta", "gamma"]);
    let got = accounts
        .get_service_account(GetServiceAccountRequest {
            organization: "acme".into(),
            service_account: "alpha".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .service_account
        .unwrap();
    assert_eq!(
        (got.organization.as_str(), got.role.as_str()),
        ("acme", "viewer")
    );
    account_token(t, &owner, "acme", "alpha").await;
    let tokens = accounts
        .list_service_account_tokens(ListServiceAccountTokensRequest {
            organization: "acme".into(),
            service_account: "alpha".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // The account's first token, `default`, and the one made since.
    let names: Vec<_> = tokens.tokens.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"default"));
    assert!(tokens.tokens.iter().all(|t| t.scopes == ["read", "write"]));
    expect_code(
        accounts
            .create_service_account(CreateServiceAccountRequest {
                request_id: String::new(),
                organization: "acme".into(),
                service_account: account("alpha", "viewer"),
            })
            .await,
        Code::AlreadyExists,
    );
    accounts
        .delete_service_account(DeleteServiceAccountRequest {
            organization: "acme".into(),
            service_account: "alpha".into(),
        })
        .await
        .unwrap();
    expect_code(
        accounts
            .get_service_account(GetServiceAccountRequest {
                organization: "acme".into(),
                service_account: "alpha".into(),
            })
            .await,
        Code::NotFound,
    );
}

/// As in Polyaxon: an account created without a role is `admin`, and comes
/// with a first token (`default`, read and write), shown once, that works.
#[tokio::test]
async fn an_account_defaults_to_admin_with_a_first_token() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let created = t
        .service_accounts_as(&owner)
        .create_service_account(CreateServiceAccountRequest {
            request_id: String::new(),
            organization: "acme".into(),
            service_account: account("ci", ""),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.service_account.unwrap().role, "admin");
    let token = created.token.unwrap();
    assert_eq!(token.name, "default");
    assert_eq!(token.scopes, ["read", "write"]);
    assert!(created.key.starts_with("opa_"), "the secret, shown once");
    // The key works as the account: an admin creates projects.
    t.projects_as(&created.key)
        .create_project(orgplane_proto::organizations::CreateProjectRequest {
            request_id: String::new(),
            organization: "acme".into(),
            project: Some(orgplane_proto::organizations::Project {
                name: "by-ci".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_input_on_every_service_account_rpc() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    create_account(&t, &owner, "acme", "nightly", "member").await;
    let mut accounts = t.service_accounts_as(&owner);
    for (name, role, field) in [
        ("Not A Slug", "member", "service_account.name"),
        ("ok", "owner", "service_account.role"),
        // Polyaxon: an account is at most `admin`, and never `billing`.
        ("ok", "manager", "service_account.role"),
        ("ok", "billing", "service_account.role"),
        ("ok", "outsider", "service_account.role"),
        ("ok", "captain", "service_account.role"),
    ] {
        let status = expect_code(
            accounts
                .create_service_account(CreateServiceAccountRequest {
                    request_id: String::new(),
                    organization: "acme".into(),
                    service_account: account(name, role),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), [field], "{name} {role}");
    }
    let status = expect_code(
        accounts
            .create_service_account(CreateServiceAccountRequest {
                request_id: String::new(),
                organization: "acme".into(),
                service_account: None,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["service_account"]);
    let status = expect_code(
        accounts
            .get_service_account(GetServiceAccountRequest {
                organization: "acme".into(),
                service_account: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["service_account"]);
    let status = expect_code(
        accounts
            .list_service_accounts(ListServiceAccountsRequest {
                organization: "acme".into(),
                filter: "colour:red".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["filter"]);
    let status = expect_code(
        accounts
            .update_service_account(UpdateServiceAccountRequest {
                organization: "acme".into(),
                service_account: account("nightly", "member"),
                update_mask: Some(FieldMask {
                    paths: vec!["name".into()],
                }),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["update_mask"]);
    for (scopes, field) in [
        (vec!["admin".to_owned()], "token.scopes"),
        (vec!["fly".to_owned()], "token.scopes"),
    ] {
        let status = expect_code(
            accounts
                .create_service_account_token(CreateServiceAccountTokenRequest {
                    request_id: String::new(),
                    organization: "acme".into(),
                    service_account: "nightly".into(),
                    token: Some(Token {
                        name: "ci".into(),
                        scopes,
                        ..Default::default()
                    }),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), [field]);
    }
    let status = expect_code(
        accounts
            .list_service_account_tokens(ListServiceAccountTokensRequest {
                organization: "acme".into(),
                service_account: "nightly".into(),
                order_by: "colour".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["order_by"]);
    expect_code(
        accounts
            .delete_service_account_token(DeleteServiceAccountTokenRequest {
                organization: "acme".into(),
                service_account: "nightly".into(),
                token: "never-made".into(),
            })
            .await,
        Code::NotFound,
    );
    let status = expect_code(
        accounts
            .delete_service_account(DeleteServiceAccountRequest {
                organization: "Bad Org".into(),
                service_account: "nightly".into(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["organization"]);
}

/// Every service account RPC, as each role, a stranger, and a member of
/// another organization: allowed where the permission table says so,
/// `PERMISSION_DENIED` for a member whose role is too weak, `NOT_FOUND` for
/// everyone else.
#[tokio::test]
async fn role_matrix_and_tenant_isolation_of_service_accounts() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    create_account(&t, &owner, "acme", "nightly", "member").await;
    account_token(&t, &owner, "acme", "nightly").await;
    let mut callers = t.role_callers("acme", owner).await;
    let foreigner = t.user("foreigner").await;
    t.create_organization(&foreigner, "elsewhere").await;
    callers.push((None, foreigner));

    for (role, token) in &callers {
        let mut accounts = t.service_accounts_as(token);
        let calls: Vec<(&str, Permission, Result<(), tonic::Status>)> = vec![
            (
                "ListServiceAccounts",
                Permission::ServiceAccountsRead,
                accounts
                    .list_service_accounts(ListServiceAccountsRequest {
                        organization: "acme".into(),
                        ..Default::default()
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "GetServiceAccount",
                Permission::ServiceAccountsRead,
                accounts
                    .get_service_account(GetServiceAccountRequest {
                        organization: "acme".into(),
                        service_account: "nightly".into(),
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "ListServiceAccountTokens",
                Permission::ServiceAccountsRead,
                accounts
                    .list_service_account_tokens(ListServiceAccountTokensRequest {
                        organization: "acme".into(),
                        service_account: "nightly".into(),
                        ..Default::default()
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "UpdateServiceAccount",
                Permission::ServiceAccountsManage,
                accounts
                    .update_service_account(UpdateServiceAccountRequest {
                        organization: "acme".into(),
                        service_account: account("nightly", "member"),
                        update_mask: Some(FieldMask {
                            paths: vec!["description".into()],
                        }),
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "CreateServiceAccount",
                Permission::ServiceAccountsManage,
                accounts
                    .create_service_account(CreateServiceAccountRequest {
                        request_id: String::new(),
                        organization: "acme".into(),
                        service_account: account("Not A Slug", "member"),
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "CreateServiceAccountToken",
                Permission::ServiceAccountsManage,
                accounts
                    .create_service_account_token(CreateServiceAccountTokenRequest {
                        request_id: String::new(),
                        organization: "acme".into(),
                        service_account: "nightly".into(),
                        token: Some(Token {
                            name: "Not A Slug".into(),
                            ..Default::default()
                        }),
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "DeleteServiceAccountToken",
                Permission::ServiceAccountsManage,
                accounts
                    .delete_service_account_token(DeleteServiceAccountTokenRequest {
                        organization: "acme".into(),
                        service_account: "nightly".into(),
                        token: "never-made".into(),
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "DeleteServiceAccount",
                Permission::ServiceAccountsManage,
                accounts
                    .delete_service_account(DeleteServiceAccountRequest {
                        organization: "acme".into(),
                        service_account: "never-made".into(),
                    })
                    .await
                    .map(|_| ()),
            ),
        ];
        for (rpc, permission, result) in calls {
            let authorized = match rpc {
                "CreateServiceAccount" | "CreateServiceAccountToken" => Code::InvalidArgument,
                "DeleteServiceAccountToken" | "DeleteServiceAccount" => Code::NotFound,
                _ => Code::Ok,
            };
            let expected = expected_code(*role, permission, authorized);
            let got = result.err().map_or(Code::Ok, |s| s.code());
            assert_eq!(got, expected, "{rpc} as {role:?}");
        }
    }
}

async fn deleting_the_organization_ends_its_service_accounts_and_purges_them(t: &TestStack) {
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    create_account(t, &owner, "acme", "nightly", "admin").await;
    let key = account_token(t, &owner, "acme", "nightly").await;
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
    // At once: the organization is gone for its accounts (`NOT_FOUND`, or
    // `UNAUTHENTICATED` when identity's start-up purge, late on a loaded
    // machine, already saw the deletion and removed the account).
    let gone = t
        .orgs_as(&key)
        .get_organization(GetOrganizationRequest {
            organization: "acme".into(),
        })
        .await
        .expect_err("the deleted organization is not reachable");
    assert!(
        matches!(gone.code(), Code::NotFound | Code::Unauthenticated),
        "{gone:?}"
    );
    // Once purged, its name may be taken again: the new organization is not
    // theirs.
    t.stack.organizations.purge_deleted(i64::MAX).await.unwrap();
    t.create_organization(&owner, "acme").await;
    let theirs = t
        .orgs_as(&key)
        .get_organization(GetOrganizationRequest {
            organization: "acme".into(),
        })
        .await
        .expect_err("the new organization is not the old accounts'");
    assert!(
        matches!(theirs.code(), Code::NotFound | Code::Unauthenticated),
        "{theirs:?}"
    );
    // Identity purges them from the deletion feed; running again is a no-op.
    // (Its background purger runs once at start: on a loaded machine that
    // first run may be late enough to see the deletion and purge first.)
    let identity = &t.stack.identity;
    let accounts = || async {
        use orgplane_identity::storage::service_accounts::account;
        use sea_orm::{EntityTrait, PaginatorTrait};
        account::Entity::find().count(identity.db()).await.unwrap()
    };
    let before = accounts().await;
    assert_eq!(
        identity.purge_deleted_organizations().await.unwrap(),
        before
    );
    assert_eq!(
        accounts().await,
        0,
        "the deleted organization's account is gone"
    );
    assert_eq!(identity.purge_deleted_organizations().await.unwrap(), 0);
    t.token_dies(&key, "the purged account's token").await;
}

#[tokio::test]
async fn identity_sees_a_role_change_within_five_seconds() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let manager = t.user("deputy").await;
    t.add_member("acme", "deputy", "manager").await;
    create_account(&t, &manager, "acme", "first", "viewer").await;
    t.members_as(&owner)
        .update_member(UpdateMemberRequest {
            organization: "acme".into(),
            member: Some(Member {
                user: "deputy".into(),
                role: "viewer".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["role".into()],
            }),
        })
        .await
        .unwrap();
    let took = eventually(
        Duration::from_secs(5),
        "the demotion reaches identity",
        || async {
            matches!(
                t.service_accounts_as(&manager)
                    .create_service_account(CreateServiceAccountRequest {
                        request_id: String::new(),
                        organization: "acme".into(),
                        service_account: account("second", "viewer"),
                    })
                    .await,
                Err(s) if s.code() == Code::PermissionDenied
            )
        },
    )
    .await;
    assert!(took <= Duration::from_secs(5), "{took:?}");
}

orgplane_e2e::on_both_databases!(
    deleting_the_organization_ends_its_service_accounts_and_purges_them,
    service_accounts_are_listed_read_updated_and_deleted,
);
