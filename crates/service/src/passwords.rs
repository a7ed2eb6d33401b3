//! Password hashing and checking, bounded: each Argon2id run takes ~19 MiB and tens of
//! milliseconds of CPU, and sign-up, reset, setup and sign-in are all reachable without an
//! account. At most as many run at once as there are CPUs, so checks of API credentials
//! always find a core; a few more may wait their turn, and past that the request is turned
//! away at once ([`ServiceError::Busy`]) rather than queued without bound.

use crate::ServiceError;
use gatehouse_core::password::{Argon2Memory, Password, PasswordHash};
use gatehouse_core::secret::{PlainSecret, SecretKind};
use rand::rngs::OsRng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::{Mutex, OwnedMutexGuard, Semaphore};

/// How long a client turned away should wait before trying again.
const BUSY_RETRY_AFTER_SECS: i64 = 1;

/// Work for an Argon2 thread, in that thread's Argon2 memory; what it returns sends the
/// answer to the caller.
type Job = Box<dyn FnOnce(&mut Argon2Memory) -> Box<dyn FnOnce() + Send> + Send>;

/// The bound on Argon2id work: a fixed set of threads, one per CPU, and `admitted` permits
/// for the runs in progress plus those waiting. Fixed threads also bound memory: each thread
/// hashes in one buffer of Argon2 memory (~19 MiB) that it keeps while work is waiting and
/// gives back to the system when none is ([`Argon2Memory`]), where a buffer allocated per
/// run and freed after piled up in glibc's per-thread arenas (three or four of them per arena
/// under a flood of sign-ins), and the runtime's blocking pool (hundreds of threads over
/// time) would have kept them in each of many arenas.
struct Argon2Queue {
    admitted: Arc<Semaphore>,
    jobs: std::sync::mpsc::Sender<Job>,
    /// Jobs sent and not yet taken by a thread.
    waiting: Arc<AtomicUsize>,
}

impl Argon2Queue {
    fn new(cpus: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        let waiting = Arc::new(AtomicUsize::new(0));
        for i in 0..cpus.max(1) {
            let (queue, waiting) = (queue.clone(), waiting.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work_through(&queue, &waiting));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start an Argon2 thread");
            }
        }
        Self {
            // Each run takes tens of milliseconds, so the last one admitted waits well under
            // a second.
            admitted: Arc::new(Semaphore::new(cpus * 4)),
            jobs,
            waiting,
        }
    }

    /// Runs one Argon2id computation on the Argon2 threads, or refuses it when the queue is
    /// full. The permit goes with the work, so a caller that gives up early does not make
    /// room before the work is done.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Argon2Memory) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let admitted =
            self.admitted
                .clone()
                .try_acquire_owned()
                .map_err(|_| ServiceError::Busy {
                    retry_after_secs: BUSY_RETRY_AFTER_SECS,
                })?;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let result = work(memory);
            Box::new(move || {
                drop(admitted);
                let _ = answer.send(result);
            })
        });
        self.waiting.fetch_add(1, Ordering::AcqRel);
        self.jobs.send(job).map_err(|_| {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            ServiceError::Internal("the Argon2 threads are gone".into())
        })?;
        answered
            .await
            .map_err(|e| ServiceError::Internal(Box::new(e)))
    }
}

/// An Argon2 thread: runs jobs, each in the thread's one Argon2 memory, until the queue
/// closes; when no job is waiting after one, it gives the memory back. A job that panics
/// loses its answer (its caller gets an internal error), not the thread.
fn work_through(queue: &std::sync::Mutex<std::sync::mpsc::Receiver<Job>>, waiting: &AtomicUsize) {
    let mut memory = Argon2Memory::default();
    loop {
        let next = match queue.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else {
            return;
        };
        waiting.fetch_sub(1, Ordering::AcqRel);
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut memory)));
        // Decided before the caller hears back, so what it sends next counts as waiting.
        if waiting.load(Ordering::Acquire) == 0 {
            memory.release();
        }
        if let Ok(answer) = answer {
            answer();
        }
    }
}

fn argon2_queue() -> &'static Argon2Queue {
    static QUEUE: OnceLock<Argon2Queue> = OnceLock::new();
    QUEUE.get_or_init(|| {
        Argon2Queue::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        )
    })
}

async fn bounded<T: Send + 'static>(
    work: impl FnOnce(&mut Argon2Memory) -> T + Send + 'static,
) -> Result<T, ServiceError> {
    argon2_queue().run(work).await
}

/// The Argon2id hash of a new password.
pub(crate) async fn hash_password(password: Password) -> Result<PasswordHash, ServiceError> {
    bounded(move |memory| password.hash_in(&mut OsRng, memory))
        .await?
        .map_err(|e| ServiceError::Internal(Box::new(e)))
}

