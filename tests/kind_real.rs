//! The Kubernetes tier, for real: the kind runtime on a node image built here (`scripts/kind-node-image.sh`, named
//! by `$KIND_TEST_NODE_IMAGE`), the real kind CLI beside it (`$KIND_TEST_CLI`), and `up --context`
//! on a cluster that kind made. A real API server, kubelet, containerd and CoreDNS answer every step.
//!
//! Each test owns its loop names and its own kubeconfig file, and removes what it made even when it fails. They
//! take turns (one cluster at a time is what two cores hold). `scripts/test.sh` runs them; plain `cargo test`
//! leaves them out (`#[ignore]`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, PersistentVolumeClaim, Pod, Service, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, ListParams, LogParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use restate_dev::{docker::Docker, images, ui::Ui};
use serde_json::Value;

#[path = "support/loop_probes.rs"]
mod loop_probes;

use loop_probes::{invoke, json, labelled};

const RESTATE_DEV: &str = env!("CARGO_BIN_EXE_restate-dev");

/// Tests take turns: one cluster at a time is what two cores hold.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env(name: &str, how: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {how}"))
}

fn node_image() -> String {
    env(
        "KIND_TEST_NODE_IMAGE",
        "scripts/kind-node-image.sh builds the node image and prints it",
    )
}

fn kind_bin() -> String {
    env(
        "KIND_TEST_CLI",
        "`scripts/kind-node-image.sh --kind` builds the kind CLI and prints its path",
    )
}

fn restate_server() -> String {
    env("RESTATE_SERVER_BIN", "run `. scripts/install-deps.sh` first")
}

/// A short name of this run's own (kind's node hostnames must stay well inside 63 characters).
fn loop_name(test: &str) -> String {
    format!("kr{test}{}", std::process::id() % 100_000)
}

/// A kubeconfig of the test's own, so that nothing touches the user's: it starts with someone else's context,
/// which must survive everything the test does.
struct Sandbox {
    dir: tempfile::TempDir,
}

const BYSTANDER_CONTEXT: &str = "someone-elses";

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {BYSTANDER_CONTEXT}\n  cluster:\n    server: https://127.0.0.1:1\n\
             users:\n- name: {BYSTANDER_CONTEXT}\n  user: {{}}\ncontexts:\n- name: {BYSTANDER_CONTEXT}\n  context:\n    \
             cluster: {BYSTANDER_CONTEXT}\n    user: {BYSTANDER_CONTEXT}\ncurrent-context: {BYSTANDER_CONTEXT}\n"
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        Sandbox { dir }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env_remove("DOCKER_HOST");
        command
    }

    fn restate_dev(&self, name: &str, args: &[&str]) -> Command {
        let mut command = self.command(RESTATE_DEV, &["--name", name]);
        command.args(args);
        command
    }

    fn contexts(&self) -> Vec<String> {
        let config = Kubeconfig::read_from(self.kubeconfig()).unwrap();
        config.contexts.into_iter().map(|c| c.name).collect()
    }

    async fn client(&self, context: &str) -> kube::Client {
        client_from(&self.kubeconfig(), context).await
    }
}

async fn client_from(kubeconfig: &Path, context: &str) -> kube::Client {
    let config = Kubeconfig::read_from(kubeconfig).unwrap();
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(config, &options).await.unwrap();
    kube::Client::try_from(config).unwrap()
}

fn run(mut command: Command) -> Output {
    let started = Instant::now();
    let output = command.output().expect("the command runs");
    eprintln!("{command:?} took {:.1}s", started.elapsed().as_secs_f64());
    output
}

fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "failed ({:?}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn docker(args: &[&str]) -> Command {
    let mut command = Command::new("docker");
    command.args(args);
    command
}

fn docker_cli(args: &[&str]) -> String {
    let output = docker(args).output().expect("the docker CLI runs");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Removes the loop (and a kind cluster the test made) even when an assertion failed half-way.
struct Cleanup<'a> {
    sandbox: &'a Sandbox,
    loops: Vec<String>,
    kind_clusters: Vec<String>,
    containers: Vec<String>,
    /// Networks that did not exist before the test (kind never removes the `kind` network it made).
    networks: Vec<String>,
}

