//! Bad flags, config files and RESTATE_DEV_* variables: each must exit with code 2 and print one clear error on
//! stderr that names the key and the value, and never panic. `render` resolves the object settings; `up` resolves
//! the loop settings (ports, timeout, verify) in its first step, before it touches Docker.

use std::io::Write;

use assert_cmd::Command;

/// restate-dev as a user runs it, but with the loop locks in a directory of the tests' own: `up` here runs on the
/// default loop name, and must not wait on (or block) a developer's real loop of that name.
fn restate_dev() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_restate-dev"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TMPDIR", env!("CARGO_TARGET_TMPDIR"));
    for (key, _) in std::env::vars() {
        if key.starts_with("RESTATE_DEV_") {
            command.env_remove(key);
        }
    }
    command
}

fn config(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

/// Runs `render` and checks the failure: exit 2, nothing on stdout, one `error:` line on stderr containing each
/// of `needles`. Returns stderr.
fn refused(mut command: Command, needles: &[&str]) -> String {
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "one error expected: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} missing from: {stderr}");
    }
    stderr
}

fn flags(args: &[&str], needles: &[&str]) -> String {
    let mut command = restate_dev();
    command.arg("render").args(args);
    refused(command, needles)
}

fn file(text: &str, needles: &[&str]) -> String {
    let file = config(text);
    let mut command = restate_dev();
    command.arg("render").arg("--config").arg(file.path());
    let path = file.path().display().to_string();
    refused(command, &[needles, &[path.as_str()]].concat())
}

fn env(var: &str, value: &str, needles: &[&str]) -> String {
    let mut command = restate_dev();
    command.arg("render").env(var, value);
    refused(command, needles)
}

const TOO_LONG: &str = "a-name-that-is-fifty-characters-long-which-is-1-23";

#[test]
fn names_that_are_not_dns_labels() {
    assert_eq!(TOO_LONG.len(), 50);
    for bad in ["Loop", "my_loop", "-loop", "loop-", "my.loop"] {
        flags(
            &[&format!("--name={bad}")],
            &["invalid name", &format!("`{bad}`"), "DNS-1123 label", "--name"],
        );
    }
    flags(
        &["--name", TOO_LONG],
        &["invalid name", TOO_LONG, "50 characters", "at most 49"],
    );
    file("name: Loop\n", &["invalid name `Loop`", "fix `name` in"]);
    env(
        "RESTATE_DEV_NAME",
        TOO_LONG,
        &["invalid name", "from $RESTATE_DEV_NAME", "hint: fix or unset"],
    );
}

#[test]
fn bad_namespaces() {
    flags(
        &["--namespace", "Restate"],
        &["invalid namespace `Restate`", "DNS-1123 label"],
    );
    flags(
        &["--namespace", &"n".repeat(64)],
        &["invalid namespace", "64 characters"],
    );
    file("namespace: a_b\n", &["invalid namespace `a_b`"]);
    env(
        "RESTATE_DEV_NAMESPACE",
        "A",
        &["invalid namespace `A`", "$RESTATE_DEV_NAMESPACE"],
    );
}

#[test]
fn replicas_below_one() {
    for bad in ["0", "-1"] {
        flags(
            &["--replicas", bad],
            &[&format!("invalid replicas `{bad}`"), "at least 1"],
        );
    }
    file("replicas: 0\n", &["invalid replicas `0`", "config file"]);
    env(
        "RESTATE_DEV_REPLICAS",
        "0",
        &["invalid replicas `0`", "$RESTATE_DEV_REPLICAS"],
    );
    env(
        "RESTATE_DEV_REPLICAS",
        "three",
        &["invalid replicas `three`", "$RESTATE_DEV_REPLICAS"],
    );
    flags(&["--replicas", "three"], &["three", "--replicas"]);
}

