//! The `gatehouse` binary: parses the command line, loads settings, wires the layers together
//! and runs one command. Errors go to stderr with a non-zero exit status.

mod cli;
mod commands;
mod output;

use clap::Parser;
use gatehouse_service::settings::LogFormat;
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Settings come first: they say how to log. Their errors go to stderr as any other.
    let settings = match commands::load_settings(&cli) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(
        matches!(cli.command, cli::Command::Serve),
        settings.log_format,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, so stdout carries only command output (and `--json` stays parseable).
/// `serve` logs at info; other commands only warnings. `RUST_LOG` overrides both.
///
/// `log_format = "json"` writes one JSON object per line and event: `timestamp`, `level`,
/// `fields` (the message and the event's fields), and `span` with the fields of the request
/// span (`request_id`, `method`) when the event happened while serving a request.
fn init_logging(serving: bool, format: LogFormat) {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
