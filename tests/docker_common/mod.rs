//! What the Docker tests share: unique names, cleanup that runs even when a test panics, and a tiny image
//! assembled from host binaries (no image can be pulled here).

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::docker::{BuildContext, Docker};
use crate::images::Rootfs;

/// A name no other test (here or in another helper's run) uses: prefix, test name, pid, time and a counter.
pub fn unique(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "rdt-{test}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes what a test made, when dropped, through the docker CLI (Drop cannot await).
#[derive(Default)]
pub struct Cleanup {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let run = |args: &[&str], names: &[String]| {
            if !names.is_empty() {
                let _ = std::process::Command::new("docker")
                    .args(args)
                    .args(names)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        };
        run(&["rm", "-f", "-v"], &self.containers);
        run(&["network", "rm"], &self.networks);
        run(&["volume", "rm", "-f"], &self.volumes);
        // Without -f: an image some other container still uses (content-tagged ones are shared) stays.
        run(&["rmi"], &self.images);
    }
}

pub fn quiet_ui() -> crate::ui::Ui {
    crate::ui::Ui::new(None, true)
}

pub async fn docker() -> Docker {
    Docker::connect()
        .await
        .unwrap_or_else(|e| panic!("these tests need a Docker daemon: {e}"))
}

/// Builds `tag` holding /bin/sh, sleep, cat, wc and sha256sum from this machine, with their libraries.
pub async fn toolbox(docker: &Docker, tag: &str, labels: &std::collections::BTreeMap<String, String>) {
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
