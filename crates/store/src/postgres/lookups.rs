//! Lookups of a credential by its digest, batched. A lookup queues its key; a few worker
//! tasks, each with a connection of its own, take every key queued by then (at most
//! [`MOST_KEYS`]) and find them all with one statement, answering each lookup its row. Under
//! load a cold `/auth/check` then shares its round trip, and the server's work per statement,
//! with the others that arrived meanwhile; alone, it is one statement for one key.
//!
//! A worker goes from one batch to the next without handing its connection on, so a
//! connection is never idle while keys wait (lookups that each borrowed a connection for
//! their own key queued for one while the server had CPU to spare). Workers start with the
//! first lookup, open their connection when they first have keys, and stop when the store is
//! dropped. A connection whose statement failed in any way is closed. A batch whose statement
//! failed on a connection opened before it is tried once more on a new one (the server may
//! have ended the connection while it rested: a restart, an outage now over); if that fails
//! too, or the connection was new, its lookups get the error (unavailable, a 503).
//!
//! A key waits in the queue at most the acquire timeout, as a query waits for a pooled
//! connection; past it the database counts as unavailable. A key still queued after a quarter
//! of that wakes another worker, whatever the busy ones are doing (one may be stuck on a
//! connection the network lost). Once a worker has taken it, its lookup waits for the
//! statement (with its one retry) at most [`STATEMENT_TIMEOUTS`] acquire timeouts: one that
//! takes longer (the server or the network stalled) fails its batch as unavailable, and its
//! connection is closed. Lookups of the same key in one batch share its row.

use crate::StoreError;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{Connection, Row};
use std::collections::VecDeque;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// Most keys one statement looks up. Beyond it the rest goes to the next free worker.
const MOST_KEYS: usize = 64;

/// While a worker is busy, keys queue for it rather than wake another, which would look up a
/// few with a statement of its own: up to this many. With more queued, waiting for the busy
/// one would cost more than the second statement (a slow statement, say one reading from
/// disk, then no longer holds every lookup up).
const WAKE_ANOTHER_AT: usize = 16;

/// A batch's statement, with its retry, runs at most this many acquire timeouts (10 s by
/// default): a cold lookup that takes that long means the database cannot answer.
const STATEMENT_TIMEOUTS: u32 = 10;

/// What a lookup gets: the row found for its key, if any (shared by the lookups of the same
/// key in one batch).
type Answer = Result<Option<Arc<PgRow>>, StoreError>;

/// Run on each lookup connection as it opens: plan each statement once. By default
/// PostgreSQL plans a statement again for each array of keys it is given (a plan for that
/// many keys looks cheaper than one for any number), which costs more than the lookups
/// themselves; the generic plan is one index lookup per key whatever their number
/// (`crate::sql::ByKey`). A server that refuses it (before PostgreSQL 12, or behind a pooler
/// that keeps no settings) still answers, only with more planning.
const GENERIC_PLANS: &str = "SET plan_cache_mode = force_generic_plan";

/// The queue of keys and the workers that look them up.
pub(crate) struct Lookups {
    shared: Arc<Shared>,
    workers: usize,
    connect: PgConnectOptions,
    acquire_timeout: Duration,
}

/// What the lookups and their workers share.
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes a worker when a key is queued, and every worker when the store is dropped.
    work: Notify,
    closed: AtomicBool,
    /// Workers running: started with the first lookups, and again by a later lookup for one
    /// that ended (its runtime shut down).
    live: AtomicUsize,
    /// Statements run, for tests to see what was batched.
    #[cfg(test)]
    statements: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Queue {
    next_id: u64,
    waiting: VecDeque<Waiting>,
    /// Workers between taking a batch and finding the queue empty.
    busy: usize,
}

/// A queued key.
struct Waiting {
    id: u64,
    /// The statement that finds keys like this one (a `ByKey`'s `many`).
    sql: &'static str,
    key: Box<[u8]>,
    answer: oneshot::Sender<Answer>,
}

