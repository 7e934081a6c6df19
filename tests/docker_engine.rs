//! The Docker wrapper against the real Docker Engine: networks, containers, logs, exec (with and without stdin),
//! volumes, images, and the errors for an unreachable daemon and a failed pull. Every object has a unique name
//! and a unique loop label, and is removed by the test.

use restate_dev::{docker, error, images, labels, ui};

mod docker_common;

use std::time::Duration;

use bytes::Bytes;
use std::path::Path;

use docker::{BuildContext, ContainerSpec, Docker, Endpoint, Mount, NetworkSpec};
use docker_common::{Cleanup, docker, quiet_ui, unique};
use images::Rootfs;
use sha2::{Digest, Sha256};

/// Builds `tag` holding /bin/sh, sleep, cat, wc and sha256sum from this machine, with their libraries.
async fn toolbox(docker: &Docker, tag: &str, labels: &std::collections::BTreeMap<String, String>) {
    let mut rootfs = Rootfs::default();
    for tool in ["/bin/sh", "/bin/sleep", "/bin/cat", "/usr/bin/wc", "/usr/bin/sha256sum"] {
        let bytes = std::fs::read(tool).unwrap();
        rootfs.add_executable(Path::new(tool), &bytes, tool).unwrap();
    }
    let mut context = BuildContext::new();
    rootfs.write_to(&mut context, "rootfs").unwrap();
    context
        .add(
            "Dockerfile",
            0o644,
            b"FROM scratch\nCOPY rootfs/ /\nCMD [\"/bin/sleep\", \"600\"]\n",
        )
        .unwrap();
    docker
        .build_image(tag, labels, context.into_tar().unwrap())
        .await
        .unwrap();
}

