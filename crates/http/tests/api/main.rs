//! HTTP behaviour, over a real socket: each test starts the server on 127.0.0.1 with an
//! OS-chosen port and a fresh database, and talks to it with reqwest.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod helpers;
mod ops;