impl<'a> Cleanup<'a> {
    fn of_loop(sandbox: &'a Sandbox, name: &str) -> Cleanup<'a> {
        Cleanup {
            sandbox,
            loops: vec![name.to_string()],
            kind_clusters: vec![],
            containers: vec![],
            networks: vec![],
        }
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let quiet = |mut c: Command| {
            let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
        };
        // Containers first: a bystander on the `kind` network would keep `down` from removing the network.
        for name in &self.containers {
            quiet(docker(&["rm", "-f", "-v", name]));
        }
        for name in &self.kind_clusters {
            quiet(
                self.sandbox
                    .command(&kind_bin(), &["delete", "cluster", "--name", name]),
            );
        }
        for name in &self.loops {
            quiet(self.sandbox.restate_dev(name, &["down"]));
        }
        for name in &self.networks {
            quiet(docker(&["network", "rm", name]));
        }
    }
}

/// `kind`, when the network does not exist yet: kind would leave it behind.
fn kind_network_if_new() -> Vec<String> {
    let exists = docker_cli(&["network", "ls", "--filter", "name=^kind$", "--format", "{{.Name}}"]) == "kind";
    if exists { vec![] } else { vec!["kind".to_string()] }
}

fn statuses(summary: &Value) -> BTreeMap<String, String> {
    summary["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("up's JSON has its step records: {summary}"))
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The names and UIDs of the pods in `namespace` that are not shutting down.
async fn pod_uids(client: &kube::Client, namespace: &str) -> BTreeMap<String, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    pods.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        // a pod replaced by a rollout may still be shutting down
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| (p.metadata.name.unwrap(), p.metadata.uid.unwrap()))
        .collect()
}

/// The node's containerd knows the image by this reference.
fn node_has_image(node: &str, image: &str) -> bool {
    let out = docker_cli(&["exec", node, "crictl", "inspecti", "-o", "json", image]);
    out.contains("\"id\"")
}

/// A plain container outside every loop, on the `kind` network, that `down` must leave alone.
fn bystander(name: &str, image: &str) -> String {
    let container = format!("{name}-bystander");
    ok(run(docker(&[
        "create",
        "--name",
        &container,
        "--network",
        "kind",
        "--label",
        "purpose=bystander",
        image,
    ])));
    container
}

#[tokio::test]
#[ignore = "needs Docker, a node image and the kind CLI: scripts/test.sh builds them and runs this tier"]
async fn kind_loop_from_nothing_to_down() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let sandbox = Sandbox::new();
    let name = loop_name("a");
    let mut cleanup = Cleanup::of_loop(&sandbox, &name);
    let image = node_image();
    let server = restate_server();
    let up_args = [
        "up",
        "--node-image",
        &image,
        "--restate-binary",
        &server,
        "--timeout",
        "10m",
        "--output",
        "json",
    ];

