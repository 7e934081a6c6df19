//! Images restate-dev assembles itself, from local binaries, so that no registry is needed: the sample service
//! from restate-dev's own executable, and the Restate server from a `restate-server` binary. Both are `FROM
//! scratch` builds of an in-memory context, tagged by the content of their binary, so an unchanged binary is
//! never rebuilt.

// The runtimes (kind, docker) call this; until they are merged, parts are unused.
#![allow(dead_code, unused_imports)]

mod elf;
mod restate;
mod rootfs;
mod sample;

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::docker::{BuildContext, Docker};
use crate::error::Result;
use crate::ui::Ui;
pub use restate::{
    CA_BUNDLE_PATH, RestateImage, RestateSource, assemble_restate_image, build_restate_image, check_restate_binary,
    ensure_restate_image, restate_reference_of,
};
pub use rootfs::Rootfs;
pub use sample::{
    SAMPLE_PORT, build_sample_image, ensure_sample_image, sample_image_from, sample_reference, sample_reference_of,
};

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

/// Labels of the images we build: managed-by only, without the loop's name. An image is tagged by content, so
/// two loops share it; `down --images` removes the managed images that no container uses any more.
pub fn image_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(
        crate::labels::MANAGED_BY_KEY.to_string(),
        crate::labels::MANAGED_BY.to_string(),
    )])
}

/// How to assemble one image: its files, and the Dockerfile lines after the copies.
struct Recipe {
    rootfs: Rootfs,
    tail: String,
}

impl Recipe {
    fn dockerfile(&self) -> String {
        format!("FROM scratch\n{}{}", self.rootfs.copy_lines("rootfs"), self.tail)
    }

    /// `repository:tag`, the tag hashing the main binary and the recipe: a binary built into an image by an
    /// older (or newer) restate-dev gets a different tag, so an image made another way is never mistaken for ours.
    fn reference(&self, repository: &str, binary: &[u8]) -> String {
        let paths = self.rootfs.paths().join("\n");
        let tag = content_tag(&[binary, self.dockerfile().as_bytes(), paths.as_bytes()]);
        format!("{REPOSITORY_PREFIX}/{repository}:{tag}")
    }

    /// Builds `reference` under a progress step.
    async fn build(&self, docker: &Docker, reference: &str, ui: &Ui) -> Result<()> {
        let step = ui.step(format!("build image {reference}"));
        let mut context = BuildContext::new();
        self.rootfs.write_to(&mut context, "rootfs")?;
        context.add("Dockerfile", 0o644, self.dockerfile().as_bytes())?;
        let tar = context.into_tar()?;
        let size = tar.len();
        docker.build_image(reference, &image_labels(), tar).await?;
        step.done(format!("({} MiB context)", size / (1024 * 1024)));
        Ok(())
    }

    /// Builds `reference` unless it exists already.
    async fn ensure(&self, docker: &Docker, reference: &str, ui: &Ui) -> Result<()> {
        if docker.image_exists(reference).await? {
            ui.info(format!("· image {reference} exists"));
            return Ok(());
        }
        self.build(docker, reference, ui).await
    }
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
