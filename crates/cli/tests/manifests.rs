//! The Kubernetes manifests of `deploy/kubernetes`, run as they are: this
//! test reads them — the resources `kustomization.yaml` lists, each
//! Deployment's command, arguments, environment (ConfigMap and Secret
//! values resolved), ports and replica count, and the Jobs — and runs
//! exactly that as local processes against the tests' PostgreSQL, with
//! every address mapped to loopback: a container port of a replica to a
//! free local port, a Service name to the replicas it selects. Then it
//! drives a smoke scenario through the gateway (the bootstrap admin's
//! login, a sign-up, an organization, a project, a model, an agent, a
//! queue, a run leased and finished) and scrapes every process's metrics.
//!
//! A flag a manifest names that the binary does not know stops its process
//! (clap refuses it) and fails the test; a misspelt variable is ignored by
//! the binary, and fails the test when what it should set (the metrics
//! port, a peer address) is missing.

mod support;

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use orgplane_e2e::{Bearer, postgres_url, unique_schema_prefix};
use orgplane_proto::{
    agents::{
        AcquireRunsRequest, ReportRunStatusRequest, SubmitRunRequest,
        run_service_client::RunServiceClient,
    },
    identity::{LoginRequest, auth_service_client::AuthServiceClient},
    registry::{
        CreateModelRequest, Model, model_registry_service_client::ModelRegistryServiceClient,
    },
};
use serde_json::Value;
use support::{BIN, Running, acme_with_an_agent, certs_init, http_get, signed_up};

const MANIFESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/kubernetes");
/// Where the manifests mount the certificates and point the data folder.
const DATA_DIR: &str = "/var/lib/orgplane";

/// Every document of every resource file `kustomization.yaml` lists.
fn resources() -> Vec<Value> {
    let dir = Path::new(MANIFESTS);
    let kustomization: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap())
            .unwrap();
    kustomization["resources"]
        .as_array()
        .expect("kustomization.yaml lists resources")
        .iter()
        .flat_map(|file| {
            let file = file.as_str().unwrap();
            let text = std::fs::read_to_string(dir.join(file))
                .unwrap_or_else(|err| panic!("{file}: {err}"));
            serde_saphyr::from_multiple::<Value>(&text)
                .unwrap_or_else(|err| panic!("{file}: {err}"))
        })
        .collect()
}

fn of_kind<'a>(resources: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    resources.iter().filter(move |r| r["kind"] == kind)
}

fn name(resource: &Value) -> &str {
    resource["metadata"]["name"].as_str().unwrap()
}

/// A workload's one container (Deployments and Jobs have one each).
fn container(workload: &Value) -> &Value {
    let containers = workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "{}: one container", name(workload));
    &containers[0]
}

/// The values a manifest gives a process: ConfigMaps' `data` and Secrets'
/// `stringData`, by name.
struct Values {
    config_maps: HashMap<String, BTreeMap<String, String>>,
    secrets: HashMap<String, BTreeMap<String, String>>,
}

impl Values {
    fn of(resources: &[Value]) -> Self {
        let read = |kind, field: &str| {
            of_kind(resources, kind)
                .map(|r| {
                    let data = r[field]
                        .as_object()
                        .map(|data| {
                            data.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                                .collect()
                        })
                        .unwrap_or_default();
                    (name(r).to_owned(), data)
                })
                .collect()
        };
        Self {
            config_maps: read("ConfigMap", "data"),
            secrets: read("Secret", "stringData"),
        }
    }