    // From nothing: node, kubeadm init, CNI, storage, node Ready, CoreDNS, Restate, the sample, registration and
    // one invocation, all inside `up`.
    let started = Instant::now();
    let summary = json(&ok(run(sandbox.restate_dev(&name, &up_args))));
    eprintln!("up from nothing: {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(summary["runtime"], "kind", "{summary}");
    assert_eq!(summary["verified"]["answer"], "Hello, restate-dev!", "{summary}");
    let context = format!("kind-{name}");
    assert_eq!(summary["context"], context.as_str());
    let ingress = summary["ingress_url"].as_str().unwrap().to_string();
    let admin = summary["admin_url"].as_str().unwrap().to_string();
    assert!(
        ingress.starts_with("http://127.0.0.1:") && admin.starts_with("http://127.0.0.1:"),
        "{summary}"
    );
    let contexts = sandbox.contexts();
    assert!(
        contexts.contains(&context) && contexts.contains(&BYSTANDER_CONTEXT.to_string()),
        "{contexts:?}"
    );

    // What the cluster says, through the context `up` merged.
    let client = sandbox.client(&context).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.get(&format!("{name}-control-plane")).await.unwrap();
    let ready = node.status.unwrap().conditions.unwrap();
    assert!(
        ready.iter().any(|c| c.type_ == "Ready" && c.status == "True"),
        "{ready:?}"
    );
    let coredns: Deployment = Api::namespaced(client.clone(), "kube-system")
        .get("coredns")
        .await
        .unwrap();
    assert!(coredns.status.unwrap().available_replicas.unwrap_or(0) >= 1);
    let restate: StatefulSet = Api::namespaced(client.clone(), "restate").get("restate").await.unwrap();
    assert_eq!(restate.status.unwrap().ready_replicas, Some(1));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "restate");
    let claims = claims.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].status.as_ref().unwrap().phase.as_deref(), Some("Bound"));
    assert_eq!(
        claims[0].spec.as_ref().unwrap().storage_class_name.as_deref(),
        Some("standard")
    );
    let service: Deployment = Api::namespaced(client.clone(), "restate").get("service").await.unwrap();
    assert_eq!(service.status.unwrap().available_replicas, Some(1));
    let sample = service.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    let cluster_ip: Service = Api::namespaced(client.clone(), "restate").get("service").await.unwrap();
    assert_eq!(cluster_ip.spec.unwrap().type_.as_deref(), Some("ClusterIP"));

    // The sample was streamed into the node's containerd 2, and Restate answers on the host's loopback.
    let node_container = format!("{name}-control-plane");
    assert!(node_has_image(&node_container, &sample), "{sample} is not in the node");
    let (status, body) = invoke(&ingress, "Greeter/greet", "\"Ada\"").await;
    assert_eq!((status, body.as_str()), (200, "\"Hello, Ada!\""));
    let (_, total) = invoke(&ingress, "Counter/c1/add", "5").await;
    assert_eq!(total, "5");

    // Restate advertises the host's URLs (the node's port mappings), and RocksDB's memory fits its limit: half
    // of 2Gi, so Restate logs no ERROR about it.
    assert_eq!(summary["ui_url"], format!("{admin}/ui"), "{summary}");
    let version: Value = reqwest::get(format!("{admin}/version"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["ingress_endpoint"], format!("{ingress}/"), "{version}");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "restate");
    let params = LogParams {
        container: Some("restate".into()),
        ..LogParams::default()
    };
    let logged = pods.logs("restate-0", &params).await.unwrap();
    assert!(!logged.is_empty(), "no log from Restate");
    assert!(
        !logged.contains("rocksdb-total-memory-size"),
        "Restate complains:\n{logged}"
    );

    // A re-up changes nothing: every step that makes something is skipped, and no pod was replaced.
    let before = pod_uids(&client, "restate").await;
    let started = Instant::now();
    let again = json(&ok(run(sandbox.restate_dev(&name, &up_args))));
    eprintln!("re-up: {:.1}s", started.elapsed().as_secs_f64());
    let steps = statuses(&again);
    for step in ["cluster", "images", "install", "register"] {
        assert_eq!(
            steps.get(step).map(String::as_str),
            Some("skipped"),
            "{step} in {steps:?}"
        );
    }
    assert_eq!(pod_uids(&client, "restate").await, before);
    assert_eq!(again["ingress_url"], summary["ingress_url"]);
    assert_eq!(again["deployment_id"], summary["deployment_id"]);
    let (_, total) = invoke(&ingress, "Counter/c1/add", "1").await;
    assert_eq!(total, "6", "Restate's state survives a re-up");

    let status = json(&ok(run(sandbox.restate_dev(&name, &["status", "--output", "json"]))));
    assert_eq!(status["healthy"], true, "{status}");
    assert_eq!(status["runtime"], "kind");
    assert_eq!(status["ingress_url"], summary["ingress_url"]);
    assert_eq!(status["admin_url"], summary["admin_url"]);

    // The real kind CLI sees our cluster, and its kubeconfig reaches it.
    let clusters = ok(run(sandbox.command(&kind_bin(), &["get", "clusters"])));
    assert!(
        String::from_utf8_lossy(&clusters.stdout).lines().any(|l| l == name),
        "{clusters:?}"
    );
    let kubeconfig = ok(run(
        sandbox.command(&kind_bin(), &["get", "kubeconfig", "--name", &name])
    ));
    let file = sandbox.dir.path().join("from-kind");
    std::fs::write(&file, &kubeconfig.stdout).unwrap();
    let via_kind = client_from(&file, &context).await;
    let listed = Api::<Node>::all(via_kind).list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);

    // A service whose process exits: the error says what Kubernetes said, within --timeout.
    let crash = crash_image(&sample);
    let started = Instant::now();
    let failed = run(sandbox.restate_dev(
        &name,
        &[
            "up",
            "--node-image",
            &image,
            "--restate-binary",
            &server,
            "--service-image",
            &crash,
            "--verify",
            "Greeter/greet",
            "--timeout",
            "90s",
        ],
    ));
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    eprintln!("crashing service: failed after {:.1}s:\n{stderr}", took.as_secs_f64());
    assert!(
        matches!(failed.status.code(), Some(1 | 4)),
        "{:?}: {stderr}",
        failed.status
    );
    assert!(
        stderr.contains("CrashLoopBackOff") || stderr.contains("Error"),
        "{stderr}"
    );
    assert!(
        stderr.contains("crash-on-purpose"),
        "the pod's last log lines: {stderr}"
    );
    assert!(took < Duration::from_secs(150), "bounded by --timeout: {took:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // down: nothing of ours left, everything else untouched.
    let other = bystander(&name, &crash);
    cleanup.containers.push(other.clone());
    ok(run(sandbox.restate_dev(&name, &["down", "--output", "json"])));
    assert_eq!(labelled(&name), Vec::<String>::new());
    assert!(!sandbox.contexts().contains(&context), "{:?}", sandbox.contexts());
    assert!(sandbox.contexts().contains(&BYSTANDER_CONTEXT.to_string()));
    assert_eq!(
        docker_cli(&[
            "ps",
            "-a",
            "--filter",
            &format!("name={other}"),
            "--format",
            "{{.Names}}"
        ]),
        other
    );
    assert_eq!(
        docker_cli(&["network", "ls", "--filter", "name=^kind$", "--format", "{{.Name}}"]),
        "kind"
    );
}

