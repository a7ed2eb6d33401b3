//! Connections for the lookups of a credential by its digest, held by the store itself
//! (`crate::held`) rather than in the sqlx pool, whose ping of every connection it gets back
//! was a second round trip to the server for each one-statement lookup. One whose lookup
//! failed in any way is closed instead, so a connection the server dropped costs one failed
//! lookup (unavailable, a 503) and the next opens a new one.

use crate::held::Held;
use crate::StoreError;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use std::time::Duration;

/// At most `count` connections, each opened when first needed.
pub(crate) struct Lookups(Held<PgConnection>);

impl Lookups {
    pub(crate) fn new(count: u32, connect: PgConnectOptions, acquire_timeout: Duration) -> Self {
        Self(Held::new(count, connect, acquire_timeout))
    }

    /// The one row `sql` finds for `key` (its only parameter).
    pub(crate) async fn find<R>(&self, sql: &str, key: &[u8]) -> Result<Option<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        let mut lent = self.0.lend().await?;
        let connection = lent
            .slot
            .as_mut()
            .ok_or_else(|| StoreError::Internal("a lent slot without its connection".into()))?;
        let found = sqlx::query_as(sql)
            .bind(key)
            .fetch_optional(&mut *connection)
            .await;
        if found.is_err() {
            // Whatever went wrong, the next lookup starts on a new connection.
            *lent.slot = None;
        }
        Ok(found?)
    }
}
