//! The SQL of every store operation, written once. sqlx binds `$1`-style placeholders on SQLite
//! and PostgreSQL alike, so each entity's file holds a macro that stamps its trait out for one
//! backend, and [`impl_store!`] stamps them all: `sqlite/mod.rs` and `postgres/mod.rs` invoke it
//! with their store and sqlx database types. What the dialects really disagree on is a
//! [`Dialect`] each backend implements; connecting and the invalidation feed stay in the
//! backends' modules. Nothing here branches on the backend at run time.

pub(crate) mod accounts;
pub(crate) mod admin_keys;
pub(crate) mod apps;
pub(crate) mod audit;
pub(crate) mod grants;
pub(crate) mod links;
pub(crate) mod search;
pub(crate) mod sessions;
pub(crate) mod signing_keys;
pub(crate) mod tokens;
pub(crate) mod users;

use crate::rows::{Row, Value};
use sqlx::migrate::Migrator;
use sqlx::QueryBuilder;
use std::sync::atomic::{AtomicBool, Ordering};

/// Key uses written by one statement (`record_key_use`): two bound values each, well within
/// SQLite's 32,766 and PostgreSQL's 65,535.
pub(crate) const KEY_USES_PER_STATEMENT: usize = 4096;

/// What differs between the backends' SQL; everything else is shared.
pub(crate) trait Dialect {
    /// The backend's name, for logs.
    const NAME: &'static str;
    /// How many write transactions are worth running at once.
    const WRITE_CONCURRENCY: usize;
    /// See [`crate::Store::connections_belong_to_a_runtime`].
    const CONNECTIONS_BELONG_TO_A_RUNTIME: bool;
    /// Statements that run first in `complete_setup`, so that two setups at once (two nodes
    /// each printed a link) cannot both see "no admin".
    const SETUP_LOCKS: &'static [&'static str];
    /// Ends the sub-`SELECT` of live keys by which the group commit refuses families of revoked
    /// keys (`push_refuse_revoked_keys`, behind `insert_families_with_tokens`): on PostgreSQL
    /// `FOR KEY SHARE`, which a revocation's [`Dialect::KEY_REVOCATION_LOCKS`] waits for and
    /// which waits for them, while plain updates (a key's last use) pass. Empty where writers
    /// are serialised anyway (SQLite).
    const FOR_KEY_SHARE: &'static str;
    /// Statements that run first in `revoke_secret_key`, binding the key ID: on PostgreSQL
    /// the key row is locked `FOR UPDATE` before it changes, so an issuance holding it
    /// commits first, and one reading it after waits and then reads it revoked (a lock taken
    /// only after a plain UPDATE would let the issuance read the old row). None on SQLite,
    /// whose first statement must write.
    const KEY_REVOCATION_LOCKS: &'static [&'static str];
    /// Whether `LOWER` and `LIKE` fold case beyond ASCII; where they do not, a search for
    /// non-ASCII text is finished in Rust ([`search::Search`]).
    const FOLDS_UNICODE_CASE: bool;
    /// The embedded migrations, in `migrations/<backend>`.
    fn migrator() -> &'static Migrator;
}

/// The names of a backend's migrations, `<version>_<description>`.
pub(crate) fn migration_names(migrator: &Migrator) -> Vec<String> {
    migrator
        .iter()
        .map(|m| format!("{}_{}", m.version, m.description))
        .collect()
}

/// The store's INSERT for rows of one type, in one database's dialect. Bulk seeding
/// (`crates/bench`) writes through it too.
pub trait Insert: sqlx::Database {
    /// `INSERT INTO <table> (<columns>) VALUES (…), (…)` with `rows` bound. Rows × columns
    /// must stay within the database's limit on bound parameters (SQLite 32,766).
    fn insert<R: Row>(rows: &[R]) -> QueryBuilder<'_, Self> {
        let mut query = QueryBuilder::new("");
        Self::push_insert(&mut query, rows);
        query
    }

    /// [`Insert::insert`], written at the end of `query`.
    fn push_insert<'a, R: Row>(query: &mut QueryBuilder<'a, Self>, rows: &'a [R]);
}

macro_rules! impl_insert {
    ($db:ty) => {
        impl Insert for $db {
            fn push_insert<'a, R: Row>(query: &mut QueryBuilder<'a, Self>, rows: &'a [R]) {
                query.push(format!("INSERT INTO {} ({}) ", R::TABLE, R::COLUMNS));
                query.push_values(rows, |mut columns, row| {
                    for value in row.values() {
                        match value {
                            Value::Text(text) => columns.push_bind(text),
                            Value::Int(int) => columns.push_bind(int),
                            Value::Bytes(bytes) => columns.push_bind(bytes),
                        };
                    }
                });
            }
        }
    };
}

