//! `--runtime minikube`: a minikube profile named after the loop, driven through the minikube CLI with the
//! docker driver.
//!
//! Whether restate-dev created the profile is noted in a file inside the profile's own directory
//! (`$MINIKUBE_HOME/profiles/NAME/restate-dev.json`): it lives and dies with the profile, so `down` deletes
//! only profiles `up` made, and a profile made by hand and then reused is never deleted.

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
        let path = env.path.clone().unwrap_or_default();
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

    pub fn exists(&self) -> bool {
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
            node_started: None,
        })
    }

    async fn load_image(&self, _access: &Access, image: &str, id: Option<&str>, ui: &Ui) -> Result<bool> {
        let present = match id {
            // By ID when it is known: a rebuild under the same tag must be loaded again.
            Some(id) => {
                let listed = self.run_ok(&["image", "ls", "--format", "json"]).await?;
                holds(&String::from_utf8_lossy(&listed.stdout), image, id)
            }
            None => {
                let listed = self.run_ok(&["image", "ls"]).await?;
                let listed = String::from_utf8_lossy(&listed.stdout);
                listed
                    .lines()
                    .map(str::trim)
                    .any(|l| l == image || l == format!("docker.io/{image}"))
            }
        };
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

/// Whether `minikube image ls --format json` lists `image` with the image ID `id`. The listing's IDs may be
/// short or lack the `sha256:` prefix, so a prefix of at least 12 digits matches; a listing that cannot be read
/// counts as "not there", which costs one needless load rather than a stale image.
fn holds(listing: &str, image: &str, id: &str) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Listed {
        id: String,
        #[serde(default)]
        repo_tags: Vec<String>,
    }
    let digits = |id: &str| id.trim_start_matches("sha256:").to_string();
    let wanted = digits(id);
    let qualified = format!("docker.io/{image}");
    serde_json::from_str::<Vec<Listed>>(listing)
        .unwrap_or_default()
        .iter()
        .filter(|l| l.repo_tags.iter().any(|t| t == image || *t == qualified))
        .any(|l| {
            let listed = digits(&l.id);
            listed.len().min(wanted.len()) >= 12 && (listed.starts_with(&wanted) || wanted.starts_with(&listed))
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::cluster::context::tests::kubeconfig;
    use crate::error::Kind;
    use crate::k8s::fake_apiserver::version_only;

    /// A stand-in for the minikube CLI: logs its arguments and keeps its profiles under the test's state dir.
    const FAKE_MINIKUBE: &str = r#"#!/bin/sh
echo "$*" >> "$STATE/calls"
for a; do profile=$a; done
dir="$STATE/profiles/$profile"
case "$1" in
  version) echo "minikube version: v1.36.0" ;;
  status)
    if [ -f "$dir/running" ]; then
      echo '{"Name":"'$profile'","Host":"Running","Kubelet":"Running","APIServer":"Running"}'
    else
      echo '{"Name":"'$profile'","Host":"Stopped","Kubelet":"Stopped","APIServer":"Stopped"}'; exit 7
    fi ;;
  start)
    mkdir -p "$dir" && echo '{}' > "$dir/config.json"
    if [ -f "$STATE/fail-start" ]; then
      echo "X Exiting due to PROVIDER_DOCKER_NOT_RUNNING: docker is not running" >&2; exit 69
    fi
    touch "$dir/running" ;;
  image)
    case "$2" in
      ls) if [ "$3" = --format ]; then cat "$STATE/images.json" 2>/dev/null || echo '[]'
          else cat "$STATE/images" 2>/dev/null || true; fi ;;
      load) echo "$3" >> "$STATE/images" ;;
    esac ;;
  delete) rm -rf "$dir" ;;
