//! One module per command group; each calls the service functions the HTTP server uses.

mod account;
mod admin_key;
mod app;
mod audit;
mod serve;
mod signing_key;
mod token;
mod user;

use crate::cli::{Cli, Command};
use anyhow::Context;
use gatehouse_service::mail::Mailer;
use gatehouse_service::settings::Overrides;
use gatehouse_service::{Gatehouse, Settings, SystemClock};
use gatehouse_store::{connect, ConnectOptions, Store, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Who the audit log names for actions taken on the command line.
pub const CLI_ACTOR: &str = "cli";

/// The settings from the configuration file, the environment and the flags of `cli`.
pub fn load_settings(cli: &Cli) -> anyhow::Result<Settings> {
    let overrides = Overrides {
        database_url: cli.database_url.clone(),
    };
    Ok(Settings::load(
        cli.config.as_deref(),
        |var| std::env::var(var).ok(),
        &overrides,
    )?)
}

/// Runs the command of `cli` with `settings` (from [`load_settings`]).
pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    // A server answers 503 quickly when its database is slow to hand out a connection; a
    // one-off command run by an operator should rather wait for a busy database.
    let options = match cli.command {
        Command::Serve => ConnectOptions::default(),
        _ => ConnectOptions {
            acquire_timeout: std::time::Duration::from_secs(30),
            ..ConnectOptions::default()
        },
    };
    let gatehouse = open(settings, options).await?;
    let outcome = match cli.command {
        Command::Serve => serve::run(gatehouse.clone()).await,
        Command::Migrate => {
            println!("database is up to date ({})", gatehouse.store().backend());
            Ok(())
        }
        Command::User(cmd) => user::run(&gatehouse, cmd).await,
        Command::Account(cmd) => account::run(&gatehouse, cmd).await,
        Command::App(cmd) => app::run(&gatehouse, cmd).await,
        Command::AdminKey(cmd) => admin_key::run(&gatehouse, cmd).await,
        Command::Audit(cmd) => audit::run(&gatehouse, cmd).await,
        Command::Token(cmd) => token::run(&gatehouse, cmd).await,
        Command::SigningKey(cmd) => signing_key::run(&gatehouse, cmd).await,
    };
    // An approval or a secret reset mails the app's owner; let that finish before exiting.
    gatehouse.finish_mail().await;
    outcome
}

/// How long a command keeps trying a database that is unavailable (busy, locked, not yet
/// accepting connections) before it gives up: a server started beside its database, or on a
/// disk still writing back a large restore, waits for it instead of exiting at once.
const OPEN_WAIT: Duration = Duration::from_secs(30);
/// The pause between two tries.
const OPEN_RETRY: Duration = Duration::from_millis(250);

/// Connects to the configured database and applies pending migrations, so every command works
/// on a fresh database.
async fn open(settings: Settings, options: ConnectOptions) -> anyhow::Result<Gatehouse> {
    let deadline = Instant::now() + OPEN_WAIT;
    let store = loop {
        match connect_and_migrate(&settings.database_url, options).await {
            Err(e) if is_unavailable(&e) && Instant::now() < deadline => {
                tracing::warn!(error = %format!("{e:#}"), "the database is unavailable; trying again");
                tokio::time::sleep(OPEN_RETRY).await;
            }
            other => break other?,
        }
    };
    let mailer = Mailer::from_settings(&settings).context("cannot set up mail")?;
    Ok(Gatehouse::new(
        store,
        Arc::new(settings),
        Arc::new(SystemClock),
        mailer,
    ))
}

async fn connect_and_migrate(url: &str, options: ConnectOptions) -> anyhow::Result<Arc<dyn Store>> {
    let store = connect(url, options)
        .await
        .context("cannot open the database")?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(store)
}

fn is_unavailable(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<StoreError>(),
        Some(StoreError::Unavailable(_))
    )
}
