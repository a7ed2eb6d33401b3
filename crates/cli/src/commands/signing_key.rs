//! `gatehouse signing-key rotate`.

use super::CLI_ACTOR;
use crate::cli::SigningKeyCommand;
use crate::output::emit;
use gatehouse_service::Gatehouse;
use serde_json::json;

pub async fn run(gatehouse: &Gatehouse, cmd: SigningKeyCommand) -> anyhow::Result<()> {
    match cmd {
        SigningKeyCommand::Rotate { output } => {
            let kid = gatehouse.rotate_signing_key(CLI_ACTOR).await?;
            let lifetime = gatehouse.settings().lifetimes.id_token;
            emit(output.json, &json!({ "kid": kid }), || {
                format!(
                    "Signing key {kid} is now current. The previous key stays in the JWKS for \
                     {lifetime} seconds and a minute, until the id_tokens it signed have expired."
                )
            })
        }
    }
}
