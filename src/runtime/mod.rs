//! The loop's runtimes: plain Docker containers, or Kubernetes (kind-native, minikube, an existing context).
//! `up`, `down` and `status` dispatch here.

pub mod docker;
pub mod evidence;
pub mod kube;
#[cfg(test)]
mod kube_tests;
pub mod record;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cli::DownArgs;
use crate::cluster::Provider;
use crate::cluster::Removed;
use crate::config::{LoopSettings, ObjectSettings, Origin, Runtime, Verify};
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::images;
use crate::pipeline::{Done, Pipeline};
use crate::restate::{Admin, Ingress, Registration, prove, verify_sample};
use crate::ui::Ui;

/// Everything `up` decided before touching anything.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub objects: ObjectSettings,
    pub setup: LoopSettings,
    /// Keep what a failed cluster bootstrap made.
    pub retain: bool,
    /// What the runtime records on the loop once it has made something of it.
    pub record: crate::config::Record,
    /// The settings of [`RUNTIME_BOUND`] that the user set (not left at their default), and where.
    pub user_set: Vec<(&'static str, Origin)>,
}

/// Settings that some runtime cannot honour: `up` warns when the user set one of them for such a runtime.
pub const RUNTIME_BOUND: [&str; 8] = [
    "namespace",
    "replicas",
    "envoy-image",
    "storage-size",
    "restate-cpu-request",
    "restate-memory-request",
    "node-image",
    "restate-binary",
];

/// The settings of [`RUNTIME_BOUND`] that `runtime` ignores, and why.
fn ignored_by(runtime: &Runtime) -> (&'static [&'static str], &'static str) {
    match runtime {
        Runtime::Kind => (&[], ""),
        Runtime::Docker => (
            &[
                "namespace",
                "replicas",
                "envoy-image",
                "storage-size",
                "restate-cpu-request",
                "restate-memory-request",
                "node-image",
            ],
            "they are for the Kubernetes runtimes; the docker runtime runs one Restate and one service container, \
             with Restate's memory and CPU limits",
        ),
        Runtime::Minikube => (&["node-image"], "minikube chooses its own node image"),
        Runtime::Context(_) => (
            &["node-image", "restate-binary"],
            "an existing cluster keeps its nodes and pulls Restate's image itself",
        ),
    }
}

/// The settings of [`RUNTIME_BOUND`] that `runtime` ignores.
pub fn ignored_keys(runtime: &Runtime) -> &'static [&'static str] {
    ignored_by(runtime).0
}

/// One warning naming the settings the user set that `plan`'s runtime cannot honour; None when there are none.
pub fn ignored_settings(plan: &Plan) -> Option<String> {
    let (ignored, why) = ignored_by(&plan.setup.runtime);
    let named: Vec<String> = (plan.user_set.iter())
        .filter(|(key, _)| ignored.contains(key))
        .map(|(key, origin)| format!("`{key}` ({origin})"))
        .collect();
    (!named.is_empty()).then(|| {
        format!(
            "the {} runtime ignores {}: {why}",
            plan.runtime_name(),
            named.join(", ")
        )
    })
}

impl Plan {
    pub fn runtime_name(&self) -> String {
        runtime_name(&self.setup.runtime)
    }
}

pub fn runtime_name(runtime: &Runtime) -> String {
    crate::config::runtime_key(runtime).into()
}

/// What `up` made, printed at the end (and as JSON with `--output json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub name: String,
    pub runtime: String,
    /// The kube context, for the Kubernetes runtimes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub ingress_url: String,
    pub admin_url: String,
    /// Restate's web UI, served by the admin API.
    pub ui_url: String,
    /// The URI Restate reaches the service at.
    pub service_uri: String,
    pub deployment_id: String,
    pub services: Vec<String>,
    /// True when ingress and admin are port-forwards, which `restate-dev port-forward` holds after `up`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forwarded: bool,
    /// The proving invocation and its answer; None with --no-verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub path: String,
    pub answer: serde_json::Value,
}

