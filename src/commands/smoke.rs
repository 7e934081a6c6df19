//! `restate-dev smoke`: up, verify and down in one command, for CI, with a JSON report and an exit code.

use serde::Serialize;

use crate::cli::{DownArgs, SmokeArgs};
use crate::commands::{Ctx, up};
use crate::error::{Error, Result};
use crate::pipeline::{Done, Pipeline, StepRecord};
use crate::runtime::{self, Summary};

#[derive(Serialize)]
struct Report<'a> {
    name: &'a str,
    passed: bool,
    duration_ms: u128,
    steps: &'a [StepRecord],
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

pub async fn run(ctx: &Ctx, args: &SmokeArgs) -> Result<()> {
    let name = ctx.name()?;
    let mut pipeline = Pipeline::new(&ctx.ui);
    let outcome = up::execute(ctx, &args.up, &mut pipeline).await;
    // Tear down even when a step failed, so CI machines are left clean; --keep leaves the loop for debugging.
    let teardown = if args.keep {
        None
    } else {
        Some(
            pipeline
                .step("down", async |_| {
                    let plan = up::plan(ctx, &args.up)?;
                    let context = match plan.setup.runtime {
                        crate::config::Runtime::Context(context) => Some(context),
                        _ => None,
                    };
                    let down = DownArgs {
                        keep_cluster: false,
                        images: false,
                        context,
                    };
                    let removed = runtime::down(&name, &plan.objects.namespace, &down, &ctx.ui).await?;
                    Ok(Done::ok((), format!("{} removed", removed.len())))
                })
                .await,
        )
    };
    let error = match (&outcome, teardown) {
        (Err(e), _) => Some(e.to_json()),
        (Ok(_), Some(Err(e))) => Some(e.to_json()),
        _ => None,
    };
    let report = Report {
        name: &name,
        passed: error.is_none(),
        duration_ms: pipeline.total().as_millis(),
        steps: &pipeline.steps,
        summary: outcome.as_ref().ok(),
        error,
    };
    let json = serde_json::to_value(&report).expect("reports serialize");
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&json).expect("JSON values serialize");
        std::fs::write(path, text + "\n")
            .map_err(|e| Error::failed(format!("cannot write the smoke report to {}", path.display())).source(e))?;
    }
    if ctx.ui.is_json() {
        ctx.ui.print_json(&json);
    } else {
        for step in &pipeline.steps {
            ctx.ui.print(format!(
                "{:<10} {:<8} {:>7} ms  {}",
                step.step,
                format!("{:?}", step.status).to_lowercase(),
                step.duration_ms,
                step.detail
            ));
        }
        ctx.ui.print(if report.passed {
            "smoke: passed"
        } else {
            "smoke: FAILED"
        });
    }
    match outcome {
        Err(e) => Err(e.in_report()),
        Ok(_) if !report.passed => Err(Error::failed("smoke: the loop worked but teardown failed").in_report()),
        Ok(_) => Ok(()),
    }
}
