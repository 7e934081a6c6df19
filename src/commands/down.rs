//! `restate-dev down`: remove everything `up` made for this name, found by label. Nothing to do is success.

use crate::cli::DownArgs;
use crate::commands::Ctx;
use crate::error::Result;
use crate::lock;
use crate::runtime;

pub async fn run(ctx: &Ctx, args: &DownArgs) -> Result<()> {
    let name = ctx.name()?;
    let _lock = lock::acquire(&name, "down", &ctx.ui).await?;
    let namespace = ctx.namespace()?;
    let removed = runtime::down(&name, &namespace, args, &ctx.ui).await?;
    if ctx.ui.is_json() {
        ctx.ui
            .print_json(&serde_json::json!({ "name": name, "removed": removed }));
    } else if removed.is_empty() {
        ctx.ui.print(format!("Nothing to remove for loop {name}."));
    } else {
        let lines: Vec<String> = removed.iter().map(|r| format!("  removed {r}")).collect();
        ctx.ui.print(format!("Loop {name} is down:\n{}", lines.join("\n")));
    }
    Ok(())
}
