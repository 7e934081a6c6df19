//! The sample service's image: restate-dev's own executable, whose hidden `serve-sample` command serves the
//! Greeter and Counter on $PORT.

use std::path::Path;

use super::{Recipe, Rootfs, executable_head, file_tag};
use crate::docker::Docker;
use crate::error::{Context, Error, Result};
use crate::ui::Ui;

const EXE_PATH: &str = "/usr/local/bin/restate-dev";
/// The sample's port inside the container.
pub const SAMPLE_PORT: u16 = 9080;
/// A non-root user id (the "nonroot" id of distroless images); nothing in the image needs a name for it.
const USER: &str = "65532:65532";

/// The sample's repository: `restate-dev.local/greeter`, tagged by the executable it was built from.
const SAMPLE_REPOSITORY: &str = "greeter";

/// Whether `reference` is a built-in sample image, of this or any other restate-dev executable.
pub fn is_sample(reference: &str) -> bool {
    reference
        .strip_prefix(super::REPOSITORY_PREFIX)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.strip_prefix(SAMPLE_REPOSITORY))
        .is_some_and(|rest| rest.starts_with(':'))
}

/// The sample service's image of this executable, tagged by content (never `latest`).
pub fn sample_reference() -> Result<String> {
    sample_reference_of(&current_exe()?)
}

/// The sample image's reference for the restate-dev executable at `exe`.
pub fn sample_reference_of(exe: &Path) -> Result<String> {
    Ok(prepare(exe)?.reference)
}

/// The sample image of this executable, built unless its tag already exists; its reference.
pub async fn ensure_sample_image(docker: &Docker, ui: &Ui) -> Result<String> {
    sample_image_from(docker, &current_exe()?, ui).await
}

/// The sample image of the restate-dev executable at `exe`, built unless its tag already exists.
pub async fn sample_image_from(docker: &Docker, exe: &Path, ui: &Ui) -> Result<String> {
    prepare(exe)?.ensure(docker, ui).await
}

/// Builds the sample image of `exe` as `reference` (default: its content reference), even if it exists.
pub async fn build_sample_image(docker: &Docker, exe: &Path, reference: Option<&str>, ui: &Ui) -> Result<String> {
    prepare(exe)?.build_as(docker, reference, ui).await
}

fn current_exe() -> Result<std::path::PathBuf> {
    std::env::current_exe().failed(|| "cannot find restate-dev's own executable".into())
}

fn prepare(exe: &Path) -> Result<Recipe> {
    if !cfg!(target_os = "linux") {
        return Err(Error::prerequisite(
            "the built-in sample image is assembled from restate-dev's own executable, which must be a Linux one",
        )
        .hint("pass your service's image with --service-image (and --verify or --no-verify)"));
    }
    let mut rootfs = Rootfs::default();
    rootfs.add_executable(exe, &executable_head(exe)?, EXE_PATH)?;
    let tail = format!(
        "USER {USER}\nENV PORT={SAMPLE_PORT}\nEXPOSE {SAMPLE_PORT}\nENTRYPOINT [\"{EXE_PATH}\", \"serve-sample\"]\n"
    );
    Ok(Recipe::new(SAMPLE_REPOSITORY, &file_tag(exe)?, rootfs, tail))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sample_images_are_told_by_their_repository() {
        assert!(super::is_sample("restate-dev.local/greeter:0123456789ab"));
        assert!(!super::is_sample("restate-dev.local/greeter-x:1"));
        assert!(!super::is_sample("restate-dev.local/restate-server:1"));
        assert!(!super::is_sample("my/greeter:1"));
    }
}
