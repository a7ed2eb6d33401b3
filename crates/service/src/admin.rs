//! The admin console's reads: the review queue, searchable lists of apps, users and accounts,
//! and the audit log. Decisions themselves go through [`Gatehouse::decide_app`].

use crate::{Gatehouse, ServiceError};
use gatehouse_core::account::Account;
use gatehouse_core::application::{AppStatus, Application};
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{AccountId, UserId};
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::user::{Email, User};
use gatehouse_core::Timestamp;
use gatehouse_store::{AuditQuery, ListQuery};
use std::collections::HashMap;

/// Most rows an admin list shows.
pub const LIST_LIMIT: u32 = 200;

/// An app with its owner's email, for the admin lists.
#[derive(Debug)]
pub struct AppWithOwner {
    /// The app.
    pub app: Application,
    /// Its owner's email (`None` if the owner vanished).
    pub owner: Option<Email>,
}

/// The audit log filters as typed into the form; empty fields do not filter.
#[derive(Debug, Default)]
pub struct AuditFilter<'a> {
    /// Exactly this actor (a user ID, `cli`, `anonymous`, `system`).
    pub actor: &'a str,
    /// Actions starting with this, e.g. `login` or `app.`.
    pub action: &'a str,
    /// Exactly this target.
    pub target: &'a str,
    /// From this date (`YYYY-MM-DD`, UTC), inclusive.
    pub since: &'a str,
    /// Up to this date, inclusive.
    pub until: &'a str,
}

fn date_filter(raw: &str, field: &'static str) -> Result<Option<Timestamp>, ServiceError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    Timestamp::parse_date(raw).map(Some).ok_or_else(|| {
        ServiceError::NotApplicable(format!("{field} must be a date like 2026-01-31"))
    })
}

fn non_empty(raw: &str) -> Option<String> {
    Some(raw.trim().to_owned()).filter(|s| !s.is_empty())
}

impl Gatehouse {
    /// Apps matching `search` (name, unique name or client ID) and `status`, newest first.
    pub async fn admin_apps(
        &self,
        search: &str,
        status: Option<AppStatus>,
    ) -> Result<Vec<AppWithOwner>, ServiceError> {
        let apps = self
            .store
            .list_applications(&ListQuery {
                search: non_empty(search),
                status,
                limit: LIST_LIMIT,
            })
            .await?;
        let mut owners: HashMap<UserId, Option<Email>> = HashMap::new();
        let mut out = Vec::with_capacity(apps.len());
        for app in apps {
            if !owners.contains_key(&app.owner_id) {
                let owner = self.store.find_user(&app.owner_id).await?.map(|u| u.email);
                owners.insert(app.owner_id.clone(), owner);
            }
            let owner = owners.get(&app.owner_id).cloned().flatten();
            out.push(AppWithOwner { app, owner });
        }
        Ok(out)
    }

    /// Users whose email or ID contains `search`, newest first.
    pub async fn admin_users(&self, search: &str) -> Result<Vec<User>, ServiceError> {
        Ok(self
            .store
            .list_users(&ListQuery {
                search: non_empty(search),
                status: None,
                limit: LIST_LIMIT,
            })
            .await?)
    }

    /// Accounts whose name or ID contains `search`, newest first.
    pub async fn admin_accounts(&self, search: &str) -> Result<Vec<Account>, ServiceError> {
        Ok(self
            .store
            .list_accounts(&ListQuery {
                search: non_empty(search),
                status: None,
                limit: LIST_LIMIT,
            })
            .await?)
    }

    /// Audit events matching the filter, newest first.
    pub async fn admin_audit(
        &self,
        filter: &AuditFilter<'_>,
    ) -> Result<Vec<AuditEvent>, ServiceError> {
        let since = date_filter(filter.since, "from")?;
        // "Until 2026-01-31" includes that whole day.
        let until = date_filter(filter.until, "until")?.map(|t| t.plus_secs(86_400));
        Ok(self
            .store
            .search_audit_events(&AuditQuery {
                actor: non_empty(filter.actor),
                action_prefix: non_empty(filter.action),
                target: non_empty(filter.target),
                since,
                until,
                limit: LIST_LIMIT,
            })
            .await?)
    }

    /// Replaces what account `account_id` may do (every scope must be in the catalogue; none
    /// is allowed). Its keys' and tokens' cached answers are dropped at once; a token already
    /// issued is loaded with its scopes narrowed to the account's current ones.
    pub async fn set_account_scopes(
        &self,
        actor: &str,
        account_id: &str,
        scopes: &[String],
    ) -> Result<Account, ServiceError> {
        let not_found = || ServiceError::not_found("account", account_id);
        let id = AccountId::parse(account_id).map_err(|_| not_found())?;
        let scopes = self
            .settings
            .scopes
            .exactly(scopes.iter().map(String::as_str))?;
        if !self
            .store
            .update_account_scopes(&id, &scopes, self.clock.now())
            .await?
        {
            return Err(not_found());
        }
        self.forget(&Invalidation::Account(id.clone()));
        self.audit(actor, "account.scopes", id.as_str(), scopes.to_string())
            .await;
        self.store.find_account(&id).await?.ok_or_else(not_found)
    }

    /// The user with this ID, if any (the console shows who an actor was).
    pub async fn find_user(&self, user_id: &UserId) -> Result<Option<User>, ServiceError> {
        Ok(self.store.find_user(user_id).await?)
    }
}
