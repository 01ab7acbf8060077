//! The `qwen3` command-line tool.

mod args;
mod commands;
mod device;
mod model_source;
mod runner;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match &cli.command {
        Command::Tokenize(args) => commands::tokenize::run(args, &mut out),
        Command::Template(args) => commands::template::run(args, &mut out),
        Command::Score(args) => commands::score::run(args, &mut out),
        Command::Generate(args) => commands::generate::run(args, &mut out),
        Command::Chat(args) => commands::chat::run(args),
        Command::Bench(args) => commands::bench::run(args, &mut out),
    }
    .and_then(|()| out.flush().map_err(anyhow::Error::from));

    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`qwen3 tokenize ... | head`) is the reader's choice, not an error.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            // With stderr closed too there is nowhere to report, and
            // `eprintln!` would panic.
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `RUST_LOG` sets the level (default `warn`).
///
/// The default silences `wgpu_hal`: it logs an ERROR for every graphics API
/// it probes and does not find (EGL on a Vulkan machine, for one), on runs
/// that then work. A missing adapter still fails with its own message.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,wgpu_hal=off"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
