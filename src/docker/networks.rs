//! Networks: a bridge per loop, found again by label.
//!
//! Docker keys networks by ID, and before API 1.44 it creates a second network of a name that exists (two
//! concurrent creates always can). So a name may stand for several networks, and Docker then refuses to use it
//! ("network … is ambiguous"). [`Docker::keep_one_network`] settles that as kind does
//! (providers/docker/network.go `removeDuplicateNetworks`): keep one, remove the empty others by ID.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::{InspectNetworkOptions, ListNetworksOptions};
use k8s_openapi::jiff::Timestamp;

use super::containers::describe;
use super::{Docker, is_conflict, is_not_found, label_filters, to_btree, to_hash};
use crate::error::Result;

/// A bridge network to create.
#[derive(Debug, Clone, Default)]
pub struct NetworkSpec {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The bridge MTU (`com.docker.network.driver.mtu`); None keeps Docker's default.
    pub mtu: Option<u32>,
    /// IP masquerade for traffic leaving the bridge (`com.docker.network.bridge.enable_ip_masquerade`).
    pub masquerade: bool,
}

/// A network as inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// Names of the containers attached to it.
    pub containers: Vec<String>,
    /// Its IPAM subnets, IPv4 and IPv6, in Docker's order.
    pub subnets: Vec<String>,
    pub created: Option<Timestamp>,
}

/// A network as listed: its ID tells it from others of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRef {
    pub id: String,
    pub name: String,
}

impl NetworkSpec {
    fn options(&self) -> HashMap<String, String> {
        let mut options = HashMap::from([(
            "com.docker.network.bridge.enable_ip_masquerade".to_string(),
            self.masquerade.to_string(),
        )]);
        if let Some(mtu) = self.mtu {
            options.insert("com.docker.network.driver.mtu".into(), mtu.to_string());
        }
        options
    }
}

impl Docker {
    /// Creates a bridge network; its id.
    pub async fn create_network(&self, spec: &NetworkSpec) -> Result<String> {
        self.create_bridge(spec, None).await
    }

    /// Creates a dual-stack bridge network with this IPv6 subnet (Docker picks the IPv4 one); its id. A daemon
    /// that cannot do IPv6 refuses it, with its reason in the error's source.
    pub async fn create_network_with_ipv6(&self, spec: &NetworkSpec, ipv6_subnet: &str) -> Result<String> {
        self.create_bridge(spec, Some(ipv6_subnet)).await
    }

