//! Where Kubernetes comes from: a kind-compatible cluster made through the Docker API, a minikube profile, or an
//! existing kube context. `up` and `down` talk to all three through [`Provider`].

pub mod context;
pub mod kind;
pub mod minikube;
pub mod select;

use crate::error::Result;
use crate::ui::Ui;

/// A usable cluster, as `ensure` leaves it.
pub struct Access {
    /// The kube context that reaches it (`kind-NAME`, the minikube profile, or the user's context).
    pub context: String,
    pub client: kube::Client,
    pub reach: Reach,
    /// True when this `ensure` created the cluster (false when it reused one).
    pub created: bool,
    /// When the cluster's node last started, where known (kind). Pod statuses older than that were reported
    /// before a restart: the pods' containers are starting again, at new addresses.
    pub node_started: Option<k8s_openapi::jiff::Timestamp>,
}

/// How Restate's ingress and admin are reached from 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The node container publishes these host ports onto the Restate NodePorts.
    NodePorts { ingress: u16, admin: u16 },
    /// A port-forward through the kube API is needed.
    PortForward,
}

/// What `down` removed, one human-readable line per thing.
pub type Removed = Vec<String>;

#[allow(async_fn_in_trait)]
pub trait Provider {
    /// For messages: "kind cluster restate-dev", "minikube profile x", "kube context y".
    fn describe(&self) -> String;
    /// Checks that must pass before anything is created (images present, tools found, ports free).
    async fn preflight(&self, ui: &Ui) -> Result<()>;
    /// Creates the cluster, or reuses (and if stopped, restarts) an existing one.
    async fn ensure(&self, ui: &Ui) -> Result<Access>;
    /// Makes a local Docker image available to the cluster's container runtime; false when it already was.
    /// `id` is the local image's ID when known: the same tag with another ID (a rebuild) must be loaded again.
    async fn load_image(&self, access: &Access, image: &str, id: Option<&str>, ui: &Ui) -> Result<bool>;
    /// Deletes the cluster if restate-dev created it; never a cluster it was only pointed at.
    async fn delete(&self, ui: &Ui) -> Result<Removed>;
}
