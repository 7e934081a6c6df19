//! The node container, as the Docker Engine API body kind's `docker run` flags amount to (facts §4), with the
//! flags kind adds for the host's modes (kind v0.33.0 providers/docker/provision.go `commonArgs`, `runArgsForNode`).

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointSettings, HostConfig, HostConfigCgroupnsModeEnum, Mount, MountType,
    MountVolumeOptions, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};

use super::host::Host;
use super::kubeadm::API_SERVER_PORT;
/// The NodePorts of the Service `restate-nodeport`, which the host ports published here lead to.
pub use crate::k8s::objects::{ADMIN_NODE_PORT, INGRESS_NODE_PORT};
use crate::labels;

/// kind's labels: `kind get clusters` lists the values of the first; the second names the node's role.
pub const CLUSTER_LABEL: &str = crate::docker::ownership::KIND_CLUSTER_LABEL;
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
    /// The Docker host's modes, which add flags.
    pub host: Host,
    /// `NAME=value` lines passed through from restate-dev's environment: proxies, the snapshotter override.
    pub env: Vec<String>,
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

    /// What the host's modes and the passed variables added, for the step line.
    pub fn host_flags(&self) -> Vec<&'static str> {
        let passed = |prefix: &str| self.env.iter().any(|e| e.starts_with(prefix));
        [
            (self.host.userns_remap, "--userns=host"),
            (self.host.rootless, "/dev/fuse"),
            (self.host.dev_mapper, "/dev/mapper"),
            (passed("NO_PROXY="), "proxy variables"),
            (passed(super::snapshotter::VARIABLE), "snapshotter override"),
        ]
        .into_iter()
        .filter_map(|(added, flag)| added.then_some(flag))
        .collect()
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
        let mut binds = vec!["/lib/modules:/lib/modules:ro".to_string()];
        // device-mapper-backed storage (btrfs, zfs, devicemapper) needs the host's device nodes (kind#1416)
        if self.host.dev_mapper {
            binds.push("/dev/mapper:/dev/mapper".into());
        }
        // fuse-overlayfs, the rootless snapshotter: rootless Docker does not give /dev/fuse to --privileged
        let devices = self.host.rootless.then(|| {
            vec![DeviceMapping {
                path_on_host: Some("/dev/fuse".into()),
                path_in_container: Some("/dev/fuse".into()),
                cgroup_permissions: Some("rwm".into()),
            }]
        });
        let mut env = self.env.clone();
        // kubectl inside the node (`docker exec … kubectl`) finds the cluster
        env.push("KUBECONFIG=/etc/kubernetes/admin.conf".into());
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
            binds: Some(binds),
            devices,
            // under userns-remap a container is privileged only in the host's user namespace
            userns_mode: self.host.userns_remap.then(|| "host".to_string()),
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
            env: Some(env),
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
            host: Host::default(),
            env: Vec::new(),
        }
    }

    fn in_mode(mode: &str) -> ContainerCreateBody {
        let host = Host::from_facts(&crate::cluster::kind::host::tests::facts(mode));
        NodeSpec { host, ..sample() }.container_body()
    }

    #[test]
    fn matches_golden_file() {
        // serde_json's maps are sorted, so the golden file does not depend on HashMap order
        let value = serde_json::to_value(sample().container_body()).expect("serializable");
        let text = serde_json::to_string_pretty(&value).expect("serializable") + "\n";
        crate::cluster::kind::golden::assert_golden("kind-node-container.json", &text);
    }

    #[test]
    fn a_host_in_each_mode_gets_the_flags_kind_adds() {
        let binds = |body: &ContainerCreateBody| body.host_config.as_ref().unwrap().binds.clone().unwrap();
        let config = |body: ContainerCreateBody| body.host_config.unwrap();
        let rootful = in_mode("rootful");
        assert_eq!(binds(&rootful), ["/lib/modules:/lib/modules:ro"]);
        let rootful = config(rootful);
        assert_eq!((rootful.userns_mode, rootful.devices), (None, None));

        let userns = config(in_mode("userns-remap"));
        assert_eq!(userns.userns_mode.as_deref(), Some("host"));

        let rootless = config(in_mode("rootless"));
        let fuse = &rootless.devices.unwrap()[0];
        assert_eq!(fuse.path_on_host.as_deref(), Some("/dev/fuse"));
        assert_eq!(fuse.path_in_container.as_deref(), Some("/dev/fuse"));
        assert_eq!(rootless.userns_mode, None);

        for mode in ["btrfs", "overlay-on-xfs"] {
            assert!(
                binds(&in_mode(mode)).contains(&"/dev/mapper:/dev/mapper".to_string()),
                "{mode}"
            );
        }
        assert!(
            !binds(&in_mode("rootless-btrfs"))
                .iter()
                .any(|b| b.starts_with("/dev/mapper"))
        );
        assert_eq!(binds(&in_mode("cgroup-v1")), ["/lib/modules:/lib/modules:ro"]);

        let host = Host::from_facts(&crate::cluster::kind::host::tests::facts("rootless"));
        assert_eq!(NodeSpec { host, ..sample() }.host_flags(), ["/dev/fuse"]);
        assert!(sample().host_flags().is_empty());
    }

    #[test]
    fn passed_variables_come_before_the_control_planes_kubeconfig() {
        let env = vec![
            "HTTP_PROXY=http://p:3128".to_string(),
            "http_proxy=http://p:3128".into(),
        ];
        let body = NodeSpec { env, ..sample() }.container_body();
        assert_eq!(
            body.env.unwrap(),
            [
                "HTTP_PROXY=http://p:3128",
                "http_proxy=http://p:3128",
                "KUBECONFIG=/etc/kubernetes/admin.conf"
            ]
        );
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
