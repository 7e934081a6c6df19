//! Tests against the real Docker daemon (started by scripts/install-deps.sh). No kindest/node can run here
//! (no registry, no privileged containers), so images are built from this machine's own binaries, and the
//! node is a stand-in that boots like one and then fails the first exec step.
//!
//! They live in the crate rather than tests/ because restate-dev is a binary crate: tests/ could only drive the
//! CLI. Every Docker object has a unique name and is removed by the test.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::*;
use crate::docker::{BuildContext, ContainerSpec, NetworkSpec};
use crate::error::Kind;

fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("rdt-{test}-{:x}{nanos:x}", std::process::id())
}

async fn docker() -> Docker {
    Docker::connect()
        .await
        .expect("these tests need a Docker daemon: run `. scripts/install-deps.sh` first")
}

fn ui() -> Ui {
    Ui::new(None, true)
}

/// An image of this machine's `binaries` (at /bin, with the libraries they load) and nothing else. Its `labels`
/// are its containers' too.
async fn build_from_host(
    docker: &Docker,
    tag: &str,
    labels: &BTreeMap<String, String>,
    binaries: &[&str],
    dockerfile: &str,
) {
    let mut rootfs = crate::images::Rootfs::default();
    for binary in binaries {
        let path = which::which(binary).unwrap_or_else(|e| panic!("{binary} is needed on this machine: {e}"));
        let bytes = std::fs::read(&path).expect("read the binary");
        rootfs
            .add_executable(&path, &bytes, &format!("/bin/{binary}"))
            .expect("add the binary");
    }
    let mut context = BuildContext::new();
    rootfs.write_to(&mut context, "rootfs").expect("write the files");
    context
        .add("Dockerfile", 0o644, dockerfile.as_bytes())
        .expect("add Dockerfile");
    docker
        .build_image(tag, labels, context.into_tar().expect("tar"))
        .await
        .expect("build a local test image");
}

fn test_cluster(docker: &Docker, name: &str, image: &str, kubeconfig: &Path) -> KindCluster {
    KindCluster {
        docker: docker.clone(),
        name: name.to_string(),
        node_image: image.to_string(),
        ingress_port: None,
        admin_port: None,
        timeout: Duration::from_secs(20),
        retain: false,
        network: format!("{name}-net"),
        kubeconfig: kubeconfig::Files::new(vec![kubeconfig.to_path_buf()]),
        privileged: false,
        passed_env: BTreeMap::new(),
    }
}

/// Everything carrying the loop's labels, plus the test network and the node container by name.
async fn leftovers(docker: &Docker, cluster: &KindCluster) -> Vec<String> {
    let labels = labels::for_loop(&cluster.name);
    let mut left: Vec<String> = Vec::new();
    left.extend(
        docker
            .list_containers(&labels)
            .await
            .unwrap()
            .into_iter()
            .map(|c| format!("container {c}")),
    );
    left.extend(
        docker
            .list_networks(&labels)
            .await
            .unwrap()
            .into_iter()
            .map(|n| format!("network {n}")),
    );
    left.extend(
        docker
            .list_volumes(&labels)
            .await
            .unwrap()
            .into_iter()
            .map(|v| format!("volume {v}")),
    );
    if docker.inspect_container(&cluster.node_name()).await.unwrap().is_some() {
        left.push(format!("container {}", cluster.node_name()));
    }
    if docker.inspect_network(&cluster.network).await.unwrap().is_some() {
        left.push(format!("network {}", cluster.network));
    }
    left
}

/// A container that only sleeps: something to attach or exec into.
const SLEEPER_DOCKERFILE: &str = "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/bin/sleep\", \"300\"]\n";

