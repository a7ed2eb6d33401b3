//! Group commit of the writes that store new tokens. Every issuance of a new family with one
//! access token (client credentials, account and embed tokens), every code exchange and every
//! refresh-token rotation is handed to a writer task, which commits whatever has queued up in
//! a single transaction ([`gatehouse_store::TokenStore::commit_writes`]: a few multi-row
//! statements for the whole batch) and then answers each caller. A token is answered only
//! after its transaction committed, so it survives `kill -9`; the writers turn many small
//! commits into few large ones, which is what SQLite's single writer and PostgreSQL's WAL
//! flush need.
//!
//! SQLite gets one writer; PostgreSQL several ([`gatehouse_store::Store::write_concurrency`]),
//! whose commits it flushes together, each with its own queue, taken in turn.
//!
//! Each caller learns what happened to its own write: a family minted by a secret key revoked
//! meanwhile is not stored; a code or refresh token presented twice is a replay or reuse
//! exactly as when the two come one after the other; a batch that fails because one write
//! refers to something deleted meanwhile, or that PostgreSQL aborted as a deadlock (a batch
//! of one write too), is committed again one write at a time by the store, so only that
//! write's caller gets the error; any other failure of a batch (the
//! database is down) is every one of its callers' error, and none of them was answered a
//! token.

use crate::Gatehouse;
use gatehouse_core::secret::{PlainSecret, SecretKind};
use gatehouse_core::token::FamilyId;
use gatehouse_store::{
    Issue, IssueWrite, RedeemWrite, Redemption, RotateWrite, Rotation, Store, StoreError, Writes,
};
use rand::rngs::OsRng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;
/// Writes waiting for a writer before callers wait for room.
const QUEUE: usize = 4096;

/// Where a caller waits for what its write of kind `T` did.
type Answer<T> = oneshot::Sender<Result<T, StoreError>>;

/// A queued write with its caller's answer, typed by the write's kind.
pub(crate) enum Pending {
    Issue(IssueWrite, Answer<Issue>),
    Redeem(RedeemWrite, Answer<Redemption>),
    Rotate(RotateWrite, Answer<Rotation>),
}

/// A kind of write the group commit takes, with what the store answers for it.
pub(crate) trait Queued: Sized {
    /// What the write did.
    type Outcome;
    /// The write queued with the answer to its caller.
    fn pending(self, done: Answer<Self::Outcome>) -> Pending;
}

impl Queued for IssueWrite {
    type Outcome = Issue;
    fn pending(self, done: Answer<Issue>) -> Pending {
        Pending::Issue(self, done)
    }
}

impl Queued for RedeemWrite {
    type Outcome = Redemption;
    fn pending(self, done: Answer<Redemption>) -> Pending {
        Pending::Redeem(self, done)
    }
}

impl Queued for RotateWrite {
    type Outcome = Rotation;
    fn pending(self, done: Answer<Rotation>) -> Pending {
        Pending::Rotate(self, done)
    }
}

/// The handle callers queue their writes on: one queue per writer (as many as the store can
/// commit at once), taken in turn. The writers stop when every handle is gone.
pub(crate) struct GroupCommit {
    queues: Vec<mpsc::Sender<Pending>>,
    next: AtomicUsize,
}

impl GroupCommit {
    /// Starts the writers for `store` (on the current Tokio runtime).
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let queues = (0..store.write_concurrency().max(1))
            .map(|_| {
                let (queue, incoming) = mpsc::channel(QUEUE);
                tokio::spawn(write_batches(store.clone(), incoming));
                queue
            })
            .collect();
        Self {
            queues,
            next: AtomicUsize::new(0),
        }
    }

    fn queue(&self) -> Option<&mpsc::Sender<Pending>> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        self.queues.get(turn % self.queues.len().max(1))
    }
}

