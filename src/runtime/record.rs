//! Where a loop's record (see `config::Record`) lives: in a label of an empty Docker volume
//! `NAME-record-HASH` (HASH: a short hash of the record), labelled as the loop's, so `down` removes it with the
//! rest and nothing on this machine outlives the loop.
//!
//! Why a volume and not a label on a container or an annotation in the cluster: Docker labels cannot change, and
//! no container uses this volume, so a changed record is a new volume made in milliseconds that restarts
//! nothing; it needs no image; and it can be read while the loop is stopped (a stopped kind node's API cannot
//! answer), which is exactly when a bare `up` must know what the loop was. It serves the docker, kind and
//! minikube runtimes alike. A loop on an existing `--context` is never recorded here: it is found through its
//! context.
//!
//! A changed record is written as a new volume before the old one is removed, so that an interrupted write
//! leaves the old record or both, never none; reading takes the newest.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::config::Record;
use crate::docker::Docker;
use crate::docker::ownership::{self, Object};
use crate::error::Result;
use crate::labels;
use crate::runtime::{docker, kube};

pub const RECORD_LABEL: &str = "dev.restate.record";
/// When the record was written (nanoseconds since the epoch): the newest record volume of a loop is its record.
/// Docker's own CreatedAt counts whole seconds only.
const WRITTEN_LABEL: &str = "dev.restate.record.written";

/// `NAME-record-HASH`: the same record always gets the same name, so writing it again changes nothing.
fn volume(name: &str, json: &str) -> String {
    let digest = Sha256::digest(json.as_bytes());
    let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{name}-record-{hash}")
}

/// One of the loop's record volumes.
struct Stored {
    volume: String,
    record: Record,
    written: u128,
}

/// The loop's record volumes, newest first. A volume of the loop's whose label is no record is left out.
async fn stored(docker: &Docker, name: &str) -> Result<Vec<Stored>> {
    let mut found = Vec::new();
    for volume in docker.list_volumes(&labels::for_loop(name)).await? {
        let Some(labels) = docker.volume_labels(&volume).await? else {
            continue;
        };
        if let Some(stored) = parse(volume, &labels, name) {
            found.push(stored);
        }
    }
    found.sort_by(|a, b| b.written.cmp(&a.written).then_with(|| a.volume.cmp(&b.volume)));
    Ok(found)
}

/// The record a volume with `labels` holds for loop `name`, if it is one of the loop's record volumes.
fn parse(volume: String, labels: &BTreeMap<String, String>, name: &str) -> Option<Stored> {
    if !labels::is_loops(labels, name) {
        return None;
    }
    let record = Record::from_json(labels.get(RECORD_LABEL)?)?;
    let written = labels.get(WRITTEN_LABEL).and_then(|w| w.parse().ok()).unwrap_or(0);
    Some(Stored {
        volume,
        record,
        written,
    })
}

/// The record of loop `name`; None when it has none (no loop, or one whose record was lost).
async fn read(docker: &Docker, name: &str) -> Result<Option<Record>> {
    Ok(stored(docker, name).await?.into_iter().next().map(|s| s.record))
}

/// Records `record` on loop `name`; true when that changed the record.
pub async fn write(docker: &Docker, name: &str, record: &Record) -> Result<bool> {
    let stored = stored(docker, name).await?;
    let json = record.to_json();
    let volume = volume(name, &json);
    let newest = stored.first();
    if newest.is_some_and(|s| &s.record == record) && stored.len() == 1 {
        return Ok(false);
    }
    let changed = newest.map(|s| &s.record) != Some(record);
    // Never take over a volume of that name that another tool or loop made.
    ownership::ensure_ours(docker, name, &[(Object::Volume, &volume)]).await?;
    // An older copy of this same record (left by an interrupted write) would not be the newest: made anew.
    if changed && stored.iter().any(|s| s.volume == volume) {
        docker.remove_volume(&volume).await?;
    }
    let mut labels = labels::for_loop(name);
    labels.insert(RECORD_LABEL.to_string(), json);
    labels.insert(WRITTEN_LABEL.to_string(), now_nanos().to_string());
    // Docker answers a create of an existing volume with that volume: the same record, written before.
    docker.create_volume(&volume, &labels).await?;
    for old in stored.iter().filter(|s| s.volume != volume) {
        docker.remove_volume(&old.volume).await?;
    }
    Ok(changed)
}

fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
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
    if kube::kind_node(docker, name).await?.is_some() {
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

#[cfg(test)]
mod docker_tests {
    use super::*;
    use crate::runtime::docker::{Keep, remove_loop};

    fn record(image: &str) -> Record {
        let mut record = Record::of_runtime("minikube");
        record.0.insert("service-image".into(), image.into());
        record
    }

    async fn record_volumes(docker: &Docker, name: &str) -> Vec<String> {
        let volumes = docker.list_volumes(&labels::for_loop(name)).await.unwrap();
        volumes.into_iter().filter(|v| v.contains("-record-")).collect()
    }

    /// A changed record is a new volume, and the old one goes only after it exists; an interrupted write (both
    /// left) reads as the newer. Before, the one `NAME-record` volume was removed and then made again.
    /// `down --keep-cluster` of a cluster loop (minikube: no node) keeps the record; a full `down` removes it.
    #[tokio::test]
    #[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
    async fn records_are_replaced_by_newer_generations_and_kept_with_the_cluster() {
        let docker = Docker::connect().await.unwrap();
        let name = format!("t-recgen-{}", std::process::id());
        let (first, second) = (record("my/svc:1"), record("my/svc:2"));
        assert!(write(&docker, &name, &first).await.unwrap());
        assert!(
            !write(&docker, &name, &first).await.unwrap(),
            "the same record again changes nothing"
        );
        let old = record_volumes(&docker, &name).await;
        assert_eq!(old.len(), 1, "{old:?}");
        assert!(old[0].starts_with(&format!("{name}-record-")), "{old:?}");

        // What an interrupted write leaves: the new generation made, the old one not yet removed.
        let mut labels = labels::for_loop(&name);
        labels.insert(RECORD_LABEL.into(), second.to_json());
        labels.insert(WRITTEN_LABEL.into(), now_nanos().to_string());
        let new = volume(&name, &second.to_json());
        docker.create_volume(&new, &labels).await.unwrap();
        assert_eq!(
            read(&docker, &name).await.unwrap(),
            Some(second.clone()),
            "the newest wins"
        );
        assert!(!write(&docker, &name, &second).await.unwrap());
        assert_eq!(
            record_volumes(&docker, &name).await,
            vec![new.clone()],
            "the older one is gone"
        );

        let data = format!("{name}-restate-data");
        docker.create_volume(&data, &labels::for_loop(&name)).await.unwrap();
        remove_loop(&docker, &name, Keep::Cluster { node: None }).await.unwrap();
        assert_eq!(
            read(&docker, &name).await.unwrap(),
            Some(second),
            "kept with the cluster"
        );
        assert_eq!(docker.volume_labels(&data).await.unwrap(), None);
        remove_loop(&docker, &name, Keep::Nothing).await.unwrap();
        assert_eq!(read(&docker, &name).await.unwrap(), None);
    }
}
