//! Group commit of issued tokens. Every issuance that stores a new family with one access
//! token (client credentials, account and embed tokens) hands it to a writer task, which
//! stores whatever has queued up in a single transaction and then answers each caller. A
//! token is answered only after its transaction committed, so it survives `kill -9`; the
//! writers turn many small commits into few large ones, which is what SQLite's single writer
//! and PostgreSQL's WAL flush need. SQLite gets one writer; PostgreSQL several, because it
//! flushes concurrent commits together. Each caller learns what happened to its own family:
//! one minted by a secret key revoked meanwhile is not stored, and a batch that fails because
//! one family refers to something deleted meanwhile is stored again one family at a time, so
//! only that family's caller gets the error.

use crate::Gatehouse;
use gatehouse_core::token::{AccessToken, FamilyId, TokenFamily};
use gatehouse_store::{Issue, Store, StoreError};
use rand::rngs::OsRng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most issuances stored in one transaction.
const MAX_BATCH: usize = 512;
/// Issuances waiting for the writer before callers wait for room.
const QUEUE: usize = 4096;

struct Pending {
    issued: (TokenFamily, AccessToken),
    done: oneshot::Sender<Result<Issue, StoreError>>,
}

/// The handle callers queue their issuances on: one queue per writer (as many as the store
/// can commit at once), taken in turn. The writers stop when every handle is gone.
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

async fn write_batches(store: Arc<dyn Store>, mut incoming: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while incoming.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let rows: Vec<(TokenFamily, AccessToken)> =
            batch.iter().map(|p| p.issued.clone()).collect();
        match store.insert_families_with_tokens(&rows).await {
            Ok(outcome) if outcome.len() == batch.len() => {
                for (pending, issue) in batch.drain(..).zip(outcome) {
                    // A caller that gave up (its request was dropped) no longer listens.
                    let _ = pending.done.send(Ok(issue));
                }
            }
            Ok(_) => {
                let e = StoreError::Internal("the store answered for another number".into());
                for pending in batch.drain(..) {
                    let _ = pending.done.send(Err(shared(&e)));
                }
            }
            // An app or account deleted while its token was queued fails the whole statement:
            // store the others without it.
            Err(StoreError::NotFound(_)) if batch.len() > 1 => {
                for pending in batch.drain(..) {
                    let (family, access) = &pending.issued;
                    let answer = store.insert_family_with_token(family, access).await;
                    let _ = pending.done.send(answer);
                }
            }
            Err(e) => {
                for pending in batch.drain(..) {
                    let _ = pending.done.send(Err(shared(&e)));
                }
            }
        }
    }
}

/// The same failure for each caller of a failed batch.
fn shared(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound(what) => StoreError::NotFound(what),
        StoreError::Conflict(what) => StoreError::Conflict(what),
        StoreError::Unavailable(source) => StoreError::Unavailable(source.to_string().into()),
        StoreError::BadUrl(message) => StoreError::BadUrl(message.clone()),
        StoreError::Internal(source) => StoreError::Internal(source.to_string().into()),
    }
}

impl Gatehouse {
    /// A new family's ID, after those this node made before it
    /// ([`FamilyId::generate_ordered`]): the indexes keyed by family ID grow at their end.
    pub(crate) fn new_family_id(&self) -> FamilyId {
        let sequence = self.family_sequence.fetch_add(1, Ordering::Relaxed);
        FamilyId::generate_ordered(&mut OsRng, self.clock.now(), sequence)
    }

    /// Stores a new family with its access token through the group commit; returns once it
    /// is committed (or refused: see [`Issue`]).
    pub(crate) async fn store_issued(
        &self,
        family: TokenFamily,
        access: AccessToken,
    ) -> Result<Issue, StoreError> {
        let writer = self
            .group_commit
            .get_or_init(|| GroupCommit::start(self.store.clone()));
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            issued: (family, access),
            done,
        };
        let lost = || StoreError::Unavailable("the token writer stopped".into());
        let queue = writer.queue().ok_or_else(lost)?;
        self.timed(crate::metrics::StoreOp::TokenIssue, async {
            queue.send(pending).await.map_err(|_| lost())?;
            answer.await.map_err(|_| lost())?
        })
        .await
    }
}
