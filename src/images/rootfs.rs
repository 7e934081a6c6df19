//! The files of an image with no base: executables, and for dynamic ones the loader and the libraries `ldd`
//! names, each at its host path so the loader finds them where it was built to look.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::elf;
use crate::docker::BuildContext;
use crate::error::{Error, Result};

/// Files to put in an image, by their path inside it.
#[derive(Default)]
pub struct Rootfs {
    files: BTreeMap<String, Source>,
    dirs: BTreeMap<String, u32>,
    /// Directories owned by a `uid:gid` other than root, by path.
    owned_dirs: BTreeMap<String, (u32, String)>,
}

/// A host file, and the mode to give it (None keeps the host's).
struct Source {
    path: PathBuf,
    mode: Option<u32>,
}

impl Rootfs {
    /// Adds the executable at `host_path` (whose content is `bytes`) at `image_path`, with what it needs to run.
    pub fn add_executable(&mut self, host_path: &Path, bytes: &[u8], image_path: &str) -> Result<()> {
        let interp = elf::interpreter(bytes).map_err(|why| {
            Error::prerequisite(format!("{} cannot go into an image: {why}", host_path.display()))
                .hint("give the path of the executable itself, not a wrapper script")
        })?;
        let source = Source {
            path: host_path.to_path_buf(),
            mode: Some(0o755),
        };
        self.files.insert(image_path.to_string(), source);
        if interp.is_some() {
            for library in shared_libraries(host_path)? {
                let inside = library.display().to_string();
                self.files.entry(inside).or_insert(Source {
                    path: library,
                    mode: None,
                });
            }
        }
        Ok(())
    }

    /// Adds a host file (e.g. a CA bundle) at `image_path`.
    pub fn add_host_file(&mut self, host_path: &Path, image_path: &str) {
        let source = Source {
            path: host_path.to_path_buf(),
            mode: None,
        };
        self.files.insert(image_path.to_string(), source);
    }

    /// Adds an empty directory with `mode`.
    pub fn add_dir(&mut self, image_path: &str, mode: u32) {
        self.dirs.insert(image_path.to_string(), mode);
    }

    /// Adds an empty directory with `mode`, owned by `owner` (`uid:gid`).
    pub fn add_owned_dir(&mut self, image_path: &str, mode: u32, owner: &str) {
        self.owned_dirs
            .insert(image_path.to_string(), (mode, owner.to_string()));
    }

    /// Paths inside the image, for messages and tests.
    pub fn paths(&self) -> Vec<String> {
        let dirs = self.dirs.keys().chain(self.owned_dirs.keys());
        dirs.chain(self.files.keys()).cloned().collect()
    }

    /// Writes the files under `prefix/` of a build context, and directories owned by someone else under
    /// `prefix-OWNER/` (COPY makes everything root's unless `--chown` says otherwise, per COPY).
    pub fn write_to(&self, context: &mut BuildContext, prefix: &str) -> Result<()> {
        for (path, mode) in &self.dirs {
            context.add_dir(&join(prefix, path), *mode)?;
        }
        for (path, (mode, owner)) in &self.owned_dirs {
            context.add_dir(&join(&owned_prefix(prefix, owner), path), *mode)?;
        }
        for (path, source) in &self.files {
            context.add_host_file(&join(prefix, path), &source.path, source.mode)?;
        }
        Ok(())
    }

    /// The Dockerfile lines that copy what [`Rootfs::write_to`] wrote under `prefix` into the image.
    pub fn copy_lines(&self, prefix: &str) -> String {
        let mut lines = format!("COPY {prefix}/ /\n");
        let owners: std::collections::BTreeSet<&String> = self.owned_dirs.values().map(|(_, owner)| owner).collect();
        for owner in owners {
            lines.push_str(&format!("COPY --chown={owner} {}/ /\n", owned_prefix(prefix, owner)));
        }
        lines
    }
}

fn owned_prefix(prefix: &str, owner: &str) -> String {
    format!("{prefix}-{}", owner.replace(':', "-"))
}

fn join(prefix: &str, path: &str) -> String {
    format!("{prefix}/{}", path.trim_start_matches('/'))
}

/// The loader and libraries `ldd` says `executable` loads.
fn shared_libraries(executable: &Path) -> Result<Vec<PathBuf>> {
    let output = std::process::Command::new("ldd")
        .arg(executable)
        .output()
        .map_err(|e| {
            Error::prerequisite(format!(
                "cannot run `ldd` to list the libraries of {}",
                executable.display()
            ))
            .source(e)
            .hint("install ldd (Debian: libc-bin), or use a statically linked binary (-C target-feature=+crt-static)")
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(Error::failed(format!("`ldd {}` failed", executable.display()))
            .detail(String::from_utf8_lossy(&output.stderr).trim().to_string()));
    }
    parse_ldd(&text).map_err(|missing| {
        Error::prerequisite(format!(
            "{} needs libraries that are not installed: {}",
            executable.display(),
            missing.join(", ")
        ))
        .hint("install them, or use a statically linked binary")
    })
}

/// The absolute paths in `ldd` output; Err lists the libraries marked "not found".
fn parse_ldd(text: &str) -> std::result::Result<Vec<PathBuf>, Vec<String>> {
    let mut paths = Vec::new();
    let mut missing = Vec::new();
    for line in text.lines().map(str::trim) {
        let target = match line.split_once("=>") {
            Some((name, target)) => {
                let target = target.trim();
                if target.starts_with("not found") {
                    missing.push(name.trim().to_string());
                    continue;
                }
                target
            }
            None => line,
        };
        let path = target.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') {
            paths.push(PathBuf::from(path));
        }
    }
    if missing.is_empty() { Ok(paths) } else { Err(missing) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_parsed() {
        let text = "\tlinux-vdso.so.1 (0x00007ffc)\n\
            \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f09)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f09)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f09)\n";
        let paths = parse_ldd(text).unwrap();
        assert_eq!(
            paths,
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        let missing = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert_eq!(missing, vec!["libfoo.so.1"]);
    }

    #[test]
    fn owned_directories_get_their_own_copy() {
        let mut rootfs = Rootfs::default();
        rootfs.add_dir("/tmp", 0o1777);
        rootfs.add_owned_dir("/restate-data", 0o775, "1000:3000");
        assert_eq!(
            rootfs.copy_lines("rootfs"),
            "COPY rootfs/ /\nCOPY --chown=1000:3000 rootfs-1000-3000/ /\n"
        );
        let mut context = BuildContext::new();
        rootfs.write_to(&mut context, "rootfs").unwrap();
        let tar = context.into_tar().unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.header().mode().unwrap())
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("rootfs/tmp/".into(), 0o1777),
                ("rootfs-1000-3000/restate-data/".into(), 0o775)
            ]
        );
    }

    #[test]
    fn a_dynamic_executable_brings_its_loader() {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        let mut rootfs = Rootfs::default();
        rootfs.add_executable(&exe, &bytes, "/usr/local/bin/x").unwrap();
        let paths = rootfs.paths();
        assert!(paths.contains(&"/usr/local/bin/x".to_string()));
        if elf::interpreter(&bytes).unwrap().is_some() {
            assert!(paths.iter().any(|p| p.contains("libc.so")), "{paths:?}");
        } else {
            assert_eq!(paths.len(), 1);
        }
    }
}
