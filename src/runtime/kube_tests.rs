//! `up` on an existing context, end to end against a fake API server on 127.0.0.1 whose `restate-0` pod is a real
//! restate-server (`$RESTATE_SERVER_BIN`) on loopback: the port-forward WebSocket is bridged to its ports. No
//! Docker. Restate cannot resolve the in-cluster service name, so the run ends at `register`, with Restate's own
//! answer having come back through the forward.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::context::tests::kubeconfig;
use crate::cluster::select::Env;
use crate::config::{LoopSettings, ObjectSettings, Resources, Runtime, Verify};
use crate::error::Kind;
use crate::k8s::fake_apiserver::{self, Answer, Seen};
use crate::k8s::mock;
use crate::pipeline::{Pipeline, Status};
use crate::restate::Admin;
use crate::runtime::Plan;
use crate::ui::Ui;

const NAMESPACE: &str = "restate";
const CONTEXT: &str = "fake-cluster";

#[path = "../../tests/support/restate_server.rs"]
mod restate_server;

use restate_server::RestateServer;

/// The real server, healthy.
async fn restate_server() -> RestateServer {
    let server = RestateServer::start();
    let admin = Admin::new(&format!("http://{}", loopback(server.admin))).expect("admin URL");
    if let Err(e) = admin.wait_healthy(Duration::from_secs(60)).await {
        panic!("{e}\n{}", server.log_tail());
    }
    server
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The API server's side of a cluster where everything applied becomes ready at once: applied objects are kept
/// by path and read back, workloads with ready status; `restate-0` is Restate's ready pod, and its ports are the
/// real restate-server's; the service has one ready pod too.
fn cluster(
    pod_ports: HashMap<u16, SocketAddr>,
    restate_log: PathBuf,
) -> impl Fn(&Seen) -> Answer + Send + Sync + 'static {
    let objects: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
    let sts = format!("/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/restate");
    let deployment = format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/service");
    let pods = format!("/api/v1/namespaces/{NAMESPACE}/pods");
    let portforward = format!("/api/v1/namespaces/{NAMESPACE}/pods/restate-0/portforward");
    let slices = format!("/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices");
    let logs = format!("/api/v1/namespaces/{NAMESPACE}/pods/restate-0/log");
    move |seen| {
        let mut objects = objects.lock().expect("lock");
        let content_type = seen.content_type.as_deref();
        match (seen.method.as_str(), content_type) {
            ("GET", _) if seen.path == "/version" => Answer::ok(fake_apiserver::version()),
            ("PATCH", Some("application/apply-patch+yaml")) => {
                objects.insert(seen.path.clone(), seen.json());
                Answer::ok(seen.json())
            }
            // A create (the namespace): stored under its own path.
            ("POST", _) => {
                let name = seen.json()["metadata"]["name"].as_str().unwrap_or_default().to_string();
                objects.insert(format!("{}/{name}", seen.path), seen.json());
                Answer::Json(201, seen.json())
            }
            ("PATCH", Some("application/merge-patch+json")) => match objects.get_mut(&seen.path) {
                Some(object) => {
                    merge(object, seen.json());
                    Answer::ok(object.clone())
                }
                None => Answer::not_found(seen),
            },
            ("GET", _) if seen.path == pods => {
                let selected = seen.params().get("labelSelector").cloned().unwrap_or_default();
                let name = if selected == "app=service" {
                    "service-7d4f9-x2k8q"
                } else {
                    "restate-0"
                };
                Answer::ok(mock::list("v1", "PodList", vec![fake_apiserver::pod(name, true)]))
            }
            ("GET", _) if seen.path == slices => Answer::ok(fake_apiserver::endpoints_to_the_pod()),
            ("GET", _) if seen.path == logs => Answer::Text(std::fs::read_to_string(&restate_log).unwrap_or_default()),
            ("GET", _) if seen.path == portforward => {
                let port = fake_apiserver::forwarded_port(seen);
                let target = *pod_ports.get(&port).expect("a port restate-0 listens on");
                Answer::WebSocket(Box::new(move |ws| Box::pin(fake_apiserver::bridge(ws, port, target))))
            }
            ("GET", _) => match objects.get(&seen.path) {
                Some(object) if seen.path == sts || seen.path == deployment => {
                    let mut object = object.clone();
                    let want = object["spec"]["replicas"].as_i64().unwrap_or(1);
                    object["status"] = json!({"replicas": want, "readyReplicas": want, "updatedReplicas": want,
                        "availableReplicas": want});
                    Answer::ok(object)
                }
                Some(object) => Answer::ok(object.clone()),
                None => Answer::not_found(seen),
            },
            _ => Answer::not_found(seen),
        }
    }
}

