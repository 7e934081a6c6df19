//! Images: inspect, list by label, remove, export as a tar stream, pull with a progress bar, and build from an
//! in-memory build context (how we assemble images with no base image and no registry).

use std::collections::{BTreeMap, HashMap};

use bollard::query_parameters::{
    BuildImageOptions, CreateImageOptions, ListContainersOptions, ListImagesOptions, RemoveImageOptions,
};
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::containers::describe;
use super::{Docker, is_not_found, label_filters, to_btree, to_hash};
use crate::error::{Error, Result};
use crate::ui::Ui;

/// An image as inspected or listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    pub tags: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub size: u64,
}

/// A build context assembled in memory: a tar of files plus a Dockerfile.
pub struct BuildContext {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for BuildContext {
    fn default() -> Self {
        Self::new()
    }
}

impl BuildContext {
    pub fn new() -> Self {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Deterministic);
        BuildContext { tar }
    }

    /// Adds a file at `path` (relative to the context root) with the given mode.
    pub fn add(&mut self, path: &str, mode: u32, bytes: &[u8]) -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        self.tar
            .append_data(&mut header, path, bytes)
            .map_err(|e| Error::failed(format!("cannot add {path} to a build context")).source(e))
    }

    /// Adds an empty directory with the given mode.
    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Directory);
        self.tar
            .append_data(
                &mut header,
                format!("{}/", path.trim_end_matches('/')),
                std::io::empty(),
            )
            .map_err(|e| Error::failed(format!("cannot add {path} to a build context")).source(e))
    }

    /// Adds the file at `host_path` (following symlinks) as `path`, with `mode` or else the host's permissions.
    pub fn add_host_file(&mut self, path: &str, host_path: &std::path::Path, mode: Option<u32>) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let bytes = std::fs::read(host_path)
            .map_err(|e| Error::failed(format!("cannot read {}", host_path.display())).source(e))?;
        let mode = mode.unwrap_or_else(|| {
            std::fs::metadata(host_path)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0o644)
        });
        self.add(path, mode, &bytes)
    }

    pub fn into_tar(self) -> Result<Vec<u8>> {
        self.tar
            .into_inner()
            .map_err(|e| Error::failed("cannot finish a build context").source(e))
    }
}

