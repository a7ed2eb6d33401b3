//! The threads that serve HTTP: one per worker of the runtime `Server::run` is called on, each
//! with a single-threaded runtime of its own that serves the connections it is handed to their
//! end. One acceptor, on `run`'s runtime, hands each new connection to the next thread in
//! turn, so each serves as many as the others.
//!
//! On the multi-threaded runtime every request's task could move between workers: a worker
//! that found nothing to do parked, and was woken (a thread switch each way) when another had
//! work it could steal. Measured with `bench/run` on 2 cores shared with wrk, serving on two
//! single-threaded runtimes made a cached `/auth/check` 0.65-0.85 of the bare hello, against
//! 0.57-0.60 on the multi-threaded one. Threads that each accepted from the listener
//! themselves split wrk's 32 connections unevenly from run to run, and a row whose busier
//! thread had most of them lost up to a third: hence the one acceptor.
//!
//! With PostgreSQL, requests are served on `run`'s own multi-threaded runtime instead (through
//! the same acceptor). A sqlx PostgreSQL connection is a socket of the runtime that opened it,
//! whose reactor alone notices its answers: opened by a request on a serving thread, it made
//! every statement on it, from any thread, wait until that thread, busy serving, next polled
//! for events. Measured: cold checks kept the server's CPU below half busy, and in a full
//! PostgreSQL run 26 sign-ins of the `/login` flood were answered 503 without `Retry-After`
//! (so not by the Argon2 queue).
//!
//! Background work (the group commit, the invalidation feed, key uses, upkeep) stays on the
//! runtime `run` was called on. What a request starts and leaves running (a mail sent after
//! answering) runs on its serving thread's runtime, so a serving thread keeps running its
//! runtime after it stopped serving, until [`Serving`] is dropped: `Server::run` drops it only
//! after it has finished that work.

use crate::routes::frame::{Frame, MakeFrame};
use axum::serve::Listener;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// Where the serving threads are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Accept nothing more; finish the requests in flight.
    Stopping,
    /// Stop running the runtime (its remaining tasks are dropped) and end the thread.
    Released,
}

/// A connection handed to a serving thread: the socket (not yet tied to any runtime) and its
/// peer.
type Accepted = (std::net::TcpStream, SocketAddr);

/// The serving threads and their acceptor. Dropping it releases them (and, if they still
/// serve, stops them first) and closes the listener, so a `Server::run` that is itself dropped
/// leaves no thread or listener behind.
pub(crate) struct Serving {
    phase: Arc<watch::Sender<Phase>>,
    served: Vec<oneshot::Receiver<io::Result<()>>>,
    acceptor: tokio::task::AbortHandle,
}

impl Serving {
    /// Starts the acceptor of `listener` on the current runtime, and the serving: on
    /// `threads` serving threads, or with `None` on the current runtime itself.
    pub(crate) fn start(
        listener: TcpListener,
        frame: Frame,
        threads: Option<usize>,
    ) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (phase, _) = watch::channel(Phase::Serving);
        let phase = Arc::new(phase);
        let count = threads.unwrap_or(1).max(1);
        let mut served = Vec::with_capacity(count);
        let mut handoffs = Vec::with_capacity(count);
        for n in 0..count {
            let (done, finished) = oneshot::channel();
            let (handoff, incoming) = mpsc::unbounded_channel();
            let handed = Handed { incoming, local };
            let (frame, phase) = (frame.clone(), phase.subscribe());
            if threads.is_some() {
                std::thread::Builder::new()
                    .name(format!("gatehouse-serve-{n}"))
                    .spawn(move || serve_on_this_thread(handed, frame, phase, done))?;
            } else {
                tokio::spawn(serve(handed, frame, phase, done));
            }
            served.push(finished);
            handoffs.push(handoff);
        }
        let acceptor = tokio::spawn(hand_out(listener, handoffs, phase.subscribe()));
        Ok(Serving {
            phase,
            served,
            acceptor: acceptor.abort_handle(),
        })
    }

    /// A future that stops the serving threads (they finish the requests in flight) when it
    /// is run: what the shutdown signal does.
    pub(crate) fn stopper(&self) -> impl Future<Output = ()> + Send + 'static {
        let phase = self.phase.clone();
        async move {
            phase.send_if_modified(stop);
        }
    }

    /// Waits until every thread has stopped serving; the first error any reported.
    pub(crate) async fn served(&mut self) -> io::Result<()> {
        let mut outcome = Ok(());
        for served in self.served.drain(..) {
            let result = served
                .await
                .unwrap_or_else(|_| Err(io::Error::other("a serving thread ended early")));
            if let (Ok(()), Err(e)) = (&outcome, result) {
                outcome = Err(e);
            }
        }
        outcome
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.phase.send_replace(Phase::Released);
    }
}

