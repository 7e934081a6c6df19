//! Networks: a bridge per loop, found again by label.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::{InspectNetworkOptions, ListNetworksOptions};

use super::containers::describe;
use super::{Docker, is_not_found, label_filters, to_btree, to_hash};
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
        }))
    }

    /// Names of the networks carrying every one of `labels`.
    pub async fn list_networks(&self, labels: &BTreeMap<String, String>) -> Result<Vec<String>> {
        let options = ListNetworksOptions {
            filters: Some(label_filters(labels)),
        };
        let list = self
            .client
            .list_networks(Some(options))
            .await
            .map_err(|e| self.fail(e, "list networks labelled", &describe(labels)))?;
        let mut names: Vec<String> = list.into_iter().filter_map(|n| n.name).collect();
        names.sort();
        Ok(names)
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

#[cfg(test)]
mod tests {
    use super::*;

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