#[test]
fn malformed_image_references() {
    for (key, bad) in [
        ("restate-image", "Restate/Server:1"),
        ("service-image", "a::b"),
        ("service-image", "my image:1"),
        ("envoy-image", "-envoy"),
        ("service-image", "a@sha256:short"),
    ] {
        let stderr = flags(
            &[&format!("--{key}={bad}")],
            &[
                &format!("invalid {key}"),
                &format!("`{bad}`"),
                "not a valid image reference",
            ],
        );
        assert!(stderr.contains(&format!("--{key}")), "{stderr}");
    }
    file("service-image: UPPER:1\n", &["invalid service-image `UPPER:1`"]);
    env(
        "RESTATE_DEV_ENVOY_IMAGE",
        "x//y",
        &["invalid envoy-image `x//y`", "$RESTATE_DEV_ENVOY_IMAGE"],
    );
}

#[test]
fn unpinned_restate_images() {
    let latest = "docker.restate.dev/restatedev/restate:latest";
    flags(
        &["--restate-image", latest],
        &["invalid restate-image", latest, "`latest` tag"],
    );
    let untagged = "docker.restate.dev/restatedev/restate";
    flags(
        &["--restate-image", untagged],
        &["invalid restate-image", untagged, "no tag"],
    );
    file(
        "restate-image: restatedev/restate\n",
        &["invalid restate-image `restatedev/restate`", "no tag"],
    );
    env(
        "RESTATE_DEV_RESTATE_IMAGE",
        "restatedev/restate:latest",
        &["`latest` tag", "$RESTATE_DEV_RESTATE_IMAGE"],
    );
}

#[test]
fn malformed_quantities() {
    for (key, bad, why) in [
        ("storage-size", "10GB", "not a Kubernetes quantity"),
        ("restate-cpu-limit", "0", "greater than zero"),
        ("restate-cpu-request", "lots", "not a Kubernetes quantity"),
        ("restate-memory-request", "-1Gi", "not a Kubernetes quantity"),
        ("restate-memory-limit", "1.2.3", "not a Kubernetes quantity"),
    ] {
        flags(&[&format!("--{key}={bad}")], &[&format!("invalid {key} `{bad}`"), why]);
    }
    file(
        "storage-size: 0Gi\n",
        &["invalid storage-size `0Gi`", "greater than zero"],
    );
    env(
        "RESTATE_DEV_STORAGE_SIZE",
        "2 Gi",
        &["invalid storage-size `2 Gi`", "$RESTATE_DEV_STORAGE_SIZE"],
    );
}

#[test]
fn unreadable_config_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    for path in [missing.as_path(), dir.path()] {
        let mut command = restate_dev();
        command.arg("render").arg("--config").arg(path);
        refused(
            command,
            &[
                "cannot read config file",
                &path.display().to_string(),
                "hint: check the path",
            ],
        );
    }
    let mut command = restate_dev();
    command.arg("render").env("RESTATE_DEV_CONFIG", &missing);
    refused(command, &["cannot read config file", &missing.display().to_string()]);
}

#[test]
fn malformed_yaml_config_files() {
    for (text, why) in [
        ("replicas: [1\n", "unclosed bracket"),
        ("replicas: 1\nreplicas: 2\n", "duplicate mapping key `replicas`"),
        ("a: b: c\n", "line 1"),
        ("- replicas\n", "expected a mapping"),
        ("replicas: {n: 1}\n", "`replicas` must be a single value"),
    ] {
        file(
            text,
            &[
                "malformed config file",
                why,
                "hint: see fixtures/restate-dev.example.yaml",
            ],
        );
    }
}

#[test]
fn unknown_config_keys_name_the_nearest() {
    file("replica: 2\n", &["unknown key `replica`", "did you mean `replicas`?"]);
    file(
        "storage_size: 1Gi\n",
        &["unknown key `storage_size`", "did you mean `storage-size`?"],
    );
    file(
        "flavour: vanilla\n",
        &["unknown key `flavour`", "valid keys: name, namespace"],
    );
}

#[test]
fn unknown_restate_dev_variables() {
    env(
        "RESTATE_DEV_REPLICA",
        "2",
        &[
            "unknown key `RESTATE_DEV_REPLICA`",
            "did you mean `RESTATE_DEV_REPLICAS`?",
        ],
    );
    env(
        "RESTATE_DEV_NAMESPCE",
        "x",
        &["`RESTATE_DEV_NAMESPCE`", "did you mean `RESTATE_DEV_NAMESPACE`?"],
    );
}

