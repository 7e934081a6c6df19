//! `--runtime minikube`: a minikube profile named after the loop, driven through the minikube CLI with the
//! docker driver.
//!
//! Whether restate-dev created the profile is noted in a file inside the profile's own directory
//! (`$MINIKUBE_HOME/profiles/NAME/restate-dev.json`): it lives and dies with the profile, so `down` deletes
//! only profiles `up` made, and a profile made by hand and then reused is never deleted.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::cluster::context::connect;
use crate::cluster::select::Env;
use crate::cluster::{Access, Provider, Reach, Removed};
use crate::error::{Context, Error, Result};
use crate::labels;
use crate::ui::Ui;

const INSTALL_HINT: &str = "install minikube (https://minikube.sigs.k8s.io/docs/start/), or use the default kind \
                            runtime, which needs only Docker";
const MARKER: &str = "restate-dev.json";

pub struct Minikube {
    profile: String,
    binary: PathBuf,
    /// minikube's state directory (`~/.minikube`), where profiles live.
    state: PathBuf,
    kubeconfig: Option<PathBuf>,
}

impl Minikube {
    /// Finds the minikube CLI on `env.path`; a missing CLI is a prerequisite error with the install hint.
    pub fn find(profile: &str, env: &Env) -> Result<Self> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let path = env.path.clone().unwrap_or_else(OsString::new);
        let binary = which::which_in("minikube", Some(&path), cwd).map_err(|_| {
            Error::prerequisite("the minikube CLI is not on PATH (needed by --runtime minikube)").hint(INSTALL_HINT)
        })?;
        Ok(Minikube {
            profile: profile.to_string(),
            binary,
            state: state_dir(env)?,
            kubeconfig: env.kubeconfig.clone(),
        })
    }

    fn profile_dir(&self) -> PathBuf {
        self.state.join("profiles").join(&self.profile)
    }

    fn exists(&self) -> bool {
        self.profile_dir().join("config.json").is_file()
    }

    async fn run(&self, args: &[&str]) -> Result<Output> {
        tokio::process::Command::new(&self.binary)
            .args(args)
            .args(["-p", &self.profile])
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| {
                Error::prerequisite(format!("cannot run {}", self.binary.display()))
                    .source(e)
                    .hint(INSTALL_HINT)
            })
    }

    /// Runs minikube and fails with its last output lines when it fails.
    async fn run_ok(&self, args: &[&str]) -> Result<Output> {
        let output = self.run(args).await?;
        if output.status.success() {
            return Ok(output);
        }
        let mut error = Error::failed(format!(
            "`minikube {} -p {}` failed ({})",
            args.join(" "),
            self.profile,
            output.status
        ))
        .hint(format!(
            "see `minikube logs -p {}`; `minikube delete -p {}` starts over",
            self.profile, self.profile
        ));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        for line in &lines[lines.len().saturating_sub(15)..] {
            error = error.detail(*line);
        }
        Err(error)
    }

    /// True when `minikube status` says the host and the API server run.
    async fn running(&self) -> Result<bool> {
        let output = self.run(&["status", "--output", "json"]).await?;
        let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        Ok(status["Host"] == "Running" && status["APIServer"] == "Running")
    }
}

/// `$MINIKUBE_HOME` (minikube appends `.minikube` unless it already ends so), else `~/.minikube`.
fn state_dir(env: &Env) -> Result<PathBuf> {
    match (&env.minikube_home, &env.home) {
        (Some(home), _) if home.file_name().is_some_and(|n| n == ".minikube") => Ok(home.clone()),
        (Some(home), _) => Ok(home.join(".minikube")),
        (None, Some(home)) => Ok(home.join(".minikube")),
        (None, None) => Err(Error::prerequisite("neither MINIKUBE_HOME nor HOME is set")
            .hint("set HOME (or MINIKUBE_HOME) to where minikube keeps its profiles")),
    }
}

fn write_marker(dir: &Path) -> Result<()> {
    let note = serde_json::json!({ "created_by": labels::MANAGED_BY, "labels": labels::for_loop(
        dir.file_name().and_then(|n| n.to_str()).unwrap_or_default()) });
    std::fs::write(dir.join(MARKER), note.to_string())
        .failed(|| format!("cannot note in {} that restate-dev created this profile", dir.display()))
}

impl Provider for Minikube {
    fn describe(&self) -> String {
        format!("minikube profile {}", self.profile)
    }

    async fn preflight(&self, _ui: &Ui) -> Result<()> {
        self.run_ok(&["version"]).await.map(|_| ())
    }

    async fn ensure(&self, ui: &Ui) -> Result<Access> {
        let existed = self.exists();
        if !(existed && self.running().await?) {
            let step = ui.step(if existed {
                "minikube start (existing profile)"
            } else {
                "minikube start"
            });
            let started = self.run_ok(&["start", "--driver=docker"]).await;
            // A failed first start can still leave a profile behind; note it so `down` removes it.
            if !existed && self.profile_dir().is_dir() {
                write_marker(&self.profile_dir())?;
            }
            started?;
            step.done(self.describe());
        }
        let client = connect(&self.profile, self.kubeconfig.as_deref()).await?;
        Ok(Access {
            context: self.profile.clone(),
            client,
            reach: Reach::PortForward,
            created: !existed,
        })
    }

    async fn load_image(&self, _access: &Access, image: &str, ui: &Ui) -> Result<bool> {
        let listed = self.run_ok(&["image", "ls"]).await?;
        let listed = String::from_utf8_lossy(&listed.stdout);
        let present = listed
            .lines()
            .map(str::trim)
            .any(|l| l == image || l == format!("docker.io/{image}"));
        if present {
            return Ok(false);
        }
        let step = ui.step("minikube image load");
        self.run_ok(&["image", "load", image]).await?;
        step.done(image);
        Ok(true)
    }

    async fn delete(&self, ui: &Ui) -> Result<Removed> {
        if !self.profile_dir().join(MARKER).is_file() {
            if self.exists() {
                ui.info(format!("{} was not made by restate-dev; it is kept", self.describe()));
            }
            return Ok(Removed::new());
        }
        let step = ui.step("minikube delete");
        self.run_ok(&["delete"]).await?;
        step.done(self.describe());
        Ok(vec![self.describe()])
    }
}
