//! A request fuzzer over every method of every public service (issue 15,
//! item 3). Requests are built from the descriptor set the servers serve —
//! empty, each field at the extremes of its type (maximal lengths, extreme
//! numbers, negative durations, timestamps at and past both protobuf
//! limits, invalid UTF-8 in bytes fields, deep and wide `Struct`s, huge
//! repeated fields up to the message limit), all fields at once — and sent
//! through the gateway as the authenticated owner of a furnished
//! organization, so that they reach the services' rules and not only the
//! permission checks.
//!
//! Pass: no call answers `INTERNAL`, `UNKNOWN` or `DEADLINE_EXCEEDED`;
//! after each method the gateway's health check and one read through each
//! backend answer; the process (the whole control plane runs in it) stays
//! under 300 MB resident. The count of calls is printed.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use bytes::{Buf, BufMut, Bytes};
use orgplane_e2e::TestStack;
use orgplane_proto::{
    agents as ag_pb, identity as id_pb, organizations as org_pb, prost::Message, registry as reg_pb,
};
use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorSet, MethodDescriptorProto,
    field_descriptor_proto::{Label, Type},
};
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Most resident memory allowed, in bytes.
const RSS_LIMIT: u64 = 300 * 1024 * 1024;
/// The servers' largest request (tonic's default decoding limit).
const MESSAGE_LIMIT: usize = 4 * 1024 * 1024;
/// How long a call may take before the fuzzer gives up on it (a server
/// answers well before: the gateway's default deadline is 30 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

// ---- Raw calls: bytes in, bytes out ----

/// A codec that sends prepared bytes and keeps the answer's.
#[derive(Debug, Clone, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Self::Encoder {
        Raw
    }

    fn decoder(&mut self) -> Self::Decoder {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Calls `path` with `body` as `token`; the answer's code (`Ok` for a
/// stream that answered or stayed open for a second).
async fn call(gateway: &Channel, token: &str, path: &str, body: Bytes, streaming: bool) -> Code {
    answer(gateway, token, path, body, streaming).await.code()
}

/// As [`call`], the whole status.
async fn answer(
    gateway: &Channel,
    token: &str,
    path: &str,
    body: Bytes,
    streaming: bool,
) -> Status {
    let mut grpc = tonic::client::Grpc::new(gateway.clone())
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
    if let Err(err) = grpc.ready().await {
        panic!("the gateway is not ready: {err}");
    }
    let mut request = tonic::Request::new(body);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let path = http::uri::PathAndQuery::try_from(path).unwrap();
    let outcome = async {
        if streaming {
            match grpc.server_streaming(request, path, Raw).await {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    match tokio::time::timeout(Duration::from_secs(1), stream.message()).await {
                        Ok(Ok(_)) | Err(_) => Status::ok(""),
                        Ok(Err(status)) => status,
                    }
                }
                Err(status) => status,
            }
        } else {
            match grpc.unary(request, path, Raw).await {
                Ok(_) => Status::ok(""),
                Err(status) => status,
            }
        }
    };
    tokio::time::timeout(CALL_TIMEOUT, outcome)
        .await
        .unwrap_or_else(|_| Status::deadline_exceeded("no answer from the gateway"))
}

// ---- Protobuf encoding from descriptors ----