/// What `status` found for one loop.
#[derive(Debug, Clone, Serialize)]
pub struct LoopStatus {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    pub healthy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub components: Vec<Component>,
    /// The services registered with Restate, when its admin API answers.
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// container, cluster, pod, port-forward.
    pub kind: &'static str,
    pub name: String,
    pub state: String,
    pub healthy: bool,
}

impl LoopStatus {
    pub fn exists(&self) -> bool {
        !self.components.is_empty()
    }
}

impl std::fmt::Display for LoopStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let health = if self.healthy { "healthy" } else { "NOT healthy" };
        let runtime = self.runtime.as_deref().unwrap_or("unknown runtime");
        write!(f, "Loop {} on {runtime}: {health}", self.name)?;
        if let (Some(context), Some(namespace)) = (&self.context, &self.namespace) {
            write!(f, "\n  context   {context} (namespace {namespace})")?;
        }
        if let Some(url) = &self.ingress_url {
            write!(f, "\n  ingress   {url}")?;
        }
        if let Some(url) = &self.admin_url {
            write!(f, "\n  admin     {url}")?;
        }
        if !self.services.is_empty() {
            write!(f, "\n  services  {}", self.services.join(", "))?;
        }
        for c in &self.components {
            let mark = if c.healthy { "✓" } else { "✗" };
            write!(f, "\n  {mark} {:<12} {:<32} {}", c.kind, c.name, c.state)?;
        }
        Ok(())
    }
}

/// Restate's web UI, which its admin API serves under `/ui`.
pub fn ui_url(admin_url: &str) -> String {
    format!("{}/ui", admin_url.trim_end_matches('/'))
}

/// A `--service-image` must already be in the local Docker: we never push it anywhere.
pub async fn require_local_image(docker: &Docker, image: &str) -> Result<()> {
    if docker.image_exists(image).await? {
        return Ok(());
    }
    Err(
        Error::prerequisite(format!("the service image {image} is not in the local Docker")).hint(format!(
            "build it (`docker build -t {image} .`), pull it, or `docker load` it, then run up again"
        )),
    )
}

/// The service as the last two steps see it.
pub struct Target<'a> {
    /// Where Restate reaches it.
    pub uri: &'a str,
    /// True when this `up` replaced or restarted it. Registering it again is then real work: with `force`,
    /// Restate discovers the new build at the same deployment id, so its answer alone does not tell.
    pub changed: bool,
}

/// Which of the last two steps failed, for a runtime's diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Register,
    Verify,
}

/// The last two steps, common to every runtime: register the service, then prove an invocation, both bounded
/// by `--timeout`. A failure of either gets the lines `diagnose` returns: what the runtime can see of the
/// service and of Restate (a paused container, what Restate logged about the service's address).
///
/// `alive` is asked every [`WATCH_EVERY`] while either step waits; its error (the service exited, with its exit
/// code and last log lines) ends the step at once: Restate would otherwise retry a dead service until `--timeout`.
pub async fn register_and_verify(
    plan: &Plan,
    pipeline: &mut Pipeline,
    admin: &Admin,
    ingress: &Ingress,
    target: &Target<'_>,
    diagnose: impl AsyncFn(Stage) -> Vec<String>,
    alive: impl AsyncFn() -> Result<()>,
) -> Result<(Registration, Option<Verified>)> {
    let timeout = plan.setup.timeout;
    let with_diagnosis = async |stage: Stage, mut error: Error| {
        for line in diagnose(stage).await {
            error = error.detail(line);
        }
        error
    };
    let uri = target.uri;
    let registration = pipeline
        .step("register", async |_| {
            let registration = match while_alive(admin.register(uri, timeout), &alive).await? {
                Ok(registration) => registration,
                Err(error) => return Err(with_diagnosis(Stage::Register, error).await),
            };
            let services = registration.services.join(", ");
            Ok(match (registration.created, target.changed) {
                (true, _) => {
                    let detail = format!("{uri} as {} ({services})", registration.id);
                    Done::ok(registration, detail)
                }
                (false, true) => {
                    let detail = format!(
                        "{uri} again as {} ({services}): Restate discovered the new build",
                        registration.id
                    );
                    Done::ok(registration, detail)
                }
                (false, false) => {
                    let detail = format!("{uri} as {} ({services})", registration.id);
                    Done::skipped(registration, detail)
                }
            })
        })
        .await?;
    let verified = pipeline
        .step("verify", async |_| {
            match while_alive(proof(plan, admin, ingress), &alive).await? {
                Ok(None) => Ok(Done::skipped(None, "--no-verify")),
                Ok(Some((path, answer))) => {
                    let detail = format!("{path} answered {answer}");
                    Ok(Done::ok(Some(Verified { path, answer }), detail))
                }
                Err(error) => Err(with_diagnosis(Stage::Verify, error).await),
            }
        })
        .await?;
    Ok((registration, verified))
}

