//! `restate-dev doctor` as a user runs it: against the real daemon, against a DOCKER_HOST that names no socket,
//! and with a host port that is taken.

use assert_cmd::Command;

fn doctor() -> Command {
    let mut command = Command::cargo_bin("restate-dev").unwrap();
    command.arg("doctor").env_remove("RESTATE_DEV_CONFIG");
    command
}

#[test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
fn an_unreachable_daemon_fails_fast_naming_the_socket() {
    let output = doctor()
        .env("DOCKER_HOST", "unix:///nonexistent")
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let row = stdout.lines().find(|l| l.starts_with("docker ")).unwrap();
    assert!(
        row.contains("FAIL") && row.contains("DOCKER_HOST=unix:///nonexistent"),
        "{stdout}"
    );
    assert!(stdout.contains("fix: docker: start Docker"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("required check failing: docker"), "{stderr}");
}

#[test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
fn a_reachable_daemon_passes_as_json() {
    let output = doctor().args(["--output", "json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true);
    let checks = report["checks"].as_array().unwrap();
    let docker = checks.iter().find(|c| c["check"] == "docker").unwrap();
    assert_eq!(docker["status"], "ok");
    assert!(docker["detail"].as_str().unwrap().contains("API 1."), "{docker}");
    for name in [
        "docker disk",
        "inotify max_user_watches",
        "kind",
        "kubectl",
        "restate-server",
    ] {
        assert!(checks.iter().any(|c| c["check"] == name), "no {name} row in {stdout}");
    }
}

#[test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
fn a_taken_port_is_named_with_the_flag_to_change_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let output = doctor().args(["--admin-port", &port]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let row = stdout.lines().find(|l| l.starts_with("admin port")).unwrap();
    assert!(
        row.contains("FAIL") && row.contains(&format!("127.0.0.1:{port} is in use")),
        "{stdout}"
    );
    assert!(stdout.contains("--admin-port"), "{stdout}");

    // As JSON, the failing report is still the one document on stdout.
    let output = doctor()
        .args(["--admin-port", &port, "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(report["ok"], false);
}

#[test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
fn the_docker_runtime_is_checked_for_what_it_needs_and_no_more() {
    let output = doctor()
        .args(["--runtime", "docker", "--output", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    for kind_only in ["kind", "kind node image", "kubectl", "minikube"] {
        assert!(
            !checks.contains(&kind_only),
            "{kind_only} is checked for --runtime docker: {checks:?}"
        );
    }
    assert!(!checks.iter().any(|c| c.starts_with("inotify")), "{checks:?}");
    for needed in ["docker", "docker disk", "ingress port", "admin port", "restate-server"] {
        assert!(checks.contains(&needed), "no {needed} row: {checks:?}");
    }
}

#[test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
fn the_kind_node_image_is_checked_for_the_kind_runtime() {
    let image = format!("restate-dev.local/loop-absent-node-{}:v1", std::process::id());
    let output = doctor()
        .args(["--node-image", &image, "--output", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let row = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "kind node image")
        .unwrap_or_else(|| panic!("no kind node image row: {stdout}"));
    assert_eq!(row["status"], "warn", "{row}");
    assert!(row["detail"].as_str().unwrap().contains(&image), "{row}");
    assert!(row["fix"].as_str().unwrap().contains("docker load"), "{row}");
}
