//! A kind-compatible cluster, made through the Docker Engine API without the kind CLI: kind's node container,
//! bootstrapped by exec, with kind's labels and a `kind-NAME` kube context, so the kind CLI can see and delete it.

pub mod bootstrap;
pub mod host;
pub mod kubeadm;
pub mod kubeconfig;
pub mod load;
pub mod network;
pub mod node;
pub mod proxy;
pub mod snapshotter;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::query_parameters::CreateContainerOptions;

use super::{Access, Provider, Reach, Removed};
use crate::config::LoopSettings;
use crate::docker::ownership::{self, Object};
use crate::docker::{ContainerInfo, Docker, ports};
use crate::error::{Error, Result};
use crate::labels;
use crate::ui::Ui;
use bootstrap::Bootstrap;
use host::Host;
use kubeadm::API_SERVER_PORT;
use kubeconfig::Entries;
use node::{ADMIN_NODE_PORT, CLUSTER_LABEL, INGRESS_NODE_PORT, NodeSpec};

/// How a node reaches Restate from 127.0.0.1: the host ports it publishes onto the NodePorts, if it does.
pub fn reach(node: &ContainerInfo) -> Reach {
    let published = |port: u16| node.ports.iter().find(|(c, _)| *c == port).map(|(_, h)| *h);
    match (published(INGRESS_NODE_PORT), published(ADMIN_NODE_PORT)) {
        (Some(ingress), Some(admin)) => Reach::NodePorts { ingress, admin },
        _ => Reach::PortForward,
    }
}

/// kind v0.33.0's default node image, pinned by digest (pkg/apis/config/defaults/image.go).
pub const DEFAULT_NODE_IMAGE: &str =
    "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5";
/// How long a reused cluster's API server gets to answer (after a restart it needs a while).
const API_WAIT_AFTER_START: Duration = Duration::from_secs(90);
/// How long a running node's API server may take to answer: seconds normally, but a loaded machine (two clusters
/// and a build on two cores) has been seen to starve it past 10 s.
const API_WAIT_RUNNING: Duration = Duration::from_secs(30);

/// How often the node is attached to the `kind` network when the network it was given vanishes meanwhile.
const NETWORK_ATTEMPTS: u32 = 3;

/// One kind cluster, named after the loop.
pub struct KindCluster {
    docker: Docker,
    pub name: String,
    pub node_image: String,
    /// Host ports on 127.0.0.1 for Restate's ingress and admin NodePorts; None picks free ones.
    pub ingress_port: Option<u16>,
    pub admin_port: Option<u16>,
    /// The bound on each long wait.
    pub timeout: Duration,
    /// Keep what a failed bootstrap made, for debugging.
    pub retain: bool,
    /// The Docker network; kind's `kind` except in tests, which need their own.
    pub network: String,
    /// The kubeconfig files our context is merged into (one of them) and removed from (all).
    pub kubeconfig: kubeconfig::Files,
    /// Always true for real nodes; see [`NodeSpec::privileged`].
    pub privileged: bool,
    /// The variables of restate-dev's environment that kind passes into its nodes (proxies, the snapshotter
    /// override), read once so that tests can give their own.
    pub passed_env: BTreeMap<String, String>,
}

/// The names [`KindCluster::passed_env`] holds, when set.
fn passed_names() -> Vec<String> {
    let proxies = proxy::NAMES.iter().flat_map(|n| [n.to_string(), n.to_lowercase()]);
    proxies.chain([snapshotter::VARIABLE.to_string()]).collect()
}

impl KindCluster {
    pub fn new(docker: Docker, name: &str, settings: &LoopSettings, retain: bool) -> Result<KindCluster> {
        Ok(KindCluster {
            docker,
            name: name.to_string(),
            node_image: settings
                .node_image
                .clone()
                .unwrap_or_else(|| DEFAULT_NODE_IMAGE.to_string()),
            ingress_port: settings.ingress_port,
            admin_port: settings.admin_port,
            timeout: settings.timeout,
            retain,
            network: network::KIND_NETWORK.to_string(),
            kubeconfig: kubeconfig::Files::from_env()?,
            privileged: true,
            passed_env: passed_names()
                .into_iter()
                .filter_map(|name| std::env::var(&name).ok().map(|value| (name, value)))
                .collect(),
        })
    }

