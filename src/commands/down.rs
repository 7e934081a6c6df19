//! `restate-dev down`: remove everything `up` made for this name, found by label. Nothing to do is success.

use crate::cli::DownArgs;
use crate::commands::{Ctx, describe_loops, other_loops};
use crate::error::Result;
use crate::lock;
use crate::runtime;

pub async fn run(ctx: &Ctx, args: &DownArgs) -> Result<()> {
    let name = ctx.name()?;
    let _lock = lock::acquire(&name, "down", &ctx.ui).await?;
    let place = ctx
        .find_loop(&name, args.runtime, args.context.as_deref(), args.namespace.as_deref())
        .await?;
    let args = DownArgs {
        context: place.context,
        ..args.clone()
    };
    let removed = runtime::down(&name, &place.namespace, &args, &ctx.ui).await?;
    // A misspelt name removes nothing, rightly; the loops that do exist show what was meant.
    let others = match removed.is_empty() {
        true => other_loops().await,
        false => Vec::new(),
    };
    if ctx.ui.is_json() {
        let mut value = serde_json::json!({ "name": name, "removed": removed });
        if removed.is_empty() {
            let others: Vec<_> = others
                .iter()
                .map(|(name, place)| serde_json::json!({ "name": name, "runs_on": place }))
                .collect();
            value["other_loops"] = others.into();
        }
        ctx.ui.print_json(&value);
    } else if removed.is_empty() {
        let others = match others.is_empty() {
            false => format!(" The loops here are: {}.", describe_loops(&others)),
            true => String::new(),
        };
        ctx.ui.print(format!("Nothing to remove for loop {name}.{others}"));
    } else {
        let lines: Vec<String> = removed.iter().map(|r| format!("  removed {r}")).collect();
        ctx.ui.print(format!("Loop {name} is down:\n{}", lines.join("\n")));
    }
    Ok(())
}
