//! Browser tests: the server-rendered pages in real headless Chromium (Debian's `chromium`,
//! driven through `chromedriver` with WebDriver), against the real `gatehouse serve` binary
//! on a fresh SQLite database.
//!
//! `harness` starts everything (see its docs); each test module drives one user journey.
//! Screenshots land in `target/screenshots/NAME-desktop.png` and `NAME-phone.png`. Chromium
//! and chromedriver must be installed (`./scripts/test-deps`): without them these tests fail,
//! they never skip. Run them alone with `cargo test -p gatehouse --test browser`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../support/mod.rs"]
mod support;

mod harness;
mod oauth;
mod portal;