/// How often `alive` is asked while registration or the proof waits.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// `work`'s outcome, unless `alive` fails first (it is asked at once, then every [`WATCH_EVERY`]): then its error,
/// which carries its own evidence, so that the caller adds no diagnosis of a wait to it.
pub async fn while_alive<T>(
    work: impl Future<Output = Result<T>>,
    alive: &impl AsyncFn() -> Result<()>,
) -> Result<Result<T>> {
    let watch = async {
        loop {
            if let Err(error) = alive().await {
                return error;
            }
            tokio::time::sleep(WATCH_EVERY).await;
        }
    };
    tokio::select! {
        outcome = work => Ok(outcome),
        error = watch => Err(error),
    }
}

/// The proving invocation as `--verify` asks for it, within `--timeout` in all; None with `--no-verify`.
async fn proof(plan: &Plan, admin: &Admin, ingress: &Ingress) -> Result<Option<(String, serde_json::Value)>> {
    let deadline = Instant::now() + plan.setup.timeout;
    let left = || deadline.saturating_duration_since(Instant::now()).max(MIN_PROOF);
    Ok(Some(match &plan.setup.verify {
        Verify::Skip => return Ok(None),
        Verify::Sample => {
            ingress.wait_ready(left()).await?;
            // Above one replica, Envoy spreads calls over the pods: prove that every call still succeeds.
            let calls = if plan.objects.replicas > 1 {
                2 * plan.objects.replicas
            } else {
                1
            };
            let mut answer = String::new();
            for _ in 0..calls {
                answer = verify_sample(admin, ingress, left()).await?;
            }
            ("Greeter/greet".to_string(), serde_json::Value::String(answer))
        }
        Verify::Handler { path, body } => {
            ingress.wait_ready(left()).await?;
            (path.clone(), prove(admin, ingress, path, body, left()).await?)
        }
    }))
}

/// The least time a proving call gets, even when waiting for the ingress used up nearly all of `--timeout`.
const MIN_PROOF: Duration = Duration::from_secs(1);

pub async fn up(plan: &Plan, pipeline: &mut Pipeline) -> Result<Summary> {
    if let Some(warning) = ignored_settings(plan) {
        pipeline.ui().warn(warning);
    }
    match &plan.setup.runtime {
        Runtime::Docker => docker::up(plan, pipeline).await,
        _ => kube::up(plan, pipeline).await,
    }
}

/// Removes everything this loop made, found by label: the kind node or minikube profile restate-dev made (or,
/// with `--keep-cluster`, only what was installed into it), the docker runtime's containers, network and volume,
/// and with `--images` our images that no container uses. `--context` uninstalls from that context only.
pub async fn down(name: &str, namespace: &str, args: &DownArgs, ui: &Ui) -> Result<Removed> {
    if let Some(context) = &args.context {
        return kube::uninstall(context, None, namespace, name, ui).await;
    }
    let docker = Docker::connect().await?;
    let mut removed = Removed::new();
    let kind = kube::kind_for_teardown(&docker, name)?;
    let node = kind.node_name();
    let has_node = docker.inspect_container(&node).await?.is_some();
    if has_node {
        removed.extend(match args.keep_cluster {
            true => kube::uninstall(&kind.context(), Some(&kind.kubeconfig_file()?), namespace, name, ui).await?,
            false => kind.delete(ui).await?,
        });
    }
    let minikube = kube::minikube_profile(name);
    if let Some(minikube) = &minikube {
        removed.extend(match args.keep_cluster {
            true => kube::uninstall(name, None, namespace, name, ui).await?,
            false => minikube.delete(ui).await?,
        });
    }
    // A kept cluster keeps the loop's record too, so that a later bare `up` re-ups it as it was.
    let keep = match args.keep_cluster && (has_node || minikube.is_some()) {
        true => docker::Keep::Cluster {
            node: has_node.then_some(node.as_str()),
        },
        false => docker::Keep::Nothing,
    };
    removed.extend(docker::remove_loop(&docker, name, keep).await?);
    if args.images {
        removed.extend(images::remove_unused(&docker).await?);
    }
    Ok(removed)
}

