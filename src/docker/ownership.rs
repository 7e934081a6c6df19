//! Whether the Docker objects a loop uses by name are that loop's. A network, volume or container named like
//! one of ours but without this loop's labels was made by someone else (another tool, the kind CLI, Compose,
//! another loop): `up` neither uses, replaces nor deletes it, and stops before making anything, with how it was
//! made and what to do. `down` finds its work by label, so it never meets such an object.

use std::collections::BTreeMap;

use super::Docker;
use crate::error::{Error, Result};
use crate::labels;

/// kind's cluster label on its node containers (kind's own; restate-dev's nodes carry it too).
pub const KIND_CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";

/// A Docker object a loop uses by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Network,
    Volume,
    Container,
}

impl Object {
    fn noun(self) -> &'static str {
        match self {
            Object::Network => "network",
            Object::Volume => "volume",
            Object::Container => "container",
        }
    }
}

/// Fails when any of `objects` exists without loop `loop_name`'s labels, naming each such object and its maker.
pub async fn ensure_ours(docker: &Docker, loop_name: &str, objects: &[(Object, &str)]) -> Result<()> {
    let mut foreign = Vec::new();
    for &(object, name) in objects {
        // Docker lets networks share a name (a race, an older release): every one of them must be ours.
        let found: Vec<BTreeMap<String, String>> = match object {
            Object::Network => docker
                .networks_named(name)
                .await?
                .into_iter()
                .map(|n| n.labels)
                .collect(),
            Object::Volume => docker.volume_labels(name).await?.into_iter().collect(),
            Object::Container => docker
                .inspect_container(name)
                .await?
                .map(|c| c.labels)
                .into_iter()
                .collect(),
        };
        for labels in found {
            if !labels::is_loops(&labels, loop_name) {
                foreign.push((object, name, labels));
            }
        }
    }
    let Some(((object, name, labels), rest)) = foreign.split_first() else {
        return Ok(());
    };
    let mut error = Error::prerequisite(format!(
        "{} {name} exists and is not loop {loop_name}'s: {}; `up` made and changed nothing",
        object.noun(),
        maker(labels)
    ))
    .hint(hint(*object, name, labels));
    for (object, name, labels) in rest {
        error = error.detail(format!("also in the way: {} {name}: {}", object.noun(), maker(labels)));
    }
    Err(error)
}

/// How an object not of this loop was made, as far as its labels tell.
fn maker(labels: &BTreeMap<String, String>) -> String {
    let label = |key: &str| labels.get(key).map(String::as_str);
    match (label(labels::MANAGED_BY_KEY), label(labels::LOOP_KEY)) {
        (Some(labels::MANAGED_BY), Some(other)) => return format!("it belongs to restate-dev loop {other}"),
        (Some(labels::MANAGED_BY), None) => return "it carries restate-dev's label but no loop's".into(),
        _ => {}
    }
    if let Some(cluster) = label(KIND_CLUSTER_LABEL) {
        return format!(
            "it is a node of kind cluster {cluster}, made by the kind CLI ({KIND_CLUSTER_LABEL}={cluster})"
        );
    }
    if let Some(project) = label(COMPOSE_PROJECT_LABEL) {
        return format!("it belongs to Docker Compose project {project}");
    }
    match labels.is_empty() {
        true => "it has no labels, so something other than restate-dev made it".into(),
        false => format!("its labels ({}) are not restate-dev's", labels::to_selector(labels)),
    }
}

fn hint(object: Object, name: &str, labels: &BTreeMap<String, String>) -> String {
    if let Some(cluster) = labels.get(KIND_CLUSTER_LABEL)
        && labels.get(labels::MANAGED_BY_KEY).map(String::as_str) != Some(labels::MANAGED_BY)
    {
        return format!(
            "to install into that cluster as it is, use `restate-dev up --context kind-{cluster}`; or choose another \
             --name (`kind delete cluster --name {cluster}` removes it, if it is not needed)"
        );
    }
    let remove = match object {
        Object::Network => format!("docker network rm {name}"),
        Object::Volume => format!("docker volume rm {name}"),
        Object::Container => format!("docker rm -f {name}"),
    };
    format!("choose another --name; or, if it is not needed, remove it (`{remove}`) and run `up` again")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn makers_are_told_apart_by_their_labels() {
        assert_eq!(maker(&labels::for_loop("b")), "it belongs to restate-dev loop b");
        let kind = of(&[(KIND_CLUSTER_LABEL, "a"), ("io.x-k8s.kind.role", "control-plane")]);
        assert_eq!(
            maker(&kind),
            "it is a node of kind cluster a, made by the kind CLI (io.x-k8s.kind.cluster=a)"
        );
        assert!(hint(Object::Container, "a-control-plane", &kind).contains("`restate-dev up --context kind-a`"));
        assert_eq!(
            maker(&of(&[(COMPOSE_PROJECT_LABEL, "shop")])),
            "it belongs to Docker Compose project shop"
        );
        assert_eq!(
            maker(&BTreeMap::new()),
            "it has no labels, so something other than restate-dev made it"
        );
        assert_eq!(
            hint(Object::Network, "a-net", &BTreeMap::new()),
            "choose another --name; or, if it is not needed, remove it (`docker network rm a-net`) and run `up` again"
        );
    }
}
