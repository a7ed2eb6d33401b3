//! The threads that serve HTTP: one per worker of the runtime `Server::run` is called on, each
//! with a single-threaded runtime of its own that accepts from the one listener and serves
//! each connection it accepted to its end, as nginx's worker processes do.
//!
//! On the multi-threaded runtime every request's task could move between workers: a worker
//! that found nothing to do parked, and was woken (a thread switch each way) when another had
//! work it could steal. Measured with `bench/run` on 2 cores shared with wrk, serving on two
//! single-threaded runtimes made a cached `/auth/check` 0.78-0.97 of the bare hello, against
//! 0.63-0.72 on the multi-threaded one. Background work (the group commit, the invalidation
//! feed, key uses, upkeep) stays on the runtime `run` was called on.
//!
//! What a request starts and leaves running (a mail sent after answering, a PostgreSQL lookup
//! worker) runs on its serving thread's runtime. So a serving thread keeps running its runtime
//! after it stopped serving, until [`Serving`] is dropped: `Server::run` drops it only after it
//! has finished that work.

use crate::routes::frame::{Frame, MakeFrame};
use axum::serve::ListenerExt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// Where the serving threads are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Accept nothing more; finish the requests in flight.
    Stopping,
    /// Stop running the runtime (its remaining tasks are dropped) and end the thread.
    Released,
}

/// The serving threads. Dropping it releases them (and, if they still serve, stops them
/// first), so a `Server::run` that is itself dropped leaves no thread or listener behind.
pub(crate) struct Serving {
    phase: Arc<watch::Sender<Phase>>,
    served: Vec<oneshot::Receiver<io::Result<()>>>,
}

impl Serving {
    /// Starts `threads` serving threads on `listener`.
    pub(crate) fn start(
        listener: std::net::TcpListener,
        frame: Frame,
        threads: usize,
    ) -> io::Result<Self> {
        let (phase, _) = watch::channel(Phase::Serving);
        let mut serving = Serving {
            phase: Arc::new(phase),
            served: Vec::with_capacity(threads),
        };
        for n in 0..threads.max(1) {
            let (done, served) = oneshot::channel();
            let listener = listener.try_clone()?;
            let (frame, phase) = (frame.clone(), serving.phase.subscribe());
            std::thread::Builder::new()
                .name(format!("gatehouse-serve-{n}"))
                .spawn(move || serve_on_this_thread(listener, frame, phase, done))?;
            serving.served.push(served);
        }
        Ok(serving)
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

fn serve_on_this_thread(
    listener: std::net::TcpListener,
    frame: Frame,
    mut phase: watch::Receiver<Phase>,
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
    runtime.block_on(async move {
        let mut stopping = phase.clone();
        let served = match TcpListener::from_std(listener) {
            Ok(listener) => {
                // Each answer goes out as soon as it is written: a proxied body that streams
                // in pieces (server-sent events, a streamable MCP answer) would otherwise wait
                // for the client's delayed ACK (up to 40 ms) before each small piece after
                // the first (Nagle).
                let listener = listener.tap_io(|tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "TCP_NODELAY could not be set on a connection");
                    }
                });
                axum::serve(listener, MakeFrame(frame))
                    .with_graceful_shutdown(async move {
                        let _ = stopping.wait_for(|p| *p != Phase::Serving).await;
                    })
                    .await
            }
            Err(e) => Err(e),
        };
        let _ = done.send(served);
        let _ = phase.wait_for(|p| *p == Phase::Released).await;
    });
}