/// `reference`, built as the sample plus `lines` (a Dockerfile's tail); its image ID.
fn derive_from_sample(sample: &str, reference: &str, lines: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = format!("FROM {sample}\n{lines}\nLABEL app.kubernetes.io/managed-by=restate-dev\n");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    ok(run(docker(&[
        "build",
        "-q",
        "-t",
        reference,
        dir.path().to_str().unwrap(),
    ])));
    docker_cli(&["image", "inspect", "-f", "{{.Id}}", reference])
}

/// The sample image, told to start with an argument it refuses: the process prints why and exits.
fn crash_image(sample: &str) -> String {
    let reference = format!("restate-dev.local/crashing:{}", std::process::id());
    derive_from_sample(sample, &reference, "CMD [\"--crash-on-purpose\"]");
    reference
}

#[tokio::test]
#[ignore = "needs Docker, a node image and the kind CLI: scripts/test.sh builds them and runs this tier"]
async fn kind_delete_cluster_removes_our_cluster() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let sandbox = Sandbox::new();
    let name = loop_name("d");
    let _cleanup = Cleanup::of_loop(&sandbox, &name);
    let image = node_image();
    let server = restate_server();
    ok(run(sandbox.restate_dev(
        &name,
        &[
            "up",
            "--node-image",
            &image,
            "--restate-binary",
            &server,
            "--no-verify",
            "--timeout",
            "10m",
        ],
    )));
    ok(run(
        sandbox.command(&kind_bin(), &["delete", "cluster", "--name", &name])
    ));
    let node = format!("{name}-control-plane");
    assert_eq!(
        docker_cli(&[
            "ps",
            "-a",
            "--filter",
            &format!("name=^{node}$"),
            "--format",
            "{{.Names}}"
        ]),
        ""
    );
    assert!(
        !sandbox.contexts().contains(&format!("kind-{name}")),
        "{:?}",
        sandbox.contexts()
    );
    assert!(sandbox.contexts().contains(&BYSTANDER_CONTEXT.to_string()));
    // What kind does not know of (nothing, for a kind loop) is for down; it finds nothing left and succeeds.
    ok(run(sandbox.restate_dev(&name, &["down"])));
    assert_eq!(labelled(&name), Vec::<String>::new());
}

/// kind's cluster config for a cgroup v1 host: kubelet 1.35+ starts there only when told `failCgroupV1: false`.
const KIND_CONFIG_CGROUP_V1: &str = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nkubeadmConfigPatches:\n- |\n  \
    kind: KubeletConfiguration\n  failCgroupV1: false\n";

