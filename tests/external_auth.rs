//! `ExchangeExternalToken` end to end: an organization's OIDC provider (a
//! real issuer on loopback, with discovery and a JWKS) signs users in, under
//! the organization's auth settings.

use orgplane_e2e::{
    TestStack, expect_code, expect_reason,
    oidc::{IdToken, OidcIssuer},
    violated_fields,
};
use orgplane_proto::{
    identity::{
        ExchangeExternalTokenRequest, ExchangeExternalTokenResponse, ExternalIdentity,
        GetCurrentUserRequest, LinkExternalIdentityRequest, ListExternalIdentitiesRequest,
        UnlinkExternalIdentityRequest,
    },
    organizations::*,
};
use prost_types::FieldMask;
use tonic::Code;

const CLIENT_ID: &str = "orgplane-test";

/// Sets `org`'s default role and auth settings.
async fn update_auth(
    t: &TestStack,
    owner: &str,
    org: &str,
    default_role: &str,
    auth: AuthSettings,
) {
    t.orgs_as(owner)
        .update_organization_settings(UpdateOrganizationSettingsRequest {
            organization: org.into(),
            settings: Some(OrganizationSettings {
                default_role: default_role.into(),
                auth: Some(auth),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec![
                    "default_role".into(),
                    "auth.invite_only".into(),
                    "auth.allowed_email_domains".into(),
                    "auth.providers".into(),
                ],
            }),
        })
        .await
        .expect("configure the provider");
}

/// The provider `name` for `issuer`, signing in addresses of `domains`.
fn provider(name: &str, issuer: &str, domains: &[&str], enabled: bool) -> AuthProvider {
    AuthProvider {
        name: name.into(),
        issuer: issuer.into(),
        client_id: CLIENT_ID.into(),
        allowed_email_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        enabled,
    }
}

/// Configures `org`'s provider `sso` for `issuer`, open or invite-only.
async fn configure(t: &TestStack, owner: &str, org: &str, issuer: &str, invite_only: bool) {
    let auth = AuthSettings {
        invite_only,
        allowed_email_domains: vec!["example.com".into()],
        providers: vec![
            provider("sso", issuer, &["example.com"], true),
            provider("retired", issuer, &[], false),
        ],
        ..Default::default()
    };
    update_auth(t, owner, org, "member", auth).await;
}

async fn exchange(
    t: &TestStack,
    org: &str,
    provider: &str,
    id_token: &str,
) -> Result<ExchangeExternalTokenResponse, tonic::Status> {
    t.auth()
        .exchange_external_token(ExchangeExternalTokenRequest {
            organization: org.into(),
            provider: provider.into(),
            id_token: id_token.into(),
        })
        .await
        .map(|r| r.into_inner())
}

/// Links the identity of `id_token` to the user of `session`.
async fn link(
    t: &TestStack,
    session: &str,
    org: &str,
    id_token: &str,
) -> Result<ExternalIdentity, tonic::Status> {
    t.users_as(session)
        .link_external_identity(LinkExternalIdentityRequest {
            organization: org.into(),
            provider: "sso".into(),
            id_token: id_token.into(),
        })
        .await
        .map(|r| r.into_inner().external_identity.unwrap())
}

async fn role_of(t: &TestStack, owner: &str, org: &str, user: &str) -> Option<String> {
    t.members_as(owner)
        .get_member(GetMemberRequest {
            organization: org.into(),
            user: user.into(),
        })
        .await
        .ok()
        .map(|r| r.into_inner().member.unwrap().role)
}

