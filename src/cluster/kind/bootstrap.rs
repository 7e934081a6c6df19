//! Turning a booted node container into a one-node cluster, by exec, the way kind does (facts §4). Every step
//! shows progress and has a bound; a failing step's error carries the command's output.

use std::future::Future;
use std::time::Duration;

use regex::Regex;

use super::kubeadm::{self, KubeadmInput, POD_SUBNET};
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::ui::Ui;

/// kind's sign that systemd is up (or that the node runs cgroup v1, where the line never comes).
pub const READY_LINE: &str = "Reached target .*Multi-User System.*|detected cgroup v1";
const READY_WAIT: Duration = Duration::from_secs(30);
const SHORT_STEP: Duration = Duration::from_secs(60);
const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

pub struct Bootstrap<'a> {
    pub docker: &'a Docker,
    pub ui: &'a Ui,
    pub cluster: &'a str,
    pub node: &'a str,
    pub network: &'a str,
    /// The bound on the long steps (kubeadm init, readiness).
    pub timeout: Duration,
}

impl Bootstrap<'_> {
    /// Runs every step; the node's admin.conf.
    pub async fn run(&self) -> Result<String> {
        let ready = Regex::new(READY_LINE).map_err(|e| Error::failed("bad ready pattern").source(e))?;
        self.step("node boot", READY_WAIT, async {
            self.docker.wait_for_log(self.node, &ready, READY_WAIT).await?;
            Ok("systemd is up".to_string())
        })
        .await?;
        self.step("kubeadm config", SHORT_STEP, async {
            let version = self.exec(&["cat", "/kind/version"]).await?;
            let version = version.trim();
            let node_ip = self.node_ip().await?;
            let config = kubeadm::render(&KubeadmInput {
                cluster: self.cluster,
                kubernetes_version: version,
                node_ip: &node_ip,
            });
            self.exec_stdin(&["cp", "/dev/stdin", "/kind/kubeadm.conf"], config)
                .await?;
            Ok(format!("Kubernetes {version} at {node_ip}"))
        })
        .await?;
        self.step("kubeadm init", self.timeout, async {
            self.exec(&[
                "kubeadm",
                "init",
                "--config=/kind/kubeadm.conf",
                "--skip-token-print",
                "--v=6",
            ])
            .await?;
            Ok(String::new())
        })
        .await?;
        self.step("untaint node", SHORT_STEP, async {
            let out = self
                .docker
                .exec(
                    self.node,
                    &self.kubectl(&["taint", "nodes", "--all", "node-role.kubernetes.io/control-plane-"]),
                )
                .await?;
            // a node without the taint is what we want, too
            if out.exit_code != 0 && !out.stderr.contains("not found") {
                out.check(self.node, &["kubectl", "taint"])?;
            }
            Ok(String::new())
        })
        .await?;
        self.step("CNI and storage", SHORT_STEP, async {
            let cni = self.exec(&["cat", "/kind/manifests/default-cni.yaml"]).await?;
            let cni = fill_pod_subnet(&cni);
            self.exec_stdin(&self.kubectl(&["create", "-f", "-"]), cni).await?;
            self.exec(&self.kubectl(&["apply", "-f", "/kind/manifests/default-storage.yaml"]))
                .await?;
            Ok(format!("pod subnet {POD_SUBNET}"))
        })
        .await?;
        let wait = format!("--timeout={}s", self.timeout.as_secs());
        self.step("node ready", self.timeout, async {
            self.exec(&self.kubectl(&["wait", "--for=condition=Ready", "nodes", "--all", &wait]))
                .await?;
            self.exec(&self.kubectl(&[
                "-n",
                "kube-system",
                "wait",
                "--for=condition=Available",
                "deployment/coredns",
                &wait,
            ]))
            .await?;
            Ok("CoreDNS available".to_string())
        })
        .await?;
        self.exec(&["cat", ADMIN_CONF]).await
    }

    /// The last lines of the node's own logs, for an error: the journal when systemd answers, else the
    /// container's output.
    pub async fn node_logs(&self) -> Vec<String> {
        let journal = self
            .docker
            .exec(
                self.node,
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
            _ => self.docker.logs_tail(self.node, 25).await.unwrap_or_default(),
        };
        text.lines().map(|l| format!("node log | {l}")).collect()
    }

    async fn step(&self, name: &str, bound: Duration, work: impl Future<Output = Result<String>>) -> Result<()> {
        let step = self.ui.step(name);
        match tokio::time::timeout(bound, work).await {
            Ok(Ok(detail)) => {
                step.done(detail);
                Ok(())
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

/// kind's CNI manifest is a Go template with the pod subnet as its only field.
pub fn fill_pod_subnet(manifest: &str) -> String {
    let field = Regex::new(r"\{\{\s*\.PodSubnet\s*\}\}").expect("a valid pattern");
    field.replace_all(manifest, POD_SUBNET).into_owned()
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

    #[test]
    fn the_pod_subnet_is_filled_in() {
        let manifest = "env:\n- name: POD_SUBNET\n  value: {{ .PodSubnet }}\n- x: {{.PodSubnet}}\n";
        assert_eq!(
            fill_pod_subnet(manifest),
            "env:\n- name: POD_SUBNET\n  value: 10.244.0.0/16\n- x: 10.244.0.0/16\n"
        );
    }
}
