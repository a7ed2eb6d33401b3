//! What the admin API reads beyond the console's use cases: every list a page at a time
//! (newest first, by a position that only grows, so a page never repeats or skips a row that
//! was there when the first page was read), one user's grants, and withdrawing one of them.
//! Decisions and changes go through the same functions as the console and the command line.

use crate::admin::AppWithOwner;
use crate::portal::AuthorizedApp;
use crate::{Gatehouse, ServiceError};
use gatehouse_core::account::Account;
use gatehouse_core::application::AppStatus;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{ClientId, UserId};
use gatehouse_core::user::User;
use gatehouse_store::{AuditQuery, Page, PageQuery};
use std::collections::HashMap;

impl Gatehouse {
    /// One page of the apps in `status` (all when `None`), with their owners' emails.
    pub async fn admin_apps_page(
        &self,
        status: Option<AppStatus>,
        page: PageQuery,
    ) -> Result<Page<AppWithOwner>, ServiceError> {
        let apps = self.store.page_applications(status, &page).await?;
        let mut owners = HashMap::new();
        let mut items = Vec::with_capacity(apps.items.len());
        for app in apps.items {
            if !owners.contains_key(&app.owner_id) {
                let owner = self.owner_of(&app).await?.map(|u| u.email);
                owners.insert(app.owner_id.clone(), owner);
            }
            let owner = owners.get(&app.owner_id).cloned().flatten();
            items.push(AppWithOwner { app, owner });
        }
        Ok(Page {
            items,
            next: apps.next,
        })
    }

    /// One page of every account.
    pub async fn admin_accounts_page(
        &self,
        page: PageQuery,
    ) -> Result<Page<Account>, ServiceError> {
        Ok(self.store.page_accounts(&page).await?)
    }

    /// One page of every user.
    pub async fn admin_users_page(&self, page: PageQuery) -> Result<Page<User>, ServiceError> {
        Ok(self.store.page_users(&page).await?)
    }

    /// One page of the audit events matching `query`.
    pub async fn admin_audit_page(
        &self,
        query: &AuditQuery,
        page: PageQuery,
    ) -> Result<Page<AuditEvent>, ServiceError> {
        Ok(self.store.page_audit_events(query, &page).await?)
    }

    /// The user `user_id`; an ID of the wrong shape is as unknown as a missing one.
    pub async fn get_user(&self, user_id: &str) -> Result<User, ServiceError> {
        let not_found = || ServiceError::not_found("user", user_id);
        let id = UserId::parse(user_id).map_err(|_| not_found())?;
        self.store.find_user(&id).await?.ok_or_else(not_found)
    }

    /// Every app user `user_id` consented to, most recent first.
    pub async fn grants_of_user(&self, user_id: &str) -> Result<Vec<AuthorizedApp>, ServiceError> {
        let user = self.get_user(user_id).await?;
        self.authorized_apps(&user).await
    }

    /// Withdraws user `user_id`'s consent to app `client_id` on an operator's behalf: the
    /// grant goes, and with it every token the app got through it, on every node.
    pub async fn revoke_grant_as_admin(
        &self,
        actor: &str,
        user_id: &str,
        client_id: &str,
    ) -> Result<(), ServiceError> {
        let user = self.get_user(user_id).await?;
        let no_grant = || ServiceError::NotFound {
            what: "grant",
            id: format!("of user {user_id} to {client_id}"),
        };
        let client = ClientId::parse(client_id).map_err(|_| no_grant())?;
        if self
            .store
            .find_grant(&user.user_id, &client)
            .await?
            .is_none()
        {
            return Err(no_grant());
        }
        self.withdraw_grant(actor, &user, &client).await
    }
}
