//! `restate-dev doctor`: checks the machine before `up` does, one row per check, with what to do for each
//! failing row. Docker (and any host port asked for, and minikube for `--runtime minikube`) is required; the
//! rest are warnings. Only what the chosen runtime needs is checked: `--runtime docker` needs no kind.

use std::path::Path;

use serde::Serialize;

use crate::cli::{CheckArgs, DoctorArgs, LoopArgs, ObjectArgs};
use crate::cluster::kind::{self, KindCluster, host::Host};
use crate::commands::Ctx;
use crate::config::{LoopSettings, Runtime};
use crate::docker::{Docker, ServerFacts, ports};
use crate::error::{Error, Result};

/// kind's known issues ask for these (facts §4); below them a node's kubelet runs out of inotify watches.
const MIN_INOTIFY_WATCHES: u64 = 524_288;
const MIN_INOTIFY_INSTANCES: u64 = 512;
/// A kind node image, the Restate image and the sample take about 2 GiB; leave room for their data.
const MIN_FREE_DISK: u64 = 5 * 1024 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
struct Row {
    check: String,
    status: Status,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

impl Row {
    fn new(check: &str, status: Status, detail: impl Into<String>, fix: Option<String>) -> Self {
        Row {
            check: check.to_string(),
            status,
            detail: detail.into(),
            fix,
        }
    }
}

pub async fn run(ctx: &Ctx, args: &DoctorArgs) -> Result<()> {
    let objects = ctx.layers.objects(&ctx.global, &ObjectArgs::default())?;
    let flags = LoopArgs {
        place: args.place.clone(),
        checks: CheckArgs::default(),
    };
    let setup = ctx.layers.setup(&flags, &objects)?;
    let mut rows = Vec::new();
    let node_image = setup.node_image.as_deref().unwrap_or(kind::DEFAULT_NODE_IMAGE);
    let (docker, docker_rows) = docker_rows(node_image).await;
    rows.extend(docker_rows);
    // Only kind (and minikube's docker driver) runs a node whose kubelet needs the inotify limits.
    if matches!(setup.runtime, Runtime::Kind | Runtime::Minikube) {
        rows.extend(inotify_rows(Path::new("/proc/sys/fs/inotify")));
    }
    if let (Runtime::Kind, Some(docker)) = (&setup.runtime, &docker) {
        rows.push(node_image_row(docker, &objects.name, &setup).await);
    }
    rows.push(port_row("ingress port", setup.ingress_port, "--ingress-port"));
    rows.push(port_row("admin port", setup.admin_port, "--admin-port"));
    if let Some(binary) = &setup.restate_binary {
        rows.push(match crate::images::check_restate_binary(binary) {
            Ok(()) => Row::new("restate binary", Status::Ok, binary.display().to_string(), None),
            Err(e) => Row::new("restate binary", Status::Fail, e.message, e.hint),
        });
    }
    for (tool, missing, why) in tools(&setup.runtime) {
        // `up` decides with the same function, so both say the same of an npm wrapper.
        if tool == "restate-server" {
            rows.push(match crate::images::restate_server_on_path() {
                Ok(Some(path)) => Row::new(tool, Status::Ok, path.display().to_string(), None),
                Ok(None) => Row::new(tool, missing, "not found on PATH", Some(why.to_string())),
                Err(e) => Row::new(tool, missing, e.message, e.hint),
            });
            continue;
        }
        rows.push(match which::which(tool) {
            Ok(path) => Row::new(tool, Status::Ok, path.display().to_string(), None),
            Err(_) => Row::new(tool, missing, "not found on PATH", Some(why.to_string())),
        });
    }

    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.status == Status::Fail)
        .map(|r| r.check.as_str())
        .collect();
    if ctx.ui.is_json() {
        ctx.ui
            .print_json(&serde_json::json!({ "ok": failed.is_empty(), "checks": rows }));
    } else {
        ctx.ui.print(table(&rows));
    }
    if failed.is_empty() {
        return Ok(());
    }
    let hint = if ctx.ui.is_json() {
        "follow the `fix` of each failing check, then run `restate-dev doctor` again"
    } else {
        "follow the `fix:` lines above, then run `restate-dev doctor` again"
    };
    Err(
        Error::prerequisite(format!("doctor found a required check failing: {}", failed.join(", ")))
            .hint(hint)
            .in_report(),
    )
}

