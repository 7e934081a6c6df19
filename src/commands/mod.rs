//! One file per verb.

mod doctor;
mod down;
mod list;
mod port_forward;
mod render;
mod serve_sample;
mod smoke;
mod status;
mod up;

use clap::ValueEnum;

use crate::cli::{Command, GlobalArgs, RuntimeKind};
use crate::config::Layers;
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::runtime::record;
use crate::signals::Signals;
use crate::ui::Ui;

/// What every command gets: the global flags, the file and environment layers, and the output.
pub struct Ctx {
    pub global: GlobalArgs,
    pub layers: Layers,
    pub ui: Ui,
}

impl Ctx {
    pub fn name(&self) -> Result<String> {
        self.layers.name(&self.global)
    }

    /// A `--context` given by the flag or by the file or environment layers. A loop on an existing context is
    /// never recorded on this machine, so with one the local record is not consulted at all: a local loop of the
    /// same name (say a kind loop, whose context a kind-CLI cluster's may look like) is another loop.
    pub fn context(&self, flag: Option<&str>) -> Option<String> {
        flag.map(str::to_string)
            .or_else(|| self.layers.scalar("context").map(|(context, _)| context))
    }

    /// Loop `name` as `status`, `down` and `port-forward` find it, with no runtime flag: where it is (its record
    /// on this machine's Docker), checked against the `--runtime` given, and its namespace (the one given over
    /// the one recorded). With a `--context`, or when Docker is unreachable (minikube runs without it), there is
    /// no record to read: the loop is found through its cluster.
    pub async fn find_loop(
        &self,
        name: &str,
        runtime: Option<RuntimeKind>,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<Place> {
        let context = self.context(context);
        let found = match (&context, Docker::connect().await) {
            (None, Ok(docker)) => record::find(&docker, name).await?,
            _ => None,
        };
        if let (Some(found), Some(runtime)) = (&found, runtime) {
            let given = runtime_name(runtime);
            if given != found.record.place() {
                return Err(
                    Error::usage(format!("loop {name} runs on {}, not on {given}", found.record.place())).hint(
                        format!(
                            "leave the runtime out (the loop is found wherever it is), or give {}",
                            found.record.place_flag()
                        ),
                    ),
                );
            }
        }
        let layers = match &found {
            Some(found) => self.layers.clone().with_record(name, &found.record),
            None => self.layers.clone(),
        };
        let given = crate::cli::ObjectArgs {
            namespace: namespace.map(str::to_string),
            ..Default::default()
        };
        let namespace = layers.objects(&self.global, &given)?.namespace;
        Ok(Place { context, namespace })
    }
}

/// `kind`, `docker` or `minikube`: a runtime as its flag and the record spell it.
fn runtime_name(runtime: RuntimeKind) -> String {
    runtime
        .to_possible_value()
        .expect("every runtime has a name")
        .get_name()
        .to_string()
}

/// Where a loop is, for `status`, `down` and `port-forward`.
pub struct Place {
    pub namespace: String,
    pub context: Option<String>,
}

/// The loops on this machine with where each runs, for messages about a name that has none.
pub async fn other_loops() -> Vec<(String, String)> {
    let Ok(docker) = Docker::connect().await else {
        return Vec::new();
    };
    let mut loops = Vec::new();
    for name in record::loop_names(&docker).await.unwrap_or_default() {
        if let Ok(Some(found)) = record::find(&docker, &name).await {
            loops.push((name, found.record.place()));
        }
    }
    loops
}

/// `a (docker), b (kind)`.
pub fn describe_loops(loops: &[(String, String)]) -> String {
    let named: Vec<String> = loops.iter().map(|(name, place)| format!("{name} ({place})")).collect();
    named.join(", ")
}

/// Runs `command`. A signal ends it at once (exit 130 or 143), except for the verbs that handle signals
/// themselves: `smoke` tears down first, `port-forward` stops forwarding, and the sample drains its connections.
pub async fn run(ctx: &Ctx, command: Command, signals: Signals) -> Result<()> {
    match command {
        Command::ServeSample => serve_sample::run(ctx).await,
        Command::Smoke(args) => smoke::run(ctx, &args, signals).await,
        Command::PortForward(args) => port_forward::run(ctx, &args, signals).await,
        Command::Render(args) => render::run(ctx, &args),
        Command::Up(args) => until_signal(up::run(ctx, &args), signals).await,
        Command::Down(args) => until_signal(down::run(ctx, &args), signals).await,
        Command::Status(args) => until_signal(status::run(ctx, &args), signals).await,
        Command::List => until_signal(list::run(ctx), signals).await,
        Command::Doctor(args) => until_signal(doctor::run(ctx, &args), signals).await,
    }
}

async fn until_signal(work: impl Future<Output = Result<()>>, mut signals: Signals) -> Result<()> {
    tokio::select! {
        result = work => result,
        kind = signals.next() => Err(interrupted(kind)),
    }
}

/// The error for a signal; one that came while the command still waited for its loop's lock made nothing, and
/// must not send the user to `down` a loop another command is making.
pub fn interrupted(kind: crate::error::Kind) -> Error {
    let error = Error::interrupted(kind);
    match crate::lock::waiting_for() {
        Some(whom) => error.hint(format!(
            "nothing was made: this command was still waiting for {whom}, which goes on"
        )),
        None => error,
    }
}