/// `up --context` on a cluster kind made, where someone was first: Helm's namespace `restate` stops `up` before it
/// writes anything; `--namespace OTHER` installs the loop (proven) and `down` removes OTHER, which `up` created;
/// someone's namespace holding nothing in the way gets the loop beside what it holds, and keeps it after `down`.
#[tokio::test]
#[ignore = "needs Docker, a node image and the kind CLI: scripts/test.sh builds them and runs this tier"]
async fn up_on_a_context_kind_made() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let sandbox = Sandbox::new();
    let cluster = loop_name("k");
    let name = loop_name("c");
    let _cleanup = Cleanup {
        sandbox: &sandbox,
        loops: vec![],
        kind_clusters: vec![cluster.clone()],
        containers: vec![],
        networks: kind_network_if_new(),
    };
    let config = sandbox.dir.path().join("kind.yaml");
    std::fs::write(&config, KIND_CONFIG_CGROUP_V1).unwrap();
    let config = config.to_str().unwrap();
    ok(run(sandbox.command(
        &kind_bin(),
        &[
            "create",
            "cluster",
            "--image",
            &node_image(),
            "--name",
            &cluster,
            "--config",
            config,
            "--wait",
            "5m",
        ],
    )));

    // A kind user's images: loaded with `kind load docker-image`, then named to `up`.
    let engine = Docker::connect().await.unwrap();
    let ui = Ui::new(None, true);
    let restate = images::ensure_restate_image(&engine, "unused", Some(Path::new(&restate_server())), &ui)
        .await
        .unwrap()
        .reference;
    let sample = images::sample_image_from(&engine, Path::new(RESTATE_DEV), &ui)
        .await
        .unwrap();
    for image in [&restate, &sample] {
        ok(run(sandbox.command(
            &kind_bin(),
            &["load", "docker-image", image, "--name", &cluster],
        )));
    }

    let context = format!("kind-{cluster}");
    let client = sandbox.client(&context).await;
    // The issue's cluster: Restate's documented `helm install restate … --namespace restate --create-namespace`
    // made namespace `restate` and Service `restate`; someone keeps a ConfigMap there too.
    let helm = Someone::new(&client, "restate");
    helm.namespace("helm").await;
    helm.config_map("kubectl-create").await;
    helm.helm_service().await;
    let before = helm.snapshot().await;

    let with_context = ["--context", context.as_str()];
    let mut up_args = vec!["up", "--restate-image", &restate, "--service-image", &sample];
    up_args.extend(["--verify", "Greeter/greet", "--verify-body", "\"restate-dev\""]);
    up_args.extend(["--timeout", "5m"]);
    up_args.extend(with_context);

    // Into Helm's namespace: refused before anything is written, naming Helm's Service and its release.
    let refused = run(sandbox.restate_dev(&name, &up_args));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{said}");
    for needle in [
        &format!("Service restate/restate exists and is not loop {name}'s"),
        "Helm release restate in namespace restate",
        "field manager helm",
        "--namespace",
        "helm uninstall restate --namespace restate",
    ] {
        assert!(said.contains(needle), "lacks {needle:?}: {said}");
    }
    assert_eq!(
        helm.snapshot().await,
        before,
        "Helm's namespace, Service or the ConfigMap changed"
    );
    assert!(helm.ours(&name).await.is_empty(), "up wrote into Helm's namespace");

    // Beside it, in a namespace of the loop's own: the whole loop, proven.
    let own = format!("{name}-own");
    let with_own = ["--namespace", own.as_str()];
    let mut own_up = up_args.clone();
    own_up.extend(with_own);
    own_up.extend(["--output", "json"]);
    let summary = json(&ok(run(sandbox.restate_dev(&name, &own_up))));
    assert_eq!(summary["runtime"], "context", "{summary}");
    assert_eq!(summary["namespace"], own.as_str(), "{summary}");
    assert_eq!(summary["verified"]["answer"], "Hello, restate-dev!", "{summary}");

    // `status` and `down` take the namespace from the environment (or the config file).
    let in_namespace = |args: &[&str], namespace: &str| {
        let mut command = sandbox.restate_dev(&name, args);
        command.env("RESTATE_DEV_NAMESPACE", namespace);
        command
    };
    let mut status_args = vec!["status", "--output", "json"];
    status_args.extend(with_context);
    let status = run(in_namespace(&status_args, &own));
    let status = json(&status);
    assert_eq!(status["context"], context.as_str(), "{status}");
    assert!(
        status["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "pod"),
        "{status}"
    );

    let mut down_args = vec!["down"];
    down_args.extend(with_context);
    ok(run(in_namespace(&down_args, &own)));
    // The namespace `up` created is gone with everything in it; Helm's is as it was.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(
        namespaces.get_opt(&own).await.unwrap().is_none(),
        "namespace {own} is left"
    );
    assert_eq!(helm.snapshot().await, before, "down changed Helm's namespace");

    // Someone's namespace holding nothing `up` writes: the loop goes in beside what it holds, and `down` removes
    // only the loop's objects. Before, `up` relabelled the namespace and `down` deleted it with the ConfigMap.
    let shared = Someone::new(&client, &format!("{name}-shared"));
    shared.namespace("kubectl-create").await;
    shared.config_map("kubectl-create").await;
    let shared_before = shared.snapshot().await;
    let with_shared = ["--namespace", shared.namespace.as_str()];
    let mut beside_up = up_args.clone();
    beside_up.extend(with_shared);
    let output = ok(run(sandbox.restate_dev(&name, &beside_up)));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("installed beside what it holds"), "{said}");
    assert_eq!(
        shared.snapshot().await,
        shared_before,
        "up changed the namespace or the ConfigMap"
    );
    assert!(!shared.ours(&name).await.is_empty(), "up installed nothing");
    let output = ok(run(in_namespace(&down_args, &shared.namespace)));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains(&format!("kept namespace {}", shared.namespace)), "{said}");
    assert_eq!(
        shared.snapshot().await,
        shared_before,
        "down changed the namespace or the ConfigMap"
    );
    assert!(shared.ours(&name).await.is_empty(), "down left objects of the loop");

    let left = Api::<Pod>::namespaced(client.clone(), "restate")
        .list(&ListParams::default())
        .await;
    assert!(
        left.map(|l| l.items.is_empty()).unwrap_or(true),
        "nothing of ours is left in the namespace"
    );
    // kind's cluster is still there and answering.
    let nodes = Api::<Node>::all(client).list(&ListParams::default()).await.unwrap();
    assert_eq!(nodes.items.len(), 1);
    let clusters = ok(run(sandbox.command(&kind_bin(), &["get", "clusters"])));
    assert!(String::from_utf8_lossy(&clusters.stdout).lines().any(|l| l == cluster));
}

/// Someone else's objects in namespace `namespace`, made through the API as their tools make them (with the
/// tools' field managers), and what is left of them.
struct Someone {
    client: kube::Client,
    namespace: String,
}