const STAND_IN_DOCKERFILE: &str = "FROM scratch\nCOPY rootfs/ /\n\
    ENTRYPOINT [\"/bin/sh\", \"-c\", \"echo '[  OK  ] Reached target multi-user.target - Multi-User System.'; exec sleep 300\"]\n";

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn offline_missing_node_image_stops_before_anything_is_made() {
    let docker = docker().await;
    let name = unique("offline");
    let dir = tempfile::tempdir().unwrap();
    // a registry on a closed loopback port: the pull fails at once, and no traffic leaves the machine
    let image = format!("127.0.0.1:1/restate-dev-test/{name}:v1");
    let cluster = test_cluster(&docker, &name, &image, &dir.path().join("config"));

    let error = cluster
        .preflight(&ui())
        .await
        .expect_err("a missing, unpullable image must stop `up`");
    assert_eq!(error.kind, Kind::Prerequisite, "{error}");
    assert!(error.message.contains(&image), "{error}");
    assert!(error.hint.as_deref().unwrap_or("").contains("docker load"), "{error}");
    assert_eq!(leftovers(&docker, &cluster).await, Vec::<String>::new());
    assert!(!dir.path().join("config").exists());
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn the_network_is_created_reused_and_removed_only_when_ours_and_unused() {
    let docker = docker().await;
    let name = unique("network");
    let network = format!("{name}-net");
    let (made, ensured) = network::ensure(&docker, &network).await.unwrap();
    assert!(ensured.created(), "{ensured:?}");
    let (reused, again) = network::ensure(&docker, &network).await.unwrap();
    assert_eq!((again, &reused.id), (network::Ensured::Reused, &made.id));
    let info = docker.inspect_network(&network).await.unwrap().expect("exists");
    assert_eq!(info.options["com.docker.network.bridge.enable_ip_masquerade"], "true");
    assert_ipv4_and_maybe_ipv6(&info.subnets, &ensured);
    let bridge = docker.inspect_network("bridge").await.unwrap().expect("default bridge");
    assert_eq!(
        info.options.get("com.docker.network.driver.mtu"),
        bridge
            .options
            .get("com.docker.network.driver.mtu")
            .filter(|m| m.as_str() != "0")
    );
    // shared by every loop's cluster: ours, but no one loop's
    assert_eq!(info.labels, labels::shared());

    // a container on it keeps it
    let image = format!("restate-dev-test/{name}:v1");
    build_from_host(
        &docker,
        &image,
        &labels::for_loop(&name),
        &["sleep"],
        SLEEPER_DOCKERFILE,
    )
    .await;
    let mut spec = ContainerSpec::new(format!("{name}-user"), &image, labels::for_loop(&name));
    spec.network = Some(network.clone());
    docker.run_container(&spec).await.unwrap();
    let outcome = network::remove_if_unused(&docker, &network).await.unwrap();
    docker.remove_container(&spec.name).await.unwrap();
    assert_eq!(outcome, network::Outcome::InUse(vec![spec.name.clone()]));
    assert_eq!(
        network::remove_if_unused(&docker, &network).await.unwrap(),
        network::Outcome::Removed
    );
    assert_eq!(
        network::remove_if_unused(&docker, &network).await.unwrap(),
        network::Outcome::Missing
    );

    // a network someone else made is never removed
    let foreign = NetworkSpec {
        name: format!("{name}-foreign"),
        labels: BTreeMap::new(),
        mtu: None,
        masquerade: true,
    };
    docker.create_network(&foreign).await.unwrap();
    let outcome = network::remove_if_unused(&docker, &foreign.name).await.unwrap();
    docker.remove_network(&foreign.name).await.unwrap();
    docker.remove_image(&image).await.unwrap();
    assert_eq!(outcome, network::Outcome::NotOurs);
}

/// Several `up`s (and the kind CLI) may create the shared network at once, and an older release may have left
/// duplicates: every `ensure` must end on one network, the same for all, with our empty duplicates removed.
#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn concurrent_creations_of_the_shared_network_end_with_one() {
    let docker = docker().await;
    let name = format!("{}-net", unique("race"));
    let count = |docker: Docker, name: String| async move { docker.networks_named(&name).await.unwrap().len() };

    // Six `up`s at once, each with its own connection, as six processes would have.
    let mut racers = Vec::new();
    for _ in 0..6 {
        let (docker, name) = (Docker::connect().await.unwrap(), name.clone());
        racers.push(tokio::spawn(async move { network::ensure(&docker, &name).await }));
    }
    let mut kept = Vec::new();
    for racer in racers {
        kept.push(racer.await.unwrap().map(|(info, ensured)| (info.id, ensured)));
    }
    let left = count(docker.clone(), name.clone()).await;
    let _ = network::remove_if_unused(&docker, &name).await;
    let kept: Vec<(String, network::Ensured)> = kept.into_iter().map(|k| k.unwrap()).collect();
    assert_eq!(left, 1, "one network must be left: {kept:?}");
    assert!(
        kept.iter().all(|(id, _)| *id == kept[0].0),
        "all must use the same: {kept:?}"
    );
    assert_eq!(kept.iter().filter(|(_, e)| e.created()).count(), 1, "{kept:?}");

    // Duplicates left behind (IPv4 only, as Docker lets a second network of a name be made when no subnet
    // collides): the next `ensure` keeps one and removes the other, where Docker calls the name ambiguous.
    let spec = NetworkSpec {
        name: name.clone(),
        labels: labels::shared(),
        mtu: None,
        masquerade: true,
    };
    let first = docker.create_network(&spec).await.unwrap();
    let second = docker.create_network(&spec).await;
    let settled = network::ensure(&docker, &name).await;
    let left = count(docker.clone(), name.clone()).await;
    let _ = network::remove_if_unused(&docker, &name).await;
    if second.is_err() {
        eprintln!("this engine refuses a second network of one name: no duplicates to settle");
        return;
    }
    let (kept, ensured) = settled.expect("duplicates are settled, not ambiguous");
    assert_eq!((kept.id, ensured, left), (first, network::Ensured::Reused, 1));
}