impl_insert!(sqlx::Sqlite);
impl_insert!(sqlx::Postgres);

/// Statements one transaction runs one after another. Where the backend takes them in one
/// request ([`WriteTransaction::InScripts`]) they go as one query string: SQLite runs the
/// statements of a query string in turn, each binding the parameters after those of the one
/// before, and a SQLite connection runs on a thread of its own, where each statement sent
/// alone is a trip there and back that waits for both threads to be scheduled (about 0.2 ms
/// on a busy machine, measured inside a group commit). PostgreSQL binds parameters to one
/// statement per request, so there they go one by one.
pub(crate) struct Script<'a, DB: sqlx::Database> {
    sent_before: Vec<(QueryBuilder<'a, DB>, bool)>,
    current: QueryBuilder<'a, DB>,
    current_returns_rows: bool,
    one_trip: bool,
}

impl<'a, DB: sqlx::Database> Script<'a, DB> {
    pub(crate) fn new(one_trip: bool) -> Self {
        Self {
            sent_before: Vec::new(),
            current: QueryBuilder::new(""),
            current_returns_rows: false,
            one_trip,
        }
    }

    /// Where the next statement is written, after `sql`, its beginning. Its rows, if it
    /// returns any, are not wanted (see [`Self::into_parts`]).
    pub(crate) fn statement(&mut self, sql: &str) -> &mut QueryBuilder<'a, DB> {
        if !self.current.sql().is_empty() {
            if self.one_trip {
                self.current.push("; ");
            } else {
                let previous = std::mem::replace(&mut self.current, QueryBuilder::new(""));
                let returns_rows = std::mem::take(&mut self.current_returns_rows);
                self.sent_before.push((previous, returns_rows));
            }
        }
        self.current.push(sql);
        &mut self.current
    }

    /// As [`Self::statement`], for a statement whose rows are wanted.
    pub(crate) fn returning_statement(&mut self, sql: &str) -> &mut QueryBuilder<'a, DB> {
        self.statement(sql);
        self.current_returns_rows = true;
        &mut self.current
    }

    /// The queries to send, in order: one, or one per statement.
    pub(crate) fn into_queries(self) -> Vec<QueryBuilder<'a, DB>> {
        self.into_parts()
            .into_iter()
            .map(|(query, _)| query)
            .collect()
    }

    /// [`Self::into_queries`], each with whether its rows are wanted. In one trip, the query
    /// holding a statement whose rows are wanted gives every row of every statement in it,
    /// so there its other statements must return none (SQLite's do not: none of them is a
    /// `SELECT` or has a `RETURNING` clause).
    pub(crate) fn into_parts(mut self) -> Vec<(QueryBuilder<'a, DB>, bool)> {
        if !self.current.sql().is_empty() {
            self.sent_before
                .push((self.current, self.current_returns_rows));
        }
        self.sent_before
    }
}

/// A write transaction of the group commit: through sqlx, whose `BEGIN` and `COMMIT` are
/// requests of their own (PostgreSQL), or with each [`Script`] in one trip and begun and
/// committed by statements that travel with its first and last scripts, two trips fewer per
/// batch (SQLite). Each store's `begin_write` says which.
pub(crate) enum WriteTransaction<'c, DB: sqlx::Database> {
    Sqlx(sqlx::Transaction<'c, DB>),
    InScripts {
        connection: &'c mut DB::Connection,
        /// Set from the `BEGIN` until the `COMMIT` ran: if this is dropped in between (an
        /// error, or its caller gave up), the writer rolls the transaction back before it
        /// lends the connection again, since sqlx does not know of it.
        open: &'c AtomicBool,
        begun: bool,
    },
}

impl<'c, DB: sqlx::Database> WriteTransaction<'c, DB> {
    /// The connection, for statements whose results are read.
    pub(crate) fn connection(&mut self) -> &mut DB::Connection {
        match self {
            Self::Sqlx(tx) => tx,
            Self::InScripts { connection, .. } => connection,
        }
    }

    /// A script to run in this transaction; the first one begins it.
    pub(crate) fn script<'a>(&mut self) -> Script<'a, DB> {
        match self {
            Self::Sqlx(_) => Script::new(false),
            Self::InScripts { open, begun, .. } => {
                let mut script = Script::new(true);
                if !*begun {
                    open.store(true, Ordering::SeqCst);
                    script.statement("BEGIN IMMEDIATE");
                    *begun = true;
                }
                script
            }
        }
    }

    /// Ends `last`, the transaction's last script, with its `COMMIT` where that travels in
    /// the script. Run `last`, then [`Self::committed`].
    pub(crate) fn end(&self, last: &mut Script<'_, DB>) {
        if let Self::InScripts { .. } = self {
            last.statement("COMMIT");
        }
    }

