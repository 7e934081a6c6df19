//! What to show when pods do not become ready: per pod its phase, why each container waits or stopped, why it is
//! not scheduled, its recent events and the tail of its logs. Collected best-effort: a failing request becomes a
//! line of the diagnosis, never an error that hides the rest.

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
    for pod in &pods {
        lines.extend(pod_logs(client, namespace, pod).await);
    }
    lines
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
        lines.push(format!("  container {}: {}", container.name, container_state(container)));
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
        if status.ready { "running, ready" } else { "running, not ready" }.to_string()
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
        with_message(
            "",
            scheduled.reason.as_deref(),
            scheduled.message.as_deref(),
        )
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
    let count = event.count.filter(|c| *c > 1).map(|c| format!(" (x{c})")).unwrap_or_default();
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

/// The last lines of each container that has run; of the previous run when it restarted, since the current one
/// may not have logged yet (a crash loop).
async fn pod_logs(client: &kube::Client, namespace: &str, pod: &Pod) -> Vec<String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let name = pod_name(pod);
    let mut lines = Vec::new();
    for status in container_statuses(pod) {
        let previous = status.restart_count > 0;
        let started = status.state.as_ref().is_some_and(|s| s.running.is_some() || s.terminated.is_some());
        if !previous && !started {
            continue;
        }
        let params = LogParams {
            container: Some(status.name.clone()),
            previous,
            tail_lines: Some(LOG_LINES),
            ..LogParams::default()
        };
        let which = if previous { " (previous run)" } else { "" };
        match api.logs(name, &params).await {
            Ok(text) => {
                lines.push(format!("last log lines of {name}/{}{which}:", status.name));
                lines.extend(text.lines().map(|l| format!("  | {l}")));
            }
            Err(e) => lines.push(format!("no logs of {name}/{}{which}: {}", status.name, api_message(&e))),
        }
    }
    lines
}

fn container_statuses(pod: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    let status = pod.status.as_ref();
    let init = status.and_then(|s| s.init_container_statuses.as_deref()).unwrap_or_default();
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