/// The tools worth having for `runtime`: the status a missing one gets, and why it matters.
fn tools(runtime: &Runtime) -> Vec<(&'static str, Status, &'static str)> {
    const KUBECTL: (&str, Status, &str) = (
        "kubectl",
        Status::Warn,
        "not needed; handy for looking inside the cluster",
    );
    let mut tools = match runtime {
        Runtime::Docker => vec![],
        Runtime::Kind => vec![
            (
                "kind",
                Status::Warn,
                "not needed (restate-dev makes kind clusters itself); handy for inspecting them",
            ),
            KUBECTL,
        ],
        Runtime::Minikube => vec![
            (
                "minikube",
                Status::Fail,
                "--runtime minikube drives it: install it (https://minikube.sigs.k8s.io/docs/start/)",
            ),
            KUBECTL,
        ],
        Runtime::Context(_) => vec![KUBECTL],
    };
    tools.push((
        "restate-server",
        Status::Warn,
        "lets `up` assemble the Restate image when it cannot be pulled",
    ));
    tools
}

/// Whether the kind node image is in the local Docker: without it, `up` must pull it, which fails offline.
async fn node_image_row(docker: &Docker, name: &str, setup: &LoopSettings) -> Row {
    let kind = match KindCluster::new(docker.clone(), name, setup, false) {
        Ok(kind) => kind,
        Err(e) => return Row::new("kind node image", Status::Warn, e.message, e.hint),
    };
    match kind.local_image().await {
        Ok(Some(found)) => Row::new("kind node image", Status::Ok, format!("{found} is present"), None),
        Ok(None) => Row::new(
            "kind node image",
            Status::Warn,
            format!("{} is not present locally", kind.node_image),
            Some(
                "`restate-dev up` pulls it; offline, `docker load -i kindest-node.tar` it (made where a registry \
                 is reachable with `docker save`), or choose a local one with --node-image"
                    .into(),
            ),
        ),
        Err(e) => Row::new("kind node image", Status::Warn, e.message, e.hint),
    }
}

/// Reachability and versions of the daemon, its mode and cgroup version (what they mean for `node_image`), and
/// the free disk of its root dir; the daemon, when it answers, for the checks that need it.
async fn docker_rows(node_image: &str) -> (Option<Docker>, Vec<Row>) {
    let docker = match Docker::connect().await {
        Ok(docker) => docker,
        Err(e) => {
            let detail = match &e.source {
                Some(cause) => format!("{} ({cause:#})", e.message),
                None => e.message,
            };
            return (
                None,
                vec![
                    Row::new("docker", Status::Fail, detail, e.hint),
                    Row::new("docker disk", Status::Warn, "not checked (no Docker)", None),
                ],
            );
        }
    };
    let facts = match docker.facts().await {
        Ok(facts) => facts,
        Err(e) => return (None, vec![Row::new("docker", Status::Fail, e.message, e.hint)]),
    };
    let docker_row = Row::new(
        "docker",
        Status::Ok,
        format!(
            "{} (Engine {}, API {})",
            facts.endpoint, facts.version, facts.api_version
        ),
        None,
    );
    let disk_row = match free_bytes(Path::new(&facts.root_dir)) {
        Some(free) if free >= MIN_FREE_DISK => Row::new(
            "docker disk",
            Status::Ok,
            format!("{} free in {}", gib(free), facts.root_dir),
            None,
        ),
        Some(free) => Row::new(
            "docker disk",
            Status::Warn,
            format!("{} free in {}", gib(free), facts.root_dir),
            Some(format!(
                "free at least {} (`docker system df` shows what Docker uses)",
                gib(MIN_FREE_DISK)
            )),
        ),
        None => Row::new(
            "docker disk",
            Status::Warn,
            format!("{} is not on this machine (Docker runs in a VM?)", facts.root_dir),
            Some("check the VM's disk in Docker Desktop / Colima settings".into()),
        ),
    };
    let [mode_row, cgroup_row] = host_rows(&facts, node_image);
    (Some(docker), vec![docker_row, mode_row, cgroup_row, disk_row])
}