/// A value on the wire.
#[derive(Debug, Clone)]
enum Wire {
    Varint(u64),
    Fixed32(u32),
    Fixed64(u64),
    Len(Vec<u8>),
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A message as `(field number, value)` pairs, in order.
#[derive(Debug, Clone, Default)]
struct Msg(Vec<(i32, Wire)>);

impl Msg {
    fn push(&mut self, number: i32, value: Wire) {
        self.0.push((number, value));
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (number, value) in &self.0 {
            let (wire_type, body) = match value {
                Wire::Varint(_) => (0, None),
                Wire::Fixed64(_) => (1, None),
                Wire::Len(bytes) => (2, Some(bytes)),
                Wire::Fixed32(_) => (5, None),
            };
            put_varint(&mut out, ((*number as u64) << 3) | wire_type);
            match value {
                Wire::Varint(v) => put_varint(&mut out, *v),
                Wire::Fixed64(v) => out.extend_from_slice(&v.to_le_bytes()),
                Wire::Fixed32(v) => out.extend_from_slice(&v.to_le_bytes()),
                Wire::Len(_) => {
                    let bytes = body.unwrap();
                    put_varint(&mut out, bytes.len() as u64);
                    out.extend_from_slice(bytes);
                }
            }
        }
        out
    }
}

/// The messages of the descriptor set by full name (`.pkg.Outer.Inner`).
struct Schema<'a> {
    messages: HashMap<String, &'a DescriptorProto>,
}

impl<'a> Schema<'a> {
    fn new(set: &'a FileDescriptorSet) -> Self {
        fn add<'a>(
            prefix: &str,
            message: &'a DescriptorProto,
            into: &mut HashMap<String, &'a DescriptorProto>,
        ) {
            let name = format!("{prefix}.{}", message.name());
            for nested in &message.nested_type {
                add(&name, nested, into);
            }
            into.insert(name, message);
        }
        let mut messages = HashMap::new();
        for file in &set.file {
            for message in &file.message_type {
                add(&format!(".{}", file.package()), message, &mut messages);
            }
        }
        Self { messages }
    }

    fn message(&self, name: &str) -> &'a DescriptorProto {
        self.messages
            .get(name)
            .unwrap_or_else(|| panic!("no message {name}"))
    }
}

const TIMESTAMP: &str = ".google.protobuf.Timestamp";
const DURATION: &str = ".google.protobuf.Duration";
const STRUCT: &str = ".google.protobuf.Struct";
const VALUE: &str = ".google.protobuf.Value";
const FIELD_MASK: &str = ".google.protobuf.FieldMask";

/// Extreme values of a scalar field.
fn scalar_extremes(field: &FieldDescriptorProto) -> Vec<Wire> {
    let varints = |values: &[i64]| values.iter().map(|v| Wire::Varint(*v as u64)).collect();
    match field.r#type() {
        Type::String => [
            String::new(),
            "x".repeat(1_000_000),
            "../../../../etc/passwd".into(),
            "' OR 1=1; DROP TABLE runs; --".into(),
            "\u{0}\u{202e}\u{feff}名前🚀".into(),
            "*".into(),
            "%_\\".into(),
            "a/b/c/d".into(),
            "status:queued AND queue:box/q".into(),
            "-1".into(),
        ]
        .into_iter()
        .map(|s| Wire::Len(s.into_bytes()))
        .collect(),
        Type::Bytes => vec![
            Wire::Len(vec![0xff, 0xfe, 0xfd, 0x80, 0x00]),
            Wire::Len(vec![0xc3; 1_000_000]),
            Wire::Len(Vec::new()),
        ],
        Type::Bool => vec![Wire::Varint(1), Wire::Varint(u64::MAX)],
        Type::Enum => varints(&[1, 2, 3, 99, -1, i32::MAX as i64]),
        Type::Int32 | Type::Sint32 | Type::Uint32 => varints(&[
            -1,
            i32::MIN as i64,
            i32::MAX as i64,
            u32::MAX as i64,
            1_000_000_000,
        ]),
        Type::Int64 | Type::Sint64 | Type::Uint64 => {
            varints(&[-1, i64::MIN, i64::MAX, 1 << 53, 1_000_000_000_000])
        }
        Type::Double => [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e308,
            -1e308,
            -0.0,
        ]
        .iter()
        .map(|v| Wire::Fixed64(v.to_bits()))
        .collect(),
        Type::Float => [f32::NAN, f32::INFINITY, f32::MIN, f32::MAX]
            .iter()
            .map(|v| Wire::Fixed32(v.to_bits()))
            .collect(),
        Type::Fixed32 | Type::Sfixed32 => vec![Wire::Fixed32(u32::MAX), Wire::Fixed32(0x8000_0000)],
        Type::Fixed64 | Type::Sfixed64 => vec![Wire::Fixed64(u64::MAX), Wire::Fixed64(1 << 63)],
        Type::Group | Type::Message => Vec::new(),
    }
}

