//! Settings, layered: defaults, then the config file, then `RESTATE_DEV_*` variables, then flags.
//!
//! Every source is reduced to `key = value` pairs and parsed by the same clap definitions the flags use, so a
//! value means the same thing wherever it is written. Each pair remembers where it came from, and errors say so.

mod layers;
pub mod quantity;
mod record;
pub mod validate;

use std::time::Duration;

use std::path::PathBuf;

use crate::cli::{GlobalArgs, LoopArgs, ObjectArgs, RuntimeKind};
use crate::error::{Error, Result};
pub use layers::{Layers, Origin, Origins};
pub use record::{Record, SAMPLE, VERIFY_KEYS};

pub const DEFAULT_NAME: &str = "restate-dev";
pub const DEFAULT_NAMESPACE: &str = "restate";
/// The npm package `@restatedev/restate-server` our tests run is the same version.
pub const RESTATE_VERSION: &str = "1.7.12";
pub const DEFAULT_ENVOY_IMAGE: &str = "envoyproxy/envoy:distroless-v1.37.2";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

pub fn default_restate_image() -> String {
    format!("docker.restate.dev/restatedev/restate:{RESTATE_VERSION}")
}

/// Requests and limits of the Restate container. The chart asks for 4 CPU / 8Gi, which a laptop's single kind
/// node cannot schedule; Restate idles at about 213 MiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpu_request: "250m".into(),
            cpu_limit: "2".into(),
            memory_request: "512Mi".into(),
            memory_limit: "2Gi".into(),
        }
    }
}

pub const DEFAULT_STORAGE: &str = "2Gi";

/// What the Kubernetes objects are made from.
#[derive(Debug, Clone)]
pub struct ObjectSettings {
    pub name: String,
    pub namespace: String,
    pub replicas: u32,
    pub restate_image: String,
    /// `None` means the built-in sample service.
    pub service_image: Option<String>,
    pub envoy_image: String,
    pub resources: Resources,
    pub storage_size: String,
}

/// Where the loop runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    Kind,
    Docker,
    Minikube,
    /// An existing kube context, used as it is.
    Context(String),
}

/// How `up` proves the loop works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// `Greeter/greet` on the built-in sample.
    Sample,
    /// A handler of the user's service, as `Service/handler` or `Object/key/handler`, with a JSON body.
    Handler {
        path: String,
        body: String,
    },
    Skip,
}

/// Everything else `up` needs.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    pub runtime: Runtime,
    pub ingress_port: Option<u16>,
    pub admin_port: Option<u16>,
    pub node_image: Option<String>,
    pub restate_binary: Option<PathBuf>,
    pub timeout: Duration,
    pub verify: Verify,
}

/// Reads the config file and environment named by the global flags.
pub fn load(global: &GlobalArgs) -> Result<Layers> {
    Layers::load(global.config.as_deref(), std::env::vars())
}

impl Layers {
    /// The loop's name, validated.
    pub fn name(&self, global: &GlobalArgs) -> Result<String> {
        let (name, origin) = match &global.name {
            Some(name) => (name.clone(), Origin::Flag("--name".into())),
            None => self
                .scalar("name")
                .unwrap_or((DEFAULT_NAME.to_string(), Origin::Default)),
        };
        validate::dns_label(&name, validate::MAX_NAME_LEN).map_err(|why| invalid("name", &name, &origin, &why))?;
        Ok(name)
    }

