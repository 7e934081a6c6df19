//! Where a loop's record (see `config::Record`) lives: in a label of an empty Docker volume `NAME-record`,
//! labelled as the loop's, so `down` removes it with the rest and nothing on this machine outlives the loop.
//!
//! Why a volume and not a label on a container or an annotation in the cluster: Docker labels cannot change, and
//! no container uses this volume, so a changed record replaces it in milliseconds and restarts nothing; it needs
//! no image; and it can be read while the loop is stopped (a stopped kind node's API cannot answer), which is
//! exactly when a bare `up` must know what the loop was. It serves the docker, kind and minikube runtimes alike.
//! A loop on an existing `--context` made without Docker has no record: it is found through its context.

use std::collections::BTreeSet;

use crate::config::Record;
use crate::docker::Docker;
use crate::docker::ownership::{self, Object};
use crate::error::Result;
use crate::labels;
use crate::runtime::{docker, kube};

pub const RECORD_LABEL: &str = "dev.restate.record";

fn volume(name: &str) -> String {
    format!("{name}-record")
}

/// The record of loop `name`; None when it has none (no loop, or one made before records existed).
async fn read(docker: &Docker, name: &str) -> Result<Option<Record>> {
    let labels = docker.volume_labels(&volume(name)).await?;
    let ours = |labels: &std::collections::BTreeMap<String, String>| {
        labels.get(labels::LOOP_KEY).map(String::as_str) == Some(name)
    };
    Ok(labels
        .filter(ours)
        .and_then(|labels| labels.get(RECORD_LABEL).and_then(|text| Record::from_json(text))))
}

/// Records `record` on loop `name`; true when that changed the record.
pub async fn write(docker: &Docker, name: &str, record: &Record) -> Result<bool> {
    if read(docker, name).await?.as_ref() == Some(record) {
        return Ok(false);
    }
    let volume = volume(name);
    // Never replace a volume of that name that another tool or loop made.
    ownership::ensure_ours(docker, name, &[(Object::Volume, &volume)]).await?;
    docker.remove_volume(&volume).await?;
    let mut labels = labels::for_loop(name);
    labels.insert(RECORD_LABEL.to_string(), record.to_json());
    docker.create_volume(&volume, &labels).await?;
    Ok(true)
}

/// A loop found on this machine.
#[derive(Debug, Clone)]
pub struct Found {
    pub record: Record,
    /// False for a loop made before records existed: only its runtime is known, from its objects.
    pub recorded: bool,
}

/// What loop `name` is, found without any flag: its record, or for a loop that has none, where its objects are
/// (its docker-runtime containers, its kind node, its minikube profile). None when no such loop exists here.
pub async fn find(docker: &Docker, name: &str) -> Result<Option<Found>> {
    if let Some(record) = read(docker, name).await? {
        return Ok(Some(Found { record, recorded: true }));
    }
    let by_objects = |runtime| Found {
        record: Record::of_runtime(runtime),
        recorded: false,
    };
    if docker::exists(docker, name).await? {
        return Ok(Some(by_objects("docker")));
    }
    let node = kube::kind_for_teardown(docker, name)?.node_name();
    if docker.inspect_container(&node).await?.is_some() {
        return Ok(Some(by_objects("kind")));
    }
    Ok(kube::minikube_profile(name).map(|_| by_objects("minikube")))
}

/// The names of the loops on this Docker: every loop label on our containers and volumes, sorted.
pub async fn loop_names(docker: &Docker) -> Result<Vec<String>> {
    let ours = labels::shared();
    let mut names = BTreeSet::new();
    for container in docker.list_containers(&ours).await? {
        if let Some(info) = docker.inspect_container(&container).await? {
            names.extend(info.labels.get(labels::LOOP_KEY).cloned());
        }
    }
    for volume in docker.list_volumes(&ours).await? {
        if let Some(labels) = docker.volume_labels(&volume).await? {
            names.extend(labels.get(labels::LOOP_KEY).cloned());
        }
    }
    Ok(names.into_iter().collect())
}
