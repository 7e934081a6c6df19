//! The config file and the environment, as `key = value` pairs that remember their origin.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::{Args, Command, FromArgMatches};
use serde::Serialize;
use serde_json::Value;

use super::record::{self, Record};
use crate::error::{Error, Result};

const ENV_PREFIX: &str = "RESTATE_DEV_";
/// Variables that are not settings: `--config`'s (read by clap) and the log filter (read by `main`).
const NOT_SETTINGS: [&str; 2] = ["RESTATE_DEV_CONFIG", crate::LOG_ENV];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    /// Recorded on the loop of this name by an earlier `up`.
    Record(String),
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "the default"),
            Origin::Record(name) => write!(f, "recorded on loop {name}"),
            Origin::File(path) => write!(f, "from config file {}", path.display()),
            Origin::Env(var) => write!(f, "from ${var}"),
            Origin::Flag(flag) => write!(f, "from {flag}"),
        }
    }
}

impl Origin {
    pub fn fix_hint(&self, key: &str) -> String {
        match self {
            Origin::Default => format!("set `{key}` explicitly"),
            Origin::Record(name) => format!("give `--{key}` to change it, or `restate-dev down --name {name}` first"),
            Origin::File(path) => format!("fix `{key}` in {}", path.display()),
            Origin::Env(var) => format!("fix or unset ${var}"),
            Origin::Flag(flag) => format!("see `restate-dev help` for what {flag} accepts"),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    value: String,
    origin: Origin,
}

/// Where each resolved key came from.
#[derive(Debug, Default)]
pub struct Origins(BTreeMap<String, Origin>);

impl Origins {
    pub fn of(&self, key: &str) -> Origin {
        self.0.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// Both sets of origins, for flag structs whose keys do not overlap.
    pub fn merged(mut self, other: Origins) -> Origins {
        self.0.extend(other.0);
        self
    }
}

/// The file and environment layers, over the loop's record when it has one; flags are laid over them per
/// command by [`Layers::resolve`].
#[derive(Debug, Default, Clone)]
pub struct Layers {
    entries: BTreeMap<String, Entry>,
    /// Below the file and environment (see [`super::record`]).
    record: BTreeMap<String, Entry>,
}

impl Layers {
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let known = known_keys();
        let mut layers = Layers::default();
        if let Some(path) = file {
            for (key, value) in read_file(path, &known)? {
                layers.entries.insert(
                    key,
                    Entry {
                        value,
                        origin: Origin::File(path.to_path_buf()),
                    },
                );
            }
        }
        let mut env: Vec<_> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !NOT_SETTINGS.contains(&k.as_str()))
            .collect();
        env.sort();
        for (var, value) in env {
            let key = var[ENV_PREFIX.len()..].to_ascii_lowercase().replace('_', "-");
            if !known.contains(&key) {
                return Err(unknown_key(&key, "the environment", &known, |k| {
                    format!("{ENV_PREFIX}{}", k.to_ascii_uppercase().replace('-', "_"))
                }));
            }
            layers.entries.insert(
                key,
                Entry {
                    value,
                    origin: Origin::Env(var),
                },
            );
        }
        Ok(layers)
    }

    /// These layers over `record`, the settings recorded on loop `name`.
    pub fn with_record(mut self, name: &str, record: &Record) -> Layers {
        let origin = Origin::Record(name.to_string());
        self.record = record
            .0
            .iter()
            .map(|(key, value)| {
                let entry = Entry {
                    value: value.clone(),
                    origin: origin.clone(),
                };
                (key.clone(), entry)
            })
            .collect();
        self
    }

    /// Drops `keys` from the record's layer (the recorded proof of a custom image, when the sample returns).
    pub fn forget_recorded(&mut self, keys: &[&str]) {
        self.record.retain(|key, _| !keys.contains(&key.as_str()));
    }

    /// A single key from the file or environment.
    pub fn scalar(&self, key: &str) -> Option<(String, Origin)> {
        self.entries.get(key).map(|e| (e.value.clone(), e.origin.clone()))
    }

    /// Lays `flags` over the file and environment, and parses the result with the flags' own definitions.
    pub fn resolve<T: Args + FromArgMatches + Serialize>(&self, flags: &T) -> Result<(T, Origins)> {
        let command = T::augment_args(
            Command::new("restate-dev")
                .no_binary_name(true)
                .args_override_self(true),
        );
        let Value::Object(flag_values) = serde_json::to_value(flags).expect("flag structs serialize to a map") else {
            unreachable!("flag structs serialize to a map")
        };
        let given = |key: &str| self.entries.contains_key(key) || flag_values.contains_key(key);
        // A recorded key gives way to any given key of its group, except that a body alone keeps the recorded
        // handler it is for (only a recorded `no-verify` gives way to it).
        let overridden = |key: &str| {
            record::GROUPS.iter().any(|group| {
                group.contains(&key)
                    && group
                        .iter()
                        .any(|k| given(k) && (*k != "verify-body" || key == "no-verify"))
            })
        };
        let mut merged: BTreeMap<String, Entry> = BTreeMap::new();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let recorded = self.record.get(long).filter(|_| !overridden(long));
            if let Some(entry) = self.entries.get(long).or(recorded) {
                merged.insert(long.to_string(), entry.clone());
            }
        }
        for (key, value) in flag_values {
            let origin = Origin::Flag(format!("--{key}"));
            merged.insert(
                key,
                Entry {
                    value: scalar_text(&value).unwrap_or_default(),
                    origin,
                },
            );
        }
        let mut argv = Vec::new();
        for (key, entry) in &merged {
            let arg = command.get_arguments().find(|a| a.get_long() == Some(key.as_str()));
            let takes_value = arg.is_some_and(|a| a.get_action().takes_values());
            if takes_value {
                argv.push(format!("--{key}={}", entry.value));
            } else if parse_bool(&entry.value).map_err(|why| super::invalid(key, &entry.value, &entry.origin, why))? {
                argv.push(format!("--{key}"));
            }
        }
        let matches = command
            .clone()
            .try_get_matches_from(&argv)
            .map_err(|e| clap_error(e, &merged))?;
        let parsed = T::from_arg_matches(&matches).map_err(|e| clap_error(e, &merged))?;
        let origins = Origins(merged.into_iter().map(|(k, e)| (k, e.origin)).collect());
        Ok((parsed, origins))
    }
}