impl Lookups {
    /// At most `workers` statements at once, each worker connecting with `connect`.
    pub(crate) fn new(workers: u32, connect: PgConnectOptions, acquire_timeout: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                queue: Mutex::default(),
                work: Notify::new(),
                closed: AtomicBool::new(false),
                live: AtomicUsize::new(0),
                #[cfg(test)]
                statements: Default::default(),
            }),
            workers: workers.max(1) as usize,
            connect,
            acquire_timeout,
        }
    }

    /// The one row `sql` finds for `key`. `sql` takes an array of keys as `$1` and returns
    /// the key each row was found by as its first column.
    pub(crate) async fn find<R>(
        &self,
        sql: &'static str,
        key: &[u8],
    ) -> Result<Option<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        self.start_workers();
        let (id, mut answer) = self.shared.enqueue(sql, key);
        let nudge = self.acquire_timeout / 4;
        let answered = match tokio::time::timeout(nudge, &mut answer).await {
            Ok(answered) => answered,
            Err(_) => {
                if self.shared.is_queued(id) {
                    self.shared.work.notify_one();
                }
                match tokio::time::timeout(self.acquire_timeout - nudge, &mut answer).await {
                    Ok(answered) => answered,
                    Err(_) if self.shared.withdraw(id) => {
                        return Err(StoreError::from(sqlx::Error::PoolTimedOut));
                    }
                    // A worker has it: its statement is under way.
                    Err(_) => answer.await,
                }
            }
        };
        let row = answered
            .map_err(|_| StoreError::Unavailable("the lookup workers have stopped".into()))??;
        Ok(row.as_deref().map(R::from_row).transpose()?)
    }

    /// Starts workers until `workers` run.
    fn start_workers(&self) {
        let mut live = self.shared.live.load(Ordering::Acquire);
        while live < self.workers {
            match self.shared.live.compare_exchange(
                live,
                live + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let worker = Worker {
                        shared: self.shared.clone(),
                        busy: false,
                    };
                    tokio::spawn(worker.run(self.connect.clone(), self.acquire_timeout));
                    live += 1;
                }
                Err(now) => live = now,
            }
        }
    }
}

impl Drop for Lookups {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.work.notify_waiters();
    }
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a key, waking a worker if none is busy or enough keys wait
    /// ([`WAKE_ANOTHER_AT`]); a busy worker looks at the queue again before it sleeps.
    fn enqueue(&self, sql: &'static str, key: &[u8]) -> (u64, oneshot::Receiver<Answer>) {
        let (sender, receiver) = oneshot::channel();
        let mut queue = self.queue();
        let id = queue.next_id;
        queue.next_id += 1;
        queue.waiting.push_back(Waiting {
            id,
            sql,
            key: key.into(),
            answer: sender,
        });
        let wake = queue.busy == 0 || queue.waiting.len() >= WAKE_ANOTHER_AT;
        drop(queue);
        if wake {
            self.work.notify_one();
        }
        (id, receiver)
    }

    fn is_queued(&self, id: u64) -> bool {
        self.queue().waiting.iter().any(|w| w.id == id)
    }

    /// Takes key `id` out of the queue; false if a worker took it first.
    fn withdraw(&self, id: u64) -> bool {
        let mut queue = self.queue();
        let before = queue.waiting.len();
        queue.waiting.retain(|w| w.id != id);
        queue.waiting.len() < before
    }

    /// Takes the oldest queued keys, at most [`MOST_KEYS`], skipping those nobody waits for
    /// any more, and says whether any are left. `busy` is whether the calling worker counts
    /// as busy, kept up to date here, under the queue's lock, so a key queued just after a
    /// worker found nothing does wake one.
    fn take_batch(&self, busy: &mut bool) -> (Vec<Waiting>, bool) {
        let mut queue = self.queue();
        let mut batch: Vec<Waiting> = Vec::new();
        while batch.len() < MOST_KEYS {
            let Some(waiting) = queue.waiting.pop_front() else {
                break;
            };
            if !waiting.answer.is_closed() {
                batch.push(waiting);
            }
        }
        let now_busy = !batch.is_empty();
        if now_busy && !*busy {
            queue.busy += 1;
        } else if !now_busy && *busy {
            queue.busy -= 1;
        }
        *busy = now_busy;
        (batch, !queue.waiting.is_empty())
    }
}

/// A worker: looks up what is queued, batch after batch, and sleeps while nothing is. When
/// it ends (the store dropped, or its runtime shut down) it no longer counts as busy or live.
struct Worker {
    shared: Arc<Shared>,
    busy: bool,
}

