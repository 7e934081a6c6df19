//! The command line. Flags that shape the loop are also config keys and `RESTATE_DEV_*` variables: the structs
//! below are both clap arguments and serde records, so the three spellings cannot drift apart.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

#[derive(Debug, Parser)]
#[command(
    name = "restate-dev",
    version,
    about = "A reproducible local Kubernetes loop for Restate services",
    long_about = "A reproducible local Kubernetes loop for Restate services.\n\n\
        `up` creates (or reuses) a kind-compatible cluster through the Docker Engine API, installs the Restate \
        server the way its Helm chart does, deploys a service, registers it and proves one invocation. \
        `down` removes everything `up` made, and nothing else.",
    after_help = "Exit codes: 0 success, 1 a step failed, 2 bad usage or config, 3 a missing prerequisite, \
        4 a wait timed out, 130 interrupted (SIGINT), 141 stdout closed early, 143 terminated (SIGTERM).\n\
        Results go to stdout; progress and errors go to stderr."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format: `human` (default) or `json`; `render` also takes `yaml` (its default).
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
    /// More logging on stderr (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only results and errors; no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// A YAML config file (see fixtures/restate-dev.example.yaml).
    #[arg(long, global = true, value_name = "FILE", env = "RESTATE_DEV_CONFIG")]
    pub config: Option<PathBuf>,
    /// The loop's name, a DNS label (lowercase letters, digits and `-`, at most 49): it names the cluster,
    /// network and containers; `list --name` shows only that loop [default: restate-dev].
    #[arg(long, global = true, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every Kubernetes object that `up` installs, in apply order.
    ///
    /// The objects are those of the default runtime, kind: they include the `restate-nodeport` Service (node ports
    /// 30080 for ingress and 30070 for admin) that the cluster's host port mappings point at. The sample service's
    /// image is tagged by a hash of this executable. Output is YAML documents, or one JSON list with --output json.
    #[command(after_help = "Examples:\n  \
        restate-dev render\n  \
        restate-dev render --replicas 3 --output json\n  \
        restate-dev render --service-image ghcr.io/me/greeter:1.0 | kubectl apply --server-side -f -")]
    Render(RenderArgs),
    /// Create (or reuse) the cluster, install Restate and the service, register it and prove one invocation.
    ///
    /// The loop remembers the settings it was given: a bare `up --name X` re-ups it as it is, and a setting given
    /// again with another value is applied and said in one line. The defaults below are for a new loop.
    #[command(after_help = "Examples:\n  \
        restate-dev up\n  \
        restate-dev up --runtime docker --ingress-port 8080 --admin-port 9070\n  \
        restate-dev up --service-image my/greeter:dev --verify Greeter/greet --verify-body '\"Ada\"'\n  \
        restate-dev up --context my-cluster --replicas 3")]
    Up(UpArgs),
    /// Remove everything `up` made for this name, found by label.
    #[command(after_help = "Examples:\n  \
        restate-dev down\n  \
        restate-dev down --name other-loop --images\n  \
        restate-dev down --keep-cluster")]
    Down(DownArgs),
    /// Show what exists for this name, its health, and the URLs.
    #[command(after_help = "Examples:\n  restate-dev status\n  restate-dev status --output json")]
    Status(StatusArgs),
    /// List every loop on this machine: its runtime, health and URLs.
    #[command(after_help = "Examples:\n  restate-dev list\n  restate-dev list --output json")]
    List,
    /// Run up, verify and down in one command, for CI; writes a JSON report and sets the exit code.
    #[command(after_help = "Examples:\n  \
        restate-dev smoke --output json\n  \
        restate-dev smoke --runtime docker --report smoke.json --keep")]
    Smoke(SmokeArgs),
    /// Check the machine: Docker, disk, inotify limits, ports and optional tools.
    #[command(after_help = "Examples:\n  restate-dev doctor\n  restate-dev doctor --output json --ingress-port 8080")]
    Doctor(DoctorArgs),
    /// Forward ingress and admin to 127.0.0.1 until Ctrl-C, for loops on minikube or an existing context.
    #[command(after_help = "Examples:\n  restate-dev port-forward --name my-loop\n  \
        restate-dev port-forward --context my-cluster --ingress-port 8080 --admin-port 9070")]
    PortForward(PortForwardArgs),
    /// Serve the built-in sample service (Greeter and Counter) on $PORT (default 9080).
    #[command(hide = true)]
    ServeSample,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub objects: ObjectArgs,
}

