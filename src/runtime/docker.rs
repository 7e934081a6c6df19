//! `--runtime docker`: Restate and the service as plain containers on a private bridge network, with ingress and
//! admin published on 127.0.0.1. Every step is idempotent: a re-`up` finds what exists and keeps it.

use std::time::{Duration, SystemTime};

use crate::config::quantity;
use crate::docker::ownership::{self, Object};
use crate::docker::{
    ContainerInfo, ContainerSpec, Docker, Limits, Mount, NetworkInfo, NetworkSpec, PortPublish, ports,
};
use crate::error::{Error, Result};
use crate::pipeline::{Done, Pipeline};
use crate::restate::{Admin, Ingress, logged_about};
use crate::runtime::{
    Component, LoopStatus, Plan, Stage, Summary, Target, record, register_and_verify, require_local_image,
};
use crate::{images, labels};

const INGRESS_PORT: u16 = 8080;
const ADMIN_PORT: u16 = 9070;
const SERVICE_PORT: u16 = 9080;
/// How much of Restate's log a failure diagnosis reads: its pretty format takes several lines per event.
const RESTATE_LOG_LINES: usize = 200;
/// Restate's data lives in a named volume, so it survives a re-`up` that recreates the container.
const DATA_DIR: &str = "/restate-data";

/// The names of one loop's Docker objects; the loop name keeps two loops apart.
struct Names {
    network: String,
    restate: String,
    service: String,
    volume: String,
}

impl Names {
    fn of(name: &str) -> Self {
        Names {
            network: format!("{name}-net"),
            restate: format!("{name}-restate"),
            service: format!("{name}-service"),
            volume: format!("{name}-restate-data"),
        }
    }

    /// Everything the loop uses by name, which must be the loop's own if it exists.
    fn owned(&self) -> [(Object, &str); 4] {
        [
            (Object::Network, &self.network),
            (Object::Volume, &self.volume),
            (Object::Container, &self.restate),
            (Object::Container, &self.service),
        ]
    }
}

#[derive(Debug, Clone, Copy)]
struct HostPorts {
    ingress: u16,
    admin: u16,
}