impl Worker {
    async fn run(mut self, connect: PgConnectOptions, acquire_timeout: Duration) {
        let shared = self.shared.clone();
        let mut link = Link {
            connection: None,
            connect,
            acquire_timeout,
        };
        loop {
            let batch = {
                // Listening before looking, so neither a key queued nor the store's drop in
                // between goes unnoticed.
                let mut woken = pin!(shared.work.notified());
                woken.as_mut().enable();
                if shared.closed.load(Ordering::Acquire) {
                    return;
                }
                let (batch, more) = shared.take_batch(&mut self.busy);
                if batch.is_empty() {
                    woken.await;
                    continue;
                }
                if more {
                    shared.work.notify_one();
                }
                batch
                // No longer listening while busy: a wake-up meant for an idle worker that
                // came meanwhile goes on to one (tokio passes on the wake-up of a dropped
                // listener), where a busy one would have held it until its batch ended.
            };
            serve(&shared, &mut link, batch).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.busy {
            self.shared.queue().busy -= 1;
        }
        self.shared.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Looks `batch` up: one statement per kind of lookup in it.
async fn serve(shared: &Shared, link: &mut Link, mut rest: Vec<Waiting>) {
    while let Some(sql) = rest.first().map(|w| w.sql) {
        let (same, others) = rest.into_iter().partition(|w| std::ptr::eq(w.sql, sql));
        rest = others;
        #[cfg(test)]
        shared
            .statements
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        #[cfg(not(test))]
        let _ = shared;
        let limit = link.acquire_timeout * STATEMENT_TIMEOUTS;
        let fetched = tokio::time::timeout(limit, link.fetch_once_more_if_rested(sql, &same))
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "a lookup statement did not finish in time".into(),
                ))
            });
        match fetched {
            Ok(rows) => {
                if deliver(same, rows).is_err() {
                    link.connection = None;
                }
            }
            Err(e) => {
                link.connection = None;
                answer_all(same, &e);
            }
        }
    }
}

/// A worker's connection to the database, opened when first needed and again after it was
/// closed (set to `None`: a statement on it failed or stalled).
struct Link {
    connection: Option<PgConnection>,
    connect: PgConnectOptions,
    acquire_timeout: Duration,
}

impl Link {
    /// The connection, opened if there is none (within the acquire timeout, as a pool would;
    /// past it the database counts as unavailable).
    async fn open(&mut self) -> Result<&mut PgConnection, StoreError> {
        if self.connection.is_none() {
            let connecting = PgConnection::connect_with(&self.connect);
            let mut opened = tokio::time::timeout(self.acquire_timeout, connecting)
                .await
                .map_err(|_| StoreError::from(sqlx::Error::PoolTimedOut))??;
            if let Err(e) = sqlx::query(GENERIC_PLANS).execute(&mut opened).await {
                tracing::debug!(error = %e, "a lookup connection keeps the default plan cache mode");
            }
            self.connection = Some(opened);
        }
        self.connection
            .as_mut()
            .ok_or_else(|| StoreError::Internal("a connection just opened is missing".into()))
    }

    /// [`Self::fetch`], and once more on a new connection if it failed on one opened before:
    /// the server may have ended it while it rested (a restart, a failover, an outage now
    /// over), and lookups only read.
    async fn fetch_once_more_if_rested(
        &mut self,
        sql: &'static str,
        batch: &[Waiting],
    ) -> Result<Vec<PgRow>, StoreError> {
        let rested = self.connection.is_some();
        let fetched = self.fetch(sql, batch).await;
        if fetched.is_err() && rested {
            self.connection = None;
            return self.fetch(sql, batch).await;
        }
        fetched
    }

    /// Runs `sql` for the keys of `batch` (each key once), opening a connection if there is
    /// none.
    async fn fetch(
        &mut self,
        sql: &'static str,
        batch: &[Waiting],
    ) -> Result<Vec<PgRow>, StoreError> {
        let mut keys: Vec<&[u8]> = Vec::with_capacity(batch.len());
        for waiting in batch {
            if !keys.contains(&&*waiting.key) {
                keys.push(&waiting.key);
            }
        }
        let open = self.open().await?;
        Ok(sqlx::query(sql).bind(keys).fetch_all(open).await?)
    }
}

/// Answers each of `batch` with the row of its key, if any (a row goes to every lookup of
/// its key). A row without its key fails them all, and the caller closes the connection.
fn deliver(batch: Vec<Waiting>, rows: Vec<PgRow>) -> Result<(), ()> {
    let mut batch: Vec<Option<Waiting>> = batch.into_iter().map(Some).collect();
    for row in rows {
        let row = Arc::new(row);
        let Ok(key) = row.try_get::<&[u8], _>(0) else {
            let e = StoreError::corrupt("a lookup's row does not begin with its key");
            answer_all(batch.into_iter().flatten().collect(), &e);
            return Err(());
        };
        for slot in batch.iter_mut() {
            if slot.as_ref().is_some_and(|w| *w.key == *key) {
                if let Some(waiting) = slot.take() {
                    // A lookup that went away meanwhile does not need its answer.
                    let _ = waiting.answer.send(Ok(Some(row.clone())));
                }
            }
        }
    }
    for waiting in batch.into_iter().flatten() {
        let _ = waiting.answer.send(Ok(None));
    }
    Ok(())
}

