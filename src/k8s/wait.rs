//! Bounded waits for a workload to be ready, with progress. Polls the workload and its pods once a second rather
//! than watching: one loop both reads readiness and looks at the pods for causes that waiting will not fix, so it
//! can fail early (with the diagnosis) instead of sitting out the whole timeout on ErrImagePull.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, ListParams};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::k8s::diagnose::{api_message, diagnose, stuck_cause};
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

/// Where a workload stands: ready or not, a short progress text, and the selector of its pods.
struct Progress {
    ready: bool,
    text: String,
    selector: Option<String>,
}

/// Waits until the workload's pods are all ready and updated. Fails with Kind::Timeout after `timeout`, or
/// with Kind::Failed once a stuck cause has persisted for [`STUCK_GRACE`]; both carry the diagnosis.
pub async fn wait_ready(
    client: &kube::Client,
    workload: Workload,
    namespace: &str,
    name: &str,
    timeout: Duration,
    ui: &Ui,
) -> Result<()> {
    let id = format!("{} {namespace}/{name}", workload.kind());
    let step = ui.step(format!("wait for {}", workload.kind()));
    let mut last = Progress {
        ready: false,
        text: "not seen yet".into(),
        selector: None,
    };
    let outcome = tokio::time::timeout(
        timeout,
        poll_until_ready(client, workload, namespace, name, &step, &mut last),
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
    workload: Workload,
    namespace: &str,
    name: &str,
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
        if last.ready {
            return Ok(());
        }
        let cause = match &last.selector {
            Some(selector) => match pods.list(&ListParams::default().labels(selector)).await {
                Ok(list) => list.items.iter().find_map(stuck_cause),
                Err(_) => None,
            },
            None => None,
        };
        match cause {
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
            "restate",
            "restate",
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
            "restate",
            "restate",
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
            "restate",
            "greeter",
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
}
