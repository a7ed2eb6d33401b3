//! The command line: every command and option, with the help text `gatehouse --help` shows.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const ABOUT: &str =
    "Gatehouse: credentials, OAuth 2.0 and the per-request access decision for your API.";
const LONG_ABOUT: &str =
    "Gatehouse: credentials, OAuth 2.0 and the per-request access decision for your API.

Settings come from built-in defaults, then the --config file, then the environment
(GATEHOUSE_DATABASE_URL, GATEHOUSE_LISTEN, GATEHOUSE_PUBLIC_URL, GATEHOUSE_REGION), then
flags. With no configuration at all, `gatehouse serve` uses sqlite://gatehouse.db in the
working directory and listens on 127.0.0.1:8080.

Quick start:
  gatehouse account create --name \"Acme\"
  echo 'a long password' | gatehouse user create --email dev@example.com --password-stdin
  gatehouse app create --owner dev@example.com --name \"Fleet Dashboard\" \\
      --redirect-uri https://fleet.example.com/callback
  gatehouse app approve CLIENT_ID
  gatehouse serve";

/// `gatehouse [--config FILE] [--database-url URL] <command>`
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// TOML configuration file (every key optional; unknown keys are errors).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Database URL, overriding the config file and GATEHOUSE_DATABASE_URL
    /// (sqlite://FILE or postgres://USER:PASSWORD@HOST/DB).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database and serve HTTP until SIGTERM or Ctrl-C.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users (people who log in to the portal and the consent screens).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage accounts (API customers) and their secret keys.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage applications (OAuth clients): register, approve, reject, reset secrets.
    #[command(subcommand)]
    App(AppCommand),
    /// Manage the OpenID Connect signing keys (id_tokens).
    #[command(subcommand)]
    SigningKey(SigningKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum SigningKeyCommand {
    /// Make a new signing key current; the previous ones stay published in the JWKS until
    /// every id_token they signed has expired. Prints the new key's `kid`.
    Rotate {
        #[command(flatten)]
        output: JsonFlag,
    },
}

/// Print one JSON object on stdout instead of text.
#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create {
        /// Login email (stored lowercased; must be unused).
        #[arg(long, value_name = "E")]
        email: String,
        /// Make the user an operator (admin) instead of a developer.
        #[arg(long)]
        admin: bool,
        /// Account the user belongs to.
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: Option<String>,
        /// Read the password (at least 8 characters) from standard input, one line.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account and its first secret key (shown once).
    Create {
        /// Account name.
        #[arg(long, value_name = "N")]
        name: String,
        /// A scope the account holds; repeat for several (default: every scope of the catalogue).
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Manage an account's secret keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create another secret key (shown once).
    Create {
        /// The account.
        #[arg(value_name = "ACCOUNT_ID")]
        account_id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Revoke a secret key; calls with it fail from then on.
    Revoke {
        /// The account.
        #[arg(value_name = "ACCOUNT_ID")]
        account_id: String,
        /// The key to revoke.
        #[arg(value_name = "KEY_ID")]
        key_id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an application; it is pending until approved.
    Create {
        /// Email of the owning user.
        #[arg(long, value_name = "EMAIL")]
        owner: String,
        /// App name, shown on the consent screen.
        #[arg(long, value_name = "N")]
        name: String,
        /// A redirect URI (https, or http on localhost/127.0.0.1/[::1]); repeat for several.
        #[arg(long = "redirect-uri", value_name = "URI", required = true)]
        redirect_uris: Vec<String>,
        /// A product scope the app may request; repeat for several (default: every scope).
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
        /// A public client (no secret; authorization code with PKCE only).
        #[arg(long)]
        public: bool,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Approve a pending application.
    Approve {
        /// The application's client ID.
        #[arg(value_name = "CLIENT_ID")]
        client_id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Reject a pending application; the reason is kept and shown to the owner.
    Reject {
        /// The application's client ID.
        #[arg(value_name = "CLIENT_ID")]
        client_id: String,
        /// Why the application is rejected.
        #[arg(long, value_name = "R")]
        reason: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Issue a new client secret (shown once); the old one stops working.
    ResetSecret {
        /// The application's client ID.
        #[arg(value_name = "CLIENT_ID")]
        client_id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
