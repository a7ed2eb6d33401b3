//! RFC 7591 dynamic client registration (`POST /oauth/v1/register`). Anyone may call it, so
//! each client address is limited (`[limits] registrations_per_hour`, counted before any
//! work), the body is bounded, and the rules are core's. Off by default: then it answers 404
//! and the metadata does not name it.

use crate::error::OAuthHttpError;
use crate::extract::client_address::ClientAddress;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use gatehouse_core::oauth::registration::{ClientMetadataRequest, RegistrationError};
use gatehouse_core::paths::CLIENT_REGISTRATION;
use gatehouse_service::limits::Limited;
use gatehouse_service::registration::RegisterFailure;
use serde::Serialize;

/// Largest registration body: ten redirect URIs of 2,000 characters and the rest fit.
pub const MAX_REGISTRATION_BYTES: usize = 32 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route(
        CLIENT_REGISTRATION,
        post(register_post).layer(DefaultBodyLimit::max(MAX_REGISTRATION_BYTES)),
    )
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

fn refused(error: &RegistrationError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(ErrorBody {
            error: error.code(),
            error_description: error.description(),
        }),
    )
        .into_response()
}

#[derive(Serialize)]
struct MessageBody {
    message: &'static str,
}

/// RFC 7591 §3.2.1: the client information response.
#[derive(Serialize)]
struct RegisteredBody {
    client_id: String,
    client_id_issued_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    /// 0 would mean "never"; a secret here expires like every client secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_expires_at: Option<i64>,
    client_name: String,
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: gatehouse_core::oauth::registration::TokenEndpointAuthMethod,
    grant_types: Vec<&'static str>,
    response_types: [&'static str; 1],
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logo_uri: Option<String>,
}

async fn register_post(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthHttpError> {
    let gatehouse = &state.gatehouse;
    if !gatehouse.registration_enabled() {
        let body = Json(MessageBody {
            message: "Not Found",
        });
        return Ok((StatusCode::NOT_FOUND, body).into_response());
    }
    gatehouse.limits().take(Limited::Registrations, address)?;
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let error = RegistrationError::InvalidClientMetadata(
                "the request body could not be read (at most 32 KiB)".into(),
            );
            let mut response = refused(&error);
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                *response.status_mut() = status;
            }
            return Ok(response);
        }
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Ok(refused(&RegistrationError::InvalidClientMetadata(
            "the request must be JSON (Content-Type: application/json)".into(),
        )));
    }
    let request: ClientMetadataRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return Ok(refused(&RegistrationError::InvalidClientMetadata(format!(
                "the client metadata is not a JSON object of the expected members: {e}"
            ))))
        }
    };
    let registered = match gatehouse.register_client(&request).await {
        Ok(registered) => registered,
        Err(RegisterFailure::Invalid(error)) => return Ok(refused(&error)),
        Err(RegisterFailure::Off) => {
            let body = Json(MessageBody {
                message: "Not Found",
            });
            return Ok((StatusCode::NOT_FOUND, body).into_response());
        }
        Err(RegisterFailure::Service(e)) => return Err(e.into()),
    };
    let app = &registered.created.app;
    let metadata = &registered.metadata;
    let (client_secret, client_secret_expires_at) = match &registered.created.secret {
        Some((secret, plain)) => (
            Some(plain.expose().to_owned()),
            Some(secret.expires_at.unix()),
        ),
        None => (None, None),
    };
    let answer = RegisteredBody {
        client_id: app.client_id.to_string(),
        client_id_issued_at: app.created_at.unix(),
        client_secret,
        client_secret_expires_at,
        client_name: app.name.to_string(),
        redirect_uris: app
            .redirect_uris
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect(),
        token_endpoint_auth_method: metadata.token_endpoint_auth_method,
        grant_types: metadata.grant_types.clone(),
        response_types: ["code"],
        scope: metadata.scope.clone(),
        client_uri: app.client_uri.clone(),
        logo_uri: app.logo_uri.clone(),
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}
