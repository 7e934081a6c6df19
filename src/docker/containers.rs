//! Containers: create from a small spec, start, stop, remove (with their anonymous volumes), inspect, list by
//! label, read logs, and wait for a log line with a bound.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigCgroupnsModeEnum, MountType, MountVolumeOptions,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions, StopContainerOptions,
};
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use regex::Regex;

use super::{Docker, is_not_found, label_filters, to_btree, to_hash};
use crate::error::{Error, Result};

/// A port published on the host: `host_ip:host_port -> container_port/tcp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPublish {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

impl PortPublish {
    /// Published on 127.0.0.1 only: our loops never listen on other interfaces.
    pub fn loopback(host_port: u16, container_port: u16) -> Self {
        PortPublish {
            host_ip: "127.0.0.1".into(),
            host_port,
            container_port,
        }
    }
}

/// A filesystem the container gets besides its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A named volume (created on first use, with the container's labels), or an anonymous one if `name` is None.
    Volume {
        name: Option<String>,
        target: String,
    },
    /// A host path, e.g. `/lib/modules` read-only for kind nodes.
    Bind {
        source: String,
        target: String,
        read_only: bool,
    },
    Tmpfs {
        target: String,
    },
}

/// What to create. Fields left empty take Docker's (and the image's) defaults.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub hostname: Option<String>,
    /// Replaces the image's entrypoint when set.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's command when not empty.
    pub cmd: Vec<String>,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub network: Option<String>,
    /// Extra DNS names on `network`.
    pub aliases: Vec<String>,
    pub ports: Vec<PortPublish>,
    pub mounts: Vec<Mount>,
    pub privileged: bool,
    pub security_opts: Vec<String>,
    /// A private cgroup namespace (kind nodes need one).
    pub cgroupns_private: bool,
    /// Restart on failure at most this many times.
    pub restart_on_failure: Option<i64>,
    pub tty: bool,
    /// Run an init process as PID 1.
    pub init: Option<bool>,
    pub limits: Limits,
}

/// A container's resource limits; None is Docker's "unlimited".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<i64>,
    /// Billionths of a CPU.
    pub nano_cpus: Option<i64>,
}

impl ContainerSpec {
    pub fn new(name: impl Into<String>, image: impl Into<String>, labels: BTreeMap<String, String>) -> Self {
        ContainerSpec {
            name: name.into(),
            image: image.into(),
            labels,
            ..Default::default()
        }
    }

    fn to_body(&self) -> ContainerCreateBody {
        let exposed: Vec<String> = self.ports.iter().map(|p| format!("{}/tcp", p.container_port)).collect();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for p in &self.ports {
            bindings
                .entry(format!("{}/tcp", p.container_port))
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(p.host_ip.clone()),
                    host_port: Some(p.host_port.to_string()),
                });
        }
        let mounts = self
            .mounts
            .iter()
            .map(|m| match m {
                Mount::Volume { name, target } => bollard::models::Mount {
                    typ: Some(MountType::VOLUME),
                    source: name.clone(),
                    target: Some(target.clone()),
                    volume_options: Some(MountVolumeOptions {
                        labels: Some(to_hash(&self.labels)),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Mount::Bind {
                    source,
                    target,
                    read_only,
                } => bollard::models::Mount {
                    typ: Some(MountType::BIND),
                    source: Some(source.clone()),
                    target: Some(target.clone()),
                    read_only: Some(*read_only),
                    ..Default::default()
                },
                Mount::Tmpfs { target } => bollard::models::Mount {
                    typ: Some(MountType::TMPFS),
                    target: Some(target.clone()),
                    ..Default::default()
                },
            })
            .collect::<Vec<_>>();
        let host_config = HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            mounts: (!mounts.is_empty()).then_some(mounts),
            privileged: self.privileged.then_some(true),
            security_opt: (!self.security_opts.is_empty()).then(|| self.security_opts.clone()),
            cgroupns_mode: self.cgroupns_private.then_some(HostConfigCgroupnsModeEnum::PRIVATE),
            restart_policy: self.restart_on_failure.map(|n| RestartPolicy {
                name: Some(RestartPolicyNameEnum::ON_FAILURE),
                maximum_retry_count: Some(n),
            }),
            network_mode: self.network.clone(),
            init: self.init,
            memory: self.limits.memory,
            nano_cpus: self.limits.nano_cpus,
            ..Default::default()
        };
        let networking_config = self.network.as_ref().map(|network| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.clone(),
                EndpointSettings {
                    aliases: (!self.aliases.is_empty()).then(|| self.aliases.clone()),
                    ..Default::default()
                },
            )])),
        });
        ContainerCreateBody {
            image: Some(self.image.clone()),
            hostname: self.hostname.clone(),
            entrypoint: self.entrypoint.clone(),
            cmd: (!self.cmd.is_empty()).then(|| self.cmd.clone()),
            env: (!self.env.is_empty()).then(|| self.env.clone()),
            user: self.user.clone(),
            labels: Some(to_hash(&self.labels)),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            tty: self.tty.then_some(true),
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        }
    }
}

