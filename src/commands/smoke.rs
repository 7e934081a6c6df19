//! `restate-dev smoke`: up, verify and down in one command, for CI, with a JSON report and an exit code.
//!
//! Smoke removes what it makes, so it refuses a name whose loop exists already: that loop is someone's work
//! (with --keep it removes nothing, so it may use it).
//! It holds the loop's lock from before its claim until its teardown has ended, so no `up` or `down` of the same
//! name runs in between.
//! A signal (Ctrl-C, SIGTERM) stops `up` but not the teardown, which still runs and is reported; a second
//! signal abandons the teardown at once.

use std::sync::LazyLock;
use std::time::SystemTime;

use regex::Regex;
use serde::Serialize;

use crate::cli::{DownArgs, SmokeArgs};
use crate::commands::{Ctx, up};
use crate::config::Runtime;
use crate::error::{Error, Kind, Result};
use crate::lock::{self, LoopLock};
use crate::pipeline::{Done, Pipeline, StepRecord};
use crate::restate::Admin;
use crate::runtime::{self, Plan, Summary, evidence};
use crate::signals::Signals;

#[derive(Serialize)]
struct Report<'a> {
    name: &'a str,
    passed: bool,
    /// RFC 3339, UTC.
    started_at: String,
    finished_at: String,
    duration_ms: u128,
    versions: Versions,
    steps: &'a [StepRecord],
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a Summary>,
    /// The error's own fields: kind, message, cause, hint, details (the logs and events captured before the
    /// teardown), exit_code.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

/// What ran, so that a report read later says which builds it was about.
#[derive(Serialize, Default)]
struct Versions {
    restate_dev: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    restate: Option<String>,
    /// Where `restate` comes from: "admin API" (Restate's `GET /version`), or "image tag" when Restate never
    /// answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    restate_from: Option<&'static str>,
    /// The kind runtime's node image.
    #[serde(skip_serializing_if = "Option::is_none")]
    node_image: Option<String>,
}

pub async fn run(ctx: &Ctx, args: &SmokeArgs, mut signals: Signals) -> Result<()> {
    let name = ctx.name()?;
    let started = SystemTime::now();
    let mut pipeline = Pipeline::new(&ctx.ui);
    let mut versions = Versions {
        restate_dev: env!("CARGO_PKG_VERSION"),
        ..Versions::default()
    };
    let (outcome, teardown) = match claimed_plan(ctx, args, &mut pipeline, &mut signals).await {
        // Nothing was made: there is nothing to tear down.
        Err(error) => (Err(error), None),
        Ok((plan, _lock)) => {
            let outcome = tokio::select! {
                summary = runtime::up(&plan, &mut pipeline) => summary,
                kind = signals.next() => {
                    let error = crate::commands::interrupted(kind);
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
            // Asked before the teardown, which removes Restate.
            versions.restate_from_loop(&plan, &pipeline).await;
            let outcome = match outcome {
                Err(error) if !args.keep => Err(with_loop_logs(error, &plan).await),
                outcome => outcome,
            };
            // Tear down even when a step failed, so CI machines are left clean; --keep leaves the loop for debugging.
            let teardown = match args.keep {
                true => None,
                false => Some(tear_down(ctx, &plan, &mut pipeline).await),
            };
            // The error's evidence (log lines, events) was captured when it was made, before the teardown; its
            // hints to inspect the containers or pods would now name things that are gone.
            let outcome = match &teardown {
                Some(Ok(())) => outcome.map_err(after_teardown),
                _ => outcome,
            };
            (outcome, teardown)
        }
    };
    // The report carries the same hints as stderr: spelled for this loop.
    let identity = ctx.ui.identity();
    let outcome = outcome.map_err(|e| identity.respell_error(e));
    let teardown = teardown.map(|t| t.map_err(|e| identity.respell_error(e)));
    let error = match (&outcome, &teardown) {
        (Err(e), _) => Some(e.fields()),
        (Ok(_), Some(Err(e))) => Some(e.fields()),
        _ => None,
    };
    let report = Report {
        name: &name,
        passed: error.is_none(),
        started_at: rfc3339(started),
        finished_at: rfc3339(SystemTime::now()),
        duration_ms: pipeline.total().as_millis(),
        versions,
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
        kind = signals.next() => Err(crate::commands::interrupted(kind)),
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
                namespace: None,
            };
            let removed = runtime::down(&plan.name, &plan.objects.namespace, &down, &ctx.ui).await?;
            Ok(Done::ok((), format!("{} removed", removed.len())))
        })
        .await
}