    /// The environment `container` gets: `envFrom` ConfigMaps, then `env`
    /// (values, ConfigMap and Secret keys).
    fn env(&self, container: &Value) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for from in container["envFrom"].as_array().into_iter().flatten() {
            let map = from["configMapRef"]["name"]
                .as_str()
                .expect("envFrom a ConfigMap");
            env.extend(self.config_maps[map].clone());
        }
        for var in container["env"].as_array().into_iter().flatten() {
            let key = var["name"].as_str().unwrap().to_owned();
            let value = if let Some(value) = var["value"].as_str() {
                value.to_owned()
            } else if let Some(secret) = var["valueFrom"].get("secretKeyRef") {
                self.secrets[secret["name"].as_str().unwrap()][secret["key"].as_str().unwrap()]
                    .clone()
            } else if let Some(map) = var["valueFrom"].get("configMapKeyRef") {
                self.config_maps[map["name"].as_str().unwrap()][map["key"].as_str().unwrap()]
                    .clone()
            } else {
                panic!("{key}: a value this test does not resolve");
            };
            env.insert(key, value);
        }
        env
    }
}

/// Local addresses for the cluster's: each replica's container ports, and
/// each Service's name and port.
struct Addresses {
    /// `(deployment, replica, container port)` → a loopback address.
    replicas: HashMap<(String, usize, u16), String>,
    /// `service:port` → every replica's address, comma-separated.
    services: HashMap<String, String>,
}

impl Addresses {
    fn of(resources: &[Value]) -> Self {
        let mut replicas = HashMap::new();
        for deployment in of_kind(resources, "Deployment") {
            let count = deployment["spec"]["replicas"].as_u64().unwrap() as usize;
            for port in container(deployment)["ports"].as_array().unwrap() {
                let port = port["containerPort"].as_u64().unwrap() as u16;
                for replica in 0..count {
                    replicas.insert(
                        (name(deployment).to_owned(), replica, port),
                        orgplane_e2e::free_port(),
                    );
                }
            }
        }
        let mut services = HashMap::new();
        for service in of_kind(resources, "Service") {
            let selected = &service["spec"]["selector"]["app.kubernetes.io/name"];
            let deployment = of_kind(resources, "Deployment")
                .find(|d| {
                    &d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
                        == selected
                })
                .unwrap_or_else(|| panic!("service {} selects no deployment", name(service)));
            for port in service["spec"]["ports"].as_array().unwrap() {
                let target = named_port(deployment, &port["targetPort"]);
                let mut all: Vec<(usize, &String)> = replicas
                    .iter()
                    .filter(|((d, _, p), _)| d == name(deployment) && *p == target)
                    .map(|((_, replica, _), addr)| (*replica, addr))
                    .collect();
                all.sort();
                services.insert(
                    format!("{}:{}", name(service), port["port"].as_u64().unwrap()),
                    all.into_iter()
                        .map(|(_, a)| a.clone())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
        }
        Self { replicas, services }
    }

    /// `text` with the cluster's addresses made local: `0.0.0.0:<port>`
    /// (a listener of `workload`'s `replica`, which must be a container
    /// port of a Deployment; a Job's command ignores listeners) and
    /// `service:port`.
    fn localize(&self, text: &str, workload: &Value, replica: usize) -> String {
        if let Some(port) = text.strip_prefix("0.0.0.0:") {
            let port: u16 = port.parse().unwrap();
            if workload["kind"] != "Deployment" {
                return orgplane_e2e::free_port();
            }
            let deployment = name(workload);
            return self
                .replicas
                .get(&(deployment.to_owned(), replica, port))
                .unwrap_or_else(|| panic!("{deployment} listens on {port}, not a container port"))
                .clone();
        }
        self.services
            .get(text)
            .cloned()
            .unwrap_or_else(|| text.to_owned())
    }
}

/// The container port a Service's `targetPort` names.
fn named_port(deployment: &Value, target: &Value) -> u16 {
    if let Some(port) = target.as_u64() {
        return port as u16;
    }
    container(deployment)["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == *target)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {target}")) as u16
}

/// A process as the manifest runs `workload`'s `replica`, made local.
fn command(
    workload: &Value,
    replica: usize,
    values: &Values,
    addresses: &Addresses,
    local: &Local,
) -> Command {
    let container = container(workload);
    let deployment = name(workload);
    assert!(
        container["command"].is_null(),
        "{deployment}: the image's entry point runs"
    );
    let mut command = Command::new(BIN);
    for arg in container["args"].as_array().unwrap() {
        command.arg(addresses.localize(arg.as_str().unwrap(), workload, replica));
    }
    command.env_clear();
    for (key, value) in values.env(container) {
        let value = match key.as_str() {
            "ORGPLANE_DATA_DIR" => {
                assert_eq!(value, DATA_DIR, "the certificates are mounted there");
                local.data_dir.clone()
            }
            "ORGPLANE_DATABASE_URL" => local.database_url.clone(),
            _ => addresses.localize(&value, workload, replica),
        };
        command.env(key, value);
    }
    command
        .env("ORGPLANE_SCHEMA_PREFIX", &local.schema_prefix)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null());
    command
}

