//! One file per verb.

mod doctor;
mod down;
mod port_forward;
mod render;
mod serve_sample;
mod smoke;
mod status;
mod up;

use crate::cli::{Command, GlobalArgs};
use crate::config::Layers;
use crate::error::{Error, Result};
use crate::signals::Signals;
use crate::ui::Ui;

/// What every command gets: the global flags, the file and environment layers, and the output.
pub struct Ctx {
    pub global: GlobalArgs,
    pub layers: Layers,
    pub ui: Ui,
}

impl Ctx {
    pub fn name(&self) -> Result<String> {
        self.layers.name(&self.global)
    }

    /// The loop's namespace from the config file and environment, for verbs without object flags.
    pub fn namespace(&self) -> Result<String> {
        Ok(self
            .layers
            .objects(&self.global, &crate::cli::ObjectArgs::default())?
            .namespace)
    }
}

/// Runs `command`. A signal ends it at once (exit 130 or 143), except for the verbs that handle signals
/// themselves: `smoke` tears down first, `port-forward` stops forwarding, and the sample drains its connections.
pub async fn run(ctx: &Ctx, command: Command, signals: Signals) -> Result<()> {
    match command {
        Command::ServeSample => serve_sample::run(ctx).await,
        Command::Smoke(args) => smoke::run(ctx, &args, signals).await,
        Command::PortForward(args) => port_forward::run(ctx, &args, signals).await,
        Command::Render(args) => render::run(ctx, &args),
        Command::Up(args) => until_signal(up::run(ctx, &args), signals).await,
        Command::Down(args) => until_signal(down::run(ctx, &args), signals).await,
        Command::Status(args) => until_signal(status::run(ctx, &args), signals).await,
        Command::Doctor(args) => until_signal(doctor::run(ctx, &args), signals).await,
    }
}

async fn until_signal(work: impl Future<Output = Result<()>>, mut signals: Signals) -> Result<()> {
    tokio::select! {
        result = work => result,
        kind = signals.next() => Err(Error::interrupted(kind)),
    }
}
