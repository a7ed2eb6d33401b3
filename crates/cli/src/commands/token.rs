//! `gatehouse token revoke`.

use super::CLI_ACTOR;
use crate::cli::TokenCommand;
use crate::output::emit;
use anyhow::{bail, Context};
use gatehouse_service::Gatehouse;
use serde_json::json;
use std::io::Read;

pub async fn run(gatehouse: &Gatehouse, cmd: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Revoke {
        token,
        token_stdin: _,
        output,
    } = cmd;
    // clap requires exactly one of the two: without the argument, the token is on stdin.
    let token = match token {
        Some(token) => token,
        None => read_token()?,
    };
    let revoked = gatehouse
        .revoke_token_as_admin(CLI_ACTOR, token.trim())
        .await?;
    if !revoked {
        // Never echo the token: it may be a live secret mistyped by one character.
        bail!("no live token matches: it is unknown, malformed, expired or already revoked");
    }
    emit(output.json, &json!({ "status": "revoked" }), || {
        "Token revoked; it no longer works on any node.".to_owned()
    })
}

/// One line from standard input, without its line ending.
fn read_token() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut input)
        .context("cannot read the token from standard input")?;
    let line = input.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        bail!("no token on standard input (pipe it in: echo \"$TOKEN\" | gatehouse token revoke --token-stdin)");
    }
    Ok(line.to_owned())
}