/// The daemon's mode and the host's cgroup version, and what they mean for a kind node of `node_image`.
fn host_rows(facts: &ServerFacts, node_image: &str) -> [Row; 2] {
    let host = Host::from_facts(facts);
    let mut mode = vec![host.mode().to_string()];
    match host.mode() {
        "rootless" => {
            mode.push("nodes get /dev/fuse, KubeletInUserNamespace, and kube-proxy leaves conntrack alone".into())
        }
        "userns-remap" => mode.push("nodes run with --userns=host".into()),
        _ => {}
    }
    if host.dev_mapper {
        mode.push(format!("{} storage, so nodes get /dev/mapper", facts.storage_driver));
    }
    let mode_row = match host.require_supported() {
        Ok(()) => Row::new("docker mode", Status::Ok, mode.join("; "), None),
        Err(e) => Row::new("docker mode", Status::Fail, e.message, e.hint),
    };
    let version = kind::node_image_version(node_image);
    let shown = version.map_or("an unknown version".to_string(), |v| {
        format!("Kubernetes {}.{}", v.major, v.minor)
    });
    let cgroup_row = if !host.cgroup_v1 {
        Row::new("cgroup", Status::Ok, format!("v{}", facts.cgroup_version), None)
    } else if version.is_some_and(|v| (v.major, v.minor) < (1, 35)) {
        Row::new(
            "cgroup",
            Status::Ok,
            format!("v1; the node image ({shown}) still supports it"),
            None,
        )
    } else {
        // kubelet 1.35+ refuses cgroup v1 by default, and kind's images for it no longer support v1
        Row::new(
            "cgroup",
            Status::Warn,
            format!("v1; the node image ({shown}) refuses it by default, so `up` sets failCgroupV1: false"),
            Some(
                "cgroup v1 is deprecated in Kubernetes; a cgroup v2 host, or a node image below 1.35 \
                 (--node-image kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d), \
                 avoids relying on it"
                    .into(),
            ),
        )
    };
    [mode_row, cgroup_row]
}