async fn an_open_organization_signs_users_in_with_its_provider(t: &TestStack) {
    let issuer = OidcIssuer::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    configure(t, &owner, "acme", &issuer.url, false).await;

    let token = issuer.issue(&IdToken::for_email("Ada.Lovelace@example.com", CLIENT_ID));
    let first = exchange(t, "acme", "sso", &token).await.unwrap();
    let user = first.user.unwrap();
    assert_eq!(user.username, "ada-lovelace");
    assert_eq!(user.email, "ada.lovelace@example.com");
    assert!(
        !user.email_verified,
        "the provider vouched for the address to its own organization only"
    );
    assert_eq!(user.display_name, "Ada Lovelace");
    // The session works, and the open organization took them in with its
    // default role.
    let me = t
        .users_as(&first.access_token)
        .get_current_user(GetCurrentUserRequest {})
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(me.uuid, user.uuid);
    assert_eq!(
        role_of(t, &owner, "acme", "ada-lovelace").await.as_deref(),
        Some("member")
    );

    // The same identity at the issuer is the same user, whatever its
    // address says now.
    let mut renamed = IdToken::for_email("Ada.Lovelace@example.com", CLIENT_ID);
    renamed.email = Some("ada@example.com".into());
    let again = exchange(t, "acme", "sso", &issuer.issue(&renamed))
        .await
        .unwrap();
    assert_eq!(again.user.unwrap().uuid, user.uuid);
    assert_ne!(again.access_token, first.access_token);
    // Keys are cached: one fetch served both sign-ins.
    assert_eq!(issuer.key_fetches(), 1);

    // An account with the same address is not the identity's until its
    // holder links it (see `an_identity_provider_never_takes_over_an_account`).
    let grace_session = t.user("grace").await;
    let grace_token = issuer.issue(&IdToken::for_email("grace@example.com", CLIENT_ID));
    expect_reason(
        exchange(t, "acme", "sso", &grace_token).await,
        Code::FailedPrecondition,
        "ACCOUNT_EXISTS",
    );
    link(t, &grace_session, "acme", &grace_token).await.unwrap();
    let grace = exchange(t, "acme", "sso", &grace_token)
        .await
        .unwrap()
        .user
        .unwrap();
    assert_eq!(grace.username, "grace");
    assert!(!grace.email_verified);
}

