//! Finding the daemon: `DOCKER_HOST`, else the first socket that exists among the usual places (Docker Engine,
//! Docker Desktop, Colima, Podman). Then a ping and a version check, so a missing or too old daemon fails here, at
//! once and clearly, instead of halfway through `up`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Docker;
use crate::error::{Error, Result};

/// Docker Engine 20.10 speaks API 1.41; older engines lack what kind's node containers need (cgroupns).
pub const MIN_API_VERSION: (usize, usize) = (1, 41);
/// Timeout of every request's response head, in seconds; streams (logs, builds, pulls) are not bounded by it.
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// The first ping is bounded tighter so a wrong `DOCKER_HOST` fails fast.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `host:port`, plain HTTP (`tcp://` or `http://` in `DOCKER_HOST`).
    Tcp(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// Where a daemon's socket usually is, in the order we try them.
fn candidate_sockets(home: Option<&Path>, xdg_runtime_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("/var/run/docker.sock")];
    if let Some(home) = home {
        paths.push(home.join(".docker/run/docker.sock"));
        paths.push(home.join(".colima/default/docker.sock"));
    }
    if let Some(dir) = xdg_runtime_dir {
        paths.push(dir.join("podman/podman.sock"));
    }
    paths.push(PathBuf::from("/run/podman/podman.sock"));
    paths
}

