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
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

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

    // `total_size` (AIP-158): exact when asked, on every page; otherwise
    // exact at once up to 1,000 matches, and past that at most a second old.
    let first = ListQuery::new(700, "", "", "user");
    let page = orgs.list_members(&owner, "big", &first).await.unwrap();
    assert_eq!(page.total_size, 10_001, "the owner and 10,000 members");
    let later = ListQuery::new(700, &page.next_page_token, "", "user");
    let page = orgs.list_members(&owner, "big", &later).await.unwrap();
    assert_eq!(page.total_size, 10_001, "reused on a later page");
    let counted = first.clone().counting(true);
    let page = orgs.list_members(&owner, "big", &counted).await.unwrap();
    assert_eq!(page.total_size, 10_001, "asked");
    let second = ListQuery::new(700, &page.next_page_token, "", "user").counting(true);
    let page = orgs.list_members(&owner, "big", &second).await.unwrap();
    assert_eq!(page.total_size, 10_001, "counted on a later page too");
    let filtered = ListQuery::new(5, "", "name:m001", "user");
    let page = orgs.list_members(&owner, "big", &filtered).await.unwrap();
    assert_eq!(page.total_size, 100, "few matches: exact, m00100 to m00199");
    let whole = ListQuery::new(700, "", "name:m0001", "user");
    let page = orgs.list_members(&owner, "big", &whole).await.unwrap();
    assert_eq!(
        page.total_size, 10,
        "a page that is the whole list counts itself"
    );
    let few = |token: &str| ListQuery::new(60, token, "name:m001", "user");
    let first = orgs.list_members(&owner, "big", &few("")).await.unwrap();
    let page = orgs
        .list_members(&owner, "big", &few(&first.next_page_token))
        .await
        .unwrap();
    assert_eq!(
        (page.items.len(), page.total_size),
        (40, 100),
        "a later page"
    );
    // An empty page past the first (its rows gone meanwhile) has no row to
    // carry the count: it is counted on its own.
    add_members(orgs, &org.uuid, (0..10).map(|i| format!("x-{i}"))).await;
    let gone = |token: &str| ListQuery::new(5, token, "name:x-", "user");
    let first = orgs.list_members(&owner, "big", &gone("")).await.unwrap();
    assert_eq!(first.total_size, 10);
    members::Entity::delete_many()
        .filter(members::Column::Username.gte("x-5"))
        .exec(orgs.db())
        .await
        .unwrap();
    let page = orgs
        .list_members(&owner, "big", &gone(&first.next_page_token))
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.total_size), (0, 5), "an empty page");

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

/// Watchers filter what the process's one reader broadcasts in memory
/// (`Hidden::shows`), readers of the store in SQL (`Hidden::activities`):
/// both must show the same activities, checked over every combination of
/// what restrictions hide and what an activity names.
async fn hidden_activities_filter_the_same_in_memory_and_in_sql(db: &TestDatabase) {
    use orgplane_organizations::{domain::hidden::Hidden, storage::activities};
    use orgplane_platform::restriction::HiddenEntries;
    use sea_orm::QueryFilter;

    let orgs = Organizations::new(db.open::<Migrator>().await);
    let kinds = [
        "project",
        "model",
        "model_version",
        "component",
        "component_version",
        "agent",
    ];
    let names = ["bert", "gpt", ""];
    let parents = ["model/bert", "component/bert", "model/gpt", ""];
    let projects = ["core", "open", ""];
    let mut rows = Vec::new();
    for kind in kinds {
        for name in names {
            for parent in parents {
                for project in projects {
                    let seq = rows.len() as i64 + 1;
                    rows.push(activities::ActiveModel {
                        seq: Set(seq),
                        uuid: Set(format!("u{seq}")),
                        idempotency_key: Set(format!("k{seq}")),
                        organization_uuid: Set("org".into()),
                        actor: Set("a".into()),
                        action: Set("created".into()),
                        subject_kind: Set(kind.into()),
                        subject_name: Set(name.into()),
                        subject_uuid: Set(String::new()),
                        parent: Set(parent.into()),
                        project: Set(project.into()),
                        metadata: Set("{}".into()),
                        create_time: Set(seq),
                        record_time: Set(seq),
                    });
                }
            }
        }
    }
    activities::Entity::insert_many(rows)
        .exec(orgs.db())
        .await
        .unwrap();
    let all = activities::Entity::find().all(orgs.db()).await.unwrap();
    let entry_sets = [
        vec![],
        vec!["bert".to_string()],
        vec!["bert".into(), "gpt".into()],
    ];
    for projects in [vec![], vec!["core".to_string()]] {
        for model_registry in [false, true] {
            for component_hub in [false, true] {
                for models in &entry_sets {
                    for components in &entry_sets {
                        let hidden = Hidden {
                            projects: projects.clone(),
                            entries: HiddenEntries {
                                model_registry,
                                component_hub,
                                models: models.clone(),
                                components: components.clone(),
                            },
                            viewer: None,
                        };
                        let in_sql: HashSet<i64> = activities::Entity::find()
                            .filter(hidden.activities())
                            .all(orgs.db())
                            .await
                            .unwrap()
                            .into_iter()
                            .map(|a| a.seq)
                            .collect();
                        let in_memory: HashSet<i64> = all
                            .iter()
                            .filter(|a| hidden.shows(a))
                            .map(|a| a.seq)
                            .collect();
                        assert_eq!(in_memory, in_sql, "{hidden:?}");
                    }
                }
            }
        }
    }
}

