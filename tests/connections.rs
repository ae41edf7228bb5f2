//! Connections end to end through the gateway: kinds and their required
//! fields, credentials only by secret name, role matrix, tenant isolation,
//! bad input; storage on SQLite and PostgreSQL.

use orgplane_e2e::{TestStack, check_role_matrix, expect_code, expect_reason, violated_fields};
use orgplane_platform::authz::Permission;
use orgplane_proto::agents::*;
use prost_types::{FieldMask, Struct, Value, value::Kind};
use tonic::Code;

fn schema(fields: &[(&str, &str)]) -> Option<Struct> {
    Some(Struct {
        fields: fields
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    Value {
                        kind: Some(Kind::StringValue((*v).to_owned())),
                    },
                )
            })
            .collect(),
    })
}

fn connection(name: &str, kind: &str, fields: &[(&str, &str)]) -> Option<Connection> {
    Some(Connection {
        name: name.into(),
        kind: kind.into(),
        schema: schema(fields),
        secret: "s3-credentials".into(),
        tags: vec!["storage".into()],
        ..Default::default()
    })
}

async fn create(
    t: &TestStack,
    token: &str,
    org: &str,
    c: Option<Connection>,
) -> Result<Connection, tonic::Status> {
    t.connections_as(token)
        .create_connection(CreateConnectionRequest {
            request_id: String::new(),
            organization: org.into(),
            connection: c,
        })
        .await
        .map(|r| r.into_inner().connection.unwrap())
}

