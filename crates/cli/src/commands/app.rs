//! `gatehouse app create|approve|reject|reset-secret`.

use super::CLI_ACTOR;
use crate::cli::AppCommand;
use crate::output::{emit, SHOWN_ONCE};
use gatehouse_core::application::Application;
use gatehouse_service::apps::{DecisionRequest, NewApp};
use gatehouse_service::Gatehouse;
use serde_json::{json, Value};

pub async fn run(gatehouse: &Gatehouse, cmd: AppCommand) -> anyhow::Result<()> {
    match cmd {
        AppCommand::Create {
            owner,
            name,
            redirect_uris,
            scopes,
            public,
            output,
        } => {
            let new = NewApp {
                owner_email: &owner,
                name: &name,
                redirect_uris: &redirect_uris,
                scopes: &scopes,
                public,
            };
            let created = gatehouse.create_app(CLI_ACTOR, new).await?;
            let app = &created.app;
            let mut value = json!({
                "client_id": app.client_id,
                "unique_name": app.unique_name,
                "name": app.name,
                "status": app.status,
                "client_type": app.client_type,
                "scopes": app.scopes,
                "redirect_uris": app.redirect_uris,
                "created_at": app.created_at,
            });
            if let (Some((secret, plain)), Some(obj)) = (&created.secret, value.as_object_mut()) {
                obj.insert("client_secret".into(), plain.expose().into());
                obj.insert("client_secret_expires_at".into(), json!(secret.expires_at));
            }
            emit(output.json, &value, || {
                let mut text = format!(
                    "Application {} created, status {} (waiting for approval)\nClient ID:     {}",
                    app.unique_name, app.status, app.client_id
                );
                if let Some((secret, plain)) = &created.secret {
                    text.push_str(&format!(
                        "\nClient secret: {}\nExpires:       {}\n{SHOWN_ONCE}",
                        plain.expose(),
                        secret.expires_at
                    ));
                }
                text
            })
        }
        AppCommand::Approve { client_id, output } => {
            let app = gatehouse
                .decide_app(CLI_ACTOR, &client_id, DecisionRequest::Approve)
                .await?;
            emit(output.json, &decision_json(&app), || {
                format!("Application {} approved", app.unique_name)
            })
        }
        AppCommand::Reject {
            client_id,
            reason,
            output,
        } => {
            let app = gatehouse
                .decide_app(CLI_ACTOR, &client_id, DecisionRequest::Reject(&reason))
                .await?;
            emit(output.json, &decision_json(&app), || {
                format!("Application {} rejected", app.unique_name)
            })
        }
        AppCommand::ResetSecret { client_id, output } => {
            let (secret, plain) = gatehouse.reset_client_secret(CLI_ACTOR, &client_id).await?;
            let value = json!({
                "client_id": secret.client_id,
                "client_secret": plain.expose(),
                "created_at": secret.created_at,
                "expires_at": secret.expires_at,
            });
            emit(output.json, &value, || {
                format!(
                    "Client secret: {}\nExpires:       {}\n{SHOWN_ONCE}",
                    plain.expose(),
                    secret.expires_at
                )
            })
        }
    }
}

fn decision_json(app: &Application) -> Value {
    json!({
        "client_id": app.client_id,
        "unique_name": app.unique_name,
        "status": app.status,
        "reason": app.status_reason,
    })
}