impl Versions {
    /// Restate's version as its admin API says it, else the tag of the image it was to run; the node image on
    /// kind.
    async fn restate_from_loop(&mut self, plan: &Plan, pipeline: &Pipeline) {
        let answered = match pipeline.admin_url().map(Admin::new) {
            Some(Ok(admin)) => admin.version().await.ok(),
            _ => None,
        };
        (self.restate, self.restate_from) = match answered {
            Some(version) => (Some(version), Some("admin API")),
            None => match crate::config::validate::image_tag(&plan.objects.restate_image) {
                Some(tag) => (Some(tag.to_string()), Some("image tag")),
                None => (None, None),
            },
        };
        if plan.setup.runtime == Runtime::Kind {
            let default = crate::cluster::kind::DEFAULT_NODE_IMAGE;
            self.node_image = Some(plan.setup.node_image.clone().unwrap_or_else(|| default.to_string()));
        }
    }
}

/// `error` with the loop's last log lines, collected now, before the teardown removes what logged them; as it
/// was when it quotes logs already (a crashed container, a crash-looping pod), or when the user ended `up`.
async fn with_loop_logs(mut error: Error, plan: &Plan) -> Error {
    if matches!(error.kind, Kind::Interrupted | Kind::Terminated) || evidence::quote_logs(&error.details) {
        return error;
    }
    error.details.extend(evidence::loop_logs(plan).await);
    error
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A backticked command that inspects a loop's containers or pods, with the clause around it.
static INSPECTS_LOOP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\s*\([^()]*|;[^;]*)?`(?:docker (?:logs|unpause|inspect|exec)|kubectl) [^`]*`[^();]*\)?").unwrap()
});

/// `error` as it reads after smoke removed the loop: clauses that tell the reader to inspect its containers or
/// pods are dropped from the details, and such a hint is replaced by one that keeps the loop next time.
fn after_teardown(mut error: Error) -> Error {
    error.details = (error.details.iter())
        .map(|line| INSPECTS_LOOP.replace_all(line, "").into_owned())
        .collect();
    if error.hint.as_deref().is_some_and(|hint| INSPECTS_LOOP.is_match(hint)) {
        error.hint = Some(
            "smoke removed the loop, and the evidence above was captured before it did; to inspect it yourself, \
             run `restate-dev smoke --keep` (then `restate-dev down`)"
                .into(),
        );
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_teardown_no_line_sends_the_reader_to_a_removed_container() {
        let error = Error::failed("the service container t-service exited (exit code 1)")
            .detail(
                "container t-service is paused, so the service cannot answer (`docker unpause t-service` resumes it)",
            )
            .detail("container t-service is not running (exited); `docker logs t-service` shows why")
            .detail("| SyntaxError: Unexpected token")
            .hint("`docker logs t-node` shows the node; `restate-dev down` and `up` recreate the cluster");
        let error = after_teardown(error);
        assert_eq!(
            error.details,
            [
                "container t-service is paused, so the service cannot answer",
                "container t-service is not running (exited)",
                "| SyntaxError: Unexpected token",
            ]
        );
        let hint = error.hint.unwrap();
        assert!(hint.contains("smoke --keep"), "{hint}");
        assert!(!hint.contains("docker logs"), "{hint}");
        // A hint that names no container stays.
        let kept = after_teardown(Error::failed("x").hint("fix it, then run `restate-dev up` again"));
        assert_eq!(kept.hint.as_deref(), Some("fix it, then run `restate-dev up` again"));
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        assert_eq!(rfc3339(time), "2027-01-15T08:00:00Z");
    }
}