    pub fn objects(&self, global: &GlobalArgs, flags: &ObjectArgs) -> Result<ObjectSettings> {
        let (args, origins) = self.resolve(flags)?;
        let check = |key: &str, value: &str, rule: fn(&str) -> std::result::Result<(), String>| {
            rule(value).map_err(|why| invalid(key, value, &origins.of(key), &why))
        };
        let namespace = args.namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        validate::dns_label(&namespace, 63)
            .map_err(|why| invalid("namespace", &namespace, &origins.of("namespace"), &why))?;
        let replicas = match args.replicas {
            None => 1,
            Some(n) => validate::replicas(n)
                .map_err(|why| invalid("replicas", &n.to_string(), &origins.of("replicas"), &why))?,
        };
        let restate_image = args.restate_image.unwrap_or_else(default_restate_image);
        check("restate-image", &restate_image, validate::image_reference)?;
        check("restate-image", &restate_image, validate::pinned_image)?;
        // `sample` names the built-in sample, so that a loop recorded with a custom image can go back to it.
        let service_image = args.service_image.filter(|image| image != SAMPLE);
        if let Some(image) = &service_image {
            check("service-image", image, validate::image_reference)?;
        }
        let envoy_image = args.envoy_image.unwrap_or_else(|| DEFAULT_ENVOY_IMAGE.into());
        check("envoy-image", &envoy_image, validate::image_reference)?;
        let defaults = Resources::default();
        let quantity = |key: &str, value: Option<String>, default: String| -> Result<String> {
            let value = value.unwrap_or(default);
            check(key, &value, validate::quantity)?;
            Ok(value)
        };
        let resources = Resources {
            cpu_request: quantity("restate-cpu-request", args.restate_cpu_request, defaults.cpu_request)?,
            cpu_limit: quantity("restate-cpu-limit", args.restate_cpu_limit, defaults.cpu_limit)?,
            memory_request: quantity(
                "restate-memory-request",
                args.restate_memory_request,
                defaults.memory_request,
            )?,
            memory_limit: quantity("restate-memory-limit", args.restate_memory_limit, defaults.memory_limit)?,
        };
        let storage_size = quantity("storage-size", args.storage_size, DEFAULT_STORAGE.into())?;
        Ok(ObjectSettings {
            name: self.name(global)?,
            namespace,
            replicas,
            restate_image,
            service_image,
            envoy_image,
            resources,
            storage_size,
        })
    }
}

impl Layers {
    pub fn setup(&self, flags: &LoopArgs, objects: &ObjectSettings) -> Result<LoopSettings> {
        let (LoopArgs { place: args, checks }, origins) = self.resolve(flags)?;
        let runtime = match (args.runtime, args.context) {
            (Some(runtime), Some(context)) if runtime != RuntimeKind::Kind => {
                return Err(Error::usage(format!(
                    "--context {context} and runtime `{}` cannot be combined",
                    format!("{runtime:?}").to_lowercase()
                ))
                .hint("--context uses an existing cluster; drop it, or drop the runtime"));
            }
            (_, Some(context)) => Runtime::Context(context),
            (None | Some(RuntimeKind::Kind), None) => Runtime::Kind,
            (Some(RuntimeKind::Docker), None) => Runtime::Docker,
            (Some(RuntimeKind::Minikube), None) => Runtime::Minikube,
        };
        let port = |key: &str, value: Option<i64>| -> Result<Option<u16>> {
            value
                .map(|p| validate::port(p).map_err(|why| invalid(key, &p.to_string(), &origins.of(key), &why)))
                .transpose()
        };
        let ingress_port = port("ingress-port", args.ingress_port)?;
        let admin_port = port("admin-port", args.admin_port)?;
        if ingress_port.is_some() && ingress_port == admin_port {
            let p = ingress_port.unwrap_or_default().to_string();
            return Err(invalid(
                "admin-port",
                &p,
                &origins.of("admin-port"),
                "is the same as ingress-port",
            ));
        }
        if let Some(image) = &args.node_image {
            validate::image_reference(image)
                .map_err(|why| invalid("node-image", image, &origins.of("node-image"), &why))?;
        }
        let timeout = match &checks.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) => parse_timeout(t).map_err(|why| invalid("timeout", t, &origins.of("timeout"), &why))?,
        };
        let verify = match (checks.no_verify, checks.verify) {
            (true, _) => Verify::Skip,
            (false, Some(path)) => {
                validate::handler_path(&path).map_err(|why| invalid("verify", &path, &origins.of("verify"), &why))?;
                let body = checks.verify_body.unwrap_or_else(|| "null".into());
                serde_json::from_str::<serde_json::Value>(&body).map_err(|e| {
                    invalid(
                        "verify-body",
                        &body,
                        &origins.of("verify-body"),
                        &format!("is not JSON ({e})"),
                    )
                })?;
                Verify::Handler { path, body }
            }
            (false, None) if checks.verify_body.is_some() => {
                return Err(
                    Error::usage("--verify-body needs the handler it is for: none is given or recorded")
                        .hint("add --verify Service/handler (or Object/key/handler)"),
                );
            }
            (false, None) if objects.service_image.is_none() => Verify::Sample,
            (false, None) => {
                return Err(
                    Error::usage("a custom --service-image needs --verify Service/handler, or --no-verify")
                        .hint("e.g. --verify Greeter/greet --verify-body '\"Ada\"'"),
                );
            }
        };
        Ok(LoopSettings {
            runtime,
            ingress_port,
            admin_port,
            node_image: args.node_image,
            restate_binary: args.restate_binary,
            timeout,
            verify,
        })
    }
}

