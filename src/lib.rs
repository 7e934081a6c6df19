//! restate-dev as a library: the binary is `main` below, and integration tests reach the modules they drive
//! directly (the Docker wrapper, images, the Restate client) without compiling sources into themselves. Everything
//! else stays private, so the compiler still reports dead code in it.

mod cli;
mod cluster;
mod commands;
mod config;
pub mod docker;
pub mod error;
pub mod images;
mod k8s;
pub mod labels;
mod lock;
mod pipeline;
pub mod restate;
mod runtime;
mod sample;
mod signals;
pub mod ui;

use std::io::IsTerminal;

use clap::Parser;

use crate::cli::{Cli, Command, Identity, OutputFormat};
use crate::error::{Error, Result};
use crate::signals::Signals;
use crate::ui::{Ui, eprint_line, print_line};

/// What shells report for a process that SIGPIPE ended (128 + 13), as git and kubectl end on a closed stdout.
const CLOSED_STDOUT: i32 = 141;

/// Runs the command line; the process's exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let json = cli.global.output == Some(OutputFormat::Json);
    let identity = Identity::of(&cli);
    init_logging(cli.global.verbose, matches!(cli.command, Command::ServeSample));
    let result = run(cli, identity.clone());
    match (result, ui::stdout_failure()) {
        // Whoever read our output has gone (`status | head -1`): end quietly, as git and kubectl do.
        (Ok(()), Some(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => CLOSED_STDOUT,
        (Ok(()), Some(e)) => {
            eprint_line(&format!("error: cannot write the result to stdout: {e}"));
            error::Kind::Failed.exit_code()
        }
        (Ok(()), None) => 0,
        (Err(error), _) => {
            let error = identity.respell_error(error);
            if json && !error.in_report {
                print_line(&serde_json::to_string_pretty(&error.to_json()).expect("JSON values serialize"));
            }
            eprint_line(&error.to_string());
            error.exit_code()
        }
    }
}

fn run(cli: Cli, identity: Identity) -> Result<()> {
    if cli.global.output == Some(OutputFormat::Yaml) && !matches!(cli.command, Command::Render(_)) {
        return Err(Error::usage("--output yaml is only for `render`").hint("use --output human or --output json"));
    }
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::failed("cannot start the async runtime").source(e))?;
    let ui = Ui::new(cli.global.output, cli.global.quiet).spelling(identity);
    let layers = config::load(&cli.global)?;
    let ctx = commands::Ctx {
        global: cli.global,
        layers,
        ui,
    };
    runtime.block_on(async {
        let signals = Signals::install()?;
        commands::run(&ctx, cli.command, signals).await
    })
}

/// A tracing filter that overrides -v, e.g. `RESTATE_DEV_LOG=restate_dev=trace`.
pub const LOG_ENV: &str = "RESTATE_DEV_LOG";

/// Tracing is for -v and -vv: at the default verbosity every message worth reading reaches the user through our
/// own errors, and libraries' logs (kube's "failed with error client error (Connect)") only repeat them
/// unreadably. The sample service is the exception: its warnings are the log of its container.
fn init_logging(verbose: u8, sample: bool) {
    let level = match verbose {
        // The sample's server warns of every connection closed before an HTTP/2 preface, which is what a TCP
        // readiness probe does each second.
        0 if sample => "warn,restate_sdk::http_server=error",
        0 => "off",
        1 => "restate_dev=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| level.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
