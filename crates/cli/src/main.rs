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
    let serving = matches!(cli.command, cli::Command::Serve);
    let filter = match log_filter(serving) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(filter, settings.log_format);
    if serving {
        return_free_memory();
    }
    let workers = match worker_threads() {
        Ok(workers) => workers,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
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

/// Most worker threads `TOKIO_WORKER_THREADS` may ask for.
const MOST_WORKER_THREADS: usize = 1024;

/// The async runtime's worker threads: `TOKIO_WORKER_THREADS` if set (tokio's own variable),
/// else one per core. Read here rather than by tokio, which panics on a value it cannot use.
fn worker_threads() -> Result<usize, String> {
    const VAR: &str = "TOKIO_WORKER_THREADS";
    match std::env::var(VAR) {
        Err(std::env::VarError::NotPresent) => {
            Ok(std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
        }
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{VAR} is not valid UTF-8")),
        Ok(value) => match value.trim().parse::<usize>() {
            Ok(n) if (1..=MOST_WORKER_THREADS).contains(&n) => Ok(n),
            _ => Err(format!(
                "{VAR}: {value:?} is not a number of threads from 1 to {MOST_WORKER_THREADS}"
            )),
        },
    }
}

/// `serve` logs at info; other commands only warnings. `RUST_LOG` overrides both; one that
/// does not parse is refused rather than silently replaced by the default (an empty one counts
/// as unset).
fn log_filter(serving: bool) -> Result<tracing_subscriber::EnvFilter, String> {
    const VAR: &str = "RUST_LOG";
    let default = if serving { "info" } else { "warn" };
    match std::env::var(VAR) {
        Ok(value) if !value.trim().is_empty() => tracing_subscriber::EnvFilter::try_new(&value)
            .map_err(|e| format!("{VAR}: {value:?} is not a log filter: {e}")),
        Ok(_) | Err(std::env::VarError::NotPresent) => {
            Ok(tracing_subscriber::EnvFilter::new(default))
        }
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{VAR} is not valid UTF-8")),
    }
}

/// Logs go to stderr, so stdout carries only command output (and `--json` stays parseable).
///
/// `log_format = "json"` writes one JSON object per line and event: `timestamp`, `level`,
/// `fields` (the message and the event's fields), and `span` with the fields of the request
/// span (`request_id`, `method`) when the event happened while serving a request.
fn init_logging(filter: tracing_subscriber::EnvFilter, format: LogFormat) {
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

/// How often a serving process gives free heap memory back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Gives the heap's free pages back to the system every [`TRIM_EVERY`], on a thread of its own.
///
/// glibc's malloc returns freed memory to the system only from the top of each arena (one per
/// thread that allocates, up to 8 per core: the tokio workers, a thread per SQLite connection,
/// the Argon2 threads). Pages freed below a live allocation stay resident. With the validation
/// cache full and turning over (every credential new: its entries are freed in arrival order
/// while new ones land among them), measured here: 29 MiB in use, 59 MiB resident.
/// `malloc_trim` releases every whole free page in every arena (`MADV_DONTNEED`); one call
/// takes well under a millisecond and changes nothing that is in use. Other allocators
/// (mimalloc, jemalloc) were measured too: see docs/configuration.md, "Memory".
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn return_free_memory() {
    let spawned = std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(|| loop {
            std::thread::sleep(TRIM_EVERY);
            // SAFETY: malloc_trim takes no pointers and only returns free memory; it is safe
            // to call from any thread at any time.
            unsafe {
                libc::malloc_trim(0);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the thread that returns free memory");
    }
}

/// Other allocators and C libraries give free memory back by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_free_memory() {}
