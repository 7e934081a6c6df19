//! A developer's own service image, as the tests need one: fixtures/node-service/service.cjs on this machine's
//! node, with the Restate TypeScript SDK from `$RESTATE_NODE_MODULES` (scripts/install-deps.sh). A base image
//! holds node and the service; each build of the service is `FROM base` plus its environment, which is how a
//! rebuild under the same tag gets a new image ID in a fraction of a second.

use std::path::{Path, PathBuf};

use restate_dev::docker::{BuildContext, Docker};
use restate_dev::images::{self, Rootfs};

const SERVICE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/node-service/service.cjs");
/// The SDK and the one package it depends on.
const PACKAGES: [&str; 2] = ["@restatedev/restate-sdk", "@restatedev/restate-sdk-core"];

fn node_modules() -> PathBuf {
    PathBuf::from(std::env::var_os("RESTATE_NODE_MODULES").expect(
        "RESTATE_NODE_MODULES is not set: run `. scripts/install-deps.sh` first (it installs the TypeScript SDK)",
    ))
}

/// The base image's reference: tagged by a hash of node, the service and the SDK's version, so that tests of
/// one run share it and an unchanged one is never rebuilt. It carries restate-dev's image label, so
/// `down --images` removes it when no container uses it.
pub async fn base(docker: &Docker) -> String {
    let node = which_node();
    let sdk = std::fs::read(node_modules().join(PACKAGES[0]).join("package.json")).unwrap();
    let service = std::fs::read(SERVICE).unwrap();
    let node_tag = images::file_tag(&node).unwrap();
    let tag = images::content_tag(&[node_tag.as_bytes(), &service, &sdk]);
    let reference = format!("{}/test-node-service:{tag}", images::REPOSITORY_PREFIX);
    if docker.image_exists(&reference).await.unwrap() {
        return reference;
    }
    let mut rootfs = Rootfs::default();
    rootfs
        .add_executable(&node, &std::fs::read(&node).unwrap(), "/usr/local/bin/node")
        .unwrap();
    rootfs.add_host_file(Path::new(SERVICE), "/app/service.cjs");
    for package in PACKAGES {
        add_tree(
            &mut rootfs,
            &node_modules().join(package),
            &format!("/app/node_modules/{package}"),
        );
    }
    let mut context = BuildContext::new();
    rootfs.write_to(&mut context, "rootfs").unwrap();
    let dockerfile = format!(
        "FROM scratch\n{}ENV PORT=9080\nWORKDIR /app\nENTRYPOINT [\"/usr/local/bin/node\", \"/app/service.cjs\"]\n",
        rootfs.copy_lines("rootfs")
    );
    context.add("Dockerfile", 0o644, dockerfile.as_bytes()).unwrap();
    docker
        .build_image(&reference, &images::image_labels(), context.into_tar().unwrap())
        .await
        .unwrap();
    reference
}

/// Builds `tag` as one build of the service: the base with `env`; its image ID.
pub async fn build(docker: &Docker, base: &str, tag: &str, env: &[(&str, &str)]) -> String {
    let mut dockerfile = format!("FROM {base}\n");
    for (key, value) in env {
        dockerfile.push_str(&format!("ENV {key}={value:?}\n"));
    }
    let mut context = BuildContext::new();
    context.add("Dockerfile", 0o644, dockerfile.as_bytes()).unwrap();
    docker
        .build_image(tag, &images::image_labels(), context.into_tar().unwrap())
        .await
        .unwrap()
}

fn which_node() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("node"))
        .find(|p| p.is_file())
        .expect("these tests need node on PATH (for the TypeScript SDK service image)")
        .canonicalize()
        .unwrap()
}

fn add_tree(rootfs: &mut Rootfs, host: &Path, inside: &str) {
    for entry in std::fs::read_dir(host).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let path = entry.path();
        if path.is_dir() {
            add_tree(rootfs, &path, &format!("{inside}/{name}"));
        } else {
            rootfs.add_host_file(&path, &format!("{inside}/{name}"));
        }
    }
}
