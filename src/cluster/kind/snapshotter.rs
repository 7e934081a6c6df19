//! `KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER`: when set in restate-dev's environment, it is passed into the node
//! container, as kind's provision.go does (`-e KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER`). The node image's
//! entrypoint then writes it into /etc/containerd/config.toml in place of its own choice (overlayfs, or native on
//! zfs, or fuse-overlayfs where overlayfs cannot work) before containerd starts.

pub const VARIABLE: &str = "KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER";

/// The node's `NAME=value` line, when restate-dev's environment (`get`) sets the variable. Like `docker run -e
/// NAME`, a set but empty value is passed too; the entrypoint treats it as unset.
pub fn node_env(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    get(VARIABLE).map(|value| format!("{VARIABLE}={value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passed_only_when_set() {
        assert_eq!(node_env(|_| None), None);
        let native = node_env(|name| (name == VARIABLE).then(|| "native".to_string()));
        assert_eq!(
            native.as_deref(),
            Some("KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER=native")
        );
    }
}
