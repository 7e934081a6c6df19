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

/// A label selector matching one loop's things.
pub fn selector(name: &str) -> String {
    format!("{MANAGED_BY_KEY}={MANAGED_BY},{LOOP_KEY}={name}")
}