/// A running toolbox container on its own image; the image tag, the container name.
async fn running_toolbox(docker: &Docker, test: &str, cleanup: &mut Cleanup) -> (String, String) {
    let name = unique(test);
    let labels = labels::for_loop(&name);
    let tag = format!("restate-dev.local/test-toolbox:{name}");
    cleanup.images.push(tag.clone());
    toolbox(docker, &tag, &labels).await;
    cleanup.containers.push(name.clone());
    docker
        .run_container(&ContainerSpec::new(&name, &tag, labels))
        .await
        .unwrap();
    (tag, name)
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn unreachable_daemon_is_a_prerequisite_error_naming_the_socket() {
    let e = Docker::connect_to(Endpoint::Unix("/nonexistent/docker.sock".into()))
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 3, "{e}");
    assert!(e.message.contains("unix:///nonexistent/docker.sock"), "{e}");
    assert!(e.hint.unwrap().contains("DOCKER_HOST"));
    // A closed TCP port refuses at once rather than hanging.
    let port = docker::ports::free_port().unwrap();
    let e = Docker::connect_to(Endpoint::Tcp(format!("127.0.0.1:{port}")))
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 3, "{e}");
    assert!(e.message.contains(&format!("tcp://127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn connected_daemon_reports_its_facts() {
    let docker = docker().await;
    let facts = docker.facts().await.unwrap();
    assert!(!facts.version.is_empty() && !facts.root_dir.is_empty(), "{facts:?}");
    let (major, minor) = facts.api_version.split_once('.').unwrap();
    let api: (usize, usize) = (major.parse().unwrap(), minor.parse().unwrap());
    assert!(api >= docker::MIN_API_VERSION, "{facts:?}");
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn networks_are_created_listed_and_removed_by_label() {
    let docker = docker().await;
    let mut cleanup = Cleanup::default();
    let name = unique("network");
    let labels = labels::for_loop(&name);
    cleanup.networks.push(name.clone());
    let spec = NetworkSpec {
        name: name.clone(),
        labels: labels.clone(),
        mtu: Some(1400),
        masquerade: true,
    };
    docker.create_network(&spec).await.unwrap();
    assert_eq!(docker.list_networks(&labels).await.unwrap(), vec![name.clone()]);
    let info = docker.inspect_network(&name).await.unwrap().unwrap();
    assert_eq!(info.options["com.docker.network.driver.mtu"], "1400");
    assert_eq!(info.labels, labels);
    assert!(info.containers.is_empty());

    // A container attached to it shows up among its containers, under its alias too.
    let (tag, _) = running_toolbox(&docker, "network-member", &mut cleanup).await;
    let member = unique("member");
    cleanup.containers.push(member.clone());
    let mut member_spec = ContainerSpec::new(&member, &tag, labels.clone());
    member_spec.network = Some(name.clone());
    member_spec.aliases = vec!["restate".into()];
    docker.run_container(&member_spec).await.unwrap();
    let info = docker.inspect_network(&name).await.unwrap().unwrap();
    assert_eq!(info.containers, vec![member.clone()]);
    let member_info = docker.inspect_container(&member).await.unwrap().unwrap();
    assert!(
        member_info.addresses[&name].starts_with(|c: char| c.is_ascii_digit()),
        "{member_info:?}"
    );

    // Docker refuses to remove a network in use; the error says what and which.
    let e = docker.remove_network(&name).await.unwrap_err();
    assert!(e.message.contains(&format!("cannot remove network {name}")), "{e}");
    assert!(docker.remove_container(&member).await.unwrap());
    assert!(docker.remove_network(&name).await.unwrap());
    assert!(!docker.remove_network(&name).await.unwrap());
    assert!(docker.list_networks(&labels).await.unwrap().is_empty());
    assert!(docker.inspect_network(&name).await.unwrap().is_none());
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn containers_live_log_and_die_as_inspected() {
    let docker = docker().await;
    let mut cleanup = Cleanup::default();
    let (tag, _) = running_toolbox(&docker, "lifecycle-image", &mut cleanup).await;
    let name = unique("lifecycle");
    let labels = labels::for_loop(&name);
    cleanup.containers.push(name.clone());
    let mut spec = ContainerSpec::new(&name, &tag, labels.clone());
    spec.cmd = [
        "/bin/sh",
        "-c",
        "echo starting; sleep 1; echo ready now; exec sleep 600",
    ]
    .map(String::from)
    .to_vec();
    spec.mounts = vec![Mount::Volume {
        name: None,
        target: "/data".into(),
    }];
    docker.create_container(&spec).await.unwrap();
    let created = docker.inspect_container(&name).await.unwrap().unwrap();
    assert_eq!((created.status.as_str(), created.running), ("created", false));
    docker.start_container(&name).await.unwrap();

    let ready = regex::Regex::new("^ready").unwrap();
    let line = docker
        .wait_for_log(&name, &ready, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(line, "ready now");
    let running = docker.inspect_container(&name).await.unwrap().unwrap();
    assert!(running.running && running.exit_code.is_none(), "{running:?}");
    assert_eq!(running.labels, labels);
    assert_eq!(docker.list_containers(&labels).await.unwrap(), vec![name.clone()]);
    assert_eq!(docker.logs_tail(&name, 1).await.unwrap().trim(), "ready now");
    // The anonymous volume carries the container's labels, so `down` finds it.
    assert_eq!(docker.list_volumes(&labels).await.unwrap().len(), 1);

    // A line that never comes is a Timeout with the log's tail attached.
    let never = regex::Regex::new("never").unwrap();
    let e = docker
        .wait_for_log(&name, &never, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    assert!(e.details.iter().any(|d| d.contains("ready now")), "{e}");

    docker.stop_container(&name, Duration::from_secs(1)).await.unwrap();
    let stopped = docker.inspect_container(&name).await.unwrap().unwrap();
    assert_eq!(stopped.status, "exited");
    assert_eq!(
        stopped.exit_code,
        Some(137),
        "sleep ignores SIGTERM as PID 1, so it is killed"
    );
    // Stopping again, or stopping what does not exist, is not an error.
    docker.stop_container(&name, Duration::from_secs(1)).await.unwrap();
    docker
        .stop_container("rdt-no-such-container", Duration::from_secs(1))
        .await
        .unwrap();

    // Removal takes the anonymous volume with it.
    assert!(docker.remove_container(&name).await.unwrap());
    assert!(!docker.remove_container(&name).await.unwrap());
    assert!(docker.inspect_container(&name).await.unwrap().is_none());
    assert!(docker.list_volumes(&labels).await.unwrap().is_empty());
}

/// A stopped container publishes no ports, yet `up` must know them to bring a stopped loop back on its URLs: they
/// are read from its configuration. Its image ID and paused state are read too, for rebuilds and diagnoses.
#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn stopped_and_paused_containers_keep_their_ports_and_image_id() {
    let docker = docker().await;
    let mut cleanup = Cleanup::default();
    let (tag, _) = running_toolbox(&docker, "ports-image", &mut cleanup).await;
    let name = unique("ports");
    cleanup.containers.push(name.clone());
    let mut spec = ContainerSpec::new(&name, &tag, labels::for_loop(&name));
    spec.cmd = ["/bin/sleep", "600"].map(String::from).to_vec();
    let (a, b) = (docker::ports::free_port().unwrap(), docker::ports::free_port().unwrap());
    spec.ports = vec![
        docker::PortPublish::loopback(a, 8080),
        docker::PortPublish::loopback(b, 9070),
    ];
    let mut expected = vec![(8080, a), (9070, b)];
    expected.sort();
    docker.create_container(&spec).await.unwrap();
    let image_id = docker.inspect_image(&tag).await.unwrap().unwrap().id;
    let created = docker.inspect_container(&name).await.unwrap().unwrap();
    assert_eq!(created.ports, expected, "created, never started");
    assert_eq!(created.image_id, image_id);
    docker.start_container(&name).await.unwrap();
    docker.client().pause_container(&name).await.unwrap();
    let paused = docker.inspect_container(&name).await.unwrap().unwrap();
    assert!(paused.paused && paused.running, "{paused:?}");
    assert_eq!(paused.ports, expected);
    docker.client().unpause_container(&name).await.unwrap();
    docker.stop_container(&name, Duration::from_secs(0)).await.unwrap();
    let stopped = docker.inspect_container(&name).await.unwrap().unwrap();
    assert!(!stopped.running && !stopped.paused, "{stopped:?}");
    assert_eq!(stopped.ports, expected, "stopped");
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn a_container_that_exits_before_its_line_fails_the_wait() {
    let docker = docker().await;
    let mut cleanup = Cleanup::default();
    let (tag, _) = running_toolbox(&docker, "exits-image", &mut cleanup).await;
    let name = unique("exits");
    cleanup.containers.push(name.clone());
    let mut spec = ContainerSpec::new(&name, &tag, labels::for_loop(&name));
    spec.cmd = ["/bin/sh", "-c", "echo boom >&2; exit 3"].map(String::from).to_vec();
    docker.run_container(&spec).await.unwrap();
    let ready = regex::Regex::new("ready").unwrap();
    let e = docker
        .wait_for_log(&name, &ready, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 1, "{e}");
    assert!(e.message.contains("exited with code 3"), "{e}");
    assert!(e.details.iter().any(|d| d.contains("boom")), "{e}");
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn missing_images_and_duplicate_names_are_explained() {
    let docker = docker().await;
    let mut cleanup = Cleanup::default();
    let name = unique("no-image");
    cleanup.containers.push(name.clone());
    let spec = ContainerSpec::new(&name, "restate-dev.local/no-such-image:0", labels::for_loop(&name));
    let e = docker.create_container(&spec).await.unwrap_err();
    assert!(e.message.contains(&format!("cannot create container {name}")), "{e}");
    assert!(e.hint.unwrap().contains("restate-dev.local/no-such-image:0"));

    let (_, running) = running_toolbox(&docker, "duplicate", &mut cleanup).await;
    let info = docker.inspect_container(&running).await.unwrap().unwrap();
    let again = ContainerSpec::new(&running, &info.image, labels::for_loop(&running));
    let e = docker.create_container(&again).await.unwrap_err();
    assert!(e.hint.unwrap().contains("conflicts"), "{}", e.message);
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn exec_captures_output_and_exit_code() {
    let docker = docker().await;
    let mut cleanup = Cleanup::default();
    let (_, name) = running_toolbox(&docker, "exec", &mut cleanup).await;
    let cmd = ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"];
    let output = docker.exec(&name, &cmd).await.unwrap();
    assert_eq!(
        (output.exit_code, output.stdout.as_str(), output.stderr.as_str()),
        (3, "out\n", "err\n")
    );
    let e = docker.exec_ok(&name, &cmd).await.unwrap_err();
    assert!(e.message.contains("exited with code 3"), "{e}");
    assert!(e.details.iter().any(|d| d.contains("err")), "{e}");
    assert_eq!(
        docker
            .exec_ok(&name, &["/bin/cat", "/etc/hostname"])
            .await
            .unwrap()
            .len(),
        13
    );
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn exec_stdin_sees_exactly_the_bytes_streamed() {
    let docker = docker().await;
    let mut cleanup = Cleanup::default();
    let (tag, name) = running_toolbox(&docker, "stdin", &mut cleanup).await;

    // 8 MiB of varied bytes in uneven chunks.
    let chunks: Vec<Bytes> = (0..97u32)
        .map(|i| {
            let len = 40_000 + (i as usize * 1_777) % 90_000;
            Bytes::from(
                (0..len)
                    .map(|j| (j as u32 ^ i.wrapping_mul(2_654_435_761)) as u8)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let expected = chunks.iter().fold(Sha256::new(), |mut h, c| {
        h.update(c);
        h
    });
    let expected = format!("{:x}", expected.finalize());
    let input = futures::stream::iter(chunks.into_iter().map(Ok));
    let output = docker
        .exec_with_stdin(&name, &["/usr/bin/sha256sum"], input)
        .await
        .unwrap();
    assert_eq!(output.exit_code, 0, "{output:?}");
    assert_eq!(output.stdout.split_whitespace().next(), Some(expected.as_str()));

    // An exported image streams straight into a command's stdin, as image loads into kind nodes do.
    let exported: usize = {
        use futures::StreamExt;
        let mut total = 0;
        let mut stream = std::pin::pin!(docker.export_image(&tag));
        while let Some(chunk) = stream.next().await {
            total += chunk.unwrap().len();
        }
        total
    };
    let counted = docker
        .exec_with_stdin(&name, &["/usr/bin/wc", "-c"], docker.export_image(&tag))
        .await
        .unwrap();
    assert_eq!(counted.stdout.trim(), exported.to_string());

    // A failing input stream stops the exec and returns its error.
    let failing = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(error::Error::failed("the source broke")),
    ]);
    let e = docker.exec_with_stdin(&name, &["/bin/cat"], failing).await.unwrap_err();
    assert_eq!(e.message, "the source broke");
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn volumes_are_created_listed_and_removed_by_label() {
    let docker = docker().await;
    let mut cleanup = Cleanup::default();
    let name = unique("volume");
    let labels = labels::for_loop(&name);
    cleanup.volumes.push(name.clone());
    assert_eq!(docker.create_volume(&name, &labels).await.unwrap(), name);
    assert_eq!(docker.list_volumes(&labels).await.unwrap(), vec![name.clone()]);
    assert!(docker.remove_volume(&name).await.unwrap());
    assert!(!docker.remove_volume(&name).await.unwrap());
    assert!(docker.list_volumes(&labels).await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn images_are_found_by_label_and_removed_when_unused() {
    let docker = docker().await;
    let mut cleanup = Cleanup::default();
    let (tag, name) = running_toolbox(&docker, "images", &mut cleanup).await;
    let labels = labels::for_loop(&name);
    let info = docker.inspect_image(&tag).await.unwrap().unwrap();
    assert_eq!(info.labels, labels);
    assert!(info.tags.contains(&tag));
    let listed = docker.list_images(&labels).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, info.id);
    assert!(docker.image_in_use(&tag).await.unwrap());
    docker.remove_container(&name).await.unwrap();
    assert!(!docker.image_in_use(&tag).await.unwrap());
    assert!(docker.remove_image(&tag).await.unwrap());
    assert!(!docker.image_exists(&tag).await.unwrap());
    assert!(!docker.remove_image(&tag).await.unwrap());
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn a_failed_pull_says_how_to_load_the_image() {
    let docker = docker().await;
    // A registry on a closed loopback port: the pull fails at once and no traffic leaves the machine.
    let port = docker::ports::free_port().unwrap();
    let reference = format!("127.0.0.1:{port}/restatedev/restate:1.7.12");
    let e = docker.pull_image(&reference, &quiet_ui()).await.unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
    assert!(e.message.contains(&reference), "{e}");
    assert!(e.hint.unwrap().contains("docker load"));
}
