//! What the Docker tests share: unique names, a connected daemon, and cleanup that runs even when a test panics.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::docker::Docker;

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