/// What the test puts in place of the cluster's.
struct Local {
    data_dir: String,
    database_url: String,
    schema_prefix: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_manifests_run_as_written() {
    let Some(database_url) = postgres_url() else {
        return;
    };
    let resources = resources();
    let values = Values::of(&resources);
    let addresses = Addresses::of(&resources);
    let dir = tempfile::tempdir().unwrap();
    // cert-manager's Secrets, mounted at <data-dir>/certs/<service>/, hold
    // what `certs init` writes there.
    certs_init(dir.path());
    let local = Local {
        data_dir: dir.path().display().to_string(),
        database_url: database_url.clone(),
        schema_prefix: unique_schema_prefix(),
    };

    // The Jobs first, as an operator runs them before the rollout.
    for job in ["orgplane-migrate", "orgplane-bootstrap"] {
        let job = of_kind(&resources, "Job")
            .find(|j| name(j) == job)
            .unwrap_or_else(|| panic!("no Job {job}"));
        let output = command(job, 0, &values, &addresses, &local)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "Job {}: {}",
            name(job),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let mut running = Vec::new();
    let mut metrics = Vec::new();
    for deployment in of_kind(&resources, "Deployment") {
        let replicas = deployment["spec"]["replicas"].as_u64().unwrap() as usize;
        assert_eq!(replicas, 2, "{}: two replicas", name(deployment));
        let env = values.env(container(deployment));
        let ops = env
            .get("ORGPLANE_METRICS_LISTEN")
            .unwrap_or_else(|| panic!("{}: no metrics port", name(deployment)));
        for replica in 0..replicas {
            let child = command(deployment, replica, &values, &addresses, &local)
                .spawn()
                .unwrap();
            running.push((name(deployment).to_owned(), Running(child)));
            metrics.push((
                format!("{} {replica}", name(deployment)),
                addresses.localize(ops, deployment, replica),
            ));
        }
    }
    // Ready, as the readiness probes see it; a process that exits (a flag
    // it does not know, say) fails at once.
    let path = readiness_path(&resources);
    let started = std::time::Instant::now();
    for ((process, child), (_, ops)) in running.iter_mut().zip(&metrics) {
        while !http_get(ops, &path)
            .await
            .is_ok_and(|(code, _)| code == 200)
        {
            if let Some(status) = child.0.try_wait().unwrap() {
                panic!("{process} exited ({status}) before it was ready");
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "{process} not ready within 90 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let gateway =
        orgplane_transport::client::h2c_channel(&addresses.services["gateway:50051"], "gateway")
            .unwrap();
    let one_gateway = orgplane_e2e::channel(&format!(
        "http://{}",
        addresses.services["gateway:50051"]
            .split(',')
            .next()
            .unwrap()
    ))
    .await;
    smoke(&gateway, &one_gateway, &values).await;

    // Every process serves its metrics; each Deployment's replicas
    // together show what the scenario exercised.
    let expected = |deployment: &str| -> &'static [&'static str] {
        match deployment {
            "gateway" => &[
                "grpc_server_handled_total",
                "orgplane_token_cache_lookups_total",
            ],
            "agents" => &[
                "grpc_server_handled_total",
                "orgplane_db_pool_connections",
                "orgplane_runs",
                "orgplane_runs_leased_total",
                "orgplane_group_commit_batch_size",
                "orgplane_outbox_shipped_total",
                "orgplane_outbox_lag_seconds",
                "orgplane_outbox_backlog",
            ],
            _ => &["grpc_server_handled_total", "orgplane_db_pool_connections"],
        }
    };
    let scraping = std::time::Instant::now();
    loop {
        let mut seen: HashMap<String, String> = HashMap::new();
        for (process, ops) in &metrics {
            let (code, text) = http_get(ops, "/metrics").await.unwrap();
            assert_eq!(code, 200, "{process}");
            seen.entry(process.split(' ').next().unwrap().to_owned())
                .or_default()
                .push_str(&text);
        }
        let missing: Vec<String> = of_kind(&resources, "Deployment")
            .flat_map(|deployment| {
                let text = &seen[name(deployment)];
                expected(name(deployment))
                    .iter()
                    .filter(|metric| {
                        // A sample line: `name{…}`, `name value`, or a
                        // histogram's `name_bucket{…}`.
                        !["{", " ", "_bucket{"]
                            .iter()
                            .any(|after| text.contains(&format!("\n{metric}{after}")))
                    })
                    .map(|metric| format!("{} {metric}", name(deployment)))
                    .collect::<Vec<_>>()
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            scraping.elapsed() < Duration::from_secs(10),
            "metrics missing: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    drop(running);
    for service in ["identity", "organizations", "registry", "agents"] {
        orgplane_storage::db::drop_schema(
            &database_url,
            &format!("{}{service}", local.schema_prefix),
        )
        .await
        .unwrap();
    }
}

/// The path every Deployment's readiness probe asks.
fn readiness_path(resources: &[Value]) -> String {
    let paths: Vec<&str> = of_kind(resources, "Deployment")
        .map(|d| {
            container(d)["readinessProbe"]["httpGet"]["path"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(paths.windows(2).all(|w| w[0] == w[1]));
    paths[0].to_owned()
}

/// The bootstrap admin logs in; a user signs up and runs a run through its
/// agent: through both gateways (`gateway`), the setup through one of
/// them.
async fn smoke(
    gateway: &orgplane_transport::client::Channel,
    one_gateway: &tonic::transport::Channel,
    values: &Values,
) {
    let admin_password = values.secrets["orgplane-secrets"]["admin-password"].clone();
    AuthServiceClient::new(gateway.clone())
        .login(LoginRequest {
            username: "admin".into(),
            password: admin_password,
        })
        .await
        .expect("the bootstrap Job's admin logs in");
    let token = signed_up(one_gateway, "smoke").await;
    let bearer = || Bearer::new(&token);
    let agent_token = acme_with_an_agent(one_gateway, &token).await;
    ModelRegistryServiceClient::with_interceptor(gateway.clone(), bearer())
        .create_model(CreateModelRequest {
            request_id: String::new(),
            organization: "acme".into(),
            model: Some(Model {
                name: "resnet".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let submitted = RunServiceClient::with_interceptor(gateway.clone(), bearer())
        .submit_run(SubmitRunRequest {
            request_id: uuid::Uuid::now_v7().to_string(),
            organization: "acme".into(),
            project: "vision".into(),
            queue: "box/q".into(),
            name: "smoke".into(),
            spec: None,
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    let mut runs = RunServiceClient::with_interceptor(gateway.clone(), Bearer::new(&agent_token));
    let leased = runs
        .acquire_runs(AcquireRunsRequest {
            organization: "acme".into(),
            agent: "box".into(),
            max_runs: 1,
            lease_duration: None,
        })
        .await
        .unwrap()
        .into_inner()
        .runs;
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].uuid, submitted.uuid);
    let done = runs
        .report_run_status(ReportRunStatusRequest {
            organization: "acme".into(),
            run: submitted.uuid.clone(),
            status: "succeeded".into(),
            lease: leased[0].lease.as_ref().unwrap().id.clone(),
            message: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.run.unwrap().status, "succeeded");
}

/// The structural check of the cert-manager resources (kubernetes-validate
/// knows no CRD): every Certificate is issued by the CA Issuer, names its
/// service once as `spiffe://orgplane/<service>` and by DNS name, may serve
/// and call, and lands in the Secret the service's pods mount where
/// orgplane reads its certificates; the CA Issuer's Secret is the CA
/// Certificate's.
#[test]
fn every_service_mounts_the_certificate_of_its_own_identity() {
    let resources = resources();
    let issuers: HashMap<&str, &Value> = of_kind(&resources, "Issuer")
        .map(|issuer| (name(issuer), issuer))
        .collect();
    let certificates: Vec<&Value> = of_kind(&resources, "Certificate").collect();
    for resource in issuers.values().chain(&certificates) {
        assert_eq!(
            resource["apiVersion"],
            "cert-manager.io/v1",
            "{}",
            name(resource)
        );
    }
    let ca = certificates
        .iter()
        .find(|c| c["spec"]["isCA"] == true)
        .expect("a CA Certificate");
    let ca_issuer = issuers
        .values()
        .find(|i| i["spec"]["ca"]["secretName"] == ca["spec"]["secretName"])
        .expect("an Issuer of the CA's Secret");
    assert!(issuers.contains_key(ca["spec"]["issuerRef"]["name"].as_str().unwrap()));

    for deployment in of_kind(&resources, "Deployment") {
        let service = name(deployment);
        let mount = &container(deployment)["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == format!("{DATA_DIR}/certs/{service}"))
            .unwrap_or_else(|| panic!("{service} mounts no certificates"))["name"];
        let secret = deployment["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == *mount)
            .and_then(|v| v["secret"]["secretName"].as_str())
            .unwrap_or_else(|| panic!("{service}: its certificates are no Secret"));
        let certificate = certificates
            .iter()
            .find(|c| c["spec"]["secretName"] == secret)
            .unwrap_or_else(|| panic!("{service}: no Certificate makes {secret}"));
        let spec = &certificate["spec"];
        assert_eq!(
            spec["issuerRef"]["name"], ca_issuer["metadata"]["name"],
            "{service}"
        );
        assert_eq!(spec["issuerRef"]["kind"], "Issuer", "{service}");
        assert_eq!(
            spec["uris"],
            serde_json::json!([format!("spiffe://orgplane/{service}")]),
            "{service}: one SPIFFE identity, its own"
        );
        assert!(
            spec["dnsNames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d == service),
            "{service}: callers verify the name {service}"
        );
        for usage in ["server auth", "client auth"] {
            assert!(
                spec["usages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|u| u == usage),
                "{service}: {usage}"
            );
        }
    }
}

/// Without cert-manager: `orgplane certs kubernetes` prints, for the files
/// `certs init` made, every Secret the Deployments mount, each holding the
/// service's files; a bad namespace is refused.
#[test]
fn certs_kubernetes_prints_the_secrets_the_deployments_mount() {
    use base64::Engine as _;

    let dir = tempfile::tempdir().unwrap();
    certs_init(dir.path());
    let output = Command::new(BIN)
        .args(["certs", "kubernetes", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let secrets: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8(output.stdout).unwrap()).unwrap();
    let resources = resources();
    for deployment in of_kind(&resources, "Deployment") {
        let service = name(deployment);
        let mounted = deployment["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|v| v["secret"]["secretName"].as_str())
            .unwrap();
        let secret = secrets
            .iter()
            .find(|s| name(s) == mounted)
            .unwrap_or_else(|| panic!("no Secret {mounted}"));
        assert_eq!(secret["kind"], "Secret");
        assert_eq!(secret["type"], "kubernetes.io/tls");
        assert_eq!(secret["metadata"]["namespace"], "orgplane");
        for file in ["tls.crt", "tls.key", "ca.crt"] {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(secret["data"][file].as_str().unwrap())
                .unwrap();
            assert_eq!(
                decoded,
                std::fs::read(dir.path().join("certs").join(service).join(file)).unwrap(),
                "{service} {file}"
            );
        }
    }
    let refused = Command::new(BIN)
        .args([
            "certs",
            "kubernetes",
            "--namespace",
            "Not A Namespace",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
}