/// Moves `phase` from serving to stopping; true if it changed.
fn stop(phase: &mut Phase) -> bool {
    if *phase == Phase::Serving {
        *phase = Phase::Stopping;
        true
    } else {
        false
    }
}

/// Accepts connections until the threads stop serving, handing each to the next thread.
async fn hand_out(
    mut listener: TcpListener,
    handoffs: Vec<mpsc::UnboundedSender<Accepted>>,
    mut phase: watch::Receiver<Phase>,
) {
    let mut turn = handoffs.iter().cycle();
    loop {
        // axum's accept: it retries, and waits a second after an error such as EMFILE.
        let (tcp, peer) = tokio::select! {
            accepted = Listener::accept(&mut listener) => accepted,
            _ = phase.wait_for(|p| *p != Phase::Serving) => return,
        };
        // Each answer goes out as soon as it is written: a proxied body that streams in
        // pieces (server-sent events, a streamable MCP answer) would otherwise wait for the
        // client's delayed ACK (up to 40 ms) before each small piece after the first (Nagle).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY could not be set on a connection");
        }
        let handed = match tcp.into_std() {
            Ok(tcp) => (tcp, peer),
            Err(e) => {
                tracing::warn!(error = %e, "an accepted connection could not be handed over");
                continue;
            }
        };
        // A thread that ended has no receiver: its turn's connection is closed.
        if let Some(handoff) = turn.next() {
            let _ = handoff.send(handed);
        }
    }
}

/// The connections handed to one serving thread, as axum's listener.
struct Handed {
    incoming: mpsc::UnboundedReceiver<Accepted>,
    local: SocketAddr,
}

impl Listener for Handed {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            // Once the acceptor has stopped, nothing more comes; the graceful shutdown ends
            // the serving.
            let Some((tcp, peer)) = self.incoming.recv().await else {
                return std::future::pending().await;
            };
            match TcpStream::from_std(tcp) {
                Ok(tcp) => return (tcp, peer),
                Err(e) => tracing::warn!(error = %e, "a handed connection could not be served"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

fn serve_on_this_thread(
    handed: Handed,
    frame: Frame,
    phase: watch::Receiver<Phase>,
    done: oneshot::Sender<io::Result<()>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = done.send(Err(e));
            return;
        }
    };
    runtime.block_on(serve(handed, frame, phase, done));
}

/// Serves what is handed over until stopped; then keeps its runtime running (for the tasks
/// requests left) until released.
async fn serve(
    handed: Handed,
    frame: Frame,
    mut phase: watch::Receiver<Phase>,
    done: oneshot::Sender<io::Result<()>>,
) {
    let mut stopping = phase.clone();
    let served = axum::serve(handed, MakeFrame(frame))
        .with_graceful_shutdown(async move {
            let _ = stopping.wait_for(|p| *p != Phase::Serving).await;
        })
        .await;
    let _ = done.send(served);
    let _ = phase.wait_for(|p| *p == Phase::Released).await;
}
