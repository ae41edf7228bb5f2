//! The organizations service's storage on SQLite and on PostgreSQL: keyset
//! pagination over 10,000 members stays in order, without duplicates or
//! gaps, while members join between pages; deleted organizations are purged
//! with what they own.

use orgplane_storage::page::ListQuery;
use std::collections::HashSet;

use orgplane_e2e::TestDatabase;
use orgplane_organizations::{
    Migrator, Organizations, domain::organizations::Profile, storage::members,
};
use orgplane_platform::principal::{Principal, PrincipalKind};
use sea_orm::{EntityTrait, Set};

fn owner() -> Principal {
    Principal {
        kind: PrincipalKind::User,
        uuid: uuid::Uuid::now_v7().to_string(),
        name: "owner".into(),
        scopes: vec!["*".into()],
        instance_admin: false,
        token_uuid: String::new(),
        organization: None,
        email: String::new(),
        email_verified: false,
        role: None,
        organization_uuid: None,
        auth_method: String::new(),
    }
}

async fn add_members(orgs: &Organizations, org_uuid: &str, names: impl Iterator<Item = String>) {
    let rows: Vec<members::ActiveModel> = names
        .map(|name| members::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            organization_uuid: Set(org_uuid.to_owned()),
            user_uuid: Set(uuid::Uuid::now_v7().to_string()),
            username: Set(name),
            role: Set("member".into()),
            version: Set(1),
            create_time: Set(1),
            update_time: Set(1),
        })
        .collect();
    for chunk in rows.chunks(500) {
        members::Entity::insert_many(chunk.to_vec())
            .exec(orgs.db())
            .await
            .unwrap();
    }
}

async fn ten_thousand_members_page_without_duplicates_or_gaps(db: &TestDatabase) {
    let orgs = &Organizations::new(db.open::<Migrator>().await);
    let owner = owner();
    let org = orgs
        .create_organization(&owner, "big", Profile::default())
        .await
        .unwrap()
        .organization;
    let originals: Vec<String> = (0..10_000).map(|i| format!("m{i:05}")).collect();
    add_members(orgs, &org.uuid, originals.iter().cloned()).await;

    let mut seen: Vec<String> = Vec::new();
    let mut token = String::new();
    let mut page_number = 0;
    loop {
        let page = orgs
            .list_members(&owner, "big", &ListQuery::new(700, &token, "", "user"))
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|m| m.username));
        // Members join between pages, before and after the cursor.
        add_members(
            orgs,
            &org.uuid,
            [
                format!("a-late-{page_number}"),
                format!("z-late-{page_number}"),
            ]
            .into_iter(),
        )
        .await;
        page_number += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "a stable, strict order"
    );
    for name in &originals {
        assert!(unique.contains(name), "gap: {name} missing");
    }
    assert!(seen.contains(&"owner".to_string()));
    assert!(
        seen.iter().any(|n| n.starts_with("z-late-")),
        "rows inserted after the cursor are seen"
    );
}

async fn deleted_organizations_are_purged_with_what_they_own(db: &TestDatabase) {
    let orgs = &Organizations::new(db.open::<Migrator>().await);
    use orgplane_organizations::storage::organizations;
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    let owner = owner();
    let org = orgs
        .create_organization(&owner, "doomed", Profile::default())
        .await
        .unwrap()
        .organization;
    orgs.create_organization(&owner, "kept", Profile::default())
        .await
        .unwrap();
    orgs.delete_organization(&owner, "doomed", "doomed", "")
        .await
        .unwrap();
    let now = orgplane_platform::time::now_micros();
    assert_eq!(
        orgs.purge_deleted(now - 60_000_000).await.unwrap(),
        0,
        "within its grace period"
    );
    assert_eq!(orgs.purge_deleted(now + 1).await.unwrap(), 1);
    let left = members::Entity::find()
        .filter(members::Column::OrganizationUuid.eq(org.uuid.as_str()))
        .count(orgs.db())
        .await
        .unwrap();
    assert_eq!(left, 0, "its members went with it");
    assert_eq!(
        organizations::Entity::find()
            .count(orgs.db())
            .await
            .unwrap(),
        1,
        "others stay"
    );
    orgs.create_organization(&owner, "doomed", Profile::default())
        .await
        .expect("the name is free again");
}

orgplane_e2e::on_both_databases!(
    database:
    deleted_organizations_are_purged_with_what_they_own,
    ten_thousand_members_page_without_duplicates_or_gaps,
);
