//! The Kubernetes runtimes: a kind-native cluster, a minikube profile, or an existing context. `up` ensures the
//! cluster, loads our images into it, applies the rendered objects with server-side apply, waits for them, makes
//! ingress and admin reachable on 127.0.0.1, then registers and verifies.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, Service};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};

use crate::cluster::kind::KindCluster;
use crate::cluster::minikube::Minikube;
use crate::cluster::select::{self, Env, Selected};
use crate::cluster::{Access, Provider, Reach, Removed, context};
use crate::config::{DEFAULT_TIMEOUT, LoopSettings, ObjectSettings, Runtime, Verify};
use crate::docker::{ContainerInfo, Docker};
use crate::error::{Error, Result};
use crate::k8s::objects::{
    self, ADMIN_PORT, INGRESS_PORT, ImageIds, NODE_PORT_SERVICE, RESTATE_NAME, SERVICE_NAME, SERVICE_PORT,
};
use crate::k8s::portforward::PortForward;
use crate::k8s::wait::{self, Workload};
use crate::k8s::{apply, delete, diagnose};
use crate::pipeline::{Done, Pipeline};
use crate::restate::{Admin, Ingress, logged_about};
use crate::runtime::{
    Component, LoopStatus, Plan, Stage, Summary, Target, record, register_and_verify, require_local_image,
};
use crate::ui::Ui;
use crate::{images, labels};

pub type AnyProvider = Selected<KindCluster>;

/// How much of Restate's log a registration's diagnosis reads (JSON, one event a line).
const RESTATE_LOG_LINES: i64 = 200;

/// The provider for a Kubernetes runtime. Docker is connected only where images are built or loaded through it.
pub async fn provider(plan: &Plan, env: &Env) -> Result<(Option<Docker>, AnyProvider)> {
    let docker = match plan.setup.runtime {
        Runtime::Context(_) => None,
        _ => Some(Docker::connect().await?),
    };
    let kind = |name: &str| match &docker {
        Some(docker) => KindCluster::new(docker.clone(), name, &plan.setup, plan.retain),
        None => Err(Error::failed("the kind runtime needs Docker")),
    };
    let selected = select::select(&plan.setup.runtime, &plan.name, env, kind)?
        .ok_or_else(|| Error::failed("the docker runtime has no cluster"))?;
    Ok((docker, selected))
}

pub async fn up(plan: &Plan, pipeline: &mut Pipeline) -> Result<Summary> {
    up_in(plan, pipeline, &Env::from_process()).await
}

