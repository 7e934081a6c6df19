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

/// The snapshotter containerd's CRI plugin uses in the node (kind's entrypoint may switch it).
async fn snapshotter(docker: &Docker, node: &str) -> Result<String> {
    let cmd = ["containerd", "config", "dump"];
    let out = docker.exec(node, &cmd).await?.check(node, &cmd)?;
    snapshotter_from_config(&out.stdout).map_err(|why| {
        Error::failed(format!(
            "cannot tell which snapshotter containerd uses in node {node}: {why}"
        ))
        .hint("the node image's containerd is not one kind supports; try the default --node-image")
    })
}

/// Reads `containerd config dump` as kind does, as TOML: containerd 2 writes it with single-quoted keys and
/// strings (`[plugins.'io.containerd.cri.v1.images']`, config version 3 or 4), containerd 1.x with double quotes
/// under the CRI plugin's `containerd` table (version 2).
fn snapshotter_from_config(config: &str) -> std::result::Result<String, String> {
    let parsed: toml::Table = toml::from_str(config).map_err(|e| format!("its config dump is not TOML ({e})"))?;
    let version = parsed.get("version").and_then(toml::Value::as_integer);
    let path: &[&str] = match version {
        Some(2) => &["plugins", "io.containerd.grpc.v1.cri", "containerd", "snapshotter"],
        Some(3 | 4) => &["plugins", "io.containerd.cri.v1.images", "snapshotter"],
        Some(v) => return Err(format!("unknown config version {v} (known: 2, 3 and 4)")),
        None => return Err("its config dump has no version".into()),
    };
    let mut value = parsed.get(path[0]);
    for key in &path[1..] {
        value = value.and_then(|v| v.get(key));
    }
    match value.and_then(toml::Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(format!(
            "its config (version {}) has no {}",
            version.unwrap_or_default(),
            path.join(".")
        )),
    }
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
    fn snapshotter_is_read_from_containerd_2s_dump() {
        let dump = include_str!("../../../fixtures/containerd/config-dump-2.3.4.toml");
        assert_eq!(snapshotter_from_config(dump).as_deref(), Ok("overlayfs"));
    }

    #[test]
    fn snapshotter_is_read_from_containerd_1s_dump() {
        let dump = include_str!("../../../fixtures/containerd/config-dump-1.6.toml");
        assert_eq!(snapshotter_from_config(dump).as_deref(), Ok("overlayfs"));
    }

    #[test]
    fn a_switched_snapshotter_is_found_in_either_generation() {
        let v3 = "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'fuse-overlayfs'\n\
                  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n  snapshotter = ''\n";
        assert_eq!(snapshotter_from_config(v3).as_deref(), Ok("fuse-overlayfs"));
        let v2 = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n";
        assert_eq!(snapshotter_from_config(v2).as_deref(), Ok("native"));
    }

    #[test]
    fn an_unreadable_dump_is_an_error_that_says_why() {
        assert!(
            snapshotter_from_config("version = 9\n")
                .unwrap_err()
                .contains("unknown config version 9")
        );
        assert!(
            snapshotter_from_config("snapshotter = 'x'\n")
                .unwrap_err()
                .contains("no version")
        );
        assert!(
            snapshotter_from_config("version = 3\n")
                .unwrap_err()
                .contains("io.containerd.cri.v1.images")
        );
        assert!(snapshotter_from_config("[[").unwrap_err().contains("not TOML"));
    }
}