pub async fn up(plan: &Plan, pipeline: &mut Pipeline) -> Result<Summary> {
    let names = Names::of(&plan.name);
    let ui = pipeline.ui().clone();
    let (docker, host_ports) = pipeline
        .step("preflight", async |_| {
            let docker = Docker::connect().await?;
            if let Some(binary) = &plan.setup.restate_binary {
                images::check_restate_binary(binary)?;
            }
            if let Some(image) = &plan.objects.service_image {
                require_local_image(&docker, image).await?;
            }
            ownership::ensure_ours(&docker, &plan.name, &names.owned()).await?;
            let existing = docker.inspect_container(&names.restate).await?;
            let host_ports = choose_ports(plan, existing.as_ref())?;
            let detail = format!("Docker at {}", docker.endpoint());
            Ok(Done::ok((docker, host_ports), detail))
        })
        .await?;
    // Images before the network: finding or building them can fail, and must then leave nothing of the loop.
    let (restate_image, service_image) = pipeline
        .step("images", async |_| {
            let binary = plan.setup.restate_binary.as_deref();
            let restate = images::ensure_restate_image(&docker, &plan.objects.restate_image, binary, &ui).await?;
            let service = match &plan.objects.service_image {
                Some(image) => image.clone(),
                None => images::ensure_sample_image(&docker, &ui).await?,
            };
            let detail = format!("{restate}, {service}");
            let restate = Image::of(&docker, &restate.reference).await?;
            let service = Image::of(&docker, &service).await?;
            // Nothing to do for this loop when its containers already run exactly these images.
            let mut unchanged = true;
            for (container, image) in [(&names.restate, &restate), (&names.service, &service)] {
                let running = docker.inspect_container(container).await?.map(|c| c.image_id);
                unchanged &= running.as_deref() == Some(image.id.as_str());
            }
            Ok(match unchanged {
                true => Done::skipped((restate, service), format!("{detail}, running")),
                false => Done::ok((restate, service), detail),
            })
        })
        .await?;
    pipeline
        .step("cluster", async |_| {
            let exists = existing_network(&docker, &plan.name, &names).await?.is_some();
            if !exists {
                let spec = NetworkSpec {
                    name: names.network.clone(),
                    labels: labels::for_loop(&plan.name),
                    mtu: None,
                    masquerade: true,
                };
                // A daemon that refuses a second network of the name (API 1.44 on) says it exists: then it is used.
                if let Err(e) = docker.create_network(&spec).await
                    && !crate::docker::is_conflict(&e)
                {
                    return Err(e);
                }
                // Whoever created one too (an older release, without our lock) is settled now.
                existing_network(&docker, &plan.name, &names).await?;
            }
            // Recorded with the loop's first object, before anything runs: a bare `up` must re-up it as this.
            record::write(&docker, &plan.name, &plan.record).await?;
            Ok(match exists {
                true => Done::skipped((), format!("network {} exists", names.network)),
                false => Done::ok((), format!("network {}", names.network)),
            })
        })
        .await?;
    let admin_url = format!("http://127.0.0.1:{}", host_ports.admin);
    let ingress_url = format!("http://127.0.0.1:{}", host_ports.ingress);
    let admin = Admin::new(&admin_url)?;
    pipeline.reached_admin(&admin_url);
    let service_changed = pipeline
        .step("install", async |step| {
            let restate = restate_spec(plan, &names, &restate_image.reference, host_ports);
            let restate_outcome = ensure_container(&docker, &restate, &restate_image.id).await?;
            // The service does not need Restate to start, so it starts while Restate does.
            let service = service_spec(plan, &names, &service_image.reference);
            let service_outcome = ensure_container(&docker, &service, &service_image.id).await?;
            step.set_message("waiting for Restate's admin API");
            let alive = || running_or_fail(&docker, &names.restate, "Restate");
            admin.wait_healthy_while(plan.setup.timeout, alive).await?;
            let detail = format!(
                "{}, {}",
                restate_outcome.describe("Restate", &names.restate),
                service_outcome.describe("service", &names.service)
            );
            let service_changed = service_outcome != Outcome::Unchanged;
            Ok(match (restate_outcome, service_outcome) {
                (Outcome::Unchanged, Outcome::Unchanged) => Done::skipped(false, detail),
                _ => Done::ok(service_changed, detail),
            })
        })
        .await?;
    let service_uri = format!("http://{}:{SERVICE_PORT}", names.service);
    let ingress = Ingress::new(&ingress_url)?;
    let target = Target {
        uri: &service_uri,
        changed: service_changed,
    };
    let registering = SystemTime::now();
    let diagnose = async |stage| diagnosis(&docker, &names, &service_uri, stage, registering).await;
    let alive = async || running_or_fail(&docker, &names.service, "service").await;
    let (registration, verified) =
        register_and_verify(plan, pipeline, &admin, &ingress, &target, diagnose, alive).await?;
    Ok(Summary {
        name: plan.name.clone(),
        runtime: plan.runtime_name(),
        context: None,
        namespace: None,
        ui_url: super::ui_url(&admin_url),
        ingress_url,
        admin_url,
        service_uri,
        deployment_id: registration.id,
        services: registration.services,
        forwarded: false,
        verified,
    })
}

/// An image to run, with the ID its reference names now.
struct Image {
    reference: String,
    id: String,
}

impl Image {
    async fn of(docker: &Docker, reference: &str) -> Result<Image> {
        let info = docker.inspect_image(reference).await?.ok_or_else(|| {
            Error::prerequisite(format!("the image {reference} disappeared from the local Docker"))
                .hint("something removed it while `up` ran; run `restate-dev up` again")
        })?;
        Ok(Image {
            reference: reference.to_string(),
            id: info.id,
        })
    }
}

