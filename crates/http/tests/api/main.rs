//! HTTP behaviour, over a real socket: each test starts the server on 127.0.0.1 with an
//! OS-chosen port and a fresh database, and talks to it with real clients (reqwest, and the
//! `oauth2` crate for the token endpoint; Authlib and Node.js's openid-client and MCP SDK for
//! OpenID Connect and MCP).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod abuse;
mod account_tokens;
mod admin;
mod admin_api;
mod admin_manage;
mod auth_check;
mod authorize;
mod gateway;
mod gateway_pool;
mod gateway_tls;
mod helpers;
mod mcp;
mod node;
mod oauth_flow;
mod observability;
mod oidc;
mod ops;
mod paths;
mod people;
mod portal;
mod protected_resource;
mod registration;
mod retention;
mod revocation;
mod tokens;
mod user_admin;
