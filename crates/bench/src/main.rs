//! `gatehouse-bench`: the Rust half of `bench/run` (issue 7).
//!
//! - `seed`: bulk data for the benchmarks, straight into a migrated Gatehouse database (not
//!   through HTTP): accounts with secret keys, live client-credentials tokens, unused
//!   authorization codes. They go in as the store's own multi-row INSERTs
//!   (`gatehouse_store::Insert` of its domain rows) in large transactions on a connection tuned
//!   for loading, so the bench holds no copy of the schema; with `--tokens-through-store` the
//!   tokens take the server's path instead (`TokenStore::insert_families_with_tokens`,
//!   Gatehouse's own batched issuance write). Secrets are made by `gatehouse-core`, so they are
//!   exactly what the server issues. Every plain credential can be written to a file for the
//!   load generator.
//! - `code-flow`: a load client for the authorization-code grant: concurrent tasks each take
//!   the next seeded code, exchange it at `/oauth/v1/token`, then refresh once with the refresh
//!   token the exchange returned, for a fixed time; prints the measurements as JSON.
//! - `soak`: mixed traffic at a steady pace for a fixed time (token issuance, checks with good
//!   and bad credentials, code exchange and refresh, revocations, failed sign-ins), every
//!   answer checked against the one expected; prints the counts as JSON (`bench/run --soak`).
//!
//! - `hello`: a bare axum "hello" server, the ceiling `bench/run` measures Gatehouse against
//!   (and, at `/dressed`, the same with the answer head of Gatehouse's `/healthz`).
//!
//! Traffic goes only where `--base` says (bench/run passes 127.0.0.1).

mod flow;
mod hello;
mod seed;
mod soak;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "gatehouse-bench", about = "Benchmark helpers for bench/run")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bulk-seeds a Gatehouse database (prints what it did, with timings, as JSON).
    Seed(seed::SeedArgs),
    /// Drives the authorization-code exchange plus one refresh per code (prints JSON).
    CodeFlow(flow::FlowArgs),
    /// Mixed traffic at a steady pace, answers checked (prints JSON).
    Soak(soak::SoakArgs),
    /// Serves a bare axum "hello" until killed: the HTTP ceiling of this stack.
    Hello(hello::HelloArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Seed(_) => 2,
        // One worker per core, as `gatehouse serve` runs.
        Command::Hello(_) => std::thread::available_parallelism().map_or(2, |n| n.get()),
        Command::CodeFlow(args) => args.threads.max(1),
        Command::Soak(args) => args.threads.max(1),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(async {
        match cli.command {
            Command::Seed(args) => seed::run(args).await,
            Command::CodeFlow(args) => flow::run(args).await,
            Command::Soak(args) => soak::run(args).await,
            Command::Hello(args) => hello::run(args).await,
        }
    })?;
    println!("{report}");
    Ok(())
}