/// Given ports must be free (unless our own running container holds them); missing ones are the loop's
/// recorded ones, or chosen free. A stopped loop gets its recorded ports back, so its URLs stay the same,
/// unless something else took them meanwhile.
fn choose_ports(plan: &Plan, existing: Option<&ContainerInfo>) -> Result<HostPorts> {
    let recorded = |container_port: u16| {
        existing.and_then(|info| {
            info.ports
                .iter()
                .find(|(c, _)| *c == container_port)
                .map(|(_, host)| *host)
        })
    };
    let held = existing.is_some_and(|info| info.running);
    let pick = |wanted: Option<u16>, container_port: u16, what: &str, flag: &str| -> Result<u16> {
        let ours = recorded(container_port);
        match wanted.or(ours) {
            Some(port) if held && Some(port) == ours => Ok(port),
            Some(port) => ports::ensure_free(port, what, flag).map(|()| port),
            None => ports::free_port(),
        }
    };
    let ingress = pick(
        plan.setup.ingress_port,
        INGRESS_PORT,
        "Restate ingress",
        "--ingress-port",
    )?;
    let mut admin = pick(
        plan.setup.admin_port,
        ADMIN_PORT,
        "the Restate admin API",
        "--admin-port",
    )?;
    while admin == ingress {
        admin = ports::free_port()?;
    }
    Ok(HostPorts { ingress, admin })
}

fn restate_spec(plan: &Plan, names: &Names, image: &str, host_ports: HostPorts) -> ContainerSpec {
    let mut spec = ContainerSpec::new(&names.restate, image, labels::for_loop(&plan.name));
    spec.network = Some(names.network.clone());
    spec.aliases = vec!["restate".into()];
    spec.ports = vec![
        PortPublish::loopback(host_ports.ingress, INGRESS_PORT),
        PortPublish::loopback(host_ports.admin, ADMIN_PORT),
    ];
    spec.mounts = vec![Mount::Volume {
        name: Some(names.volume.clone()),
        target: DATA_DIR.into(),
    }];
    // Docker creates named volumes owned by root; Kubernetes solves this with fsGroup, Docker has no equivalent.
    spec.user = Some("0:0".into());
    spec.env = vec![
        format!("RESTATE_BASE_DIR={DATA_DIR}"),
        format!("RESTATE_CLUSTER_NAME={}", plan.name),
        // A fixed node name: Restate refuses to start on data written under another one.
        "RESTATE_NODE_NAME=restate".into(),
        "RESTATE_DISABLE_TELEMETRY=true".into(),
        // What `/version` and the UI tell clients: the host URLs, not the container's own address.
        format!(
            "RESTATE_INGRESS__ADVERTISED_ADDRESS=http://127.0.0.1:{}/",
            host_ports.ingress
        ),
        format!(
            "RESTATE_ADMIN__ADVERTISED_ADDRESS=http://127.0.0.1:{}/",
            host_ports.admin
        ),
    ];
    let resources = &plan.objects.resources;
    // The config layer checked both quantities; a limit too small to halve keeps Restate's default.
    if let Ok(bytes) = quantity::rocksdb_memory(&resources.memory_limit) {
        spec.env.push(format!("RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE={bytes}"));
    }
    spec.limits = Limits {
        memory: quantity::bytes(&resources.memory_limit)
            .ok()
            .and_then(|b| i64::try_from(b).ok()),
        nano_cpus: quantity::nano_cpus(&resources.cpu_limit)
            .ok()
            .and_then(|n| i64::try_from(n).ok()),
    };
    spec
}

fn service_spec(plan: &Plan, names: &Names, image: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new(&names.service, image, labels::for_loop(&plan.name));
    spec.network = Some(names.network.clone());
    spec.aliases = vec!["service".into()];
    spec.env = vec![format!("PORT={SERVICE_PORT}")];
    spec
}

/// What `ensure_container` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Unchanged,
    Created,
    /// It was stopped (or created and never started), and now runs on its recorded ports.
    Started,
    /// The image behind its reference is another one now (a rebuild under the same tag).
    ImageChanged,
    PortsChanged,
    /// Its environment or its memory and CPU limits are not what `up` sets now.
    SettingsChanged,
}

impl Outcome {
    /// For the install step's line: "service image changed: restarted NAME-service".
    fn describe(self, what: &str, name: &str) -> String {
        match self {
            Outcome::Unchanged => format!("{name} unchanged"),
            Outcome::Created => format!("{name} created"),
            Outcome::Started => format!("{name} was stopped: started"),
            Outcome::ImageChanged => format!("{what} image changed: restarted {name}"),
            Outcome::PortsChanged => format!("{what} ports changed: recreated {name}"),
            Outcome::SettingsChanged => format!("{what} settings changed: recreated {name}"),
        }
    }
}

