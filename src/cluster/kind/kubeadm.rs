//! The kubeadm configuration written to `/kind/kubeadm.conf`, with kind's values (facts §4), in the kubeadm API
//! the node's Kubernetes version reads, as kind v0.33.0 chooses it (kubeadm/config.go `Config`): v1beta2 below
//! 1.23, v1beta3 from 1.23, v1beta4 from 1.36. The versions differ in two ways that matter here: v1beta4 writes
//! `extraArgs` and `kubeletExtraArgs` as lists of name/value pairs where the older ones write maps, and v1beta2
//! has no `skipPhases` (kubeadm init is then told on its command line; see [`KubeVersion::init_args`]).
//!
//! No bootstrap token is set: a single node never joins anything, so kubeadm's random token is better than
//! kind's well-known one. For the same reason there is no JoinConfiguration.

use std::fmt::Write;

use super::host::Host;
use crate::error::{Error, Result};

/// kind's default subnets.
pub const POD_SUBNET: &str = "10.244.0.0/16";
pub const SERVICE_SUBNET: &str = "10.96.0.0/16";
/// The API server's port inside the node; the host reaches it through a published 127.0.0.1 port.
pub const API_SERVER_PORT: u16 = 6443;
/// Set for the kubelet, and (as kind does) for every other component, on a rootless host.
const ROOTLESS_GATE: &str = "KubeletInUserNamespace";

/// A Kubernetes version as far as the config depends on it: kind compares against x.y.0 releases only, so a
/// pre-release such as v1.36.0-rc.1 counts as 1.36.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
}

impl KubeVersion {
    /// From `/kind/version`, e.g. `v1.37.0`.
    pub fn parse(text: &str) -> Result<KubeVersion> {
        let bad = || {
            Error::failed(format!(
                "the node image's /kind/version `{text}` is not a Kubernetes version"
            ))
            .hint("use a kindest/node image (--node-image), or one built by `kind build node-image`")
        };
        let mut parts = text.trim().trim_start_matches('v').split('.');
        let mut number = || -> Result<u32> {
            let part = parts.next().ok_or_else(bad)?;
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().map_err(|_| bad())
        };
        Ok(KubeVersion {
            major: number()?,
            minor: number()?,
        })
    }

    fn at_least(self, minor: u32) -> bool {
        self >= KubeVersion { major: 1, minor }
    }

    pub fn api(self) -> Api {
        if !self.at_least(23) {
            Api::V1beta2
        } else if !self.at_least(36) {
            Api::V1beta3
        } else {
            Api::V1beta4
        }
    }

    /// kind switched its node images to the systemd cgroup driver with Kubernetes 1.24.
    fn cgroup_driver(self) -> &'static str {
        if self.at_least(24) { "systemd" } else { "cgroupfs" }
    }

    /// The arguments of `kubeadm init`. v1beta2 cannot skip phases in the config file, so kind skips preflight
    /// (which would pull images the node image already has) on the command line (kubeadminit/init.go:82).
    pub fn init_args(self) -> Vec<&'static str> {
        let mut args = vec![
            "kubeadm",
            "init",
            "--config=/kind/kubeadm.conf",
            "--skip-token-print",
            "--v=6",
        ];
        if self.api() == Api::V1beta2 {
            args.push("--skip-phases=preflight");
        }
        args
    }

    /// The control-plane taints to remove on a single node: the `master` taint became `control-plane` in 1.24,
    /// which carries both (kubeadminit/init.go:133).
    pub fn taints(self) -> &'static [&'static str] {
        const CONTROL_PLANE: &str = "node-role.kubernetes.io/control-plane-";
        const MASTER: &str = "node-role.kubernetes.io/master-";
        if !self.at_least(24) {
            &[MASTER]
        } else if !self.at_least(25) {
            &[CONTROL_PLANE, MASTER]
        } else {
            &[CONTROL_PLANE]
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V1beta2,
    V1beta3,
    V1beta4,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::V1beta2 => "v1beta2",
            Api::V1beta3 => "v1beta3",
            Api::V1beta4 => "v1beta4",
        }
    }

    /// `extraArgs`-style arguments at `indent`: a map before v1beta4, a list of name/value pairs from it.
    fn args(self, out: &mut String, key: &str, indent: &str, args: &[(&str, &str)]) {
        if args.is_empty() {
            return;
        }
        let _ = writeln!(out, "{indent}{key}:");
        for (name, value) in args {
            let _ = match self {
                Api::V1beta4 => writeln!(out, "{indent}- name: {name}\n{indent}  value: \"{value}\""),
                _ => writeln!(out, "{indent}  {name}: \"{value}\""),
            };
        }
    }
}

