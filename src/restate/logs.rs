//! What Restate's own log says about a service address. When registration hangs, the admin API says nothing
//! until the service answers, but the server logs each failed discovery attempt; those lines are what Restate
//! knows about the service.

use std::sync::LazyLock;

use regex::Regex;

/// At most this many of the latest lines are quoted.
const MAX_LINES: usize = 2;

/// The latest distinct messages in `logs` that name `uri`, in order. Reads the server's pretty format (colours
/// stripped; the message is on its own line) and its JSON format (the `fields.message` of each line).
pub fn logged_about(logs: &str, uri: &str) -> Vec<String> {
    static ESCAPES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\x1b\[[0-9;]*[A-Za-z]").unwrap());
    static FIELD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z_][a-z0-9_.]*: ").unwrap());
    let needle = uri.trim_end_matches('/');
    let mut found: Vec<String> = Vec::new();
    for line in logs.lines() {
        let message = match serde_json::from_str::<serde_json::Value>(line) {
            Ok(json) => json["fields"]["message"].as_str().unwrap_or_default().to_string(),
            Err(_) => ESCAPES.replace_all(line, "").trim().to_string(),
        };
        // The pretty format follows a message with its fields, `key: value`, which only repeat the address.
        if message.contains(needle) && !FIELD.is_match(&message) {
            found.retain(|m| m != &message);
            found.push(message);
        }
    }
    let skip = found.len().saturating_sub(MAX_LINES);
    found.split_off(skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_and_json_lines_are_read() {
        let pretty = "\x1b[2m2026-12-01T21:40:27Z\x1b[0m \x1b[33mWARN\x1b[0m restate_service_protocol_v4::discovery\n  \
            Error when discovering deployment at address 'http://s:9080/'. Retrying in 0 seconds: error when \
            calling 'http://s:9080/': h2 pool connection error: Connection refused (os error 111)\n\
            \x1b[2;3m    restate.deployment.address\x1b[0m: http://s:9080/\n\
            2026-12-01T21:40:28Z INFO other\n  unrelated http://t:9080/\n";
        assert_eq!(
            logged_about(pretty, "http://s:9080"),
            [
                "Error when discovering deployment at address 'http://s:9080/'. Retrying in 0 seconds: error when \
              calling 'http://s:9080/': h2 pool connection error: Connection refused (os error 111)"
            ]
        );
        let json =
            r#"{"level":"WARN","fields":{"message":"Error when discovering deployment at address 'http://s:9080/'"}}"#;
        assert_eq!(
            logged_about(json, "http://s:9080/"),
            ["Error when discovering deployment at address 'http://s:9080/'"]
        );
        assert!(logged_about("nothing here\n", "http://s:9080").is_empty());
    }

    #[test]
    fn only_the_latest_distinct_messages_are_kept() {
        let logs = "a http://s:9080 1\na http://s:9080 2\na http://s:9080 1\na http://s:9080 3\n";
        assert_eq!(
            logged_about(logs, "http://s:9080"),
            ["a http://s:9080 1", "a http://s:9080 3"]
        );
    }
}