impl Someone {
    fn new(client: &kube::Client, namespace: &str) -> Someone {
        Someone {
            client: client.clone(),
            namespace: namespace.to_string(),
        }
    }

    fn as_manager(manager: &str) -> PostParams {
        PostParams {
            field_manager: Some(manager.to_string()),
            ..PostParams::default()
        }
    }

    async fn namespace(&self, manager: &str) {
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": self.namespace}
        }))
        .unwrap();
        Api::<Namespace>::all(self.client.clone())
            .create(&Self::as_manager(manager), &namespace)
            .await
            .unwrap();
    }

    async fn config_map(&self, manager: &str) {
        let map: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "theirs"}, "data": {"keep": "me"}
        }))
        .unwrap();
        Api::<ConfigMap>::namespaced(self.client.clone(), &self.namespace)
            .create(&Self::as_manager(manager), &map)
            .await
            .unwrap();
    }

    /// Service `restate` as Restate's Helm chart makes it, with Helm's label and release annotations.
    async fn helm_service(&self) {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "restate",
                "labels": {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/name": "restate"},
                "annotations": {"meta.helm.sh/release-name": "restate", "meta.helm.sh/release-namespace": "restate"}
            },
            "spec": {"selector": {"app.kubernetes.io/name": "restate"},
                     "ports": [{"name": "admin", "port": 9070}, {"name": "ingress", "port": 8080}]}
        }))
        .unwrap();
        Api::<Service>::namespaced(self.client.clone(), &self.namespace)
            .create(&Self::as_manager("helm"), &service)
            .await
            .unwrap();
    }

    /// Each object's kind, name, resourceVersion, labels and annotations: any change shows.
    async fn snapshot(&self) -> Vec<String> {
        let show = |kind: &str, meta: &kube::api::ObjectMeta| {
            format!(
                "{kind} {} v{} labels {:?} annotations {:?}",
                meta.name.clone().unwrap_or_default(),
                meta.resource_version.clone().unwrap_or_default(),
                meta.labels,
                meta.annotations
            )
        };
        let mut seen = Vec::new();
        if let Some(ns) = Api::<Namespace>::all(self.client.clone())
            .get_opt(&self.namespace)
            .await
            .unwrap()
        {
            seen.push(show("Namespace", &ns.metadata));
        }
        let maps = Api::<ConfigMap>::namespaced(self.client.clone(), &self.namespace);
        for map in maps.list(&ListParams::default()).await.unwrap().items {
            // Kubernetes puts its CA bundle into every namespace.
            if map.metadata.name.as_deref() != Some("kube-root-ca.crt") {
                seen.push(show("ConfigMap", &map.metadata));
            }
        }
        let services = Api::<Service>::namespaced(self.client.clone(), &self.namespace);
        for service in services.list(&ListParams::default()).await.unwrap().items {
            let helm = service.labels().get("app.kubernetes.io/managed-by").map(String::as_str) == Some("Helm");
            if helm {
                seen.push(show("Service", &service.metadata));
            }
        }
        seen
    }

    /// The loop's objects in the namespace, by label.
    async fn ours(&self, name: &str) -> Vec<String> {
        let selector = ListParams::default().labels(&format!(
            "app.kubernetes.io/managed-by=restate-dev,dev.restate.loop={name}"
        ));
        let mut found = Vec::new();
        let services = Api::<Service>::namespaced(self.client.clone(), &self.namespace);
        for service in services.list(&selector).await.unwrap().items {
            found.push(format!("Service {}", service.name_any()));
        }
        let accounts = Api::<ServiceAccount>::namespaced(self.client.clone(), &self.namespace);
        for account in accounts.list(&selector).await.unwrap().items {
            found.push(format!("ServiceAccount {}", account.name_any()));
        }
        let sets = Api::<StatefulSet>::namespaced(self.client.clone(), &self.namespace);
        for set in sets.list(&selector).await.unwrap().items {
            found.push(format!("StatefulSet {}", set.name_any()));
        }
        found
    }
}

/// A node image of an older generation (`$KIND_TEST_OLD_NODE_IMAGE`, Kubernetes 1.34: kubeadm's v1beta3 config,
/// and a kubelet that runs on cgroup v1 without being told) comes up and proves an invocation too.
#[tokio::test]
#[ignore = "needs Docker, a node image and the kind CLI: scripts/test.sh builds them and runs this tier"]
async fn an_older_node_image_comes_up() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let sandbox = Sandbox::new();
    let name = loop_name("o");
    let _cleanup = Cleanup::of_loop(&sandbox, &name);
    let image = env(
        "KIND_TEST_OLD_NODE_IMAGE",
        "`scripts/kind-node-image.sh v1.34.4` builds it and prints it",
    );
    let server = restate_server();
    let summary = json(&ok(run(sandbox.restate_dev(
        &name,
        &[
            "up",
            "--node-image",
            &image,
            "--restate-binary",
            &server,
            "--timeout",
            "10m",
            "--output",
            "json",
        ],
    ))));
    assert_eq!(summary["verified"]["answer"], "Hello, restate-dev!", "{summary}");
    let kubeadm = summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "cluster")
        .unwrap();
    eprintln!("cluster step: {kubeadm}");
    let client = sandbox.client(&format!("kind-{name}")).await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, "v1.34.4");
    let config = docker_cli(&["exec", &format!("{name}-control-plane"), "cat", "/kind/kubeadm.conf"]);
    assert!(config.contains("apiVersion: kubeadm.k8s.io/v1beta3"), "{config}");
    ok(run(sandbox.restate_dev(&name, &["down"])));
    assert_eq!(labelled(&name), Vec::<String>::new());
}

