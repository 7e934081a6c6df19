//! The Docker Engine, through bollard, with errors that say what we were doing, to what, and what to do about it.
//!
//! Everything the runtimes need from Docker goes through [`Docker`]: containers, networks, volumes, exec, images,
//! plus host-port checks. Names of objects are plain `&str`; labels are the `BTreeMap`s of [`crate::labels`].

mod connect;
mod containers;
mod exec;
mod images;
mod networks;
pub mod ownership;
pub mod ports;
mod volumes;

use std::collections::{BTreeMap, HashMap};

pub use connect::{Endpoint, MIN_API_VERSION};
pub use containers::{ContainerInfo, ContainerSpec, Limits, Mount, PortPublish};
pub use exec::ExecOutput;
pub use images::{BuildContext, ImageInfo};
pub use networks::{NetworkInfo, NetworkRef, NetworkSpec};

use crate::error::Error;

/// A connected, version-checked Docker Engine.
#[derive(Clone)]
pub struct Docker {
    client: bollard::Docker,
    endpoint: Endpoint,
}

/// What `doctor` and `status` show about the daemon.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ServerFacts {
    pub endpoint: String,
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub cgroup_version: String,
    pub root_dir: String,
    pub storage_driver: String,
    /// The storage driver's "Backing Filesystem" (`extfs`, `btrfs`, `xfs`, …), when it reports one.
    pub backing_filesystem: String,
    /// The daemon's security options, e.g. `name=seccomp,profile=default`, `name=rootless`, `name=userns`.
    pub security_options: Vec<String>,
    /// The cgroup driver (`systemd`, `cgroupfs`, or `none` when the daemon cannot limit resources).
    pub cgroup_driver: String,
    /// Whether containers can be given memory, pids and CPU-share limits (a rootless daemon needs systemd to
    /// delegate those controllers).
    pub memory_limit: bool,
    pub pids_limit: bool,
    pub cpu_shares: bool,
}

impl Docker {
    /// Where the daemon was reached, e.g. `unix:///var/run/docker.sock`.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The raw client, for the rare call this wrapper does not cover.
    pub fn client(&self) -> &bollard::Docker {
        &self.client
    }

    pub async fn facts(&self) -> crate::error::Result<ServerFacts> {
        let version = self
            .client
            .version()
            .await
            .map_err(|e| self.fail(e, "read the version of", "the Docker daemon"))?;
        let info = self
            .client
            .info()
            .await
            .map_err(|e| self.fail(e, "read system information of", "the Docker daemon"))?;
        Ok(ServerFacts {
            endpoint: self.endpoint.to_string(),
            version: version.version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
            os: info.operating_system.unwrap_or_default(),
            cgroup_version: info.cgroup_version.map(|v| v.to_string()).unwrap_or_default(),
            root_dir: info.docker_root_dir.unwrap_or_default(),
            storage_driver: info.driver.unwrap_or_default(),
            backing_filesystem: info
                .driver_status
                .unwrap_or_default()
                .into_iter()
                .find(|pair| pair.first().map(String::as_str) == Some("Backing Filesystem"))
                .and_then(|pair| pair.get(1).cloned())
                .unwrap_or_default(),
            security_options: info.security_options.unwrap_or_default(),
            cgroup_driver: info.cgroup_driver.map(|d| d.to_string()).unwrap_or_default(),
            memory_limit: info.memory_limit.unwrap_or_default(),
            pids_limit: info.pids_limit.unwrap_or_default(),
            cpu_shares: info.cpu_shares.unwrap_or_default(),
        })
    }

    /// Turns a bollard error into ours: "cannot {doing} {object}", with the daemon's own words as the cause.
    pub(crate) fn fail(&self, error: bollard::errors::Error, doing: &str, object: &str) -> Error {
        use bollard::errors::Error as B;
        let message = format!("cannot {doing} {object}");
        match &error {
            B::DockerResponseServerError { status_code, .. } => {
                let hint = match status_code {
                    404 => "it does not exist (any more); `restate-dev status` shows what exists",
                    409 => "it conflicts with something that exists; `restate-dev down` removes what restate-dev made",
                    _ => "the cause above is Docker's own message; `docker info` shows the daemon's state",
                };
                Error::failed(message).source(error).hint(hint)
            }
            B::RequestTimeoutError => Error::timeout(message).source(error).hint(format!(
                "the Docker daemon at {} did not answer in time; is it overloaded?",
                self.endpoint
            )),
            _ if is_unreachable(&error) => Error::prerequisite(format!(
                "{message}: the Docker daemon at {} stopped answering",
                self.endpoint
            ))
            .source(error)
            .hint("check that Docker is still running (`docker info`)"),
            _ => Error::failed(message).source(error),
        }
    }
}

/// True when Docker refused because of what exists (HTTP 409): a network with containers attached, a volume or
/// an image still in use.
pub fn is_conflict(error: &Error) -> bool {
    let status = error
        .source
        .as_ref()
        .and_then(|s| s.downcast_ref::<bollard::errors::Error>());
    matches!(
        status,
        Some(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. })
    )
}

/// True when bollard's error says the HTTP status was 404.
fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }
    )
}

/// True when the daemon could not be reached at all (refused, missing, reset).
fn is_unreachable(error: &bollard::errors::Error) -> bool {
    io_kind(error).is_some_and(|kind| {
        use std::io::ErrorKind::*;
        matches!(
            kind,
            ConnectionRefused | NotFound | ConnectionReset | ConnectionAborted | BrokenPipe | PermissionDenied
        )
    })
}

/// The kind of the first I/O error in the cause chain, if any.
fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        // bollard's transparent I/O variant does not list the I/O error as its source.
        if let Some(bollard::errors::Error::IOError { err }) = e.downcast_ref::<bollard::errors::Error>() {
            return Some(err.kind());
        }
        current = e.source();
    }
    None
}

/// A `label=key=value` filter for every pair, so a listing matches all of them.
fn label_filters(labels: &BTreeMap<String, String>) -> HashMap<String, Vec<String>> {
    let values = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    HashMap::from([("label".to_string(), values)])
}

fn to_hash(labels: &BTreeMap<String, String>) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn to_btree(labels: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    labels.unwrap_or_default().into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filters_match_every_pair() {
        let filters = label_filters(&crate::labels::for_loop("a"));
        assert_eq!(
            filters["label"],
            vec!["app.kubernetes.io/managed-by=restate-dev", "dev.restate.loop=a"]
        );
    }

    #[test]
    fn refused_connections_are_unreachable() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = bollard::errors::Error::IOError { err: io };
        assert!(is_unreachable(&error));
        let error = bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message: "no such container".into(),
        };
        assert!(!is_unreachable(&error) && is_not_found(&error));
    }
}