/// A container as inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    /// Without Docker's leading slash.
    pub name: String,
    /// The image reference it was created with, as written.
    pub image: String,
    /// The ID of the image it runs: a rebuild under the same reference gets a new one.
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    /// Docker's state word: created, running, paused, exited, ...
    pub status: String,
    /// True while paused too (Docker's own reading); see `paused`.
    pub running: bool,
    pub paused: bool,
    /// Set once the container has exited.
    pub exit_code: Option<i64>,
    /// Docker's error for a container that could not start.
    pub error: Option<String>,
    /// Published ports as `(container_port, host_port)`, read from the container's configuration (its port
    /// bindings), so they are known while it is stopped too; where a binding left the host port to Docker, the
    /// port it got while running.
    pub ports: Vec<(u16, u16)>,
    /// The container's address on each network it is attached to.
    pub addresses: BTreeMap<String, String>,
    /// When it last started; `None` if it never has.
    pub started_at: Option<Timestamp>,
    /// `KEY=value` pairs, the image's included.
    pub env: Vec<String>,
    pub limits: Limits,
}

impl Docker {
    /// Creates the container (not started); its id.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let created = self
            .client
            .create_container(Some(options), spec.to_body())
            .await
            .map_err(|e| {
                let error = self.fail(e, "create container", &spec.name);
                if is_missing_image(&error) {
                    error.hint(format!(
                        "the image {} is not present locally; build or `docker load` it first",
                        spec.image
                    ))
                } else {
                    error
                }
            })?;
        Ok(created.id)
    }

    pub async fn start_container(&self, name: &str) -> Result<()> {
        self.client
            .start_container(name, None)
            .await
            .map_err(|e| self.fail(e, "start container", name))
    }

    /// Creates and starts; the id.
    pub async fn run_container(&self, spec: &ContainerSpec) -> Result<String> {
        let id = self.create_container(spec).await?;
        self.start_container(&spec.name).await?;
        Ok(id)
    }

    /// Stops with a grace period; a container that is missing or already stopped is fine.
    pub async fn stop_container(&self, name: &str, grace: Duration) -> Result<()> {
        let options = StopContainerOptions {
            t: Some(grace.as_secs().try_into().unwrap_or(i32::MAX)),
            ..Default::default()
        };
        match self.client.stop_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(e) => Err(self.fail(e, "stop container", name)),
        }
    }

    /// Force-removes the container and its anonymous volumes; false when it did not exist.
    pub async fn remove_container(&self, name: &str) -> Result<bool> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.client.remove_container(name, Some(options)).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.fail(e, "remove container", name)),
        }
    }

    /// None when no such container exists.
    pub async fn inspect_container(&self, name: &str) -> Result<Option<ContainerInfo>> {
        let inspected = match self.client.inspect_container(name, None).await {
            Ok(i) => i,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.fail(e, "inspect container", name)),
        };
        let state = inspected.state.unwrap_or_default();
        let status = state.status.map(|s| s.to_string()).unwrap_or_default();
        let running = state.running.unwrap_or(false);
        let exited = matches!(status.as_str(), "exited" | "dead");
        let settings = inspected.network_settings.unwrap_or_default();
        let host_config = inspected.host_config.unwrap_or_default();
        // Docker reports "no limit" as 0.
        let limits = Limits {
            memory: host_config.memory.filter(|m| *m > 0),
            nano_cpus: host_config.nano_cpus.filter(|n| *n > 0),
        };
        let configured = host_config.port_bindings.unwrap_or_default();
        let live = settings.ports.unwrap_or_default();
        let mut ports: Vec<(u16, u16)> = configured
            .keys()
            .chain(live.keys().filter(|key| !configured.contains_key(*key)))
            .filter_map(|key| {
                let container_port = key.split('/').next()?.parse().ok()?;
                let first_port = |bindings: Option<&Option<Vec<PortBinding>>>| {
                    let port: u16 = bindings?.as_ref()?.first()?.host_port.as_ref()?.parse().ok()?;
                    (port != 0).then_some(port)
                };
                let host_port = first_port(configured.get(key)).or_else(|| first_port(live.get(key)))?;
                Some((container_port, host_port))
            })
            .collect();
        ports.sort();
        let addresses = settings
            .networks
            .unwrap_or_default()
            .into_iter()
            .map(|(network, endpoint)| (network, endpoint.ip_address.unwrap_or_default()))
            .collect();
        Ok(Some(ContainerInfo {
            id: inspected.id.unwrap_or_default(),
            name: inspected.name.unwrap_or_default().trim_start_matches('/').to_string(),
            image: inspected
                .config
                .as_ref()
                .and_then(|c| c.image.clone())
                .unwrap_or_default(),
            image_id: inspected.image.unwrap_or_default(),
            env: inspected
                .config
                .as_ref()
                .and_then(|c| c.env.clone())
                .unwrap_or_default(),
            labels: to_btree(inspected.config.and_then(|c| c.labels)),
            status,
            running,
            paused: state.paused.unwrap_or(false),
            exit_code: if exited { state.exit_code } else { None },
            error: state.error.filter(|e| !e.is_empty()),
            ports,
            addresses,
            started_at: state.started_at.as_deref().and_then(started_at),
            limits,
        }))
    }

    /// Names of all containers (running or not) carrying every one of `labels`.
    pub async fn list_containers(&self, labels: &BTreeMap<String, String>) -> Result<Vec<String>> {
        self.list_containers_where(label_filters(labels), "list containers labelled", &describe(labels))
            .await
    }

    /// Every container, in any state, attached to `network`: a network's own inspection lists only running ones.
    pub async fn containers_on_network(&self, network: &str) -> Result<Vec<String>> {
        let filters = HashMap::from([("network".to_string(), vec![network.to_string()])]);
        self.list_containers_where(filters, "list containers on network", network)
            .await
    }

    async fn list_containers_where(
        &self,
        filters: HashMap<String, Vec<String>>,
        what: &str,
        target: &str,
    ) -> Result<Vec<String>> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = self
            .client
            .list_containers(Some(options))
            .await
            .map_err(|e| self.fail(e, what, target))?;
        let mut names: Vec<String> = list
            .into_iter()
            .filter_map(|c| c.names?.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_string())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The last `lines` lines of stdout and stderr, interleaved as Docker stored them.
    pub async fn logs_tail(&self, name: &str, lines: usize) -> Result<String> {
        self.logs(name, lines, None).await
    }

    /// Like [`Docker::logs_tail`], but only what was logged since `since` (whole seconds, as Docker counts).
    pub async fn logs_since(&self, name: &str, lines: usize, since: SystemTime) -> Result<String> {
        self.logs(name, lines, Some(since)).await
    }

    async fn logs(&self, name: &str, lines: usize, since: Option<SystemTime>) -> Result<String> {
        let since = since
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX));
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            since,
            ..Default::default()
        };
        let mut stream = self.client.logs(name, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.fail(e, "read the logs of container", name))?;
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok(text)
    }

    /// Follows the logs from the start until a line matches `pattern`; that line. Fails with the log tail when
    /// the container exits first, and with Kind::Timeout after `bound`.
    pub async fn wait_for_log(&self, name: &str, pattern: &Regex, bound: Duration) -> Result<String> {
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            tail: "all".into(),
            ..Default::default()
        };
        let mut stream = self.client.logs(name, Some(options));
        let mut pending = String::new();
        let search = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.fail(e, "follow the logs of container", name))?;
                pending.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                while let Some(end) = pending.find('\n') {
                    let line: String = pending.drain(..=end).collect();
                    let line = line.trim_end();
                    if pattern.is_match(line) {
                        return Ok(Some(line.to_string()));
                    }
                }
            }
            // The stream ends when the container stops; a last line without a newline still counts.
            Ok(pattern
                .is_match(pending.trim_end())
                .then(|| pending.trim_end().to_string()))
        };
        let outcome = tokio::time::timeout(bound, search).await;
        let tail = self.logs_tail(name, 20).await.unwrap_or_default();
        let with_tail = |mut error: Error| {
            for line in tail.lines() {
                error = error.detail(format!("| {line}"));
            }
            error
        };
        match outcome {
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => {
                let state = self.inspect_container(name).await?;
                let how = match state.and_then(|s| s.exit_code) {
                    Some(code) => format!("exited with code {code}"),
                    None => "stopped logging".to_string(),
                };
                Err(with_tail(Error::failed(format!(
                    "container {name} {how} before logging a line matching `{pattern}`"
                )))
                .hint(format!("`docker logs {name}` shows the whole log")))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(with_tail(Error::timeout(format!(
                "container {name} logged no line matching `{pattern}` within {}",
                crate::ui::format_duration(bound)
            )))
            .hint(format!("`docker logs {name}` shows the whole log"))),
        }
    }
}

