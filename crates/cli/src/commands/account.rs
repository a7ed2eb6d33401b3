//! `gatehouse account create` and `gatehouse account key create|revoke`.

use super::CLI_ACTOR;
use crate::cli::{AccountCommand, KeyCommand};
use crate::output::{emit, SHOWN_ONCE};
use gatehouse_service::Gatehouse;
use gatehouse_store::Revocation;
use serde_json::json;

pub async fn run(gatehouse: &Gatehouse, cmd: AccountCommand) -> anyhow::Result<()> {
    match cmd {
        AccountCommand::Create {
            name,
            scopes,
            output,
        } => {
            let created = gatehouse.create_account(CLI_ACTOR, &name, &scopes).await?;
            let (account, key) = (&created.account, &created.key);
            let value = json!({
                "account_id": account.account_id,
                "name": account.name,
                "key_id": key.key_id,
                "secret_key": created.secret_key.expose(),
                "scopes": account.scopes,
                "created_at": account.created_at,
            });
            emit(output.json, &value, || {
                format!(
                    "Account {} created (scopes: {})\nKey ID:     {}\nSecret key: {}\n{SHOWN_ONCE}",
                    account.account_id,
                    account.scopes,
                    key.key_id,
                    created.secret_key.expose()
                )
            })
        }
        AccountCommand::Key(KeyCommand::Create { account_id, output }) => {
            let created = gatehouse.create_secret_key(CLI_ACTOR, &account_id).await?;
            let key = &created.key;
            let value = json!({
                "account_id": key.account_id,
                "key_id": key.key_id,
                "secret_key": created.secret_key.expose(),
                "created_at": key.created_at,
            });
            emit(output.json, &value, || {
                format!(
                    "Key ID:     {}\nSecret key: {}\n{SHOWN_ONCE}",
                    key.key_id,
                    created.secret_key.expose()
                )
            })
        }
        AccountCommand::Key(KeyCommand::Revoke {
            account_id,
            key_id,
            output,
        }) => {
            let outcome = gatehouse
                .revoke_secret_key(CLI_ACTOR, &account_id, &key_id)
                .await?;
            let status = match outcome {
                Revocation::Revoked => "revoked",
                Revocation::AlreadyRevoked => "already_revoked",
            };
            let value = json!({ "account_id": account_id, "key_id": key_id, "status": status });
            emit(output.json, &value, || match outcome {
                Revocation::Revoked => format!("Key {key_id} revoked"),
                Revocation::AlreadyRevoked => format!("Key {key_id} was already revoked"),
            })
        }
    }
}