    /// The kubeconfig file that holds (or will hold) our context.
    pub fn kubeconfig_file(&self) -> Result<PathBuf> {
        self.kubeconfig.target(&self.context())
    }

    /// The Docker host's modes, from the daemon's info.
    async fn host(&self) -> Result<Host> {
        Ok(Host::from_facts(&self.docker.facts().await?))
    }

    /// The node's passed-through variables: proxies with NO_PROXY extended for the network's `subnets`, and the
    /// snapshotter.
    fn node_env(&self, subnets: &[String]) -> Vec<String> {
        let get = |name: &str| self.passed_env.get(name).cloned();
        let mut env = proxy::node_env(get, subnets, &[self.node_name()]);
        env.extend(snapshotter::node_env(get));
        env
    }

    pub fn node_name(&self) -> String {
        node::node_name(&self.name)
    }

    pub fn context(&self) -> String {
        kubeconfig::context_name(&self.name)
    }

    /// The reference to run, when the node image is present: as written, by digest alone (a pull by digest
    /// leaves no tag), or by tag alone (a `docker load`ed image has no registry digest to match).
    pub async fn local_image(&self) -> Result<Option<String>> {
        for candidate in image_candidates(&self.node_image) {
            if self.docker.image_exists(&candidate).await? {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }

    /// Host ports for a new node: the ones asked for (which must be free), or free ones.
    fn pick_ports(&self) -> Result<(u16, u16, u16)> {
        let pick = |asked: Option<u16>, what: &str, flag: &str| match asked {
            Some(port) => ports::ensure_free(port, what, flag).map(|()| port),
            None => ports::free_port(),
        };
        let ingress = pick(self.ingress_port, "Restate ingress", "--ingress-port")?;
        let admin = pick(self.admin_port, "the Restate admin API", "--admin-port")?;
        let mut api = ports::free_port()?;
        // free_port hands out what the kernel says is free now; three calls may repeat a number
        while api == ingress || api == admin {
            api = ports::free_port()?;
        }
        let admin = if admin == ingress { ports::free_port()? } else { admin };
        Ok((api, ingress, admin))
    }

    async fn access(&self, info: &ContainerInfo, entries: &Entries, created: bool) -> Result<Access> {
        let reach = reach(info);
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(entries.to_kubeconfig(), &options)
            .await
            .map_err(|e| Error::failed(format!("cannot use the kubeconfig of kind cluster {}", self.name)).source(e))?;
        let client = kube::Client::try_from(config)
            .map_err(|e| Error::failed(format!("cannot build a client for kind cluster {}", self.name)).source(e))?;
        Ok(Access {
            context: entries.name.clone(),
            client,
            reach,
            created,
            node_started: info.started_at,
        })
    }

    /// The node's admin.conf, renamed, merged into the kubeconfig file.
    async fn write_kubeconfig(&self, admin_conf: &str, api_port: u16, ui: &Ui) -> Result<Entries> {
        let entries = kubeconfig::from_admin_conf(admin_conf, &self.name, api_port)?;
        // `kind-NAME` is kind's name for cluster NAME, which on this Docker is this loop's node: kind overwrites
        // its names too. Entries that pointed elsewhere belonged to a cluster of that name that is gone.
        let replaced = self.kubeconfig.server(&entries.name)?;
        let replaced = replaced.filter(|old| Some(old.as_str()) != entries.server());
        let (file, written) = self.kubeconfig.merge(&entries)?;
        if let Some(old) = replaced {
            ui.info(format!(
                "note: kube context {} in {} pointed at {old}, where no node of this loop answers; it now points \
                 at node {}",
                entries.name,
                file.display(),
                self.node_name()
            ));
        }
        if written == kubeconfig::Written::Reformatted {
            ui.info(format!(
                "note: {} was rewritten in kubectl's layout (its layout was not one restate-dev edits in place)",
                file.display()
            ));
        }
        Ok(entries)
    }

    /// Waits until the API server answers through the published port.
    async fn wait_for_api(&self, access: &Access, bound: Duration) -> Result<()> {
        let deadline = Instant::now() + bound;
        loop {
            let attempt = tokio::time::timeout(Duration::from_secs(5), access.client.apiserver_version()).await;
            match attempt {
                Ok(Ok(_)) => return Ok(()),
                _ if Instant::now() >= deadline => {
                    let cause = match attempt {
                        Ok(Err(e)) => e.to_string(),
                        _ => "no answer within 5s".into(),
                    };
                    return Err(Error::timeout(format!(
                        "the API server of kind cluster {} did not answer within {}: {cause}",
                        self.name,
                        crate::ui::format_duration(bound)
                    ))
                    .hint(format!(
                        "`docker logs {}` shows the node; `restate-dev down` and `up` recreate the cluster",
                        self.node_name()
                    )));
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Our running node whose bootstrap never wrote admin.conf.
    async fn half_made(&self, info: &ContainerInfo) -> Result<bool> {
        if !info.running || info.labels.get(CLUSTER_LABEL) != Some(&self.name) {
            return Ok(false);
        }
        let probe = self
            .docker
            .exec(&info.name, &["test", "-f", "/etc/kubernetes/admin.conf"])
            .await?;
        Ok(probe.exit_code != 0)
    }

    /// Reuses the existing node: starts it if stopped, refreshes the kubeconfig entries, checks the API.
    async fn reuse(&self, info: ContainerInfo, ui: &Ui) -> Result<Access> {
        let node = self.node_name();
        if info.labels.get(CLUSTER_LABEL) != Some(&self.name) {
            return Err(Error::prerequisite(format!(
                "container {node} exists but is not the node of kind cluster {}",
                self.name
            ))
            .hint(format!("remove it (`docker rm -f {node}`) or choose another --name")));
        }
        let step = ui.step(format!("kind cluster {}", self.name));
        let info = if info.running {
            info
        } else {
            step.set_message("starting the stopped node");
            self.docker.start_container(&node).await?;
            self.docker
                .inspect_container(&node)
                .await?
                .ok_or_else(|| Error::failed(format!("node {node} vanished while starting")))?
        };
        let api_port = info
            .ports
            .iter()
            .find(|(c, _)| *c == API_SERVER_PORT)
            .map(|(_, h)| *h)
            .ok_or_else(|| {
                Error::failed(format!(
                    "node {node} does not publish the API server port {API_SERVER_PORT}"
                ))
                .hint("`restate-dev down` and `up` recreate the cluster")
            })?;
        for (asked, node_port, flag) in [
            (self.ingress_port, INGRESS_NODE_PORT, "--ingress-port"),
            (self.admin_port, ADMIN_NODE_PORT, "--admin-port"),
        ] {
            let published = info.ports.iter().find(|(c, _)| *c == node_port).map(|(_, h)| *h);
            if let Some(asked) = asked.filter(|&a| Some(a) != published) {
                ui.warn(format!(
                    "{flag} {asked} is ignored: the existing node {node} publishes {}; \
                     `restate-dev down` and `up` recreate it with the new port",
                    published.map_or("no such port".to_string(), |p| format!("port {p}"))
                ));
            }
        }
        let admin_conf = self
            .docker
            .exec_ok(&node, &["cat", "/etc/kubernetes/admin.conf"])
            .await?;
        let entries = self.write_kubeconfig(&admin_conf, api_port, ui).await?;
        let access = self.access(&info, &entries, false).await?;
        let bound = if info.running {
            API_WAIT_RUNNING
        } else {
            API_WAIT_AFTER_START
        };
        self.wait_for_api(&access, bound).await?;
        step.done(if info.running { "reused" } else { "restarted" });
        Ok(access)
    }

    async fn create(&self, image: &str, ui: &Ui) -> Result<Access> {
        let mut made = Made::default();
        let result = self.create_steps(image, &mut made, ui).await;
        match result {
            Ok(access) => Ok(access),
            Err(error) => Err(self.roll_back(error, &made, ui).await),
        }
    }

    async fn create_steps(&self, image: &str, made: &mut Made, ui: &Ui) -> Result<Access> {
        let (api_port, ingress_port, admin_port) = self.pick_ports()?;
        let host = self.host().await?;
        let mut attempt = 1;
        let (spec, step) = loop {
            let step = ui.step("network");
            let (kept, ensured) = network::ensure(&self.docker, &self.network).await?;
            made.network |= ensured.created();
            step.done(ensured.describe());
            if let network::Ensured::Ipv4Only(reason) = &ensured {
                ui.info(format!("note: network {} has no IPv6 subnet: {reason}", self.network));
            }
            let spec = NodeSpec {
                cluster: self.name.clone(),
                image: image.to_string(),
                // by ID: until another `up` has settled the duplicates it made, the name may be ambiguous
                network: kept.id.clone(),
                api_port,
                ingress_port,
                admin_port,
                privileged: self.privileged,
                host,
                env: self.node_env(&kept.subnets),
            };
            let step = ui.step("node container");
            let options = CreateContainerOptions {
                name: Some(spec.name()),
                ..Default::default()
            };
            match self
                .docker
                .client()
                .create_container(Some(options), spec.container_body())
                .await
            {
                Ok(_) => break (spec, step),
                // Another `up` settled duplicates the other way just before we attached (a narrow race): again.
                Err(_) if attempt < NETWORK_ATTEMPTS && self.docker.inspect_network(&kept.id).await?.is_none() => {
                    step.skipped(format!("network {} {} was removed meanwhile", self.network, kept.id));
                    attempt += 1;
                }
                Err(e) => return Err(self.docker.fail(e, "create container", &spec.name())),
            }
        };
        let node = spec.name();
        made.container = true;
        self.docker.start_container(&node).await?;
        let mut detail = format!("{node}, API on 127.0.0.1:{}", spec.api_port);
        for flag in spec.host_flags() {
            detail.push_str(&format!(", {flag}"));
        }
        step.done(detail);

        let bootstrap = Bootstrap {
            docker: &self.docker,
            ui,
            cluster: &self.name,
            node: &node,
            network: &self.network,
            timeout: self.timeout,
            host,
        };
        let admin_conf = bootstrap.run().await?;
        let entries = self.write_kubeconfig(&admin_conf, spec.api_port, ui).await?;
        made.kubeconfig = true;
        let info = self
            .docker
            .inspect_container(&node)
            .await?
            .ok_or_else(|| Error::failed(format!("node {node} vanished after bootstrap")))?;
        let access = self.access(&info, &entries, true).await?;
        self.wait_for_api(&access, Duration::from_secs(30)).await?;
        Ok(access)
    }

    /// Adds the node's logs to the error, then removes what this attempt made, unless `retain`.
    async fn roll_back(&self, mut error: Error, made: &Made, ui: &Ui) -> Error {
        let node = self.node_name();
        if made.container {
            for line in bootstrap::node_logs(&self.docker, &node).await {
                error = error.detail(line);
            }
        }
        if self.retain {
            if error.hint.is_none() {
                error = error.hint(format!(
                    "look inside with `docker exec -it {node} journalctl -xe`; `restate-dev down` removes it"
                ));
            }
            return error.detail(format!(
                "kept node {node} and network {} for debugging (--retain)",
                self.network
            ));
        }
        if error.hint.is_none() {
            error = error.hint("the node's log is above; `up --retain` keeps a failed node for `docker exec`");
        }
        let step = ui.step("roll back");
        let mut left = Vec::new();
        if made.container
            && let Err(e) = self.docker.remove_container(&node).await
        {
            left.push(format!("container {node}: {e}"));
        }
        if made.network
            && let Err(e) = network::remove_if_unused(&self.docker, &self.network).await
        {
            left.push(format!("network {}: {e}", self.network));
        }
        if made.kubeconfig
            && let Err(e) = self.kubeconfig.remove(&self.context())
        {
            left.push(format!("kubeconfig entries {}: {e}", self.context()));
        }
        if left.is_empty() {
            step.done("removed what this attempt made");
        } else {
            drop(step);
            for thing in left {
                error = error.detail(format!("could not remove {thing}"));
            }
        }
        error
    }

    /// The node named like ours must be this loop's: a kind-CLI cluster of the same name is not.
    async fn ensure_node_is_ours(&self) -> Result<()> {
        let node = self.node_name();
        ownership::ensure_ours(&self.docker, &self.name, &[(Object::Container, &node)]).await
    }

    fn cluster_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(CLUSTER_LABEL.to_string(), self.name.clone())])
    }
}

/// `repo:tag@digest`, `repo@digest`, `repo:tag`: the ways a pinned image may be known locally.
fn image_candidates(image: &str) -> Vec<String> {
    let mut candidates = vec![image.to_string()];
    if let Some((tagged, digest)) = image.split_once('@') {
        let repo = strip_tag(tagged);
        if repo != tagged {
            candidates.push(format!("{repo}@{digest}"));
            candidates.push(tagged.to_string());
        }
    }
    candidates
}

/// The Kubernetes version a node image's tag names (`kindest/node:v1.37.0@sha256:…`), if it names one.
pub fn node_image_version(image: &str) -> Option<kubeadm::KubeVersion> {
    let tagged = image.split_once('@').map_or(image, |(tagged, _)| tagged);
    let tag = tagged.strip_prefix(strip_tag(tagged))?.strip_prefix(':')?;
    kubeadm::KubeVersion::parse(tag).ok()
}

/// A pinned reference as a pull wants it: by digest only, since the tag adds nothing but ambiguity.
fn pull_reference(image: &str) -> String {
    match image.split_once('@') {
        Some((tagged, digest)) => format!("{}@{digest}", strip_tag(tagged)),
        None => image.to_string(),
    }
}

/// `host:port/repo:tag` without `:tag` (a colon before the last slash is a registry port).
fn strip_tag(reference: &str) -> &str {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => &reference[..name_start + i],
        None => reference,
    }
}

/// What one creation attempt made, so a failure removes exactly that.
#[derive(Debug, Default)]
struct Made {
    network: bool,
    container: bool,
    kubeconfig: bool,
}

impl Provider for KindCluster {
    fn describe(&self) -> String {
        format!("kind cluster {}", self.name)
    }

    async fn preflight(&self, ui: &Ui) -> Result<()> {
        if self.docker.inspect_container(&self.node_name()).await?.is_some() {
            return self.ensure_node_is_ours().await;
        }
        self.host().await?.require_supported()?;
        if self.local_image().await?.is_none() {
            self.docker
                .pull_image(&pull_reference(&self.node_image), ui)
                .await
                .map_err(|e| {
                    let mut error = Error::prerequisite(format!(
                    "the kind node image {} is not present locally and cannot be pulled",
                    self.node_image
                ))
                .hint(format!(
                    "where a registry is reachable: `docker pull {image} && docker save {image} -o kindest-node.tar`; \
                     here: `docker load -i kindest-node.tar` (or choose another local image with --node-image)",
                    image = self.node_image
                ));
                    if let Some(cause) = e.source {
                        error = error.source(cause);
                    }
                    error
                })?;
        }
        self.pick_ports().map(|_| ())
    }

    async fn ensure(&self, ui: &Ui) -> Result<Access> {
        if let Some(info) = self.docker.inspect_container(&self.node_name()).await? {
            // Reusing or recreating a node another tool made would take its cluster over.
            self.ensure_node_is_ours().await?;
            if !self.half_made(&info).await? {
                return self.reuse(info, ui).await;
            }
            // An `up` interrupted (or killed) during bootstrap left a node without a control plane: start over.
            ui.warn(format!(
                "node {} was left half-made by an interrupted `up`; recreating it",
                info.name
            ));
            self.docker.remove_container(&info.name).await?;
        }
        let image = self.local_image().await?.ok_or_else(|| {
            Error::prerequisite(format!(
                "the kind node image {} is not present locally",
                self.node_image
            ))
            .hint("run `restate-dev up`, which pulls it, or `docker load` it")
        })?;
        self.create(&image, ui).await
    }

    /// The node is asked for the image's ID itself (`crictl inspecti`), so `_id` adds nothing.
    async fn load_image(&self, _access: &Access, image: &str, _id: Option<&str>, ui: &Ui) -> Result<bool> {
        load::load(&self.docker, &self.node_name(), image, ui).await
    }

    async fn delete(&self, ui: &Ui) -> Result<Removed> {
        let mut removed = Removed::new();
        let nodes = self.docker.list_containers(&self.cluster_labels()).await?;
        let mut ours = false;
        // Where our node's API server answers: the kube context entries pointing there are ours to remove.
        let mut api_server = None;
        for name in &nodes {
            let Some(info) = self.docker.inspect_container(name).await? else {
                continue;
            };
            ours |= info.labels.get(labels::MANAGED_BY_KEY).map(String::as_str) == Some(labels::MANAGED_BY);
            if *name == self.node_name() {
                api_server = info
                    .ports
                    .iter()
                    .find(|(c, _)| *c == API_SERVER_PORT)
                    .map(|(_, host)| format!("https://127.0.0.1:{host}"));
            }
        }
        if !nodes.is_empty() && !ours {
            ui.warn(format!(
                "kind cluster {} was not made by restate-dev; left alone (`kind delete cluster --name {}` removes it)",
                self.name, self.name
            ));
            return Ok(removed);
        }
        for name in &nodes {
            if self.docker.remove_container(name).await? {
                removed.push(format!("container {name} and its volumes"));
            }
        }
        match network::remove_if_unused(&self.docker, &self.network).await? {
            network::Outcome::Removed => removed.push(format!("network {}", self.network)),
            network::Outcome::InUse(users) => ui.info(format!(
                "kept network {}: still used by {}",
                self.network,
                users.join(", ")
            )),
            network::Outcome::NotOurs | network::Outcome::Missing => {}
        }
        let context = self.context();
        let Some(server) = api_server else {
            return Ok(removed);
        };
        for removal in self.kubeconfig.remove_pointing_at(&context, &server)? {
            match removal {
                kubeconfig::Removal::Removed(file) => {
                    removed.push(format!("kube context {context} from {}", file.display()))
                }
                kubeconfig::Removal::Kept { file, server } => ui.info(format!(
                    "kept kube context {context} in {}: it points at {server}, not at this loop's node",
                    file.display()
                )),
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod golden;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_image_is_looked_up_three_ways_and_pulled_by_digest() {
        let digest = "sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5";
        assert_eq!(
            image_candidates(DEFAULT_NODE_IMAGE),
            [
                DEFAULT_NODE_IMAGE.to_string(),
                format!("kindest/node@{digest}"),
                "kindest/node:v1.37.0".to_string()
            ]
        );
        assert_eq!(pull_reference(DEFAULT_NODE_IMAGE), format!("kindest/node@{digest}"));
        assert_eq!(pull_reference("localhost:5000/node:v1"), "localhost:5000/node:v1");
        assert_eq!(image_candidates("localhost:5000/node"), ["localhost:5000/node"]);
        assert_eq!(strip_tag("localhost:5000/node:v1"), "localhost:5000/node");
    }

    #[test]
    fn a_node_images_version_is_read_from_its_tag() {
        let version = |image| node_image_version(image).map(|v| (v.major, v.minor));
        assert_eq!(version(DEFAULT_NODE_IMAGE), Some((1, 37)));
        assert_eq!(version("localhost:5000/kindest/node:v1.34.11"), Some((1, 34)));
        assert_eq!(version("kindest/node@sha256:a1ed56cfb0e7"), None);
        assert_eq!(version("my/node:latest"), None);
    }

    /// A stopped node publishes nothing, but its recorded bindings (which `inspect_container` reads from its
    /// configuration) still say where it will answer once `up` restarts it, so `status` and `up` keep its URLs.
    #[test]
    fn a_stopped_node_still_reaches_its_recorded_node_ports() {
        let node = ContainerInfo {
            id: "n".into(),
            name: "restate-dev-control-plane".into(),
            image: DEFAULT_NODE_IMAGE.into(),
            image_id: "sha256:n".into(),
            labels: BTreeMap::new(),
            status: "exited".into(),
            running: false,
            paused: false,
            exit_code: Some(0),
            error: None,
            ports: vec![
                (ADMIN_NODE_PORT, 19070),
                (INGRESS_NODE_PORT, 18080),
                (API_SERVER_PORT, 41234),
            ],
            addresses: BTreeMap::new(),
            started_at: None,
            env: Vec::new(),
            limits: Default::default(),
        };
        assert_eq!(
            reach(&node),
            Reach::NodePorts {
                ingress: 18080,
                admin: 19070
            }
        );
    }
}

#[cfg(test)]
mod docker_tests;