/// What of loop `name` exists now where `plan` would put it, one line per thing (empty when nothing does),
/// found by label as `down` finds it: `down` would remove all of it.
pub async fn existing(plan: &Plan) -> Result<Vec<String>> {
    let name = &plan.name;
    if let Runtime::Context(context) = &plan.setup.runtime {
        let status = status(name, &plan.objects.namespace, Some(context)).await?;
        return Ok(status
            .components
            .into_iter()
            .filter(|c| c.kind == "pod")
            .map(|c| format!("pod {} in context {context}", c.name))
            .collect());
    }
    let docker = Docker::connect().await?;
    let selector = crate::labels::for_loop(name);
    let mut found = Vec::new();
    for container in docker.list_containers(&selector).await? {
        found.push(format!("container {container}"));
    }
    for network in docker.list_networks(&selector).await? {
        found.push(format!("network {network}"));
    }
    for volume in docker.list_volumes(&selector).await? {
        found.push(format!("volume {volume}"));
    }
    if kube::minikube_profile(name).is_some() {
        found.push(format!("minikube profile {name}"));
    }
    Ok(found)
}

pub async fn status(name: &str, namespace: &str, context: Option<&str>) -> Result<LoopStatus> {
    let mut status = LoopStatus {
        name: name.to_string(),
        runtime: None,
        healthy: false,
        ingress_url: None,
        admin_url: None,
        context: None,
        namespace: None,
        components: Vec::new(),
        services: Vec::new(),
    };
    let docker = match context {
        Some(_) => None,
        None => Some(Docker::connect().await?),
    };
    if let Some(docker) = &docker {
        docker::status(docker, name, &mut status).await?;
    }
    kube::status(docker.as_ref(), name, namespace, context, &mut status).await?;
    if let Some(admin) = &status.admin_url {
        status.services = Admin::new(admin)?.services().await.unwrap_or_default();
    }
    status.healthy = status.exists() && status.components.iter().all(|c| c.healthy);
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_ignore_only_runtime_bound_settings_and_docker_runs_its_restate_binary() {
        let runtimes = [
            Runtime::Kind,
            Runtime::Docker,
            Runtime::Minikube,
            Runtime::Context("c".into()),
        ];
        for runtime in &runtimes {
            let (ignored, _) = ignored_by(runtime);
            // `up` finds only RUNTIME_BOUND settings the user set: another key would never be warned about.
            assert!(
                ignored.iter().all(|key| RUNTIME_BOUND.contains(key)),
                "{runtime:?}: {ignored:?}"
            );
        }
        let (docker, _) = ignored_by(&Runtime::Docker);
        assert!(!docker.contains(&"restate-binary"));
        assert_eq!(docker.len(), RUNTIME_BOUND.len() - 1);
    }

    #[tokio::test]
    async fn a_dead_service_ends_the_wait_at_once_with_its_own_error() {
        let forever = std::future::pending::<Result<()>>();
        let started = Instant::now();
        let died = async || Err(Error::failed("the service container s exited (exit code 1)"));
        let outcome = while_alive(forever, &died).await;
        let error = outcome.expect_err("the watch ends the wait");
        assert_eq!(error.message, "the service container s exited (exit code 1)");
        assert!(started.elapsed() < WATCH_EVERY, "{:?}", started.elapsed());
        // While the service lives, the work's own outcome comes back, failure included.
        let lives = async || Ok(());
        let failed = while_alive(async { Err::<(), _>(Error::timeout("slow")) }, &lives).await;
        assert_eq!(failed.unwrap().unwrap_err().message, "slow");
    }
}
