//! The `kind` network, with kind's semantics (kind v0.33.0 providers/docker/network.go `ensureNetwork`): a
//! bridge with masquerade on, the default bridge's MTU, and an IPv6 ULA subnet derived from the network's name
//! beside Docker's IPv4 one; IPv4 only when the engine cannot do IPv6. It is shared by every kind cluster on the
//! machine. kind itself never removes it (kind#1919); we remove it only when we created it and nothing is
//! attached any more.
//!
//! Several `up`s (and the kind CLI) may create it at once, and Docker before API 1.44 lets each of them make a
//! network of that name. So, as kind's `createNetworkNoDuplicates` does, every create is followed by settling the
//! duplicates: everyone keeps the same one and attaches to it by ID; our empty others are removed.

use std::net::Ipv6Addr;

use sha1::{Digest, Sha1};

use crate::docker::{Docker, NetworkInfo, NetworkSpec};
use crate::error::{Error, Result};
use crate::labels;

/// kind's network name.
pub const KIND_NETWORK: &str = "kind";
const MTU_OPTION: &str = "com.docker.network.driver.mtu";
/// kind probes this many ULA subnets before giving up on overlaps.
const ULA_ATTEMPTS: i32 = 5;

/// What [`ensure`] found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// It existed (or another `up` made it meanwhile).
    Reused,
    /// Created with this IPv6 subnet beside Docker's IPv4 one.
    DualStack(String),
    /// Created IPv4 only: the engine refused IPv6, with this reason.
    Ipv4Only(String),
}

impl Ensured {
    pub fn created(&self) -> bool {
        !matches!(self, Ensured::Reused)
    }

    /// For the step line.
    pub fn describe(&self) -> String {
        match self {
            Ensured::Reused => "reused".into(),
            Ensured::DualStack(subnet) => format!("created, IPv6 {subnet}"),
            Ensured::Ipv4Only(_) => "created, IPv4 only (the engine refuses IPv6)".into(),
        }
    }
}

/// The ULA (fc00::/8) /64 kind gives a network: bytes 2 to 7 of SHA-1(name, attempt as little-endian i32), so
/// that every machine picks the same subnet for `kind` (fc00:f853:ccd:e793::/64) and a collision moves on.
pub fn ula_subnet(name: &str, attempt: i32) -> String {
    let mut hash = Sha1::new();
    hash.update(name.as_bytes());
    hash.update(attempt.to_le_bytes());
    let hash = hash.finalize();
    let mut ip = [0u8; 16];
    ip[0] = 0xfc;
    ip[2..8].copy_from_slice(&hash[2..8]);
    format!("{}/64", Ipv6Addr::from(ip))
}

/// Creates the network when missing; the one to attach to (by its ID) and how it came to be. It is shared by
/// every kind cluster, so it carries our label but no loop's: `down` of one loop must not take it from another.
pub async fn ensure(docker: &Docker, network: &str) -> Result<(NetworkInfo, Ensured)> {
    if let Some(kept) = keep_one(docker, network).await? {
        return Ok((kept, Ensured::Reused));
    }
    let spec = NetworkSpec {
        name: network.to_string(),
        labels: labels::shared(),
        mtu: default_bridge_mtu(docker).await?,
        masquerade: true,
    };
    for attempt in 0..ULA_ATTEMPTS {
        let subnet = ula_subnet(network, attempt);
        let error = match docker.create_network_with_ipv6(&spec, &subnet).await {
            Ok(id) => return settled(docker, network, &id, Ensured::DualStack(subnet)).await,
            Err(error) => error,
        };
        // another `up` created it between our look and our create: the daemon refused a second one, or its
        // subnet overlaps ours (kind checks the same after an overlap)
        if let Some(kept) = keep_one(docker, network).await? {
            tracing::debug!("network {network} appeared while creating it: {error}");
            return Ok((kept, Ensured::Reused));
        }
        let says = daemon_says(&error);
        match refusal(&says) {
            // only the first answer tells whether the engine can do IPv6 at all (kind#1544)
            Refusal::NoIpv6 if attempt == 0 => return create_ipv4_only(docker, &spec, says).await,
            Refusal::Overlap => tracing::debug!("{subnet} overlaps another network; trying the next subnet"),
            _ => return Err(error),
        }
    }
    Err(Error::failed(format!(
        "cannot create network {network}: {ULA_ATTEMPTS} IPv6 subnets overlap other networks"
    ))
    .hint("`docker network ls` shows the networks; remove unused ones with `docker network prune`"))
}

async fn create_ipv4_only(docker: &Docker, spec: &NetworkSpec, reason: String) -> Result<(NetworkInfo, Ensured)> {
    match docker.create_network(spec).await {
        Ok(id) => settled(docker, &spec.name, &id, Ensured::Ipv4Only(reason)).await,
        Err(error) => match keep_one(docker, &spec.name).await? {
            Some(kept) => Ok((kept, Ensured::Reused)),
            None => Err(error),
        },
    }
}