/// Every key a config file may hold: the long names of all setting flags, plus `name`.
pub fn known_keys() -> Vec<String> {
    let mut keys = vec!["name".to_string()];
    for command in setting_groups() {
        keys.extend(command.get_arguments().filter_map(|a| a.get_long()).map(str::to_string));
    }
    keys
}

fn setting_groups() -> Vec<Command> {
    vec![
        crate::cli::ObjectArgs::augment_args(Command::new("objects")),
        crate::cli::LoopArgs::augment_args(Command::new("loop")),
    ]
}

fn read_file(path: &Path, known: &[String]) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!("cannot read config file {}", path.display()))
            .source(e)
            .hint("check the path given with --config or $RESTATE_DEV_CONFIG")
    })?;
    let malformed = |why: String| {
        Error::usage(format!("malformed config file {}: {why}", path.display()))
            .hint("see fixtures/restate-dev.example.yaml for the format")
    };
    // One line for users: the location is in the message; a source snippet would not fit our error format.
    let document: Value = serde_saphyr::from_str(&text).map_err(|e| {
        malformed(e.render_with_options(serde_saphyr::render_options! {
            formatter: &serde_saphyr::UserMessageFormatter,
            snippets: serde_saphyr::SnippetMode::Off,
        }))
    })?;
    let map = match document {
        Value::Null => return Ok(Vec::new()),
        Value::Object(map) => map,
        other => {
            return Err(malformed(format!(
                "expected a mapping of keys to values, found {}",
                type_name(&other)
            )));
        }
    };
    let mut pairs = Vec::new();
    for (key, value) in map {
        if !known.contains(&key) {
            return Err(unknown_key(
                &key,
                &format!("config file {}", path.display()),
                known,
                str::to_string,
            ));
        }
        if value.is_null() {
            continue;
        }
        let text = scalar_text(&value)
            .ok_or_else(|| malformed(format!("`{key}` must be a single value, found {}", type_name(&value))))?;
        pairs.push((key, text));
    }
    Ok(pairs)
}