/// Picks the endpoint from `DOCKER_HOST` (if set and not empty) or the first existing candidate socket.
pub fn locate(
    docker_host: Option<&str>,
    home: Option<&Path>,
    xdg_runtime_dir: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
) -> Result<Endpoint> {
    if let Some(host) = docker_host.filter(|h| !h.is_empty()) {
        if let Some(path) = host.strip_prefix("unix://") {
            let path = PathBuf::from(path);
            if !exists(&path) {
                return Err(
                    Error::prerequisite(format!("DOCKER_HOST={host} names a socket that does not exist"))
                        .hint("start Docker, or fix or unset DOCKER_HOST"),
                );
            }
            return Ok(Endpoint::Unix(path));
        }
        if let Some(addr) = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("http://")) {
            return Ok(Endpoint::Tcp(addr.trim_end_matches('/').to_string()));
        }
        return Err(Error::prerequisite(format!("DOCKER_HOST={host} is not supported"))
            .hint("use unix:///path/to/docker.sock or tcp://HOST:PORT (TLS and ssh:// are not supported)"));
    }
    let candidates = candidate_sockets(home, xdg_runtime_dir);
    match candidates.iter().find(|p| exists(p)) {
        Some(path) => Ok(Endpoint::Unix(path.clone())),
        None => Err(Error::prerequisite("no Docker daemon socket found")
            .detail(format!(
                "looked at: {}",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .hint(START_HINT)),
    }
}

const START_HINT: &str = "start Docker (Docker Desktop, or `sudo systemctl start docker`), \
    or set DOCKER_HOST to the daemon's socket";

impl Docker {
    /// Connects to the daemon the environment names, pings it and negotiates the API version (at least 1.41).
    pub async fn connect() -> Result<Docker> {
        let host = std::env::var("DOCKER_HOST").ok();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
        let endpoint = locate(host.as_deref(), home.as_deref(), xdg.as_deref(), |p| p.exists())?;
        Docker::connect_to(endpoint).await
    }

    pub async fn connect_to(endpoint: Endpoint) -> Result<Docker> {
        // bollard's clients start at its newest API version; negotiation below lowers it to the daemon's.
        let version = bollard::API_DEFAULT_VERSION;
        let client = match &endpoint {
            Endpoint::Unix(path) => {
                bollard::Docker::connect_with_unix(&path.to_string_lossy(), REQUEST_TIMEOUT_SECS, version)
            }
            Endpoint::Tcp(addr) => bollard::Docker::connect_with_http(addr, REQUEST_TIMEOUT_SECS, version),
        }
        .map_err(|e| unreachable(&endpoint, e))?;
        let ping = tokio::time::timeout(PING_TIMEOUT, client.ping()).await;
        match ping {
            Err(_) => {
                return Err(Error::prerequisite(format!(
                    "the Docker daemon at {endpoint} did not answer a ping within {}s",
                    PING_TIMEOUT.as_secs()
                ))
                .hint(START_HINT));
            }
            Ok(Err(e)) => return Err(unreachable(&endpoint, e)),
            Ok(Ok(_)) => {}
        }
        let client = client
            .negotiate_version()
            .await
            .map_err(|e| unreachable(&endpoint, e))?;
        let negotiated = client.client_version();
        if (negotiated.major_version, negotiated.minor_version) < MIN_API_VERSION {
            return Err(Error::prerequisite(format!(
                "the Docker daemon at {endpoint} speaks API {}.{}; restate-dev needs {}.{} (Docker Engine 20.10) or newer",
                negotiated.major_version, negotiated.minor_version, MIN_API_VERSION.0, MIN_API_VERSION.1
            ))
            .hint("upgrade Docker Engine or Docker Desktop"));
        }
        Ok(Docker { client, endpoint })
    }
}

/// The daemon could not be reached: say which socket and why, with the fix for the usual causes.
fn unreachable(endpoint: &Endpoint, error: bollard::errors::Error) -> Error {
    let kind = super::io_kind(&error);
    let (message, hint) = match kind {
        Some(std::io::ErrorKind::PermissionDenied) => (
            format!("permission denied on the Docker socket {endpoint}"),
            "add yourself to the `docker` group (`sudo usermod -aG docker $USER`, then log in again), \
             or use rootless Docker and set DOCKER_HOST"
                .to_string(),
        ),
        _ => (
            format!("cannot reach the Docker daemon at {endpoint}"),
            START_HINT.to_string(),
        ),
    };
    Error::prerequisite(message).source(error).hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(existing: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |p| existing.iter().any(|e| Path::new(e) == p)
    }

    #[test]
    fn docker_host_wins_and_must_exist() {
        let e = locate(Some("unix:///nonexistent"), None, None, only(&["/var/run/docker.sock"])).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.message.contains("DOCKER_HOST=unix:///nonexistent"), "{e}");
        let ok = locate(Some("unix:///tmp/d.sock"), None, None, only(&["/tmp/d.sock"])).unwrap();
        assert_eq!(ok.to_string(), "unix:///tmp/d.sock");
        let tcp = locate(Some("tcp://127.0.0.1:2375"), None, None, only(&[])).unwrap();
        assert_eq!(tcp, Endpoint::Tcp("127.0.0.1:2375".into()));
        assert!(locate(Some("ssh://me@host"), None, None, only(&[])).is_err());
    }

    #[test]
    fn first_existing_socket_is_used() {
        let home = Path::new("/home/me");
        let xdg = Path::new("/run/user/1000");
        let found = locate(
            None,
            Some(home),
            Some(xdg),
            only(&["/home/me/.colima/default/docker.sock"]),
        )
        .unwrap();
        assert_eq!(found, Endpoint::Unix("/home/me/.colima/default/docker.sock".into()));
        let found = locate(
            Some(""),
            Some(home),
            Some(xdg),
            only(&["/run/user/1000/podman/podman.sock"]),
        )
        .unwrap();
        assert_eq!(found, Endpoint::Unix("/run/user/1000/podman/podman.sock".into()));
        let e = locate(None, Some(home), Some(xdg), only(&[])).unwrap_err();
        assert!(e.details[0].contains("/home/me/.docker/run/docker.sock"), "{e}");
    }

    #[tokio::test]
    async fn missing_socket_fails_fast() {
        let started = std::time::Instant::now();
        let e = Docker::connect_to(Endpoint::Unix("/nonexistent/docker.sock".into()))
            .await
            .err()
            .expect("no daemon there");
        assert_eq!(e.exit_code(), 3, "{e}");
        assert!(e.message.contains("unix:///nonexistent/docker.sock"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