#[test]
fn json_output_carries_the_error_too() {
    let output = restate_dev()
        .args(["render", "--output", "json", "--replicas", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["error"]["kind"], "usage");
    assert_eq!(report["error"]["exit_code"], 2);
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid replicas `0`")
    );
}

/// `up` checks its own settings before anything else, so these fail the same way with Docker unreachable.
fn up_refused(args: &[&str], config_text: Option<&str>, needles: &[&str]) -> String {
    let mut command = restate_dev();
    // -q: no step lines, so stderr holds the error alone.
    command
        .args(["up", "-q"])
        .args(args)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let file = config_text.map(config);
    if let Some(file) = &file {
        command.arg("--config").arg(file.path());
    }
    refused(command, needles)
}

#[test]
fn up_refuses_bad_loop_settings_before_touching_docker() {
    up_refused(
        &["--ingress-port", "70000"],
        None,
        &["ingress-port", "70000", "--ingress-port", "1 to 65535"],
    );
    up_refused(
        &[],
        Some("admin-port: 0\n"),
        &["admin-port", "`0`", "config file", "1 to 65535"],
    );
    up_refused(
        &["--ingress-port", "8080", "--admin-port", "8080"],
        None,
        &["admin-port", "8080", "same as ingress-port"],
    );
    up_refused(&["--timeout", "soon"], None, &["timeout", "soon", "duration"]);
    up_refused(
        &["--verify", "Greeter"],
        None,
        &["verify", "Greeter", "Service/handler"],
    );
    up_refused(
        &["--verify", "Greeter/greet", "--verify-body", "{nope"],
        None,
        &["verify-body", "{nope", "JSON"],
    );
    up_refused(
        &["--service-image", "my/greeter:1.0"],
        None,
        &["--service-image", "--verify"],
    );
    up_refused(
        &["--runtime", "docker", "--context", "x"],
        None,
        &["--context", "--runtime"],
    );
}

