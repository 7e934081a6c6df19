//! Checks for user-supplied values. Each returns a short reason; the caller names the key and the value.

use std::sync::LazyLock;

use regex::Regex;

/// kind names the node container `NAME-control-plane`, and a hostname label is at most 63 characters.
pub const MAX_NAME_LEN: usize = 63 - "-control-plane".len();

pub fn dns_label(value: &str, max: usize) -> Result<(), String> {
    static LABEL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").unwrap());
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > max {
        return Err(format!("is {} characters long; at most {max} are allowed", value.len()));
    }
    if !LABEL.is_match(value) {
        return Err(
            "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit"
                .into(),
        );
    }
    Ok(())
}

/// The grammar of distribution/reference: `[domain[:port]/]path[:tag][@algorithm:hex]`.
pub fn image_reference(value: &str) -> Result<(), String> {
    static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
        let component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
        // A first segment is a registry only if it has a dot or a port, or is localhost (as Docker reads it).
        let host = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";
        let domain = format!(
            r"(?:localhost(?::[0-9]+)?|{host}(?:\.{host})+(?::[0-9]+)?|{host}:[0-9]+|\[[0-9a-fA-F:]+\](?::[0-9]+)?)"
        );
        let tag = r"[\w][\w.-]{0,127}";
        let digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
        Regex::new(&format!(
            r"^(?:{domain}/)?{component}(?:/{component})*(?::{tag})?(?:@{digest})?$"
        ))
        .unwrap()
    });
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > 255 + 128 + 80 || !REFERENCE.is_match(value) {
        return Err(
            "is not a valid image reference (expected [registry/]repository[:tag][@sha256:digest], lowercase)".into(),
        );
    }
    Ok(())
}

/// The tag of an image reference, if it has one (a registry port is not a tag).
pub fn image_tag(reference: &str) -> Option<&str> {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last_segment = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last_segment.split_once(':').map(|(_, tag)| tag)
}

/// A pinned reference names a version: a digest, or a tag other than `latest`.
pub fn pinned_image(value: &str) -> Result<(), String> {
    if value.contains('@') {
        return Ok(());
    }
    match image_tag(value) {
        None => Err("has no tag; pin a version, e.g. `:1.7.12`".into()),
        Some("latest") => Err("uses the `latest` tag; pin a version so that loops are reproducible".into()),
        Some(_) => Ok(()),
    }
}

/// A Kubernetes resource quantity that is greater than zero, e.g. `500m`, `1Gi`, `2`.
pub fn quantity(value: &str) -> Result<(), String> {
    static QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$").unwrap()
    });
    if !QUANTITY.is_match(value) {
        return Err("is not a Kubernetes quantity (examples: 500m, 2, 512Mi, 10Gi)".into());
    }
    if !value.chars().any(|c| c.is_ascii_digit() && c != '0') {
        return Err("must be greater than zero".into());
    }
    Ok(())
}

pub fn port(value: i64) -> Result<u16, String> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| "must be a port from 1 to 65535".to_string())
}

pub fn replicas(value: i64) -> Result<u32, String> {
    u32::try_from(value)
        .ok()
        .filter(|r| *r >= 1)
        .ok_or_else(|| "must be at least 1".to_string())
}

/// `Service/handler` or `Object/key/handler`, the ingress path of an invocation.
pub fn handler_path(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split('/').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty() || p.contains(char::is_whitespace)) {
        return Err("must be Service/handler or Object/key/handler".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(dns_label("restate-dev", MAX_NAME_LEN).is_ok());
        assert!(dns_label("a", MAX_NAME_LEN).is_ok());
        for bad in ["", "Upper", "-lead", "trail-", "under_score", "dot.ted", "sp ace"] {
            assert!(dns_label(bad, MAX_NAME_LEN).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(MAX_NAME_LEN, 49);
        assert!(dns_label(&"a".repeat(49), MAX_NAME_LEN).is_ok());
        assert!(
            dns_label(&"a".repeat(50), MAX_NAME_LEN)
                .unwrap_err()
                .contains("50 characters")
        );
    }

    #[test]
    fn images() {
        for good in [
            "busybox",
            "restatedev/restate:1.7.12",
            "docker.restate.dev/restatedev/restate:1.7.12",
            "localhost:5000/a/b_c__d-e:v1.0",
            "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
        ] {
            assert!(image_reference(good).is_ok(), "{good:?} should be accepted");
        }
        for bad in [
            "",
            "Upper/case",
            "a:",
            "a::b",
            "a//b",
            "a:b:c",
            "a@sha256:xyz",
            "-a",
            "a b",
        ] {
            assert!(image_reference(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn tags_and_pins() {
        assert_eq!(image_tag("localhost:5000/a"), None);
        assert_eq!(image_tag("localhost:5000/a:v2"), Some("v2"));
        assert!(pinned_image("a:latest").is_err());
        assert!(pinned_image("a").is_err());
        assert!(pinned_image("a:1.2").is_ok());
        assert!(pinned_image("a@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5").is_ok());
    }

    #[test]
    fn quantities() {
        for good in ["500m", "2", "1.5", "512Mi", "10Gi", "1e3", ".5"] {
            assert!(quantity(good).is_ok(), "{good:?} should be accepted");
        }
        for bad in ["", "0", "0Gi", "-1", "1GB", "ten", "1.2.3", "Gi"] {
            assert!(quantity(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn handler_paths() {
        assert!(handler_path("Greeter/greet").is_ok() && handler_path("Counter/k1/add").is_ok());
        for bad in ["Greeter", "/greet", "a/b/c/d", "Greeter/ greet", ""] {
            assert!(handler_path(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(port(8080), Ok(8080));
        assert!(port(0).is_err() && port(65536).is_err() && port(-1).is_err());
        assert_eq!(replicas(3), Ok(3));
        assert!(replicas(0).is_err() && replicas(-2).is_err());
    }
}