/// The sample rebuilt under `reference`, a new image each `build`; its image ID.
fn rebuild_sample(sample: &str, reference: &str, build: u32) -> String {
    derive_from_sample(sample, reference, &format!("LABEL dev.restate.test-build={build}"))
}

/// The everyday loop on kind: a service image rebuilt under the same tag is loaded and rolled out while Restate
/// keeps running, and a stopped node (a reboot, Docker Desktop restarting) comes back with one `up`, on the same
/// URLs, with Restate's state.
#[tokio::test]
#[ignore = "needs Docker, a node image and the kind CLI: scripts/test.sh builds them and runs this tier"]
async fn a_rebuilt_image_rolls_out_and_a_stopped_node_comes_back() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let sandbox = Sandbox::new();
    let name = loop_name("r");
    let _cleanup = Cleanup::of_loop(&sandbox, &name);
    let engine = Docker::connect().await.unwrap();
    let sample = images::sample_image_from(&engine, Path::new(RESTATE_DEV), &Ui::new(None, true))
        .await
        .unwrap();
    let tag = format!("restate-dev.local/rebuilt:{}", std::process::id());
    let first = rebuild_sample(&sample, &tag, 1);
    let (image, server) = (node_image(), restate_server());
    let up_args = [
        "up",
        "--node-image",
        &image,
        "--restate-binary",
        &server,
        "--service-image",
        &tag,
        "--verify",
        "Greeter/greet",
        "--verify-body",
        "\"restate-dev\"",
        "--timeout",
        "10m",
        "--output",
        "json",
    ];
    let summary = json(&ok(run(sandbox.restate_dev(&name, &up_args))));
    let ingress = summary["ingress_url"].as_str().unwrap().to_string();
    let (_, total) = invoke(&ingress, "Counter/c1/add", "2").await;
    assert_eq!(total, "2");
    let client = sandbox.client(&format!("kind-{name}")).await;
    let before = pod_uids(&client, "restate").await;
    let service_image_id = async || {
        let pods = Api::<Pod>::namespaced(client.clone(), "restate");
        let list = pods.list(&ListParams::default().labels("app=service")).await.unwrap();
        let pod = list
            .items
            .into_iter()
            .find(|p| p.metadata.deletion_timestamp.is_none())
            .unwrap();
        pod.status.unwrap().container_statuses.unwrap()[0].image_id.clone()
    };
    let first_running = service_image_id().await;

    let second = rebuild_sample(&sample, &tag, 2);
    assert_ne!(first, second);
    let started = Instant::now();
    let again = json(&ok(run(sandbox.restate_dev(&name, &up_args))));
    eprintln!("up after a rebuild: {:.1}s", started.elapsed().as_secs_f64());
    let steps = statuses(&again);
    assert_eq!(steps["images"], "ok", "the rebuilt image is loaded: {steps:?}");
    assert_eq!(steps["install"], "ok", "the service is rolled out: {steps:?}");
    let after = pod_uids(&client, "restate").await;
    assert_eq!(after.get("restate-0"), before.get("restate-0"), "Restate keeps running");
    let service_pods: Vec<_> = after.keys().filter(|k| k.starts_with("service-")).collect();
    assert_eq!(service_pods.len(), 1, "{after:?}");
    assert!(
        !before.contains_key(service_pods[0]),
        "a new service pod: {before:?} -> {after:?}"
    );
    // The node holds the rebuilt image under the tag, and the new pod runs another image than the old one did
    // (containerd names a pod's image by its manifest digest, not by Docker's image ID).
    let node = format!("{name}-control-plane");
    let in_node = docker_cli(&[
        "exec",
        &node,
        "crictl",
        "inspecti",
        "-o",
        "go-template",
        "--template",
        "{{.status.id}}",
        &tag,
    ]);
    assert_eq!(in_node, second, "the node has the rebuilt image under {tag}");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "restate");
    let pod = pods.get(service_pods[0]).await.unwrap();
    let running = pod.status.unwrap().container_statuses.unwrap()[0].image_id.clone();
    assert_ne!(running, first_running, "the new pod runs the rebuilt image");

    let (_, total) = invoke(&ingress, "Counter/c1/add", "1").await;
    assert_eq!(total, "3", "Restate's state survives the service's rollout");

    // Until the kubelet reports again, the cluster still says what it said before the stop ("1/1 ready", the
    // old pod addresses): up must wait for the new reports, not send requests to addresses no pod has.
    ok(run(docker(&["stop", &node])));
    let started = Instant::now();
    // A bare `up`: the loop's record (readable while its node is stopped) says the rest, the rebuilt image too.
    let bare = ["up", "--timeout", "10m", "--output", "json"];
    let back = json(&ok(run(sandbox.restate_dev(&name, &bare))));
    eprintln!("up after a stop: {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(back["ingress_url"], summary["ingress_url"]);
    assert_eq!(back["admin_url"], summary["admin_url"]);
    let steps = statuses(&back);
    assert_eq!(steps["cluster"], "skipped", "the node is reused: {steps:?}");
    assert_eq!(steps["verify"], "ok", "{steps:?}");
    let restarted = pod_uids(&client, "restate").await;
    assert_eq!(restarted, after, "the same pods, restarted in place");
    let (_, total) = invoke(&ingress, "Counter/c1/add", "1").await;
    assert_eq!(total, "4", "Restate's state survives the stop");
    assert_eq!(back["runtime"], "kind");
    assert_eq!(
        back["verified"]["answer"], "Hello, restate-dev!",
        "the recorded proof: {back}"
    );
    // Found with no runtime flag, and listed.
    let status = json(&ok(run(sandbox.restate_dev(&name, &["status", "--output", "json"]))));
    assert_eq!(status["runtime"], "kind", "{status}");
    let listed = json(&ok(run(sandbox.restate_dev(&name, &["list", "--output", "json"]))));
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name.as_str())
        .cloned();
    assert_eq!(row.map(|r| r["runtime"].clone()), Some("kind".into()), "{listed}");
    ok(run(sandbox.restate_dev(&name, &["down"])));
}

