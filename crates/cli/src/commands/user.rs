//! `gatehouse user create|list|disable|enable`.

use super::CLI_ACTOR;
use crate::cli::UserCommand;
use crate::output::{emit, table};
use anyhow::{bail, Context};
use gatehouse_core::user::{Role, User};
use gatehouse_service::users::NewUser;
use gatehouse_service::{Gatehouse, ServiceError};
use serde_json::{json, Value};
use std::io::Read;

pub async fn run(gatehouse: &Gatehouse, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            email,
            admin,
            account,
            password_stdin: _,
            output,
        } => create(gatehouse, &email, admin, account.as_deref(), output.json).await,
        UserCommand::List { search, output } => {
            let users = gatehouse.admin_users(&search.search).await?;
            let items: Vec<Value> = users.iter().map(user_json).collect();
            emit(output.json, &json!({ "items": items }), || {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| {
                        vec![
                            u.user_id.to_string(),
                            u.email.to_string(),
                            u.role.as_str().to_owned(),
                            u.account_id
                                .as_ref()
                                .map_or_else(|| "-".to_owned(), ToString::to_string),
                            user_state(u).to_owned(),
                            u.created_at.to_rfc3339(),
                        ]
                    })
                    .collect();
                let header = ["USER_ID", "EMAIL", "ROLE", "ACCOUNT", "STATE", "CREATED"];
                table(&header, &rows, "No users.")
            })
        }
        UserCommand::Disable { user, output } => {
            let id = user_id(gatehouse, &user).await?;
            let user = gatehouse.disable_user(CLI_ACTOR, &id).await?;
            emit(output.json, &user_json(&user), || {
                format!(
                    "User {} disabled; their sessions and the tokens they gave apps are revoked",
                    user.email
                )
            })
        }
        UserCommand::Enable { user, output } => {
            let id = user_id(gatehouse, &user).await?;
            let user = gatehouse.enable_user(CLI_ACTOR, &id).await?;
            emit(output.json, &user_json(&user), || {
                format!("User {} enabled", user.email)
            })
        }
    }
}

/// The ID of the user named by `raw`: an email (anything with an `@`) or a user ID.
async fn user_id(gatehouse: &Gatehouse, raw: &str) -> anyhow::Result<String> {
    if !raw.contains('@') {
        return Ok(raw.to_owned());
    }
    let user = gatehouse
        .find_user_by_email(raw)
        .await?
        .ok_or_else(|| ServiceError::not_found("user", raw))?;
    Ok(user.user_id.to_string())
}

/// A user as listed: never the password hash.
fn user_json(user: &User) -> Value {
    json!({
        "user_id": user.user_id,
        "email": user.email,
        "role": user.role,
        "account_id": user.account_id,
        "state": user_state(user),
        "email_verified_at": user.email_verified_at,
        "disabled_at": user.disabled_at,
        "created_at": user.created_at,
    })
}

/// `active`, or why the user cannot sign in.
fn user_state(user: &User) -> &'static str {
    if !user.is_enabled() {
        "disabled"
    } else if user.email_verified_at.is_none() {
        "unconfirmed"
    } else {
        "active"
    }
}

async fn create(
    gatehouse: &Gatehouse,
    email: &str,
    admin: bool,
    account: Option<&str>,
    json_output: bool,
) -> anyhow::Result<()> {
    let password = read_password()?;
    let role = if admin { Role::Admin } else { Role::Developer };
    let user = gatehouse
        .create_user(
            CLI_ACTOR,
            NewUser {
                email,
                password: &password,
                role,
                account_id: account,
            },
        )
        .await?;
    let value = json!({
        "user_id": user.user_id,
        "email": user.email,
        "role": user.role,
        "account_id": user.account_id,
        "created_at": user.created_at,
    });
    emit(json_output, &value, || {
        format!(
            "User {} created ({}, {})",
            user.email,
            user.role.as_str(),
            user.user_id
        )
    })
}

/// One line from standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut input)
        .context("cannot read the password from standard input")?;
    let line = input.lines().next().unwrap_or("");
    if line.is_empty() {
        bail!("no password on standard input (pipe it in: echo 'PASSWORD' | gatehouse user create ... --password-stdin)");
    }
    Ok(line.to_owned())
}
