//! One file per verb.

mod doctor;
mod render;

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
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Render(args) => render::run(ctx, &args),
        Command::Doctor(args) => doctor::run(ctx, &args).await,
        _ => Err(crate::error::Error::failed("not built yet")),
    }
}