/// JSON merge patch (RFC 7386).
fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(&key);
                } else {
                    merge(target.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch,
    }
}

fn plan(timeout: Duration) -> Plan {
    Plan {
        name: "demo".into(),
        objects: ObjectSettings {
            name: "demo".into(),
            namespace: NAMESPACE.into(),
            replicas: 1,
            restate_image: "docker.restate.dev/restatedev/restate:1.7.12".into(),
            service_image: Some("example.test/greeter:1.0".into()),
            envoy_image: "envoyproxy/envoy:distroless-v1.37.2".into(),
            resources: Resources::default(),
            storage_size: "3Gi".into(),
        },
        setup: LoopSettings {
            runtime: Runtime::Context(CONTEXT.into()),
            ingress_port: None,
            admin_port: None,
            node_image: None,
            restate_binary: None,
            timeout,
            verify: Verify::Sample,
        },
        retain: false,
        record: Default::default(),
        user_set: Vec::new(),
    }
}

#[tokio::test]
#[ignore = "needs the real restate-server: scripts/test.sh installs it and runs this tier"]
async fn up_on_a_context_installs_forwards_and_registers_through_the_real_admin() {
    let restate = restate_server().await;
    let ports = HashMap::from([(9070, loopback(restate.admin)), (8080, loopback(restate.ingress))]);
    let server = fake_apiserver::start(cluster(ports, restate.log.clone())).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let env = Env {
        kubeconfig: Some(kubeconfig(dir.path(), &[(CONTEXT, server.url())])),
        ..Env::default()
    };
    let timeout = Duration::from_secs(8);
    let mut pipeline = Pipeline::new(&Ui::new(None, true));

    let started = Instant::now();
    let error = super::kube::up_in(&plan(timeout), &mut pipeline, &env)
        .await
        .expect_err("Restate cannot resolve the in-cluster service name");
    let took = started.elapsed();

    let uri = "http://service.restate.svc.cluster.local:9080";
    assert_eq!(error.kind, Kind::Timeout, "{error:?}");
    assert_eq!(
        error.message,
        format!("Restate cannot reach the service at {uri} (still so after 8s)")
    );
    // Restate's own problem text came back through the forward, not a refused connection.
    let said = error
        .details
        .iter()
        .find(|d| d.starts_with("Restate said: "))
        .expect("Restate's words");
    assert!(said.contains("META0003"), "{said}");
    // Beside it, what Restate logged about the service meanwhile (read from the pod's log), and the service's pods.
    assert!(
        error
            .details
            .iter()
            .any(|d| d.starts_with("Restate (restate-0) logged: ") && d.contains(uri)),
        "{error:?}"
    );
    assert!(
        error.details.iter().any(|d| d == "pod service-7d4f9-x2k8q: Running"),
        "{error:?}"
    );
    assert!(took >= timeout && took < timeout + Duration::from_secs(10), "{took:?}");

    let steps: Vec<(&str, Status)> = pipeline.steps.iter().map(|s| (s.step, s.status)).collect();
    assert_eq!(
        steps,
        [
            ("preflight", Status::Ok),
            ("cluster", Status::Skipped),
            ("images", Status::Skipped),
            ("install", Status::Ok),
            ("register", Status::Failed),
        ]
    );
    let install = &pipeline.steps[3];
    assert!(
        install.detail.contains("objects in namespace restate changed"),
        "{}",
        install.detail
    );

    let seen = server.seen();
    let applied: Vec<&str> = seen
        .iter()
        .filter(|s| s.content_type.as_deref() == Some("application/apply-patch+yaml"))
        .inspect(|s| {
            assert_eq!(s.method, "PATCH");
            let params = s.params();
            assert_eq!(params.get("fieldManager").map(String::as_str), Some("restate-dev"));
            assert_eq!(params.get("force").map(String::as_str), Some("true"));
        })
        .map(|s| s.path.as_str())
        .collect();
    // The namespace, which did not exist, was created first (a create cannot take another loop's over), then
    // applied with the rest.
    assert!(
        seen.iter()
            .any(|s| s.method == "POST" && s.path == "/api/v1/namespaces")
    );
    assert_eq!(
        applied,
        [
            "/api/v1/namespaces/restate",
            "/api/v1/namespaces/restate/serviceaccounts/restate",
            "/api/v1/namespaces/restate/services/restate-cluster",
            "/api/v1/namespaces/restate/services/restate",
            "/apis/apps/v1/namespaces/restate/statefulsets/restate",
            "/api/v1/namespaces/restate/services/service",
            "/apis/apps/v1/namespaces/restate/deployments/service",
        ]
    );
    // Pods are read by the forwards (Restate's) and by the endpoints wait (the service's, as its Service selects).
    let selectors: BTreeSet<String> = seen
        .iter()
        .filter(|s| s.path == "/api/v1/namespaces/restate/pods")
        .filter_map(|s| s.params().get("labelSelector").cloned())
        .collect();
    assert_eq!(selectors, BTreeSet::from(["app=restate".into(), "app=service".into()]));
    let slices = seen.iter().filter(|s| s.path.ends_with("/endpointslices"));
    let services: Vec<_> = slices
        .filter_map(|s| s.params().get("labelSelector").cloned())
        .collect();
    assert_eq!(services, ["kubernetes.io/service-name=service"]);

    let read = seen
        .iter()
        .find(|s| s.path.ends_with("/pods/restate-0/log"))
        .expect("Restate's log read");
    let params = read.params();
    assert_eq!(params.get("container").map(String::as_str), Some("restate"));
    let since: u64 = params
        .get("sinceSeconds")
        .expect("only since registering")
        .parse()
        .unwrap();
    assert!((1..=30).contains(&since), "{since}");

    let annotated: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.content_type.as_deref() == Some("application/merge-patch+json"))
        .collect();
    assert_eq!(annotated.len(), 1);
    assert_eq!(annotated[0].path, "/api/v1/namespaces/restate/services/restate");
    assert_eq!(
        annotated[0].params().get("fieldManager").map(String::as_str),
        Some("restate-dev-port-forward")
    );
    let record = annotated[0].json()["metadata"]["annotations"]["dev.restate/port-forward"].clone();
    let ports: Value = serde_json::from_str(record.as_str().expect("a JSON string")).expect("JSON");
    assert!(ports["ingress"].as_u64().is_some_and(|p| p > 0), "{ports}");
    assert!(ports["admin"].as_u64().is_some_and(|p| p > 0), "{ports}");

    // Registration went to the admin port only: every attempt a WebSocket to restate-0's 9070.
    let forwards: Vec<String> = seen
        .iter()
        .filter(|s| s.path.ends_with("/portforward"))
        .map(|s| format!("{}?{}", s.path, s.query))
        .collect();
    assert!(!forwards.is_empty());
    assert!(
        forwards
            .iter()
            .all(|f| f == "/api/v1/namespaces/restate/pods/restate-0/portforward?&ports=9070"),
        "{forwards:?}"
    );
    eprintln!("up took {took:?}; {} requests to the fake API server", seen.len());
}