/// `seconds`/`nanos` pairs at and past the protobuf limits.
fn time_extremes(duration: bool) -> Vec<Vec<u8>> {
    let pairs: &[(i64, i32)] = if duration {
        &[
            (-1, 0),
            (0, -1),
            (-315_576_000_000, -999_999_999),
            (315_576_000_000, 999_999_999),
            (315_576_000_001, 0),
            (i64::MAX, i32::MAX),
            (i64::MIN, i32::MIN),
            (1, -1),
        ]
    } else {
        &[
            (-62_135_596_800, 0),
            (253_402_300_799, 999_999_999),
            (-62_135_596_801, 0),
            (253_402_300_800, 0),
            (i64::MAX, i32::MAX),
            (i64::MIN, -1),
            (0, 1_000_000_000),
        ]
    };
    pairs
        .iter()
        .map(|(seconds, nanos)| {
            let mut m = Msg::default();
            m.push(1, Wire::Varint(*seconds as u64));
            m.push(2, Wire::Varint(*nanos as i64 as u64));
            m.encode()
        })
        .collect()
}

/// A `Struct` nested `depth` levels deep.
fn deep_struct(depth: usize) -> Vec<u8> {
    let mut inner = Msg::default().encode();
    for _ in 0..depth {
        let mut value = Msg::default();
        value.push(5, Wire::Len(inner)); // Value.struct_value
        let mut entry = Msg::default();
        entry.push(1, Wire::Len(b"k".to_vec()));
        entry.push(2, Wire::Len(value.encode()));
        let mut s = Msg::default();
        s.push(1, Wire::Len(entry.encode()));
        inner = s.encode();
    }
    inner
}

/// A `Struct` of `n` fields, numbers and strings.
fn wide_struct(n: usize) -> Vec<u8> {
    let mut s = Msg::default();
    for i in 0..n {
        let mut value = Msg::default();
        if i % 2 == 0 {
            value.push(2, Wire::Fixed64(f64::NAN.to_bits()));
        } else {
            value.push(3, Wire::Len(format!("v{i}").into_bytes()));
        }
        let mut entry = Msg::default();
        entry.push(1, Wire::Len(format!("key{i}").into_bytes()));
        entry.push(2, Wire::Len(value.encode()));
        s.push(1, Wire::Len(entry.encode()));
    }
    s.encode()
}

/// Extreme encodings of a message-typed field.
fn message_extremes(schema: &Schema<'_>, type_name: &str) -> Vec<Vec<u8>> {
    match type_name {
        TIMESTAMP => time_extremes(false),
        DURATION => time_extremes(true),
        STRUCT => vec![deep_struct(64), deep_struct(150), wide_struct(50_000)],
        VALUE => {
            let mut v = Msg::default();
            v.push(5, Wire::Len(deep_struct(90)));
            vec![v.encode()]
        }
        FIELD_MASK => {
            let mut many = Msg::default();
            for i in 0..10_000 {
                many.push(1, Wire::Len(format!("path_{i}.x").into_bytes()));
            }
            let mut odd = Msg::default();
            for path in ["*", "", "..", "name.", "etag", "uuid", "create_time"] {
                odd.push(1, Wire::Len(path.as_bytes().to_vec()));
            }
            vec![many.encode(), odd.encode()]
        }
        _ => {
            // Every field of the nested message at its first extreme, and
            // the nested message with only its strings maximal.
            let nested = schema.message(type_name);
            let mut all = Msg::default();
            for f in &nested.field {
                if let Some(v) = extremes(schema, f, 1).into_iter().next() {
                    all.push(f.number(), v);
                }
            }
            vec![Msg::default().encode(), all.encode()]
        }
    }
}

