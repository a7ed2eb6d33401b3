//! `gatehouse audit list`.

use crate::cli::AuditCommand;
use crate::output::{emit, table};
use anyhow::bail;
use gatehouse_core::Timestamp;
use gatehouse_service::admin::AuditFilter;
use gatehouse_service::Gatehouse;
use serde_json::{json, Value};

pub async fn run(gatehouse: &Gatehouse, cmd: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::List {
        actor,
        action,
        target,
        since,
        until,
        limit,
        output,
    } = cmd;
    for (flag, date) in [("--since", &since), ("--until", &until)] {
        if let Some(date) = date {
            if Timestamp::parse_date(date).is_none() {
                bail!("{flag}: '{date}' is not a date like 2026-01-31");
            }
        }
    }
    let filter = AuditFilter {
        actor: actor.as_deref().unwrap_or(""),
        action: action.as_deref().unwrap_or(""),
        target: target.as_deref().unwrap_or(""),
        since: since.as_deref().unwrap_or(""),
        until: until.as_deref().unwrap_or(""),
    };
    let events = gatehouse.audit_events(&filter, limit).await?;
    let items: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "detail": e.detail,
            })
        })
        .collect();
    emit(output.json, &json!({ "items": items }), || {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                vec![
                    e.at.to_rfc3339(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.target.clone(),
                    e.detail.clone(),
                ]
            })
            .collect();
        let header = ["AT", "ACTOR", "ACTION", "TARGET", "DETAIL"];
        table(&header, &rows, "No audit events.")
    })
}
