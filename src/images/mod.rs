//! Images restate-dev assembles itself, from local binaries, so that no registry is needed: the sample service
//! from restate-dev's own executable, and the Restate server from a `restate-server` binary. Both are `FROM
//! scratch` builds of an in-memory context, tagged by the content of their binary and their recipe, so an
//! unchanged binary is never rebuilt.

mod elf;
mod restate;
mod rootfs;
mod sample;
mod tag;

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::docker::{BuildContext, Docker};
use crate::error::{Context, Result};
use crate::ui::Ui;
pub use restate::{
    CA_BUNDLE_PATH, RestateImage, RestateSource, assemble_restate_image, build_restate_image, check_restate_binary,
    ensure_restate_image, restate_reference_of, restate_server_on_path,
};
pub use rootfs::Rootfs;
pub use sample::{
    SAMPLE_PORT, build_sample_image, ensure_sample_image, is_sample, sample_image_from, sample_reference,
    sample_reference_of,
};
pub use tag::file_tag;

/// Where our own images live; a dotted host keeps them apart from Docker Hub names.
pub const REPOSITORY_PREFIX: &str = "restate-dev.local";

/// The first 12 hex digits of the SHA-256 of `parts`, in order.
pub fn content_tag(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The start of an executable, where its ELF headers and loader path are: reading the whole 225 MB of
/// restate-server on every `up` only to learn that it is static would cost a third of a second.
fn executable_head(path: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).failed(|| format!("cannot read {}", path.display()))?;
    let mut head = Vec::new();
    file.take(1 << 16)
        .read_to_end(&mut head)
        .failed(|| format!("cannot read {}", path.display()))?;
    Ok(head)
}

/// Labels of the images we build: managed-by only, without the loop's name. An image is tagged by content, so
/// two loops share it; `down --images` removes the managed images that no container uses any more.
pub fn image_labels() -> BTreeMap<String, String> {
    crate::labels::shared()
}

/// How to assemble one image: its files, and the Dockerfile lines after the copies.
struct Recipe {
    rootfs: Rootfs,
    tail: String,
    /// `repository:tag`, the tag hashing the main binary's tag and the recipe: a binary built into an image by an
    /// older (or newer) restate-dev gets a different tag, so an image made another way is never mistaken for ours.
    reference: String,
}

impl Recipe {
    fn new(repository: &str, binary_tag: &str, rootfs: Rootfs, tail: String) -> Self {
        let dockerfile = dockerfile(&rootfs, &tail);
        let paths = rootfs.paths().join("\n");
        let tag = content_tag(&[binary_tag.as_bytes(), dockerfile.as_bytes(), paths.as_bytes()]);
        let reference = format!("{REPOSITORY_PREFIX}/{repository}:{tag}");
        Recipe {
            rootfs,
            tail,
            reference,
        }
    }

    /// Builds the image as `reference` (default: its content reference) under a progress step, even if it exists.
    async fn build_as(&self, docker: &Docker, reference: Option<&str>, ui: &Ui) -> Result<String> {
        let reference = reference.unwrap_or(&self.reference);
        let step = ui.step(format!("build image {reference}"));
        let mut context = BuildContext::new();
        self.rootfs.write_to(&mut context, "rootfs")?;
        context.add("Dockerfile", 0o644, dockerfile(&self.rootfs, &self.tail).as_bytes())?;
        let tar = context.into_tar()?;
        let size = tar.len();
        docker.build_image(reference, &image_labels(), tar).await?;
        step.done(format!("({} MiB context)", size / (1024 * 1024)));
        Ok(reference.to_string())
    }

    /// Builds the image unless its content reference exists already; the reference.
    async fn ensure(&self, docker: &Docker, ui: &Ui) -> Result<String> {
        if docker.image_exists(&self.reference).await? {
            ui.info(format!("· image {} exists", self.reference));
            return Ok(self.reference.clone());
        }
        self.build_as(docker, None, ui).await
    }
}

fn dockerfile(rootfs: &Rootfs, tail: &str) -> String {
    format!("FROM scratch\n{}{tail}", rootfs.copy_lines("rootfs"))
}

/// Removes our images that no container uses (`down --images`); they are shared by loops, so one in use stays.
pub async fn remove_unused(docker: &Docker) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut untagged = Vec::new();
    for image in docker.list_images(&image_labels()).await? {
        if docker.image_in_use(&image.id).await? {
            continue;
        }
        let tags: Vec<&String> = image.tags.iter().filter(|t| t.as_str() != "<none>:<none>").collect();
        if tags.is_empty() {
            untagged.push(image.id);
            continue;
        }
        // By tag, so an image with several tags loses each without a forced removal; Docker then prunes the
        // untagged layers beneath it.
        for tag in tags {
            if docker.remove_image(tag).await? {
                removed.push(format!("image {tag}"));
            }
        }
    }
    // What is left untagged: images a rebuild replaced, or build layers already pruned with their image above.
    for id in untagged {
        match docker.remove_image(&id).await {
            Ok(true) => removed.push(format!("image {}", short_id(&id))),
            Ok(false) => {}
            Err(e) if crate::docker::is_conflict(&e) => {} // still the base of another image
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

fn short_id(id: &str) -> &str {
    let hex = id.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_are_short_stable_hashes() {
        assert_eq!(super::content_tag(&[b"abc"]), "ce91dc5eec01");
        assert_ne!(super::content_tag(&[b"ab", b"c"]), super::content_tag(&[b"a", b"bc"]));
    }

    #[test]
    fn image_labels_name_no_loop() {
        let labels = super::image_labels();
        assert_eq!(labels.len(), 1);
        assert_eq!(labels[crate::labels::MANAGED_BY_KEY], crate::labels::MANAGED_BY);
    }
}