/// Extreme values of `field` (for messages, `depth` bounds the nesting).
fn extremes(schema: &Schema<'_>, field: &FieldDescriptorProto, depth: usize) -> Vec<Wire> {
    if field.r#type() == Type::Message {
        if depth == 0 {
            return vec![Wire::Len(Vec::new())];
        }
        return message_extremes(schema, field.type_name())
            .into_iter()
            .map(Wire::Len)
            .collect();
    }
    scalar_extremes(field)
}

/// A plausible value for a field, by name: the furnished organization's
/// entities, so that calls get past "not found" into the services' rules.
fn plausible(field: &FieldDescriptorProto, service: &str) -> Option<Wire> {
    let text = |s: &str| Some(Wire::Len(s.as_bytes().to_vec()));
    match (field.r#type(), field.name()) {
        (Type::String, "organization") => text("acme"),
        (Type::String, "project") => text("vision"),
        (Type::String, "agent") => text("box"),
        (Type::String, "queue") if service.ends_with("RunService") => text("box/q"),
        (Type::String, "queue") => text("q"),
        (Type::String, "model") => text("resnet"),
        (Type::String, "component") => text("trainer"),
        (Type::String, "team") => text("ml"),
        (Type::String, "connection") => text("data"),
        (Type::String, "service_account") => text("nightly"),
        (Type::String, "version") => text("v1"),
        (Type::String, "user" | "username" | "member") => text("bob"),
        (Type::String, "name") => text("fuzzed"),
        _ => None,
    }
}

/// The requests sent to one method.
fn requests(schema: &Schema<'_>, service: &str, method: &MethodDescriptorProto) -> Vec<Vec<u8>> {
    let input = schema.message(method.input_type());
    let mut base = Msg::default();
    for f in &input.field {
        if let Some(v) = plausible(f, service) {
            base.push(f.number(), v);
        }
    }
    let mut out = vec![Vec::new(), base.encode()];
    // Each field at each of its extremes, the others plausible.
    for f in &input.field {
        for v in extremes(schema, f, 2) {
            let mut m = Msg(base
                .0
                .iter()
                .filter(|(n, _)| *n != f.number())
                .cloned()
                .collect());
            m.push(f.number(), v);
            out.push(m.encode());
        }
    }
    // Every field at its second extreme at once.
    let mut all = Msg::default();
    for f in &input.field {
        let values = extremes(schema, f, 2);
        if let Some(v) = values.get(1).or(values.first()) {
            all.push(f.number(), v.clone());
        }
    }
    out.push(all.encode());
    // Each repeated field filled up to the message limit.
    for f in input.field.iter().filter(|f| f.label() == Label::Repeated) {
        let item = match f.r#type() {
            Type::Message => Wire::Len(Msg::default().encode()),
            Type::String | Type::Bytes => Wire::Len(b"item-0123456789".to_vec()),
            _ => Wire::Varint(7),
        };
        let mut m = Msg(base
            .0
            .iter()
            .filter(|(n, _)| *n != f.number())
            .cloned()
            .collect());
        let one = Msg(vec![(f.number(), item.clone())]).encode().len();
        for _ in 0..(MESSAGE_LIMIT - 1024) / one {
            m.push(f.number(), item.clone());
        }
        out.push(m.encode());
    }
    out
}