/// Docker's IPv4 subnet is always there; the IPv6 one exactly when `ensure` says it made one.
fn assert_ipv4_and_maybe_ipv6(subnets: &[String], ensured: &network::Ensured) {
    assert!(subnets.iter().any(|s| !s.contains(':')), "no IPv4 subnet: {subnets:?}");
    let ipv6: Vec<&String> = subnets.iter().filter(|s| s.contains(':')).collect();
    match ensured {
        network::Ensured::DualStack(subnet) => assert_eq!(ipv6, [subnet], "{subnets:?}"),
        network::Ensured::Ipv4Only(reason) => {
            assert!(ipv6.is_empty(), "{subnets:?}");
            eprintln!("this engine refuses IPv6 ({reason}); the IPv4 fallback was taken");
        }
        network::Ensured::Reused => panic!("expected a new network"),
    }
}

/// kind's probing: when another network holds the first ULA subnet, the next attempt's subnet is used. On an
/// engine that refuses IPv6 the squatter cannot be made, and the IPv4 fallback is what this proves instead.
#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn the_ipv6_subnet_moves_on_when_taken_or_falls_back_to_ipv4() {
    let docker = docker().await;
    let name = format!("kf-{}", unique("net6"));
    let squatter = NetworkSpec {
        name: format!("{name}-squatter"),
        labels: labels::for_loop(&name),
        mtu: None,
        masquerade: true,
    };
    let squatted = docker
        .create_network_with_ipv6(&squatter, &network::ula_subnet(&name, 0))
        .await
        .is_ok();
    let ensured = network::ensure(&docker, &name).await;
    let info = docker.inspect_network(&name).await.unwrap();
    let _ = docker.remove_network(&name).await;
    let _ = docker.remove_network(&squatter.name).await;
    let (_, ensured) = ensured.unwrap();
    assert_ipv4_and_maybe_ipv6(&info.expect("created").subnets, &ensured);
    if squatted {
        eprintln!("this engine does IPv6: the second ULA subnet was taken");
        assert_eq!(ensured, network::Ensured::DualStack(network::ula_subnet(&name, 1)));
    } else {
        assert!(matches!(ensured, network::Ensured::Ipv4Only(_)), "{ensured:?}");
    }
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn the_streamed_export_reaches_stdin_byte_for_byte() {
    let docker = docker().await;
    let name = unique("stream");
    let image = format!("restate-dev-test/{name}:v1");
    build_from_host(
        &docker,
        &image,
        &labels::for_loop(&name),
        &["sleep", "sha256sum"],
        SLEEPER_DOCKERFILE,
    )
    .await;
    let spec = ContainerSpec::new(format!("{name}-hasher"), &image, labels::for_loop(&name));
    docker.run_container(&spec).await.unwrap();

    let seen = Arc::new(Mutex::new((Sha256::new(), 0u64)));
    let tap = seen.clone();
    let output = load::stream_into(&docker, &spec.name, &image, &["/bin/sha256sum"], move |chunk| {
        let mut seen = tap.lock().unwrap();
        seen.0.update(chunk);
        seen.1 += chunk.len() as u64;
    })
    .await;
    docker.remove_container(&spec.name).await.unwrap();
    docker.remove_image(&image).await.unwrap();

    let output = output
        .expect("the exec ran")
        .check(&spec.name, &["sha256sum"])
        .expect("sha256sum succeeded");
    let (hasher, bytes) = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();
    let sent: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let received = output.stdout.split_whitespace().next().unwrap_or_default();
    assert!(
        bytes > 1_000_000,
        "the export of an image with libc in it is over 1 MB, got {bytes}"
    );
    assert_eq!(received, sent, "the container hashed other bytes than the export");
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn a_failed_bootstrap_step_rolls_back_everything_it_made() {
    let docker = docker().await;
    let name = unique("rollback");
    let dir = tempfile::tempdir().unwrap();
    let image = format!("restate-dev-test/{name}-node:v1");
    // boots like a node (prints systemd's ready line) but has no `cat`, so reading /kind/version fails
    build_from_host(
        &docker,
        &image,
        &labels::for_loop(&name),
        &["sh", "sleep"],
        STAND_IN_DOCKERFILE,
    )
    .await;
    let cluster = test_cluster(&docker, &name, &image, &dir.path().join("config"));

    cluster.preflight(&ui()).await.expect("the image is local");
    let error = cluster
        .ensure(&ui())
        .await
        .err()
        .expect("the stand-in cannot be bootstrapped");
    let left = leftovers(&docker, &cluster).await;
    docker.remove_image(&image).await.unwrap();

    assert_eq!(error.kind, Kind::Failed, "{error}");
    assert!(error.to_string().contains("/kind/version"), "{error}");
    assert!(
        error
            .details
            .iter()
            .any(|d| d.starts_with("node log |") && d.contains("Multi-User System")),
        "the node's log is shown: {error}"
    );
    assert_eq!(left, Vec::<String>::new());
    assert!(!dir.path().join("config").exists());
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn retain_keeps_a_failed_node_and_delete_removes_it_with_its_volume() {
    let docker = docker().await;
    let name = unique("retain");
    let dir = tempfile::tempdir().unwrap();
    let image = format!("restate-dev-test/{name}-node:v1");
    build_from_host(
        &docker,
        &image,
        &labels::for_loop(&name),
        &["sh", "sleep"],
        STAND_IN_DOCKERFILE,
    )
    .await;
    let mut cluster = test_cluster(&docker, &name, &image, &dir.path().join("config"));
    cluster.retain = true;

    let error = cluster
        .ensure(&ui())
        .await
        .err()
        .expect("the stand-in cannot be bootstrapped");
    assert!(error.to_string().contains("--retain"), "{error}");
    let node = docker
        .inspect_container(&cluster.node_name())
        .await
        .unwrap()
        .expect("kept");
    assert_eq!(node.labels[node::CLUSTER_LABEL], name);
    assert_eq!(node.labels[node::ROLE_LABEL], "control-plane");
    let published: Vec<u16> = node.ports.iter().map(|(container, _)| *container).collect();
    assert_eq!(published, [API_SERVER_PORT, ADMIN_NODE_PORT, INGRESS_NODE_PORT]);
    let volumes = docker.list_volumes(&labels::for_loop(&name)).await.unwrap();
    assert_eq!(volumes.len(), 1, "the /var volume carries our labels: {volumes:?}");

    // `up` again on the stopped node starts it (and then fails, as the stand-in has no admin.conf to read)
    docker
        .stop_container(&cluster.node_name(), Duration::from_secs(1))
        .await
        .unwrap();
    let again = cluster
        .ensure(&ui())
        .await
        .err()
        .expect("the stand-in has no admin.conf");
    assert!(again.to_string().contains("admin.conf"), "{again}");
    let node = docker
        .inspect_container(&cluster.node_name())
        .await
        .unwrap()
        .expect("still there");
    assert!(node.running, "the stopped node was started again");

    // running but half-made (no admin.conf), as an interrupted `up` leaves it: `up` recreates it, not reuses it
    let third = cluster
        .ensure(&ui())
        .await
        .err()
        .expect("the stand-in cannot be bootstrapped");
    assert!(third.to_string().contains("--retain"), "{third}");
    let recreated = docker
        .inspect_container(&cluster.node_name())
        .await
        .unwrap()
        .expect("kept again");
    assert_ne!(recreated.id, node.id, "the half-made node was recreated");

    let removed = cluster.delete(&ui()).await.expect("delete");
    let left = leftovers(&docker, &cluster).await;
    docker.remove_image(&image).await.unwrap();
    assert!(removed.iter().any(|r| r.contains(&cluster.node_name())), "{removed:?}");
    assert!(removed.iter().any(|r| r.contains(&cluster.network)), "{removed:?}");
    assert_eq!(left, Vec::<String>::new());
}

/// The node container as the engine made it: proxies with NO_PROXY naming the network's real subnets (made just
/// before the node), the snapshotter override, and the control plane's KUBECONFIG.
#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn the_node_gets_the_passed_variables_with_the_networks_subnets() {
    let docker = docker().await;
    let name = format!("kf-{}", unique("env"));
    let dir = tempfile::tempdir().unwrap();
    let image = format!("restate-dev-test/{name}-node:v1");
    build_from_host(
        &docker,
        &image,
        &labels::for_loop(&name),
        &["sh", "sleep"],
        STAND_IN_DOCKERFILE,
    )
    .await;
    let mut cluster = test_cluster(&docker, &name, &image, &dir.path().join("config"));
    cluster.retain = true;
    cluster.passed_env = BTreeMap::from([
        ("https_proxy".to_string(), "http://proxy.invalid:3128".to_string()),
        (snapshotter::VARIABLE.to_string(), "native".to_string()),
    ]);
    let error = cluster
        .ensure(&ui())
        .await
        .err()
        .expect("the stand-in cannot be bootstrapped");
    let inspected = docker
        .client()
        .inspect_container(&cluster.node_name(), None)
        .await
        .map(|c| c.config.and_then(|c| c.env).unwrap_or_default());
    let subnets = docker
        .inspect_network(&cluster.network)
        .await
        .unwrap()
        .map(|n| n.subnets)
        .unwrap_or_default();
    cluster.delete(&ui()).await.expect("delete");
    let left = leftovers(&docker, &cluster).await;
    docker.remove_image(&image).await.unwrap();
    assert!(error.to_string().contains("--retain"), "{error}");
    let env = inspected.expect("the kept node");
    assert!(!subnets.is_empty());
    let no_proxy = format!(
        "NO_PROXY={},10.96.0.0/16,10.244.0.0/16,{},.svc,.svc.cluster,.svc.cluster.local",
        subnets.join(","),
        cluster.node_name()
    );
    for expected in [
        "HTTPS_PROXY=http://proxy.invalid:3128",
        "https_proxy=http://proxy.invalid:3128",
        &no_proxy,
        "KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER=native",
        "KUBECONFIG=/etc/kubernetes/admin.conf",
    ] {
        assert!(env.iter().any(|e| e == expected), "{expected} not in {env:?}");
    }
    assert_eq!(left, Vec::<String>::new());
}

/// Not a test: the measuring harness of scripts/measure-image-load.sh, which builds the image and the sink
/// container and passes their names. Prints figures; asserts only that both paths delivered the same bytes.
#[tokio::test]
#[ignore = "a measurement, run by scripts/measure-image-load.sh"]
async fn measure_image_load() {
    use std::time::Instant;
    use tokio::io::AsyncWriteExt;

    let image = std::env::var("MEASURE_IMAGE").expect("MEASURE_IMAGE names the image to load");
    let sink = std::env::var("MEASURE_CONTAINER").expect("MEASURE_CONTAINER names a container with /bin/sha256sum");
    let rounds: usize = std::env::var("MEASURE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let docker = docker().await;
    let cmd = ["/bin/sha256sum"];
    let dir = tempfile::tempdir().unwrap();

    let streamed = || async {
        let started = Instant::now();
        let out = load::stream_into(&docker, &sink, &image, &cmd, |_| {}).await.unwrap();
        (started.elapsed(), out.check(&sink, &cmd).unwrap().stdout)
    };
    // kind's way: `docker save` into a temporary file, then the file copied into the node's stdin
    let via_file = || async {
        let started = Instant::now();
        let path = dir.path().join("image.tar");
        let mut file = tokio::fs::File::create(&path).await.unwrap();
        let mut export = std::pin::pin!(docker.export_image(&image));
        while let Some(chunk) = export.next().await {
            file.write_all(&chunk.unwrap()).await.unwrap();
        }
        file.sync_all().await.unwrap();
        drop(file);
        let reader = tokio::fs::File::open(&path).await.unwrap();
        let input = tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024)
            .map(|chunk| chunk.map_err(|e| crate::error::Error::failed("read").source(e)));
        let out = docker.exec_with_stdin(&sink, &cmd, input).await.unwrap();
        std::fs::remove_file(&path).unwrap();
        (started.elapsed(), out.check(&sink, &cmd).unwrap().stdout)
    };

    let size = docker.inspect_image(&image).await.unwrap().expect("image").size;
    let (_, warm) = streamed().await;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (t, hash) = streamed().await;
        assert_eq!(hash, warm);
        a.push(t);
        let (t, hash) = via_file().await;
        assert_eq!(hash, warm, "both paths deliver the same bytes");
        b.push(t);
    }
    a.sort();
    b.sort();
    let (a, b) = (a[rounds / 2], b[rounds / 2]);
    let mb = size as f64 / 1e6;
    println!("image size:            {mb:.1} MB");
    println!(
        "streamed (median of {rounds}): {:.3} s ({:.0} MB/s)",
        a.as_secs_f64(),
        mb / a.as_secs_f64()
    );
    println!(
        "save to file + copy:   {:.3} s ({:.0} MB/s)",
        b.as_secs_f64(),
        mb / b.as_secs_f64()
    );
    println!("ratio file+copy / streamed: {:.2}", b.as_secs_f64() / a.as_secs_f64());
}