#[tokio::test]
async fn an_invite_only_organization_admits_members_and_the_invited_only() {
    use sea_orm::EntityTrait;
    let t = TestStack::start().await;
    let issuer = OidcIssuer::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    configure(&t, &owner, "acme", &issuer.url, true).await;

    // Unknown and uninvited: refused, and no account is left behind.
    expect_reason(
        exchange(
            &t,
            "acme",
            "sso",
            &issuer.issue(&IdToken::for_email("walker@example.com", CLIENT_ID)),
        )
        .await,
        Code::PermissionDenied,
        "NOT_ADMITTED",
    );
    let users = orgplane_identity::storage::users::Entity::find()
        .all(t.stack.identity.db())
        .await
        .unwrap();
    assert!(users.iter().all(|u| u.email != "walker@example.com"));

    // Invited: signed in, then accepts the invitation with that session.
    let invitation = t
        .invitations_as(&owner)
        .create_invitation(CreateInvitationRequest {
            request_id: String::new(),
            organization: "acme".into(),
            invitation: Some(Invitation {
                email: "invitee@example.com".into(),
                role: "viewer".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let session = exchange(
        &t,
        "acme",
        "sso",
        &issuer.issue(&IdToken::for_email("invitee@example.com", CLIENT_ID)),
    )
    .await
    .unwrap();
    assert_eq!(role_of(&t, &owner, "acme", "invitee").await, None);
    t.invitations_as(&session.access_token)
        .accept_invitation(AcceptInvitationRequest { token: invitation })
        .await
        .unwrap();
    assert_eq!(
        role_of(&t, &owner, "acme", "invitee").await.as_deref(),
        Some("viewer")
    );

    // A member who linked the identity signs in whatever the settings.
    let owner_identity = issuer.issue(&IdToken::for_email("owner@example.com", CLIENT_ID));
    link(&t, &owner, "acme", &owner_identity).await.unwrap();
    let member = exchange(&t, "acme", "sso", &owner_identity).await.unwrap();
    assert_eq!(member.user.unwrap().username, "owner");
}

#[tokio::test]
async fn bad_tokens_and_bad_input_are_refused() {
    use sea_orm::EntityTrait;
    let t = TestStack::start().await;
    let issuer = OidcIssuer::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    configure(&t, &owner, "acme", &issuer.url, false).await;
    let good = IdToken::for_email("ada@example.com", CLIENT_ID);

    let cases: Vec<(&str, String, Code, &str)> = vec![
        (
            "another audience",
            issuer.issue(&IdToken::for_email("ada@example.com", "someone-else")),
            Code::Unauthenticated,
            "INVALID_ID_TOKEN",
        ),
        (
            "expired",
            issuer.issue(&IdToken {
                expires_in: -3600,
                ..good.clone()
            }),
            Code::Unauthenticated,
            "INVALID_ID_TOKEN",
        ),
        (
            "another issuer",
            issuer.issue(&IdToken {
                issuer: Some("https://evil.example.com".into()),
                ..good.clone()
            }),
            Code::Unauthenticated,
            "INVALID_ID_TOKEN",
        ),
        (
            "a key the issuer never published",
            issuer.forge(&good, "key-1"),
            Code::Unauthenticated,
            "INVALID_ID_TOKEN",
        ),
        (
            "an unverified address",
            issuer.issue(&IdToken {
                email_verified: Some(false),
                ..good.clone()
            }),
            Code::Unauthenticated,
            "EMAIL_NOT_VERIFIED",
        ),
        (
            "no address",
            issuer.issue(&IdToken {
                email: None,
                ..good.clone()
            }),
            Code::Unauthenticated,
            "EMAIL_REQUIRED",
        ),
        (
            "a domain the provider does not sign in",
            issuer.issue(&IdToken::for_email("ada@elsewhere.org", CLIENT_ID)),
            Code::PermissionDenied,
            "EMAIL_DOMAIN_NOT_ALLOWED",
        ),
        (
            "not a JWT",
            "not.a.jwt".into(),
            Code::Unauthenticated,
            "INVALID_ID_TOKEN",
        ),
    ];
    for (what, token, code, reason) in cases {
        let got = exchange(&t, "acme", "sso", &token).await;
        let status = got.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert_eq!(
            orgplane_e2e::reason(&status).as_deref(),
            Some(reason),
            "{what}"
        );
    }
    // Nobody was created by any of them.
    let users = orgplane_identity::storage::users::Entity::find()
        .all(t.stack.identity.db())
        .await
        .unwrap();
    assert_eq!(users.len(), 1, "only the owner");

    let token = issuer.issue(&good);
    for (org, provider) in [("acme", "retired"), ("acme", "nope"), ("nowhere", "sso")] {
        expect_code(exchange(&t, org, provider, &token).await, Code::NotFound);
    }
    for (org, provider, id_token, field) in [
        ("Bad Org", "sso", token.as_str(), "organization"),
        ("acme", "Bad Provider", token.as_str(), "provider"),
        ("acme", "sso", "", "id_token"),
    ] {
        let status = expect_code(
            exchange(&t, org, provider, id_token).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), [field]);
    }
}

#[tokio::test]
async fn rotated_keys_are_fetched_and_a_dead_issuer_is_unavailable() {
    let t = TestStack::start().await;
    let issuer = OidcIssuer::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    configure(&t, &owner, "acme", &issuer.url, false).await;
    exchange(
        &t,
        "acme",
        "sso",
        &issuer.issue(&IdToken::for_email("ada@example.com", CLIENT_ID)),
    )
    .await
    .unwrap();
    assert_eq!(issuer.key_fetches(), 1);
    // The provider rotates its keys; a token with the new key id makes
    // identity fetch the key set again (at most once per refetch interval).
    issuer.rotate("key-2");
    tokio::time::sleep(orgplane_identity::oidc::REFETCH_INTERVAL).await;
    exchange(
        &t,
        "acme",
        "sso",
        &issuer.issue(&IdToken::for_email("ada@example.com", CLIENT_ID)),
    )
    .await
    .unwrap();
    assert_eq!(issuer.key_fetches(), 2);
    // Unknown key ids right after a fetch do not make identity hammer the
    // issuer.
    for kid in ["key-7", "key-8", "key-9"] {
        expect_reason(
            exchange(
                &t,
                "acme",
                "sso",
                &issuer.forge(&IdToken::for_email("ada@example.com", CLIENT_ID), kid),
            )
            .await,
            Code::Unauthenticated,
            "INVALID_ID_TOKEN",
        );
    }
    assert_eq!(issuer.key_fetches(), 2);

    let gone = OidcIssuer::start().await;
    let url = gone.url.clone();
    let token = gone.issue(&IdToken::for_email("ada@example.com", CLIENT_ID));
    gone.stop();
    drop(gone);
    t.create_organization(&owner, "beta").await;
    configure(&t, &owner, "beta", &url, false).await;
    expect_code(exchange(&t, "beta", "sso", &token).await, Code::Unavailable);
}

#[tokio::test]
async fn an_organization_that_disables_passwords_refuses_password_sessions() {
    let t = TestStack::start().await;
    let issuer = OidcIssuer::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    configure(&t, &owner, "acme", &issuer.url, true).await;
    let pat = t
        .tokens_as(&owner)
        .create_token(orgplane_proto::identity::CreateTokenRequest {
            request_id: String::new(),
            token: Some(orgplane_proto::identity::Token {
                name: "automation".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .key;
    t.orgs_as(&owner)
        .update_organization_settings(UpdateOrganizationSettingsRequest {
            organization: "acme".into(),
            settings: Some(OrganizationSettings {
                auth: Some(AuthSettings {
                    password_enabled: false,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["auth.password_enabled".into()],
            }),
        })
        .await
        .unwrap();
    let get = |token: String| {
        let mut orgs = t.orgs_as(&token);
        async move {
            orgs.get_organization(GetOrganizationRequest {
                organization: "acme".into(),
            })
            .await
        }
    };
    // The password session is refused here, by this service and by the
    // others that ask it (identity, for service accounts)...
    expect_reason(
        get(owner.clone()).await,
        Code::PermissionDenied,
        "PASSWORD_SIGN_IN_DISABLED",
    );
    expect_reason(
        t.service_accounts_as(&owner)
            .list_service_accounts(orgplane_proto::identity::ListServiceAccountsRequest {
                organization: "acme".into(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        "PASSWORD_SIGN_IN_DISABLED",
    );
    // ...while tokens and sessions from the identity provider work (the
    // password session may still link the identity: identity is not the
    // organization's).
    get(pat).await.unwrap();
    let owner_identity = issuer.issue(&IdToken::for_email("owner@example.com", CLIENT_ID));
    link(&t, &owner, "acme", &owner_identity).await.unwrap();
    let sso = exchange(&t, "acme", "sso", &owner_identity).await.unwrap();
    get(sso.access_token.clone()).await.unwrap();
    t.service_accounts_as(&sso.access_token)
        .list_service_accounts(orgplane_proto::identity::ListServiceAccountsRequest {
            organization: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Elsewhere the password session is as good as ever.
    t.create_organization(&owner, "other").await;
}

/// Configures `org`'s provider `sso` for `issuer`, open to `domain`.
async fn configure_open_to(t: &TestStack, owner: &str, org: &str, issuer: &str, domain: &str) {
    let auth = AuthSettings {
        invite_only: false,
        allowed_email_domains: vec![domain.into()],
        providers: vec![provider("sso", issuer, &[domain], true)],
        ..Default::default()
    };
    update_auth(t, owner, org, "viewer", auth).await;
}

/// Issue 15, item 1: an organization owner who points a provider at an
/// issuer they control, opens the organization to (and invites) a victim's
/// address, once signed in as the victim — the instance admin included.
/// Now the unlinked identity is refused (`ACCOUNT_EXISTS`), nothing is
/// linked and no flag changes.
#[tokio::test]
async fn an_identity_provider_never_takes_over_an_account() {
    use sea_orm::EntityTrait;
    let t = TestStack::start().await;
    let admin = t.admin().await;
    let evil_issuer = OidcIssuer::start().await;
    let mallory = t.user("mallory").await;
    t.create_organization(&mallory, "evil").await;
    configure_open_to(&t, &mallory, "evil", &evil_issuer.url, "orgplane.local").await;
    t.user("victim").await;
    t.invitations_as(&mallory)
        .create_invitation(CreateInvitationRequest {
            request_id: String::new(),
            organization: "evil".into(),
            invitation: Some(Invitation {
                email: orgplane::admin::DEV_ADMIN_EMAIL.into(),
                role: "viewer".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let before = orgplane_identity::storage::users::Entity::find()
        .all(t.stack.identity.db())
        .await
        .unwrap();
    let forged = evil_issuer.issue(&IdToken::for_email(
        orgplane::admin::DEV_ADMIN_EMAIL,
        CLIENT_ID,
    ));
    expect_reason(
        exchange(&t, "evil", "sso", &forged).await,
        Code::FailedPrecondition,
        "ACCOUNT_EXISTS",
    );
    // A password account whose address is not verified is no easier.
    configure_open_to(&t, &mallory, "evil", &evil_issuer.url, "example.com").await;
    let forged = evil_issuer.issue(&IdToken::for_email("victim@example.com", CLIENT_ID));
    expect_reason(
        exchange(&t, "evil", "sso", &forged).await,
        Code::FailedPrecondition,
        "ACCOUNT_EXISTS",
    );
    // Nothing was linked, and no user changed.
    let links = orgplane_identity::storage::external_identities::Entity::find()
        .all(t.stack.identity.db())
        .await
        .unwrap();
    assert!(links.is_empty(), "{links:?}");
    let after = orgplane_identity::storage::users::Entity::find()
        .all(t.stack.identity.db())
        .await
        .unwrap();
    assert_eq!(before, after);
    // The admin is still only the admin's.
    t.users_as(&admin)
        .get_current_user(GetCurrentUserRequest {})
        .await
        .unwrap();

    // An address the evil provider vouched for creates an account, but
    // that word counts in the evil organization only: an organization open
    // to the domain does not take it in.
    let owner = t.user("owner").await;
    t.create_organization(&owner, "bigcorp").await;
    let honest_issuer = OidcIssuer::start().await;
    configure_open_to(&t, &owner, "bigcorp", &honest_issuer.url, "bigcorp.com").await;
    configure_open_to(&t, &mallory, "evil", &evil_issuer.url, "bigcorp.com").await;
    let fake_ceo = exchange(
        &t,
        "evil",
        "sso",
        &evil_issuer.issue(&IdToken::for_email("ceo@bigcorp.com", CLIENT_ID)),
    )
    .await
    .unwrap();
    assert!(!fake_ceo.user.unwrap().email_verified);
    expect_code(
        t.invitations_as(&fake_ceo.access_token)
            .join_organization(JoinOrganizationRequest {
                organization: "bigcorp".into(),
            })
            .await,
        Code::NotFound,
    );
    // And sign-up with that address, taken by the external account, is
    // refused: the external account never becomes someone's password
    // account, nor the other way round.
    let signup = t
        .auth()
        .sign_up(orgplane_proto::identity::SignUpRequest {
            username: "ceo".into(),
            email: "ceo@bigcorp.com".into(),
            password: "a long enough password".into(),
            display_name: String::new(),
        })
        .await;
    expect_code(signup, Code::AlreadyExists);
}

/// `LinkExternalIdentity`, `ListExternalIdentities`,
/// `UnlinkExternalIdentity`: the holder of an account links identities with
/// a session, lists and removes them; access tokens, other users and bad
/// input are refused.
#[tokio::test]
async fn users_link_list_and_unlink_their_external_identities() {
    let t = TestStack::start().await;
    let issuer = OidcIssuer::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    configure(&t, &owner, "acme", &issuer.url, true).await;
    let ada = t.user("ada").await;
    let ada_identity = issuer.issue(&IdToken::for_email("ada@example.com", CLIENT_ID));

    // Happy path: linked, listed, idempotent, signs in.
    let linked = link(&t, &ada, "acme", &ada_identity).await.unwrap();
    assert_eq!(linked.issuer, issuer.url);
    assert_eq!(linked.subject, "sub-ada@example.com");
    assert_eq!(
        link(&t, &ada, "acme", &ada_identity).await.unwrap().uuid,
        linked.uuid
    );
    let list = |token: String| {
        let mut users = t.users_as(&token);
        async move {
            users
                .list_external_identities(ListExternalIdentitiesRequest::default())
                .await
                .map(|r| r.into_inner())
        }
    };
    let listed = list(ada.clone()).await.unwrap();
    assert_eq!(listed.external_identities, vec![linked.clone()]);
    assert_eq!(listed.total_size, 1);
    // ada is not a member of the invite-only acme: the identity is hers,
    // the organization still refuses her.
    expect_reason(
        exchange(&t, "acme", "sso", &ada_identity).await,
        Code::PermissionDenied,
        "NOT_ADMITTED",
    );
    t.add_member("acme", "ada", "viewer").await;
    let signed_in = exchange(&t, "acme", "sso", &ada_identity).await.unwrap();
    assert_eq!(signed_in.user.unwrap().username, "ada");

    // Another user: cannot link ada's identity, does not see or remove her
    // link.
    let bob = t.user("bob").await;
    expect_code(
        link(&t, &bob, "acme", &ada_identity).await,
        Code::AlreadyExists,
    );
    assert!(
        list(bob.clone())
            .await
            .unwrap()
            .external_identities
            .is_empty()
    );
    let unlink = |token: String, uuid: String| {
        let mut users = t.users_as(&token);
        async move {
            users
                .unlink_external_identity(UnlinkExternalIdentityRequest { uuid })
                .await
        }
    };
    expect_code(
        unlink(bob.clone(), linked.uuid.clone()).await,
        Code::NotFound,
    );

    // Access tokens may list, not link or unlink.
    let pat = t
        .tokens_as(&ada)
        .create_token(orgplane_proto::identity::CreateTokenRequest {
            request_id: String::new(),
            token: Some(orgplane_proto::identity::Token {
                name: "ci".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .key;
    assert_eq!(list(pat.clone()).await.unwrap().total_size, 1);
    let bob_identity = issuer.issue(&IdToken::for_email("bob@example.com", CLIENT_ID));
    expect_reason(
        link(&t, &pat, "acme", &bob_identity).await,
        Code::PermissionDenied,
        "SESSION_REQUIRED",
    );
    expect_reason(
        unlink(pat.clone(), linked.uuid.clone()).await,
        Code::PermissionDenied,
        "SESSION_REQUIRED",
    );
    expect_code(
        t.users_as("not-a-token")
            .list_external_identities(ListExternalIdentitiesRequest::default())
            .await,
        Code::Unauthenticated,
    );

    // Bad input.
    for (org, provider, id_token, field) in [
        ("Bad Org", "sso", ada_identity.as_str(), "organization"),
        ("acme", "Bad Provider", ada_identity.as_str(), "provider"),
        ("acme", "sso", "", "id_token"),
    ] {
        let status = expect_code(
            t.users_as(&bob)
                .link_external_identity(LinkExternalIdentityRequest {
                    organization: org.into(),
                    provider: provider.into(),
                    id_token: id_token.into(),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), [field]);
    }
    expect_reason(
        link(&t, &bob, "acme", "not.a.jwt").await,
        Code::Unauthenticated,
        "INVALID_ID_TOKEN",
    );
    expect_code(
        link(&t, &bob, "nowhere", &bob_identity).await,
        Code::NotFound,
    );
    let status = expect_code(
        unlink(bob.clone(), String::new()).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["uuid"]);
    let status = expect_code(
        t.users_as(&bob)
            .list_external_identities(ListExternalIdentitiesRequest {
                page_size: -1,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["page_size"]);

    // Unlinked: the identity no longer opens ada's account.
    unlink(ada.clone(), linked.uuid.clone()).await.unwrap();
    assert!(
        list(ada.clone())
            .await
            .unwrap()
            .external_identities
            .is_empty()
    );
    expect_reason(
        exchange(&t, "acme", "sso", &ada_identity).await,
        Code::FailedPrecondition,
        "ACCOUNT_EXISTS",
    );

    // The only way into an account without a password stays.
    configure(&t, &owner, "acme", &issuer.url, false).await;
    let carol = exchange(
        &t,
        "acme",
        "sso",
        &issuer.issue(&IdToken::for_email("carol@example.com", CLIENT_ID)),
    )
    .await
    .unwrap();
    let carol_links = list(carol.access_token.clone()).await.unwrap();
    assert_eq!(carol_links.total_size, 1);
    expect_reason(
        unlink(
            carol.access_token.clone(),
            carol_links.external_identities[0].uuid.clone(),
        )
        .await,
        Code::FailedPrecondition,
        "LAST_SIGN_IN_METHOD",
    );
}

/// Issue 15, item 15: without `--allow-insecure-issuers`, an issuer on a
/// loopback (or any private) address over plain HTTP is never fetched: an
/// owner cannot make identity probe its own network. The caller learns
/// only that the provider is unavailable, nothing of what was reached.
#[tokio::test]
async fn issuers_on_private_addresses_are_not_fetched_in_production() {
    let t = TestStack::start_with(|identity, _| identity.allow_insecure_issuers = false).await;
    let issuer = OidcIssuer::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    configure(&t, &owner, "acme", &issuer.url, false).await;
    let status = expect_code(
        exchange(
            &t,
            "acme",
            "sso",
            &issuer.issue(&IdToken::for_email("ada@example.com", CLIENT_ID)),
        )
        .await,
        Code::Unavailable,
    );
    assert_eq!(status.message(), "the identity provider is unavailable");
    assert_eq!(issuer.key_fetches(), 0, "nothing was fetched");
}

orgplane_e2e::on_both_databases!(an_open_organization_signs_users_in_with_its_provider,);
