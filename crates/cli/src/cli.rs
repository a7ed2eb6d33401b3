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
    /// Manage accounts (API customers), their scopes and their secret keys.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage applications (OAuth clients): register, list, show, approve, reject, suspend,
    /// reinstate, reset secrets.
    #[command(subcommand)]
    App(AppCommand),
    /// Manage admin keys, the credentials of the admin API (/admin/api/v1/).
    #[command(subcommand)]
    AdminKey(AdminKeyCommand),
    /// Revoke tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Read the audit log: who did what, when.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage the OpenID Connect signing keys (id_tokens).
    #[command(subcommand)]
    SigningKey(SigningKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminKeyCommand {
    /// Create an admin key for the admin API (shown once; send it as
    /// `Authorization: Bearer <admin key>`).
    Create {
        /// What the key is for (which automation holds it), for the audit log.
        #[arg(long, value_name = "N")]
        name: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Revoke an admin key; every node refuses it from the next call on.
    Revoke {
        /// The key to revoke (printed as key_id by create).
        #[arg(value_name = "KEY_ID")]
        key_id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
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
    /// List users, newest first (at most 200; narrow with --search). Never shows passwords.
    List {
        #[command(flatten)]
        search: Search,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Disable a user: they cannot sign in, their sessions end, and the tokens and consents
    /// they gave apps are revoked on every node. The last enabled admin cannot be disabled.
    Disable {
        /// The user, by ID (user_...) or email.
        #[arg(value_name = "USER_ID_OR_EMAIL")]
        user: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Enable a disabled user: they can sign in again (what was revoked stays revoked).
    Enable {
        /// The user, by ID (user_...) or email.
        #[arg(value_name = "USER_ID_OR_EMAIL")]
        user: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Revoke a token of this deployment by its value: an access, account or embed token
    /// alone, a refresh token with every token issued from it. Prefer --token-stdin: a
    /// token given as an argument is visible to other users in the process list.
    #[command(group(clap::ArgGroup::new("given").required(true).args(["token", "token_stdin"])))]
    Revoke {
        /// The token (visible in `ps`; prefer --token-stdin).
        #[arg(value_name = "TOKEN")]
        token: Option<String>,
        /// Read the token from standard input, one line.
        #[arg(long)]
        token_stdin: bool,
        #[command(flatten)]
        output: JsonFlag,
    },
}

/// Narrowing a list.
#[derive(Debug, Args)]
pub struct Search {
    /// Only rows whose name, email or ID contains this text (case-insensitive).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub search: String,
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
    /// List accounts, newest first, with their scopes (at most 200; narrow with --search).
    List {
        #[command(flatten)]
        search: Search,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Show an account: its name, scopes and secret keys (never a key's secret).
    Show {
        /// The account.
        #[arg(value_name = "ACCOUNT_ID")]
        account_id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Change what an account may do.
    #[command(subcommand)]
    Scopes(ScopesCommand),
    /// Manage an account's secret keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum ScopesCommand {
    /// Replace the account's scopes with exactly the given ones. Its keys and tokens pass
    /// only what the new scopes allow, on every node at once.
    #[command(group(clap::ArgGroup::new("new_scopes").required(true).args(["scopes", "none"])))]
    Set {
        /// The account.
        #[arg(value_name = "ACCOUNT_ID")]
        account_id: String,
        /// A scope of the catalogue; repeat for several.
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
        /// Remove every scope: the account's keys and tokens then pass nothing.
        #[arg(long)]
        none: bool,
        #[command(flatten)]
        output: JsonFlag,
    },
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
    /// List an account's secret keys: created, last used, revoked (never the secret).
    List {
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
    /// List applications, newest first, with their owners (at most 200; narrow with
    /// --status or --search).
    List {
        /// Only applications with this status.
        #[arg(long, value_name = "S", value_enum)]
        status: Option<StatusArg>,
        #[command(flatten)]
        search: Search,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Show an application: owner, status, scopes, redirect URIs, a redirect URI change
    /// waiting for review, and its client secrets' dates (never a secret).
    Show {
        /// The application's client ID.
        #[arg(value_name = "CLIENT_ID")]
        client_id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Suspend an approved application: every token it holds stops working at once, and it
    /// gets no new ones until reinstated. The owner is emailed.
    Suspend {
        /// The application's client ID.
        #[arg(value_name = "CLIENT_ID")]
        client_id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Reinstate a suspended application; its old tokens stay revoked. The owner is emailed.
    Reinstate {
        /// The application's client ID.
        #[arg(value_name = "CLIENT_ID")]
        client_id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

/// An application status, as `--status` takes it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StatusArg {
    /// Waiting for an admin's decision.
    Pending,
    /// Approved: may get tokens.
    Approved,
    /// Rejected, with a reason.
    Rejected,
    /// Suspended after approval.
    Suspended,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first: sign-ins, decisions, key, secret, scope and user
    /// changes, revocations. Filters combine.
    List {
        /// Only events by this actor, exactly: a user ID, `cli`, `system` or `anonymous`.
        #[arg(long, value_name = "A")]
        actor: Option<String>,
        /// Only actions starting with this, e.g. `app.` or `account.key.revoke`.
        #[arg(long, value_name = "A")]
        action: Option<String>,
        /// Only events about this target, exactly: an account, key, client or user ID.
        #[arg(long, value_name = "T")]
        target: Option<String>,
        /// From this day on (YYYY-MM-DD, UTC), inclusive.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Up to this day (YYYY-MM-DD, UTC), inclusive.
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
        /// At most this many events (1 to 10000).
        #[arg(long, value_name = "N", default_value_t = 200,
              value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
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
