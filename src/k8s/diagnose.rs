//! What to show when pods do not become ready: per pod its phase, why each container waits or stopped, why it is
//! not scheduled, its recent events and the tail of its logs. Collected best-effort: a failing request becomes a
//! line of the diagnosis, never an error that hides the rest.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use kube::api::{Api, ListParams, LogParams};

/// Events shown per diagnosis, newest last.
const EVENTS: usize = 10;
/// Log lines shown per container.
const LOG_LINES: i64 = 20;

/// Container waiting reasons that will not resolve by themselves.
const STUCK_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Lines describing the pods matching `label_selector` in `namespace`.
pub async fn diagnose(client: &kube::Client, namespace: &str, label_selector: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pods = match pods.list(&ListParams::default().labels(label_selector)).await {
        Ok(list) => list.items,
        Err(e) => return vec![format!("cannot list pods {label_selector} in {namespace}: {e}")],
    };
    let mut lines = Vec::new();
    if pods.is_empty() {
        lines.push(format!("no pods match {label_selector} in namespace {namespace}"));
    }
    for pod in &pods {
        lines.extend(pod_status(pod));
    }
    lines.extend(recent_events(client, namespace, &pods).await);
    // The logs that explain a failure are the failing pods' (during a rollout the old pod still runs fine).
    let failing: Vec<&Pod> = pods.iter().filter(|p| !is_ready(p)).collect();
    let logged = if failing.is_empty() {
        pods.iter().collect()
    } else {
        failing
    };
    for pod in logged {
        lines.extend(pod_logs(client, namespace, pod).await);
    }
    lines
}

pub fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A cause that will not go away by waiting (image pull failures, crash loops, no node to run on), if the pod
/// shows one. `wait` fails early on it, after a grace period.
pub fn stuck_cause(pod: &Pod) -> Option<String> {
    let name = pod_name(pod);
    for status in container_statuses(pod) {
        let waiting = status.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(reason) = waiting.and_then(|w| w.reason.as_deref())
            && STUCK_REASONS.contains(&reason)
        {
            return Some(format!("pod {name}: container {} is in {reason}", status.name));
        }
    }
    unschedulable(pod).map(|why| format!("pod {name} cannot be scheduled: {why}"))
}

/// The phase, container states and scheduling trouble of one pod.
pub fn pod_status(pod: &Pod) -> Vec<String> {
    let name = pod_name(pod);
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
    let mut lines = vec![format!("pod {name}: {phase}")];
    if let Some(why) = unschedulable(pod) {
        lines.push(format!("  not scheduled: {why}"));
    }
    for container in container_statuses(pod) {
        lines.push(format!(
            "  container {}: {}",
            container.name,
            container_state(container)
        ));
    }
    lines
}

fn container_state(status: &ContainerStatus) -> String {
    let state = status.state.as_ref();
    let mut text = if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
        with_message("waiting", w.reason.as_deref(), w.message.as_deref())
    } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        let head = format!("terminated with exit code {}", t.exit_code);
        with_message(&head, t.reason.as_deref(), t.message.as_deref())
    } else if state.is_some_and(|s| s.running.is_some()) {
        if status.ready {
            "running, ready"
        } else {
            "running, not ready"
        }
        .to_string()
    } else {
        "no state yet".to_string()
    };
    if status.restart_count > 0 {
        text.push_str(&format!("; restarted {} times", status.restart_count));
        if let Some(last) = status.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
            let reason = last.reason.as_deref().unwrap_or("no reason");
            text.push_str(&format!(", last exit code {} ({reason})", last.exit_code));
        }
    }
    text
}

fn with_message(head: &str, reason: Option<&str>, message: Option<&str>) -> String {
    match (reason, message) {
        (Some(r), Some(m)) => format!("{head} {r}: {}", one_line(m)),
        (Some(r), None) => format!("{head} {r}"),
        (None, Some(m)) => format!("{head}: {}", one_line(m)),
        (None, None) => head.to_string(),
    }
}

fn unschedulable(pod: &Pod) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let scheduled = conditions.iter().find(|c| c.type_ == "PodScheduled")?;
    (scheduled.status == "False").then(|| {
        with_message("", scheduled.reason.as_deref(), scheduled.message.as_deref())
            .trim_start()
            .to_string()
    })
}

