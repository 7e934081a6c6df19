//! Images restate-dev assembles itself, from local binaries, so that no registry is needed.

use sha2::{Digest, Sha256};

use crate::error::{Context, Result};

/// Where our own images live; a dotted host keeps them apart from Docker Hub names.
pub const REPOSITORY_PREFIX: &str = "restate-dev.local";

/// The sample service's image, tagged by the content of this executable (never `latest`).
pub fn sample_reference() -> Result<String> {
    let exe = std::env::current_exe().failed(|| "cannot find restate-dev's own executable".into())?;
    let bytes = std::fs::read(&exe).failed(|| format!("cannot read {}", exe.display()))?;
    Ok(format!("{REPOSITORY_PREFIX}/greeter:{}", content_tag(&bytes)))
}

/// The first 12 hex digits of the SHA-256 of `bytes`.
pub fn content_tag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_are_short_stable_hashes() {
        assert_eq!(super::content_tag(b"abc"), "ba7816bf8f01");
    }
}
