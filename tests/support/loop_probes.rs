//! What the loop tests read from outside: restate-dev's JSON output, what Docker holds with a loop's label, and
//! an invocation through the loop's ingress.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

/// restate-dev's stdout as the one JSON document it must be.
pub fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Everything Docker holds with the loop's label, as "type name" lines.
pub fn labelled(name: &str) -> Vec<String> {
    let filter = format!("label=dev.restate.loop={name}");
    let mut found = Vec::new();
    for (kind, args) in [
        ("container", ["ps", "-a", "--format", "{{.Names}}"].as_slice()),
        ("network", ["network", "ls", "--format", "{{.Name}}"].as_slice()),
        ("volume", ["volume", "ls", "--format", "{{.Name}}"].as_slice()),
    ] {
        let output = Command::new("docker")
            .args(args)
            .args(["--filter", &filter])
            .output()
            .expect("docker CLI runs");
        assert!(
            output.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        found.extend(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| format!("{kind} {l}")),
        );
    }
    found
}

/// POSTs `body` to `path` on the ingress; the status and the answer.
pub async fn invoke(ingress: &str, path: &str, body: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{ingress}/{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("ingress answers");
    (response.status().as_u16(), response.text().await.unwrap())
}
