//! A kind-compatible cluster, made through the Docker Engine API without the kind CLI: kind's node container,
//! bootstrapped by exec, with kind's labels and a `kind-NAME` kube context, so the kind CLI can see and delete it.

pub mod kubeadm;
pub mod kubeconfig;
pub mod node;

/// kind v0.32's default node image, pinned by digest.
pub const DEFAULT_NODE_IMAGE: &str =
    "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5";

#[cfg(test)]
mod golden;
