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
    let pull_failed = match &pull_error.source {
        Some(cause) => format!("pulling it failed: {cause:#}"),
        None => format!("pulling it failed: {}", pull_error.message),
    };
    match restate_server_on_path() {
        Ok(Some(found)) => {
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
        // What is on PATH cannot be used: say what it is, beside why the pull failed.
        Err(unusable) => Err(Error::prerequisite(format!(
            "the Restate image {configured} is not available, and {}",
            unusable.message
        ))
        .detail(pull_failed)
        .hint(unusable.hint.unwrap_or_default())),
        Ok(None) => Err(
            Error::prerequisite(format!("the Restate image {configured} is not available"))
                .detail(pull_failed)
                .hint(format!(
                    "either give a restate-server binary with --restate-binary PATH, or load the image with \
                 `docker load -i image.tar` (made elsewhere by `docker save {configured} -o image.tar`)"
                )),
        ),
    }
}

/// The `restate-server` on PATH as `up` can use it (`doctor` reports the same): an ELF executable as it is, or
/// npm's Node wrapper (`node_modules/.bin/restate-server`, a link to `@restatedev/restate-server/lib/index.js`,
/// which runs the platform package's binary) followed to the Linux binary beside it. None when there is none;
/// an error that says what it is and what to do when it cannot be used.
pub fn restate_server_on_path() -> Result<Option<PathBuf>> {
    let Ok(found) = which::which("restate-server") else {
        return Ok(None);
    };
    let why = match check_restate_binary(&found) {
        Ok(()) => return Ok(Some(found)),
        Err(e) => e.message,
    };
    let Some(binary) = npm_platform_binary(&found) else {
        return Err(Error::prerequisite(format!(
            "the restate-server on PATH ({}) is not the server executable ({why})",
            found.display()
        ))
        .hint("put the Linux restate-server executable first on PATH, or give it with --restate-binary PATH"));
    };
    match check_restate_binary(&binary) {
        Ok(()) => Ok(Some(binary)),
        Err(_) => Err(Error::prerequisite(format!(
            "the restate-server on PATH ({}) is npm's Node wrapper, and the Linux binary it would run ({}) is \
             missing",
            found.display(),
            binary.display()
        ))
        .hint(format!(
            "install it (`npm install {}`), or give a restate-server binary with --restate-binary PATH",
            npm_platform_package()
        ))),
    }
}

/// The npm package with the Linux `restate-server` for this machine's architecture: the image runs Linux, so
/// on macOS too it is the Linux package, not the one npm chose for the host.
fn npm_platform_package() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("@restatedev/restate-server-linux-{arch}")
}

/// Where npm's wrapper at `wrapper` would find the platform binary: `node_modules/PACKAGE/bin/restate-server`
/// of the `node_modules` that holds the wrapper's package. None when `wrapper` is not npm's.
fn npm_platform_binary(wrapper: &Path) -> Option<PathBuf> {
    let script = wrapper.canonicalize().ok()?;
    let package = script.parent()?.parent()?;
    let node_modules = package.parent()?.parent()?;
    let is_npm = package.ends_with("@restatedev/restate-server") && node_modules.ends_with("node_modules");
    is_npm.then(|| node_modules.join(npm_platform_package()).join("bin/restate-server"))
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

    /// npm's layout: `.bin/restate-server` links to the wrapper package's JS file, and the platform package
    /// holds the binary.
    fn npm_tree(with_binary: bool) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let modules = root.path().join("node_modules");
        let wrapper = modules.join("@restatedev/restate-server/lib/index.js");
        std::fs::create_dir_all(wrapper.parent().unwrap()).unwrap();
        std::fs::write(&wrapper, "#!/usr/bin/env node\n").unwrap();
        std::fs::create_dir_all(modules.join(".bin")).unwrap();
        std::os::unix::fs::symlink(
            "../@restatedev/restate-server/lib/index.js",
            modules.join(".bin/restate-server"),
        )
        .unwrap();
        if with_binary {
            let binary = modules.join(npm_platform_package()).join("bin/restate-server");
            std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
            std::fs::copy(std::env::current_exe().unwrap(), binary).unwrap();
        }
        root
    }

    #[test]
    fn npms_wrapper_is_followed_to_its_linux_binary() {
        let tree = npm_tree(true);
        let modules = tree.path().join("node_modules").canonicalize().unwrap();
        let wrapper = modules.join(".bin/restate-server");
        let binary = npm_platform_binary(&wrapper).expect("npm's layout is recognised");
        assert_eq!(binary, modules.join(npm_platform_package()).join("bin/restate-server"));
        assert!(check_restate_binary(&binary).is_ok());
        // Another script is not npm's wrapper.
        let other = tree.path().join("restate-server");
        std::fs::write(&other, "#!/bin/sh\n").unwrap();
        assert_eq!(npm_platform_binary(&other), None);
        // Without the platform package, the wrapper is still recognised, and its binary named.
        let bare = npm_tree(false);
        let binary = npm_platform_binary(&bare.path().join("node_modules/.bin/restate-server")).unwrap();
        assert!(check_restate_binary(&binary).is_err());
    }
}