impl Layers {
    /// What `up` records on the loop for these flags (see [`Record`]): every setting some layer gave, with where
    /// the loop runs always said, and `restate-binary` as an absolute path (a later `up` may run elsewhere). With
    /// it, where each of those settings came from.
    pub fn record(&self, objects: &ObjectArgs, setup: &LoopArgs, runtime: &Runtime) -> Result<(Record, Origins)> {
        let (objects, object_origins) = self.resolve(objects)?;
        let (setup, loop_origins) = self.resolve(setup)?;
        let mut values = std::collections::BTreeMap::new();
        for value in [serde_json::to_value(objects), serde_json::to_value(setup)] {
            let serde_json::Value::Object(map) = value.expect("flag structs serialize") else {
                unreachable!("flag structs serialize to a map")
            };
            for (key, value) in map {
                let text = match value {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                values.insert(key, text);
            }
        }
        values.remove("runtime");
        values.remove("context");
        match runtime {
            Runtime::Context(context) => values.insert("context".into(), context.clone()),
            other => values.insert("runtime".into(), runtime_key(other).into()),
        };
        if let Some(binary) = values.get_mut("restate-binary")
            && let Ok(absolute) = std::path::absolute(binary.as_str())
        {
            *binary = absolute.display().to_string();
        }
        Ok((Record::from_settings(values), object_origins.merged(loop_origins)))
    }
}

/// The `runtime` key's value for a runtime; `context` for an existing context.
pub fn runtime_key(runtime: &Runtime) -> &'static str {
    match runtime {
        Runtime::Kind => "kind",
        Runtime::Docker => "docker",
        Runtime::Minikube => "minikube",
        Runtime::Context(_) => "context",
    }
}

/// Parses a duration such as `300`, `90s` or `5m`. Zero is refused: every wait would fail before it began.
pub fn parse_timeout(value: &str) -> std::result::Result<Duration, String> {
    let parsed = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            humantime::parse_duration(value).map_err(|_| "is not a duration (examples: 300, 90s, 5m)".to_string())?
        }
    };
    if parsed.is_zero() {
        return Err("must be longer than zero (examples: 300, 90s, 5m)".into());
    }
    Ok(parsed)
}

