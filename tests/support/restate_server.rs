//! The real restate-server (`$RESTATE_SERVER_BIN`, installed by scripts/install-deps.sh) on loopback with known
//! ports and its own data directory, killed by its PID when dropped. Shared by tests/restate_real.rs and the
//! orchestration test in src/runtime/kube_tests.rs (through `#[path]`), so it uses nothing but std and tempfile.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct RestateServer {
    child: Child,
    /// The admin API's port on 127.0.0.1.
    pub admin: u16,
    /// The ingress's port on 127.0.0.1.
    pub ingress: u16,
    /// Its stdout and stderr.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl RestateServer {
    /// Starts it; the caller waits for health with its own client.
    pub fn start() -> RestateServer {
        let bin = std::env::var("RESTATE_SERVER_BIN").unwrap_or_else(|_| {
            panic!("RESTATE_SERVER_BIN is not set: run `. scripts/install-deps.sh` first to install restate-server")
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let [admin, ingress, node] = free_ports::<3>();
        let log = dir.path().join("restate-server.log");
        let out = File::create(&log).expect("log file");
        let child = Command::new(&bin)
            .args(["--bind-ip", "127.0.0.1", "--bind-port", &node.to_string()])
            .args(["--listen-mode", "tcp", "--node-name", "test", "--no-logo", "--base-dir"])
            .arg(dir.path().join("data"))
            .env("RESTATE_DISABLE_TELEMETRY", "true")
            .env("RESTATE_ADMIN__BIND_ADDRESS", format!("127.0.0.1:{admin}"))
            .env("RESTATE_INGRESS__BIND_ADDRESS", format!("127.0.0.1:{ingress}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        RestateServer {
            child,
            admin,
            ingress,
            log,
            _dir: dir,
        }
    }

    /// The last lines of its log, for a failing assertion's message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("--- last lines of {} ---\n{tail}", self.log.display())
    }
}

impl Drop for RestateServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `N` distinct ports that were free a moment ago.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let ports: Vec<u16> = listeners.iter().map(|l| l.local_addr().expect("addr").port()).collect();
    ports.try_into().expect("N ports")
}
