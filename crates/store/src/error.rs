//! Storage errors, classified once from sqlx's so every layer above can tell "not found" from
//! "conflict" from "database down".

use thiserror::Error;

/// A boxed source error, kept for logs.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong in storage.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The named object does not exist (or a reference to it is dangling).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was broken; names the field (for example `email`).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The database cannot be reached or is too busy: callers answer 503, never 401 or 200.
    #[error("database unavailable")]
    Unavailable(#[source] BoxError),
    /// The database URL or its options are not usable; names the problem.
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    /// Anything else, including stored data that no longer parses. Logged, shown as a generic
    /// 500.
    #[error("storage failure")]
    Internal(#[source] BoxError),
}

impl StoreError {
    /// Renames a classified `NotFound`/`Conflict` with what the calling method knows: which
    /// unique field collided and which referenced object is missing.
    pub(crate) fn naming(self, conflict: &'static str, missing: &'static str) -> Self {
        match self {
            Self::Conflict(_) => Self::Conflict(conflict),
            Self::NotFound(_) => Self::NotFound(missing),
            other => other,
        }
    }

    /// Whether the database aborted the transaction because it ran against a concurrent
    /// one (PostgreSQL 40P01 deadlock detected, 40001 serialization failure): done again on
    /// its own, it can succeed.
    pub(crate) fn is_transaction_conflict(&self) -> bool {
        let Self::Internal(source) = self else {
            return false;
        };
        source
            .downcast_ref::<sqlx::Error>()
            .and_then(sqlx::Error::as_database_error)
            .and_then(|db| db.code())
            .is_some_and(|code| matches!(&*code, "40P01" | "40001"))
    }

    /// The same error once more, for another caller of a batch that failed: errors are not
    /// `Clone`, so a source is kept as its text.
    pub fn duplicate(&self) -> Self {
        match self {
            Self::NotFound(what) => Self::NotFound(what),
            Self::Conflict(what) => Self::Conflict(what),
            Self::Unavailable(source) => Self::Unavailable(source.to_string().into()),
            Self::BadUrl(problem) => Self::BadUrl(problem.clone()),
            Self::Internal(source) => Self::Internal(source.to_string().into()),
        }
    }

    /// An `Internal` error for stored data that fails the domain's validation.
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Self::Internal(what.into().into())
    }
}

/// SQLSTATE classes and codes that mean the server is gone or refusing work: 08 connection
/// exception, 53 insufficient resources, 57P01-57P03 shutdown and cannot-connect-now.
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// SQLite result codes: 5 BUSY, 6 LOCKED (also as extended codes, whose low byte they are).
fn is_sqlite_busy(code: &str) -> bool {
    code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound("row"),
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(Box::new(e)),
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    Self::Conflict("row")
                } else if db.is_foreign_key_violation() {
                    Self::NotFound("referenced row")
                } else if db
                    .code()
                    .is_some_and(|c| is_unavailable_code(&c) || is_sqlite_busy(&c))
                {
                    Self::Unavailable(Box::new(e))
                } else {
                    Self::Internal(Box::new(e))
                }
            }
            _ => Self::Internal(Box::new(e)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            sqlx::migrate::MigrateError::VersionMissing(version) => Self::Internal(
                format!(
                    "the database holds migration {version}, which this version of Gatehouse \
                     does not know: a later version upgraded it, and this one cannot run on it"
                )
                .into(),
            ),
            other => Self::Internal(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_outage_codes() {
        assert!(is_unavailable_code("08006"));
        assert!(is_unavailable_code("57P01"));
        assert!(!is_unavailable_code("23505"));
        assert!(is_sqlite_busy("5"));
        assert!(is_sqlite_busy("517"));
        assert!(!is_sqlite_busy("19"));
    }

    #[test]
    fn pool_timeout_is_unavailable() {
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
    }
}