pub fn invalid(key: &str, value: &str, origin: &Origin, why: &str) -> Error {
    Error::usage(format!("invalid {key} `{value}` ({origin}): it {why}")).hint(origin.fix_hint(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/restate-dev.example.yaml");

    fn global(config: Option<&str>) -> GlobalArgs {
        GlobalArgs {
            output: None,
            verbose: 0,
            quiet: false,
            config: config.map(PathBuf::from),
            name: None,
        }
    }

    fn layers(file: Option<&std::path::Path>, env: &[(&str, &str)]) -> Layers {
        Layers::load(file, env.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
    }

    fn setup_error(layers: &Layers) -> Error {
        let objects = layers.objects(&global(None), &ObjectArgs::default()).unwrap();
        layers.setup(&LoopArgs::default(), &objects).unwrap_err()
    }

    #[test]
    fn the_example_config_has_every_key_and_resolves() {
        let text = std::fs::read_to_string(EXAMPLE).unwrap();
        let document: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let mut keys: Vec<String> = document.as_object().unwrap().keys().cloned().collect();
        let mut known = layers::known_keys();
        keys.sort();
        known.sort();
        assert_eq!(keys, known);
        let layers = layers(Some(std::path::Path::new(EXAMPLE)), &[]);
        let objects = layers.objects(&global(None), &ObjectArgs::default()).unwrap();
        assert_eq!(objects.name, "demo");
        assert_eq!(objects.storage_size, "1Gi");
        let setup = layers.setup(&LoopArgs::default(), &objects).unwrap();
        assert_eq!((setup.ingress_port, setup.admin_port), (Some(8080), Some(9070)));
        assert_eq!(setup.runtime, Runtime::Kind);
        assert_eq!(setup.timeout, Duration::from_secs(300));
    }

    #[test]
    fn ports_out_of_range_name_key_value_and_origin() {
        for bad in ["0", "65536", "-1"] {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            writeln!(f, "ingress-port: {bad}").unwrap();
            let e = setup_error(&layers(Some(f.path()), &[]));
            assert_eq!(e.exit_code(), 2);
            assert_eq!(
                e.message,
                format!(
                    "invalid ingress-port `{bad}` (from config file {}): it must be a port from 1 to 65535",
                    f.path().display()
                )
            );
            let e = setup_error(&layers(None, &[("RESTATE_DEV_ADMIN_PORT", bad)]));
            assert_eq!(
                e.message,
                format!("invalid admin-port `{bad}` (from $RESTATE_DEV_ADMIN_PORT): it must be a port from 1 to 65535")
            );
            assert_eq!(e.hint.as_deref(), Some("fix or unset $RESTATE_DEV_ADMIN_PORT"));
        }
        let e = setup_error(&layers(None, &[("RESTATE_DEV_INGRESS_PORT", "http")]));
        assert!(e.message.starts_with("invalid ingress-port `http`"), "{e}");
        let e = setup_error(&layers(
            None,
            &[("RESTATE_DEV_INGRESS_PORT", "8080"), ("RESTATE_DEV_ADMIN_PORT", "8080")],
        ));
        assert!(e.message.contains("is the same as ingress-port"), "{e}");
    }

    fn recorded(pairs: &[(&str, &str)]) -> Record {
        Record(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    fn up_flags(args: &[&str]) -> (ObjectArgs, LoopArgs) {
        use clap::Parser;
        let cli = crate::cli::Cli::parse_from([&["restate-dev", "up"], args].concat());
        match cli.command {
            crate::cli::Command::Up(up) => (up.objects, up.setup),
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_record_is_above_the_defaults_and_below_file_env_and_flags() {
        let record = recorded(&[
            ("runtime", "docker"),
            ("service-image", "my/greeter:1"),
            ("verify", "Greeter/greet"),
            ("replicas", "2"),
            ("storage-size", "5Gi"),
        ]);
        let layers = layers(None, &[("RESTATE_DEV_STORAGE_SIZE", "7Gi")]).with_record("x", &record);
        let (objects, setup) = up_flags(&["--replicas", "3"]);
        let (args, origins) = layers.resolve(&objects).unwrap();
        assert_eq!(args.service_image.as_deref(), Some("my/greeter:1"));
        assert_eq!(origins.of("service-image"), Origin::Record("x".into()));
        assert_eq!(origins.of("service-image").to_string(), "recorded on loop x");
        assert_eq!(args.replicas, Some(3));
        assert_eq!(args.storage_size.as_deref(), Some("7Gi"));
        let objects_settings = layers.objects(&global(None), &objects).unwrap();
        let settings = layers.setup(&setup, &objects_settings).unwrap();
        assert_eq!(settings.runtime, Runtime::Docker);
        assert_eq!(
            settings.verify,
            Verify::Handler {
                path: "Greeter/greet".into(),
                body: "null".into()
            }
        );
        // What the next `up` records: all of it, the new values in.
        let (next, _) = layers.record(&objects, &setup, &settings.runtime).unwrap();
        assert_eq!(record.changes(&next), ["replicas: 2 → 3", "storage-size: 5Gi → 7Gi"]);
    }

    #[test]
    fn a_given_key_replaces_its_whole_recorded_group() {
        let record = recorded(&[
            ("runtime", "docker"),
            ("service-image", "my/greeter:1"),
            ("verify", "Greeter/greet"),
            ("verify-body", "\"Ada\""),
        ]);
        let layers = layers(None, &[]).with_record("x", &record);
        // --no-verify beside a recorded --verify would be a clap conflict; the recorded group gives way.
        let (objects, setup) = up_flags(&["--no-verify"]);
        let o = layers.objects(&global(None), &objects).unwrap();
        assert_eq!(layers.setup(&setup, &o).unwrap().verify, Verify::Skip);
        // A body alone is for the recorded handler.
        let (objects, setup) = up_flags(&["--verify-body", "\"Bob\""]);
        let o = layers.objects(&global(None), &objects).unwrap();
        assert_eq!(
            layers.setup(&setup, &o).unwrap().verify,
            Verify::Handler {
                path: "Greeter/greet".into(),
                body: "\"Bob\"".into()
            }
        );
        // With no handler given or recorded, a body is refused.
        let (objects, setup) = up_flags(&["--verify-body", "1"]);
        let bare = Layers::load(None, std::iter::empty()).unwrap();
        let o = bare.objects(&global(None), &objects).unwrap();
        let error = bare.setup(&setup, &o).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.message.contains("--verify-body needs the handler"), "{error}");
        // A new --verify does not inherit the old handler's body.
        let (objects, setup) = up_flags(&["--verify", "Other/run"]);
        let o = layers.objects(&global(None), &objects).unwrap();
        let verify = layers.setup(&setup, &o).unwrap().verify;
        assert_eq!(
            verify,
            Verify::Handler {
                path: "Other/run".into(),
                body: "null".into()
            }
        );
    }

    #[test]
    fn service_image_sample_is_the_built_in_sample() {
        let (objects, setup) = up_flags(&["--service-image", "sample"]);
        let layers = layers(None, &[]);
        let o = layers.objects(&global(None), &objects).unwrap();
        assert_eq!(o.service_image, None);
        let settings = layers.setup(&setup, &o).unwrap();
        assert_eq!(settings.verify, Verify::Sample);
        let (next, _) = layers.record(&objects, &setup, &settings.runtime).unwrap();
        assert_eq!(next, recorded(&[("runtime", "kind")]));
    }

    #[test]
    fn the_record_says_where_the_loop_runs_and_not_how_long_up_waits() {
        let layers = layers(None, &[]);
        let (objects, setup) = up_flags(&[
            "--context",
            "prod",
            "--timeout",
            "9m",
            "--service-image",
            "a/b:1",
            "--no-verify",
        ]);
        let (next, _) = layers
            .record(&objects, &setup, &Runtime::Context("prod".into()))
            .unwrap();
        assert_eq!(
            next,
            recorded(&[("context", "prod"), ("no-verify", "true"), ("service-image", "a/b:1")])
        );
        let (objects, setup) = up_flags(&["--restate-binary", "bin/restate-server"]);
        let (next, _) = layers.record(&objects, &setup, &Runtime::Kind).unwrap();
        let binary = next.get("restate-binary").unwrap();
        assert!(
            binary.starts_with('/') && binary.ends_with("/bin/restate-server"),
            "{binary}"
        );
    }
}
