//! `restate-dev status`: what exists for this name, its health, and the URLs. Exit 0 only when healthy.

use crate::cli::StatusArgs;
use crate::commands::{Ctx, describe_loops, other_loops};
use crate::error::{Error, Result};
use crate::runtime;

pub async fn run(ctx: &Ctx, args: &StatusArgs) -> Result<()> {
    let name = ctx.name()?;
    let place = ctx
        .find_loop(&name, args.runtime, args.context.as_deref(), args.namespace.as_deref())
        .await?;
    let status = runtime::status(&name, &place.namespace, place.context.as_deref()).await?;
    if !status.exists() {
        // A loop whose first `up` is still making it is not yet to be found: say so rather than "no loop".
        if let Some(holder) = crate::lock::holder(&name) {
            return Err(
                Error::failed(format!("loop {name} is being made: {holder} is under way"))
                    .hint("run `restate-dev status` again when it has ended"),
            );
        }
        // Not a status to print but an error, said once (as `{"error": …}` with --output json).
        let loops = other_loops().await;
        let hint = match loops.is_empty() {
            false => format!(
                "the loops here are: {}; `restate-dev up` starts one named {name}",
                describe_loops(&loops)
            ),
            true => "no loop exists here; start one with `restate-dev up`".to_string(),
        };
        return Err(Error::failed(format!("no loop named {name} exists")).hint(hint));
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
    // Spelled with where the loop is, so that run as printed it repairs this loop and makes no other.
    let at = match (status.runtime.as_deref(), &status.context) {
        (Some("context"), Some(context)) => format!(" --context {context}"),
        (Some(runtime), _) => format!(" --runtime {runtime}"),
        (None, _) => String::new(),
    };
    Err(Error::failed(format!("loop {name} is not healthy"))
        .hint(format!(
            "`restate-dev up{at}` repairs it; `restate-dev down` removes it"
        ))
        .in_report())
}