/// What varies between clusters.
#[derive(Debug, Clone)]
pub struct KubeadmInput<'a> {
    /// The cluster name (`NAME`); the node is `NAME-control-plane`.
    pub cluster: &'a str,
    /// From `/kind/version` in the node image, e.g. `v1.37.0`.
    pub kubernetes_version: &'a str,
    /// The node's address on the `kind` network.
    pub node_ip: &'a str,
    /// The Docker host's modes: cgroup v1 and rootless change the kubelet's and kube-proxy's config.
    pub host: Host,
}

/// The config, and the choices made for it that the bootstrap step line reports.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub text: String,
    pub api: Api,
    /// `failCgroupV1: false` was set: a cgroup v1 host with a kubelet (1.35+) that refuses one by default.
    pub allows_cgroup_v1: bool,
}

pub fn render(input: &KubeadmInput) -> Result<Rendered> {
    let version = KubeVersion::parse(input.kubernetes_version)?;
    let rootless = input.host.rootless;
    if rootless && !version.at_least(22) {
        // kind's own limit: rootless nodes rely on the KubeletInUserNamespace gate of 1.22
        return Err(Error::prerequisite(format!(
            "Kubernetes {} cannot run on rootless Docker or Podman; it needs 1.22 or later",
            input.kubernetes_version
        ))
        .hint("choose a newer kindest/node image with --node-image"));
    }
    let api = version.api();
    let allows_cgroup_v1 = input.host.cgroup_v1 && version.at_least(35);
    let node = super::node::node_name(input.cluster);
    let port = API_SERVER_PORT;
    let gates = format!("{ROOTLESS_GATE}=true");
    let component_gates: &[(&str, &str)] = if rootless { &[("feature-gates", &gates)] } else { &[] };
    let (cluster, node_ip) = (input.cluster, input.node_ip);
    let mut out = String::new();
    let _ = write!(
        out,
        "# generated by restate-dev, with the values kind v0.33.0 uses\n\
         apiVersion: kubeadm.k8s.io/{api}\n\
         kind: ClusterConfiguration\n\
         metadata:\n  name: config\n\
         kubernetesVersion: {kubernetes_version}\n\
         clusterName: \"{cluster}\"\n\
         controlPlaneEndpoint: \"{node}:{port}\"\n\
         apiServer:\n\
         \x20 # the kubeconfig on the host talks to 127.0.0.1:PORT, so the certificate must name it\n\
         \x20 certSANs: [localhost, \"127.0.0.1\"]\n",
        api = api.as_str(),
        kubernetes_version = input.kubernetes_version,
    );
    let runtime_config = [("runtime-config", "")];
    api.args(
        &mut out,
        "extraArgs",
        "  ",
        &[&runtime_config[..], component_gates].concat(),
    );
    out.push_str("controllerManager:\n");
    let hostpath = [("enable-hostpath-provisioner", "true")];
    api.args(&mut out, "extraArgs", "  ", &[component_gates, &hostpath[..]].concat());
    if rootless {
        out.push_str("scheduler:\n");
        api.args(&mut out, "extraArgs", "  ", component_gates);
    }
    let _ = write!(
        out,
        "networking:\n  podSubnet: \"{POD_SUBNET}\"\n  serviceSubnet: \"{SERVICE_SUBNET}\"\n\
         ---\n\
         apiVersion: kubeadm.k8s.io/{api}\n\
         kind: InitConfiguration\n\
         metadata:\n  name: config\n\
         localAPIEndpoint:\n  advertiseAddress: \"{node_ip}\"\n  bindPort: {port}\n\
         nodeRegistration:\n  criSocket: \"unix:///run/containerd/containerd.sock\"\n",
        api = api.as_str(),
    );
    let provider_id = format!("kind://docker/{cluster}/{node}");
    let kubelet_args = [("node-ip", node_ip), ("provider-id", &provider_id), ("node-labels", "")];
    api.args(&mut out, "kubeletExtraArgs", "  ", &kubelet_args);
    if api != Api::V1beta2 {
        out.push_str(
            "# the node image is not a machine kubeadm's preflight checks understand\nskipPhases:\n- preflight\n",
        );
    }
    let _ = write!(
        out,
        "---\n\
         apiVersion: kubelet.config.k8s.io/v1beta1\n\
         kind: KubeletConfiguration\n\
         metadata:\n  name: config\n\
         cgroupDriver: {driver}\n\
         cgroupRoot: /kubelet\n\
         failSwapOn: false\n",
        driver = version.cgroup_driver(),
    );
    if allows_cgroup_v1 {
        out.push_str(
            "# the host is cgroup v1, which this kubelet refuses unless told otherwise\nfailCgroupV1: false\n",
        );
    }
    out.push_str(
        "# the kubelet sees the host's disk through the node container; never let it evict or collect for it\n\
         imageGCHighThresholdPercent: 100\n\
         evictionHard:\n  nodefs.available: \"0%\"\n  nodefs.inodesFree: \"0%\"\n  \
         imagefs.available: \"0%\"\n  imagefs.inodesFree: \"0%\"\n",
    );
    let gate_map = format!("featureGates:\n  {ROOTLESS_GATE}: true\n");
    if rootless {
        out.push_str(&gate_map);
    }
    out.push_str(
        "---\n\
         apiVersion: kubeproxy.config.k8s.io/v1alpha1\n\
         kind: KubeProxyConfiguration\n\
         metadata:\n  name: config\n\
         mode: \"iptables\"\n",
    );
    if rootless {
        out.push_str(&gate_map);
    }
    out.push_str(
        "iptables:\n  minSyncPeriod: 1s\n\
         conntrack:\n  # nf_conntrack_max is global to the host; leave it alone\n  maxPerCore: 0\n",
    );
    if rootless {
        out.push_str(
            "  # a user namespace cannot write the conntrack timeout sysctls; 0 leaves them as they are\n  \
             tcpEstablishedTimeout: 0s\n  tcpCloseWaitTimeout: 0s\n",
        );
    }
    Ok(Rendered {
        text: out,
        api,
        allows_cgroup_v1,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::cluster::kind::golden::assert_golden;

    fn render_for(version: &str, host: Host) -> Rendered {
        render(&KubeadmInput {
            cluster: "restate-dev",
            kubernetes_version: version,
            node_ip: "172.18.0.2",
            host,
        })
        .expect("renders")
    }

    fn docs(text: &str) -> Vec<Value> {
        serde_saphyr::from_multiple(text).expect("valid YAML")
    }

    fn cgroup_v1() -> Host {
        Host {
            cgroup_v1: true,
            ..Host::default()
        }
    }

    fn rootless() -> Host {
        Host {
            rootless: true,
            limits: true,
            ..Host::default()
        }
    }

    #[test]
    fn matches_golden_files() {
        for (file, version, host) in [
            ("kind-kubeadm-v1.37.conf", "v1.37.0", Host::default()),
            ("kind-kubeadm-v1.34.conf", "v1.34.11", Host::default()),
            ("kind-kubeadm-v1.22.conf", "v1.22.17", Host::default()),
            ("kind-kubeadm-v1.37-cgroup-v1.conf", "v1.37.0", cgroup_v1()),
            ("kind-kubeadm-v1.37-rootless.conf", "v1.37.0", rootless()),
        ] {
            assert_golden(file, &render_for(version, host).text);
        }
    }

    #[test]
    fn the_api_follows_the_version_as_kind_chooses_it() {
        let api = |v| KubeVersion::parse(v).unwrap().api();
        assert_eq!(api("v1.22.17"), Api::V1beta2);
        assert_eq!(api("v1.23.0"), Api::V1beta3);
        assert_eq!(api("v1.35.8"), Api::V1beta3);
        assert_eq!(api("v1.36.0-rc.1"), Api::V1beta4);
        assert_eq!(api("v1.37.0\n"), Api::V1beta4);
        assert!(KubeVersion::parse("latest").is_err());
        assert!(KubeVersion::parse("v1").is_err());
    }

    #[test]
    fn every_version_is_yaml_with_kinds_values_in_its_api_shape() {
        for (version, api) in [("v1.22.17", "v1beta2"), ("v1.34.11", "v1beta3"), ("v1.37.0", "v1beta4")] {
            let docs = docs(&render_for(version, Host::default()).text);
            let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap_or("")).collect();
            assert_eq!(
                kinds,
                [
                    "ClusterConfiguration",
                    "InitConfiguration",
                    "KubeletConfiguration",
                    "KubeProxyConfiguration"
                ]
            );
            assert_eq!(docs[0]["apiVersion"], format!("kubeadm.k8s.io/{api}"));
            assert_eq!(docs[1]["apiVersion"], format!("kubeadm.k8s.io/{api}"));
            assert_eq!(docs[0]["controlPlaneEndpoint"], "restate-dev-control-plane:6443");
            assert_eq!(docs[0]["networking"]["podSubnet"], POD_SUBNET);
            let kubelet_args = &docs[1]["nodeRegistration"]["kubeletExtraArgs"];
            let controller_args = &docs[0]["controllerManager"]["extraArgs"];
            if api == "v1beta4" {
                assert_eq!(
                    kubelet_args[0],
                    serde_json::json!({"name": "node-ip", "value": "172.18.0.2"})
                );
                assert_eq!(controller_args[0]["name"], "enable-hostpath-provisioner");
            } else {
                assert_eq!(kubelet_args["node-ip"], "172.18.0.2");
                assert_eq!(
                    kubelet_args["provider-id"],
                    "kind://docker/restate-dev/restate-dev-control-plane"
                );
                assert_eq!(controller_args["enable-hostpath-provisioner"], "true");
                assert_eq!(docs[0]["apiServer"]["extraArgs"]["runtime-config"], "");
            }
            let skip = &docs[1]["skipPhases"];
            assert_eq!(skip.is_null(), api == "v1beta2", "{api}: {skip}");
            let driver = if api == "v1beta2" { "cgroupfs" } else { "systemd" };
            assert_eq!(docs[2]["cgroupDriver"], driver);
            assert!(docs[2].get("failCgroupV1").is_none());
            assert_eq!(docs[2]["evictionHard"]["nodefs.available"], "0%");
            assert_eq!(docs[2]["imageGCHighThresholdPercent"], 100);
            assert_eq!(docs[3]["conntrack"]["maxPerCore"], 0);
        }
    }

    #[test]
    fn cgroup_v1_hosts_get_fail_cgroup_v1_false_from_1_35() {
        for (version, expected) in [("v1.34.11", false), ("v1.35.0", true), ("v1.37.0", true)] {
            let rendered = render_for(version, cgroup_v1());
            assert_eq!(rendered.allows_cgroup_v1, expected, "{version}");
            let kubelet = &docs(&rendered.text)[2];
            assert_eq!(
                kubelet.get("failCgroupV1") == Some(&Value::Bool(false)),
                expected,
                "{version}"
            );
        }
        assert!(!render_for("v1.37.0", Host::default()).allows_cgroup_v1);
    }

    #[test]
    fn rootless_hosts_get_the_user_namespace_gate_and_untouched_conntrack() {
        for version in ["v1.34.11", "v1.37.0"] {
            let docs = docs(&render_for(version, rootless()).text);
            assert_eq!(docs[2]["featureGates"]["KubeletInUserNamespace"], true);
            assert_eq!(docs[3]["featureGates"]["KubeletInUserNamespace"], true);
            assert_eq!(docs[3]["conntrack"]["tcpEstablishedTimeout"], "0s");
            assert_eq!(docs[3]["conntrack"]["tcpCloseWaitTimeout"], "0s");
            assert_eq!(docs[3]["conntrack"]["maxPerCore"], 0);
            let scheduler = &docs[0]["scheduler"]["extraArgs"];
            let gate = if version == "v1.37.0" {
                &scheduler[0]["value"]
            } else {
                &scheduler["feature-gates"]
            };
            assert_eq!(gate, "KubeletInUserNamespace=true");
        }
        let old = render(&KubeadmInput {
            cluster: "x",
            kubernetes_version: "v1.21.14",
            node_ip: "172.18.0.2",
            host: rootless(),
        });
        assert!(old.unwrap_err().message.contains("1.22"));
    }

    #[test]
    fn init_args_and_taints_follow_the_version() {
        let v = |s| KubeVersion::parse(s).unwrap();
        assert!(v("v1.22.17").init_args().contains(&"--skip-phases=preflight"));
        assert!(!v("v1.23.0").init_args().iter().any(|a| a.starts_with("--skip-phases")));
        assert_eq!(v("v1.23.17").taints(), ["node-role.kubernetes.io/master-"]);
        assert_eq!(v("v1.24.17").taints().len(), 2);
        assert_eq!(v("v1.37.0").taints(), ["node-role.kubernetes.io/control-plane-"]);
    }
}