esac
"#;

    struct Fixture {
        dir: tempfile::TempDir,
        env: Env,
    }

    impl Fixture {
        async fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let bin = dir.path().join("bin");
            let state = dir.path().join(".minikube");
            std::fs::create_dir_all(&bin).expect("bin");
            std::fs::create_dir_all(state.join("profiles")).expect("state");
            let script = FAKE_MINIKUBE.replace("$STATE", &state.display().to_string());
            let cli = bin.join("minikube");
            std::fs::write(&cli, script).expect("script");
            std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            let server = version_only().await;
            let kubeconfig = kubeconfig(dir.path(), &[("dev", format!("http://{server}"))]);
            let env = Env {
                path: Some(bin.into_os_string()),
                home: None,
                minikube_home: Some(state),
                kubeconfig: Some(kubeconfig),
            };
            Fixture { dir, env }
        }

        fn state(&self) -> PathBuf {
            self.dir.path().join(".minikube")
        }

        fn calls(&self) -> Vec<String> {
            std::fs::read_to_string(self.state().join("calls"))
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect()
        }
    }

    fn quiet() -> Ui {
        Ui::new(None, true)
    }

    #[test]
    fn a_missing_cli_is_a_prerequisite_error_with_the_install_hint() {
        let empty = tempfile::tempdir().expect("tempdir");
        let env = Env {
            path: Some(empty.path().as_os_str().to_owned()),
            home: Some(empty.path().to_path_buf()),
            ..Env::default()
        };
        let error = Minikube::find("dev", &env).err().expect("no minikube");
        assert_eq!(error.kind, Kind::Prerequisite);
        assert_eq!(
            error.message,
            "the minikube CLI is not on PATH (needed by --runtime minikube)"
        );
        assert!(
            error
                .hint
                .expect("hint")
                .contains("https://minikube.sigs.k8s.io/docs/start/")
        );
    }

    #[test]
    fn minikube_home_is_read_as_minikube_reads_it() {
        let env = |home: &str| Env {
            minikube_home: Some(PathBuf::from(home)),
            ..Env::default()
        };
        assert_eq!(state_dir(&env("/m")).expect("dir"), Path::new("/m/.minikube"));
        assert_eq!(state_dir(&env("/m/.minikube")).expect("dir"), Path::new("/m/.minikube"));
        let home = Env {
            home: Some(PathBuf::from("/home/ada")),
            ..Env::default()
        };
        assert_eq!(state_dir(&home).expect("dir"), Path::new("/home/ada/.minikube"));
    }

    #[tokio::test]
    async fn a_rebuilt_image_under_the_same_tag_is_loaded_again() {
        let fixture = Fixture::new().await;
        let minikube = Minikube::find("dev", &fixture.env).expect("found");
        let access = minikube.ensure(&quiet()).await.expect("created");
        let image = "my/greeter:dev";
        let old = format!("sha256:{}", "a".repeat(64));
        let listing = format!(
            r#"[{{"id":"{}","repoTags":["docker.io/{image}"],"size":"1"}}]"#,
            &old[7..19]
        );
        std::fs::write(fixture.state().join("images.json"), listing).expect("listing");
        let load = |id: String| {
            let (minikube, access) = (&minikube, &access);
            async move {
                minikube
                    .load_image(access, image, Some(&id), &quiet())
                    .await
                    .expect("load")
            }
        };
        assert!(!load(old.clone()).await, "the same ID (listed short) is there already");
        assert!(
            load(format!("sha256:{}", "b".repeat(64))).await,
            "another ID under the tag is loaded"
        );
        let calls = fixture.calls();
        assert_eq!(
            &calls[calls.len() - 3..],
            [
                "image ls --format json -p dev",
                "image ls --format json -p dev",
                "image load my/greeter:dev -p dev",
            ]
        );
        assert!(!holds("not json", image, &old));
    }

    #[tokio::test]
    async fn creates_reuses_loads_into_and_deletes_its_own_profile() {
        let fixture = Fixture::new().await;
        let minikube = Minikube::find("dev", &fixture.env).expect("found");
        minikube.preflight(&quiet()).await.expect("preflight");

        let access = minikube.ensure(&quiet()).await.expect("created");
        assert!(access.created);
        assert_eq!((access.context.as_str(), access.reach), ("dev", Reach::PortForward));
        assert!(fixture.state().join("profiles/dev").join(MARKER).is_file());

        let again = minikube.ensure(&quiet()).await.expect("reused");
        assert!(!again.created);

        let image = "restate-dev.local/greeter:abc";
        assert!(
            minikube
                .load_image(&access, image, None, &quiet())
                .await
                .expect("loaded")
        );
        assert!(
            !minikube
                .load_image(&access, image, None, &quiet())
                .await
                .expect("already there")
        );

        assert_eq!(
            minikube.delete(&quiet()).await.expect("deleted"),
            ["minikube profile dev"]
        );
        assert_eq!(
            fixture.calls(),
            [
                "version -p dev",
                "start --driver=docker -p dev",
                "status --output json -p dev",
                "image ls -p dev",
                "image load restate-dev.local/greeter:abc -p dev",
                "image ls -p dev",
                "delete -p dev",
            ]
        );
    }

    #[tokio::test]
    async fn a_profile_it_did_not_create_is_restarted_but_never_deleted() {
        let fixture = Fixture::new().await;
        let profile = fixture.state().join("profiles/dev");
        std::fs::create_dir_all(&profile).expect("profile");
        std::fs::write(profile.join("config.json"), "{}").expect("config");
        let minikube = Minikube::find("dev", &fixture.env).expect("found");
        let access = minikube.ensure(&quiet()).await.expect("restarted");
        assert!(!access.created);
        assert!(minikube.delete(&quiet()).await.expect("kept").is_empty());
        assert_eq!(
            fixture.calls(),
            ["status --output json -p dev", "start --driver=docker -p dev"]
        );
    }

    #[tokio::test]
    async fn a_failed_start_shows_minikubes_words_and_down_still_cleans_up() {
        let fixture = Fixture::new().await;
        std::fs::write(fixture.state().join("fail-start"), "").expect("fail switch");
        let minikube = Minikube::find("dev", &fixture.env).expect("found");
        let error = minikube.ensure(&quiet()).await.err().expect("start fails");
        assert_eq!(error.kind, Kind::Failed);
        assert!(
            error
                .message
                .starts_with("`minikube start --driver=docker -p dev` failed"),
            "{error}"
        );
        assert_eq!(
            error.details,
            ["X Exiting due to PROVIDER_DOCKER_NOT_RUNNING: docker is not running"]
        );
        assert_eq!(
            minikube.delete(&quiet()).await.expect("deleted"),
            ["minikube profile dev"]
        );
    }
}
