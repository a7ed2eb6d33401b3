//! The lookups of a credential by its digest (a secret key, an access or refresh token, an
//! authorization code), answered by SQLite on the calling thread. sqlx runs each SQLite
//! connection on a thread of its own, and every statement crosses to it and back: two thread
//! switches, a channel and a decoded row per lookup, which were most of what a cold
//! `/auth/check` cost and much of a code exchange. One indexed read of pages the operating
//! system has cached takes a few microseconds, less than those switches, so it is done where
//! the request already runs. Only these point lookups read here; everything else goes through
//! sqlx.
//!
//! Each connection is `query_only` and used by one thread at a time. If all are in use, none
//! can open, or the database is busy, the lookup returns `None` and the caller reads through
//! sqlx, which waits.

use crate::StoreError;
use rusqlite::{ErrorCode, OpenFlags, OptionalExtension};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// A row the inline readers can decode: its fields in the order of the statement's columns,
/// each under the name sqlx's `FromRow` decodes it by.
pub(crate) trait InlineRow: Sized {
    fn from_inline(columns: &mut Columns<'_, '_>) -> rusqlite::Result<Self>;
}

/// A row's columns, read in order. Each read checks that the next column has the name the
/// field expects: a field out of step with its statement is an error, never another column's
/// value. Looking columns up by name instead compared each name with every column before it,
/// a few percent of a cold `/auth/check`.
pub(crate) struct Columns<'a, 'r> {
    row: &'a rusqlite::Row<'r>,
    next: usize,
}

impl Columns<'_, '_> {
    /// The next column's value, if the column is named `name`.
    pub(crate) fn next<T: rusqlite::types::FromSql>(&mut self, name: &str) -> rusqlite::Result<T> {
        let index = self.next;
        self.next += 1;
        let actual = self.row.as_ref().column_name(index)?;
        if actual != name {
            return Err(rusqlite::Error::InvalidColumnName(format!(
                "column {index} is {actual}, not {name}"
            )));
        }
        self.row.get(index)
    }
}

/// Up to `slots.len()` read-only connections to one database file, each opened when first
/// needed.
pub(crate) struct InlineReaders {
    slots: Box<[Mutex<Option<rusqlite::Connection>>]>,
    path: PathBuf,
    cache_kib: u32,
}

/// How long a lookup here waits for a lock (only while another connection recovers or resets
/// the WAL): past it, it goes through sqlx instead, which waits on its own thread.
const BUSY: Duration = Duration::from_millis(5);

impl InlineReaders {
    pub(crate) fn new(count: u32, path: PathBuf, cache_kib: u32) -> Self {
        Self {
            slots: (0..count.max(1)).map(|_| Mutex::new(None)).collect(),
            path,
            cache_kib,
        }
    }

