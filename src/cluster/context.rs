//! `--context NAME`: a cluster restate-dev did not make, used as it is and never deleted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::cluster::{Access, Provider, Reach, Removed};
use crate::error::{Error, Result};
use crate::images::REPOSITORY_PREFIX;
use crate::ui::Ui;

/// How long an API server gets to answer before we say it does not.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ExistingContext {
    context: String,
    /// `None`: kube's default (`$KUBECONFIG`, else `~/.kube/config`).
    kubeconfig: Option<PathBuf>,
}

impl ExistingContext {
    pub fn new(context: impl Into<String>, kubeconfig: Option<PathBuf>) -> Self {
        ExistingContext {
            context: context.into(),
            kubeconfig,
        }
    }
}

impl Provider for ExistingContext {
    fn describe(&self) -> String {
        format!("kube context {}", self.context)
    }

    async fn preflight(&self, _ui: &Ui) -> Result<()> {
        let kubeconfig = read_kubeconfig(self.kubeconfig.as_deref())?;
        require_context(&kubeconfig, &self.context)
    }

    async fn ensure(&self, ui: &Ui) -> Result<Access> {
        let step = ui.step("connect");
        let client = connect(&self.context, self.kubeconfig.as_deref()).await?;
        step.done(self.describe());
        Ok(Access {
            context: self.context.clone(),
            client,
            reach: Reach::PortForward,
            created: false,
            node_started: None,
        })
    }

    /// The cluster pulls images itself. A restate-dev image it cannot pull, unless someone put it there (as
    /// `kind load docker-image` does): say so once, and let the rollout wait tell if it is missing.
    async fn load_image(&self, _access: &Access, image: &str, _id: Option<&str>, ui: &Ui) -> Result<bool> {
        if image.starts_with(&format!("{REPOSITORY_PREFIX}/")) {
            ui.info(format!(
                "{image} is a local image: kube context {} must already have it (for a kind cluster, \
                 `kind load docker-image {image}`)",
                self.context
            ));
        }
        Ok(false)
    }

    async fn delete(&self, ui: &Ui) -> Result<Removed> {
        ui.info(format!("{} was not made by restate-dev; it is kept", self.describe()));
        Ok(Removed::new())
    }
}

/// Reads the kubeconfig at `path`, or kube's default one (`$KUBECONFIG`, merged, else `~/.kube/config`).
pub fn read_kubeconfig(path: Option<&Path>) -> Result<Kubeconfig> {
    let (read, shown) = match path {
        Some(path) => (Kubeconfig::read_from(path), path.display().to_string()),
        None => (Kubeconfig::read(), "$KUBECONFIG or ~/.kube/config".to_string()),
    };
    read.map_err(|e| {
        Error::prerequisite(format!("cannot read the kubeconfig ({shown})"))
            .source(e)
            .hint("point KUBECONFIG at a valid kubeconfig, or use the default kind runtime (no --context)")
    })
}

/// A missing context is a missing prerequisite (exit 3, as for a missing image or tool) that lists the contexts
/// there are.
pub fn require_context(kubeconfig: &Kubeconfig, context: &str) -> Result<()> {
    let names: Vec<&str> = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
    if names.contains(&context) {
        return Ok(());
    }
    let closest = names
        .iter()
        .map(|n| (strsim::jaro_winkler(n, context), *n))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n);
    let error = Error::prerequisite(format!("kube context `{context}` does not exist"));
    let error = if names.is_empty() {
        error.detail("the kubeconfig has no contexts")
    } else {
        error.detail(format!("available contexts: {}", names.join(", ")))
    };
    Err(match closest {
        Some(name) => error.hint(format!("did you mean --context {name}?")),
        None => error.hint("pass one of the available contexts (`kubectl config get-contexts`)"),
    })
}

