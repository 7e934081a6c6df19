//! The labels on everything restate-dev creates: Kubernetes objects, containers, networks, volumes and images.
//! Teardown finds its work by these labels, never by remembered state.

use std::collections::BTreeMap;

pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "restate-dev";
/// The loop's name (`--name`), so that two loops never touch each other's things.
pub const LOOP_KEY: &str = "dev.restate.loop";

/// For things several loops share (the `kind` network, our images): ours, but no one loop's.
pub fn shared() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY_KEY.to_string(), MANAGED_BY.to_string())])
}

pub fn for_loop(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_KEY.to_string(), MANAGED_BY.to_string()),
        (LOOP_KEY.to_string(), name.to_string()),
    ])
}

/// Whether an object with `labels` is loop `name`'s: it carries both our label and the loop's. Anything else of
/// that name (a kind-CLI node, another tool's container) is not, whatever its name says.
pub fn is_loops(labels: &BTreeMap<String, String>, name: &str) -> bool {
    for_loop(name).iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A label selector matching one loop's things.
pub fn selector(name: &str) -> String {
    to_selector(&for_loop(name))
}

/// `key=value,…`: a Kubernetes equality selector, and how Docker filters and our messages name a label set.
pub fn to_selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_loop_selector_names_both_labels() {
        assert_eq!(
            super::selector("a"),
            "app.kubernetes.io/managed-by=restate-dev,dev.restate.loop=a"
        );
        assert_eq!(
            super::to_selector(&super::shared()),
            "app.kubernetes.io/managed-by=restate-dev"
        );
    }

    #[test]
    fn a_loops_object_carries_both_labels() {
        use super::*;
        assert!(is_loops(&for_loop("a"), "a"));
        assert!(!is_loops(&for_loop("b"), "a"));
        assert!(!is_loops(&shared(), "a"));
        let loop_label_only = BTreeMap::from([(LOOP_KEY.to_string(), "a".to_string())]);
        assert!(!is_loops(&loop_label_only, "a"));
    }
}
