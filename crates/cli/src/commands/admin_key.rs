//! `gatehouse admin-key create|revoke`: the admin API's credentials.

use super::CLI_ACTOR;
use crate::cli::AdminKeyCommand;
use crate::output::{emit, SHOWN_ONCE};
use gatehouse_service::Gatehouse;
use gatehouse_store::Revocation;
use serde_json::json;

pub async fn run(gatehouse: &Gatehouse, cmd: AdminKeyCommand) -> anyhow::Result<()> {
    match cmd {
        AdminKeyCommand::Create { name, output } => {
            let created = gatehouse.create_admin_key(CLI_ACTOR, &name).await?;
            let key = &created.key;
            let value = json!({
                "key_id": key.key_id,
                "name": key.name,
                "admin_key": created.admin_key.expose(),
                "created_at": key.created_at,
            });
            emit(output.json, &value, || {
                format!(
                    "Admin key {} created ({})\nAdmin key: {}\n{SHOWN_ONCE}",
                    key.key_id,
                    key.name,
                    created.admin_key.expose()
                )
            })
        }
        AdminKeyCommand::Revoke { key_id, output } => {
            let outcome = gatehouse.revoke_admin_key(CLI_ACTOR, &key_id).await?;
            let status = match outcome {
                Revocation::Revoked => "revoked",
                Revocation::AlreadyRevoked => "already_revoked",
            };
            let value = json!({ "key_id": key_id, "status": status });
            emit(output.json, &value, || match outcome {
                Revocation::Revoked => format!("Admin key {key_id} revoked"),
                Revocation::AlreadyRevoked => format!("Admin key {key_id} was already revoked"),
            })
        }
    }
}