/// Docker's `State.StartedAt`; a container that never started carries the zero time.
fn started_at(text: &str) -> Option<Timestamp> {
    let at: Timestamp = text.parse().ok()?;
    (at.as_second() > 0).then_some(at)
}

fn is_missing_image(error: &Error) -> bool {
    error
        .source
        .as_ref()
        .and_then(|s| s.downcast_ref::<bollard::errors::Error>())
        .is_some_and(is_not_found)
}

pub(super) fn describe(labels: &BTreeMap<String, String>) -> String {
    crate::labels::to_selector(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_are_read_and_the_zero_time_is_none() {
        let at = started_at("2026-12-02T00:17:37.173547691Z").expect("a time");
        assert_eq!(at.as_second(), 1_796_170_657);
        assert_eq!(started_at("0001-01-01T00:00:00Z"), None);
        assert_eq!(started_at(""), None);
    }

    #[test]
    fn spec_publishes_on_loopback_and_labels_volumes() {
        let mut spec = ContainerSpec::new("n", "img:1", crate::labels::for_loop("l"));
        spec.ports.push(PortPublish::loopback(18080, 8080));
        spec.mounts.push(Mount::Volume {
            name: Some("data".into()),
            target: "/restate-data".into(),
        });
        spec.network = Some("net".into());
        spec.aliases.push("restate".into());
        let body = spec.to_body();
        assert_eq!(body.exposed_ports, Some(vec!["8080/tcp".to_string()]));
        let host = body.host_config.unwrap();
        let binding = &host.port_bindings.unwrap()["8080/tcp"].clone().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("18080"));
        let mount = &host.mounts.unwrap()[0];
        let labels = mount.volume_options.as_ref().unwrap().labels.as_ref().unwrap();
        assert_eq!(labels["dev.restate.loop"], "l");
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(endpoints["net"].aliases, Some(vec!["restate".to_string()]));
        assert!(host.privileged.is_none() && host.restart_policy.is_none());
    }
}