// ---- The run ----

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The owner's organization `acme` with one of everything the requests
/// name: project, team, model and version, component and version, agent
/// and queue, connection, service account, a member `bob`. Returns the
/// agent's token.
async fn furnish(t: &TestStack, owner: &str) -> String {
    t.create_organization(owner, "acme").await;
    t.projects_as(owner)
        .create_project(org_pb::CreateProjectRequest {
            request_id: String::new(),
            organization: "acme".into(),
            project: Some(org_pb::Project {
                name: "vision".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    t.teams_as(owner)
        .create_team(org_pb::CreateTeamRequest {
            request_id: String::new(),
            organization: "acme".into(),
            team: Some(org_pb::Team {
                name: "ml".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    t.user("bob").await;
    t.add_member("acme", "bob", "member").await;
    t.models_as(owner)
        .create_model(reg_pb::CreateModelRequest {
            request_id: String::new(),
            organization: "acme".into(),
            model: Some(reg_pb::Model {
                name: "resnet".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    t.models_as(owner)
        .create_model_version(reg_pb::CreateModelVersionRequest {
            request_id: String::new(),
            organization: "acme".into(),
            model: "resnet".into(),
            version: Some(reg_pb::ModelVersion {
                name: "v1".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    t.components_as(owner)
        .create_component(reg_pb::CreateComponentRequest {
            request_id: String::new(),
            organization: "acme".into(),
            component: Some(reg_pb::Component {
                name: "trainer".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    t.components_as(owner)
        .create_component_version(reg_pb::CreateComponentVersionRequest {
            request_id: String::new(),
            organization: "acme".into(),
            component: "trainer".into(),
            version: Some(reg_pb::ComponentVersion {
                name: "v1".into(),
                content: "kind: component\nrun:\n  kind: job\n".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let agent_token = t
        .agents_as(owner)
        .create_agent(ag_pb::CreateAgentRequest {
            request_id: String::new(),
            organization: "acme".into(),
            agent: Some(ag_pb::Agent {
                name: "box".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    t.queues_as(owner)
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
    t.connections_as(owner)
        .create_connection(ag_pb::CreateConnectionRequest {
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
        })
        .await
        .unwrap();
    t.service_accounts_as(owner)
        .create_service_account(id_pb::CreateServiceAccountRequest {
            request_id: String::new(),
            organization: "acme".into(),
            service_account: Some(id_pb::ServiceAccount {
                name: "nightly".into(),
                role: "member".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    agent_token
}

/// Methods only an agent's token may call: fuzzed with it, so that the
/// requests reach the run cycle's rules.
fn for_agents(method: &str) -> bool {
    [
        "AcquireRuns",
        "RenewLease",
        "ReportRunStatus",
        "ReportAgentStatus",
        "GetAgentState",
    ]
    .contains(&method)
}

/// The gateway's health and one read through each backend answer.
async fn alive(t: &TestStack, token: &str) -> Result<(), String> {
    let within = |what: &'static str, code: Result<Code, tokio::time::error::Elapsed>| match code {
        Ok(Code::Ok | Code::NotFound | Code::Unauthenticated) => Ok(()),
        Ok(other) => Err(format!("{what}: {other:?}")),
        Err(_) => Err(format!("{what}: no answer within 10 s")),
    };
    let ten = Duration::from_secs(10);
    let health = tokio::time::timeout(
        ten,
        HealthClient::new(t.gateway.clone()).check(HealthCheckRequest::default()),
    )
    .await;
    within(
        "gateway health",
        health.map(|r| r.map_or_else(|s| s.code(), |_| Code::Ok)),
    )?;
    let probes = [
        (
            "/orgplane.identity.v1.UserService/GetCurrentUser",
            Vec::new(),
        ),
        (
            "/orgplane.organizations.v1.OrganizationService/GetOrganization",
            org_pb::GetOrganizationRequest {
                organization: "acme".into(),
            }
            .encode_to_vec(),
        ),
        (
            "/orgplane.registry.v1.ModelRegistryService/ListModels",
            reg_pb::ListModelsRequest {
                organization: "acme".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "/orgplane.agents.v1.AgentService/ListAgents",
            ag_pb::ListAgentsRequest {
                organization: "acme".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    ];
    for (path, body) in probes {
        let code =
            tokio::time::timeout(ten, call(&t.gateway, token, path, Bytes::from(body), false))
                .await;
        within("a backend", code)?;
    }
    Ok(())
}

/// Whether calling `method` may end the caller's session, or delete what
/// later requests name: such methods go last.
fn destructive(method: &str) -> bool {
    [
        "Delete", "Remove", "Leave", "Logout", "Revoke", "Rotate", "Change", "Transfer", "Reset",
    ]
    .iter()
    .any(|p| method.starts_with(p))
}

/// A request that does not decode (invalid UTF-8 in a string field, nesting
/// past the decoder's limit) is the client's error: `INVALID_ARGUMENT`, not
/// `INTERNAL`.
#[tokio::test]
async fn a_request_that_does_not_decode_is_invalid_argument() {
    let t = TestStack::start().await;
    let token = t.user("owner").await;
    let mut bad_utf8 = Msg::default();
    bad_utf8.push(1, Wire::Len(vec![0xff, 0xfe]));
    let path = "/orgplane.organizations.v1.OrganizationService/GetOrganization";
    let status = answer(&t.gateway, &token, path, bad_utf8.encode().into(), false).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let mut deep = Msg::default();
    deep.push(5, Wire::Len(deep_struct(150)));
    let path = "/orgplane.agents.v1.RunService/SubmitRun";
    let status = answer(&t.gateway, &token, path, deep.encode().into(), false).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_public_method_survives_hostile_requests() {
    let t = TestStack::start_with(|_, g| {
        g.rate_limit_per_second = 1_000_000;
        g.rate_limit_burst = 1_000_000;
    })
    .await;
    let mut token = t.user("owner").await;
    let agent_token = furnish(&t, &token).await;

    let set = FileDescriptorSet::decode(orgplane_proto::FILE_DESCRIPTOR_SET).unwrap();
    let schema = Schema::new(&set);
    let mut methods = Vec::new();
    for file in &set.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            if orgplane_proto::PUBLIC_SERVICES
                .iter()
                .any(|(name, _)| *name == full)
            {
                for method in &service.method {
                    methods.push((full.clone(), method));
                }
            }
        }
    }
    methods.sort_by_key(|(_, m)| destructive(m.name()));

    let started = Instant::now();
    let (mut calls, mut peak) = (0usize, 0u64);
    let mut failures = Vec::new();
    for (service, method) in &methods {
        let path = format!("/{service}/{}", method.name());
        let streaming = method.server_streaming();
        let caller = if for_agents(method.name()) {
            &agent_token
        } else {
            &token
        };
        for (i, body) in requests(&schema, service, method).into_iter().enumerate() {
            let status = answer(&t.gateway, caller, &path, Bytes::from(body), streaming).await;
            calls += 1;
            if matches!(
                status.code(),
                Code::Internal | Code::Unknown | Code::DeadlineExceeded
            ) {
                let message: String = status.message().chars().take(200).collect();
                failures.push(format!("{path} #{i}: {:?} {message}", status.code()));
            }
        }
        if let Err(dead) = alive(&t, &token).await {
            panic!("after {path}: {dead}");
        }
        peak = peak.max(rss_bytes());
        // A method that ended the owner's session (logout, revocation):
        // sign in again and go on.
        let me = call(
            &t.gateway,
            &token,
            "/orgplane.identity.v1.UserService/GetCurrentUser",
            Bytes::new(),
            false,
        )
        .await;
        if me == Code::Unauthenticated {
            token = t
                .auth()
                .login(id_pb::LoginRequest {
                    username: "owner".into(),
                    password: "password-owner".into(),
                })
                .await
                .expect("log in again")
                .into_inner()
                .access_token;
        }
    }
    eprintln!(
        "fuzzed {} methods with {calls} calls in {:?}; peak resident memory {} MiB",
        methods.len(),
        started.elapsed(),
        peak / (1024 * 1024)
    );
    assert!(
        failures.is_empty(),
        "{} bad answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(peak < RSS_LIMIT, "peak resident memory {peak} bytes");
}
