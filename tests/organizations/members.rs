//! Members of an organization end to end: lists with filters and order,
//! roles under the owner invariants, concurrent demotions.

use orgplane_e2e::{TestStack, expect_code, expect_reason, mask};
use orgplane_organizations::domain::members::MemberChanges;
use orgplane_proto::organizations::*;
use orgplane_storage::page::ListQuery;
use tonic::Code;

#[tokio::test]
async fn members_are_listed_with_filters_and_order() {
    let t = TestStack::start().await;
    let owner = t.user("boss").await;
    t.create_organization(&owner, "crew").await;
    for (name, role) in [
        ("amy", "viewer"),
        ("bob", "member"),
        ("cat", "member"),
        ("dan", "admin"),
    ] {
        t.user(name).await;
        t.add_member("crew", name, role).await;
    }
    let page = t
        .members_as(&owner)
        .list_members(ListMembersRequest {
            organization: "crew".into(),
            filter: "role:member".into(),
            order_by: "user desc".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = page.members.iter().map(|m| m.user.as_str()).collect();
    assert_eq!(names, ["cat", "bob"]);
    assert_eq!(page.total_size, 2);
    let member = t
        .members_as(&owner)
        .get_member(GetMemberRequest {
            organization: "crew".into(),
            user: "dan".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(member.role, "admin");
    expect_code(
        t.members_as(&owner)
            .get_member(GetMemberRequest {
                organization: "crew".into(),
                user: "zoe".into(),
            })
            .await,
        Code::NotFound,
    );
}

async fn the_member_lifecycle_keeps_its_invariants(t: &TestStack) {
    let owner = t.user("founder").await;
    t.create_organization(&owner, "lifecycle").await;
    let manager = t.user("mgr").await;
    t.add_member("lifecycle", "mgr", "manager").await;
    let newbie = t.user("newbie").await;
    t.add_member("lifecycle", "newbie", "member").await;

    // The last owner cannot leave or be demoted.
    expect_reason(
        t.members_as(&owner)
            .leave_organization(LeaveOrganizationRequest {
                organization: "lifecycle".into(),
            })
            .await,
        Code::FailedPrecondition,
        "LAST_OWNER",
    );
    expect_reason(
        t.set_member_role(&owner, "lifecycle", "founder", "admin")
            .await,
        Code::FailedPrecondition,
        "LAST_OWNER",
    );
    // Nobody raises their own role; managers never touch owners.
    expect_reason(
        t.set_member_role(&manager, "lifecycle", "mgr", "owner")
            .await,
        Code::PermissionDenied,
        "SELF_ELEVATION",
    );
    expect_reason(
        t.set_member_role(&manager, "lifecycle", "newbie", "owner")
            .await,
        Code::PermissionDenied,
        "OWNER_REQUIRED",
    );
    expect_reason(
        t.members_as(&manager)
            .remove_member(RemoveMemberRequest {
                organization: "lifecycle".into(),
                user: "founder".into(),
            })
            .await,
        Code::PermissionDenied,
        "OWNER_REQUIRED",
    );
    // Promote, demote, and a manager manages non-owners.
    assert_eq!(
        t.set_member_role(&manager, "lifecycle", "newbie", "admin")
            .await
            .unwrap()
            .role,
        "admin"
    );
    assert_eq!(
        t.set_member_role(&owner, "lifecycle", "newbie", "owner")
            .await
            .unwrap()
            .role,
        "owner"
    );
    assert_eq!(
        t.set_member_role(&owner, "lifecycle", "newbie", "viewer")
            .await
            .unwrap()
            .role,
        "viewer"
    );
    expect_code(
        t.orgs_as(&newbie)
            .update_organization(UpdateOrganizationRequest {
                organization: Some(Organization {
                    name: "lifecycle".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["description"]),
            })
            .await,
        Code::PermissionDenied,
    );
    // Lowering one's own role is allowed.
    assert_eq!(
        t.set_member_role(&manager, "lifecycle", "mgr", "admin")
            .await
            .unwrap()
            .role,
        "admin"
    );
    // Remove, then the removed user no longer sees the organization.
    t.members_as(&owner)
        .remove_member(RemoveMemberRequest {
            organization: "lifecycle".into(),
            user: "newbie".into(),
        })
        .await
        .unwrap();
    expect_code(
        t.orgs_as(&newbie)
            .get_organization(GetOrganizationRequest {
                organization: "lifecycle".into(),
            })
            .await,
        Code::NotFound,
    );
    // With a second owner, the first may leave.
    t.set_member_role(&owner, "lifecycle", "mgr", "owner")
        .await
        .unwrap();
    t.members_as(&owner)
        .leave_organization(LeaveOrganizationRequest {
            organization: "lifecycle".into(),
        })
        .await
        .unwrap();
    expect_code(
        t.orgs_as(&owner)
            .get_organization(GetOrganizationRequest {
                organization: "lifecycle".into(),
            })
            .await,
        Code::NotFound,
    );
}

/// Two owners demote each other at once: one owner is left.
async fn two_owners_demoting_each_other_at_once_leave_one_owner(t: &TestStack) {
    let first = t.user("first").await;
    t.create_organization(&first, "duel").await;
    let second = t.user("second").await;
    t.add_member("duel", "second", "owner").await;
    let principal = |token: String| {
        let identity = t.stack.identity.clone();
        async move {
            identity
                .introspect(&token)
                .await
                .unwrap()
                .unwrap()
                .principal
        }
    };
    let (p1, p2) = (principal(first).await, principal(second).await);
    let orgs = &t.stack.organizations;
    for round in 0..20 {
        // Straight at the domain, so both transactions overlap as much as
        // the database lets them.
        let (a, b) = tokio::join!(
            orgs.update_member(&p1, "duel", "second", MemberChanges::role("admin")),
            orgs.update_member(&p2, "duel", "first", MemberChanges::role("admin")),
        );
        assert!(
            a.is_ok() != b.is_ok(),
            "round {round}: exactly one demotion wins: {a:?} {b:?}"
        );
        let owners = orgs
            .list_members(&p1, "duel", &ListQuery::new(10, "", "role:owner", ""))
            .await
            .or(orgs
                .list_members(&p2, "duel", &ListQuery::new(10, "", "role:owner", ""))
                .await)
            .unwrap()
            .total_size;
        assert_eq!(owners, 1, "round {round}: exactly one owner remains");
        let (winner, loser) = if a.is_ok() {
            (&p1, "second")
        } else {
            (&p2, "first")
        };
        orgs.update_member(winner, "duel", loser, MemberChanges::role("owner"))
            .await
            .unwrap();
    }
}

orgplane_e2e::on_both_databases!(
    two_owners_demoting_each_other_at_once_leave_one_owner,
    the_member_lifecycle_keeps_its_invariants,
);
