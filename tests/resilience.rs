//! What clients see when something under the control plane fails: a
//! database that drops its connections (a PostgreSQL restart, a network
//! failure) is answered `UNAVAILABLE`, which clients retry, never
//! `INTERNAL`, and loses nothing it acknowledged.

use std::{
    collections::BTreeSet,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use orgplane_e2e::TestStack;
use orgplane_proto::organizations::{CreateProjectRequest, ListProjectsRequest, Project};
use tonic::Code;

/// Writers creating projects while the stack's database connections are
/// terminated again and again: every call succeeds or is `UNAVAILABLE`, and
/// every acknowledged project is there afterwards.
#[tokio::test]
async fn dropped_database_connections_are_unavailable_and_lose_nothing() {
    let Some(t) = TestStack::start_on_postgres().await else {
        return;
    };
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let writing = AtomicBool::new(true);
    let writer = |id: usize| {
        let (t, owner, writing) = (&t, &owner, &writing);
        async move {
            let mut projects = t.projects_as(owner);
            let (mut acknowledged, mut failures) = (Vec::new(), Vec::new());
            let mut n = 0;
            while writing.load(Ordering::Relaxed) {
                let name = format!("p{id}-{n}");
                n += 1;
                let created = projects
                    .create_project(CreateProjectRequest {
                        organization: "acme".into(),
                        project: Some(Project {
                            name: name.clone(),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    })
                    .await;
                match created {
                    Ok(_) => acknowledged.push(name),
                    Err(status) => failures.push(status),
                }
            }
            (acknowledged, failures)
        }
    };
    let chaos = async {
        let mut terminated = 0;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            terminated += t.drop_database_connections().await;
        }
        writing.store(false, Ordering::Relaxed);
        terminated
    };
    let (terminated, results) = tokio::join!(chaos, futures::future::join_all((0..4).map(writer)));
    assert!(terminated > 0, "the stack's connections were dropped");

    let mut acknowledged = BTreeSet::new();
    for (names, failures) in results {
        acknowledged.extend(names);
        for status in failures {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        }
    }
    assert!(
        !acknowledged.is_empty(),
        "writes went through between drops"
    );

    // Nothing acknowledged was lost, and the service works on.
    let mut listed = BTreeSet::new();
    let mut page_token = String::new();
    loop {
        let page = t
            .projects_as(&owner)
            .list_projects(ListProjectsRequest {
                organization: "acme".into(),
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list after the drops")
            .into_inner();
        listed.extend(page.projects.into_iter().map(|p| p.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let lost: Vec<_> = acknowledged.difference(&listed).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    t.drop_schemas().await;
}
