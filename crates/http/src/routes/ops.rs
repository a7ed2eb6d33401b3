//! Operational endpoints: liveness, readiness and metrics.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use gatehouse_core::paths::{HEALTHZ, METRICS, READYZ};
use gatehouse_service::metrics::StoreOp;
use serde::Serialize;
use std::time::Duration;

/// Readiness waits at most this long for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route(HEALTHZ, get(healthz_get))
        .route(READYZ, get(readyz_get))
        .route(METRICS, get(super::observe::metrics_get))
}

/// The body of both probes' success.
#[derive(Debug, Serialize)]
struct ProbeStatus {
    /// `ok` when alive, `ready` when ready.
    status: &'static str,
}

/// Alive: the process serves HTTP. Touches nothing else, so it is also the benchmark ceiling.
/// The body is `ProbeStatus { status: "ok" }` as `Json` would write it, written once (a test
/// holds them equal): nothing is serialized or allocated per probe.
async fn healthz_get() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        HEALTHZ_BODY,
    )
}

/// The body of `/healthz`.
const HEALTHZ_BODY: &str = r#"{"status":"ok"}"#;

/// Ready: the database answers within [`READY_TIMEOUT`]; 503 otherwise.
async fn readyz_get(State(state): State<AppState>) -> Result<Json<ProbeStatus>, ApiError> {
    let started = std::time::Instant::now();
    let ping = tokio::time::timeout(READY_TIMEOUT, state.gatehouse.store().ping()).await;
    state
        .gatehouse
        .metrics()
        .store_call(StoreOp::Ping, started.elapsed());
    match ping {
        Ok(Ok(())) => Ok(Json(ProbeStatus { status: "ready" })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::Unavailable)
        }
        Err(_) => {
            tracing::warn!("readiness check timed out");
            Err(ApiError::Unavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_healthz_body_is_the_probe_status_in_json() {
        assert_eq!(
            serde_json::to_string(&ProbeStatus { status: "ok" }).unwrap(),
            HEALTHZ_BODY
        );
    }
}
