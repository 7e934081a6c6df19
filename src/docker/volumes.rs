//! Volumes: created labelled, found by label, removed.

use std::collections::BTreeMap;

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{ListVolumesOptions, RemoveVolumeOptions};

use super::containers::describe;
use super::{Docker, is_not_found, label_filters, to_hash};
use crate::error::Result;

impl Docker {
    /// Creates a local volume (or finds the one of that name); its name.
    pub async fn create_volume(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<String> {
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(to_hash(labels)),
            ..Default::default()
        };
        let volume = self
            .client
            .create_volume(request)
            .await
            .map_err(|e| self.fail(e, "create volume", name))?;
        Ok(volume.name)
    }

    /// The labels of volume `name`; None when no such volume exists.
    pub async fn volume_labels(&self, name: &str) -> Result<Option<BTreeMap<String, String>>> {
        match self.client.inspect_volume(name).await {
            Ok(volume) => Ok(Some(volume.labels.into_iter().collect())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.fail(e, "inspect volume", name)),
        }
    }

    /// Names of the volumes carrying every one of `labels`.
    pub async fn list_volumes(&self, labels: &BTreeMap<String, String>) -> Result<Vec<String>> {
        let options = ListVolumesOptions {
            filters: Some(label_filters(labels)),
        };
        let list = self
            .client
            .list_volumes(Some(options))
            .await
            .map_err(|e| self.fail(e, "list volumes labelled", &describe(labels)))?;
        let mut names: Vec<String> = list.volumes.unwrap_or_default().into_iter().map(|v| v.name).collect();
        names.sort();
        Ok(names)
    }

    /// Removes the volume; false when it did not exist. Docker refuses while a container uses it.
    pub async fn remove_volume(&self, name: &str) -> Result<bool> {
        match self.client.remove_volume(name, None::<RemoveVolumeOptions>).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.fail(e, "remove volume", name)),
        }
    }
}
