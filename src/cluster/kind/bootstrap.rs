//! Turning a booted node container into a one-node cluster, by exec, the way kind does (facts §4). Every step
//! shows progress and has a bound; a failing step's error carries the command's output.

use std::future::Future;
use std::time::Duration;

use regex::Regex;

use super::host::Host;
use super::kubeadm::{self, API_SERVER_PORT, KubeVersion, KubeadmInput, POD_SUBNET};
use super::node::node_name;
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::ui::Ui;

/// kind's sign that systemd is up (or that the node runs cgroup v1, where the line never comes).
pub const READY_LINE: &str = "Reached target .*Multi-User System.*|detected cgroup v1";
const READY_WAIT: Duration = Duration::from_secs(30);
const SHORT_STEP: Duration = Duration::from_secs(60);
const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
/// kind's markers in its CNI manifest (create/actions/installcni/cni.go:71 and :92): the first asks for the pod
/// subnet to be filled in, the second for kindnetd to be told the API server's address, so that it need not wait
/// for kube-proxy to make the `kubernetes` Service reachable.
const TEMPLATE_MARKER: &str = "would you kindly template this file";
const PATCH_MARKER: &str = "would you kindly patch this file";

pub struct Bootstrap<'a> {
    pub docker: &'a Docker,
    pub ui: &'a Ui,
    pub cluster: &'a str,
    pub node: &'a str,
    pub network: &'a str,
    /// The bound on the long steps (kubeadm init, readiness).
    pub timeout: Duration,
    /// The Docker host's modes, which the kubeadm config allows for.
    pub host: Host,
}

impl Bootstrap<'_> {
    /// Runs every step; the node's admin.conf.
    pub async fn run(&self) -> Result<String> {
        let ready = Regex::new(READY_LINE).map_err(|e| Error::failed("bad ready pattern").source(e))?;
        self.step("node boot", READY_WAIT, async {
            self.docker.wait_for_log(self.node, &ready, READY_WAIT).await?;
            Ok(((), "systemd is up".to_string()))
        })
        .await?;
        let version = self
            .step("kubeadm config", SHORT_STEP, async {
                let text = self.exec(&["cat", "/kind/version"]).await?;
                let written = text.trim();
                let version = KubeVersion::parse(written)?;
                let node_ip = self.node_ip().await?;
                let config = kubeadm::render(&KubeadmInput {
                    cluster: self.cluster,
                    kubernetes_version: written,
                    node_ip: &node_ip,
                    host: self.host,
                })?;
                self.exec_stdin(&["cp", "/dev/stdin", "/kind/kubeadm.conf"], config.text)
                    .await?;
                let mut detail = format!("Kubernetes {written} at {node_ip}, kubeadm {}", config.api.as_str());
                if config.allows_cgroup_v1 {
                    detail.push_str(", failCgroupV1: false (cgroup v1 host)");
                }
                if self.host.rootless {
                    detail.push_str(", rootless (KubeletInUserNamespace)");
                }
                Ok((version, detail))
            })
            .await?;
        self.step("kubeadm init", self.timeout, async {
            self.exec(&version.init_args()).await?;
            Ok(((), String::new()))
        })
        .await?;
        self.step("untaint node", SHORT_STEP, async {
            let mut args = vec!["taint", "nodes", "--all"];
            args.extend_from_slice(version.taints());
            let out = self.docker.exec(self.node, &self.kubectl(&args)).await?;
            // a node without the taint is what we want, too
            if out.exit_code != 0 && !out.stderr.contains("not found") {
                out.check(self.node, &["kubectl", "taint"])?;
            }
            Ok(((), String::new()))
        })
        .await?;
        self.step("CNI and storage", SHORT_STEP, async {
            let raw = self.exec(&["cat", "/kind/manifests/default-cni.yaml"]).await?;
            let (cni, patched) = cni_manifest(&raw, self.cluster)?;
            self.exec_stdin(&self.kubectl(&["create", "-f", "-"]), cni).await?;
            self.exec(&self.kubectl(&["apply", "-f", "/kind/manifests/default-storage.yaml"]))
                .await?;
            let mut detail = format!("pod subnet {POD_SUBNET}");
            if patched {
                detail.push_str(&format!(", kindnetd told {}", control_plane_endpoint(self.cluster)));
            }
            Ok(((), detail))
        })
        .await?;
        let wait = format!("--timeout={}s", self.timeout.as_secs());
        self.step("node ready", self.timeout, async {
            // CoreDNS is awaited with the loop's own workloads, so that Restate starts while it comes up.
            self.exec(&self.kubectl(&["wait", "--for=condition=Ready", "nodes", "--all", &wait]))
                .await?;
            Ok(((), "the node is Ready".to_string()))
        })
        .await?;
        self.exec(&["cat", ADMIN_CONF]).await
    }

    /// Runs `work` as a bounded step; its value, once the step line shows its detail.
    async fn step<T>(&self, name: &str, bound: Duration, work: impl Future<Output = Result<(T, String)>>) -> Result<T> {
        let step = self.ui.step(name);
        match tokio::time::timeout(bound, work).await {
            Ok(Ok((value, detail))) => {
                step.done(detail);
                Ok(value)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::timeout(format!(
                "cluster bootstrap step `{name}` did not finish within {}",
                crate::ui::format_duration(bound)
            ))
            .hint("a slow machine may need a longer --timeout; the node's log is below")),
        }
    }

    fn kubectl<'b>(&self, args: &[&'b str]) -> Vec<&'b str> {
        let mut cmd = vec!["kubectl", "--kubeconfig=/etc/kubernetes/admin.conf"];
        cmd.extend_from_slice(args);
        cmd
    }

    async fn exec(&self, cmd: &[&str]) -> Result<String> {
        self.docker.exec_ok(self.node, cmd).await
    }

    async fn exec_stdin(&self, cmd: &[&str], input: String) -> Result<String> {
        let input = futures::stream::once(async move { Ok(bytes::Bytes::from(input)) });
        Ok(self
            .docker
            .exec_with_stdin(self.node, cmd, input)
            .await?
            .check(self.node, cmd)?
            .stdout)
    }

    async fn node_ip(&self) -> Result<String> {
        let info = self.docker.inspect_container(self.node).await?;
        info.and_then(|i| i.addresses.get(self.network).cloned())
            .filter(|ip| !ip.is_empty())
            .ok_or_else(|| Error::failed(format!("node {} has no address on network {}", self.node, self.network)))
    }
}

