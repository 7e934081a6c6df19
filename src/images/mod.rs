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
    CA_BUNDLE_PATH, RestateImage, RestateSource, assemble_restate_image, check_restate_binary, ensure_restate_image,
};
pub use rootfs::Rootfs;
pub use sample::{ensure_sample_image, sample_image_from, sample_reference};

/// Where our own images live; a dotted host keeps them apart from Docker Hub names.
pub const REPOSITORY_PREFIX: &str = "restate-dev.local";

/// The first 12 hex digits of the SHA-256 of `bytes`.
pub fn content_tag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Labels of the images we build: managed-by only, without the loop's name. An image is tagged by content, so
/// two loops share it; `down --images` removes the managed images that no container uses any more.
pub fn image_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(
        crate::labels::MANAGED_BY_KEY.to_string(),
        crate::labels::MANAGED_BY.to_string(),
    )])
}

/// Builds `reference` from `rootfs` (copied to `/`) and the rest of a Dockerfile, under a progress step.
async fn build(docker: &Docker, reference: &str, rootfs: &Rootfs, dockerfile_tail: &str, ui: &Ui) -> Result<()> {
    let step = ui.step(format!("build image {reference}"));
    let mut context = BuildContext::new();
    rootfs.write_to(&mut context, "rootfs")?;
    let dockerfile = format!("FROM scratch\n{}{dockerfile_tail}", rootfs.copy_lines("rootfs"));
    context.add("Dockerfile", 0o644, dockerfile.as_bytes())?;
    let tar = context.into_tar()?;
    let size = tar.len();
    docker.build_image(reference, &image_labels(), tar).await?;
    step.done(format!("({} MiB context)", size / (1024 * 1024)));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_are_short_stable_hashes() {
        assert_eq!(super::content_tag(b"abc"), "ba7816bf8f01");
    }

    #[test]
    fn image_labels_name_no_loop() {
        let labels = super::image_labels();
        assert_eq!(labels.len(), 1);
        assert_eq!(labels[crate::labels::MANAGED_BY_KEY], crate::labels::MANAGED_BY);
    }
}
