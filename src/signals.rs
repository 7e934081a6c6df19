//! SIGINT and SIGTERM. Once they are caught here the kernel no longer ends the process for us, so every command
//! is raced against them (exit 130 or 143), and a command that must clean up first (`smoke`) makes a second
//! signal end the process at once.

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::error::{Context, Kind, Result};

pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    pub fn install() -> Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).failed(|| "cannot handle SIGINT".into())?,
            terminate: signal(SignalKind::terminate()).failed(|| "cannot handle SIGTERM".into())?,
        })
    }

    /// The next SIGINT (Kind::Interrupted) or SIGTERM (Kind::Terminated).
    pub async fn next(&mut self) -> Kind {
        tokio::select! {
            _ = self.interrupt.recv() => Kind::Interrupted,
            _ = self.terminate.recv() => Kind::Terminated,
        }
    }

    /// From now on, the next signal ends the process at once, with its exit code, after printing `note` on
    /// stderr: what the first one started (a teardown) is abandoned.
    pub fn abort_on_next(mut self, note: String) {
        tokio::spawn(async move {
            let kind = self.next().await;
            crate::ui::eprint_line(&note);
            std::process::exit(kind.exit_code());
        });
    }
}
