//! `restate-dev up`: create or reuse, install, register, verify, and say where everything answers.

use crate::cli::UpArgs;
use crate::commands::Ctx;
use crate::config::{Origin, Record, VERIFY_KEYS};
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::images;
use crate::lock;
use crate::pipeline::{Done, Pipeline};
use crate::runtime::{self, Plan, Summary, record};
use crate::ui::{Ui, format_duration};

pub async fn run(ctx: &Ctx, args: &UpArgs) -> Result<()> {
    let _lock = lock::acquire(&ctx.name()?, "up", &ctx.ui).await?;
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
            plan(ctx, args).await.map(|plan| {
                let detail = format!("loop {} on {}", plan.name, plan.runtime_name());
                Done::ok(plan, detail)
            })
        })
        .await
}

/// The settings: those given, over what is recorded on the loop when it exists (so a bare `up --name X` re-ups
/// it as it is). Each recorded value a given one changes is said in one line; a loop cannot change its runtime.
pub async fn plan(ctx: &Ctx, args: &UpArgs) -> Result<Plan> {
    let name = ctx.name()?;
    // A loop on an existing context is never recorded here: with one, a local loop of the name is another loop.
    let docker = match ctx.context(args.setup.place.context.as_deref()) {
        Some(_) => None,
        // The preflight says so, after the settings were checked.
        None => Docker::connect().await.ok(),
    };
    let found = match &docker {
        Some(docker) => record::find(docker, &name).await?,
        None => None,
    };
    let mut layers = ctx.layers.clone();
    if let Some(found) = &found {
        layers = layers.with_record(&name, &found.record);
    }
    let objects = layers.objects(&ctx.global, &args.objects)?;
    if let (Some(docker), Some(found)) = (&docker, &found) {
        let image_given = args.objects.service_image.is_some() || ctx.layers.scalar("service-image").is_some();
        if !found.recorded && !image_given {
            keeps_its_service(docker, &name, &found.record, &objects.namespace).await?;
        }
    }
    let recorded_image = found.as_ref().and_then(|f| f.record.get("service-image"));
    if objects.service_image.is_none() && recorded_image.is_some() {
        // The recorded proof was of the custom image; the sample has its own.
        layers.forget_recorded(VERIFY_KEYS);
    }
    let setup = layers.setup(&args.setup, &objects)?;
    // What the runtime cannot honour is warned about, not recorded: it was not applied.
    let (mut record, origins) = layers.record(&args.objects, &args.setup, &setup.runtime)?;
    for key in runtime::ignored_keys(&setup.runtime) {
        record.0.remove(*key);
    }
    if let Some(found) = &found {
        if found.record.place() != record.place() {
            return Err(cannot_move(&name, &found.record, &record));
        }
        if found.recorded {
            for change in found.record.changes(&record) {
                ctx.ui.info(change);
            }
        }
    }
    // Where each runtime-bound setting came from, so that a runtime that cannot honour one can say so; a
    // recorded one was said when it was given.
    let user_set = runtime::RUNTIME_BOUND
        .into_iter()
        .filter_map(|key| {
            let origin = origins.of(key);
            (!matches!(origin, Origin::Default | Origin::Record(_))).then_some((key, origin))
        })
        .collect();
    Ok(Plan {
        name: objects.name.clone(),
        objects,
        setup,
        retain: args.retain,
        record,
        user_set,
    })
}

/// A loop without a record (made by an older restate-dev, or its record volume pruned) that runs a service of
/// the user's: a bare `up` would take it for the sample's loop, replace the image by the sample and register that
/// over it. Refused unless the loop runs the sample, or its cluster cannot say and the error says why.
async fn keeps_its_service(docker: &Docker, name: &str, found: &Record, namespace: &str) -> Result<()> {
    let live = match found.place().as_str() {
        "docker" => runtime::docker::service_image(docker, name).await,
        _ => runtime::kube::service_image(Some(docker), name, namespace).await,
    };
    let lost = format!(
        "loop {name} exists on {} but has no record of its settings (an older restate-dev made it, or its record \
         volume was removed)",
        found.place()
    );
    let error = match live {
        Ok(Some(image)) if images::is_sample(&image) => return Ok(()),
        Ok(None) => return Ok(()),
        Ok(Some(image)) => Error::usage(format!(
            "{lost}, and its service runs {image}, not the built-in sample: a bare `up` would replace it"
        )),
        Err(e) => Error::usage(format!(
            "{lost}, and its cluster did not say which service image it runs ({}): a bare `up` could replace it \
             by the built-in sample",
            e.message
        )),
    };
    Err(error.hint(format!(
        "say what it runs: `restate-dev up --name {name} --service-image IMAGE --verify Service/handler` (or \
         --no-verify instead of --verify), or `--service-image sample` for the built-in sample"
    )))
}

/// A loop stays where it was made: on another runtime or context, `up` would make a second loop of that name
/// and leave the first one behind, where no command of this name would reach it.
fn cannot_move(name: &str, old: &Record, new: &Record) -> Error {
    Error::usage(format!(
        "loop {name} runs on {}, and cannot move to {}: `up` would leave the {} loop behind",
        old.place(),
        new.place(),
        old.place()
    ))
    .hint(format!(
        "`restate-dev down --name {name} {}` removes it first, or give the new loop another --name",
        old.place_flag()
    ))
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