fn unknown_key(key: &str, place: &str, known: &[String], spell: impl Fn(&str) -> String) -> Error {
    let nearest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), k))
        .filter(|(distance, k)| *distance <= (k.len() / 3).max(2))
        .min();
    let error = Error::usage(format!("unknown key `{}` in {place}", spell(key)));
    match nearest {
        Some((_, k)) => error.hint(format!("did you mean `{}`?", spell(k))),
        None => error.hint(format!(
            "valid keys: {}",
            known.iter().map(|k| spell(k)).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_bool(text: &str) -> std::result::Result<bool, &'static str> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err("is not a boolean (true or false)"),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Turns clap's complaint about a merged value into ours, naming the key, the value and its origin.
fn clap_error(error: clap::Error, merged: &BTreeMap<String, Entry>) -> Error {
    use clap::error::{ContextKind, ContextValue};
    let arg = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.clone(),
        _ => String::new(),
    };
    let key = arg
        .trim_start_matches("--")
        .split([' ', '='])
        .next()
        .unwrap_or_default();
    match merged.get(key) {
        Some(entry) => {
            let why = match error.get(ContextKind::ValidValue) {
                Some(ContextValue::Strings(valid)) => format!("is not one of: {}", valid.join(", ")),
                _ => "is not a valid value".to_string(),
            };
            super::invalid(key, &entry.value, &entry.origin, &why)
        }
        None => Error::usage(error.to_string().trim().trim_start_matches("error: ").to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ObjectArgs;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn precedence_is_file_then_env_then_flags() {
        let f = file("replicas: 2\nnamespace: from-file\nstorage-size: 5Gi\n");
        let layers = Layers::load(
            Some(f.path()),
            env(&[("RESTATE_DEV_NAMESPACE", "from-env"), ("RESTATE_DEV_REPLICAS", "4")]),
        )
        .unwrap();
        let flags = ObjectArgs {
            replicas: Some(7),
            ..Default::default()
        };
        let (args, origins) = layers.resolve(&flags).unwrap();
        assert_eq!(args.replicas, Some(7));
        assert_eq!(args.namespace.as_deref(), Some("from-env"));
        assert_eq!(args.storage_size.as_deref(), Some("5Gi"));
        assert_eq!(origins.of("replicas"), Origin::Flag("--replicas".into()));
        assert_eq!(origins.of("namespace"), Origin::Env("RESTATE_DEV_NAMESPACE".into()));
        assert_eq!(origins.of("storage-size"), Origin::File(f.path().to_path_buf()));
        assert_eq!(origins.of("envoy-image"), Origin::Default);
    }

    #[test]
    fn yaml_numbers_become_quantities() {
        let f = file("restate-cpu-limit: 2\n");
        let (args, _) = Layers::load(Some(f.path()), [])
            .unwrap()
            .resolve(&ObjectArgs::default())
            .unwrap();
        assert_eq!(args.restate_cpu_limit.as_deref(), Some("2"));
    }

    #[test]
    fn unknown_keys_name_the_nearest() {
        let f = file("replica: 2\n");
        let e = Layers::load(Some(f.path()), []).unwrap_err();
        assert!(e.message.contains("unknown key `replica`"), "{e}");
        assert_eq!(e.hint.as_deref(), Some("did you mean `replicas`?"));
        let e = Layers::load(None, env(&[("RESTATE_DEV_NAMESPCE", "x")])).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `RESTATE_DEV_NAMESPACE`?"));
        let e = Layers::load(Some(file("zzzzzzzz: 1\n").path()), []).unwrap_err();
        assert!(e.hint.unwrap().starts_with("valid keys: name, namespace"));
        // The config file's path and the log filter are not settings, and not unknown either.
        let ok = env(&[("RESTATE_DEV_CONFIG", "/x.yaml"), ("RESTATE_DEV_LOG", "debug")]);
        assert!(Layers::load(None, ok).is_ok());
    }

    #[test]
    fn malformed_files_are_usage_errors() {
        for text in [
            "replicas: [1, 2]\n",
            "- a\n- b\n",
            "a: b: c\n",
            "replicas: 1\nreplicas: 2\n",
        ] {
            let f = file(text);
            let e = Layers::load(Some(f.path()), []).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{text:?}: {e}");
            assert!(e.message.contains(&f.path().display().to_string()), "{e}");
        }
        let e = Layers::load(Some(Path::new("/nonexistent/restate-dev.yaml")), []).unwrap_err();
        assert!(
            e.message
                .contains("cannot read config file /nonexistent/restate-dev.yaml"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_key_value_and_origin() {
        let layers = Layers::load(None, env(&[("RESTATE_DEV_REPLICAS", "three")])).unwrap();
        let e = layers.resolve(&ObjectArgs::default()).unwrap_err();
        assert_eq!(
            e.message,
            "invalid replicas `three` (from $RESTATE_DEV_REPLICAS): it is not a valid value"
        );
        assert_eq!(e.exit_code(), 2);
    }
}
