//! The admin console's reads: the review queue (pending apps and redirect URI changes),
//! searchable lists of apps, users and accounts, and the audit log; and the decisions on
//! redirect URI changes. Decisions on apps go through [`Gatehouse::decide_app`].

use crate::portal::joined;
use crate::{notices, Gatehouse, ServiceError};
use gatehouse_core::account::Account;
use gatehouse_core::application::{
    parse_redirect_uris, AppStatus, Application, RedirectUri, RedirectUriChange,
};
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{AccountId, UserId};
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::name::Reason;
use gatehouse_core::user::{Email, User};
use gatehouse_core::Timestamp;
use gatehouse_store::{AuditQuery, ListQuery};
use std::collections::HashMap;

/// Most rows an admin list shows.
pub const LIST_LIMIT: u32 = 200;

/// Most audit events one read returns.
pub const AUDIT_LIMIT_MAX: u32 = 10_000;

/// An app with its owner's email, for the admin lists.
#[derive(Debug)]
pub struct AppWithOwner {
    /// The app.
    pub app: Application,
    /// Its owner's email (`None` if the owner vanished).
    pub owner: Option<Email>,
}

/// A redirect URI change waiting in the review queue, with its app and the owner's email.
#[derive(Debug)]
pub struct RedirectUriReview {
    /// The app, with the URIs in force.
    pub app: Application,
    /// Its owner's email (`None` if the owner vanished).
    pub owner: Option<Email>,
    /// The URIs asked for.
    pub change: RedirectUriChange,
}

/// An admin's decision on a redirect URI change.
#[derive(Debug, Clone, Copy)]
pub enum UriDecision<'a> {
    /// Put the URIs asked for in force.
    Approve,
    /// Drop them, with this reason for the owner.
    Reject(&'a str),
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
        let mut owners: HashMap<Option<UserId>, Option<Email>> = HashMap::new();
        let mut out = Vec::with_capacity(apps.len());
        for app in apps {
            if !owners.contains_key(&app.owner_id) {
                let owner = self.owner_of(&app).await?.map(|u| u.email);
                owners.insert(app.owner_id.clone(), owner);
            }
            let owner = owners.get(&app.owner_id).cloned().flatten();
            out.push(AppWithOwner { app, owner });
        }
        Ok(out)
    }

    /// The redirect URI changes waiting for a decision, oldest request first.
    pub async fn admin_redirect_uri_changes(&self) -> Result<Vec<RedirectUriReview>, ServiceError> {
        let changes = self.store.list_redirect_uri_changes(LIST_LIMIT).await?;
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            // An app deleted since the list was read takes its change with it.
            let Some(app) = self.store.find_application(&change.client_id).await? else {
                continue;
            };
            let owner = self.owner_of(&app).await?.map(|u| u.email);
            out.push(RedirectUriReview { app, owner, change });
        }
        Ok(out)
    }

    /// Decides the redirect URI change waiting for app `client_id`, which must still ask for
    /// exactly `expected` (the URIs the admin reviewed). Approving puts them in force at once
    /// on every node; rejecting drops them and the app keeps its URIs. The owner is told.
    pub async fn decide_redirect_uris(
        &self,
        actor: &str,
        client_id: &str,
        expected: &[String],
        decision: UriDecision<'_>,
    ) -> Result<Application, ServiceError> {
        let reason = match decision {
            UriDecision::Approve => None,
            UriDecision::Reject(reason) => Some(Reason::parse(reason)?),
        };
        let mut app = self.get_app(client_id).await?;
        let expected = parse_redirect_uris(expected.iter().map(String::as_str))?;
        let now = self.clock.now();
        let decided = match &reason {
            None => {
                self.store
                    .approve_redirect_uri_change(&app.client_id, &expected, now)
                    .await?
            }
            Some(_) => {
                self.store
                    .drop_redirect_uri_change(&app.client_id, &expected)
                    .await?
            }
        };
        if !decided {
            return Err(self.uri_change_moved(&app, &expected).await);
        }
        let owner = self.owner_of(&app).await.ok().flatten();
        let base = self.public_base();
        match &reason {
            None => {
                self.audit(
                    actor,
                    "app.redirect_uris.approve",
                    app.client_id.as_str(),
                    joined(&expected),
                )
                .await;
                // Authenticated clients are cached with their app, redirect URIs included.
                self.invalidate(Invalidation::Client(app.client_id.clone()))
                    .await;
                app.redirect_uris = expected;
                app.updated_at = now;
                if let Some(owner) = owner {
                    let mail = notices::redirect_uris_approved(&owner.email, &base, &app);
                    self.send_mail(mail).await;
                }
            }
            Some(reason) => {
                self.audit(
                    actor,
                    "app.redirect_uris.reject",
                    app.client_id.as_str(),
                    reason.as_str().to_owned(),
                )
                .await;
                if let Some(owner) = owner {
                    let mail =
                        notices::redirect_uris_rejected(&owner.email, &base, &app, reason.as_str());
                    self.send_mail(mail).await;
                }
            }
        }
        Ok(app)
    }

    /// Why a decision on `app`'s change to `expected` found nothing to decide.
    async fn uri_change_moved(&self, app: &Application, expected: &[RedirectUri]) -> ServiceError {
        match self.store.find_redirect_uri_change(&app.client_id).await {
            Ok(Some(current)) if current.redirect_uris != expected => ServiceError::Conflict(
                "The owner asked for other redirect URIs meanwhile. Review the new request.".into(),
            ),
            Ok(Some(_)) => ServiceError::Conflict(
                "The app changed meanwhile. Reload the review queue and try again.".into(),
            ),
            Ok(None) => ServiceError::Conflict(
                "No redirect URI change of this app is waiting: it was decided or withdrawn \
                 already."
                    .into(),
            ),
            Err(e) => e.into(),
        }
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
        self.audit_events(filter, LIST_LIMIT).await
    }

    /// At most `limit` (1 to [`AUDIT_LIMIT_MAX`]) audit events matching the filter, newest
    /// first.
    pub async fn audit_events(
        &self,
        filter: &AuditFilter<'_>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, ServiceError> {
        if !(1..=AUDIT_LIMIT_MAX).contains(&limit) {
            return Err(ServiceError::NotApplicable(format!(
                "limit must be between 1 and {AUDIT_LIMIT_MAX}"
            )));
        }
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
                limit,
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