/// The loop's network, when it exists: the one of its name that `keep_one_network` keeps, after removing the
/// empty duplicates of ours that a race or an older release left. The preflight has refused a network of the
/// name that is not the loop's, so what exists here is the loop's.
async fn existing_network(docker: &Docker, name: &str, names: &Names) -> Result<Option<NetworkInfo>> {
    let is_ours = |n: &NetworkInfo| labels::is_loops(&n.labels, name);
    docker.keep_one_network(&names.network, is_ours).await
}

/// The loop's container of this name, when it exists. The preflight has refused a container of the name that is
/// not the loop's, so what exists here is the loop's.
async fn existing_container(docker: &Docker, name: &str) -> Result<Option<ContainerInfo>> {
    docker.inspect_container(name).await
}

/// How often `ensure_container` looks again when a container of its name appeared between its look and its
/// create (someone else's create won): from then on it is the one to use.
const CREATE_ATTEMPTS: u32 = 3;

/// Makes the container exist, run, and match `spec`'s ports, environment and limits and the image `image_id`.
/// Images are compared by ID, not by reference, as Tilt and Skaffold do: a service rebuilt under the same tag
/// must be run.
async fn ensure_container(docker: &Docker, spec: &ContainerSpec, image_id: &str) -> Result<Outcome> {
    let mut attempt = 1;
    loop {
        match ensure_container_once(docker, spec, image_id).await {
            Err(e) if attempt < CREATE_ATTEMPTS && crate::docker::is_conflict(&e) => attempt += 1,
            outcome => return outcome,
        }
    }
}

async fn ensure_container_once(docker: &Docker, spec: &ContainerSpec, image_id: &str) -> Result<Outcome> {
    let Some(info) = existing_container(docker, &spec.name).await? else {
        docker.run_container(spec).await?;
        return Ok(Outcome::Created);
    };
    let mut wanted_ports: Vec<(u16, u16)> = spec.ports.iter().map(|p| (p.container_port, p.host_port)).collect();
    wanted_ports.sort();
    let outcome = if info.image_id != image_id {
        Outcome::ImageChanged
    } else if info.ports != wanted_ports {
        Outcome::PortsChanged
    } else if info.limits != spec.limits || spec.env.iter().any(|var| !info.env.contains(var)) {
        Outcome::SettingsChanged
    } else if info.running {
        return Ok(Outcome::Unchanged);
    } else {
        docker.start_container(&spec.name).await?;
        return Ok(Outcome::Started);
    };
    docker.remove_container(&spec.name).await?;
    docker.run_container(spec).await?;
    Ok(outcome)
}

/// What Docker shows of the service container for a registration or verification that failed, and for a
/// registration what Restate logged about the service's address meanwhile (a proof has Restate's own record).
async fn diagnosis(docker: &Docker, names: &Names, service_uri: &str, stage: Stage, since: SystemTime) -> Vec<String> {
    let mut lines = Vec::new();
    let service = &names.service;
    match docker.inspect_container(service).await {
        Ok(Some(info)) if info.paused => lines.push(format!(
            "container {service} is paused, so the service cannot answer (`docker unpause {service}` resumes it)"
        )),
        Ok(Some(info)) if !info.running => lines.push(format!("container {service} is not running ({})", info.status)),
        Ok(Some(_)) => lines.push(format!("container {service} is running")),
        Ok(None) => lines.push(format!("container {service} does not exist")),
        Err(e) => lines.push(format!("cannot inspect container {service}: {}", e.message)),
    }
    // Quoted now: `smoke` removes the container before anyone could run `docker logs`.
    lines.extend(log_tail(docker, service).await);
    if stage == Stage::Verify {
        return lines;
    }
    let logs = docker
        .logs_since(&names.restate, RESTATE_LOG_LINES, since)
        .await
        .unwrap_or_default();
    let said = logged_about(&logs, service_uri);
    if said.is_empty() {
        lines.push(format!("Restate has logged nothing about {service_uri} yet"));
    }
    for line in said {
        lines.push(format!("Restate logged: {line}"));
    }
    lines
}