async fn recent_events(client: &kube::Client, namespace: &str, pods: &[Pod]) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let mut events = match api.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(e) => return vec![format!("cannot list events in {namespace}: {e}")],
    };
    let names: Vec<&str> = pods.iter().map(pod_name).collect();
    // With no pods, the workload's own warnings (FailedCreate: a quota, a bad spec) are what explain it.
    events.retain(|e| {
        let about = e.involved_object.name.as_deref().unwrap_or_default();
        if names.is_empty() {
            e.type_.as_deref() == Some("Warning")
        } else {
            e.involved_object.kind.as_deref() == Some("Pod") && names.contains(&about)
        }
    });
    events.sort_by_key(event_time);
    let skip = events.len().saturating_sub(EVENTS);
    events[skip..].iter().map(event_line).collect()
}

fn event_time(event: &Event) -> String {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .or_else(|| event.event_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()))
        .unwrap_or_default()
}

fn event_line(event: &Event) -> String {
    let count = event
        .count
        .filter(|c| *c > 1)
        .map(|c| format!(" (x{c})"))
        .unwrap_or_default();
    format!(
        "event {} {} {}/{}: {} {}{count}",
        event_time(event),
        event.type_.as_deref().unwrap_or("Normal"),
        event.involved_object.kind.as_deref().unwrap_or("?"),
        event.involved_object.name.as_deref().unwrap_or("?"),
        event.reason.as_deref().unwrap_or_default(),
        one_line(event.message.as_deref().unwrap_or_default()),
    )
}

/// What `container` of pod `name` logged within the last `since`, at most `lines` lines; the API server's words
/// when it cannot be read.
pub async fn logged_since(
    client: &kube::Client,
    namespace: &str,
    (name, container): (&str, &str),
    since: Duration,
    lines: i64,
) -> std::result::Result<String, String> {
    let params = LogParams {
        container: Some(container.to_string()),
        since_seconds: Some(i64::try_from(since.as_secs()).unwrap_or(i64::MAX).max(1)),
        tail_lines: Some(lines),
        ..LogParams::default()
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    api.logs(name, &params).await.map_err(|e| api_message(&e))
}

/// The last lines of each container that has run; of the previous run when it restarted, since the current one
/// may not have logged yet (a crash loop).
async fn pod_logs(client: &kube::Client, namespace: &str, pod: &Pod) -> Vec<String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let name = pod_name(pod);
    let mut lines = Vec::new();
    for status in container_statuses(pod) {
        let restarted = status.restart_count > 0;
        let started = status
            .state
            .as_ref()
            .is_some_and(|s| s.running.is_some() || s.terminated.is_some());
        // The previous run's log first; in a crash loop the kubelet may have let it go by the time we ask, and
        // then the current run (which crashed the same way) says as much.
        let runs = [(true, restarted, " (previous run)"), (false, started, "")];
        let mut failure = None;
        for (previous, _, which) in runs.into_iter().filter(|(_, ran, _)| *ran) {
            let params = LogParams {
                container: Some(status.name.clone()),
                previous,
                tail_lines: Some(LOG_LINES),
                ..LogParams::default()
            };
            match api.logs(name, &params).await {
                // The kubelet answers 200 with this text when the run's log file is gone.
                Ok(text) if text.starts_with("unable to retrieve container logs") => {
                    failure.get_or_insert((which, text.trim().to_string()));
                }
                Ok(text) => {
                    lines.push(format!("last log lines of {name}/{}{which}:", status.name));
                    lines.extend(text.lines().map(|l| format!("  | {l}")));
                    failure = None;
                    break;
                }
                Err(e) => {
                    failure.get_or_insert((which, api_message(&e)));
                }
            }
        }
        if let Some((which, why)) = failure {
            lines.push(format!("no logs of {name}/{}{which}: {why}", status.name));
        }
    }
    lines
}

fn container_statuses(pod: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    let status = pod.status.as_ref();
    let init = status
        .and_then(|s| s.init_container_statuses.as_deref())
        .unwrap_or_default();
    let main = status.and_then(|s| s.container_statuses.as_deref()).unwrap_or_default();
    init.iter().chain(main)
}

fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("<unnamed>")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The apiserver's own words for an API error, else the error.
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::k8s::mock::{self, Seen};

    pub fn image_pull_pod() -> Value {
        json!({"metadata": {"name": "greeter-7d9f"}, "status": {"phase": "Pending", "containerStatuses": [
            {"name": "greeter", "image": "restate-dev.local/greeter:abc", "imageID": "", "ready": false,
             "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull",
             "message": "failed to pull image \"restate-dev.local/greeter:abc\":\n not found"}}}]}})
    }

    fn crash_loop_pod() -> Value {
        json!({"metadata": {"name": "restate-0"}, "status": {"phase": "Running", "containerStatuses": [
            {"name": "restate", "image": "restate:1.7.12", "imageID": "", "ready": false, "restartCount": 3,
             "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting"}},
             "lastState": {"terminated": {"exitCode": 101, "reason": "Error"}}}]}})
    }

    fn unschedulable_pod() -> Value {
        json!({"metadata": {"name": "restate-1"}, "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/1 nodes are available: 1 Insufficient cpu."}]}})
    }

    fn event(object: &str, at: &str, kind: &str, reason: &str, message: &str) -> Value {
        json!({"metadata": {"name": format!("{object}.{at}")}, "involvedObject": {"kind": kind, "name": object},
               "lastTimestamp": at, "type": "Warning", "reason": reason, "message": message, "count": 2})
    }

    fn ready_pod(name: &str) -> Value {
        json!({"metadata": {"name": name}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": [
            {"name": "service", "image": "greeter:1", "imageID": "", "ready": true, "restartCount": 0,
             "state": {"running": {}}}]}})
    }

    #[tokio::test]
    async fn during_a_rollout_only_the_failing_pods_logs_are_shown() {
        let (client, server) = mock::client();
        let serving = tokio::spawn(server.serve(|seen| match seen.path.as_str() {
            "/api/v1/namespaces/restate/pods" => (
                200,
                mock::list("v1", "PodList", vec![ready_pod("service-old"), crash_loop_pod()]),
            ),
            "/api/v1/namespaces/restate/events" => (200, mock::list("v1", "EventList", vec![])),
            "/api/v1/namespaces/restate/pods/restate-0/log" => (200, json!("error: unexpected argument\n")),
            other => panic!("unexpected request {other}"),
        }));
        let lines = diagnose(&client, "restate", "app=service").await;
        drop(client);
        serving.await.expect("server");
        let text = lines.join("\n");
        assert!(text.contains("pod service-old: Running"), "{text}");
        assert!(text.contains("last log lines of restate-0/restate (previous run):\n  | error: unexpected"));
        assert!(!text.contains("last log lines of service-old"), "{text}");
    }

    /// In a crash loop the kubelet may have dropped the previous run's log file (it answers 200 with "unable to
    /// retrieve container logs"); the current run, which crashed the same way, is shown instead.
    #[tokio::test]
    async fn a_previous_log_that_is_gone_gives_way_to_the_current_run() {
        let mut pod = crash_loop_pod();
        pod["status"]["containerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 2, "reason": "Error"}});
        let (client, server) = mock::client();
        let serving = tokio::spawn(server.serve(move |seen| match seen.path.as_str() {
            "/api/v1/namespaces/restate/pods" => (200, mock::list("v1", "PodList", vec![pod.clone()])),
            "/api/v1/namespaces/restate/events" => (200, mock::list("v1", "EventList", vec![])),
            "/api/v1/namespaces/restate/pods/restate-0/log" => match seen.query.get("previous").map(String::as_str) {
                Some("true") => (
                    200,
                    json!("unable to retrieve container logs for containerd://3390e5\n"),
                ),
                _ => (200, json!("error: --crash-on-purpose\n")),
            },
            other => panic!("unexpected request {other}"),
        }));
        let lines = diagnose(&client, "restate", "app=restate").await;
        drop(client);
        serving.await.expect("server");
        let text = lines.join("\n");
        assert!(
            text.contains("last log lines of restate-0/restate:\n  | error: --crash-on-purpose"),
            "{text}"
        );
        assert!(!text.contains("unable to retrieve"), "{text}");
    }

    #[tokio::test]
    async fn names_the_cause_of_each_failing_pod() {
        let (client, server) = mock::client();
        let serving = tokio::spawn(server.serve(|seen| match seen.path.as_str() {
            "/api/v1/namespaces/restate/pods" => (
                200,
                mock::list(
                    "v1",
                    "PodList",
                    vec![image_pull_pod(), crash_loop_pod(), unschedulable_pod()],
                ),
            ),
            "/api/v1/namespaces/restate/events" => (
                200,
                mock::list(
                    "v1",
                    "EventList",
                    vec![
                        event(
                            "restate-1",
                            "2026-01-01T00:00:05Z",
                            "Pod",
                            "FailedScheduling",
                            "Insufficient cpu",
                        ),
                        event(
                            "restate-0",
                            "2026-01-01T00:00:01Z",
                            "Pod",
                            "BackOff",
                            "Back-off restarting",
                        ),
                        event("other-pod", "2026-01-01T00:00:02Z", "Pod", "Killing", "not ours"),
                    ],
                ),
            ),
            "/api/v1/namespaces/restate/pods/restate-0/log" => (200, json!("line 1\npanicked at config\n")),
            other => panic!("unexpected request {other}"),
        }));
        let lines = diagnose(&client, "restate", "app=restate").await;
        drop(client);
        let seen = serving.await.expect("server");
        let text = lines.join("\n");

        assert_eq!(
            seen[0].query.get("labelSelector").map(String::as_str),
            Some("app=restate")
        );
        assert!(text.contains("pod greeter-7d9f: Pending"), "{text}");
        assert!(
            text.contains("container greeter: waiting ErrImagePull: failed to pull image"),
            "{text}"
        );
        assert!(text.contains("CrashLoopBackOff: back-off 40s restarting; restarted 3 times, last exit code 101"));
        assert!(text.contains("pod restate-1: Pending\n  not scheduled: Unschedulable: 0/1 nodes are available"));
        // Events of our pods only, oldest first.
        let events: Vec<&str> = lines
            .iter()
            .filter(|l| l.starts_with("event "))
            .map(String::as_str)
            .collect();
        assert_eq!(events.len(), 2, "{text}");
        assert!(events[0].contains("Pod/restate-0: BackOff"), "{text}");
        assert!(
            events[1].contains("Pod/restate-1: FailedScheduling Insufficient cpu (x2)"),
            "{text}"
        );
        // Logs of the crashed run only: the others never started.
        let logs: Vec<&Seen> = seen.iter().filter(|s| s.path.ends_with("/log")).collect();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].query.get("previous").map(String::as_str), Some("true"));
        assert_eq!(logs[0].query.get("tailLines").map(String::as_str), Some("20"));
        assert_eq!(logs[0].query.get("container").map(String::as_str), Some("restate"));
        assert!(text.contains("last log lines of restate-0/restate (previous run):\n  | line 1\n  | panicked"));
    }

    #[tokio::test]
    async fn without_pods_the_namespace_warnings_explain() {
        let (client, server) = mock::client();
        let serving = tokio::spawn(server.serve(|seen| match seen.path.as_str() {
            "/api/v1/namespaces/restate/pods" => (200, mock::list("v1", "PodList", vec![])),
            "/api/v1/namespaces/restate/events" => (
                200,
                mock::list(
                    "v1",
                    "EventList",
                    vec![event(
                        "restate",
                        "2026-01-01T00:00:01Z",
                        "StatefulSet",
                        "FailedCreate",
                        "exceeded quota",
                    )],
                ),
            ),
            other => panic!("unexpected request {other}"),
        }));
        let lines = diagnose(&client, "restate", "app=restate").await;
        drop(client);
        serving.await.expect("server");
        assert_eq!(lines[0], "no pods match app=restate in namespace restate");
        assert!(
            lines[1].contains("StatefulSet/restate: FailedCreate exceeded quota"),
            "{lines:?}"
        );
    }

    #[test]
    fn stuck_causes_are_image_pulls_crash_loops_and_unschedulable_pods() {
        let pod = |v: Value| serde_json::from_value::<Pod>(v).expect("a pod");
        assert!(
            stuck_cause(&pod(image_pull_pod()))
                .expect("stuck")
                .contains("ErrImagePull")
        );
        assert!(
            stuck_cause(&pod(crash_loop_pod()))
                .expect("stuck")
                .contains("CrashLoopBackOff")
        );
        assert!(
            stuck_cause(&pod(unschedulable_pod()))
                .expect("stuck")
                .contains("Insufficient cpu")
        );
        let creating = json!({"metadata": {"name": "p"}, "status": {"phase": "Pending", "containerStatuses": [
            {"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(stuck_cause(&pod(creating)), None);
    }
}
