//! The `kind` network, with kind's semantics: a bridge with masquerade on and the default bridge's MTU, shared
//! by every kind cluster on the machine. kind itself never removes it (kind#1919); we remove it only when we
//! created it and nothing is attached any more.

use crate::docker::{Docker, NetworkSpec};
use crate::error::Result;
use crate::labels;

/// kind's network name.
pub const KIND_NETWORK: &str = "kind";
const MTU_OPTION: &str = "com.docker.network.driver.mtu";

/// Creates the network when missing; true when this call created it. It is shared by every kind cluster, so it
/// carries our label but no loop's: `down` of one loop must not take it from another.
pub async fn ensure(docker: &Docker, network: &str) -> Result<bool> {
    if docker.inspect_network(network).await?.is_some() {
        return Ok(false);
    }
    let spec = NetworkSpec {
        name: network.to_string(),
        labels: labels::shared(),
        mtu: default_bridge_mtu(docker).await?,
        masquerade: true,
    };
    match docker.create_network(&spec).await {
        Ok(_) => Ok(true),
        // another `up` created it between our look and our create
        Err(e) if docker.inspect_network(network).await?.is_some() => {
            tracing::debug!("network {network} appeared while creating it: {e}");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The MTU of Docker's default bridge, when the daemon sets one (a VPN or cloud host often lowers it).
async fn default_bridge_mtu(docker: &Docker) -> Result<Option<u32>> {
    let bridge = docker.inspect_network("bridge").await?;
    Ok(bridge
        .and_then(|b| b.options.get(MTU_OPTION).cloned())
        .and_then(|mtu| mtu.parse().ok())
        .filter(|&mtu| mtu > 0))
}

/// Why the network was kept, or that it was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Removed,
    Missing,
    NotOurs,
    InUse(Vec<String>),
}

/// Removes the network if restate-dev created it and no container is attached.
pub async fn remove_if_unused(docker: &Docker, network: &str) -> Result<Outcome> {
    let Some(info) = docker.inspect_network(network).await? else {
        return Ok(Outcome::Missing);
    };
    if info.labels.get(labels::MANAGED_BY_KEY).map(String::as_str) != Some(labels::MANAGED_BY) {
        return Ok(Outcome::NotOurs);
    }
    if !info.containers.is_empty() {
        return Ok(Outcome::InUse(info.containers));
    }
    Ok(if docker.remove_network(network).await? {
        Outcome::Removed
    } else {
        Outcome::Missing
    })
}