/// A client for `context`, checked to answer (`GET /version`) within [`REACH_TIMEOUT`].
pub async fn connect(context: &str, kubeconfig_path: Option<&Path>) -> Result<kube::Client> {
    let kubeconfig = read_kubeconfig(kubeconfig_path)?;
    require_context(&kubeconfig, context)?;
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        ..KubeConfigOptions::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| {
            Error::prerequisite(format!("kube context `{context}` cannot be used"))
                .source(e)
                .hint("check its cluster and user entries: `kubectl config view --minify --context NAME`")
        })?;
    config.connect_timeout = Some(REACH_TIMEOUT);
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config)
        .map_err(|e| Error::prerequisite(format!("cannot make a client for kube context `{context}`")).source(e))?;
    let unreachable = || {
        Error::prerequisite(format!(
            "the API server of kube context `{context}` ({server}) does not answer"
        ))
        .hint(format!(
            "is the cluster running? `kubectl --context {context} cluster-info` shows what it sees"
        ))
    };
    match tokio::time::timeout(REACH_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(kube::Error::Api(status))) if status.code == 401 || status.code == 403 => {
            Err(Error::prerequisite(format!(
                "the API server of kube context `{context}` ({server}) rejects its credentials: {}",
                status.message
            ))
            .hint(format!(
                "refresh the credentials of `{context}` (log in again with your cloud CLI)"
            )))
        }
        Ok(Err(e)) => Err(unreachable().source(e)),
        Err(_) => Err(unreachable().detail(format!("no answer within {}s", REACH_TIMEOUT.as_secs()))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use tokio::net::TcpListener;

    use super::*;
    use crate::error::Kind;
    use crate::k8s::fake_apiserver::version_only;

    /// A kubeconfig with one context per (name, server).
    pub fn kubeconfig(dir: &Path, contexts: &[(&str, String)]) -> PathBuf {
        let mut text = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
        for (name, server) in contexts {
            text.push_str(&format!("- name: {name}\n  cluster:\n    server: {server}\n"));
        }
        text.push_str("users:\n- name: dev\n  user: {}\ncontexts:\n");
        for (name, _) in contexts {
            text.push_str(&format!(
                "- name: {name}\n  context:\n    cluster: {name}\n    user: dev\n"
            ));
        }
        let path = dir.join("kubeconfig");
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// A port on 127.0.0.1 where nothing listens.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }

    fn quiet() -> Ui {
        Ui::new(None, true)
    }

    #[tokio::test]
    async fn a_reachable_context_is_used_as_it_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = version_only().await;
        let path = kubeconfig(dir.path(), &[("team-dev", format!("http://{server}"))]);
        let provider = ExistingContext::new("team-dev", Some(path));
        provider.preflight(&quiet()).await.expect("context exists");
        let access = provider.ensure(&quiet()).await.expect("reachable");
        assert_eq!(access.context, "team-dev");
        assert_eq!(access.reach, Reach::PortForward);
        assert!(!access.created);
        assert!(provider.delete(&quiet()).await.expect("never deleted").is_empty());
        // Nothing is loaded into a context's cluster: it pulls, or already has what was put there.
        for image in ["ghcr.io/me/greeter:1.0", "restate-dev.local/greeter:abc"] {
            assert!(
                !provider
                    .load_image(&access, image, None, &quiet())
                    .await
                    .expect("no load")
            );
        }
    }

    #[tokio::test]
    async fn a_missing_context_lists_the_available_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = kubeconfig(
            dir.path(),
            &[
                ("team-dev", "http://127.0.0.1:1".into()),
                ("prod", "http://127.0.0.1:2".into()),
            ],
        );
        let error = ExistingContext::new("team-deb", Some(path))
            .preflight(&quiet())
            .await
            .expect_err("missing");
        assert_eq!(error.kind, Kind::Prerequisite);
        assert_eq!(error.message, "kube context `team-deb` does not exist");
        assert_eq!(error.details, ["available contexts: team-dev, prod"]);
        assert_eq!(error.hint.as_deref(), Some("did you mean --context team-dev?"));
    }

    #[tokio::test]
    async fn an_unreadable_kubeconfig_is_a_prerequisite_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = ExistingContext::new("x", Some(dir.path().join("absent")))
            .preflight(&quiet())
            .await
            .expect_err("no kubeconfig");
        assert_eq!(error.kind, Kind::Prerequisite);
        assert!(error.message.starts_with("cannot read the kubeconfig"), "{error}");
    }

    #[tokio::test]
    async fn an_api_server_that_does_not_answer_fails_within_the_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = closed_port();
        let path = kubeconfig(dir.path(), &[("gone", format!("https://127.0.0.1:{port}"))]);
        let started = std::time::Instant::now();
        let error = ExistingContext::new("gone", Some(path))
            .ensure(&quiet())
            .await
            .err()
            .expect("unreachable");
        assert!(started.elapsed() < REACH_TIMEOUT + Duration::from_secs(2));
        assert_eq!(error.kind, Kind::Prerequisite);
        assert_eq!(
            error.message,
            format!("the API server of kube context `gone` (https://127.0.0.1:{port}/) does not answer")
        );
    }

    #[tokio::test]
    async fn a_silent_api_server_fails_at_the_bound_not_a_hang() {
        // Accepts connections and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let path = kubeconfig(dir.path(), &[("silent", format!("http://{addr}"))]);
        let started = std::time::Instant::now();
        let error = ExistingContext::new("silent", Some(path))
            .ensure(&quiet())
            .await
            .err()
            .expect("silent");
        let waited = started.elapsed();
        assert!(
            waited >= REACH_TIMEOUT && waited < REACH_TIMEOUT + Duration::from_secs(3),
            "{waited:?}"
        );
        assert_eq!(error.details, ["no answer within 10s"]);
    }
}