/// `up` with the providers looking at `env` (tests give their own kubeconfig).
pub(super) async fn up_in(plan: &Plan, pipeline: &mut Pipeline, env: &Env) -> Result<Summary> {
    let ui = pipeline.ui().clone();
    let namespace = plan.objects.namespace.clone();
    let (docker, provider) = pipeline
        .step("preflight", async |_| {
            let (docker, provider) = provider(plan, env).await?;
            if let Some(binary) = &plan.setup.restate_binary {
                images::check_restate_binary(binary)?;
            }
            match (&docker, &plan.objects.service_image) {
                (Some(docker), Some(image)) => require_local_image(docker, image).await?,
                (None, None) => return Err(sample_needs_local_cluster()),
                _ => {}
            }
            provider.preflight(&ui).await?;
            let detail = provider.describe();
            Ok(Done::ok((docker, provider), detail))
        })
        .await?;
    let access = pipeline
        .step("cluster", async |_| {
            let access = provider.ensure(&ui).await?;
            // Recorded once the cluster exists, on this machine's Docker (an existing context may have none).
            if let Some(docker) = &docker {
                record::write(docker, &plan.name, &plan.record).await?;
            }
            let detail = format!("{} (context {})", provider.describe(), access.context);
            Ok(if access.created {
                Done::ok(access, detail)
            } else {
                Done::skipped(access, detail)
            })
        })
        .await?;
    let (restate_image, service_image, ids) = pipeline
        .step("images", async |_| {
            let (restate, service, ids) = match &docker {
                Some(docker) => {
                    let binary = plan.setup.restate_binary.as_deref();
                    let restate =
                        images::ensure_restate_image(docker, &plan.objects.restate_image, binary, &ui).await?;
                    let service = match &plan.objects.service_image {
                        Some(image) => image.clone(),
                        None => images::ensure_sample_image(docker, &ui).await?,
                    };
                    ui.info(format!("Restate image: {restate}"));
                    let ids = ImageIds {
                        restate: local_id(docker, &restate.reference).await?,
                        service: local_id(docker, &service).await?,
                    };
                    (restate.reference, service, ids)
                }
                // An existing cluster pulls images itself.
                None => {
                    let service = plan
                        .objects
                        .service_image
                        .clone()
                        .ok_or_else(sample_needs_local_cluster)?;
                    (plan.objects.restate_image.clone(), service, ImageIds::default())
                }
            };
            let mut loaded = Vec::new();
            for (image, id) in [(&restate, &ids.restate), (&service, &ids.service)] {
                if provider.load_image(&access, image, id.as_deref(), &ui).await? {
                    loaded.push(image.clone());
                }
            }
            let detail = format!("{restate}, {service}");
            Ok(if loaded.is_empty() {
                Done::skipped((restate, service, ids), detail)
            } else {
                Done::ok((restate, service, ids), format!("loaded {}", loaded.join(", ")))
            })
        })
        .await?;
    let settings = ObjectSettings {
        restate_image,
        ..plan.objects.clone()
    };
    let node_ports = matches!(access.reach, Reach::NodePorts { .. });
    // kind's host ports are the node's port mappings, known before anything is installed. A port-forward's port
    // is only chosen once Restate runs, and answers only while a forward runs: Restate is not told of it.
    let advertised = match access.reach {
        Reach::NodePorts { ingress, admin } => Some(objects::Advertised {
            ingress: format!("{}/", url(ingress)),
            admin: format!("{}/", url(admin)),
        }),
        Reach::PortForward => None,
    };
    let manifests = objects::render(&settings, &service_image, node_ports, &ids, advertised.as_ref());
    let service_changed = pipeline
        .step("install", async |step| {
            let rolled = changed_images(&access.client, &namespace, &ids).await?;
            let applied = apply::apply_all(&access.client, &manifests, &plan.name, &ui).await?;
            let changed = applied.changed;
            step.set_message("waiting for Restate and the service");
            let mut workloads = vec![
                (Workload::StatefulSet, namespace.as_str(), RESTATE_NAME),
                (Workload::Deployment, namespace.as_str(), SERVICE_NAME),
            ];
            // A kind cluster's DNS comes up beside Restate; registration needs it to find the service.
            if plan.setup.runtime == Runtime::Kind {
                workloads.push((Workload::Deployment, "kube-system", "coredns"));
            }
            for (workload, namespace, name) in workloads {
                let target = (namespace, name);
                wait::wait_ready(
                    &access.client,
                    workload,
                    target,
                    access.node_started,
                    plan.setup.timeout,
                    &ui,
                )
                .await?;
            }
            // Registration reaches the service, and we reach Restate, through these Services.
            let mut services = vec![SERVICE_NAME];
            if node_ports {
                services.push(NODE_PORT_SERVICE);
            }
            wait::wait_endpoints(&access.client, &namespace, &services, plan.setup.timeout, &ui).await?;
            let objects = applied.applied;
            let mut detail = match changed {
                0 => format!("{objects} objects in namespace {namespace} unchanged, ready"),
                _ => format!("{changed} of {objects} objects in namespace {namespace} changed, ready"),
            };
            if let Some(why) = &applied.beside {
                detail.push_str(&format!(
                    "; namespace {namespace} exists and {why}: installed beside what it holds"
                ));
            }
            for what in &rolled {
                detail.push_str(&format!("; {what} image changed: rolled out"));
            }
            let service_rolled = rolled.contains(&"service");
            Ok(match changed {
                0 => Done::skipped(service_rolled, detail),
                _ => Done::ok(service_rolled, detail),
            })
        })
        .await?;
    let reached = reach(plan, &access).await?;
    let (ingress_url, admin_url) = reached.urls.clone();
    let admin = Admin::new(&admin_url)?;
    pipeline.reached_admin(&admin_url);
    // Ready pods and current endpoints are the cluster's word; the admin API must also answer where registration
    // will call it (a NodePort goes through kube-proxy, which follows the endpoints a moment later).
    admin.wait_healthy(plan.setup.timeout).await?;
    let ingress = Ingress::new(&ingress_url)?;
    let service_uri = format!("http://{SERVICE_NAME}.{namespace}.svc.cluster.local:{SERVICE_PORT}");
    let target = Target {
        uri: &service_uri,
        changed: service_changed,
    };
    let registering = std::time::Instant::now();
    let diagnose = async |stage| {
        let since = registering.elapsed() + Duration::from_secs(1);
        diagnosis(&access.client, &namespace, &service_uri, stage, since).await
    };
    let alive = async || service_alive(&access.client, &namespace).await;
    let (registration, verified) =
        register_and_verify(plan, pipeline, &admin, &ingress, &target, diagnose, alive).await?;
    Ok(Summary {
        name: plan.name.clone(),
        runtime: plan.runtime_name(),
        context: Some(access.context.clone()),
        namespace: Some(namespace),
        ui_url: super::ui_url(&admin_url),
        ingress_url,
        admin_url,
        service_uri,
        deployment_id: registration.id,
        services: registration.services,
        forwarded: reached.forwards.is_some(),
        verified,
    })
}