/// A container with the node's name that this loop did not make: one without labels, and one the kind CLI
/// made (its cluster label, without ours; running, with no admin.conf, which an older `ensure` took for a node
/// left half-made by an interrupted `up`, and removed). Neither is reused, recreated or deleted.
#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn a_foreign_container_with_the_node_name_is_not_taken_over() {
    let docker = docker().await;
    let name = unique("foreign");
    let dir = tempfile::tempdir().unwrap();
    let image = format!("restate-dev-test/{name}:v1");
    // No labels on the image: a container inherits them.
    build_from_host(
        &docker,
        &image,
        &BTreeMap::new(),
        &["sleep", "test"],
        SLEEPER_DOCKERFILE,
    )
    .await;
    let cluster = test_cluster(&docker, &name, &image, &dir.path().join("config"));
    let kind_made = BTreeMap::from([
        (node::CLUSTER_LABEL.to_string(), name.clone()),
        ("io.x-k8s.kind.role".to_string(), "control-plane".to_string()),
    ]);
    let mut outcomes = Vec::new();
    for labels in [BTreeMap::new(), kind_made] {
        let spec = ContainerSpec::new(cluster.node_name(), &image, labels.clone());
        docker.run_container(&spec).await.unwrap();
        let preflight = cluster.preflight(&ui()).await.err();
        let ensured = cluster.ensure(&ui()).await.err();
        let removed = cluster.delete(&ui()).await;
        let after = docker.inspect_container(&spec.name).await.unwrap();
        docker.remove_container(&spec.name).await.unwrap();
        outcomes.push((labels, preflight, ensured, removed, after));
    }
    docker.remove_image(&image).await.unwrap();

    for (labels, preflight, ensured, removed, after) in outcomes {
        for error in [preflight, ensured] {
            let error = error.expect("not this loop's node");
            assert_eq!(error.kind, Kind::Prerequisite, "{error}");
            let node = cluster.node_name();
            assert!(
                error
                    .message
                    .starts_with(&format!("container {node} exists and is not loop {name}'s")),
                "{error}"
            );
            if !labels.is_empty() {
                assert!(error.message.contains("made by the kind CLI"), "{error}");
                let hint = error.hint.unwrap_or_default();
                assert!(hint.contains(&format!("--context kind-{name}")), "{hint}");
            }
        }
        assert_eq!(removed.expect("delete finds nothing of ours"), Removed::new());
        let after = after.expect("the container is still there");
        assert!(after.running, "untouched: still running");
        assert_eq!(after.labels, labels, "untouched: its labels as they were");
    }
}

#[tokio::test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
async fn a_taken_host_port_is_refused_by_name_and_free_ones_are_distinct() {
    let docker = docker().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = test_cluster(&docker, &unique("ports"), "unused", &dir.path().join("config"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    cluster.ingress_port = Some(port);
    let error = cluster.pick_ports().expect_err("the port is taken");
    assert_eq!(error.kind, Kind::Prerequisite);
    assert!(error.message.contains(&port.to_string()), "{error}");
    assert!(error.hint.unwrap_or_default().contains("--ingress-port"));

    cluster.ingress_port = None;
    let (api, ingress, admin) = cluster.pick_ports().unwrap();
    assert!(api != ingress && api != admin && ingress != admin);
}