/// The answers to a batch's callers, kind by kind in the order of its [`Writes`].
#[derive(Default)]
struct Answers {
    issues: Vec<Answer<Issue>>,
    redeems: Vec<Answer<Redemption>>,
    rotations: Vec<Answer<Rotation>>,
}

/// One writer: takes what waits in its queue, commits it, answers each caller, and takes
/// again. The batch owns the writes (nothing is copied); the answers wait beside it.
async fn write_batches(store: Arc<dyn Store>, mut incoming: mpsc::Receiver<Pending>) {
    let mut received = Vec::with_capacity(MAX_BATCH);
    while incoming.recv_many(&mut received, MAX_BATCH).await > 0 {
        let mut writes = Writes::default();
        let mut answers = Answers::default();
        for pending in received.drain(..) {
            match pending {
                Pending::Issue(write, done) => {
                    writes.issues.push(write);
                    answers.issues.push(done);
                }
                Pending::Redeem(write, done) => {
                    writes.redeems.push(write);
                    answers.redeems.push(done);
                }
                Pending::Rotate(write, done) => {
                    writes.rotations.push(write);
                    answers.rotations.push(done);
                }
            }
        }
        match store.commit_writes(&writes).await {
            Ok(outcomes) => {
                answer(answers.issues, outcomes.issues);
                answer(answers.redeems, outcomes.redeems);
                answer(answers.rotations, outcomes.rotations);
            }
            Err(e) => {
                fail(answers.issues, &e);
                fail(answers.redeems, &e);
                fail(answers.rotations, &e);
            }
        }
    }
}

/// Answers each caller with what its write did.
fn answer<T>(answers: Vec<Answer<T>>, outcomes: Vec<Result<T, StoreError>>) {
    if answers.len() != outcomes.len() {
        let e = StoreError::Internal("the store answered for another number of writes".into());
        return fail(answers, &e);
    }
    for (done, outcome) in answers.into_iter().zip(outcomes) {
        // A caller that gave up (its request was dropped) no longer listens.
        let _ = done.send(outcome);
    }
}

/// Answers each caller of a failed batch with its failure.
fn fail<T>(answers: Vec<Answer<T>>, e: &StoreError) {
    for done in answers {
        let _ = done.send(Err(e.duplicate()));
    }
}

impl Gatehouse {
    /// A new family's ID, after those this node made before it
    /// ([`FamilyId::generate_ordered`]): the indexes keyed by family ID grow at their end.
    pub(crate) fn new_family_id(&self) -> FamilyId {
        let sequence = self.family_sequence.fetch_add(1, Ordering::Relaxed);
        FamilyId::generate_ordered(&mut OsRng, self.clock.now(), sequence)
    }

    /// A fresh secret of `kind`, stamped with this node's clock ([`PlainSecret::generate`]):
    /// its stored key goes just after those of the secrets made before it.
    pub(crate) fn new_secret(&self, kind: SecretKind) -> PlainSecret {
        let now = self.clock.now_millis();
        PlainSecret::generate(&mut OsRng, kind, &self.settings.region, now)
    }

    /// The group commit, its writers started (on the current runtime) at the first call.
    pub(crate) fn group_commit(&self) -> &GroupCommit {
        self.group_commit
            .get_or_init(|| GroupCommit::start(self.store.clone()))
    }

    /// Commits `write` through the group commit; returns once it is committed (or refused:
    /// see [`Issue`], [`Redemption`], [`Rotation`]) with what it did.
    pub(crate) async fn commit_write<W: Queued>(&self, write: W) -> Result<W::Outcome, StoreError> {
        let writer = self.group_commit();
        let (done, answer) = oneshot::channel();
        let pending = write.pending(done);
        let lost = || StoreError::Unavailable("the token writer stopped".into());
        let queue = writer.queue().ok_or_else(lost)?;
        self.timed(crate::metrics::StoreOp::TokenIssue, async {
            queue.send(pending).await.map_err(|_| lost())?;
            answer.await.map_err(|_| lost())?
        })
        .await
    }
}