/// Flags that shape the Kubernetes objects.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ObjectArgs {
    /// Namespace for Restate and the service [default: restate].
    #[arg(long, value_name = "NAMESPACE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Replicas of the service; above 1 adds the Envoy sidecar and a headless Service [default: 1].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    /// The Restate server image, pinned by version [default: docker.restate.dev/restatedev/restate:1.7.12].
    #[arg(long, value_name = "IMAGE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restate_image: Option<String>,
    /// Your service's image, instead of the built-in sample.
    #[arg(long, value_name = "IMAGE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_image: Option<String>,
    /// The Envoy sidecar image, used when --replicas is above 1.
    #[arg(long, value_name = "IMAGE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_image: Option<String>,
    /// CPU request of the Restate container [default: 250m].
    #[arg(long, value_name = "QUANTITY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restate_cpu_request: Option<String>,
    /// CPU limit of the Restate container [default: 2].
    #[arg(long, value_name = "QUANTITY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restate_cpu_limit: Option<String>,
    /// Memory request of the Restate container [default: 512Mi].
    #[arg(long, value_name = "QUANTITY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restate_memory_request: Option<String>,
    /// Memory limit of the Restate container [default: 2Gi].
    #[arg(long, value_name = "QUANTITY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restate_memory_limit: Option<String>,
    /// Size of Restate's data volume [default: 2Gi].
    #[arg(long, value_name = "QUANTITY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_size: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// A kind-compatible cluster made through the Docker API.
    Kind,
    /// Plain containers on a Docker network, no Kubernetes.
    Docker,
    /// A minikube profile, through the minikube CLI.
    Minikube,
}

/// Flags that shape the loop around the objects: where it runs, and how `up` proves it works.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
pub struct LoopArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub place: PlaceArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub checks: CheckArgs,
}

/// Where the loop runs and what it is made from; `doctor` checks these too.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PlaceArgs {
    /// Where the loop runs: kind (default), docker or minikube.
    #[arg(long, value_enum, value_name = "RUNTIME", conflicts_with = "context")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeKind>,
    /// Use this existing kube context as it is; it is never deleted.
    #[arg(long, value_name = "NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Host port on 127.0.0.1 for Restate ingress [default: a free port].
    #[arg(long, value_name = "PORT", allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_port: Option<i64>,
    /// Host port on 127.0.0.1 for the Restate admin API [default: a free port].
    #[arg(long, value_name = "PORT", allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_port: Option<i64>,
    /// The kindest/node image for the kind runtime [default: the pinned v1.37.0 digest, kind v0.33.0's].
    #[arg(long, value_name = "IMAGE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_image: Option<String>,
    /// Build the Restate image from this restate-server binary instead of pulling it (offline use).
    #[arg(long, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restate_binary: Option<PathBuf>,
}