/// Ends a wait early when the container is no longer running: an error with its exit code and its last log
/// lines (Restate without a CA bundle panics and still exits 0, so the exit code alone proves nothing). The
/// lines are in the error itself, because `smoke` removes the container before anyone could run `docker logs`.
async fn running_or_fail(docker: &Docker, name: &str, what: &str) -> Result<()> {
    let inspected = match docker.inspect_container(name).await {
        Ok(inspected) => inspected,
        // An inspect that fails (a busy daemon, a dropped connection) says nothing about the container: the
        // step's own wait decides, and the next look may see it.
        Err(_) => return Ok(()),
    };
    match inspected {
        // Paused counts as running here: the diagnosis of a wait that ran out says it is paused.
        Some(info) if info.running => Ok(()),
        Some(info) => {
            let code = info
                .exit_code
                .map_or("no exit code".into(), |c| format!("exit code {c}"));
            let error = Error::failed(format!("the {what} container {name} exited ({code})"))
                .hint("its last log lines are above: fix what they say, then run `restate-dev up` again");
            Err(with_log_tail(docker, name, error).await)
        }
        None => Err(Error::failed(format!(
            "the {what} container {name} disappeared while `up` waited for it"
        ))
        .hint("something else removed it; run `restate-dev up` again")),
    }
}

/// The last log lines of each of loop `name`'s containers, found by label.
pub(super) async fn loop_logs(docker: &Docker, name: &str) -> Vec<String> {
    let mut containers = match docker.list_containers(&labels::for_loop(name)).await {
        Ok(containers) => containers,
        Err(e) => return vec![format!("cannot list loop {name}'s containers: {}", e.message)],
    };
    if containers.is_empty() {
        return vec![format!("loop {name} has no containers to collect logs from")];
    }
    containers.sort();
    let mut lines = Vec::new();
    for container in containers {
        lines.extend(log_tail(docker, &container).await);
    }
    lines
}

/// How many of a stopped container's last log lines an error quotes.
const EXIT_LOG_LINES: usize = 20;

/// `error` with the container's last log lines as details.
async fn with_log_tail(docker: &Docker, name: &str, mut error: Error) -> Error {
    for line in log_tail(docker, name).await {
        error = error.detail(line);
    }
    error
}

/// The container's last log lines, quoted, under a line that says whose they are.
async fn log_tail(docker: &Docker, name: &str) -> Vec<String> {
    match docker.logs_tail(name, EXIT_LOG_LINES).await {
        Ok(logs) if logs.trim().is_empty() => vec![format!("{name} logged nothing")],
        Ok(logs) => std::iter::once(format!("the last lines {name} logged:"))
            .chain(logs.lines().map(|line| format!("| {line}")))
            .collect(),
        Err(e) => vec![format!("cannot read the log of {name}: {}", e.message)],
    }
}

/// Whether loop `name` has its docker-runtime Restate container (running or not), carrying its labels.
pub async fn exists(docker: &Docker, name: &str) -> Result<bool> {
    let info = docker.inspect_container(&Names::of(name).restate).await?;
    Ok(info.is_some_and(|c| labels::is_loops(&c.labels, name)))
}

/// The image reference loop `name`'s service container was created with; None when it has no such container.
pub async fn service_image(docker: &Docker, name: &str) -> Result<Option<String>> {
    let info = docker.inspect_container(&Names::of(name).service).await?;
    Ok(info.filter(|c| labels::is_loops(&c.labels, name)).map(|c| c.image))
}

/// What `down` spares of a loop's Docker objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep<'a> {
    Nothing,
    /// `down --keep-cluster` of a loop on kind or minikube: its kind node container (if any), the volumes that
    /// node holds and the loop's record stay; only the docker runtime's own data volume goes.
    Cluster {
        node: Option<&'a str>,
    },
}

/// Removes every container, network and volume of the loop, less what `keep` spares.
///
/// A network or volume still in use (a container another process, such as an interrupted `up`, was creating
/// while we listed) gets another pass: what appeared late is listed and removed then.
pub async fn remove_loop(docker: &Docker, name: &str, keep: Keep<'_>) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for pass in 1..=REMOVAL_PASSES {
        match remove_pass(docker, name, keep, &mut removed).await {
            Err(e) if pass < REMOVAL_PASSES && crate::docker::is_conflict(&e) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            outcome => return outcome.map(|()| removed),
        }
    }
    Ok(removed)
}

