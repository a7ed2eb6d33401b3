//! Request parsing that refuses what the standards refuse, with our error shapes.

pub mod client_address;
pub mod client_auth;
pub mod form;
pub mod session;
pub mod signed_in;
