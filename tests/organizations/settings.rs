//! Organization settings end to end: invite-only by default, changed with an
//! etag, and bounded lists.

use orgplane_e2e::{TestStack, expect_code, expect_reason, mask, violated_fields};
use orgplane_proto::organizations::*;
use tonic::Code;

#[tokio::test]
async fn settings_are_invite_only_by_default_and_change_with_an_etag() {
    let t = TestStack::start().await;
    let owner = t.user("setter").await;
    t.create_organization(&owner, "configured").await;
    let defaults = t
        .orgs_as(&owner)
        .get_organization_settings(GetOrganizationSettingsRequest {
            organization: "configured".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    let auth = defaults.auth.clone().unwrap();
    assert!(auth.invite_only, "invite-only by default");
    assert!(auth.password_enabled);
    assert_eq!(defaults.default_role, "member");

    let provider = AuthProvider {
        name: "corp-sso".into(),
        issuer: "https://login.example.com".into(),
        client_id: "orgplane".into(),
        allowed_email_domains: vec!["example.com".into()],
        enabled: true,
    };
    let changed = t
        .orgs_as(&owner)
        .update_organization_settings(UpdateOrganizationSettingsRequest {
            organization: "configured".into(),
            settings: Some(OrganizationSettings {
                default_role: "viewer".into(),
                auth: Some(AuthSettings {
                    invite_only: false,
                    allowed_email_domains: vec!["example.com".into()],
                    providers: vec![provider.clone()],
                    ..Default::default()
                }),
                etag: defaults.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&[
                "default_role",
                "auth.invite_only",
                "auth.allowed_email_domains",
                "auth.providers",
            ]),
        })
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    let auth = changed.auth.unwrap();
    assert_eq!(changed.default_role, "viewer");
    assert!(!auth.invite_only);
    assert!(auth.password_enabled, "outside the mask: unchanged");
    assert_eq!(auth.providers, [provider]);
    expect_reason(
        t.orgs_as(&owner)
            .update_organization_settings(UpdateOrganizationSettingsRequest {
                organization: "configured".into(),
                settings: Some(OrganizationSettings {
                    support_email: "help@example.com".into(),
                    etag: defaults.etag,
                    ..Default::default()
                }),
                update_mask: mask(&["support_email"]),
            })
            .await,
        Code::Aborted,
        "STALE_ETAG",
    );

    let status = expect_code(
        t.orgs_as(&owner)
            .update_organization_settings(UpdateOrganizationSettingsRequest {
                organization: "configured".into(),
                settings: Some(OrganizationSettings {
                    support_email: "not-an-email".into(),
                    default_role: "owner".into(),
                    default_queue: "no-slash".into(),
                    activity_retention_days: -1,
                    auth: Some(AuthSettings {
                        allowed_email_domains: vec!["Not A Domain".into()],
                        providers: vec![
                            AuthProvider {
                                name: "dup".into(),
                                issuer: "http://insecure.example.com".into(),
                                client_id: String::new(),
                                ..Default::default()
                            },
                            AuthProvider {
                                name: "dup".into(),
                                issuer: "https://ok.example.com".into(),
                                client_id: "x".into(),
                                ..Default::default()
                            },
                        ],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: mask(&[
                    "support_email",
                    "default_role",
                    "default_queue",
                    "activity_retention_days",
                    "auth",
                ]),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        [
            "settings.support_email",
            "settings.default_role",
            "settings.default_queue",
            "settings.activity_retention_days",
            "settings.auth.allowed_email_domains",
            "settings.auth.providers.issuer",
            "settings.auth.providers.client_id",
            "settings.auth.providers.name",
        ]
    );
    let status = expect_code(
        t.orgs_as(&owner)
            .update_organization_settings(UpdateOrganizationSettingsRequest {
                organization: "configured".into(),
                settings: Some(OrganizationSettings::default()),
                update_mask: mask(&["color"]),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["update_mask"]);
}

/// Issue 15, item 17: the lists of settings have documented limits, and an
/// oversized list is one violation however many bad items it holds.
#[tokio::test]
async fn settings_lists_are_bounded() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    t.projects_as(&owner)
        .create_project(CreateProjectRequest {
            request_id: String::new(),
            organization: "acme".into(),
            project: Some(Project {
                name: "vision".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let many = |n: usize, bad: bool| -> Vec<String> {
        (0..n)
            .map(|i| {
                if bad {
                    format!("Not Valid {i}")
                } else {
                    format!("d{i}.example.com")
                }
            })
            .collect()
    };
    for (domains, violations) in [(many(101, false), 1), (many(5000, true), 1)] {
        let status = expect_code(
            t.orgs_as(&owner)
                .update_organization_settings(UpdateOrganizationSettingsRequest {
                    organization: "acme".into(),
                    settings: Some(OrganizationSettings {
                        auth: Some(AuthSettings {
                            allowed_email_domains: domains,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    update_mask: mask(&["auth.allowed_email_domains"]),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(
            violated_fields(&status),
            vec!["settings.auth.allowed_email_domains"; violations]
        );
    }
    t.orgs_as(&owner)
        .update_organization_settings(UpdateOrganizationSettingsRequest {
            organization: "acme".into(),
            settings: Some(OrganizationSettings {
                auth: Some(AuthSettings {
                    allowed_email_domains: many(100, false),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: mask(&["auth.allowed_email_domains"]),
        })
        .await
        .expect("100 domains are allowed");
    let providers = (0..21)
        .map(|i| AuthProvider {
            name: format!("p{i}"),
            issuer: "https://idp.example.com".into(),
            client_id: "orgplane".into(),
            ..Default::default()
        })
        .collect();
    let status = expect_code(
        t.orgs_as(&owner)
            .update_organization_settings(UpdateOrganizationSettingsRequest {
                organization: "acme".into(),
                settings: Some(OrganizationSettings {
                    auth: Some(AuthSettings {
                        providers,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: mask(&["auth.providers"]),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["settings.auth.providers"]);
    let agents = (0..101).map(|i| format!("agent-{i}")).collect();
    let status = expect_code(
        t.projects_as(&owner)
            .update_project_settings(UpdateProjectSettingsRequest {
                organization: "acme".into(),
                project: "vision".into(),
                settings: Some(ProjectSettings {
                    allowed_agents: agents,
                    ..Default::default()
                }),
                update_mask: mask(&["allowed_agents"]),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["settings.allowed_agents"]);
    let grants = (0..101)
        .map(|i| TeamGrant {
            kind: EntityKind::Project as i32,
            name: format!("p{i}"),
            role: "viewer".into(),
        })
        .collect();
    let status = expect_code(
        t.teams_as(&owner)
            .create_team(CreateTeamRequest {
                request_id: String::new(),
                organization: "acme".into(),
                team: Some(Team {
                    name: "big".into(),
                    grants,
                    ..Default::default()
                }),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["team.grants"]);
}
