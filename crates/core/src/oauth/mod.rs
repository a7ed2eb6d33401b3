//! OAuth 2.0 and OpenID Connect rules (RFC 6749, 7636, 7009, 7662, 8414, 8707, 9728; OIDC Core 1.0): what a request means and whether it is
//! allowed, decided without I/O. The service performs what these functions decide.

pub mod authorize;
pub mod error;
pub mod id_token;
pub mod metadata;
pub mod pkce;
pub mod registration;
pub mod resource;
pub mod token_request;

pub use error::{OAuthError, OAuthErrorCode};
pub use token_request::{GrantType, TokenRequest};
