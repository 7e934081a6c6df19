//! The proxy settings a node inherits, as kind passes them (kind v0.33.0: providers/common/proxy.go and
//! providers/docker/provision.go `getProxyEnv`): containerd in the node pulls through the user's proxy, and
//! traffic inside the cluster and on the `kind` network bypasses it.

use super::kubeadm::{POD_SUBNET, SERVICE_SUBNET};

/// The variables kind reads, upper case first; each is passed on in both cases.
pub const NAMES: [&str; 3] = ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"];
/// CoreDNS's service names, which no proxy can resolve.
const CLUSTER_DOMAINS: [&str; 3] = [".svc", ".svc.cluster", ".svc.cluster.local"];

/// `NAME=value` lines for the node, sorted; none when no proxy variable is set. `get` reads restate-dev's own
/// environment; `subnets` are the network's, `nodes` the cluster's node names.
pub fn node_env(get: impl Fn(&str) -> Option<String>, subnets: &[String], nodes: &[String]) -> Vec<String> {
    let set = |name: &str| get(name).filter(|v| !v.is_empty());
    let mut values: Vec<(&str, String)> = NAMES
        .iter()
        .filter_map(|&name| set(name).or_else(|| set(&name.to_lowercase())).map(|v| (name, v)))
        .collect();
    if values.is_empty() {
        return Vec::new();
    }
    // the order kind builds it in: subnets, the user's list, the cluster's ranges, the nodes, the domains
    let user = values
        .iter()
        .find(|(name, _)| *name == "NO_PROXY")
        .map(|(_, v)| v.clone());
    let mut no_proxy: Vec<String> = subnets.to_vec();
    no_proxy.extend(user);
    no_proxy.extend([SERVICE_SUBNET, POD_SUBNET].map(String::from));
    no_proxy.extend(nodes.iter().cloned());
    no_proxy.extend(CLUSTER_DOMAINS.map(String::from));
    values.retain(|(name, _)| *name != "NO_PROXY");
    values.push(("NO_PROXY", no_proxy.join(",")));
    let mut env: Vec<String> = values
        .iter()
        .flat_map(|(name, value)| [format!("{name}={value}"), format!("{}={value}", name.to_lowercase())])
        .collect();
    env.sort();
    env
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn subnets() -> Vec<String> {
        vec!["172.18.0.0/16".into(), "fc00:f853:ccd:e793::/64".into()]
    }

    #[test]
    fn no_proxy_variables_pass_nothing() {
        assert!(node_env(env(&[]), &subnets(), &["n-control-plane".into()]).is_empty());
        assert!(node_env(env(&[("HTTP_PROXY", "")]), &subnets(), &[]).is_empty());
    }

    #[test]
    fn proxies_pass_in_both_cases_with_no_proxy_extended_as_kind_does() {
        let got = node_env(
            env(&[
                ("https_proxy", "http://proxy:3128"),
                ("HTTP_PROXY", "http://proxy:3128"),
                ("no_proxy", "example.internal"),
            ]),
            &subnets(),
            &["restate-dev-control-plane".into()],
        );
        let no_proxy = "172.18.0.0/16,fc00:f853:ccd:e793::/64,example.internal,10.96.0.0/16,10.244.0.0/16,\
                        restate-dev-control-plane,.svc,.svc.cluster,.svc.cluster.local";
        assert_eq!(
            got,
            [
                "HTTPS_PROXY=http://proxy:3128".to_string(),
                "HTTP_PROXY=http://proxy:3128".into(),
                format!("NO_PROXY={no_proxy}"),
                "http_proxy=http://proxy:3128".into(),
                "https_proxy=http://proxy:3128".into(),
                format!("no_proxy={no_proxy}"),
            ]
        );
    }

    #[test]
    fn the_upper_case_name_wins_and_no_proxy_alone_counts() {
        let got = node_env(
            env(&[("HTTP_PROXY", "http://upper"), ("http_proxy", "http://lower")]),
            &[],
            &[],
        );
        assert!(got.contains(&"http_proxy=http://upper".to_string()), "{got:?}");
        // kind also passes a lone NO_PROXY on, extended
        let got = node_env(env(&[("NO_PROXY", "a")]), &[], &[]);
        assert_eq!(
            got[0],
            "NO_PROXY=a,10.96.0.0/16,10.244.0.0/16,.svc,.svc.cluster,.svc.cluster.local"
        );
    }
}
