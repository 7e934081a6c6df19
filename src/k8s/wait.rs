//! Bounded waits for a workload to be ready, with progress. Polls the workload and its pods once a second rather
//! than watching: one loop both reads readiness and looks at the pods for causes that waiting will not fix, so it
//! can fail early (with the diagnosis) instead of sitting out the whole timeout on ErrImagePull.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::k8s::diagnose::{api_message, diagnose, is_ready, stuck_cause};
use crate::ui::{Ui, format_duration};

const POLL: Duration = Duration::from_secs(1);
/// How long a stuck cause must persist before the wait gives up early. Long enough for a fresh node's
/// not-ready taint, a PVC being provisioned, or one failed pull to clear.
pub const STUCK_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    StatefulSet,
    Deployment,
}

impl Workload {
    fn kind(self) -> &'static str {
        match self {
            Workload::StatefulSet => "StatefulSet",
            Workload::Deployment => "Deployment",
        }
    }
}

/// Where a workload stands: ready or not, a short progress text, how many pods it wants, and their selector.
struct Progress {
    ready: bool,
    text: String,
    want: i32,
    selector: Option<String>,
}

/// Waits until the workload's pods are all ready and updated, and, with `node_started`, every pod it counts
/// has reported from a container started since then (after a node restart the last statuses from before it
/// still say "ready" until the kubelet reports again). Fails with Kind::Timeout after `timeout`, or with
/// Kind::Failed once a stuck cause has persisted for [`STUCK_GRACE`]; both carry the diagnosis.
pub async fn wait_ready(
    client: &kube::Client,
    workload: Workload,
    (namespace, name): (&str, &str),
    node_started: Option<Timestamp>,
    timeout: Duration,
    ui: &Ui,
) -> Result<()> {
    let id = format!("{} {namespace}/{name}", workload.kind());
    let step = ui.step(format!("wait for {}", workload.kind()));
    let mut last = Progress {
        ready: false,
        text: "not seen yet".into(),
        want: 1,
        selector: None,
    };
    let target = (workload, namespace, name);
    let outcome = tokio::time::timeout(
        timeout,
        poll_until_ready(client, target, node_started, &step, &mut last),
    )
    .await;
    let selector = last.selector.clone().unwrap_or_else(|| format!("app={name}"));
    let failure = match outcome {
        Ok(Ok(())) => {
            step.done(format!("{id}: {}", last.text));
            return Ok(());
        }
        Ok(Err(cause)) => Error::failed(format!("{id} will not become ready: {cause}"))
            .hint("fix the cause shown above, then run `restate-dev up` again"),
        Err(_) => Error::timeout(format!(
            "{id} was not ready within {} ({})",
            format_duration(timeout),
            last.text
        ))
        .hint("see the diagnosis above; a slow first image pull may need a longer --timeout"),
    };
    drop(step);
    let mut error = failure;
    for line in diagnose(client, namespace, &selector).await {
        error = error.detail(line);
    }
    Err(error)
}