fn free_bytes(path: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

/// The two inotify limits kind nodes need, read from `dir` (`/proc/sys/fs/inotify` on Linux).
fn inotify_rows(dir: &Path) -> Vec<Row> {
    [
        ("max_user_watches", MIN_INOTIFY_WATCHES),
        ("max_user_instances", MIN_INOTIFY_INSTANCES),
    ]
    .into_iter()
    .map(|(name, minimum)| {
        let check = format!("inotify {name}");
        let key = format!("fs.inotify.{name}");
        match std::fs::read_to_string(dir.join(name)).ok().and_then(|t| t.trim().parse::<u64>().ok()) {
            None => Row::new(
                &check,
                Status::Warn,
                "unknown (not Linux; Docker's VM has its own limits)",
                None,
            ),
            Some(value) if value >= minimum => Row::new(&check, Status::Ok, value.to_string(), None),
            Some(value) => Row::new(
                &check,
                Status::Warn,
                format!("{value}, below {minimum}: kind nodes may fail with \"too many open files\""),
                Some(format!(
                    "`sudo sysctl -w {key}={minimum}`, and keep it with a line `{key} = {minimum}` in /etc/sysctl.d/99-kind.conf"
                )),
            ),
        }
    })
    .collect()
}

fn port_row(check: &str, port: Option<u16>, flag: &str) -> Row {
    match port {
        None => Row::new(check, Status::Ok, "a free port will be picked", None),
        Some(port) => match ports::ensure_free(port, check, flag) {
            Ok(()) => Row::new(check, Status::Ok, format!("127.0.0.1:{port} is free"), None),
            Err(e) => Row::new(check, Status::Fail, format!("127.0.0.1:{port} is in use"), e.hint),
        },
    }
}

/// The rows as an aligned table, then a `fix:` line per failing row and a `note:` line per warning.
fn table(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.check.len()).max().unwrap_or(0);
    let mut out = format!("{:<width$}  STATUS  DETAIL\n", "CHECK");
    for row in rows {
        let status = match row.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        out.push_str(&format!("{:<width$}  {status:<6}  {}\n", row.check, row.detail));
    }
    for row in rows.iter().filter(|r| r.status != Status::Ok) {
        if let Some(fix) = &row.fix {
            let label = if row.status == Status::Fail { "fix" } else { "note" };
            out.push_str(&format!("{label}: {}: {fix}\n", row.check));
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_inotify_limits_warn_with_the_sysctl() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("max_user_watches"), "8192\n").unwrap();
        std::fs::write(dir.path().join("max_user_instances"), "1024\n").unwrap();
        let rows = inotify_rows(dir.path());
        assert_eq!(rows[0].status, Status::Warn);
        assert!(
            rows[0]
                .fix
                .as_ref()
                .unwrap()
                .contains("fs.inotify.max_user_watches=524288")
        );
        assert_eq!(rows[1].status, Status::Ok);
        let missing = inotify_rows(Path::new("/nonexistent"));
        assert!(missing.iter().all(|r| r.status == Status::Warn));
    }

    #[test]
    fn the_host_rows_name_the_mode_and_what_cgroup_v1_means_for_the_image() {
        use crate::cluster::kind::host::tests::facts;
        let v137 = kind::DEFAULT_NODE_IMAGE;
        let v134 = "kindest/node:v1.34.11";
        let [mode, cgroup] = host_rows(&facts("rootful"), v137);
        assert_eq!((mode.status, mode.detail.as_str()), (Status::Ok, "rootful"));
        assert_eq!((cgroup.status, cgroup.detail.as_str()), (Status::Ok, "v2"));

        let [_, cgroup] = host_rows(&facts("cgroup-v1"), v137);
        assert_eq!(cgroup.status, Status::Warn);
        assert!(cgroup.detail.contains("Kubernetes 1.37") && cgroup.detail.contains("failCgroupV1: false"));
        let [_, cgroup] = host_rows(&facts("cgroup-v1"), v134);
        assert_eq!(cgroup.status, Status::Ok, "{}", cgroup.detail);
        let [_, cgroup] = host_rows(&facts("cgroup-v1"), "my/node:dev");
        assert!(cgroup.detail.contains("unknown version"), "{}", cgroup.detail);

        let [mode, _] = host_rows(&facts("rootless"), v137);
        assert!(
            mode.detail.starts_with("rootless; nodes get /dev/fuse"),
            "{}",
            mode.detail
        );
        let [mode, _] = host_rows(&facts("userns-remap"), v137);
        assert_eq!(mode.detail, "userns-remap; nodes run with --userns=host");
        let [mode, _] = host_rows(&facts("btrfs"), v137);
        assert_eq!(mode.detail, "rootful; btrfs storage, so nodes get /dev/mapper");
        let [mode, _] = host_rows(&facts("rootless-undelegated"), v137);
        assert_eq!(mode.status, Status::Fail);
        assert!(mode.fix.unwrap().contains("rootless"));
    }

    #[test]
    fn taken_ports_fail_and_free_ones_pass() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let row = port_row("ingress port", Some(port), "--ingress-port");
        assert_eq!(row.status, Status::Fail);
        assert!(row.fix.unwrap().contains("--ingress-port"));
        assert_eq!(port_row("admin port", None, "--admin-port").status, Status::Ok);
    }

    #[test]
    fn the_table_lists_fixes_after_the_rows() {
        let rows = vec![
            Row::new("docker", Status::Fail, "down", Some("start it".into())),
            Row::new("kind", Status::Ok, "/usr/bin/kind", None),
            Row::new("kubectl", Status::Warn, "not found", Some("optional".into())),
        ];
        assert_eq!(
            table(&rows),
            "CHECK    STATUS  DETAIL\ndocker   FAIL    down\nkind     ok      /usr/bin/kind\n\
             kubectl  warn    not found\nfix: docker: start it\nnote: kubectl: optional"
        );
    }
}
