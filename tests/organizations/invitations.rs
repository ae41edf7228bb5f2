//! Invitations and joins end to end: the member lifecycle through an
//! invitation, and open organizations admitting verified emails of allowed
//! domains.

use orgplane_e2e::{TestStack, eventually, expect_code, expect_reason, mask, violated_fields};
use orgplane_proto::organizations::*;
use tonic::Code;

async fn invite(
    t: &TestStack,
    token: &str,
    org: &str,
    email: &str,
    role: &str,
) -> Result<CreateInvitationResponse, tonic::Status> {
    t.invitations_as(token)
        .create_invitation(CreateInvitationRequest {
            request_id: String::new(),
            organization: org.into(),
            invitation: Some(Invitation {
                email: email.into(),
                role: role.into(),
                ..Default::default()
            }),
        })
        .await
        .map(|r| r.into_inner())
}

async fn accept(
    t: &TestStack,
    token: &str,
    invitation: &str,
) -> Result<AcceptInvitationResponse, tonic::Status> {
    t.invitations_as(token)
        .accept_invitation(AcceptInvitationRequest {
            token: invitation.into(),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn the_member_lifecycle_through_an_invitation() {
    let t = TestStack::start().await;
    let owner = t.user("host").await;
    t.create_organization(&owner, "guild").await;
    let bob = t.user("bob").await;
    let eve = t.user("eve").await;

    let invited = invite(&t, &owner, "guild", "Bob@Example.com", "member")
        .await
        .unwrap();
    assert!(invited.token.starts_with("opi_"));
    let invitation = invited.invitation.unwrap();
    assert_eq!(invitation.email, "bob@example.com");
    assert_eq!(invitation.state(), InvitationState::Pending);
    let days = invitation.expire_time.unwrap().seconds - invitation.create_time.unwrap().seconds;
    assert_eq!(days, 7 * 24 * 3600, "7 days by default");
    expect_code(
        invite(&t, &owner, "guild", "bob@example.com", "member").await,
        Code::AlreadyExists,
    );
    let outbox = {
        use sea_orm::EntityTrait;
        orgplane_storage::outbox::Entity::find()
            .all(t.stack.organizations.db())
            .await
            .unwrap()
    };
    assert_eq!(outbox.len(), 1, "handed to the delivery outbox");
    assert!(outbox[0].payload.contains(&invited.token));

    expect_reason(
        accept(&t, &eve, &invited.token).await,
        Code::PermissionDenied,
        "EMAIL_MISMATCH",
    );
    let joined = accept(&t, &bob, &invited.token).await.unwrap();
    assert_eq!(joined.organization, "guild");
    assert_eq!(joined.member.unwrap().role, "member");
    expect_reason(
        accept(&t, &bob, &invited.token).await,
        Code::FailedPrecondition,
        "INVITATION_ACCEPTED",
    );

    // Promote, demote, remove.
    assert_eq!(
        t.set_member_role(&owner, "guild", "bob", "admin")
            .await
            .unwrap()
            .role,
        "admin"
    );
    assert_eq!(
        t.set_member_role(&owner, "guild", "bob", "viewer")
            .await
            .unwrap()
            .role,
        "viewer"
    );
    t.members_as(&owner)
        .remove_member(RemoveMemberRequest {
            organization: "guild".into(),
            user: "bob".into(),
        })
        .await
        .unwrap();
    expect_code(
        t.orgs_as(&bob)
            .get_organization(GetOrganizationRequest {
                organization: "guild".into(),
            })
            .await,
        Code::NotFound,
    );
    // The last owner cannot leave.
    expect_reason(
        t.members_as(&owner)
            .leave_organization(LeaveOrganizationRequest {
                organization: "guild".into(),
            })
            .await,
        Code::FailedPrecondition,
        "LAST_OWNER",
    );

    // Resend kills the old token; revoke kills the invitation.
    let first = invite(&t, &owner, "guild", "eve@example.com", "viewer")
        .await
        .unwrap();
    let uuid = first.invitation.unwrap().uuid;
    let resent = t
        .invitations_as(&owner)
        .resend_invitation(ResendInvitationRequest {
            organization: "guild".into(),
            invitation: uuid.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(resent.token, first.token);
    expect_code(accept(&t, &eve, &first.token).await, Code::NotFound);
    t.invitations_as(&owner)
        .revoke_invitation(RevokeInvitationRequest {
            organization: "guild".into(),
            invitation: uuid.clone(),
        })
        .await
        .unwrap();
    expect_reason(
        accept(&t, &eve, &resent.token).await,
        Code::FailedPrecondition,
        "INVITATION_REVOKED",
    );
    let listed = t
        .invitations_as(&owner)
        .list_invitations(ListInvitationsRequest {
            organization: "guild".into(),
            filter: "state:revoked".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1);
    assert_eq!(listed.invitations[0].uuid, uuid);

    // Bad input.
    let status = expect_code(
        invite(&t, &owner, "guild", "nope", "admiral").await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        ["invitation.email", "invitation.role"]
    );
    let status = expect_code(accept(&t, &bob, "").await, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["token"]);
    expect_code(accept(&t, &bob, "opi_forged").await, Code::NotFound);
    // Only owners invite owners.
    let manager = t.user("steward").await;
    t.add_member("guild", "steward", "manager").await;
    expect_reason(
        invite(&t, &manager, "guild", "x@example.com", "owner").await,
        Code::PermissionDenied,
        "OWNER_REQUIRED",
    );
}

#[tokio::test]
async fn open_organizations_admit_verified_emails_of_allowed_domains() {
    let t = TestStack::start().await;
    let owner = t.user("opener").await;
    t.create_organization(&owner, "open-house").await;
    let walker = t.user("walker").await;
    let join = |token: String| {
        let mut client = t.invitations_as(&token);
        async move {
            client
                .join_organization(JoinOrganizationRequest {
                    organization: "open-house".into(),
                })
                .await
        }
    };
    expect_code(join(walker.clone()).await, Code::NotFound);
    t.orgs_as(&owner)
        .update_organization_settings(UpdateOrganizationSettingsRequest {
            organization: "open-house".into(),
            settings: Some(OrganizationSettings {
                default_role: "viewer".into(),
                auth: Some(AuthSettings {
                    invite_only: false,
                    allowed_email_domains: vec!["example.com".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: mask(&[
                "default_role",
                "auth.invite_only",
                "auth.allowed_email_domains",
            ]),
        })
        .await
        .unwrap();
    expect_code(join(walker.clone()).await, Code::NotFound);
    // An identity provider (or a verification) marks the email verified.
    {
        use orgplane_identity::storage::users;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        users::Entity::update_many()
            .col_expr(users::Column::EmailVerified, Expr::value(true))
            .filter(users::Column::Username.eq("walker"))
            .exec(t.stack.identity.db())
            .await
            .unwrap();
    }
    // Admitted once the gateway's token cache sees the verified address.
    eventually(
        std::time::Duration::from_secs(6),
        "the verified address admits",
        || async { join(walker.clone()).await.is_ok() },
    )
    .await;
    let member = t
        .members_as(&owner)
        .get_member(GetMemberRequest {
            organization: "open-house".into(),
            user: "walker".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(member.role, "viewer", "the default role");
    expect_reason(
        join(walker).await,
        Code::FailedPrecondition,
        "ALREADY_MEMBER",
    );
}