/// An Argon2id hash of nothing anyone knows, checked when the email is unknown so that a
/// failed sign-in takes as long whether or not the account exists. Made at first use, on an
/// Argon2 thread, in its memory.
fn dummy_hash(memory: &mut Argon2Memory) -> Option<&'static PasswordHash> {
    static DUMMY: OnceLock<Option<PasswordHash>> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let secret =
                PlainSecret::generate(&mut OsRng, SecretKind::Session, &Default::default(), 0);
            Password::parse(secret.expose())
                .ok()?
                .hash_in(&mut OsRng, memory)
                .ok()
        })
        .as_ref()
}

/// Whether `candidate` matches `hash`; with no hash (unknown user) a dummy is checked and the
/// answer is no.
pub(crate) async fn verify_password(
    hash: Option<PasswordHash>,
    candidate: String,
) -> Result<bool, ServiceError> {
    let known = hash.is_some();
    let matches = bounded(move |memory| match &hash {
        Some(hash) => hash.verify_in(&candidate, memory),
        None => dummy_hash(memory).is_some_and(|dummy| dummy.verify_in(&candidate, memory)),
    })
    .await?;
    Ok(known && matches)
}

/// One lock per email address: sign-in attempts for the same address run one at a time on a
/// node, so a burst of parallel guesses cannot all pass the throttle before the first
/// failures are recorded.
#[derive(Default)]
pub(crate) struct AddressLocks {
    locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

/// Entries kept before idle ones are dropped.
const IDLE_LOCKS_KEPT: usize = 1024;

impl AddressLocks {
    pub(crate) async fn lock(&self, address: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if locks.len() > IDLE_LOCKS_KEPT {
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks.entry(address.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn argon2_memory_is_kept_while_work_waits_and_given_back_after() {
        let queue = Arc::new(Argon2Queue::new(1));
        let password = Password::parse("correct horse").unwrap();
        let hash = queue
            .run(move |memory| password.hash_in(&mut OsRng, memory))
            .await
            .unwrap()
            .unwrap();
        // Nothing was waiting after that run: the memory went back.
        let held = queue.run(|memory| memory.bytes()).await.unwrap();
        assert_eq!(held, 0, "given back when no work waits");
        // A run that finds another waiting keeps its memory for it.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let first = {
            let (queue, hash, started) = (queue.clone(), hash.clone(), started.clone());
            tokio::spawn(async move {
                queue
                    .run(move |memory| {
                        let matches = hash.verify_in("correct horse", memory);
                        started.store(true, Ordering::Release);
                        let _ = gate.recv();
                        matches
                    })
                    .await
            })
        };
        // The second run is sent only once the first holds the thread, so it waits.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !started.load(Ordering::Acquire) {
            assert!(std::time::Instant::now() < deadline, "never started");
            tokio::task::yield_now().await;
        }
        let second = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.run(|memory| memory.bytes()).await })
        };
        while queue.waiting.load(Ordering::Acquire) == 0 {
            assert!(std::time::Instant::now() < deadline, "never queued");
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        assert!(first.await.unwrap().unwrap());
        assert_eq!(
            second.await.unwrap().unwrap(),
            19 * 1024 * 1024,
            "kept for the waiting run"
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        assert!(!verify_password(None, "anything".into()).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_turns_work_away_at_once() {
        let queue = Arc::new(Argon2Queue::new(1));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        // One running (blocked on the gate) and three waiting fill the queue of four.
        let mut admitted = Vec::new();
        for _ in 0..4 {
            let (queue, gate) = (queue.clone(), gate.clone());
            admitted.push(tokio::spawn(async move {
                queue
                    .run(move |_| {
                        let _ = gate.lock().unwrap().recv();
                    })
                    .await
            }));
        }
        // Wait until all four hold an admission, however slowly they were scheduled.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while queue.admitted.available_permits() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "work was not admitted"
            );
            tokio::task::yield_now().await;
        }
        let refused = queue.run(|_| ()).await;
        assert!(
            matches!(
                refused,
                Err(ServiceError::Busy {
                    retry_after_secs: 1
                })
            ),
            "{refused:?}"
        );
        for _ in 0..4 {
            release.send(()).unwrap();
        }
        for task in admitted {
            task.await.unwrap().unwrap();
        }
        assert!(
            queue.run(|_| ()).await.is_ok(),
            "room again once the work is done"
        );
    }

    #[tokio::test]
    async fn attempts_for_one_address_wait_for_each_other() {
        let locks = Arc::new(AddressLocks::default());
        let first = locks.lock("a@example.com").await;
        let other = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.lock("b@example.com"),
        )
        .await;
        assert!(other.is_ok(), "another address is not blocked");
        let same = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.lock("a@example.com"),
        )
        .await;
        assert!(same.is_err(), "the same address waits");
        drop(first);
        assert!(tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.lock("a@example.com")
        )
        .await
        .is_ok());
    }
}
