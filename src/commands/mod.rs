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
use crate::error::Result;
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

pub async fn run(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Render(args) => render::run(ctx, &args),
        Command::ServeSample => serve_sample::run(ctx).await,
        Command::Up(args) => up::run(ctx, &args).await,
        Command::Down(args) => down::run(ctx, &args).await,
        Command::Status(args) => status::run(ctx, &args).await,
        Command::Smoke(args) => smoke::run(ctx, &args).await,
        Command::Doctor(args) => doctor::run(ctx, &args).await,
        Command::PortForward(args) => port_forward::run(ctx, &args).await,
    }
}
