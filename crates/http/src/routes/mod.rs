//! The router: every route module contributes its paths.

mod ops;

use crate::error::ApiError;
use crate::AppState;
use axum::Router;

/// Gatehouse's complete router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(ops::router())
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
}
