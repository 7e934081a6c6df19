//! The Restate server image: pulled as configured, or assembled from a static `restate-server` binary when
//! asked (`--restate-binary`) or when the pull fails and one is on PATH.
//!
//! The assembled image holds only the binary and a CA bundle (without one the server panics at start, yet exits
//! 0). It runs as uid 1000 / gid 3000 like the Helm chart, with `/restate-data` (the server's default base dir,
//! the working directory being `/`) owned by that user and `/tmp` writable by all. Mount a volume at
//! `/restate-data` to keep data across containers; Kubernetes must, since the chart's root filesystem is read-only.

use std::path::{Path, PathBuf};

use super::{Recipe, Rootfs, executable_head, file_tag};
use crate::docker::Docker;
use crate::error::{Error, Kind, Result};
use crate::ui::Ui;

const BINARY_PATH: &str = "/usr/local/bin/restate-server";
/// The user of the Helm chart's securityContext (runAsUser 1000, runAsGroup 3000).
const USER: &str = "1000:3000";
/// Where the server (through rustls' native roots) looks for CA certificates.
pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";
/// CA bundles of the usual distributions, in the order we try them (after $SSL_CERT_FILE).
const HOST_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Where the chosen image came from, for messages and `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestateSource {
    /// Assembled from `--restate-binary`.
    Binary(PathBuf),
    /// The configured image, already present locally.
    Local,
    /// The configured image, pulled now.
    Pulled,
    /// The pull failed; assembled from the `restate-server` found on PATH.
    PathFallback(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestateImage {
    pub reference: String,
    pub source: RestateSource,
}

impl std::fmt::Display for RestateImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reference = &self.reference;
        match &self.source {
            RestateSource::Binary(path) => write!(f, "{reference} (from {})", path.display()),
            RestateSource::Local => write!(f, "{reference}"),
            RestateSource::Pulled => write!(f, "{reference} (pulled)"),
            RestateSource::PathFallback(path) => write!(f, "{reference} (from {} on PATH)", path.display()),
        }
    }
}

/// Checks that `path` is an executable ELF file, before anything is created. Errors name the path.
pub fn check_restate_binary(path: &Path) -> Result<()> {
    let bad = |why: &str| {
        Error::prerequisite(format!("--restate-binary {}: {why}", path.display()))
            .hint("give the path of a Linux restate-server executable (the npm package @restatedev/restate-server-linux-x64 has one in bin/)")
    };
    let metadata = std::fs::metadata(path).map_err(|e| bad("cannot read it").source(e))?;
    if !metadata.is_file() {
        return Err(bad("it is not a file"));
    }
    let mut head = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|e| bad("cannot read it").source(e))?;
    let read = std::io::Read::read(&mut file, &mut head).map_err(|e| bad("cannot read it").source(e))?;
    match &head[..read] {
        b"\x7fELF" => Ok(()),
        [b'#', b'!', ..] => Err(bad("it is a script, not the server executable")),
        _ => Err(bad("it is not an ELF executable")),
    }
}

/// The image to run Restate from, chosen in this order: `binary` (assembled), `configured` if present locally,
/// `configured` pulled, `restate-server` on PATH (assembled, with a note), else an error naming both ways out.
pub async fn ensure_restate_image(
    docker: &Docker,
    configured: &str,
    binary: Option<&Path>,
    ui: &Ui,
) -> Result<RestateImage> {
    if let Some(binary) = binary {
        check_restate_binary(binary)?;
        let reference = assemble_restate_image(docker, binary, ui).await?;
        return Ok(RestateImage {
            reference,
            source: RestateSource::Binary(binary.to_path_buf()),
        });
    }
    if docker.image_exists(configured).await? {
        return Ok(RestateImage {
            reference: configured.to_string(),
            source: RestateSource::Local,
        });
    }
    let pull_error = match docker.pull_image(configured, ui).await {
        Ok(()) => {
            return Ok(RestateImage {
                reference: configured.to_string(),
                source: RestateSource::Pulled,
            });
        }
        Err(e) if e.kind == Kind::Prerequisite => e,
        Err(e) => return Err(e),
    };
    match which::which("restate-server") {
        Ok(found) if check_restate_binary(&found).is_ok() => {
            // Said once, when the image is first assembled; later `up`s reuse it, and their images step names it.
            if !docker.image_exists(&restate_reference_of(&found)?).await? {
                ui.warn(format!(
                    "cannot pull {configured}; assembling the Restate image from {} instead",
                    found.display()
                ));
            }
            let reference = assemble_restate_image(docker, &found, ui).await?;
            Ok(RestateImage {
                reference,
                source: RestateSource::PathFallback(found),
            })
        }
        _ => Err(
            Error::prerequisite(format!("the Restate image {configured} is not available"))
                .detail(match &pull_error.source {
                    Some(cause) => format!("pulling it failed: {cause:#}"),
                    None => format!("pulling it failed: {}", pull_error.message),
                })
                .hint(format!(
                    "either give a restate-server binary with --restate-binary PATH, or load the image with \
                 `docker load -i image.tar` (made elsewhere by `docker save {configured} -o image.tar`)"
                )),
        ),
    }
}

/// Builds `restate-dev.local/restate-server:<hash of binary and recipe>` from `binary` unless it exists; the
/// reference.
pub async fn assemble_restate_image(docker: &Docker, binary: &Path, ui: &Ui) -> Result<String> {
    prepare(binary)?.ensure(docker, ui).await
}

/// Builds the Restate image of `binary` as `reference` (default: its content reference), even if it exists.
pub async fn build_restate_image(docker: &Docker, binary: &Path, reference: Option<&str>, ui: &Ui) -> Result<String> {
    prepare(binary)?.build_as(docker, reference, ui).await
}

/// The reference the Restate image assembled from `binary` gets.
pub fn restate_reference_of(binary: &Path) -> Result<String> {
    Ok(prepare(binary)?.reference)
}

fn prepare(binary: &Path) -> Result<Recipe> {
    let mut rootfs = Rootfs::default();
    rootfs.add_executable(binary, &executable_head(binary)?, BINARY_PATH)?;
    rootfs.add_host_file(&host_ca_bundle()?, CA_BUNDLE_PATH);
    rootfs.add_dir("/tmp", 0o1777);
    rootfs.add_owned_dir("/restate-data", 0o775, USER);
    let tail = format!("USER {USER}\nWORKDIR /\nEXPOSE 8080 9070 5122\nENTRYPOINT [\"{BINARY_PATH}\"]\n");
    Ok(Recipe::new("restate-server", &file_tag(binary)?, rootfs, tail))
}

/// The host's CA bundle: $SSL_CERT_FILE, else the first of the distributions' usual paths.
fn host_ca_bundle() -> Result<PathBuf> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    from_env
        .into_iter()
        .chain(HOST_CA_BUNDLES.iter().map(PathBuf::from))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::prerequisite("no CA certificate bundle found on this machine for the Restate image")
                .detail(format!("looked at $SSL_CERT_FILE, {}", HOST_CA_BUNDLES.join(", ")))
                .hint("install one (Debian: `apt-get install ca-certificates`) or set SSL_CERT_FILE to a PEM bundle")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_named() {
        let e = check_restate_binary(Path::new("/nonexistent/restate-server")).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.message.contains("/nonexistent/restate-server"), "{e}");
    }

    #[test]
    fn scripts_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = check_restate_binary(dir.path()).unwrap_err();
        assert!(e.message.contains("not a file"), "{e}");
        let script = dir.path().join("restate-server");
        std::fs::write(&script, "#!/usr/bin/env node\n").unwrap();
        let e = check_restate_binary(&script).unwrap_err();
        assert!(e.message.contains("script"), "{e}");
        assert!(check_restate_binary(&std::env::current_exe().unwrap()).is_ok());
    }
}