    async fn create_bridge(&self, spec: &NetworkSpec, ipv6_subnet: Option<&str>) -> Result<String> {
        let ipam = ipv6_subnet.map(|subnet| Ipam {
            config: Some(vec![IpamConfig {
                subnet: Some(subnet.to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let request = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some("bridge".into()),
            options: Some(spec.options()),
            labels: Some(to_hash(&spec.labels)),
            enable_ipv6: ipv6_subnet.map(|_| true),
            ipam,
            ..Default::default()
        };
        let created = self
            .client
            .create_network(request)
            .await
            .map_err(|e| self.fail(e, "create network", &spec.name))?;
        Ok(created.id)
    }

    /// None when no such network exists.
    pub async fn inspect_network(&self, name: &str) -> Result<Option<NetworkInfo>> {
        let inspected = match self.client.inspect_network(name, None::<InspectNetworkOptions>).await {
            Ok(n) => n,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.fail(e, "inspect network", name)),
        };
        let mut containers: Vec<String> = inspected
            .containers
            .unwrap_or_default()
            .into_values()
            .filter_map(|c| c.name)
            .collect();
        containers.sort();
        let subnets = inspected
            .ipam
            .and_then(|ipam| ipam.config)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| c.subnet)
            .collect();
        Ok(Some(NetworkInfo {
            id: inspected.id.unwrap_or_default(),
            name: inspected.name.unwrap_or_default(),
            labels: to_btree(inspected.labels),
            options: to_btree(inspected.options),
            containers,
            subnets,
            created: inspected.created.as_deref().and_then(|t| t.parse().ok()),
        }))
    }

    /// Names of the networks carrying every one of `labels` (a name once, however many networks bear it).
    pub async fn list_networks(&self, labels: &BTreeMap<String, String>) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .list_network_refs(label_filters(labels), "list networks labelled", &describe(labels))
            .await?
            .into_iter()
            .map(|n| n.name)
            .collect();
        names.dedup();
        Ok(names)
    }

    /// The networks carrying every one of `labels`, with their IDs, so that duplicates of a name can be told
    /// apart and each removed.
    pub async fn list_labelled_networks(&self, labels: &BTreeMap<String, String>) -> Result<Vec<NetworkRef>> {
        self.list_network_refs(label_filters(labels), "list networks labelled", &describe(labels))
            .await
    }

    async fn list_network_refs(
        &self,
        filters: HashMap<String, Vec<String>>,
        what: &str,
        target: &str,
    ) -> Result<Vec<NetworkRef>> {
        let options = ListNetworksOptions { filters: Some(filters) };
        let list = self
            .client
            .list_networks(Some(options))
            .await
            .map_err(|e| self.fail(e, what, target))?;
        let mut refs: Vec<NetworkRef> = list
            .into_iter()
            .filter_map(|n| {
                Some(NetworkRef {
                    id: n.id?,
                    name: n.name?,
                })
            })
            .collect();
        refs.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(refs)
    }

    /// Every network named exactly `name`, inspected, in the order [`Docker::keep_one_network`] keeps them.
    /// Their `containers` are every container attached, stopped ones included.
    pub async fn networks_named(&self, name: &str) -> Result<Vec<NetworkInfo>> {
        // Docker's name filter matches substrings: the exact match is ours to make.
        let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let mut found = Vec::new();
        // A container created but never started is connected by the name it was given, with no network ID yet:
        // it counts as a user of every network of that name.
        let by_name = self.containers_on_network(name).await?;
        for listed in self.list_network_refs(filters, "list networks named", name).await? {
            if listed.name != name {
                continue;
            }
            // One that vanished since the listing is no longer a duplicate.
            let Some(mut info) = self.inspect_network(&listed.id).await? else {
                continue;
            };
            for container in self
                .containers_on_network(&listed.id)
                .await?
                .into_iter()
                .chain(by_name.clone())
            {
                if !info.containers.contains(&container) {
                    info.containers.push(container);
                }
            }
            found.push(info);
        }
        found.sort_by(keep_order);
        Ok(found)
    }

    /// The one network named `name` to use, when any exists: with several, the first in kind's order (one with
    /// containers), then the oldest. Of the others, those `ours` allows and no container uses are removed by ID;
    /// anything else is left as it is. Every process that settles the same duplicates keeps the same network, and
    /// a network that was alone when someone chose it stays the oldest, so it is never the one removed.
    pub async fn keep_one_network(
        &self,
        name: &str,
        ours: impl Fn(&NetworkInfo) -> bool,
    ) -> Result<Option<NetworkInfo>> {
        let mut networks = self.networks_named(name).await?.into_iter();
        let Some(kept) = networks.next() else {
            return Ok(None);
        };
        for duplicate in networks.filter(|n| ours(n) && n.containers.is_empty()) {
            match self.remove_network(&duplicate.id).await {
                Ok(_) => tracing::debug!("removed network {name} {}: a duplicate of {}", duplicate.id, kept.id),
                // Someone attached a container meanwhile: it is in use, so it stays (and `down` removes it).
                Err(e) if is_conflict(&e) => tracing::debug!("kept duplicate network {name} {}: {e}", duplicate.id),
                Err(e) => return Err(e),
            }
        }
        Ok(Some(kept))
    }

    /// Removes the network; false when it did not exist. Docker refuses while containers are attached.
    pub async fn remove_network(&self, name: &str) -> Result<bool> {
        match self.client.remove_network(name).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.fail(e, "remove network", name)),
        }
    }
}

/// kind's order (`sortNetworkInspectEntries`: the most containers first), then the oldest, then by ID. Age comes
/// before kind's ID so that a network someone already chose (it was the only one, so the oldest) keeps winning.
fn keep_order(a: &NetworkInfo, b: &NetworkInfo) -> std::cmp::Ordering {
    let created = |n: &NetworkInfo| n.created.unwrap_or(Timestamp::MAX);
    b.containers
        .len()
        .cmp(&a.containers.len())
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| a.id.cmp(&b.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(id: &str, created: &str, containers: &[&str]) -> NetworkInfo {
        NetworkInfo {
            id: id.into(),
            name: "n".into(),
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            containers: containers.iter().map(|c| c.to_string()).collect(),
            subnets: Vec::new(),
            created: Some(created.parse().unwrap()),
        }
    }

    #[test]
    fn duplicates_are_kept_in_use_first_then_oldest_then_by_id() {
        let mut networks = [
            network("a1", "2026-01-01T00:00:02Z", &[]),
            network("b2", "2026-01-01T00:00:01.5Z", &[]),
            network("c3", "2026-01-01T00:00:03Z", &["node"]),
            network("a0", "2026-01-01T00:00:02Z", &[]),
        ];
        networks.sort_by(keep_order);
        let ids: Vec<&str> = networks.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["c3", "b2", "a0", "a1"]);
    }

    #[test]
    fn options_carry_mtu_and_masquerade() {
        let spec = NetworkSpec {
            name: "n".into(),
            mtu: Some(1400),
            masquerade: true,
            ..Default::default()
        };
        let options = spec.options();
        assert_eq!(options["com.docker.network.driver.mtu"], "1400");
        assert_eq!(options["com.docker.network.bridge.enable_ip_masquerade"], "true");
    }
}