    /// Once the last script ran: commits through sqlx, or notes that the script did.
    pub(crate) async fn committed(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlx(tx) => tx.commit().await,
            Self::InScripts { open, .. } => {
                open.store(false, Ordering::SeqCst);
                Ok(())
            }
        }
    }
}

/// `SELECT <R's columns> FROM <R's table> <rest>`.
pub(crate) fn select<R: Row>(rest: &str) -> String {
    format!("SELECT {} FROM {} {rest}", R::COLUMNS, R::TABLE)
}

/// A lookup of one row by a digest: the statement for one key, and the one for several keys
/// at once (`$1` an array), whose rows begin with the key each was found by (`lookup_key`).
/// SQLite looks keys up one at a time on the caller's thread; PostgreSQL batches concurrent
/// lookups into one round trip (`crate::postgres::lookups`).
pub(crate) struct ByKey {
    pub(crate) one: String,
    pub(crate) many: String,
}

impl ByKey {
    /// `SELECT <columns> FROM <from> WHERE <key> = $1`; for many, the same joined to the
    /// array's elements, which PostgreSQL plans (also as a generic plan, for any number of
    /// keys) as one index lookup per element.
    pub(crate) fn new(columns: &str, from: &str, key: &str) -> Self {
        Self {
            one: format!("SELECT {columns} FROM {from} WHERE {key} = $1"),
            many: format!(
                "SELECT lookup.key AS lookup_key, {columns} \
                 FROM unnest($1::bytea[]) AS lookup(key), {from} WHERE {key} = lookup.key"
            ),
        }
    }
}

/// `SELECT <position>, <R's columns> FROM <R's table> <rest>` for a paged list
/// ([`crate::rows::Paged`]); `position` is the column that orders the table by insertion.
pub(crate) fn select_paged<R: Row>(position: &str, rest: &str) -> String {
    format!(
        "SELECT {position} AS seq, {} FROM {} {rest}",
        R::COLUMNS,
        R::TABLE
    )
}

/// `R`'s columns read through the alias `table`, each renamed `<prefix><column>` (the names a
/// flattened row struct expects).
pub(crate) fn columns_of<R: Row>(table: &str, prefix: &str) -> String {
    R::COLUMNS
        .split(", ")
        .map(|c| format!("{table}.{c} AS {prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stamps every storage trait out for `$store`, whose `pool` is a pool of sqlx database `$db`
/// and which implements [`Dialect`].
macro_rules! impl_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use $crate::rows::Named;
            use $crate::sql::Dialect;
            use $crate::{Store, StoreError};

            impl $store {
                /// Inserts `rows` with one statement, naming what a failure is about.
                async fn insert_rows<'c, R: Named>(
                    executor: impl sqlx::Executor<'c, Database = $db>,
                    rows: &[R],
                ) -> Result<(), StoreError> {
                    <$db as $crate::Insert>::insert(rows)
                        .build()
                        .execute(executor)
                        .await
                        .map_err(|e| StoreError::from(e).naming(R::CONFLICT, R::MISSING))?;
                    Ok(())
                }
            }

            #[async_trait::async_trait]
            impl Store for $store {
                async fn migrate(&self) -> Result<(), StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    Self::migrator().run_direct(&mut *writer).await?;
                    Ok(())
                }

                async fn ping(&self) -> Result<(), StoreError> {
                    sqlx::query("SELECT 1")
                        .execute(&mut *self.writer.acquire().await?)
                        .await?;
                    Ok(())
                }

                fn backend(&self) -> &'static str {
                    Self::NAME
                }

                fn write_concurrency(&self) -> usize {
                    Self::WRITE_CONCURRENCY
                }

                fn connections_belong_to_a_runtime(&self) -> bool {
                    Self::CONNECTIONS_BELONG_TO_A_RUNTIME
                }

                fn pool_status(&self) -> Option<(u32, usize)> {
                    Some(self.writer_status())
                }
            }
        };
        $crate::sql::accounts::impl_account_store!($store, $db);
        $crate::sql::users::impl_user_store!($store, $db);
        $crate::sql::apps::impl_app_store!($store, $db);
        $crate::sql::tokens::impl_token_store!($store, $db);
        $crate::sql::grants::impl_grant_store!($store, $db);
        $crate::sql::sessions::impl_session_store!($store, $db);
        $crate::sql::audit::impl_audit_store!($store, $db);
        $crate::sql::links::impl_link_store!($store, $db);
        $crate::sql::admin_keys::impl_admin_key_store!($store, $db);
        $crate::sql::signing_keys::impl_signing_key_store!($store, $db);
    };
}
pub(crate) use impl_store;
