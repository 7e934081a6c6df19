//! The Docker host's modes that change how a kind node must run, read from the daemon's info the way kind reads
//! them (kind v0.33.0: providers/docker/provider.go `info`, providers/docker/util.go, create/create.go).

use serde::Serialize;

use crate::docker::ServerFacts;
use crate::error::{Error, Result};

/// What the node container and its kubeadm config must allow for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Host {
    /// The host runs cgroup v1 (kind: anything but `CgroupVersion: 2`). kubelet 1.35 and later refuse to start
    /// there unless their config says `failCgroupV1: false`.
    pub cgroup_v1: bool,
    /// Rootless Docker or Podman (`name=rootless`): the node needs /dev/fuse (fuse-overlayfs), the kubelet the
    /// `KubeletInUserNamespace` gate, and kube-proxy must leave the host's conntrack sysctls alone.
    pub rootless: bool,
    /// userns-remap (`name=userns`): a privileged node must run in the host's user namespace (`--userns=host`).
    pub userns_remap: bool,
    /// Device-mapper-backed storage: the node needs the host's /dev/mapper.
    pub dev_mapper: bool,
    /// The daemon can set memory, pids and CPU-share limits (a rootless one only when systemd delegates them).
    pub limits: bool,
}

impl Host {
    pub fn from_facts(facts: &ServerFacts) -> Host {
        let option_fields = || facts.security_options.iter().flat_map(|o| o.split(','));
        let rootless = option_fields().any(|f| f == "name=rootless");
        Host {
            cgroup_v1: facts.cgroup_version != "2",
            rootless,
            userns_remap: option_fields().any(|f| f == "name=userns"),
            dev_mapper: !rootless && needs_dev_mapper(&facts.storage_driver, &facts.backing_filesystem),
            // with the `none` driver the daemon's limit flags mean nothing (moby#42151)
            limits: facts.cgroup_driver != "none" && facts.memory_limit && facts.pids_limit && facts.cpu_shares,
        }
    }

    /// kind refuses a rootless host without cgroup v2 or without delegated controllers (create/create.go:249).
    pub fn require_supported(&self) -> Result<()> {
        let guide = "see https://kind.sigs.k8s.io/docs/user/rootless/";
        if self.rootless && self.cgroup_v1 {
            return Err(
                Error::prerequisite("a kind node on rootless Docker or Podman needs a cgroup v2 host").hint(guide),
            );
        }
        if self.rootless && !self.limits {
            return Err(Error::prerequisite(
                "a kind node on rootless Docker or Podman needs systemd to delegate the memory, pids and cpu \
                 controllers (`Delegate=yes`)",
            )
            .hint(guide));
        }
        Ok(())
    }

    /// The daemon's mode, for `doctor` and step lines.
    pub fn mode(&self) -> &'static str {
        match (self.rootless, self.userns_remap) {
            (true, _) => "rootless",
            (false, true) => "userns-remap",
            (false, false) => "rootful",
        }
    }
}

/// kind mounts /dev/mapper for btrfs, zfs and devicemapper storage drivers, and for overlay storage backed by
/// btrfs, zfs or xfs (providers/docker/util.go `mountDevMapper`; kind#1416).
fn needs_dev_mapper(driver: &str, backing_filesystem: &str) -> bool {
    let driver = driver.to_lowercase();
    let backing = backing_filesystem.to_lowercase();
    matches!(driver.as_str(), "btrfs" | "zfs" | "devicemapper") || matches!(backing.as_str(), "btrfs" | "zfs" | "xfs")
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The info each mode reports, as `docker info --format '{{json .}}'` shows it (the fields kind reads).
    pub fn facts(mode: &str) -> ServerFacts {
        let mut facts = ServerFacts {
            cgroup_version: "2".into(),
            cgroup_driver: "systemd".into(),
            storage_driver: "overlay2".into(),
            backing_filesystem: "extfs".into(),
            security_options: vec![
                "name=apparmor".into(),
                "name=seccomp,profile=builtin".into(),
                "name=cgroupns".into(),
            ],
            memory_limit: true,
            pids_limit: true,
            cpu_shares: true,
            ..Default::default()
        };
        match mode {
            "rootful" => {}
            // this machine's Docker 20.10
            "cgroup-v1" => {
                facts.cgroup_version = "1".into();
                facts.cgroup_driver = "cgroupfs".into();
                facts.security_options = vec!["name=seccomp,profile=default".into()];
            }
            "rootless" => facts.security_options.push("name=rootless".into()),
            // rootless without `Delegate=yes`: cgroup v2, but the daemon cannot limit anything
            "rootless-undelegated" => {
                facts.security_options.push("name=rootless".into());
                facts.cgroup_driver = "none".into();
            }
            "userns-remap" => facts.security_options.push("name=userns".into()),
            "btrfs" => {
                facts.storage_driver = "btrfs".into();
                facts.backing_filesystem = "btrfs".into();
            }
            "overlay-on-xfs" => facts.backing_filesystem = "xfs".into(),
            "rootless-btrfs" => {
                facts.security_options.push("name=rootless".into());
                facts.storage_driver = "btrfs".into();
            }
            other => panic!("no such mode {other}"),
        }
        facts
    }

    #[test]
    fn each_mode_is_read_as_kind_reads_it() {
        let host = |mode| Host::from_facts(&facts(mode));
        assert_eq!(
            host("rootful"),
            Host {
                limits: true,
                ..Host::default()
            }
        );
        assert!(host("cgroup-v1").cgroup_v1 && !host("rootful").cgroup_v1);
        assert!(host("rootless").rootless && !host("rootless").userns_remap);
        assert!(host("userns-remap").userns_remap && !host("userns-remap").rootless);
        assert!(host("btrfs").dev_mapper && host("overlay-on-xfs").dev_mapper);
        // a rootless daemon cannot create device nodes, so kind skips /dev/mapper there
        assert!(!host("rootless-btrfs").dev_mapper);
        assert_eq!(host("rootless").mode(), "rootless");
        assert_eq!(host("userns-remap").mode(), "userns-remap");
        assert_eq!(host("cgroup-v1").mode(), "rootful");
        // a daemon too old to report its cgroup version is taken as v1, as kind does
        assert!(Host::from_facts(&ServerFacts::default()).cgroup_v1);
    }

    #[test]
    fn rootless_needs_cgroup_v2_and_delegated_controllers() {
        assert!(Host::from_facts(&facts("rootless")).require_supported().is_ok());
        assert!(Host::from_facts(&facts("cgroup-v1")).require_supported().is_ok());
        let undelegated = Host::from_facts(&facts("rootless-undelegated")).require_supported();
        assert!(undelegated.unwrap_err().message.contains("Delegate=yes"));
        let v1 = Host {
            rootless: true,
            cgroup_v1: true,
            limits: true,
            ..Host::default()
        };
        assert!(v1.require_supported().unwrap_err().message.contains("cgroup v2"));
    }
}
