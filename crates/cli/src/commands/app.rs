//! `gatehouse app create|list|show|approve|reject|suspend|reinstate|reset-secret`.

use super::CLI_ACTOR;
use crate::cli::{AppCommand, StatusArg};
use crate::output::{emit, table, when, SHOWN_ONCE};
use gatehouse_core::application::{AppStatus, Application};
use gatehouse_core::user::Email;
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
        AppCommand::List {
            status,
            search,
            output,
        } => {
            let apps = gatehouse
                .admin_apps(&search.search, status.map(app_status))
                .await?;
            let items: Vec<Value> = apps
                .iter()
                .map(|a| app_json(&a.app, a.owner.as_ref()))
                .collect();
            emit(output.json, &json!({ "items": items }), || {
                let rows: Vec<Vec<String>> = apps
                    .iter()
                    .map(|a| {
                        vec![
                            a.app.client_id.to_string(),
                            a.app.status.as_str().to_owned(),
                            a.app.unique_name.to_string(),
                            a.owner.as_ref().map_or("-", Email::as_str).to_owned(),
                            a.app.created_at.to_rfc3339(),
                        ]
                    })
                    .collect();
                let header = ["CLIENT_ID", "STATUS", "UNIQUE_NAME", "OWNER", "CREATED"];
                table(&header, &rows, "No applications.")
            })
        }
        AppCommand::Show { client_id, output } => {
            let app = gatehouse.get_app(&client_id).await?;
            let owner = match &app.owner_id {
                Some(owner) => gatehouse.find_user(owner).await?.map(|u| u.email),
                None => None,
            };
            let secrets = gatehouse.list_client_secrets(&client_id).await?;
            let change = gatehouse.redirect_uri_change(&app).await?;
            let now = gatehouse.now();
            let mut value = app_json(&app, owner.as_ref());
            let secret_items: Vec<Value> = secrets
                .iter()
                .map(|s| {
                    json!({
                        "secret_id": s.secret_id,
                        "created_at": s.created_at,
                        "expires_at": s.expires_at,
                        "revoked_at": s.revoked_at,
                        "live": s.is_live(now),
                    })
                })
                .collect();
            if let Some(obj) = value.as_object_mut() {
                obj.insert("client_secrets".into(), secret_items.into());
                obj.insert(
                    "redirect_uri_change".into(),
                    change.as_ref().map_or(Value::Null, |c| {
                        json!({ "redirect_uris": c.redirect_uris, "requested_at": c.requested_at })
                    }),
                );
            }
            emit(output.json, &value, || {
                let reason = app
                    .status_reason
                    .as_ref()
                    .map_or(String::new(), |r| format!(" (reason: {r})"));
                let mut text = [
                    format!("Client ID:     {}", app.client_id),
                    format!("Name:          {}", app.name),
                    format!("Unique name:   {}", app.unique_name),
                    format!("Status:        {}{reason}", app.status.as_str()),
                    format!("Client type:   {}", app.client_type.as_str()),
                    format!(
                        "Owner:         {}",
                        owner.as_ref().map_or("-", Email::as_str)
                    ),
                    format!("Scopes:        {}", app.scopes),
                    format!("Redirect URIs: {}", joined(&app.redirect_uris)),
                    format!("Created:       {}", app.created_at),
                    format!("Updated:       {}", app.updated_at),
                ]
                .join("\n");
                if let Some(c) = &change {
                    text.push_str(&format!(
                        "
Waiting for review since {}: redirect URIs {}",
                        c.requested_at,
                        joined(&c.redirect_uris)
                    ));
                }
                if !secrets.is_empty() {
                    let rows: Vec<Vec<String>> = secrets
                        .iter()
                        .map(|s| {
                            vec![
                                s.secret_id.to_string(),
                                s.created_at.to_rfc3339(),
                                s.expires_at.to_rfc3339(),
                                when(s.revoked_at),
                                if s.is_live(now) { "live" } else { "ended" }.to_owned(),
                            ]
                        })
                        .collect();
                    let header = ["SECRET_ID", "CREATED", "EXPIRES", "REVOKED", "STATE"];
                    text.push_str(
                        "

Client secrets:
",
                    );
                    text.push_str(&table(&header, &rows, ""));
                }
                text
            })
        }
        AppCommand::Suspend { client_id, output } => {
            let app = gatehouse
                .decide_app(CLI_ACTOR, &client_id, DecisionRequest::Suspend)
                .await?;
            emit(output.json, &decision_json(&app), || {
                format!(
                    "Application {} suspended; its tokens no longer work",
                    app.unique_name
                )
            })
        }
        AppCommand::Reinstate { client_id, output } => {
            let app = gatehouse
                .decide_app(CLI_ACTOR, &client_id, DecisionRequest::Reinstate)
                .await?;
            emit(output.json, &decision_json(&app), || {
                format!("Application {} reinstated", app.unique_name)
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

fn app_status(arg: StatusArg) -> AppStatus {
    match arg {
        StatusArg::Pending => AppStatus::Pending,
        StatusArg::Approved => AppStatus::Approved,
        StatusArg::Rejected => AppStatus::Rejected,
        StatusArg::Suspended => AppStatus::Suspended,
    }
}

/// An application as `app list` and `app show` print it (no secret).
fn app_json(app: &Application, owner: Option<&Email>) -> Value {
    json!({
        "client_id": app.client_id,
        "unique_name": app.unique_name,
        "name": app.name,
        "status": app.status,
        "reason": app.status_reason,
        "client_type": app.client_type,
        "owner_id": app.owner_id,
        "owner_email": owner,
        "scopes": app.scopes,
        "redirect_uris": app.redirect_uris,
        "created_at": app.created_at,
        "updated_at": app.updated_at,
    })
}

fn joined(uris: &[gatehouse_core::application::RedirectUri]) -> String {
    uris.iter()
        .map(|u| u.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}