/// The last lines of the node's own logs, for an error: the journal when systemd answers, else the container's
/// output.
pub async fn node_logs(docker: &Docker, node: &str) -> Vec<String> {
    let journal = docker
        .exec(
            node,
            &[
                "journalctl",
                "--no-pager",
                "-n",
                "25",
                "-u",
                "kubelet",
                "-u",
                "containerd",
            ],
        )
        .await;
    let text = match journal {
        Ok(out) if out.exit_code == 0 && !out.stdout.trim().is_empty() => out.stdout,
        _ => docker.logs_tail(node, 25).await.unwrap_or_default(),
    };
    text.lines().map(|l| format!("node log | {l}")).collect()
}

/// Where kindnetd reaches the API server: the node's name on the `kind` network, as kind's docker provider says
/// (`GetAPIServerInternalEndpoint`).
fn control_plane_endpoint(cluster: &str) -> String {
    format!("{}:{API_SERVER_PORT}", node_name(cluster))
}

/// The CNI manifest as kind installs it; true when the patch marker asked for kindnetd's CONTROL_PLANE_ENDPOINT.
/// A manifest without a marker is installed as it is, as kind does.
pub fn cni_manifest(raw: &str, cluster: &str) -> Result<(String, bool)> {
    let mut manifest = raw.to_string();
    if manifest.contains(TEMPLATE_MARKER) {
        // a Go template whose only field is the pod subnet
        let field = Regex::new(r"\{\{\s*\.PodSubnet\s*\}\}").expect("a valid pattern");
        manifest = field.replace_all(&manifest, POD_SUBNET).into_owned();
    }
    if !manifest.contains(PATCH_MARKER) {
        return Ok((manifest, false));
    }
    let unreadable = |e: serde_saphyr::Error| Error::failed("the node's CNI manifest is not YAML").source(e);
    let mut docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&manifest).map_err(unreadable)?;
    docs.retain(|doc| !doc.is_null());
    let endpoint = serde_json::json!({"name": "CONTROL_PLANE_ENDPOINT", "value": control_plane_endpoint(cluster)});
    // kind's patch: append to the first container's env of every apps/v1 DaemonSet
    for doc in docs
        .iter_mut()
        .filter(|d| d["kind"] == "DaemonSet" && d["apiVersion"] == "apps/v1")
    {
        let env = doc
            .pointer_mut("/spec/template/spec/containers/0")
            .and_then(serde_json::Value::as_object_mut)
            .map(|container| container.entry("env").or_insert_with(|| serde_json::json!([])))
            .and_then(serde_json::Value::as_array_mut)
            .ok_or_else(|| {
                Error::failed("the node's CNI DaemonSet has no container to tell the API server's address")
            })?;
        env.push(endpoint.clone());
    }
    let mut out = String::new();
    for doc in &docs {
        out.push_str("---\n");
        out.push_str(
            &serde_saphyr::to_string(doc).map_err(|e| Error::failed("cannot write the CNI manifest").source(e))?,
        );
    }
    Ok((out, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_matches_systemd_and_cgroup_v1() {
        let ready = Regex::new(READY_LINE).unwrap();
        assert!(ready.is_match("[  OK  ] Reached target multi-user.target - Multi-User System."));
        assert!(ready.is_match("INFO: detected cgroup v1"));
        assert!(!ready.is_match("Reached target Basic System."));
    }

    /// kind's kindnetd manifest as its node images carry it (pkg/build/nodeimage/const_cni.go), shortened.
    const KINDNET: &str = "
# kindnetd networking manifest
# would you kindly template this file
# would you kindly patch this file
---
kind: ServiceAccount
apiVersion: v1
metadata:
  name: kindnet
  namespace: kube-system
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kindnet
  namespace: kube-system
spec:
  selector:
    matchLabels:
      app: kindnet
  template:
    spec:
      hostNetwork: true
      containers:
      - name: kindnet-cni
        image: docker.io/kindest/kindnetd:v20260820-69b56db7
        env:
        - name: POD_SUBNET
          value: {{ .PodSubnet }}
        resources:
          requests:
            cpu: \"100m\"
        securityContext:
          privileged: false
          capabilities:
            add: [\"NET_RAW\", \"NET_ADMIN\"]
";

    #[test]
    fn with_kinds_markers_the_subnet_is_filled_and_kindnetd_told_the_endpoint() {
        let (manifest, patched) = cni_manifest(KINDNET, "restate-dev").unwrap();
        assert!(patched);
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&manifest).unwrap();
        let docs: Vec<_> = docs.into_iter().filter(|d| !d.is_null()).collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["kind"], "ServiceAccount");
        let container = &docs[1]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["env"],
            serde_json::json!([
                {"name": "POD_SUBNET", "value": "10.244.0.0/16"},
                {"name": "CONTROL_PLANE_ENDPOINT", "value": "restate-dev-control-plane:6443"}
            ])
        );
        // everything else survives the round trip with its types
        assert_eq!(container["resources"]["requests"]["cpu"], "100m");
        assert_eq!(container["securityContext"]["privileged"], false);
        assert_eq!(container["securityContext"]["capabilities"]["add"][1], "NET_ADMIN");
    }

    #[test]
    fn without_markers_the_manifest_is_installed_as_it_is() {
        let plain = KINDNET
            .replace("# would you kindly template this file\n", "")
            .replace("# would you kindly patch this file\n", "");
        assert_eq!(cni_manifest(&plain, "restate-dev").unwrap(), (plain.clone(), false));
        // the template marker alone fills the subnet and patches nothing
        let template_only = KINDNET.replace("# would you kindly patch this file\n", "");
        let (manifest, patched) = cni_manifest(&template_only, "restate-dev").unwrap();
        assert!(!patched && !manifest.contains("CONTROL_PLANE_ENDPOINT"));
        assert!(manifest.contains("value: 10.244.0.0/16\n"));
    }
}
