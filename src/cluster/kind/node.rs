//! The node container, as the Docker Engine API body kind's `docker run` flags amount to (facts §4).

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigCgroupnsModeEnum, Mount, MountType,
    MountVolumeOptions, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};

use super::kubeadm::API_SERVER_PORT;
/// The NodePorts of the Service `restate-nodeport`, which the host ports published here lead to.
pub use crate::k8s::objects::{ADMIN_NODE_PORT, INGRESS_NODE_PORT};
use crate::labels;

/// kind's labels: `kind get clusters` lists the values of the first; the second names the node's role.
pub const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
pub const ROLE_LABEL: &str = "io.x-k8s.kind.role";

pub fn node_name(cluster: &str) -> String {
    format!("{cluster}-control-plane")
}

/// Everything that varies between node containers.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub cluster: String,
    pub image: String,
    pub network: String,
    /// Host ports on 127.0.0.1.
    pub api_port: u16,
    pub ingress_port: u16,
    pub admin_port: u16,
    /// Always true for a real node (systemd, containerd and the kubelet need it). Tests turn it off for a
    /// stand-in image, since this machine's Docker cannot run privileged containers.
    pub privileged: bool,
}

impl NodeSpec {
    pub fn name(&self) -> String {
        node_name(&self.cluster)
    }

    pub fn labels(&self) -> HashMap<String, String> {
        let mut labels: HashMap<String, String> = labels::for_loop(&self.cluster).into_iter().collect();
        labels.insert(CLUSTER_LABEL.into(), self.cluster.clone());
        labels.insert(ROLE_LABEL.into(), "control-plane".into());
        labels
    }

    pub fn container_body(&self) -> ContainerCreateBody {
        let publish = |host: u16, container: u16| {
            (
                format!("{container}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(host.to_string()),
                }]),
            )
        };
        let ports = HashMap::from([
            publish(self.api_port, API_SERVER_PORT),
            publish(self.ingress_port, INGRESS_NODE_PORT),
            publish(self.admin_port, ADMIN_NODE_PORT),
        ]);
        let mut exposed: Vec<String> = ports.keys().cloned().collect();
        exposed.sort();
        let host_config = HostConfig {
            privileged: Some(self.privileged),
            security_opt: Some(vec!["seccomp=unconfined".into(), "apparmor=unconfined".into()]),
            cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
            // the image's entrypoint must be PID 1, even when the daemon defaults to an init
            init: Some(false),
            // on-failure:1 is the closest Docker has to "restart after a host reboot only"
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ON_FAILURE),
                maximum_retry_count: Some(1),
            }),
            tmpfs: Some(HashMap::from([
                ("/tmp".into(), String::new()),
                ("/run".into(), String::new()),
            ])),
            binds: Some(vec!["/lib/modules:/lib/modules:ro".into()]),
            // kind's `--volume /var`: an anonymous volume, so pods, images and logs live outside the container's
            // writable layer and `docker rm -v` (kind's delete) removes it; ours also carries our labels
            mounts: Some(vec![Mount {
                typ: Some(MountType::VOLUME),
                target: Some("/var".into()),
                volume_options: Some(MountVolumeOptions {
                    labels: Some(labels::for_loop(&self.cluster).into_iter().collect()),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            network_mode: Some(self.network.clone()),
            port_bindings: Some(ports),
            ..Default::default()
        };
        ContainerCreateBody {
            hostname: Some(self.name()),
            image: Some(self.image.clone()),
            tty: Some(true),
            // kind also passes KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER through from its environment; we keep
            // the image's default snapshotter
            env: Some(vec!["KUBECONFIG=/etc/kubernetes/admin.conf".into()]),
            exposed_ports: Some(exposed),
            labels: Some(self.labels()),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(self.network.clone(), EndpointSettings::default())])),
            }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> NodeSpec {
        NodeSpec {
            cluster: "restate-dev".into(),
            image: super::super::DEFAULT_NODE_IMAGE.into(),
            network: "kind".into(),
            api_port: 41234,
            ingress_port: 18080,
            admin_port: 19070,
            privileged: true,
        }
    }

    #[test]
    fn matches_golden_file() {
        // serde_json's maps are sorted, so the golden file does not depend on HashMap order
        let value = serde_json::to_value(sample().container_body()).expect("serializable");
        let text = serde_json::to_string_pretty(&value).expect("serializable") + "\n";
        crate::cluster::kind::golden::assert_golden("kind-node-container.json", &text);
    }

    #[test]
    fn carries_kind_and_restate_dev_labels() {
        let labels = sample().labels();
        assert_eq!(labels[CLUSTER_LABEL], "restate-dev");
        assert_eq!(labels[ROLE_LABEL], "control-plane");
        assert_eq!(labels[labels::MANAGED_BY_KEY], labels::MANAGED_BY);
        assert_eq!(labels[labels::LOOP_KEY], "restate-dev");
    }

    #[test]
    fn publishes_only_on_loopback() {
        let body = sample().container_body();
        let ports = body.host_config.and_then(|h| h.port_bindings).unwrap_or_default();
        assert_eq!(ports.len(), 3);
        for binding in ports.values().flatten().flatten() {
            assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        }
        assert_eq!(
            ports["6443/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("41234")
        );
        assert_eq!(
            ports["30080/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("18080")
        );
        assert_eq!(
            ports["30070/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("19070")
        );
    }
}
