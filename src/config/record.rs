//! A loop's record: the settings `up` was given for it, kept on the loop's own objects (see
//! `runtime::record`), so that a bare `up --name X` re-ups the loop as it is, and `status`, `down` and `list`
//! find it without being told its runtime.
//!
//! In the layers it sits above the defaults and below the config file, the environment and the flags.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `--service-image sample` asks for the built-in sample again after a custom image.
pub const SAMPLE: &str = "sample";

/// Keys that say how this one `up` runs, not what the loop is.
const NOT_RECORDED: [&str; 1] = ["timeout"];

/// Keys that clap lets only one of be given (`--verify` and `--no-verify`, `--runtime` and `--context`), or that
/// belong together (`--verify-body` to `--verify`): a layer above the record that sets any of a group replaces the
/// record's whole group, so that a recorded `verify` never meets a given `no-verify` (but a body alone is for the
/// recorded handler: see `Layers::resolve`).
pub const GROUPS: [&[&str]; 2] = [&["verify", "verify-body", "no-verify"], &["runtime", "context"]];

/// The proving invocation's keys, which belong to the service image they were given for.
pub const VERIFY_KEYS: &[&str] = GROUPS[0];

/// Key → value, as a config file would hold them. Always holds `runtime` or `context`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Record(pub BTreeMap<String, String>);

impl Record {
    /// Just where the loop runs: what a loop made before records existed still tells by its objects.
    pub fn of_runtime(runtime: &str) -> Record {
        Record(BTreeMap::from([("runtime".to_string(), runtime.to_string())]))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Where the loop runs, as a user says it: `docker`, `kind`, `minikube` or `context NAME`.
    pub fn place(&self) -> String {
        match (self.get("context"), self.get("runtime")) {
            (Some(context), _) => format!("context {context}"),
            (None, Some(runtime)) => runtime.to_string(),
            (None, None) => "kind".to_string(),
        }
    }

    /// The flag that names this place, for hints: `--runtime docker` or `--context NAME`.
    pub fn place_flag(&self) -> String {
        match self.get("context") {
            Some(context) => format!("--context {context}"),
            None => format!("--runtime {}", self.place()),
        }
    }

    /// The record made of resolved settings: every key given by any layer but the defaults, less those of
    /// [`NOT_RECORDED`]. `service-image: sample` is left out: it is what no service image means.
    pub fn from_settings(values: BTreeMap<String, String>) -> Record {
        Record(
            values
                .into_iter()
                .filter(|(key, value)| {
                    let sample = key == "service-image" && value == SAMPLE;
                    !sample && !NOT_RECORDED.contains(&key.as_str())
                })
                .collect(),
        )
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("records serialize")
    }

    /// A record as written by [`Record::to_json`]; None for text that is not one (a foreign or damaged label).
    pub fn from_json(text: &str) -> Option<Record> {
        serde_json::from_str(text).ok()
    }

    /// One line per key whose value `new` changes: `service-image: my/greeter:1 → my/greeter:2`.
    pub fn changes(&self, new: &Record) -> Vec<String> {
        let mut keys: Vec<&String> = self.0.keys().chain(new.0.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter(|key| self.0.get(*key) != new.0.get(*key))
            .map(|key| format!("{key}: {} → {}", shown(key, self.get(key)), shown(key, new.get(key))))
            .collect()
    }
}

/// A value in a change line; a key not given is its default (the built-in sample, for the service image).
fn shown(key: &str, value: Option<&str>) -> String {
    match (key, value) {
        (_, Some(value)) => value.to_string(),
        ("service-image", None) => SAMPLE.to_string(),
        ("no-verify", None) => "false".to_string(),
        (_, None) => "default".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pairs: &[(&str, &str)]) -> Record {
        Record(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn changes_are_one_line_each_from_what_to_what() {
        let old = record(&[
            ("runtime", "docker"),
            ("service-image", "my/greeter:1"),
            ("verify", "Greeter/greet"),
        ]);
        let new = record(&[
            ("runtime", "docker"),
            ("service-image", "my/greeter:2"),
            ("replicas", "2"),
        ]);
        assert_eq!(
            old.changes(&new),
            [
                "replicas: default → 2",
                "service-image: my/greeter:1 → my/greeter:2",
                "verify: Greeter/greet → default",
            ]
        );
        assert!(old.changes(&old).is_empty());
        // Back to the sample: `sample` is not kept, it is what no service image means.
        let custom = record(&[("runtime", "docker"), ("service-image", "my/greeter:2")]);
        let back = Record::from_settings(BTreeMap::from([
            ("runtime".to_string(), "docker".to_string()),
            ("service-image".to_string(), SAMPLE.to_string()),
        ]));
        assert_eq!(back, record(&[("runtime", "docker")]));
        assert_eq!(custom.changes(&back), ["service-image: my/greeter:2 → sample"]);
    }

    #[test]
    fn the_record_round_trips_and_names_its_place() {
        let r = record(&[("runtime", "docker"), ("ingress-port", "8080")]);
        assert_eq!(Record::from_json(&r.to_json()), Some(r.clone()));
        assert_eq!(
            (r.place(), r.place_flag()),
            ("docker".into(), "--runtime docker".into())
        );
        let c = record(&[("context", "prod")]);
        assert_eq!(
            (c.place(), c.place_flag()),
            ("context prod".into(), "--context prod".into())
        );
        assert_eq!(Record::from_json("not json"), None);
        let given = BTreeMap::from([
            ("timeout".to_string(), "9m".to_string()),
            ("replicas".into(), "2".into()),
        ]);
        assert_eq!(Record::from_settings(given), record(&[("replicas", "2")]));
    }
}
