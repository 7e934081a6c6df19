//! `restate-dev smoke`: up, verify and down in one command, for CI, with a JSON report and an exit code.
//!
//! Smoke removes what it makes, so it refuses a name whose loop exists already: that loop is someone's work
//! (with --keep it removes nothing, so it may use it).
//! It holds the loop's lock from before its claim until its teardown has ended, so no `up` or `down` of the same
//! name runs in between.
//! A signal (Ctrl-C, SIGTERM) stops `up` but not the teardown, which still runs and is reported; a second
//! signal abandons the teardown at once.

use serde::Serialize;

use crate::cli::{DownArgs, SmokeArgs};
use crate::commands::{Ctx, up};
use crate::error::{Error, Result};
use crate::lock::{self, LoopLock};
use crate::pipeline::{Done, Pipeline, StepRecord};
use crate::runtime::{self, Plan, Summary};
use crate::signals::Signals;

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

pub async fn run(ctx: &Ctx, args: &SmokeArgs, mut signals: Signals) -> Result<()> {
    let name = ctx.name()?;
    let mut pipeline = Pipeline::new(&ctx.ui);
    let (outcome, teardown) = match claimed_plan(ctx, args, &mut pipeline, &mut signals).await {
        // Nothing was made: there is nothing to tear down.
        Err(error) => (Err(error), None),
        Ok((plan, _lock)) => {
            let outcome = tokio::select! {
                summary = runtime::up(&plan, &mut pipeline) => summary,
                kind = signals.next() => {
                    let error = Error::interrupted(kind);
                    pipeline.interrupted(&error.message);
                    if !args.keep {
                        ctx.ui.warn(format!(
                            "{}: tearing down what smoke made; a second signal abandons it",
                            error.message
                        ));
                    }
                    signals.abort_on_next(ctx.ui.identity().respell(
                        "aborted by a second signal: the teardown did not finish; `restate-dev down` removes what is left",
                    ));
                    Err(error)
                }
            };
            // Tear down even when a step failed, so CI machines are left clean; --keep leaves the loop for debugging.
            let teardown = match args.keep {
                true => None,
                false => Some(tear_down(ctx, &plan, &mut pipeline).await),
            };
            (outcome, teardown)
        }
    };
    // The report carries the same hints as stderr: spelled for this loop.
    let identity = ctx.ui.identity();
    let outcome = outcome.map_err(|e| identity.respell_error(e));
    let teardown = teardown.map(|t| t.map_err(|e| identity.respell_error(e)));
    let error = match (&outcome, &teardown) {
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

/// The plan and the loop's lock, once no loop of that name exists: smoke must not take down a loop it did not
/// make. A signal before anything is made (while waiting for the lock too) just ends smoke.
async fn claimed_plan(
    ctx: &Ctx,
    args: &SmokeArgs,
    pipeline: &mut Pipeline,
    signals: &mut Signals,
) -> Result<(Plan, LoopLock)> {
    let claim = async {
        let lock = lock::acquire(&ctx.name()?, "smoke", &ctx.ui).await?;
        let plan = up::plan_step(ctx, &args.up, pipeline).await?;
        pipeline
            .step("claim", async |_| {
                let found = runtime::existing(&plan).await?;
                if found.is_empty() {
                    let detail = format!("no loop named {} exists", plan.name);
                    return Ok(Done::ok((), detail));
                }
                if args.keep {
                    let detail = format!(
                        "loop {} exists; with --keep, smoke uses it and removes nothing",
                        plan.name
                    );
                    return Ok(Done::skipped((), detail));
                }
                Err(Error::prerequisite(format!(
                    "loop {} exists already ({}); smoke removes the loop it makes, so it does not run on one it \
                     did not make",
                    plan.name,
                    found.join(", ")
                ))
                .hint(format!(
                    "run smoke under a name of its own (`restate-dev smoke --name {}-smoke`), keep the loop with \
                     --keep, or remove it first (`restate-dev down`)",
                    plan.name
                )))
            })
            .await?;
        Ok((plan, lock))
    };
    tokio::select! {
        plan = claim => plan,
        kind = signals.next() => Err(Error::interrupted(kind)),
    }
}

async fn tear_down(ctx: &Ctx, plan: &Plan, pipeline: &mut Pipeline) -> Result<()> {
    pipeline
        .step("down", async |_| {
            let context = match &plan.setup.runtime {
                crate::config::Runtime::Context(context) => Some(context.clone()),
                _ => None,
            };
            let down = DownArgs {
                keep_cluster: false,
                images: false,
                context,
                runtime: None,
            };
            let removed = runtime::down(&plan.name, &plan.objects.namespace, &down, &ctx.ui).await?;
            Ok(Done::ok((), format!("{} removed", removed.len())))
        })
        .await
}