/// What a failed registration or proof shows beside Restate's error: the service's pods (their state, events and
/// logs) and, for a registration, what Restate logged about the service meanwhile.
async fn diagnosis(
    client: &kube::Client,
    namespace: &str,
    service_uri: &str,
    stage: Stage,
    since: Duration,
) -> Vec<String> {
    let mut lines = diagnose::diagnose(client, namespace, &format!("app={SERVICE_NAME}")).await;
    if stage == Stage::Verify {
        return lines;
    }
    let restate = format!("{RESTATE_NAME}-0");
    let logs = diagnose::logged_since(client, namespace, (&restate, RESTATE_NAME), since, RESTATE_LOG_LINES).await;
    let logs = match logs {
        Ok(logs) => logs,
        Err(why) => {
            lines.push(format!("cannot read what Restate ({restate}) logged: {why}"));
            return lines;
        }
    };
    let said = logged_about(&logs, service_uri);
    if said.is_empty() {
        lines.push(format!(
            "Restate ({restate}) has logged nothing about {service_uri} yet"
        ));
    }
    for line in said {
        lines.push(format!("Restate ({restate}) logged: {line}"));
    }
    lines
}

/// Fails once a service pod shows a cause that waiting will not fix (its container crash-loops), with the pods'
/// state, events and last log lines: Restate would otherwise retry the dead service until `--timeout`.
pub(super) async fn service_alive(client: &kube::Client, namespace: &str) -> Result<()> {
    let selector = format!("app={SERVICE_NAME}");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    // A listing that fails says nothing about the service; the step's own wait decides then.
    let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await else {
        return Ok(());
    };
    // A terminating pod is on its way out (the old ReplicaSet's, after a rollout): its crash-loop is not the
    // service's state now.
    let current = list
        .items
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none());
    let Some(cause) = current.filter_map(diagnose::stuck_cause).next() else {
        return Ok(());
    };
    let mut error = Error::failed(format!("the service stopped: {cause}"))
        .hint("its pod's state and last log lines are above: fix what they say, then run `restate-dev up` again");
    for line in diagnose::diagnose(client, namespace, &selector).await {
        error = error.detail(line);
    }
    Err(error)
}