async fn a_connection_from_creation_to_deletion(t: &TestStack) {
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let created = create(
        t,
        &owner,
        "acme",
        connection("datasets", "s3", &[("bucket", "s3://acme-data")]),
    )
    .await
    .unwrap();
    assert_eq!(created.kind, "s3");
    assert_eq!(created.secret, "s3-credentials");
    create(
        t,
        &owner,
        "acme",
        connection("code", "git", &[("url", "https://github.com/acme/ml")]),
    )
    .await
    .unwrap();
    create(
        t,
        &owner,
        "acme",
        connection(
            "scratch",
            "host_path",
            &[("host_path", "/data"), ("mount_path", "/mnt/data")],
        ),
    )
    .await
    .unwrap();
    let mut connections = t.connections_as(&owner);
    let listed = connections
        .list_connections(ListConnectionsRequest {
            organization: "acme".into(),
            filter: "kind:s3".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1);
    assert_eq!(listed.connections[0].name, "datasets");
    let page = connections
        .list_connections(ListConnectionsRequest {
            organization: "acme".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = page.connections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["code", "datasets"]);
    assert_eq!(page.total_size, 3);
    let updated = connections
        .update_connection(UpdateConnectionRequest {
            organization: "acme".into(),
            connection: Some(Connection {
                name: "datasets".into(),
                schema: schema(&[("bucket", "s3://acme-data-v2")]),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["schema".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .connection
        .unwrap();
    assert_ne!(updated.etag, created.etag);
    expect_reason(
        connections
            .update_connection(UpdateConnectionRequest {
                organization: "acme".into(),
                connection: Some(Connection {
                    name: "datasets".into(),
                    description: "lost update".into(),
                    etag: created.etag,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["description".into()],
                }),
            })
            .await,
        Code::Aborted,
        "STALE_ETAG",
    );
    connections
        .delete_connection(DeleteConnectionRequest {
            organization: "acme".into(),
            connection: "datasets".into(),
        })
        .await
        .unwrap();
    expect_code(
        connections
            .get_connection(GetConnectionRequest {
                organization: "acme".into(),
                connection: "datasets".into(),
            })
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn each_kind_is_validated_and_credentials_go_in_secrets() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    for (c, field) in [
        (connection("x", "ftp", &[]), "connection.kind"),
        (connection("x", "s3", &[]), "connection.schema"),
        (
            connection("x", "gcs", &[("bucket", "s3://wrong-cloud")]),
            "connection.schema",
        ),
        (
            connection("x", "volume_claim", &[("volume_claim", "data")]),
            "connection.schema",
        ),
        (
            connection(
                "x",
                "s3",
                &[("bucket", "s3://b"), ("secret_access_key", "hunter2")],
            ),
            "connection.schema",
        ),
        (connection("Not A Slug", "custom", &[]), "connection.name"),
        (
            Some(Connection {
                name: "x".into(),
                kind: "custom".into(),
                secret: "Bad_Secret".into(),
                ..Default::default()
            }),
            "connection.secret",
        ),
        (None, "connection"),
    ] {
        let status = expect_code(
            create(&t, &owner, "acme", c.clone()).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), [field], "{c:?}");
    }
    create(&t, &owner, "acme", connection("x", "custom", &[]))
        .await
        .unwrap();
    expect_code(
        create(&t, &owner, "acme", connection("x", "custom", &[])).await,
        Code::AlreadyExists,
    );
    let status = expect_code(
        t.connections_as(&owner)
            .update_connection(UpdateConnectionRequest {
                organization: "acme".into(),
                connection: Some(Connection {
                    name: "x".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["kind".into()],
                }),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["update_mask"]);
    let status = expect_code(
        t.connections_as(&owner)
            .list_connections(ListConnectionsRequest {
                organization: "acme".into(),
                order_by: "colour".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["order_by"]);
    let status = expect_code(
        t.connections_as(&owner)
            .get_connection(GetConnectionRequest {
                organization: "acme".into(),
                connection: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["connection"]);
}

/// The RPCs with their permission and what an authorized call answers, on
/// an organization with connection `c`.
const RPCS: &[(&str, Permission, Code)] = &[
    (
        "CreateConnection",
        Permission::AgentsManage,
        Code::InvalidArgument,
    ),
    ("GetConnection", Permission::AgentsRead, Code::Ok),
    ("ListConnections", Permission::AgentsRead, Code::Ok),
    (
        "UpdateConnection",
        Permission::AgentsManage,
        Code::InvalidArgument,
    ),
    ("DeleteConnection", Permission::AgentsManage, Code::NotFound),
];

async fn call(t: &TestStack, token: &str, org: &str, rpc: &str) -> Code {
    let mut c = t.connections_as(token);
    let o = org.to_owned();
    let result = match rpc {
        "CreateConnection" => c
            .create_connection(CreateConnectionRequest {
                request_id: String::new(),
                organization: o,
                connection: connection("new", "s3", &[]),
            })
            .await
            .map(|_| ()),
        "GetConnection" => c
            .get_connection(GetConnectionRequest {
                organization: o,
                connection: "c".into(),
            })
            .await
            .map(|_| ()),
        "ListConnections" => c
            .list_connections(ListConnectionsRequest {
                organization: o,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "UpdateConnection" => c
            .update_connection(UpdateConnectionRequest {
                organization: o,
                connection: Some(Connection {
                    name: "c".into(),
                    secret: "Bad_Secret".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["secret".into()],
                }),
            })
            .await
            .map(|_| ()),
        "DeleteConnection" => c
            .delete_connection(DeleteConnectionRequest {
                organization: o,
                connection: "never-made".into(),
            })
            .await
            .map(|_| ()),
        other => panic!("no call for {other}"),
    };
    result.err().map_or(Code::Ok, |s| s.code())
}

#[tokio::test]
async fn role_matrix_and_tenant_isolation() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    create(&t, &owner, "acme", connection("c", "custom", &[]))
        .await
        .unwrap();
    let mut callers = t.role_callers("acme", owner).await;
    let foreigner = t.user("foreigner").await;
    t.create_organization(&foreigner, "elsewhere").await;
    create(&t, &foreigner, "elsewhere", connection("c", "custom", &[]))
        .await
        .unwrap();
    callers.push((None, foreigner.clone()));
    check_role_matrix(RPCS, &callers, "acme", &foreigner, |token, org, rpc| {
        let t = &t;
        async move { call(t, &token, &org, rpc).await }
    })
    .await;
}

orgplane_e2e::on_both_databases!(a_connection_from_creation_to_deletion,);
