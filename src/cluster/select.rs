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

    async fn load_image(&self, access: &Access, image: &str, ui: &Ui) -> Result<bool> {
        match self {
            Selected::Kind(p) => p.load_image(access, image, ui).await,
            Selected::Minikube(p) => p.load_image(access, image, ui).await,
            Selected::Context(p) => p.load_image(access, image, ui).await,
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
