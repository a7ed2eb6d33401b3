//! What every handler can reach.

use gatehouse_service::Gatehouse;
use std::sync::Arc;

/// Shared handler state: the use cases and the deployment's issuer URL.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub gatehouse: Gatehouse,
    /// The public URL everything is served under (RFC 8414 `issuer`).
    pub issuer: Arc<str>,
}

impl AppState {
    /// Builds the state for a server whose public URL is `issuer`.
    pub fn new(gatehouse: Gatehouse, issuer: String) -> Self {
        Self {
            gatehouse,
            issuer: issuer.into(),
        }
    }
}
