//! The `{"message": …}` error shape of Gatehouse's non-OAuth JSON endpoints. The mapping from
//! error to status lives here and nowhere else.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answered as `{"message": …}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiError {
    /// 404: no route, no such object.
    NotFound,
    /// 503: the credential store cannot be reached.
    Unavailable,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "Not Found"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        };
        (status, Json(serde_json::json!({ "message": message }))).into_response()
    }
}
