//! Loading a local Docker image into the node's containerd: the `docker save` stream goes straight into
//! `ctr images import -` through exec stdin, with no temporary file (k3d's direct mode; kind writes a file first).

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::docker::{Docker, ExecOutput};
use crate::error::{Error, Result};
use crate::ui::Ui;

/// kind's import flags, without `--all-platforms`: Docker exports the local platform only, and an export that
/// names other platforms fails in ctr with "content digest not found" (kind#3795).
pub fn import_command(snapshotter: &str) -> Vec<String> {
    [
        "ctr",
        "--namespace=k8s.io",
        "images",
        "import",
        "--digests",
        &format!("--snapshotter={snapshotter}"),
        "-",
    ]
    .map(str::to_string)
    .to_vec()
}

/// The image's export, calling `observe` with every chunk on its way (for a progress bar, or a test's hash).
pub fn export_stream(
    docker: &Docker,
    image: &str,
    mut observe: impl FnMut(&Bytes) + Send,
) -> impl Stream<Item = Result<Bytes>> + Send {
    docker.export_image(image).map(move |chunk| {
        if let Ok(bytes) = &chunk {
            observe(bytes);
        }
        chunk
    })
}

/// Streams the export of `image` into `cmd`'s stdin inside `container`; the command's output.
pub async fn stream_into(
    docker: &Docker,
    container: &str,
    image: &str,
    cmd: &[&str],
    observe: impl FnMut(&Bytes) + Send,
) -> Result<ExecOutput> {
    docker
        .exec_with_stdin(container, cmd, export_stream(docker, image, observe))
        .await
}

/// The image id containerd in the node knows `image` by, if it has it.
async fn node_image_id(docker: &Docker, node: &str, image: &str) -> Result<Option<String>> {
    let out = docker.exec(node, &["crictl", "inspecti", "-o", "json", image]).await?;
    if out.exit_code != 0 {
        return Ok(None);
    }
    let parsed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    Ok(parsed["status"]["id"].as_str().map(str::to_string))
}

/// The snapshotter containerd's CRI plugin uses in the node (kind's images may switch it); overlayfs if unsure.
async fn snapshotter(docker: &Docker, node: &str) -> Result<String> {
    let out = docker.exec(node, &["containerd", "config", "dump"]).await?;
    Ok(snapshotter_from_config(&out.stdout).unwrap_or_else(|| "overlayfs".into()))
}

fn snapshotter_from_config(config: &str) -> Option<String> {
    config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("snapshotter = "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .find(|v| !v.is_empty())
}

/// Loads `image` into the node unless it already has the same image id; false when it had.
pub async fn load(docker: &Docker, node: &str, image: &str, ui: &Ui) -> Result<bool> {
    let step = ui.step(format!("load {image}"));
    let local = docker.inspect_image(image).await?.ok_or_else(|| {
        Error::prerequisite(format!("image {image} is not present in the local Docker")).hint(format!(
            "build it, or `docker pull {image}`, before loading it into the cluster"
        ))
    })?;
    if node_image_id(docker, node, image).await?.as_deref() == Some(local.id.as_str()) {
        step.skipped("already in the node");
        return Ok(false);
    }
    let snapshotter = snapshotter(docker, node).await?;
    let cmd = import_command(&snapshotter);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let bar = ui.bytes(format!("streaming {image}"), Some(local.size));
    let progress = bar.clone();
    let output = stream_into(docker, node, image, &cmd, move |chunk| progress.inc(chunk.len() as u64)).await;
    bar.finish_and_clear();
    output?.check(node, &cmd)?;
    step.done(format!("into {node}"));
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_is_single_platform_with_digests() {
        let cmd = import_command("overlayfs").join(" ");
        assert_eq!(
            cmd,
            "ctr --namespace=k8s.io images import --digests --snapshotter=overlayfs -"
        );
        assert!(!cmd.contains("--all-platforms"));
    }

    #[test]
    fn snapshotter_is_read_from_the_config_dump() {
        let dump = "[plugins.\"io.containerd.cri.v1.images\"]\n  snapshotter = \"\"\n\
                    [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n    snapshotter = \"fuse-overlayfs\"\n";
        assert_eq!(snapshotter_from_config(dump).as_deref(), Some("fuse-overlayfs"));
        assert_eq!(snapshotter_from_config("version = 3\n"), None);
    }
}