/// `CreateProject` is group committed: creations arriving together share a
/// transaction. Each name is created once — a name taken before, or twice
/// in one batch, is `ALREADY_EXISTS` for that caller only — and every
/// project created has its one activity, none refused.
async fn concurrent_creations_each_commit_once_with_their_activity(db: &TestDatabase) {
    use orgplane_organizations::{domain::projects::ProjectFields, storage::projects};
    use orgplane_platform::Error;
    use orgplane_storage::activity::outbox;
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};

    let orgs = Organizations::new(db.open::<Migrator>().await);
    let owner = owner();
    orgs.create_organization(&owner, "busy", Profile::default())
        .await
        .unwrap();
    orgs.create_project(&owner, "busy", "taken", ProjectFields::default())
        .await
        .unwrap();
    // 200 distinct names, each asked for three times at once, and the name
    // taken before.
    let names: Vec<String> = (0..200).map(|i| format!("p{i:03}")).collect();
    let calls = names
        .iter()
        .flat_map(|name| [name.clone(), name.clone(), name.clone()])
        .chain(["taken".to_owned()])
        .map(|name| {
            let (orgs, owner) = (orgs.clone(), owner.clone());
            tokio::spawn(async move {
                let created = orgs
                    .create_project(&owner, "busy", &name, ProjectFields::default())
                    .await;
                (name, created)
            })
        })
        .collect::<Vec<_>>();
    let mut created = std::collections::HashMap::<String, usize>::new();
    for call in calls {
        let (name, result) = call.await.unwrap();
        match result {
            Ok(project) => {
                assert_eq!(project.name, name);
                *created.entry(name).or_default() += 1;
            }
            Err(Error::AlreadyExists { kind, name: taken }) => {
                assert_eq!((kind, taken.as_str()), ("project", name.as_str()));
            }
            Err(other) => panic!("{name}: {other}"),
        }
    }
    assert_eq!(created.len(), 200, "every new name created");
    assert!(created.values().all(|&n| n == 1), "each once: {created:?}");
    let stored = projects::Entity::find()
        .filter(projects::Column::Name.ne("taken"))
        .count(orgs.db())
        .await
        .unwrap();
    assert_eq!(stored, 200);
    let created_activities = outbox::Entity::find()
        .filter(outbox::Column::SubjectKind.eq("project"))
        .filter(outbox::Column::Action.eq("created"))
        .count(orgs.db())
        .await
        .unwrap();
    assert_eq!(created_activities, 201, "one each, \"taken\" included");
}

orgplane_e2e::on_both_databases!(
    database:
    concurrent_creations_each_commit_once_with_their_activity,
    hidden_activities_filter_the_same_in_memory_and_in_sql,
    deleted_organizations_are_purged_with_what_they_own,
    ten_thousand_members_page_without_duplicates_or_gaps,
);
