//! One module per command group; each calls the service functions the HTTP server uses.

mod account;
mod app;
mod serve;
mod signing_key;
mod user;

use crate::cli::{Cli, Command};
use anyhow::Context;
use gatehouse_service::mail::Mailer;
use gatehouse_service::settings::Overrides;
use gatehouse_service::{Gatehouse, Settings, SystemClock};
use gatehouse_store::{connect, ConnectOptions};
use std::sync::Arc;

/// Who the audit log names for actions taken on the command line.
pub const CLI_ACTOR: &str = "cli";

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let overrides = Overrides {
        database_url: cli.database_url,
    };
    let settings = Settings::load(
        cli.config.as_deref(),
        |var| std::env::var(var).ok(),
        &overrides,
    )?;
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
        Command::SigningKey(cmd) => signing_key::run(&gatehouse, cmd).await,
    };
    // An approval or a secret reset mails the app's owner; let that finish before exiting.
    gatehouse.finish_mail().await;
    outcome
}

/// Connects to the configured database and applies pending migrations, so every command works
/// on a fresh database.
async fn open(settings: Settings, options: ConnectOptions) -> anyhow::Result<Gatehouse> {
    let store = connect(&settings.database_url, options)
        .await
        .context("cannot open the database")?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    let mailer = Mailer::from_settings(&settings).context("cannot set up mail")?;
    Ok(Gatehouse::new(
        store,
        Arc::new(settings),
        Arc::new(SystemClock),
        mailer,
    ))
}
