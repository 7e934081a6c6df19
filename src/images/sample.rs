//! The sample service's image: restate-dev's own executable, whose hidden `serve-sample` command serves the
//! Greeter and Counter on $PORT.

use std::path::Path;

use super::{REPOSITORY_PREFIX, Rootfs, build, file_tag};
use crate::docker::Docker;
use crate::error::{Context, Result};
use crate::ui::Ui;

const EXE_PATH: &str = "/usr/local/bin/restate-dev";
/// The sample's port inside the container.
pub const SAMPLE_PORT: u16 = 9080;
/// A non-root user id (the "nonroot" id of distroless images); nothing in the image needs a name for it.
const USER: &str = "65532:65532";

/// The sample service's image, tagged by the content of this executable (never `latest`).
pub fn sample_reference() -> Result<String> {
    let exe = std::env::current_exe().failed(|| "cannot find restate-dev's own executable".into())?;
    reference_for(&exe)
}

fn reference_for(exe: &Path) -> Result<String> {
    Ok(format!("{REPOSITORY_PREFIX}/greeter:{}", file_tag(exe)?))
}

/// The sample image of this executable, built unless its tag already exists; its reference.
pub async fn ensure_sample_image(docker: &Docker, ui: &Ui) -> Result<String> {
    let exe = std::env::current_exe().failed(|| "cannot find restate-dev's own executable".into())?;
    sample_image_from(docker, &exe, ui).await
}

/// The sample image of the restate-dev executable at `exe`, built unless its tag already exists.
async fn sample_image_from(docker: &Docker, exe: &Path, ui: &Ui) -> Result<String> {
    let reference = reference_for(exe)?;
    if docker.image_exists(&reference).await? {
        ui.info(format!("· image {reference} exists"));
        return Ok(reference);
    }
    let bytes = std::fs::read(exe).failed(|| format!("cannot read {}", exe.display()))?;
    let mut rootfs = Rootfs::default();
    rootfs.add_executable(exe, &bytes, EXE_PATH)?;
    drop(bytes);
    let tail = format!(
        "USER {USER}\nENV PORT={SAMPLE_PORT}\nEXPOSE {SAMPLE_PORT}\nENTRYPOINT [\"{EXE_PATH}\", \"serve-sample\"]\n"
    );
    build(docker, &reference, &rootfs, &tail, ui).await?;
    Ok(reference)
}
