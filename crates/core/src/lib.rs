//! Gatehouse's domain core: the product's concepts (accounts, applications, secrets, tokens,
//! scopes) as validated types, and the rules and decisions over them. Nothing here performs
//! I/O: time and randomness are passed in, so every rule can be tested without a server or a
//! database.
#![warn(missing_docs)]

pub mod account;
pub mod admin_key;
pub mod application;
pub mod audit;
pub mod client_secret;
pub mod error;
pub mod gateway;
pub mod ids;
pub mod invalidation;
pub mod link;
pub mod name;
pub mod oauth;
pub mod page;
pub mod password;
pub mod paths;
pub mod region;
pub mod scope;
pub mod secret;
pub mod signing_key;
pub mod throttle;
pub mod time;
pub mod token;
pub mod user;

pub use error::{CredentialError, TransitionError, ValidationError};
pub use time::Timestamp;