    /// The row `sql` finds for `key` (its one parameter), or `None` when it could not be read
    /// here: then the caller reads through sqlx.
    pub(crate) fn find<R: InlineRow>(
        &self,
        sql: &str,
        key: &[u8],
    ) -> Option<Result<Option<R>, StoreError>> {
        let mut slot = self.slots.iter().find_map(|slot| slot.try_lock().ok())?;
        if slot.is_none() {
            // One that cannot open (out of file descriptors, say) leaves the lookup to sqlx,
            // whose errors say whether the database is unavailable.
            match self.open() {
                Ok(connection) => *slot = Some(connection),
                Err(e) => {
                    tracing::debug!(error = %e, "an inline SQLite reader could not open");
                    return None;
                }
            }
        }
        let connection = slot.as_ref()?;
        let found = connection.prepare_cached(sql).and_then(|mut statement| {
            statement
                .query_row([key], |row| R::from_inline(&mut Columns { row, next: 0 }))
                .optional()
        });
        match found {
            Ok(row) => Some(Ok(row)),
            Err(e) if is_busy(&e) => None,
            Err(e) => Some(Err(internal(e))),
        }
    }

    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        let connection = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.pragma_update(None, "query_only", "ON")?;
        connection.pragma_update(None, "cache_size", format!("-{}", self.cache_kib))?;
        connection.busy_timeout(BUSY)?;
        Ok(connection)
    }

    /// How many connections are open (for tests).
    #[cfg(test)]
    pub(crate) fn open_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.try_lock().map_or(true, |c| c.is_some()))
            .count()
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn internal(e: rusqlite::Error) -> StoreError {
    StoreError::Internal(Box::new(e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Named(String);

    impl InlineRow for Named {
        fn from_inline(columns: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
            Ok(Self(columns.next("name")?))
        }
    }

    const FIND: &str = "SELECT name FROM things WHERE digest = $1";

    fn database() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inline.db");
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; \
                 CREATE TABLE things (digest BLOB PRIMARY KEY, name TEXT NOT NULL); \
                 INSERT INTO things VALUES (x'01', 'one');",
            )
            .unwrap();
        (dir, path)
    }

    #[test]
    fn finds_committed_rows_and_nothing_for_an_unknown_key() {
        let (_dir, path) = database();
        let readers = InlineReaders::new(2, path.clone(), 64);
        let found: Option<Named> = readers.find(FIND, &[1]).unwrap().unwrap();
        assert_eq!(found.unwrap().0, "one");
        assert!(readers
            .find::<Named>(FIND, &[2])
            .unwrap()
            .unwrap()
            .is_none());

        let writer = rusqlite::Connection::open(&path).unwrap();
        writer
            .execute("INSERT INTO things VALUES (x'02', 'two')", [])
            .unwrap();
        let found: Option<Named> = readers.find(FIND, &[2]).unwrap().unwrap();
        assert_eq!(found.unwrap().0, "two", "a later commit is seen");
        assert_eq!(readers.open_count(), 1, "one caller at a time needs one");
    }

    #[test]
    fn all_connections_in_use_leaves_the_lookup_to_sqlx() {
        let (_dir, path) = database();
        let readers = InlineReaders::new(1, path, 64);
        let held = readers.slots[0].lock().unwrap();
        assert!(readers.find::<Named>(FIND, &[1]).is_none());
        drop(held);
        assert!(readers.find::<Named>(FIND, &[1]).is_some());
    }

    #[test]
    fn its_connections_cannot_write() {
        let (_dir, path) = database();
        let readers = InlineReaders::new(1, path, 64);
        let _: Option<Named> = readers.find(FIND, &[1]).unwrap().unwrap();
        let slot = readers.slots[0].lock().unwrap();
        let written = slot.as_ref().unwrap().execute("DELETE FROM things", []);
        assert!(written.is_err(), "query_only refuses a write");
    }

    #[test]
    fn a_database_that_cannot_be_opened_leaves_the_lookup_to_sqlx() {
        let dir = tempfile::tempdir().unwrap();
        let readers = InlineReaders::new(1, dir.path().join("missing.db"), 64);
        assert!(readers.find::<Named>(FIND, &[1]).is_none());
        assert_eq!(readers.open_count(), 0);
    }

    #[test]
    fn a_broken_statement_is_an_error_not_a_fallback() {
        let (_dir, path) = database();
        let readers = InlineReaders::new(1, path, 64);
        let found = readers.find::<Named>("SELECT name FROM nowhere WHERE digest = $1", &[1]);
        assert!(matches!(found, Some(Err(StoreError::Internal(_)))));
    }

    #[test]
    fn a_field_out_of_step_with_its_column_is_an_error() {
        let (_dir, path) = database();
        let readers = InlineReaders::new(1, path, 64);
        let found =
            readers.find::<Named>("SELECT digest, name FROM things WHERE digest = $1", &[1]);
        assert!(matches!(found, Some(Err(StoreError::Internal(_)))));
    }

    /// The build flags of `.cargo/config.toml` reached the SQLite that sqlx and this module
    /// share (one `libsqlite3-sys`): without them, every SQLite allocation and page fetch takes
    /// a process-wide mutex again.
    #[test]
    fn sqlite_is_built_without_its_global_memory_mutexes() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        let mut statement = connection.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }
}
