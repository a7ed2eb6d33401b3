//! `gatehouse user create`.

use super::CLI_ACTOR;
use crate::cli::UserCommand;
use crate::output::emit;
use anyhow::{bail, Context};
use gatehouse_core::user::Role;
use gatehouse_service::users::NewUser;
use gatehouse_service::Gatehouse;
use serde_json::json;
use std::io::Read;

pub async fn run(gatehouse: &Gatehouse, cmd: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Create {
        email,
        admin,
        account,
        password_stdin: _,
        output,
    } = cmd;
    let password = read_password()?;
    let role = if admin { Role::Admin } else { Role::Developer };
    let user = gatehouse
        .create_user(
            CLI_ACTOR,
            NewUser {
                email: &email,
                password: &password,
                role,
                account_id: account.as_deref(),
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
    emit(output.json, &value, || {
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
