//! `restate-dev status`: what exists for this name, its health, and the URLs. Exit 0 only when healthy.

use crate::cli::StatusArgs;
use crate::commands::Ctx;
use crate::error::{Error, Result};
use crate::runtime;

pub async fn run(ctx: &Ctx, args: &StatusArgs) -> Result<()> {
    let name = ctx.name()?;
    let namespace = ctx.namespace()?;
    let status = runtime::status(&name, &namespace, args.context.as_deref()).await?;
    if !status.exists() {
        // Not a status to print but an error, said once (as `{"error": …}` with --output json).
        return Err(Error::failed(format!("no loop named {name} exists")).hint("start one with `restate-dev up`"));
    }
    if ctx.ui.is_json() {
        ctx.ui
            .print_json(&serde_json::to_value(&status).expect("status serializes"));
    } else {
        ctx.ui.print(status.to_string());
    }
    if status.healthy {
        return Ok(());
    }
    Err(Error::failed(format!("loop {name} is not healthy"))
        .hint("`restate-dev up` repairs it; `restate-dev down` removes it")
        .in_report())
}