/// The ID the local Docker gives `reference`, if it has the image.
async fn local_id(docker: &Docker, reference: &str) -> Result<Option<String>> {
    Ok(docker.inspect_image(reference).await?.map(|image| image.id))
}

/// Which workloads ("Restate", "service") applying `ids` rolls: those whose live pod template carries another
/// [`objects::IMAGE_ID_ANNOTATION`] (or none, from an older restate-dev). A workload not made yet is not one.
pub(super) async fn changed_images(
    client: &kube::Client,
    namespace: &str,
    ids: &ImageIds,
) -> Result<Vec<&'static str>> {
    let read =
        |e: kube::Error, what: &str| Error::failed(format!("cannot read {what} in namespace {namespace}")).source(e);
    let rolls = |template: Option<PodTemplateSpec>, wanted: &str| {
        template.is_some_and(|t| objects::image_id_of(Some(&t)) != Some(wanted))
    };
    let mut changed = Vec::new();
    if let Some(wanted) = &ids.restate {
        let live = Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .get_opt(RESTATE_NAME)
            .await
            .map_err(|e| read(e, "StatefulSet restate"))?;
        if rolls(live.and_then(|s| s.spec).map(|s| s.template), wanted) {
            changed.push("Restate");
        }
    }
    if let Some(wanted) = &ids.service {
        let live = Api::<Deployment>::namespaced(client.clone(), namespace)
            .get_opt(SERVICE_NAME)
            .await
            .map_err(|e| read(e, "Deployment service"))?;
        if rolls(live.and_then(|d| d.spec).map(|s| s.template), wanted) {
            changed.push("service");
        }
    }
    Ok(changed)
}

fn sample_needs_local_cluster() -> Error {
    Error::usage("the built-in sample exists only in the local Docker, which an existing cluster cannot see")
        .hint("pass --service-image with an image the cluster can pull, or use --runtime kind or minikube")
}

/// Ingress and admin on 127.0.0.1: the kind node's published NodePorts, or port-forwards through the kube API
/// that live as long as this process (`restate-dev port-forward` holds them afterwards).
async fn reach(plan: &Plan, access: &Access) -> Result<Reached> {
    let Reach::NodePorts { ingress, admin } = access.reach else {
        let namespace = &plan.objects.namespace;
        let ports = Forwarded {
            ingress: plan.setup.ingress_port,
            admin: plan.setup.admin_port,
        };
        let recorded = forward_record(&access.client, namespace).await?;
        let ports = Forwarded {
            ingress: ports.ingress.or(recorded.ingress),
            admin: ports.admin.or(recorded.admin),
        };
        let (forwards, ports) = start_forwards(&access.client, namespace, ports).await?;
        record_forward(&access.client, namespace, &ports).await?;
        return Ok(Reached {
            urls: ports.urls(),
            forwards: Some(forwards),
        });
    };
    Ok(Reached {
        urls: (url(ingress), url(admin)),
        forwards: None,
    })
}

struct Reached {
    urls: (String, String),
    /// Dropping them stops forwarding.
    forwards: Option<(PortForward, PortForward)>,
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The local ports of a loop's port-forwards, kept as an annotation on the `restate` Service so that `status` and
/// `port-forward` find them without any state on this machine.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Forwarded {
    pub ingress: Option<u16>,
    pub admin: Option<u16>,
}

impl Forwarded {
    pub fn urls(&self) -> (String, String) {
        (
            url(self.ingress.unwrap_or_default()),
            url(self.admin.unwrap_or_default()),
        )
    }
}

const FORWARD_ANNOTATION: &str = "dev.restate/port-forward";
/// Not `restate-dev`: server-side apply by that manager would drop an annotation it did not set itself.
const FORWARD_FIELD_MANAGER: &str = "restate-dev-port-forward";