/// A rebuilt image under the same tag: the live pod template carries the old ID, so applying the new one rolls
/// that workload, and `up` says so. A workload that does not exist yet, or an existing cluster without IDs, is not
/// "changed".
#[tokio::test]
#[ignore = "needs the real restate-server: scripts/test.sh installs it and runs this tier"]
async fn a_changed_image_id_is_seen_on_the_live_pod_template() {
    use crate::k8s::objects::{IMAGE_ID_ANNOTATION, ImageIds};

    let template = |id: &str| json!({ "metadata": { "annotations": { IMAGE_ID_ANNOTATION: id } } });
    let (client, mut server) = mock::client();
    let ids = ImageIds {
        restate: Some("sha256:aaa".into()),
        service: Some("sha256:222".into()),
    };
    let asked = tokio::spawn({
        let (client, ids) = (client.clone(), ids.clone());
        async move { super::kube::changed_images(&client, NAMESPACE, &ids).await }
    });
    let (_, reply) = server
        .expect("GET", "/apis/apps/v1/namespaces/restate/statefulsets/restate")
        .await;
    reply.json(
        200,
        json!({ "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": { "name": "restate" },
        "spec": { "selector": {}, "serviceName": "restate-cluster", "template": template("sha256:aaa") } }),
    );
    let (_, reply) = server
        .expect("GET", "/apis/apps/v1/namespaces/restate/deployments/service")
        .await;
    reply.json(
        200,
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "service" },
        "spec": { "selector": {}, "template": template("sha256:111") } }),
    );
    assert_eq!(asked.await.unwrap().unwrap(), ["service"]);

    let asked = tokio::spawn({
        let client = client.clone();
        async move { super::kube::changed_images(&client, NAMESPACE, &ids).await }
    });
    let (_, reply) = server.next().await;
    reply.json(404, mock::not_found("statefulsets.apps", "restate"));
    let (_, reply) = server.next().await;
    reply.json(404, mock::not_found("deployments.apps", "service"));
    assert!(
        asked.await.unwrap().unwrap().is_empty(),
        "a first install changes nothing"
    );

    // Without IDs (an existing context pulls by tag) nothing is asked at all.
    let none = super::kube::changed_images(&client, NAMESPACE, &ImageIds::default()).await;
    assert!(none.unwrap().is_empty());
}

