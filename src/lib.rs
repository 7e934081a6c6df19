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
mod pipeline;
pub mod restate;
mod runtime;
mod sample;
pub mod ui;

use clap::Parser;

use crate::cli::{Cli, OutputFormat};
use crate::error::{Error, Result};
use crate::ui::Ui;

/// Runs the command line; the process's exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let json = cli.global.output == Some(OutputFormat::Json);
    init_logging(cli.global.verbose);
    match run(cli) {
        Ok(()) => 0,
        Err(error) => {
            if json && !error.in_report {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&error.to_json()).expect("JSON values serialize")
                );
            }
            eprintln!("{error}");
            error.exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::failed("cannot start the async runtime").source(e))?;
    let ui = Ui::new(cli.global.output, cli.global.quiet);
    let layers = config::load(&cli.global)?;
    let ctx = commands::Ctx {
        global: cli.global,
        layers,
        ui,
    };
    if matches!(cli.command, cli::Command::ServeSample | cli::Command::PortForward(_)) {
        // These run until a signal, which ends them normally: the sample handles SIGTERM and SIGINT itself (as PID 1
        // in its container), and port-forward stops at Ctrl-C.
        return runtime.block_on(commands::run(&ctx, cli.command));
    }
    runtime.block_on(async {
        tokio::select! {
            result = commands::run(&ctx, cli.command) => result,
            _ = tokio::signal::ctrl_c() => Err(Error::interrupted()),
        }
    })
}

/// A tracing filter that overrides -v, e.g. `RESTATE_DEV_LOG=restate_dev=trace`.
pub const LOG_ENV: &str = "RESTATE_DEV_LOG";

fn init_logging(verbose: u8) {
    let level = match verbose {
        // The sample's server warns of every connection closed before an HTTP/2 preface, which is what a TCP
        // readiness probe does each second.
        0 => "warn,restate_sdk::http_server=error",
        1 => "restate_dev=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| level.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