const REMOVAL_PASSES: u32 = 3;

async fn remove_pass(docker: &Docker, name: &str, keep: Keep<'_>, removed: &mut Vec<String>) -> Result<()> {
    let selector = labels::for_loop(name);
    let names = Names::of(name);
    let kept_node = match keep {
        Keep::Cluster { node } => node,
        Keep::Nothing => None,
    };
    for container in docker.list_containers(&selector).await? {
        if Some(container.as_str()) != kept_node && docker.remove_container(&container).await? {
            removed.push(format!("container {container}"));
        }
    }
    // By ID: duplicates of a name (left by a race or an older release) make the name ambiguous to Docker.
    for network in docker.list_labelled_networks(&selector).await? {
        if docker.remove_network(&network.id).await? {
            removed.push(format!("network {}", network.name));
        }
    }
    for volume in docker.list_volumes(&selector).await? {
        if (keep == Keep::Nothing || volume == names.volume) && docker.remove_volume(&volume).await? {
            removed.push(format!("volume {volume}"));
        }
    }
    Ok(())
}

/// The docker runtime's part of `status`: its containers and whether Restate answers.
pub async fn status(docker: &Docker, name: &str, status: &mut LoopStatus) -> Result<()> {
    let names = Names::of(name);
    let mut missing = Vec::new();
    for container in [&names.restate, &names.service] {
        // A container of that name that another tool or loop made is not this loop's.
        let Some(info) = docker
            .inspect_container(container)
            .await?
            .filter(|info| labels::is_loops(&info.labels, name))
        else {
            missing.push(container);
            continue;
        };
        status.runtime.get_or_insert_with(|| "docker".into());
        if container == &names.restate {
            if let Some((_, port)) = info.ports.iter().find(|(c, _)| *c == INGRESS_PORT) {
                status.ingress_url = Some(format!("http://127.0.0.1:{port}"));
            }
            if let Some((_, port)) = info.ports.iter().find(|(c, _)| *c == ADMIN_PORT) {
                status.admin_url = Some(format!("http://127.0.0.1:{port}"));
            }
        }
        status.components.push(Component {
            kind: "container",
            name: info.name.clone(),
            state: info.status.clone(),
            healthy: info.running,
        });
    }
    // A loop that exists without one of its containers (removed by hand, or an `up` interrupted between the two)
    // is not healthy: `up` makes it again.
    if status.runtime.is_some() {
        for container in missing {
            status.components.push(Component {
                kind: "container",
                name: container.clone(),
                state: "missing".into(),
                healthy: false,
            });
        }
    }
    if let Some(admin_url) = status.admin_url.clone() {
        let healthy = Admin::new(&admin_url)?
            .wait_healthy(Duration::from_secs(2))
            .await
            .is_ok();
        status.components.push(Component {
            kind: "endpoint",
            name: format!("{admin_url}/health"),
            state: if healthy {
                "answering".into()
            } else {
                "not answering".into()
            },
            healthy,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::Endpoint;
    use crate::k8s::fake_apiserver::{self, Answer};
    use serde_json::json;

    /// A Docker daemon that answers the handshake, and a 500 to every inspect.
    async fn failing_inspects() -> Docker {
        let server = fake_apiserver::start(|seen| match seen.path.as_str() {
            "/_ping" => Answer::Text("OK".into()),
            "/version" => Answer::ok(json!({"ApiVersion": "1.43", "Version": "24.0.0"})),
            _ => Answer::Json(500, json!({"message": "the daemon is busy"})),
        })
        .await;
        Docker::connect_to(Endpoint::Tcp(server.addr.to_string()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_inspect_that_fails_is_not_a_dead_container() {
        let docker = failing_inspects().await;
        assert!(
            docker.inspect_container("x-restate").await.is_err(),
            "the fake fails inspects"
        );
        running_or_fail(&docker, "x-restate", "Restate")
            .await
            .expect("a failed inspect keeps the wait going");
    }
}