/// After a rollout, the old ReplicaSet's crash-looping pod is terminating while the new one runs: the service is
/// alive. A crash-looping pod that is not terminating still fails it.
#[tokio::test]
async fn a_terminating_pod_that_crash_loops_does_not_fail_the_service() {
    let pod = |name: &str, terminating: bool, waiting: Option<&str>| {
        let state = match waiting {
            Some(reason) => json!({ "waiting": { "reason": reason } }),
            None => json!({ "running": {} }),
        };
        let mut metadata = json!({ "name": name, "namespace": NAMESPACE, "labels": { "app": "service" } });
        if terminating {
            metadata["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        }
        json!({ "metadata": metadata, "status": { "phase": "Running", "containerStatuses": [
            { "name": "service", "image": "s", "imageID": "", "ready": waiting.is_none(), "restartCount": 3,
              "state": state } ] } })
    };
    let list = |items: Vec<Value>| json!({ "apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items });

    let (client, mut server) = mock::client();
    let alive = tokio::spawn({
        let client = client.clone();
        async move { super::kube::service_alive(&client, NAMESPACE).await }
    });
    let (_, reply) = server.expect("GET", "/api/v1/namespaces/restate/pods").await;
    reply.json(
        200,
        list(vec![
            pod("service-old", true, Some("CrashLoopBackOff")),
            pod("service-new", false, None),
        ]),
    );
    // Anything more (the diagnosis of a dead service) finds no server.
    drop(server);
    alive.await.unwrap().expect("the terminating pod is not the service");

    let (client, mut server) = mock::client();
    let alive = tokio::spawn(async move { super::kube::service_alive(&client, NAMESPACE).await });
    let (_, reply) = server.expect("GET", "/api/v1/namespaces/restate/pods").await;
    reply.json(200, list(vec![pod("service-new", false, Some("CrashLoopBackOff"))]));
    drop(server);
    let error = alive
        .await
        .unwrap()
        .expect_err("a current crash-loop fails the service");
    assert!(
        error
            .message
            .contains("pod service-new: container service is in CrashLoopBackOff"),
        "{}",
        error.message
    );
}