/// After our create of network `id`: the one to use once duplicates are settled. That is ours unless another
/// `up` made one first, in which case ours was removed and theirs is reused.
async fn settled(docker: &Docker, network: &str, id: &str, made: Ensured) -> Result<(NetworkInfo, Ensured)> {
    let kept = keep_one(docker, network).await?.ok_or_else(|| {
        Error::failed(format!("network {network} disappeared right after it was created"))
            .hint("something else removed it; run `restate-dev up` again")
    })?;
    let ensured = if kept.id == id { made } else { Ensured::Reused };
    Ok((kept, ensured))
}

/// The network of this name to use, after removing the empty duplicates that carry our label (others, such as
/// the kind CLI's, are not ours to remove).
async fn keep_one(docker: &Docker, network: &str) -> Result<Option<NetworkInfo>> {
    docker.keep_one_network(network, is_ours).await
}

fn is_ours(network: &NetworkInfo) -> bool {
    network.labels.get(labels::MANAGED_BY_KEY).map(String::as_str) == Some(labels::MANAGED_BY)
}

/// The daemon's own words in an error, where the Docker wrapper put them.
fn daemon_says(error: &Error) -> String {
    error.source.as_ref().map(|s| format!("{s:#}")).unwrap_or_default()
}

#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// IPv6 is disabled in the daemon or the kernel, or ip6tables is missing.
    NoIpv6,
    /// The subnet is taken by another network.
    Overlap,
    Other,
}

/// kind's reading of the daemon's refusals (network.go `isIPv6UnavailableError`, `isPoolOverlapError`).
fn refusal(says: &str) -> Refusal {
    const NO_IPV6: [&str; 3] = [
        "Cannot read IPv6 setup for bridge",
        "Failed to Setup IP tables: Unable to enable NAT rule:  (iptables failed: ip6tables",
        "setting default policy to DROP in FORWARD chain failed:  (iptables failed: ip6tables",
    ];
    if NO_IPV6.iter().any(|m| says.contains(m)) {
        Refusal::NoIpv6
    } else if says.contains("Pool overlaps with other one on this address space")
        || says.contains("networks have overlapping")
    {
        Refusal::Overlap
    } else {
        Refusal::Other
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

/// Removes every network of this name that restate-dev created and no container uses (a stopped or
/// never-started container is still a user: it could not start without it). Duplicates are removed by ID; the
/// outcome is the one that says most: in use, else removed, else not ours, else missing.
pub async fn remove_if_unused(docker: &Docker, network: &str) -> Result<Outcome> {
    let mut outcome = Outcome::Missing;
    for info in docker.networks_named(network).await? {
        let this = if !is_ours(&info) {
            Outcome::NotOurs
        } else if !info.containers.is_empty() {
            Outcome::InUse(info.containers)
        } else if docker.remove_network(&info.id).await? {
            Outcome::Removed
        } else {
            Outcome::Missing
        };
        outcome = match (outcome, this) {
            (Outcome::InUse(mut users), Outcome::InUse(more)) => {
                users.extend(more);
                Outcome::InUse(users)
            }
            (kept @ Outcome::InUse(_), _) | (_, kept @ Outcome::InUse(_)) => kept,
            (Outcome::Removed, _) | (_, Outcome::Removed) => Outcome::Removed,
            (Outcome::NotOurs, _) | (_, Outcome::NotOurs) => Outcome::NotOurs,
            _ => Outcome::Missing,
        };
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ula_subnet_is_kinds() {
        // the subnet every kind user's `kind` network has
        assert_eq!(ula_subnet("kind", 0), "fc00:f853:ccd:e793::/64");
        assert_ne!(ula_subnet("kind", 1), ula_subnet("kind", 0));
        assert!(ula_subnet("kf-other", 0).starts_with("fc00:"));
    }

    #[test]
    fn refusals_are_read_as_kind_reads_them() {
        // bollard's rendering of the daemon's answers
        let said = |m: &str| format!("Docker responded with status code 500: {m}");
        assert_eq!(
            refusal(&said(
                "Cannot read IPv6 setup for bridge br-1234: open /proc/sys/net/ipv6/..."
            )),
            Refusal::NoIpv6
        );
        assert_eq!(
            refusal(&said(
                "Failed to Setup IP tables: Unable to enable NAT rule:  (iptables failed: ip6tables --wait -t nat -I \
                 POSTROUTING: modprobe: can't change directory to '/lib/modules'"
            )),
            Refusal::NoIpv6
        );
        assert_eq!(
            refusal(&said("Pool overlaps with other one on this address space")),
            Refusal::Overlap
        );
        assert_eq!(
            refusal(&said("invalid pool request: networks have overlapping IPv6")),
            Refusal::Overlap
        );
        assert_eq!(refusal(&said("plugin not found")), Refusal::Other);
    }
}