pub async fn forward_record(client: &kube::Client, namespace: &str) -> Result<Forwarded> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let service = services
        .get_opt(RESTATE_NAME)
        .await
        .map_err(|e| Error::failed(format!("cannot read Service {namespace}/{RESTATE_NAME}")).source(e))?;
    let recorded = service
        .and_then(|s| s.metadata.annotations)
        .and_then(|a| a.get(FORWARD_ANNOTATION).cloned())
        .and_then(|text| serde_json::from_str(&text).ok());
    Ok(recorded.unwrap_or_default())
}

async fn record_forward(client: &kube::Client, namespace: &str, ports: &Forwarded) -> Result<()> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let value = serde_json::to_string(ports).expect("ports serialize");
    let patch = serde_json::json!({ "metadata": { "annotations": { FORWARD_ANNOTATION: value } } });
    services
        .patch(
            RESTATE_NAME,
            &PatchParams::apply(FORWARD_FIELD_MANAGER),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|e| Error::failed(format!("cannot annotate Service {namespace}/{RESTATE_NAME}")).source(e))?;
    Ok(())
}

/// Starts both forwards on the wanted ports (free ones where none is wanted); the ports they got.
pub async fn start_forwards(
    client: &kube::Client,
    namespace: &str,
    wanted: Forwarded,
) -> Result<((PortForward, PortForward), Forwarded)> {
    let selector = "app=restate";
    let ingress = PortForward::start(
        client.clone(),
        namespace,
        selector,
        INGRESS_PORT,
        wanted.ingress.unwrap_or(0),
    )
    .await?;
    let admin = PortForward::start(
        client.clone(),
        namespace,
        selector,
        ADMIN_PORT,
        wanted.admin.unwrap_or(0),
    )
    .await?;
    let got = Forwarded {
        ingress: Some(ingress.local_addr().port()),
        admin: Some(admin.local_addr().port()),
    };
    Ok(((ingress, admin), got))
}

/// A kind provider for `down` and `status`, which need its names and kubeconfig but none of `up`'s settings.
pub fn kind_for_teardown(docker: &Docker, name: &str) -> Result<KindCluster> {
    let settings = LoopSettings {
        runtime: Runtime::Kind,
        ingress_port: None,
        admin_port: None,
        node_image: None,
        restate_binary: None,
        timeout: DEFAULT_TIMEOUT,
        verify: Verify::Skip,
    };
    KindCluster::new(docker.clone(), name, &settings, false)
}

/// Loop `name`'s kind node container, when it exists and carries the loop's labels: a node of that name that the
/// kind CLI (or anything else) made is not this loop, whatever its name says.
pub async fn kind_node(docker: &Docker, name: &str) -> Result<Option<(KindCluster, ContainerInfo)>> {
    let kind = kind_for_teardown(docker, name)?;
    let node = docker.inspect_container(&kind.node_name()).await?;
    Ok(node.filter(|n| labels::is_loops(&n.labels, name)).map(|n| (kind, n)))
}

/// The loop's minikube profile, when the minikube CLI is installed and the profile exists.
pub fn minikube_profile(name: &str) -> Option<Minikube> {
    Minikube::find(name, &Env::from_process()).ok().filter(Minikube::exists)
}

/// Removes what `up` installed into a cluster, keeping the cluster.
pub async fn uninstall(
    context: &str,
    kubeconfig: Option<&Path>,
    namespace: &str,
    name: &str,
    ui: &Ui,
) -> Result<Removed> {
    let client = context::connect(context, kubeconfig).await?;
    delete::delete_installed(&client, namespace, name, DEFAULT_TIMEOUT, ui).await
}

