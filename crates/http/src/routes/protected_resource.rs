//! RFC 9728 protected resource metadata: one document for the whole API and one per
//! `[[route]]`, at the paths `gatehouse_core::oauth::resource` forms from their identifiers.

use crate::AppState;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gatehouse_core::oauth::resource::{ProtectedResourceMetadata, Target};
use gatehouse_core::paths::{PROTECTED_RESOURCE, PROTECTED_RESOURCE_ROUTE};
use gatehouse_core::scope::is_identity_scope;
use serde::Serialize;
use std::collections::BTreeSet;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PROTECTED_RESOURCE, get(metadata_get))
        .route(PROTECTED_RESOURCE_ROUTE, get(metadata_get))
}

#[derive(Serialize)]
struct MessageBody {
    message: &'static str,
}

/// RFC 9728 §3.2: the document of the resource whose metadata path was asked for; 404 (with
/// its own message, not the gateway's) for a path that names none.
async fn metadata_get(State(state): State<AppState>, uri: Uri) -> Response {
    let resources = state.gatehouse.resources();
    let Some((target, resource)) = resources.by_metadata_path(uri.path()) else {
        return (
            StatusCode::NOT_FOUND,
            Json(MessageBody {
                message: "No protected resource of this server has its metadata here",
            }),
        )
            .into_response();
    };
    let settings = state.gatehouse.settings();
    // The scopes that open the resource (never the OpenID Connect identity scopes, which
    // open no API route): a route's, or the whole catalogue.
    let scopes: Vec<String> = match target {
        Target::WholeApi => settings.scopes.all().to_vec(),
        Target::Route(i) => settings
            .routes
            .get(i)
            .map(|route| route.scopes.values().cloned().collect::<BTreeSet<_>>())
            .unwrap_or_default()
            .into_iter()
            .collect(),
    };
    let scopes = scopes
        .into_iter()
        .filter(|s| !is_identity_scope(s))
        .collect();
    Json(ProtectedResourceMetadata::new(
        resource,
        &state.issuer,
        scopes,
    ))
    .into_response()
}