/// Polls until ready (Ok) or until a stuck cause outlives the grace period (Err with the cause).
async fn poll_until_ready(
    client: &kube::Client,
    (workload, namespace, name): (Workload, &str, &str),
    node_started: Option<Timestamp>,
    step: &crate::ui::Step,
    last: &mut Progress,
) -> std::result::Result<(), String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut stuck_since: Option<Instant> = None;
    loop {
        match progress(client, workload, namespace, name).await {
            Ok(progress) => *last = progress,
            Err(e) => last.text = e,
        }
        if last.ready && node_started.is_none() {
            return Ok(());
        }
        let listed = match &last.selector {
            Some(selector) => pods
                .list(&ListParams::default().labels(selector))
                .await
                .map(|list| list.items),
            None => Ok(Vec::new()),
        };
        if let (true, Some(since)) = (last.ready, node_started) {
            last.ready = false;
            last.text = match &listed {
                Ok(pods) => {
                    let current = pods.iter().filter(|pod| ready_since(pod, since)).count();
                    if i32::try_from(current).is_ok_and(|current| current >= last.want) {
                        return Ok(());
                    }
                    format!("{current}/{} ready since the node started", last.want)
                }
                Err(e) => format!("cannot read its pods: {}", api_message(e)),
            };
        }
        let listed = listed.unwrap_or_default();
        match listed.iter().find_map(stuck_cause) {
            Some(cause) => {
                let since = *stuck_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= STUCK_GRACE {
                    return Err(cause);
                }
                step.set_message(format!("{}; {cause}", last.text));
            }
            None => {
                stuck_since = None;
                step.set_message(last.text.clone());
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// True when the pod is ready and not going away, and each of its containers has run since `since`: a status
/// claiming a container ran from before the node started is one the kubelet has not renewed yet.
fn ready_since(pod: &Pod, since: Timestamp) -> bool {
    // Kubernetes writes whole seconds.
    let since = Timestamp::from_second(since.as_second()).unwrap_or(since);
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    let current = !containers.is_empty()
        && containers.iter().all(|c| {
            let started = c
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.as_ref());
            started.is_some_and(|at| at.0 >= since)
        });
    pod.metadata.deletion_timestamp.is_none() && is_ready(pod) && current
}

/// Waits until each of `services` (in `namespace`) sends traffic to its ready pods only: its EndpointSlices list
/// exactly their addresses. Right after a node restart, and for a moment after any rollout, they still list old
/// pods' addresses, and a connection to an address no pod has leaves the node by its default route.
pub async fn wait_endpoints(
    client: &kube::Client,
    namespace: &str,
    services: &[&str],
    timeout: Duration,
    ui: &Ui,
) -> Result<()> {
    let step = ui.step("wait for endpoints");
    let mut routes = Vec::new();
    for service in services {
        let mut last = String::from("not read yet");
        let polled = tokio::time::timeout(timeout, async {
            loop {
                match routing(client, namespace, service).await {
                    Ok(Routing::Current(to)) => return Ok(to),
                    Ok(Routing::Unreadable(why)) => return Err(why),
                    Ok(Routing::Stale(why)) | Err(why) => last = why,
                }
                step.set_message(format!("Service {service}: {last}"));
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
        match polled {
            Ok(Ok(to)) => routes.push(format!("{service} -> {to}")),
            // A role that may not read endpoints loses this check, not the loop.
            Ok(Err(why)) => {
                ui.warn(format!(
                    "not checking that Service {namespace}/{service} routes to its ready pods: {why}"
                ));
                routes.push(format!("{service} not checked"));
            }
            Err(_) => {
                return Err(Error::timeout(format!(
                    "Service {namespace}/{service} did not route to its ready pods within {}: {last}",
                    format_duration(timeout)
                ))
                .hint(format!(
                    "the controller manager keeps a Service's endpoints current; `kubectl -n {namespace} get \
                     endpointslices,pods -o wide` shows both"
                )));
            }
        }
    }
    step.done(routes.join(", "));
    Ok(())
}

enum Routing {
    /// The addresses, which are those of the ready pods.
    Current(String),
    /// Why not yet.
    Stale(String),
    /// Refused to us (401, 403): waiting will not change that.
    Unreadable(String),
}

async fn routing(client: &kube::Client, namespace: &str, service: &str) -> std::result::Result<Routing, String> {
    let read = |what: &str, e: kube::Error| format!("cannot read its {what}: {}", api_message(&e));
    let refused = |what: &str, e: kube::Error| match &e {
        kube::Error::Api(s) if matches!(s.code, 401 | 403) => Ok(Routing::Unreadable(read(what, e))),
        _ => Err(read(what, e)),
    };
    let spec = match Api::<Service>::namespaced(client.clone(), namespace).get(service).await {
        Ok(found) => found.spec.unwrap_or_default(),
        Err(e) => return refused("definition", e),
    };
    let selector = spec.selector.unwrap_or_default();
    if selector.is_empty() {
        return Ok(Routing::Current("its own endpoints".into()));
    }
    let selector = ListParams::default().labels(&crate::labels::to_selector(&selector));
    let pods = match Api::<Pod>::namespaced(client.clone(), namespace).list(&selector).await {
        Ok(list) => list.items,
        Err(e) => return refused("pods", e),
    };
    let by_service = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let slices = match Api::<EndpointSlice>::namespaced(client.clone(), namespace)
        .list(&by_service)
        .await
    {
        Ok(list) => list.items,
        Err(e) => return refused("endpoints", e),
    };
    Ok(compare_routes(&pods, &slices, &spec.ip_families.unwrap_or_default()))
}

/// Whether the slices' ready addresses are exactly the ready pods' addresses (and there is one at least), in the
/// Service's IP families (a single-stack Service on a dual-stack cluster routes to one of each pod's two).
fn compare_routes(pods: &[Pod], slices: &[EndpointSlice], families: &[String]) -> Routing {
    let families: BTreeSet<&str> = match families.is_empty() {
        true => slices.iter().map(|s| s.address_type.as_str()).collect(),
        false => families.iter().map(String::as_str).collect(),
    };
    let family = |ip: &str| if ip.contains(':') { "IPv6" } else { "IPv4" };
    let ready_pods: BTreeSet<String> = pods
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none() && is_ready(pod))
        .flat_map(|pod| pod.status.iter().flat_map(|s| s.pod_ips.iter().flatten()))
        .map(|ip| ip.ip.clone())
        .filter(|ip| families.is_empty() || families.contains(family(ip)))
        .collect();
    let routed: BTreeSet<String> = slices
        .iter()
        .flat_map(|slice| &slice.endpoints)
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .flat_map(|e| e.addresses.iter().cloned())
        .collect();
    let list = |set: &BTreeSet<String>| match set.is_empty() {
        true => "nothing".to_string(),
        false => set.iter().cloned().collect::<Vec<_>>().join(", "),
    };
    if ready_pods.is_empty() {
        Routing::Stale("no ready pod yet".into())
    } else if routed == ready_pods {
        Routing::Current(list(&routed))
    } else {
        Routing::Stale(format!(
            "routes to {}, its ready pods are at {}",
            list(&routed),
            list(&ready_pods)
        ))
    }
}

async fn progress(
    client: &kube::Client,
    workload: Workload,
    namespace: &str,
    name: &str,
) -> std::result::Result<Progress, String> {
    let not_found = |e: kube::Error| match &e {
        kube::Error::Api(s) if s.code == 404 => "not created yet".to_string(),
        _ => format!("cannot read it: {}", api_message(&e)),
    };
    match workload {
        Workload::StatefulSet => {
            let sts = Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .get(name)
                .await
                .map_err(not_found)?;
            Ok(statefulset_progress(&sts))
        }
        Workload::Deployment => {
            let deploy = Api::<Deployment>::namespaced(client.clone(), namespace)
                .get(name)
                .await
                .map_err(not_found)?;
            Ok(deployment_progress(&deploy))
        }
    }
}

fn observed(meta: &ObjectMeta, observed_generation: Option<i64>) -> bool {
    match (meta.generation, observed_generation) {
        (Some(want), Some(seen)) => seen >= want,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

fn statefulset_progress(sts: &StatefulSet) -> Progress {
    let spec = sts.spec.as_ref();
    let want = spec.and_then(|s| s.replicas).unwrap_or(1);
    let status = sts.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let current = observed(&sts.metadata, status.observed_generation);
    Progress {
        ready: current && ready >= want && updated >= want,
        text: format!("{ready}/{want} ready"),
        want,
        selector: spec.and_then(|s| label_selector(&s.selector)),
    }
}

fn deployment_progress(deploy: &Deployment) -> Progress {
    let spec = deploy.spec.as_ref();
    let want = spec.and_then(|s| s.replicas).unwrap_or(1);
    let status = deploy.status.clone().unwrap_or_default();
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let current = observed(&deploy.metadata, status.observed_generation);
    let text = if total > updated {
        format!("{available}/{want} available, {} old pods terminating", total - updated)
    } else {
        format!("{available}/{want} available")
    };
    Progress {
        ready: current && updated >= want && total <= updated && available >= updated,
        text,
        want,
        selector: spec.and_then(|s| label_selector(&s.selector)),
    }
}

/// `matchLabels` as a selector string; our workloads use no `matchExpressions`.
fn label_selector(selector: &LabelSelector) -> Option<String> {
    let labels: &BTreeMap<String, String> = selector.match_labels.as_ref()?;
    (!labels.is_empty()).then(|| crate::labels::to_selector(labels))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use serde_json::{Value, json};

    use super::*;
    use crate::error::Kind;
    use crate::k8s::diagnose::tests::image_pull_pod;
    use crate::k8s::mock;

    const STS: &str = "/apis/apps/v1/namespaces/restate/statefulsets/restate";
    const PODS: &str = "/api/v1/namespaces/restate/pods";
    const EVENTS: &str = "/api/v1/namespaces/restate/events";

    fn statefulset(ready: i32) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": "restate", "namespace": "restate", "generation": 1},
               "spec": {"replicas": 1, "serviceName": "restate-cluster",
                        "selector": {"matchLabels": {"app": "restate"}}, "template": {}},
               "status": {"replicas": 1, "observedGeneration": 1, "readyReplicas": ready, "updatedReplicas": 1}})
    }

    fn creating_pod() -> Value {
        json!({"metadata": {"name": "restate-0"}, "status": {"phase": "Pending", "containerStatuses": [
            {"name": "restate", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ContainerCreating"}}}]}})
    }

    fn quiet() -> Ui {
        Ui::new(None, true)
    }

    #[tokio::test(start_paused = true)]
    async fn waits_through_not_ready_until_ready() {
        let (client, server) = mock::client();
        let reads = AtomicU32::new(0);
        let serving = tokio::spawn(server.serve(move |seen| match seen.path.as_str() {
            STS => {
                let n = reads.fetch_add(1, Ordering::SeqCst);
                (200, statefulset(if n < 2 { 0 } else { 1 }))
            }
            PODS => (200, mock::list("v1", "PodList", vec![creating_pod()])),
            other => panic!("unexpected request {other}"),
        }));
        wait_ready(
            &client,
            Workload::StatefulSet,
            ("restate", "restate"),
            None,
            Duration::from_secs(60),
            &quiet(),
        )
        .await
        .expect("ready");
        drop(client);
        let seen = serving.await.expect("server");
        let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, [STS, PODS, STS, PODS, STS]);
        assert_eq!(
            seen[1].query.get("labelSelector").map(String::as_str),
            Some("app=restate")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_carries_the_diagnosis() {
        let (client, server) = mock::client();
        let serving = tokio::spawn(server.serve(|seen| match seen.path.as_str() {
            STS => (200, statefulset(0)),
            PODS => (200, mock::list("v1", "PodList", vec![creating_pod()])),
            EVENTS => (200, mock::list("v1", "EventList", vec![])),
            other => panic!("unexpected request {other}"),
        }));
        let started = Instant::now();
        let error = wait_ready(
            &client,
            Workload::StatefulSet,
            ("restate", "restate"),
            None,
            Duration::from_secs(20),
            &quiet(),
        )
        .await
        .expect_err("times out");
        assert!(started.elapsed() >= Duration::from_secs(20));
        drop(client);
        serving.await.expect("server");
        assert_eq!(error.kind, Kind::Timeout);
        assert_eq!(
            error.message,
            "StatefulSet restate/restate was not ready within 20.0s (0/1 ready)"
        );
        assert!(error.details.iter().any(|l| l == "pod restate-0: Pending"), "{error}");
        assert!(
            error.details.iter().any(|l| l.contains("waiting ContainerCreating")),
            "{error}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_pod_fails_early_after_the_grace_period() {
        let (client, server) = mock::client();
        let serving = tokio::spawn(server.serve(|seen| match seen.path.as_str() {
            "/apis/apps/v1/namespaces/restate/deployments/greeter" => (
                200,
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "greeter", "namespace": "restate", "generation": 1},
                       "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "greeter"}}, "template": {}},
                       "status": {"replicas": 1, "observedGeneration": 1, "updatedReplicas": 1}}),
            ),
            PODS => (200, mock::list("v1", "PodList", vec![image_pull_pod()])),
            EVENTS => (200, mock::list("v1", "EventList", vec![])),
            other => panic!("unexpected request {other}"),
        }));
        let started = Instant::now();
        let error = wait_ready(
            &client,
            Workload::Deployment,
            ("restate", "greeter"),
            None,
            Duration::from_secs(300),
            &quiet(),
        )
        .await
        .expect_err("fails early");
        let waited = started.elapsed();
        assert!(
            waited >= STUCK_GRACE && waited < STUCK_GRACE + Duration::from_secs(5),
            "{waited:?}"
        );
        drop(client);
        serving.await.expect("server");
        assert_eq!(error.kind, Kind::Failed);
        assert!(
            error
                .message
                .contains("Deployment restate/greeter will not become ready"),
            "{error}"
        );
        assert!(
            error.message.contains("container greeter is in ErrImagePull"),
            "{error}"
        );
        assert!(
            error.details.iter().any(|l| l.contains("failed to pull image")),
            "{error}"
        );
    }

    #[test]
    fn a_deployment_with_old_pods_is_not_ready() {
        let deploy: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "g", "generation": 2},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "g"}}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}}))
        .expect("a deployment");
        let progress = deployment_progress(&deploy);
        assert!(!progress.ready);
        assert_eq!(progress.text, "1/1 available, 1 old pods terminating");
        assert_eq!(progress.selector.as_deref(), Some("app=g"));
    }

    /// A ready `restate-0` at `ip` whose container has run since `started` (seconds of the Unix epoch).
    fn running_pod(ip: &str, started: i64) -> Value {
        let started = Timestamp::from_second(started).expect("a time").to_string();
        json!({"metadata": {"name": "restate-0"}, "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "restate", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
                                   "state": {"running": {"startedAt": started}}}]}})
    }

    const BOOT: i64 = 1_796_170_657;

    #[test]
    fn only_a_container_started_since_the_node_did_counts() {
        let boot = Timestamp::from_second(BOOT).unwrap() + std::time::Duration::from_millis(173);
        let pod = |started| serde_json::from_value::<Pod>(running_pod("10.244.0.5", started)).unwrap();
        assert!(!ready_since(&pod(BOOT - 60), boot), "a status from before the restart");
        // Kubernetes writes whole seconds: a container started in the node's own second counts.
        assert!(ready_since(&pod(BOOT), boot));
        assert!(ready_since(&pod(BOOT + 9), boot));
        let mut waiting = running_pod("10.244.0.5", BOOT + 9);
        waiting["status"]["containerStatuses"][0]["state"] = json!({"waiting": {"reason": "ContainerCreating"}});
        assert!(!ready_since(&serde_json::from_value(waiting).unwrap(), boot));
    }

    /// After a node restart the StatefulSet still says 1/1 ready: the wait goes on until the pod has reported
    /// from a container of this boot.
    #[tokio::test(start_paused = true)]
    async fn a_status_from_before_the_node_restarted_is_not_trusted() {
        let (client, server) = mock::client();
        let reads = AtomicU32::new(0);
        let serving = tokio::spawn(server.serve(move |seen| match seen.path.as_str() {
            STS => (200, statefulset(1)),
            PODS => {
                let n = reads.fetch_add(1, Ordering::SeqCst);
                let started = if n < 2 { BOOT - 60 } else { BOOT + 8 };
                (
                    200,
                    mock::list("v1", "PodList", vec![running_pod("10.244.0.5", started)]),
                )
            }
            other => panic!("unexpected request {other}"),
        }));
        let boot = Some(Timestamp::from_second(BOOT).unwrap());
        let target = ("restate", "restate");
        wait_ready(
            &client,
            Workload::StatefulSet,
            target,
            boot,
            Duration::from_secs(60),
            &quiet(),
        )
        .await
        .expect("ready");
        drop(client);
        let paths: Vec<String> = serving.await.expect("server").into_iter().map(|s| s.path).collect();
        assert_eq!(paths, [STS, PODS, STS, PODS, STS, PODS]);
    }

    fn slices(addresses: &[(&str, bool)]) -> Vec<EndpointSlice> {
        let endpoints: Vec<Value> = addresses
            .iter()
            .map(|(ip, ready)| json!({"addresses": [ip], "conditions": {"ready": ready}}))
            .collect();
        vec![
            serde_json::from_value(json!({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": endpoints}))
                .unwrap(),
        ]
    }

    fn pods(ips: &[&str]) -> Vec<Pod> {
        ips.iter()
            .map(|ip| serde_json::from_value(running_pod(ip, BOOT)).unwrap())
            .collect()
    }

    #[test]
    fn endpoints_are_current_when_they_are_the_ready_pods() {
        let current = |pods: &[Pod], slices: &[EndpointSlice]| match compare_routes(pods, slices, &[]) {
            Routing::Current(to) => Ok(to),
            Routing::Stale(why) | Routing::Unreadable(why) => Err(why),
        };
        let now = pods(&["10.244.0.5"]);
        assert_eq!(current(&now, &slices(&[("10.244.0.5", true)])), Ok("10.244.0.5".into()));
        // A terminating old pod's endpoint, no longer ready, is not a route.
        let draining = slices(&[("10.244.0.5", true), ("10.244.0.2", false)]);
        assert_eq!(current(&now, &draining), Ok("10.244.0.5".into()));
        assert_eq!(
            current(&now, &slices(&[("10.244.0.2", true)])),
            Err("routes to 10.244.0.2, its ready pods are at 10.244.0.5".into())
        );
        assert_eq!(
            current(&now, &[]),
            Err("routes to nothing, its ready pods are at 10.244.0.5".into())
        );
        assert_eq!(current(&[], &[]), Err("no ready pod yet".into()));
    }

    #[test]
    fn a_single_stack_service_on_a_dual_stack_cluster_routes_to_one_address_per_pod() {
        let mut pod = running_pod("10.244.0.5", BOOT);
        pod["status"]["podIPs"] = json!([{"ip": "10.244.0.5"}, {"ip": "fd00:10:244::5"}]);
        let pods = vec![serde_json::from_value::<Pod>(pod).unwrap()];
        let v4 = slices(&[("10.244.0.5", true)]);
        for families in [vec!["IPv4".to_string()], vec![]] {
            assert!(
                matches!(compare_routes(&pods, &v4, &families), Routing::Current(to) if to == "10.244.0.5"),
                "{families:?}"
            );
        }
        let both = ["IPv4".to_string(), "IPv6".to_string()];
        assert!(matches!(compare_routes(&pods, &v4, &both), Routing::Stale(_)));
    }

    /// The API server's side of Service `service` with one ready pod at 10.244.0.5, answering its EndpointSlice
    /// list with `slices`.
    fn service_with_one_pod(slices: (u16, Value)) -> impl FnMut(&mock::Seen) -> (u16, Value) {
        move |seen| match seen.path.as_str() {
            "/api/v1/namespaces/restate/services/service" => (
                200,
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "service"},
                       "spec": {"selector": {"app": "service"}}}),
            ),
            PODS => (200, mock::list("v1", "PodList", vec![running_pod("10.244.0.5", BOOT)])),
            "/apis/discovery.k8s.io/v1/namespaces/restate/endpointslices" => slices.clone(),
            other => panic!("unexpected request {other}"),
        }
    }

    /// A role that may not list EndpointSlices loses the check at once, with a warning, not after the timeout.
    #[tokio::test(start_paused = true)]
    async fn endpoints_we_may_not_read_are_not_waited_for() {
        let (client, server) = mock::client();
        let forbidden = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
            "code": 403, "message": "endpointslices.discovery.k8s.io is forbidden: User \"dev\" cannot list"});
        let serving = tokio::spawn(server.serve(service_with_one_pod((403, forbidden))));
        let started = Instant::now();
        wait_endpoints(&client, "restate", &["service"], Duration::from_secs(300), &quiet())
            .await
            .expect("not checked, not failed");
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(client);
        serving.await.expect("server");
    }

    #[tokio::test(start_paused = true)]
    async fn endpoints_that_stay_stale_time_out_saying_where_they_point() {
        let (client, server) = mock::client();
        let slice = json!({"metadata": {"name": "s"}, "addressType": "IPv4",
                           "endpoints": [{"addresses": ["10.244.0.2"], "conditions": {"ready": true}}]});
        let stale = mock::list("discovery.k8s.io/v1", "EndpointSliceList", vec![slice]);
        let serving = tokio::spawn(server.serve(service_with_one_pod((200, stale))));
        let error = wait_endpoints(&client, "restate", &["service"], Duration::from_secs(10), &quiet())
            .await
            .expect_err("stale");
        drop(client);
        let seen = serving.await.expect("server");
        assert_eq!(error.kind, Kind::Timeout);
        assert_eq!(
            error.message,
            "Service restate/service did not route to its ready pods within 10.0s: routes to 10.244.0.2, its \
             ready pods are at 10.244.0.5"
        );
        assert!(error.hint.unwrap().contains("get endpointslices"));
        let pods = seen.iter().find(|s| s.path == PODS).expect("pods read");
        assert_eq!(pods.query.get("labelSelector").map(String::as_str), Some("app=service"));
    }
}