/// Every network named `kind` (Docker allows several).
fn kind_networks() -> usize {
    docker_cli(&["network", "ls", "--filter", "name=^kind$", "--format", "{{.ID}}"])
        .lines()
        .count()
}

/// Two `up`s of one name started at once: the second waits for the first (the loop's lock, which it names),
/// then re-ups the cluster the first made. One cluster and one `kind` network; both exit 0; `down` leaves
/// nothing of the loop. Without the lock they may still both succeed (the later one finding the node made), so
/// the waiting line is what proves they were serialised.
#[tokio::test]
#[ignore = "needs Docker, a node image and the kind CLI: scripts/test.sh builds them and runs this tier"]
async fn two_ups_at_once_give_one_cluster() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let sandbox = Sandbox::new();
    let name = loop_name("t");
    let mut cleanup = Cleanup::of_loop(&sandbox, &name);
    cleanup.networks = kind_network_if_new();
    let image = node_image();
    let server = restate_server();
    let args = [
        "up",
        "--node-image",
        &image,
        "--restate-binary",
        &server,
        "--no-verify",
        "--timeout",
        "10m",
    ];
    let spawn = || {
        sandbox
            .restate_dev(&name, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let started = Instant::now();
    let ups = [spawn(), spawn()];
    let pids = [ups[0].id(), ups[1].id()];
    let outputs: Vec<Output> = ups.into_iter().map(|up| ok(up.wait_with_output().unwrap())).collect();
    eprintln!("two ups at once took {:.1}s", started.elapsed().as_secs_f64());
    let stderrs: Vec<String> = outputs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    let waited: Vec<bool> = (0..2)
        .map(|i| {
            stderrs[i].contains(&format!(
                "waiting for another `up` of loop {name} (pid {})…",
                pids[1 - i]
            ))
        })
        .collect();
    assert!(
        waited[0] != waited[1],
        "exactly one up waits for the other: {stderrs:#?}"
    );
    let made = stderrs.iter().filter(|e| e.contains("✓ cluster ")).count();
    let reused = stderrs.iter().filter(|e| e.contains("· cluster ")).count();
    assert_eq!(
        (made, reused),
        (1, 1),
        "one made the cluster, the other reused it: {stderrs:#?}"
    );
    let ingress = |o: &Output| {
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with("ingress"))
            .map(str::to_string)
    };
    assert_eq!(ingress(&outputs[0]), ingress(&outputs[1]));
    let nodes = docker_cli(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=io.x-k8s.kind.cluster={name}"),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(nodes, format!("{name}-control-plane"));
    assert_eq!(kind_networks(), 1);
    ok(run(sandbox.restate_dev(&name, &["down"])));
    assert_eq!(labelled(&name), Vec::<String>::new());
    assert!(kind_networks() <= 1);
}
