//! `gatehouse account create|list|show`, `account scopes set` and
//! `gatehouse account key create|list|revoke`.

use super::CLI_ACTOR;
use crate::cli::{AccountCommand, KeyCommand, ScopesCommand};
use crate::output::{emit, table, when, SHOWN_ONCE};
use gatehouse_core::account::{Account, SecretKey};
use gatehouse_service::{Gatehouse, ServiceError};
use gatehouse_store::Revocation;
use serde_json::{json, Value};

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
        AccountCommand::List { search, output } => {
            let accounts = gatehouse.admin_accounts(&search.search).await?;
            let items: Vec<Value> = accounts.iter().map(account_json).collect();
            emit(output.json, &json!({ "items": items }), || {
                let rows: Vec<Vec<String>> = accounts
                    .iter()
                    .map(|a| {
                        vec![
                            a.account_id.to_string(),
                            a.name.to_string(),
                            scopes_text(a),
                            a.created_at.to_rfc3339(),
                        ]
                    })
                    .collect();
                table(
                    &["ACCOUNT_ID", "NAME", "SCOPES", "CREATED"],
                    &rows,
                    "No accounts.",
                )
            })
        }
        AccountCommand::Show { account_id, output } => {
            let account = existing_account(gatehouse, &account_id).await?;
            let keys = gatehouse.list_secret_keys(&account_id).await?;
            let mut value = account_json(&account);
            if let Some(obj) = value.as_object_mut() {
                obj.insert("keys".into(), keys.iter().map(key_json).collect());
            }
            emit(output.json, &value, || {
                format!(
                    "Account ID: {}\nName:       {}\nScopes:     {}\nCreated:    {}\n\n{}",
                    account.account_id,
                    account.name,
                    scopes_text(&account),
                    account.created_at,
                    keys_table(&keys)
                )
            })
        }
        AccountCommand::Scopes(ScopesCommand::Set {
            account_id,
            scopes,
            none: _,
            output,
        }) => {
            // clap lets --none through only without any --scope: an empty list means --none.
            let account = gatehouse
                .set_account_scopes(CLI_ACTOR, &account_id, &scopes)
                .await?;
            emit(output.json, &account_json(&account), || {
                format!(
                    "Account {} now holds: {}",
                    account.account_id,
                    scopes_text(&account)
                )
            })
        }
        AccountCommand::Key(KeyCommand::List { account_id, output }) => {
            existing_account(gatehouse, &account_id).await?;
            let keys = gatehouse.list_secret_keys(&account_id).await?;
            let items: Vec<Value> = keys.iter().map(key_json).collect();
            emit(output.json, &json!({ "items": items }), || {
                keys_table(&keys)
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

/// The account `account_id`, or the error that names it.
async fn existing_account(gatehouse: &Gatehouse, account_id: &str) -> anyhow::Result<Account> {
    Ok(gatehouse
        .find_account(account_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("account", account_id))?)
}

fn account_json(account: &Account) -> Value {
    json!({
        "account_id": account.account_id,
        "name": account.name,
        "scopes": account.scopes,
        "created_at": account.created_at,
    })
}

/// A key as listed: its dates, never its secret or digest.
fn key_json(key: &SecretKey) -> Value {
    json!({
        "key_id": key.key_id,
        "status": if key.is_live() { "live" } else { "revoked" },
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    })
}

fn keys_table(keys: &[SecretKey]) -> String {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.key_id.to_string(),
                if k.is_live() { "live" } else { "revoked" }.to_owned(),
                k.created_at.to_rfc3339(),
                when(k.last_used_at),
                when(k.revoked_at),
            ]
        })
        .collect();
    table(
        &["KEY_ID", "STATUS", "CREATED", "LAST_USED", "REVOKED"],
        &rows,
        "No secret keys.",
    )
}

fn scopes_text(account: &Account) -> String {
    if account.scopes.is_empty() {
        "(none)".to_owned()
    } else {
        account.scopes.to_string()
    }
}
