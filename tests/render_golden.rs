//! `restate-dev render` against the files in fixtures/golden/. `UPDATE_GOLDEN=1 cargo test --test render_golden`
//! rewrites them; review the diff before committing.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use regex::Regex;

const SAMPLE_TAG: &str = r"restate-dev\.local/greeter:[0-9a-f]{12}\b";
const SAMPLE_PLACEHOLDER: &str = "restate-dev.local/greeter:<content-hash>";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The binary, run from the crate root, with no RESTATE_DEV_* variables from the caller's environment.
fn restate_dev() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_restate-dev"));
    command.current_dir(root());
    for (key, _) in std::env::vars() {
        if key.starts_with("RESTATE_DEV_") {
            command.env_remove(key);
        }
    }
    command
}

fn render(args: &[&str]) -> String {
    let output = restate_dev().arg("render").args(args).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "render {args:?} failed: {stderr}");
    assert!(stderr.is_empty(), "render {args:?} wrote to stderr: {stderr}");
    stdout
}

/// The sample image is tagged by a hash of the binary, which changes with every build.
fn normalise(text: &str) -> String {
    Regex::new(SAMPLE_TAG)
        .unwrap()
        .replace_all(text, SAMPLE_PLACEHOLDER)
        .into_owned()
}

fn golden(file: &str, args: &[&str]) {
    let actual = normalise(&render(args));
    let path: PathBuf = root().join("fixtures/golden").join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if actual != expected {
        let line = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
        panic!(
            "render {args:?} differs from {} at line {}:\n  actual:   {:?}\n  expected: {:?}\n\
             run with UPDATE_GOLDEN=1 to accept the new output",
            path.display(),
            line + 1,
            actual.lines().nth(line),
            expected.lines().nth(line),
        );
    }
}

#[test]
fn defaults() {
    golden("defaults.yaml", &[]);
}

#[test]
fn three_replicas_add_the_envoy_sidecar() {
    golden("replicas-3.yaml", &["--replicas", "3"]);
}

#[test]
fn custom_service_image() {
    golden(
        "service-image.yaml",
        &["--service-image", "ghcr.io/example/greeter:1.0"],
    );
}

#[test]
fn example_config() {
    golden(
        "example-config.yaml",
        &["--config", "fixtures/restate-dev.example.yaml"],
    );
}

#[test]
fn the_sample_image_is_pinned_by_content() {
    let text = render(&[]);
    let tags: Vec<_> = Regex::new(SAMPLE_TAG).unwrap().find_iter(&text).collect();
    assert_eq!(tags.len(), 1, "{text}");
    assert!(!text.contains(":latest"));
}

#[test]
fn json_holds_the_same_objects_as_yaml() {
    for args in [&[][..], &["--replicas", "2"]] {
        let yaml: Vec<serde_json::Value> = serde_saphyr::from_multiple(&render(args)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&render(&[args, &["--output", "json"]].concat())).unwrap();
        assert_eq!(serde_json::Value::Array(yaml), json, "{args:?}");
    }
}