fn answer_all(batch: Vec<Waiting>, error: &StoreError) {
    for waiting in batch {
        let _ = waiting.answer.send(Err(error.duplicate()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::{Backend, TestDb};
    use sqlx::Connection;
    use std::str::FromStr;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    const FIND: &str = "SELECT lookup.key AS lookup_key, name \
        FROM unnest($1::bytea[]) AS lookup(key), things WHERE things.key = lookup.key";

    #[derive(sqlx::FromRow, Debug, PartialEq)]
    struct Thing {
        name: String,
    }

    /// A database with `things` 1 to 100 (key: one byte, name: "thing N"), and lookups on it.
    async fn things(connections: u32) -> (TestDb, Arc<Lookups>) {
        things_waiting(connections, Duration::from_secs(30)).await
    }

    /// [`things`] with lookups that wait at most `acquire_timeout` in the queue.
    async fn things_waiting(connections: u32, acquire_timeout: Duration) -> (TestDb, Arc<Lookups>) {
        let db = TestDb::fresh(Backend::Postgres).await;
        let mut raw = PgConnection::connect(db.url()).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE things (key BYTEA PRIMARY KEY, name TEXT NOT NULL); \
             INSERT INTO things SELECT set_byte('\\x00'::bytea, 0, n), 'thing ' || n \
             FROM generate_series(1, 100) n",
        )
        .execute(&mut raw)
        .await
        .unwrap();
        let connect = PgConnectOptions::from_str(db.url()).unwrap();
        let lookups = Lookups::new(connections, connect, acquire_timeout);
        (db, Arc::new(lookups))
    }

    /// [`things_waiting`] with one worker, once its connection is open (retried: on a busy
    /// machine connecting can take longer than the short timeouts under test).
    async fn one_connected_worker(acquire_timeout: Duration) -> (TestDb, Arc<Lookups>) {
        let (db, lookups) = things_waiting(1, acquire_timeout).await;
        wait_until("the worker connected", async || {
            lookups.find::<Thing>(FIND, &[1]).await.is_ok()
        })
        .await;
        (db, lookups)
    }

    /// A connection holding `things` locked (in a transaction) until it commits.
    async fn locked_things(db: &TestDb) -> PgConnection {
        let mut blocker = PgConnection::connect(db.url()).await.unwrap();
        sqlx::raw_sql("BEGIN; LOCK TABLE things IN ACCESS EXCLUSIVE MODE")
            .execute(&mut blocker)
            .await
            .unwrap();
        blocker
    }

    async fn name_of(lookups: &Lookups, key: u8) -> Option<String> {
        let thing: Option<Thing> = lookups.find(FIND, &[key]).await.unwrap();
        thing.map(|t| t.name)
    }

    /// Until `ready` holds, looking every 10 ms for at most 60 s.
    async fn wait_until(what: &str, mut ready: impl AsyncFnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !ready().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn keys_queued_while_the_connection_is_busy_share_one_statement() {
        let (db, lookups) = things(1).await;
        // The first lookup takes the only connection and waits there for the table lock.
        let mut blocker = locked_things(&db).await;
        let first = tokio::spawn({
            let lookups = lookups.clone();
            async move { name_of(&lookups, 1).await }
        });
        wait_until("a lookup waiting for the lock", async || {
            sqlx::query("SELECT pg_stat_clear_snapshot()")
                .execute(&mut blocker)
                .await
                .unwrap();
            let (waiting,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut blocker)
            .await
            .unwrap();
            waiting > 0
        })
        .await;
        // Meanwhile five more queue: two of them for the same key, one for a missing one.
        let later: Vec<_> = [2u8, 3, 200, 3, 4]
            .into_iter()
            .map(|key| {
                let lookups = lookups.clone();
                tokio::spawn(async move { name_of(&lookups, key).await })
            })
            .collect();
        wait_until("five keys queued", async || {
            lookups.shared.queue().waiting.len() == 5
        })
        .await;
        sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();

        assert_eq!(first.await.unwrap().as_deref(), Some("thing 1"));
        let mut names = Vec::new();
        for lookup in later {
            names.push(lookup.await.unwrap());
        }
        let expected = ["thing 2", "thing 3", "", "thing 3", "thing 4"]
            .map(|n| (!n.is_empty()).then(|| n.to_owned()));
        assert_eq!(names, expected);
        // One for the first; one for the five others, the two of key 3 sharing its row.
        assert_eq!(lookups.shared.statements.load(Ordering::Relaxed), 2);
        assert!(lookups.shared.queue().waiting.is_empty());
    }

    /// The server process behind the worker's connection, found by a lookup.
    #[derive(sqlx::FromRow)]
    struct ServerProcess {
        pid: i32,
    }

    async fn backend_of(lookups: &Lookups) -> i32 {
        let found: Option<ServerProcess> = lookups
            .find(
                "SELECT lookup.key AS lookup_key, pg_backend_pid() AS pid \
                 FROM unnest($1::bytea[]) AS lookup(key), things WHERE things.key = lookup.key",
                &[1],
            )
            .await
            .unwrap();
        found.unwrap().pid
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failed_statement_fails_its_batch_and_the_next_runs_on_a_new_connection() {
        let (_db, lookups) = things(1).await;
        assert_eq!(name_of(&lookups, 7).await.as_deref(), Some("thing 7"));
        let first = backend_of(&lookups).await;
        assert_eq!(
            backend_of(&lookups).await,
            first,
            "the worker keeps its connection"
        );
        let missing: Result<Option<Thing>, _> = lookups
            .find(
                "SELECT lookup.key AS lookup_key FROM unnest($1::bytea[]) AS lookup(key), nothing",
                &[7],
            )
            .await;
        assert!(
            matches!(missing, Err(StoreError::Internal(_))),
            "{missing:?}"
        );
        assert_eq!(name_of(&lookups, 8).await.as_deref(), Some("thing 8"));
        assert_ne!(
            backend_of(&lookups).await,
            first,
            "the failed connection was closed"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_key_no_worker_can_take_within_the_acquire_timeout_is_unavailable() {
        let (db, lookups) = one_connected_worker(Duration::from_millis(300)).await;
        let mut blocker = locked_things(&db).await;
        let statements = lookups.shared.statements.load(Ordering::Relaxed);
        // The only worker waits for the lock with the first key; the second waits in the queue.
        let first = tokio::spawn({
            let lookups = lookups.clone();
            async move { lookups.find::<Thing>(FIND, &[1]).await }
        });
        wait_until("the first key taken", async || {
            lookups.shared.queue().waiting.is_empty()
                && lookups.shared.statements.load(Ordering::Relaxed) == statements + 1
        })
        .await;
        let second = lookups.find::<Thing>(FIND, &[2]).await;
        assert!(
            matches!(second, Err(StoreError::Unavailable(_))),
            "{second:?}"
        );
        assert!(
            lookups.shared.queue().waiting.is_empty(),
            "it left the queue"
        );
        // The first was taken before its timeout: it waits for its statement, however long.
        assert!(!first.is_finished());
        sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(60), first)
            .await
            .expect("the first lookup answered once the lock was released");
        assert_eq!(
            first.unwrap().unwrap().map(|t| t.name).as_deref(),
            Some("thing 1")
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_key_behind_a_stuck_worker_wakes_an_idle_one() {
        let (db, lookups) = things_waiting(2, Duration::from_secs(8)).await;
        let mut blocker = locked_things(&db).await;
        let stuck = tokio::spawn({
            let lookups = lookups.clone();
            async move { lookups.find::<Thing>(FIND, &[1]).await }
        });
        wait_until("the first key taken", async || {
            lookups.shared.queue().waiting.is_empty() && lookups.shared.queue().busy == 1
        })
        .await;
        // One worker is busy and few keys wait, so this key waits for it at first; a quarter of
        // the timeout later it wakes the other worker, which finds it (reading a row of
        // another table than the one locked).
        let found: Option<ServerProcess> = lookups
            .find(
                "SELECT lookup.key AS lookup_key, 0 AS pid FROM unnest($1::bytea[]) AS lookup(key)",
                &[2],
            )
            .await
            .unwrap();
        assert!(found.is_some());
        assert!(!stuck.is_finished());
        sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
        assert!(stuck.await.unwrap().unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn lookup_connections_use_generic_plans() {
        let (_db, lookups) = things(1).await;
        #[derive(sqlx::FromRow)]
        struct Setting {
            mode: String,
        }
        let found: Option<Setting> = lookups
            .find(
                "SELECT lookup.key AS lookup_key, current_setting('plan_cache_mode') AS mode \
                 FROM unnest($1::bytea[]) AS lookup(key)",
                &[1],
            )
            .await
            .unwrap();
        assert_eq!(found.unwrap().mode, "force_generic_plan");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_statement_past_its_time_limit_is_unavailable_and_its_connection_replaced() {
        let (db, lookups) = one_connected_worker(Duration::from_millis(500)).await;
        let first = backend_of(&lookups).await;
        let mut blocker = locked_things(&db).await;
        // Ten acquire timeouts (5 s) waiting for the lock, then unavailable.
        let stalled = lookups.find::<Thing>(FIND, &[2]).await;
        assert!(
            matches!(&stalled, Err(StoreError::Unavailable(why)) if why.to_string().contains("in time")),
            "{stalled:?}"
        );
        sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
        wait_until("the lookup answered again", async || {
            let found = lookups.find::<Thing>(FIND, &[2]).await;
            matches!(found, Ok(Some(thing)) if thing.name == "thing 2")
        })
        .await;
        assert_ne!(
            backend_of(&lookups).await,
            first,
            "the stalled connection was closed"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_connection_the_server_ended_is_replaced_for_the_batch_that_finds_it_ended() {
        let (db, lookups) = things(1).await;
        let first = backend_of(&lookups).await;
        let mut admin = PgConnection::connect(db.url()).await.unwrap();
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(first)
            .execute(&mut admin)
            .await
            .unwrap();
        wait_until("the backend gone", async || {
            sqlx::query("SELECT pg_stat_clear_snapshot()")
                .execute(&mut admin)
                .await
                .unwrap();
            let (alive,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1")
                    .bind(first)
                    .fetch_one(&mut admin)
                    .await
                    .unwrap();
            alive == 0
        })
        .await;
        // The lookup fails on the ended connection and is tried once more on a new one.
        assert_eq!(name_of(&lookups, 3).await.as_deref(), Some("thing 3"));
        assert_ne!(backend_of(&lookups).await, first);
    }

    #[test]
    fn workers_whose_runtime_ended_are_started_again() {
        let runtime = || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap()
        };
        let first = runtime();
        let (db, lookups) = first.block_on(things(2));
        assert_eq!(
            first.block_on(name_of(&lookups, 5)).as_deref(),
            Some("thing 5")
        );
        assert_eq!(lookups.shared.live.load(Ordering::Acquire), 2);
        drop(first);
        assert_eq!(lookups.shared.live.load(Ordering::Acquire), 0);
        assert_eq!(lookups.shared.queue().busy, 0);
        let second = runtime();
        assert_eq!(
            second.block_on(name_of(&lookups, 6)).as_deref(),
            Some("thing 6")
        );
        assert_eq!(lookups.shared.live.load(Ordering::Acquire), 2);
        second.block_on(async move { drop(db) });
    }

    /// Many lookups at once on two connections, every fourth cancelled at some point: each
    /// of the others gets its own key's answer, whichever lookup took it to the database.
    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_lookups_each_get_their_own_answer_even_when_others_are_cancelled() {
        let (_db, lookups) = things(2).await;
        let mut tasks = Vec::new();
        for i in 0..400u32 {
            let key = (i % 120 + 1) as u8;
            let lookups = lookups.clone();
            let task = tokio::spawn(async move { (key, name_of(&lookups, key).await) });
            if i % 4 == 0 {
                // Cancelled before it starts, while queued, or while its batch runs.
                for _ in 0..(i % 7) {
                    tokio::task::yield_now().await;
                }
                task.abort();
            } else {
                tasks.push(task);
            }
        }
        let all = async {
            for task in tasks {
                let (key, name) = task.await.unwrap();
                let expected = (key <= 100).then(|| format!("thing {key}"));
                assert_eq!(name, expected, "key {key}");
            }
        };
        tokio::time::timeout(Duration::from_secs(120), all)
            .await
            .expect("every lookup answered within 120 s");
        // What the cancelled ones queued is gone too (the next batch skips them).
        assert_eq!(name_of(&lookups, 1).await.as_deref(), Some("thing 1"));
        assert!(lookups.shared.queue().waiting.is_empty());
    }
}
