//! Images restate-dev assembles itself, from local binaries, so that no registry is needed: the sample service
//! from restate-dev's own executable, and the Restate server from a `restate-server` binary. Both are `FROM
//! scratch` builds of an in-memory context, tagged by the content of their binary, so an unchanged binary is
//! never rebuilt.

mod elf;
mod restate;
mod rootfs;
mod sample;
mod tag;

use std::collections::BTreeMap;

use crate::docker::{BuildContext, Docker};
use crate::error::Result;
use crate::ui::Ui;
pub use restate::{check_restate_binary, ensure_restate_image};
pub use rootfs::Rootfs;
pub use sample::{ensure_sample_image, sample_reference};
pub use tag::file_tag;

/// Where our own images live; a dotted host keeps them apart from Docker Hub names.
pub const REPOSITORY_PREFIX: &str = "restate-dev.local";

/// Labels of the images we build: managed-by only, without the loop's name. An image is tagged by content, so
/// two loops share it; `down --images` removes the managed images that no container uses any more.
pub fn image_labels() -> BTreeMap<String, String> {
    crate::labels::shared()
}

/// Builds `reference` from `rootfs` (copied to `/`) and the rest of a Dockerfile, under a progress step.
async fn build(docker: &Docker, reference: &str, rootfs: &Rootfs, dockerfile_tail: &str, ui: &Ui) -> Result<()> {
    let step = ui.step(format!("build image {reference}"));
    let mut context = BuildContext::new();
    rootfs.write_to(&mut context, "rootfs")?;
    let dockerfile = format!("FROM scratch\nCOPY rootfs/ /\n{dockerfile_tail}");
    context.add("Dockerfile", 0o644, dockerfile.as_bytes())?;
    let tar = context.into_tar()?;
    let size = tar.len();
    docker.build_image(reference, &image_labels(), tar).await?;
    step.done(format!("({} MiB context)", size / (1024 * 1024)));
    Ok(())
}

/// Removes our images that no container uses (`down --images`); they are shared by loops, so one in use stays.
pub async fn remove_unused(docker: &Docker) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for image in docker.list_images(&image_labels()).await? {
        if docker.image_in_use(&image.id).await? {
            continue;
        }
        // By tag, so an image with several tags loses each without a forced removal.
        let references = if image.tags.is_empty() {
            vec![image.id.clone()]
        } else {
            image.tags.clone()
        };
        for reference in references {
            if docker.remove_image(&reference).await? {
                removed.push(format!("image {reference}"));
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn image_labels_name_no_loop() {
        let labels = super::image_labels();
        assert_eq!(labels.len(), 1);
        assert_eq!(labels[crate::labels::MANAGED_BY_KEY], crate::labels::MANAGED_BY);
    }
}