impl Docker {
    /// None when the image is not present locally.
    pub async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>> {
        match self.client.inspect_image(reference).await {
            Ok(i) => Ok(Some(ImageInfo {
                id: i.id.unwrap_or_default(),
                tags: i.repo_tags.unwrap_or_default(),
                labels: to_btree(i.config.and_then(|c| c.labels)),
                size: i.size.unwrap_or_default().try_into().unwrap_or_default(),
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.fail(e, "inspect image", reference)),
        }
    }

    pub async fn image_exists(&self, reference: &str) -> Result<bool> {
        Ok(self.inspect_image(reference).await?.is_some())
    }

    /// Images carrying every one of `labels`.
    pub async fn list_images(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ImageInfo>> {
        let options = ListImagesOptions {
            filters: Some(label_filters(labels)),
            ..Default::default()
        };
        let list = self
            .client
            .list_images(Some(options))
            .await
            .map_err(|e| self.fail(e, "list images labelled", &describe(labels)))?;
        Ok(list
            .into_iter()
            .map(|i| ImageInfo {
                id: i.id,
                tags: i.repo_tags,
                labels: i.labels.into_iter().collect(),
                size: i.size.try_into().unwrap_or_default(),
            })
            .collect())
    }

    /// Whether any container, running or not, was made from this image.
    pub async fn image_in_use(&self, reference: &str) -> Result<bool> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("ancestor".to_string(), vec![reference.to_string()])])),
            ..Default::default()
        };
        let list = self
            .client
            .list_containers(Some(options))
            .await
            .map_err(|e| self.fail(e, "list the containers of image", reference))?;
        Ok(!list.is_empty())
    }

    /// Removes the image (by tag or id); false when it did not exist. Docker refuses while a container uses it.
    pub async fn remove_image(&self, reference: &str) -> Result<bool> {
        match self
            .client
            .remove_image(reference, None::<RemoveImageOptions>, None)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.fail(e, "remove image", reference)),
        }
    }

    /// The image as a `docker save` tar, streamed. Naming one image exports the local platform only, which is
    /// what `ctr images import` needs (multi-platform exports fail there, kind#3795).
    pub fn export_image(&self, reference: &str) -> impl Stream<Item = Result<Bytes>> + Send + use<> {
        let docker = self.clone();
        let reference = reference.to_string();
        self.client
            .export_image(&reference)
            .map(move |chunk| chunk.map_err(|e| docker.fail(e, "export image", &reference)))
    }

    /// Pulls `reference`, showing one bar driven by the layers' download progress. Any failure (offline, no
    /// such image, no access) is a Prerequisite error saying how to provide the image without a registry.
    pub async fn pull_image(&self, reference: &str, ui: &Ui) -> Result<()> {
        let (from_image, tag) = split_reference(reference);
        let options = CreateImageOptions {
            from_image: Some(from_image.to_string()),
            tag: tag.map(str::to_string),
            ..Default::default()
        };
        let bar = ui.bytes(format!("pulling {reference}"), None);
        let mut layers: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut stream = self.client.create_image(Some(options), None, None);
        let offline = |cause: anyhow::Error| {
            Error::prerequisite(format!("cannot pull image {reference}"))
                .source(cause)
                .hint(format!(
                    "without registry access, save it where you can pull it (`docker pull {reference} && \
                     docker save {reference} -o image.tar`) and load it here with `docker load -i image.tar`"
                ))
        };
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| offline(e.into()))?;
            if let Some(detail) = info.error_detail {
                return Err(offline(anyhow::anyhow!(detail.message.unwrap_or_default())));
            }
            let (Some(id), Some(status)) = (info.id, info.status) else {
                continue;
            };
            let entry = layers.entry(id).or_default();
            match (status.as_str(), info.progress_detail) {
                ("Downloading", Some(p)) => {
                    entry.0 = p.current.unwrap_or_default().max(0) as u64;
                    entry.1 = p.total.unwrap_or_default().max(0) as u64;
                }
                ("Download complete" | "Pull complete" | "Already exists", _) => entry.0 = entry.1,
                _ => {}
            }
            let (done, total) = layers.values().fold((0, 0), |(d, t), (c, n)| (d + c, t + n));
            if total > 0 {
                bar.set_length(total);
            }
            bar.set_position(done);
        }
        bar.finish_and_clear();
        if !self.image_exists(reference).await? {
            return Err(offline(anyhow::anyhow!("the pull ended but the image is not present")));
        }
        Ok(())
    }

    /// Builds `tag` from a build context whose Dockerfile is at its root, adding `labels`; the image id.
    pub async fn build_image(&self, tag: &str, labels: &BTreeMap<String, String>, context: Vec<u8>) -> Result<String> {
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(tag.to_string()),
            labels: Some(to_hash(labels)),
            rm: true,
            forcerm: true,
            ..Default::default()
        };
        let body = bollard::body_full(Bytes::from(context));
        let mut stream = self.client.build_image(options, None, Some(body));
        let mut log = Vec::new();
        let mut id = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| self.fail(e, "build image", tag))?;
            if let Some(detail) = info.error_detail {
                let mut error = Error::failed(format!("cannot build image {tag}"))
                    .source(anyhow::anyhow!(detail.message.unwrap_or_default()));
                for line in log.iter().rev().take(10).rev() {
                    error = error.detail(format!("| {line}"));
                }
                return Err(error);
            }
            if let Some(line) = info.stream {
                let line = line.trim_end();
                if let Some(rest) = line.strip_prefix("Successfully built ") {
                    id = Some(rest.trim().to_string());
                }
                if !line.is_empty() {
                    log.push(line.to_string());
                }
            }
            if let Some(aux) = info.aux.and_then(|a| a.id) {
                id = Some(aux);
            }
        }
        match id {
            Some(id) => Ok(id),
            None => self
                .inspect_image(tag)
                .await?
                .map(|i| i.id)
                .ok_or_else(|| Error::failed(format!("building image {tag} finished without an image"))),
        }
    }
}

/// `repo[:tag][@digest]` into what the pull API wants: the name (with digest, if any) and the tag.
fn split_reference(reference: &str) -> (&str, Option<&str>) {
    if reference.contains('@') {
        return (reference, None);
    }
    let last = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last..].rfind(':') {
        Some(i) => (&reference[..last + i], Some(&reference[last + i + 1..])),
        None => (reference, Some("latest")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_name_and_tag() {
        assert_eq!(
            split_reference("docker.restate.dev/restatedev/restate:1.7.12"),
            ("docker.restate.dev/restatedev/restate", Some("1.7.12"))
        );
        assert_eq!(
            split_reference("localhost:5000/x"),
            ("localhost:5000/x", Some("latest"))
        );
        assert_eq!(split_reference("a/b@sha256:00"), ("a/b@sha256:00", None));
    }

    #[test]
    fn build_contexts_are_tars() {
        let mut context = BuildContext::new();
        context.add("Dockerfile", 0o644, b"FROM scratch\n").unwrap();
        let tar = context.into_tar().unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["Dockerfile"]);
    }
}