/// Where a loop's cluster is, found without remembered state: the context named, our kind node, or our minikube
/// profile.
pub async fn locate(docker: Option<&Docker>, name: &str, context: Option<&str>) -> Result<Option<Located>> {
    if let Some(context) = context {
        return Ok(Some(Located {
            runtime: "context",
            context: context.to_string(),
            kubeconfig: None,
            reach: Reach::PortForward,
        }));
    }
    if let Some(docker) = docker
        && let Some((kind, node)) = kind_node(docker, name).await?
    {
        let kubeconfig = Some(kind.kubeconfig_file()?);
        return Ok(Some(Located {
            runtime: "kind",
            context: kind.context(),
            kubeconfig,
            reach: crate::cluster::kind::reach(&node),
        }));
    }
    Ok(minikube_profile(name).map(|_| Located {
        runtime: "minikube",
        context: name.to_string(),
        kubeconfig: None,
        reach: Reach::PortForward,
    }))
}

/// How long `service_image` waits for the cluster: a stopped node's API never answers.
const SERVICE_IMAGE_WAIT: Duration = Duration::from_secs(5);

/// The image of the service Deployment of loop `name` on its kind node or minikube profile: Ok(None) when the
/// loop has no cluster or no such Deployment, an error when the cluster does not answer within a few seconds.
pub async fn service_image(docker: Option<&Docker>, name: &str, namespace: &str) -> Result<Option<String>> {
    let Some(located) = locate(docker, name, None).await? else {
        return Ok(None);
    };
    let read = async {
        let client = located.client().await?;
        Api::<Deployment>::namespaced(client, namespace)
            .get_opt(SERVICE_NAME)
            .await
            .map_err(|e| Error::failed(format!("cannot read Deployment service in namespace {namespace}")).source(e))
    };
    let deployment = tokio::time::timeout(SERVICE_IMAGE_WAIT, read)
        .await
        .map_err(|_| Error::failed(format!("context {} did not answer within 5s", located.context)))??;
    Ok(deployment
        .and_then(|d| d.spec)
        .and_then(|spec| spec.template.spec)
        .and_then(|pod| pod.containers.into_iter().next())
        .and_then(|container| container.image))
}

pub struct Located {
    pub runtime: &'static str,
    pub context: String,
    pub kubeconfig: Option<PathBuf>,
    pub reach: Reach,
}

impl Located {
    pub async fn client(&self) -> Result<kube::Client> {
        context::connect(&self.context, self.kubeconfig.as_deref()).await
    }
}

/// The Kubernetes part of `status`: the loop's pods, and where ingress and admin answer.
pub async fn status(
    docker: Option<&Docker>,
    name: &str,
    namespace: &str,
    context: Option<&str>,
    status: &mut LoopStatus,
) -> Result<()> {
    let Some(located) = locate(docker, name, context).await? else {
        return Ok(());
    };
    status.runtime = Some(located.runtime.to_string());
    status.context = Some(located.context.clone());
    status.namespace = Some(namespace.to_string());
    let client = located.client().await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(&labels::selector(name)))
        .await
        .map_err(|e| Error::failed(format!("cannot list the pods in namespace {namespace}")).source(e))?;
    for pod in list.items {
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        status.components.push(Component {
            kind: "pod",
            name: pod.metadata.name.unwrap_or_default(),
            state: if ready {
                format!("{phase}, ready")
            } else {
                format!("{phase}, not ready")
            },
            healthy: ready,
        });
    }
    let forwarded = located.reach == Reach::PortForward;
    let (ingress, admin) = match located.reach {
        Reach::NodePorts { ingress, admin } => (url(ingress), url(admin)),
        Reach::PortForward => forward_record(&client, namespace).await?.urls(),
    };
    let answering = Admin::new(&admin)?.wait_healthy(Duration::from_secs(2)).await.is_ok();
    status.components.push(Component {
        kind: if forwarded { "port-forward" } else { "node-port" },
        name: format!("{admin}/health"),
        state: match (answering, forwarded) {
            (true, _) => "answering".into(),
            (false, true) => "not running (start it with `restate-dev port-forward`)".into(),
            (false, false) => "not answering".into(),
        },
        healthy: answering || forwarded,
    });
    status.ingress_url = Some(ingress);
    status.admin_url = Some(admin);
    Ok(())
}
