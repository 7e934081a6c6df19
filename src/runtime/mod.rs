//! The loop's runtimes: plain Docker containers, or Kubernetes (kind-native, minikube, an existing context).
//! `up`, `down` and `status` dispatch here.

use serde::Serialize;

use crate::config::{LoopSettings, ObjectSettings, Runtime};

/// Everything `up` decided before touching anything.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub objects: ObjectSettings,
    pub setup: LoopSettings,
    /// Keep what a failed cluster bootstrap made.
    pub retain: bool,
}

impl Plan {
    pub fn runtime_name(&self) -> String {
        runtime_name(&self.setup.runtime)
    }
}

pub fn runtime_name(runtime: &Runtime) -> String {
    match runtime {
        Runtime::Kind => "kind".into(),
        Runtime::Docker => "docker".into(),
        Runtime::Minikube => "minikube".into(),
        Runtime::Context(_) => "context".into(),
    }
}

/// What `up` made, printed at the end (and as JSON with `--output json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub name: String,
    pub runtime: String,
    /// The kube context, for the Kubernetes runtimes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub ingress_url: String,
    pub admin_url: String,
    /// The URI Restate reaches the service at.
    pub service_uri: String,
    pub deployment_id: String,
    pub services: Vec<String>,
    /// The proving invocation and its answer; None with --no-verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub path: String,
    pub answer: serde_json::Value,
}

/// What `status` found for one loop.
#[derive(Debug, Clone, Serialize)]
pub struct LoopStatus {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    pub healthy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// container, cluster, pod, port-forward.
    pub kind: &'static str,
    pub name: String,
    pub state: String,
    pub healthy: bool,
}

impl LoopStatus {
    pub fn exists(&self) -> bool {
        !self.components.is_empty()
    }
}

impl std::fmt::Display for LoopStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.exists() {
            return write!(f, "No loop named {} exists.", self.name);
        }
        let health = if self.healthy { "healthy" } else { "NOT healthy" };
        let runtime = self.runtime.as_deref().unwrap_or("unknown runtime");
        write!(f, "Loop {} on {runtime}: {health}", self.name)?;
        if let (Some(context), Some(namespace)) = (&self.context, &self.namespace) {
            write!(f, "\n  context   {context} (namespace {namespace})")?;
        }
        if let Some(url) = &self.ingress_url {
            write!(f, "\n  ingress   {url}")?;
        }
        if let Some(url) = &self.admin_url {
            write!(f, "\n  admin     {url}")?;
        }
        for c in &self.components {
            let mark = if c.healthy { "✓" } else { "✗" };
            write!(f, "\n  {mark} {:<12} {:<32} {}", c.kind, c.name, c.state)?;
        }
        Ok(())
    }
}
