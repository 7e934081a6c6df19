//! Which provider serves `--runtime` / `--context`.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cluster::context::ExistingContext;
use crate::cluster::minikube::Minikube;
use crate::cluster::{Access, Provider, Removed};
use crate::config::Runtime;
use crate::error::Result;
use crate::ui::Ui;

/// The parts of the process environment providers look at, so that tests can give their own.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `PATH`, where tools such as `minikube` are found.
    pub path: Option<OsString>,
    /// `HOME`.
    pub home: Option<PathBuf>,
    /// `MINIKUBE_HOME`.
    pub minikube_home: Option<PathBuf>,
    /// A kubeconfig to use instead of kube's default (`$KUBECONFIG`, else `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
}

impl Env {
    pub fn from_process() -> Self {
        Env {
            path: std::env::var_os("PATH"),
            home: std::env::var_os("HOME").map(PathBuf::from),
            minikube_home: std::env::var_os("MINIKUBE_HOME").map(PathBuf::from),
            kubeconfig: None,
        }
    }
}

/// A cluster provider. `K` is the kind-native provider, passed in by its constructor so this module does not
/// depend on it.
pub enum Selected<K> {
    Kind(K),
    Minikube(Minikube),
    Context(ExistingContext),
}

/// The provider for `runtime`; `None` for `--runtime docker`, which has no cluster. `kind` makes the kind-native
/// provider from the loop name.
pub fn select<K: Provider>(
    runtime: &Runtime,
    name: &str,
    env: &Env,
    kind: impl FnOnce(&str) -> Result<K>,
) -> Result<Option<Selected<K>>> {
    Ok(Some(match runtime {
        Runtime::Docker => return Ok(None),
        Runtime::Kind => Selected::Kind(kind(name)?),
        Runtime::Minikube => Selected::Minikube(Minikube::find(name, env)?),
        Runtime::Context(context) => Selected::Context(ExistingContext::new(context, env.kubeconfig.clone())),
    }))
}

impl<K: Provider> Provider for Selected<K> {
    fn describe(&self) -> String {
        match self {
            Selected::Kind(p) => p.describe(),
            Selected::Minikube(p) => p.describe(),
            Selected::Context(p) => p.describe(),
        }
    }

    async fn preflight(&self, ui: &Ui) -> Result<()> {
        match self {
            Selected::Kind(p) => p.preflight(ui).await,
            Selected::Minikube(p) => p.preflight(ui).await,
            Selected::Context(p) => p.preflight(ui).await,
        }
    }

    async fn ensure(&self, ui: &Ui) -> Result<Access> {
        match self {
            Selected::Kind(p) => p.ensure(ui).await,
            Selected::Minikube(p) => p.ensure(ui).await,
            Selected::Context(p) => p.ensure(ui).await,
        }
    }

    async fn load_image(&self, access: &Access, image: &str, id: Option<&str>, ui: &Ui) -> Result<bool> {
        match self {
            Selected::Kind(p) => p.load_image(access, image, id, ui).await,
            Selected::Minikube(p) => p.load_image(access, image, id, ui).await,
            Selected::Context(p) => p.load_image(access, image, id, ui).await,
        }
    }

    async fn delete(&self, ui: &Ui) -> Result<Removed> {
        match self {
            Selected::Kind(p) => p.delete(ui).await,
            Selected::Minikube(p) => p.delete(ui).await,
            Selected::Context(p) => p.delete(ui).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::context::tests::kubeconfig;
    use crate::error::{Error, Kind};

    /// Stands in for the kind provider, which this module does not know.
    struct FakeKind(String);

    impl Provider for FakeKind {
        fn describe(&self) -> String {
            format!("kind cluster {}", self.0)
        }
        async fn preflight(&self, _ui: &Ui) -> Result<()> {
            Ok(())
        }
        async fn ensure(&self, _ui: &Ui) -> Result<Access> {
            Err(Error::failed("not in this test"))
        }
        async fn load_image(&self, _access: &Access, _image: &str, _id: Option<&str>, _ui: &Ui) -> Result<bool> {
            Ok(false)
        }
        async fn delete(&self, _ui: &Ui) -> Result<Removed> {
            Ok(Removed::new())
        }
    }

    fn kind(name: &str) -> Result<FakeKind> {
        Ok(FakeKind(name.to_string()))
    }

    fn quiet() -> Ui {
        Ui::new(None, true)
    }

    fn env_without_tools(dir: &std::path::Path) -> Env {
        Env {
            path: Some(dir.as_os_str().to_owned()),
            home: Some(dir.to_path_buf()),
            minikube_home: None,
            kubeconfig: None,
        }
    }

    #[test]
    fn each_runtime_gets_its_provider() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = env_without_tools(dir.path());
        let describe = |runtime: Runtime| {
            select(&runtime, "dev", &env, kind)
                .expect("selected")
                .map(|p| p.describe())
        };
        assert_eq!(describe(Runtime::Kind).as_deref(), Some("kind cluster dev"));
        assert_eq!(
            describe(Runtime::Context("team".into())).as_deref(),
            Some("kube context team")
        );
        assert_eq!(describe(Runtime::Docker), None);
    }

    #[test]
    fn minikube_without_its_cli_is_a_prerequisite_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = select(&Runtime::Minikube, "dev", &env_without_tools(dir.path()), kind)
            .err()
            .expect("no minikube on PATH");
        assert_eq!(error.kind, Kind::Prerequisite);
        assert!(error.hint.expect("hint").contains("install minikube"));
    }

    #[tokio::test]
    async fn a_missing_context_fails_preflight_with_the_choices() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = env_without_tools(dir.path());
        env.kubeconfig = Some(kubeconfig(dir.path(), &[("kind-dev", "http://127.0.0.1:1".into())]));
        let provider = select(&Runtime::Context("staging".into()), "dev", &env, kind)
            .expect("selected")
            .expect("a cluster provider");
        let error = provider.preflight(&quiet()).await.expect_err("missing context");
        assert_eq!(error.kind, Kind::Prerequisite);
        assert_eq!(error.details, ["available contexts: kind-dev"]);
    }

    #[tokio::test]
    async fn an_unreachable_api_server_fails_ensure_with_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let mut env = env_without_tools(dir.path());
        env.kubeconfig = Some(kubeconfig(dir.path(), &[("far", format!("https://127.0.0.1:{port}"))]));
        let provider = select(&Runtime::Context("far".into()), "dev", &env, kind)
            .expect("selected")
            .expect("a cluster provider");
        provider.preflight(&quiet()).await.expect("the context exists");
        let error = provider.ensure(&quiet()).await.err().expect("unreachable");
        assert_eq!(error.kind, Kind::Prerequisite);
        assert!(error.message.contains("does not answer"), "{error}");
        assert!(error.hint.expect("hint").contains("kubectl --context far cluster-info"));
    }
}
