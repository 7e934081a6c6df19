//! `up` as one pipeline of named, idempotent steps: plan → preflight → cluster → images → install → register →
//! verify. Each step shows progress, and its outcome and duration go into the report that `smoke` writes.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::Result;
use crate::ui::{Step, Ui};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Skipped,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub step: &'static str,
    pub status: Status,
    pub duration_ms: u128,
    pub detail: String,
}

/// What a step reports when it succeeds.
pub struct Done<T> {
    pub value: T,
    pub detail: String,
    /// Nothing needed doing (a re-run over finished work).
    pub skipped: bool,
}

impl<T> Done<T> {
    pub fn ok(value: T, detail: impl Into<String>) -> Self {
        Done {
            value,
            detail: detail.into(),
            skipped: false,
        }
    }
    pub fn skipped(value: T, detail: impl Into<String>) -> Self {
        Done {
            value,
            detail: detail.into(),
            skipped: true,
        }
    }
}

pub struct Pipeline {
    ui: Ui,
    pub steps: Vec<StepRecord>,
    /// The step under way, and since when: a signal can drop a step's work before it records anything.
    running: Option<(&'static str, Instant)>,
    /// Where Restate's admin API answers, once a runtime knows: `smoke` asks it for Restate's version even when a
    /// later step failed.
    admin_url: Option<String>,
}

impl Pipeline {
    pub fn new(ui: &Ui) -> Self {
        Pipeline {
            ui: ui.clone(),
            steps: Vec::new(),
            running: None,
            admin_url: None,
        }
    }

    pub fn reached_admin(&mut self, url: &str) {
        self.admin_url = Some(url.to_string());
    }

    pub fn admin_url(&self) -> Option<&str> {
        self.admin_url.as_deref()
    }

    pub fn ui(&self) -> &Ui {
        &self.ui
    }

    /// Runs one named step with a spinner, and records its outcome.
    pub async fn step<T>(&mut self, name: &'static str, work: impl AsyncFnOnce(&Step) -> Result<Done<T>>) -> Result<T> {
        let step = self.ui.step(name);
        self.running = Some((name, Instant::now()));
        let outcome = work(&step).await;
        self.running = None;
        match outcome {
            Ok(done) => {
                let elapsed = if done.skipped {
                    step.skipped(&done.detail)
                } else {
                    step.done(&done.detail)
                };
                self.record(
                    name,
                    if done.skipped { Status::Skipped } else { Status::Ok },
                    elapsed,
                    done.detail,
                );
                Ok(done.value)
            }
            Err(error) => {
                self.record(name, Status::Failed, step.elapsed(), error.message.clone());
                drop(step);
                Err(error)
            }
        }
    }

    /// Records the step under way, whose work a signal dropped, as failed with `why`.
    pub fn interrupted(&mut self, why: &str) {
        if let Some((name, started)) = self.running.take() {
            self.record(name, Status::Failed, started.elapsed(), why.to_string());
        }
    }

    pub fn record(&mut self, step: &'static str, status: Status, elapsed: Duration, detail: String) {
        self.steps.push(StepRecord {
            step,
            status,
            duration_ms: elapsed.as_millis(),
            detail,
        });
    }

    pub fn total(&self) -> Duration {
        Duration::from_millis(self.steps.iter().map(|s| s.duration_ms as u64).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[tokio::test]
    async fn records_outcomes_in_order() {
        let ui = Ui::new(Some(crate::cli::OutputFormat::Json), true);
        let mut pipeline = Pipeline::new(&ui);
        let a = pipeline
            .step("preflight", async |_| Ok(Done::ok(1, "docker 20.10")))
            .await
            .unwrap();
        let b = pipeline
            .step("cluster", async |_| Ok(Done::skipped(2, "reused")))
            .await
            .unwrap();
        let e = pipeline
            .step("install", async |_| -> Result<Done<()>> { Err(Error::failed("boom")) })
            .await;
        assert_eq!((a, b), (1, 2));
        assert!(e.is_err());
        let statuses: Vec<_> = pipeline.steps.iter().map(|s| (s.step, s.status)).collect();
        assert_eq!(
            statuses,
            [
                ("preflight", Status::Ok),
                ("cluster", Status::Skipped),
                ("install", Status::Failed)
            ]
        );
        assert_eq!(pipeline.steps[2].detail, "boom");
    }
}
