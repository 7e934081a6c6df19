//! Images assembled from local binaries, against the real Docker Engine: the sample service from restate-dev's
//! executable (answering HTTP/2 cleartext), the Restate server from $RESTATE_SERVER_BIN (healthy), and the
//! choice of the Restate image with its errors.

use restate_dev::{docker, images, labels, ui};

mod docker_common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use docker::{ContainerSpec, Docker, Mount, PortPublish};
use docker_common::{Cleanup, docker, quiet_ui, unique};
use images::RestateSource;

const RESTATE_DEV: &str = env!("CARGO_BIN_EXE_restate-dev");

fn restate_server_bin() -> PathBuf {
    let path = std::env::var_os("RESTATE_SERVER_BIN")
        .expect("RESTATE_SERVER_BIN is not set: run `. scripts/install-deps.sh` first (it exports it)");
    PathBuf::from(path)
}

/// Polls `probe` until it returns Some, for at most `bound`; the container's log tail on failure.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    docker: &Docker,
    container: &str,
    bound: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        let state = docker.inspect_container(container).await.unwrap().unwrap();
        if !state.running || started.elapsed() > bound {
            let logs = docker.logs_tail(container, 30).await.unwrap_or_default();
            panic!(
                "container {container} did not answer (state {}, exit {:?}); its log:\n{logs}",
                state.status, state.exit_code
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn sample_image_is_tagged_by_content_runs_non_root_and_serves_h2c() {
    let docker = docker().await;
    let ui = quiet_ui();
    let mut cleanup = Cleanup::default();
    let exe = Path::new(RESTATE_DEV);
    let reference = images::sample_image_from(&docker, exe, &ui).await.unwrap();
    cleanup.images.push(reference.clone());
    assert_eq!(reference, images::sample_reference_of(exe).unwrap());
    assert!(reference.starts_with("restate-dev.local/greeter:"), "{reference}");
    let first = docker.inspect_image(&reference).await.unwrap().unwrap();
    assert_eq!(first.labels, images::image_labels());
    // Asking again finds the tag and builds nothing.
    assert_eq!(images::sample_image_from(&docker, exe, &ui).await.unwrap(), reference);
    assert_eq!(docker.inspect_image(&reference).await.unwrap().unwrap().id, first.id);
    let config = docker.client().inspect_image(&reference).await.unwrap().config.unwrap();
    assert_eq!(config.user.as_deref(), Some("65532:65532"));
    assert!(config.env.unwrap().contains(&"PORT=9080".to_string()));

    // The binary runs from scratch: its loader and libraries came along.
    let name = unique("sample-version");
    cleanup.containers.push(name.clone());
    let mut spec = ContainerSpec::new(&name, &reference, labels::for_loop(&name));
    spec.entrypoint = Some(vec!["/usr/local/bin/restate-dev".into(), "--version".into()]);
    docker.run_container(&spec).await.unwrap();
    let version = regex::Regex::new("^restate-dev ").unwrap();
    docker
        .wait_for_log(&name, &version, Duration::from_secs(30))
        .await
        .unwrap();

    // Its entrypoint serves the sample over HTTP/2 cleartext (prior knowledge) on $PORT.
    let name = unique("sample-serve");
    cleanup.containers.push(name.clone());
    let port = docker::ports::free_port().unwrap();
    let mut spec = ContainerSpec::new(&name, &reference, labels::for_loop(&name));
    spec.ports = vec![PortPublish::loopback(port, 9080)];
    docker.run_container(&spec).await.unwrap();
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/discover");
    let response = eventually(&docker, &name, Duration::from_secs(30), || {
        let request = client
            .get(&url)
            .header("accept", "application/vnd.restate.endpointmanifest.v2+json")
            .send();
        async move { request.await.ok() }
    })
    .await;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("Greeter"), "{body}");
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn restate_image_from_a_static_binary_is_healthy_on_a_volume() {
    let binary = restate_server_bin();
    let docker = docker().await;
    let ui = quiet_ui();
    let mut cleanup = Cleanup::default();
    let chosen = images::ensure_restate_image(&docker, "unused/restate:1", Some(&binary), &ui)
        .await
        .unwrap();
    cleanup.images.push(chosen.reference.clone());
    assert_eq!(chosen.source, RestateSource::Binary(binary.clone()));
    assert_eq!(chosen.reference, images::restate_reference_of(&binary).unwrap());
    assert!(
        chosen.reference.starts_with("restate-dev.local/restate-server:"),
        "{}",
        chosen.reference
    );
    let config = docker
        .client()
        .inspect_image(&chosen.reference)
        .await
        .unwrap()
        .config
        .unwrap();
    assert_eq!(config.user.as_deref(), Some("1000:3000"));

    // A configured image that is present locally is used as it is.
    let local = images::ensure_restate_image(&docker, &chosen.reference, None, &ui)
        .await
        .unwrap();
    assert_eq!(local.source, RestateSource::Local);

    let name = unique("restate");
    let volume = unique("restate-data");
    cleanup.containers.push(name.clone());
    cleanup.volumes.push(volume.clone());
    let admin = docker::ports::free_port().unwrap();
    let mut spec = ContainerSpec::new(&name, &chosen.reference, labels::for_loop(&name));
    spec.env = vec!["RESTATE_DISABLE_TELEMETRY=true".into()];
    spec.cmd = ["--node-name", "dev", "--no-logo"].map(String::from).to_vec();
    spec.ports = vec![PortPublish::loopback(admin, 9070)];
    // A fresh named volume takes the image's /restate-data ownership (uid 1000), so the server can write it.
    spec.mounts = vec![Mount::Volume {
        name: Some(volume.clone()),
        target: "/restate-data".into(),
    }];
    docker.run_container(&spec).await.unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://127.0.0.1:{admin}/health");
    let status = eventually(&docker, &name, Duration::from_secs(60), || {
        let request = client.get(&url).send();
        async move { request.await.ok().map(|r| r.status()).filter(|s| s.is_success()) }
    })
    .await;
    assert_eq!(status, 200);
    // It stays up (without a CA bundle it would panic and exit 0).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(docker.inspect_container(&name).await.unwrap().unwrap().running);

    // Without a volume it writes to the container's own layer, where /restate-data is the server's too.
    let bare = unique("restate-bare");
    cleanup.containers.push(bare.clone());
    let admin = docker::ports::free_port().unwrap();
    spec.name = bare.clone();
    spec.mounts.clear();
    spec.ports = vec![PortPublish::loopback(admin, 9070)];
    docker.run_container(&spec).await.unwrap();
    let url = format!("http://127.0.0.1:{admin}/health");
    eventually(&docker, &bare, Duration::from_secs(60), || {
        let request = client.get(&url).send();
        async move { request.await.ok().filter(|r| r.status().is_success()) }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn a_missing_restate_binary_is_named_before_anything_is_made() {
    let docker = docker().await;
    let missing = Path::new("/nonexistent/restate-server");
    let e = images::ensure_restate_image(&docker, "unused/restate:1", Some(missing), &quiet_ui())
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
    assert!(
        e.message.contains("--restate-binary /nonexistent/restate-server"),
        "{e}"
    );
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn an_unpullable_restate_image_names_both_ways_out() {
    let docker = docker().await;
    let mut cleanup = Cleanup::default();
    // A registry on a closed loopback port: the pull fails at once and no traffic leaves the machine.
    let port = docker::ports::free_port().unwrap();
    let configured = format!("127.0.0.1:{port}/restatedev/restate:1.7.12");
    let outcome = images::ensure_restate_image(&docker, &configured, None, &quiet_ui()).await;
    match which::which("restate-server") {
        // With restate-server on PATH, the image is assembled from it instead.
        Ok(found) => {
            let chosen = outcome.unwrap();
            cleanup.images.push(chosen.reference.clone());
            assert_eq!(chosen.source, RestateSource::PathFallback(found));
        }
        Err(_) => {
            let e = outcome.unwrap_err();
            assert_eq!(e.exit_code(), 3, "{e}");
            assert!(e.message.contains(&configured), "{e}");
            let hint = e.hint.unwrap();
            assert!(
                hint.contains("--restate-binary") && hint.contains("docker load"),
                "{hint}"
            );
        }
    }
}

/// Prints how long assembling each image takes; run by scripts/measure-image-build.sh, asserts nothing on time.
#[tokio::test]
#[ignore = "a measurement, run by scripts/measure-image-build.sh"]
async fn measure_image_builds() {
    let docker = docker().await;
    let ui = quiet_ui();
    let exe = PathBuf::from(RESTATE_DEV);
    let server = restate_server_bin();
    for (what, binary) in [("sample", exe), ("restate-server", server)] {
        let mut cleanup = Cleanup::default();
        let seconds = |started: Instant| format!("{:.2}s", started.elapsed().as_secs_f64());
        let build = |reference: String| {
            let (docker, ui, binary) = (&docker, &ui, &binary);
            async move {
                match what {
                    "sample" => images::build_sample_image(docker, binary, Some(&reference), ui).await,
                    _ => images::build_restate_image(docker, binary, Some(&reference), ui).await,
                }
                .unwrap()
            }
        };
        let ensure = || {
            let (docker, ui, binary) = (&docker, &ui, &binary);
            async move {
                match what {
                    "sample" => images::sample_image_from(docker, binary, ui).await,
                    _ => images::assemble_restate_image(docker, binary, ui).await,
                }
                .unwrap()
            }
        };
        let content_reference = match what {
            "sample" => images::sample_reference_of(&binary),
            _ => images::restate_reference_of(&binary),
        }
        .unwrap();
        let existed = docker.image_exists(&content_reference).await.unwrap();
        let first = format!("restate-dev.local/measure-{what}:{}", unique("first"));
        let second = format!("restate-dev.local/measure-{what}:{}", unique("second"));
        cleanup.images.extend([first.clone(), second.clone()]);
        let started = Instant::now();
        build(first).await;
        let cold = seconds(started);
        let started = Instant::now();
        build(second).await;
        let layer_cached = seconds(started);
        if !existed {
            cleanup.images.push(content_reference.clone());
            ensure().await;
        }
        let started = Instant::now();
        ensure().await;
        let tag_present = seconds(started);
        let size = std::fs::metadata(&binary).unwrap().len() / (1024 * 1024);
        println!(
            "{what} image ({size} MiB binary): build {cold}{}, rebuild on Docker's layer cache {layer_cached}, \
             again with its tag present (hash + inspect, no build) {tag_present}",
            if existed {
                " (its layers already existed, so this was cached too)"
            } else {
                ""
            },
        );
    }
}
