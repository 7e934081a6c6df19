//! Content tags of binaries. Hashing the 215 MiB restate-server on every `up` costs about 0.3 s, so a tag is
//! remembered per file identity (device, inode, size, modification time) in the user's cache directory; a changed
//! file gets a new identity and is hashed again. The cache is only an optimisation: any failure to read or write it
//! falls back to hashing.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Context, Result};

/// The content tag of the file at `path` (the first 12 hex digits of its SHA-256), from the cache when the file is unchanged.
pub fn file_tag(path: &Path) -> Result<String> {
    file_tag_cached(path, cache_file().as_deref())
}

fn file_tag_cached(path: &Path, cache: Option<&Path>) -> Result<String> {
    let metadata = std::fs::metadata(path).failed(|| format!("cannot read {}", path.display()))?;
    let identity = format!(
        "{}:{}:{}:{}.{}",
        metadata.dev(),
        metadata.ino(),
        metadata.size(),
        metadata.mtime(),
        metadata.mtime_nsec()
    );
    let mut known = cache.map(read_cache).unwrap_or_default();
    if let Some(tag) = known.get(&identity) {
        return Ok(tag.clone());
    }
    let tag = hash_file(path)?;
    if let Some(cache) = cache {
        known.insert(identity, tag.clone());
        write_cache(cache, &known);
    }
    Ok(tag)
}

/// Streams the file through SHA-256, without holding it in memory.
fn hash_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).failed(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .failed(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn cache_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("restate-dev").join("content-tags"))
}

/// Lines of `identity tag`; a line that does not parse is ignored.
fn read_cache(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(identity, tag)| (identity.to_string(), tag.to_string()))
        .collect()
}

/// Written to a temporary file and renamed, so a concurrent reader never sees half a file.
fn write_cache(path: &Path, known: &BTreeMap<String, String>) {
    let Some(dir) = path.parent() else { return };
    let text: String = known
        .iter()
        .map(|(identity, tag)| format!("{identity} {tag}\n"))
        .collect();
    let temporary = dir.join(format!(".content-tags.{}", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&temporary, text))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = written {
        tracing::debug!("cannot write the content-tag cache {}: {e}", path.display());
        let _ = std::fs::remove_file(&temporary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_hashed_once_and_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (file, cache) = (dir.path().join("bin"), dir.path().join("cache/content-tags"));
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(file_tag_cached(&file, Some(&cache)).unwrap(), "ba7816bf8f01");
        assert_eq!(read_cache(&cache).len(), 1);

        // A remembered tag is trusted while the identity holds: plant a marker to prove the cache answered.
        let identity = read_cache(&cache).into_keys().next().unwrap();
        write_cache(&cache, &BTreeMap::from([(identity, "remembered".to_string())]));
        assert_eq!(file_tag_cached(&file, Some(&cache)).unwrap(), "remembered");

        // A changed file has another size (and time), so it is hashed again.
        std::fs::write(&file, b"abcd").unwrap();
        assert_eq!(file_tag_cached(&file, Some(&cache)).unwrap(), "88d4266fd4e6");
        assert_eq!(file_tag_cached(&file, None).unwrap(), "88d4266fd4e6");
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = file_tag_cached(Path::new("/nonexistent/bin"), None).unwrap_err();
        assert!(e.message.contains("/nonexistent/bin"), "{e}");
    }
}