/// How `up` waits for the loop and proves it works.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CheckArgs {
    /// Bound on each wait, e.g. 300, 90s, 5m [default: 5m].
    #[arg(long, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// The handler that proves your service works, as Service/handler or Object/key/handler.
    #[arg(long, value_name = "PATH", conflicts_with = "no_verify")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<String>,
    /// The JSON body sent to --verify [default: null].
    #[arg(long, value_name = "JSON")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_body: Option<String>,
    /// Skip the proving invocation.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_verify: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub objects: ObjectArgs,
    #[command(flatten)]
    pub setup: LoopArgs,
    /// Keep what a failed cluster bootstrap made, for debugging.
    #[arg(long)]
    pub retain: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    /// Remove only what was installed into the cluster; keep the cluster.
    #[arg(long)]
    pub keep_cluster: bool,
    /// Also remove the images restate-dev built that no container uses.
    #[arg(long)]
    pub images: bool,
    /// Uninstall from this kube context (needed for loops made with `up --context`).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The loop's runtime; not needed (the loop is found wherever it is), but checked when given.
    #[arg(long, value_enum, value_name = "RUNTIME", conflicts_with = "context")]
    pub runtime: Option<RuntimeKind>,
    /// The loop's namespace, for a loop `up --context --namespace` made [default: the recorded one, else restate].
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Look in this kube context too (for loops made with `up --context`).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The loop's runtime; not needed (the loop is found wherever it is), but checked when given.
    #[arg(long, value_enum, value_name = "RUNTIME", conflicts_with = "context")]
    pub runtime: Option<RuntimeKind>,
    /// The loop's namespace, for a loop `up --context --namespace` made [default: the recorded one, else restate].
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    pub up: UpArgs,
    /// Keep the loop running afterwards, even when verification fails.
    #[arg(long)]
    pub keep: bool,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub place: PlaceArgs,
}

#[derive(Debug, Args)]
pub struct PortForwardArgs {
    /// The kube context of a loop made with `up --context`.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The loop's namespace, for a loop `up --context --namespace` made [default: the recorded one, else restate].
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Local port for ingress [default: the one `up` chose].
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub ingress_port: Option<u16>,
    /// Local port for the admin API [default: the one `up` chose].
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub admin_port: Option<u16>,
}

/// The flags that pick out this loop, as given on the command line, so that a hint naming another command
/// spells it for the same loop: `restate-dev down --name x --context y`, not a bare `restate-dev down` that
/// would act on another loop.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    config: Option<PathBuf>,
    name: Option<String>,
    runtime: Option<RuntimeKind>,
    context: Option<String>,
    namespace: Option<String>,
}

impl Identity {
    pub fn of(cli: &Cli) -> Identity {
        let place =
            |place: &PlaceArgs, objects: &ObjectArgs| (place.runtime, place.context.clone(), objects.namespace.clone());
        let (runtime, context, namespace) = match &cli.command {
            Command::Up(args) => place(&args.setup.place, &args.objects),
            Command::Smoke(args) => place(&args.up.setup.place, &args.up.objects),
            Command::Doctor(args) => (args.place.runtime, args.place.context.clone(), None),
            Command::Down(DownArgs {
                context,
                runtime,
                namespace,
                ..
            })
            | Command::Status(StatusArgs {
                context,
                runtime,
                namespace,
            }) => (*runtime, context.clone(), namespace.clone()),
            Command::PortForward(PortForwardArgs { context, namespace, .. }) => {
                (None, context.clone(), namespace.clone())
            }
            Command::Render(args) => (None, None, args.objects.namespace.clone()),
            Command::List | Command::ServeSample => (None, None, None),
        };
        Identity {
            config: cli.global.config.clone(),
            name: cli.global.name.clone(),
            runtime,
            context,
            namespace,
        }
    }

    /// The flags `restate-dev VERB` takes of these, each with a leading space.
    pub fn flags(&self, verb: &str) -> String {
        // A loop on an existing context has no record on this machine, so its namespace is spelled too.
        let (name, runtime, context, namespace) = match verb {
            "up" | "smoke" => (true, true, true, true),
            // They find the loop wherever it is; a --context is still needed for a loop on an existing context.
            "down" | "status" | "port-forward" => (true, false, true, true),
            "doctor" => (false, true, true, false),
            "render" => (true, false, false, true),
            "list" => (false, false, false, false),
            _ => return String::new(),
        };
        let mut flags = String::new();
        if let Some(config) = &self.config {
            flags.push_str(&format!(" --config {}", quote(&config.display().to_string())));
        }
        if let (true, Some(value)) = (name, &self.name) {
            flags.push_str(&format!(" --name {}", quote(value)));
        }
        if let (true, Some(value)) = (runtime, self.runtime) {
            let value = format!("{value:?}").to_lowercase();
            flags.push_str(&format!(" --runtime {value}"));
        }
        if let (true, Some(value)) = (context, &self.context) {
            flags.push_str(&format!(" --context {}", quote(value)));
        }
        if let (true, Some(value)) = (namespace, &self.namespace) {
            flags.push_str(&format!(" --namespace {}", quote(value)));
        }
        flags
    }

