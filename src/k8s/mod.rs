//! Kubernetes: the objects `up` installs, and the client layer that applies, waits and diagnoses.

pub mod apply;
pub mod delete;
pub mod diagnose;
#[cfg(test)]
pub mod fake_apiserver;
#[cfg(test)]
pub mod mock;
pub mod objects;
pub mod ownership;
pub mod portforward;
pub mod wait;

use kube::core::{ApiResource, DynamicObject};

/// One object to apply, with what the client needs to address it.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub resource: ApiResource,
    pub namespaced: bool,
    pub object: DynamicObject,
}