/// cargo-dist style: every verb's help is complete and shows examples.
#[test]
fn every_verb_has_help_with_examples() {
    for verb in ["render", "up", "down", "status", "smoke", "doctor", "port-forward"] {
        let output = restate_dev().args([verb, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{verb} --help failed");
        assert!(help.contains("Examples:"), "{verb} --help has no examples:\n{help}");
        assert!(
            help.contains(&format!("restate-dev {verb}")),
            "{verb} --help shows no invocation:\n{help}"
        );
    }
    let top = restate_dev().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&top.stdout);
    assert!(help.contains("Exit codes: 0 success"), "{help}");
    assert!(
        !help.contains("serve-sample"),
        "the sample's entry point is hidden:\n{help}"
    );
}

#[test]
fn a_zero_timeout_is_refused() {
    for zero in ["0", "0s", "0m"] {
        up_refused(&["--timeout", zero], None, &["timeout", zero, "longer than zero"]);
    }
}

#[test]
fn yaml_output_is_for_render_alone() {
    for verb in ["up", "status", "down", "doctor", "smoke"] {
        let output = restate_dev()
            .args([verb, "--output", "yaml"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{verb}: {stderr}");
        assert!(
            stderr.contains("--output yaml is only for `render`"),
            "{verb}: {stderr}"
        );
    }
}

#[test]
fn doctor_takes_only_the_flags_it_checks() {
    let output = restate_dev().args(["doctor", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for absent in ["--verify", "--verify-body", "--no-verify", "--timeout"] {
        assert!(!help.contains(absent), "doctor --help lists {absent}:\n{help}");
    }
    for present in [
        "--runtime",
        "--context",
        "--ingress-port",
        "--admin-port",
        "--node-image",
        "--restate-binary",
    ] {
        assert!(help.contains(present), "doctor --help lacks {present}:\n{help}");
    }
    let output = restate_dev().args(["doctor", "--timeout", "5s"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// A kubeconfig with one context, `dead`, whose API server is a closed port on loopback.
fn dead_kubeconfig() -> tempfile::NamedTempFile {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config(&format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster:\n    server: https://127.0.0.1:{port}\n\
         contexts:\n- name: dead\n  context:\n    cluster: dead\n    user: u\nusers:\n- name: u\n  user:\n    \
         token: x\ncurrent-context: dead\n"
    ))
}

#[test]
fn a_missing_context_is_a_missing_prerequisite() {
    let kubeconfig = dead_kubeconfig();
    let output = restate_dev()
        .args([
            "up",
            "--context",
            "nope",
            "--service-image",
            "my/greeter:1.0",
            "--no-verify",
        ])
        .env("KUBECONFIG", kubeconfig.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("kube context `nope` does not exist"), "{stderr}");
    assert!(stderr.contains("available contexts: dead"), "{stderr}");
}

#[test]
fn a_dead_api_server_gives_our_error_and_no_library_logs() {
    let kubeconfig = dead_kubeconfig();
    let output = restate_dev()
        .args([
            "up",
            "--context",
            "dead",
            "--service-image",
            "my/greeter:1.0",
            "--no-verify",
        ])
        .env("KUBECONFIG", kubeconfig.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("does not answer"), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "terminal escapes on a non-terminal stderr: {stderr:?}"
    );
    assert!(
        !stderr.contains("ERROR"),
        "a library's log line reached the user: {stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{stderr}"
    );
}

/// Runs restate-dev with a stdout whose reader is gone, as `… | true` leaves it.
fn closed_stdout(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    std::process::Command::new(env!("CARGO_BIN_EXE_restate-dev"))
        .args(args)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_ends_render_quietly_as_git_does() {
    for args in [&["render"][..], &["render", "--output", "json"], &["--help"]] {
        let output = closed_stdout(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        if args != ["--help"] {
            assert_eq!(output.status.code(), Some(141), "{args:?}: {stderr}");
            assert_eq!(stderr, "", "{args:?}");
        }
    }
}

/// `status` and `down` take `--runtime` as `up` does (users type it by symmetry), parse it as `up` does, and
/// refuse it beside `--context`. A good one gets past parsing: with no Docker, the error is Docker's (exit 3).
#[test]
fn status_and_down_take_runtime_as_up_does() {
    for verb in ["status", "down"] {
        let mut command = restate_dev();
        command.args([verb, "--runtime", "x"]);
        refused(command, &["invalid value 'x'", "--runtime", "kind, docker, minikube"]);
        let mut command = restate_dev();
        command.args([verb, "--runtime", "docker", "--context", "prod"]);
        refused(command, &["--runtime", "--context", "cannot be used with"]);
        let output = restate_dev()
            .args([verb, "--runtime", "docker", "--name", "nothing-here"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{verb}: {stderr}");
        assert!(stderr.contains("/nonexistent/docker.sock"), "{verb}: {stderr}");
    }
}

#[test]
fn list_says_so_when_docker_is_unreachable() {
    let output = restate_dev()
        .args(["list"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("/nonexistent/docker.sock"), "{stderr}");
}

/// `up` on a runtime that cannot honour a setting the user set says so, once, naming each and where it came
/// from; defaults and honoured settings are not named. Docker is unreachable: the warning comes first.
#[test]
fn settings_a_runtime_ignores_are_named_in_one_warning() {
    let up = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = restate_dev();
        command
            .args(["up"])
            .args(args)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env("KUBECONFIG", "/nonexistent/kubeconfig");
        for (key, value) in env {
            command.env(key, value);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = up(
        &[
            "--runtime",
            "docker",
            "--namespace",
            "dev",
            "--restate-memory-limit",
            "1Gi",
        ],
        &[("RESTATE_DEV_STORAGE_SIZE", "5Gi")],
    );
    assert_eq!(
        stderr.matches("warning: the docker runtime ignores").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("ignores `namespace` (from --namespace), `storage-size` (from $RESTATE_DEV_STORAGE_SIZE):"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("`restate-memory-limit`"),
        "docker applies it: {stderr}"
    );
    let stderr = up(&["--runtime", "docker"], &[]);
    assert!(!stderr.contains("ignores"), "nothing was set: {stderr}");
    let stderr = up(&["--context", "elsewhere", "--node-image", "kindest/node:v1.37.0"], &[]);
    assert!(
        stderr.contains("the context runtime ignores `node-image` (from --node-image)"),
        "{stderr}"
    );
}