    /// `error` with its hint and details respelled (see [`Identity::respell`]).
    pub fn respell_error(&self, mut error: crate::error::Error) -> crate::error::Error {
        error.hint = error.hint.map(|hint| self.respell(&hint));
        error.details = error.details.iter().map(|d| self.respell(d)).collect();
        error
    }

    /// `text` with each backticked `restate-dev VERB …` given the flags for VERB that it lacks.
    pub fn respell(&self, text: &str) -> String {
        const START: &str = "`restate-dev ";
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(START) {
            out.push_str(&rest[..at]);
            let inner = &rest[at + 1..];
            let Some(end) = inner.find('`') else {
                out.push_str(&rest[at..]);
                return out;
            };
            let command = &inner[..end];
            let after = command["restate-dev ".len()..].trim_start();
            let verb_len = after.find(' ').unwrap_or(after.len());
            let (verb, args) = after.split_at(verb_len);
            // `--runtime` and `--context` both say where the loop is: a hint that names one takes neither.
            let given = |flag: &str| match flag {
                "runtime" | "context" => args.contains("--runtime") || args.contains("--context"),
                _ => args.contains(&format!("--{flag}")),
            };
            let missing: String = self
                .flags(verb)
                .split(" --")
                .filter(|f| !f.is_empty() && !given(f.split(' ').next().unwrap_or(f)))
                .map(|f| format!(" --{f}"))
                .collect();
            out.push_str(&format!("`restate-dev {verb}{missing}{args}`"));
            rest = &inner[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// A value as a shell reads it back: quoted only when it needs to be.
fn quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._/:=@%+-".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(args: &[&str]) -> Identity {
        Identity::of(&Cli::parse_from([&["restate-dev"], args].concat()))
    }

    #[test]
    fn hints_name_the_loop_the_user_named() {
        let id = identity(&["up", "--runtime", "docker", "--name", "x"]);
        assert_eq!(
            id.respell("run `restate-dev up` again, or `restate-dev down` to remove it; `restate-dev status` shows it"),
            "run `restate-dev up --name x --runtime docker` again, or `restate-dev down --name x` to remove it; \
             `restate-dev status --name x` shows it"
        );
        assert_eq!(
            id.respell("`restate-dev up --retain` keeps it"),
            "`restate-dev up --name x --runtime docker --retain` keeps it"
        );
        assert_eq!(id.respell("`restate-dev down --name x`"), "`restate-dev down --name x`");
        let id = identity(&["--config", "my dev.yaml", "status", "--context", "prod"]);
        assert_eq!(
            id.respell("`restate-dev down` or `kubectl get pods`"),
            "`restate-dev down --config 'my dev.yaml' --context prod` or `kubectl get pods`"
        );
        assert_eq!(identity(&["up"]).respell("`restate-dev down`"), "`restate-dev down`");
        // A hint that says where the loop is keeps its word: the user's own --runtime or --context is not added.
        let id = identity(&["status", "--name", "x", "--context", "prod"]);
        assert_eq!(
            id.respell("`restate-dev up --runtime docker` repairs it"),
            "`restate-dev up --name x --runtime docker` repairs it"
        );
        let id = identity(&["down", "--name", "x", "--runtime", "docker"]);
        assert_eq!(id.respell("`restate-dev status`"), "`restate-dev status --name x`");
        assert_eq!(
            id.respell("`restate-dev up`"),
            "`restate-dev up --name x --runtime docker`"
        );
        assert_eq!(
            id.respell("an unclosed `restate-dev down"),
            "an unclosed `restate-dev down"
        );
        // A loop on an existing context has no record here: its namespace travels with the hints.
        let id = identity(&["up", "--context", "prod", "--namespace", "dev"]);
        assert_eq!(
            id.respell("`restate-dev status` shows it; `restate-dev down` removes it"),
            "`restate-dev status --context prod --namespace dev` shows it; \
             `restate-dev down --context prod --namespace dev` removes it"
        );
    }
}
