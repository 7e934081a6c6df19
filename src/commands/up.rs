//! `restate-dev up`: create or reuse, install, register, verify, and say where everything answers.

use crate::cli::UpArgs;
use crate::commands::Ctx;
use crate::config::Origin;
use crate::error::Result;
use crate::pipeline::{Done, Pipeline};
use crate::runtime::{self, Plan, Summary};
use crate::ui::{Ui, format_duration};

pub async fn run(ctx: &Ctx, args: &UpArgs) -> Result<()> {
    let mut pipeline = Pipeline::new(&ctx.ui);
    let summary = execute(ctx, args, &mut pipeline).await?;
    print_summary(&ctx.ui, &summary, &pipeline);
    Ok(())
}

/// The whole pipeline.
pub async fn execute(ctx: &Ctx, args: &UpArgs, pipeline: &mut Pipeline) -> Result<Summary> {
    let plan = plan_step(ctx, args, pipeline).await?;
    runtime::up(&plan, pipeline).await
}

/// The first step, which decides everything and touches nothing; `smoke` runs it too.
pub async fn plan_step(ctx: &Ctx, args: &UpArgs, pipeline: &mut Pipeline) -> Result<Plan> {
    pipeline
        .step("plan", async |_| {
            plan(ctx, args).map(|plan| {
                let detail = format!("loop {} on {}", plan.name, plan.runtime_name());
                Done::ok(plan, detail)
            })
        })
        .await
}

pub fn plan(ctx: &Ctx, args: &UpArgs) -> Result<Plan> {
    let objects = ctx.layers.objects(&ctx.global, &args.objects)?;
    let setup = ctx.layers.setup(&args.setup, &objects)?;
    // Where each runtime-bound setting came from, so that a runtime that cannot honour one can say so.
    let (_, object_origins) = ctx.layers.resolve(&args.objects)?;
    let (_, loop_origins) = ctx.layers.resolve(&args.setup)?;
    let user_set = runtime::RUNTIME_BOUND
        .into_iter()
        .filter_map(|key| {
            [object_origins.of(key), loop_origins.of(key)]
                .into_iter()
                .find(|origin| *origin != Origin::Default)
                .map(|origin| (key, origin))
        })
        .collect();
    Ok(Plan {
        name: objects.name.clone(),
        objects,
        setup,
        retain: args.retain,
        user_set,
    })
}

/// The summary; as JSON it carries the step records too, so that a script can tell what a re-`up` changed.
pub fn print_summary(ui: &Ui, summary: &Summary, pipeline: &Pipeline) {
    if ui.is_json() {
        let mut value = serde_json::to_value(summary).expect("summaries serialize");
        value["steps"] = serde_json::to_value(&pipeline.steps).expect("step records serialize");
        ui.print_json(&value);
        return;
    }
    let took = pipeline.total();
    let mut out = String::new();
    let place = match (&summary.context, &summary.namespace) {
        (Some(context), Some(namespace)) => format!(", context {context}, namespace {namespace}"),
        _ => String::new(),
    };
    out.push_str(&format!(
        "Restate is up: loop {} on {}{place} ({})\n",
        summary.name,
        summary.runtime,
        format_duration(took)
    ));
    out.push_str(&format!("  ingress   {}\n", summary.ingress_url));
    out.push_str(&format!("  admin     {}\n", summary.admin_url));
    out.push_str(&format!("  UI        {}\n", summary.ui_url));
    out.push_str(&format!(
        "  service   {} ({})\n",
        summary.service_uri,
        summary.services.join(", ")
    ));
    if let Some(verified) = &summary.verified {
        out.push_str(&format!("  verified  {} -> {}\n", verified.path, verified.answer));
    }
    out.push_str("\nNext:\n");
    for command in next_commands(ui, summary) {
        out.push_str(&format!("  {command}\n"));
    }
    ui.print(out.trim_end());
}

/// What to run next, spelled for this loop with the flags the user gave (`--name`, `--context`, `--config`).
fn next_commands(ui: &Ui, summary: &Summary) -> Vec<String> {
    let identity = ui.identity();
    // Restate's CLI reads it; its default (port 9070) is not where a loop with free ports answers.
    let mut commands = vec![format!(
        "export RESTATE_ADMIN_URL={}   # for the restate CLI",
        summary.admin_url
    )];
    if summary.services.iter().any(|s| s == "Greeter") {
        commands.push(format!(
            "curl -s {}/Greeter/greet -H 'content-type: application/json' -d '\"Ada\"'",
            summary.ingress_url
        ));
    }
    if summary.forwarded {
        commands.insert(
            0,
            format!(
                "restate-dev port-forward{}   # keeps these URLs answering",
                identity.flags("port-forward")
            ),
        );
    }
    commands.push(format!("restate-dev status{}", identity.flags("status")));
    if let (Some(context), Some(namespace)) = (&summary.context, &summary.namespace) {
        commands.push(format!("kubectl --context {context} -n {namespace} get pods"));
    }
    commands.push(format!("restate-dev down{}", identity.flags("down")));
    commands
}
