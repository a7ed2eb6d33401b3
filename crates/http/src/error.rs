//! Error responses, one type per error shape of PRODUCT.md. The mapping from error to status
//! lives here and nowhere else; internal details are logged once, never sent.

use crate::views::{render, ErrorPage};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_core::oauth::{OAuthError, OAuthErrorCode};
use gatehouse_service::ServiceError;
use serde_json::json;

/// An error answered as `{"message": …}` (gateway, `/auth/check`, operational endpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiError {
    /// 400: a request Gatehouse will not interpret (a non-canonical path).
    BadRequest,
    /// 401: no valid credential; offers Basic and Bearer (RFC 6750 §3.1 `invalid_token` when a
    /// token was sent).
    Unauthorized {
        /// Whether a bearer token was presented.
        token_sent: bool,
    },
    /// 403: a valid credential that may not make this call; `insufficient_scope` when the
    /// route's scope is missing (RFC 6750 §3.1), plain when the policy refuses the request.
    Forbidden {
        /// Whether a scope is what is missing.
        insufficient_scope: bool,
    },
    /// 404: no route, no such object.
    NotFound,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 502: the upstream cannot be reached or failed.
    BadGateway,
    /// 503: the credential store cannot be reached.
    Unavailable,
    /// 504: the upstream did not answer in time.
    GatewayTimeout,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::BadRequest => (StatusCode::BAD_REQUEST, "Bad Request"),
            Self::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            Self::Forbidden { .. } => (StatusCode::FORBIDDEN, "Forbidden"),
            Self::NotFound => (StatusCode::NOT_FOUND, "Not Found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
            Self::BadGateway => (StatusCode::BAD_GATEWAY, "Bad Gateway"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
            Self::GatewayTimeout => (StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout"),
        };
        let mut response = (status, Json(json!({ "message": message }))).into_response();
        // All challenges in one field (RFC 9110 §11.6.1): nginx before 1.23 passes on only the
        // first WWW-Authenticate header of an auth_request answer.
        let challenge = match self {
            Self::Unauthorized { token_sent: false } => {
                Some("Basic realm=\"gatehouse\", Bearer realm=\"gatehouse\"")
            }
            Self::Unauthorized { token_sent: true } => Some(
                "Basic realm=\"gatehouse\", Bearer realm=\"gatehouse\", error=\"invalid_token\"",
            ),
            Self::Forbidden {
                insufficient_scope: true,
            } => Some("Bearer realm=\"gatehouse\", error=\"insufficient_scope\""),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// An RFC 6749 §5.2 JSON error from the token, revocation or introspection endpoint.
#[derive(Debug)]
pub struct OAuthHttpError(pub ServiceError);

impl From<ServiceError> for OAuthHttpError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl From<OAuthError> for OAuthHttpError {
    fn from(e: OAuthError) -> Self {
        Self(ServiceError::OAuth(e))
    }
}

impl IntoResponse for OAuthHttpError {
    fn into_response(self) -> Response {
        let error = match self.0 {
            ServiceError::OAuth(e) => e,
            ServiceError::Invalid(e) => OAuthError::invalid_request(e.to_string()),
            ServiceError::Unavailable(source) => {
                tracing::warn!(error = %source, "oauth endpoint: database unavailable");
                OAuthError::new(
                    OAuthErrorCode::TemporarilyUnavailable,
                    "the service is temporarily unavailable",
                )
            }
            other => {
                tracing::error!(error = ?other, "oauth endpoint failed");
                OAuthError::new(OAuthErrorCode::ServerError, "internal error")
            }
        };
        let status = match error.code {
            OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = json!({ "error": error.code.as_str(), "error_description": error.description });
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gatehouse\""),
            );
        }
        response
    }
}

/// An HTML error page for people (login, consent, untrusted authorization requests).
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
    retry_after: Option<i64>,
}

impl PageError {
    /// A page with `status` explaining `message` to the person reading it.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unavailable(source) => {
                tracing::warn!(error = %source, "page: database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is temporarily unavailable. Please try again in a moment.",
                )
            }
            ServiceError::Internal(source) => {
                tracing::error!(error = ?source, "page failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side.",
                )
            }
            ServiceError::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, e.to_string()),
            ServiceError::Conflict(_) => Self::new(StatusCode::CONFLICT, e.to_string()),
            ServiceError::Throttled { retry_after_secs } => Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: e.to_string(),
                retry_after: Some(retry_after_secs),
            },
            ServiceError::RateLimited { retry_after_secs } => Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: "Too many requests from your network. Please wait a moment and try again."
                    .to_owned(),
                retry_after: Some(retry_after_secs),
            },
            ServiceError::Busy { retry_after_secs } => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message:
                    "Too many sign-ins are being checked right now. Please try again in a moment."
                        .to_owned(),
                retry_after: Some(retry_after_secs),
            },
            other => Self::new(StatusCode::BAD_REQUEST, other.to_string()),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            title: self.status.canonical_reason().unwrap_or("Error"),
            message: &self.message,
        };
        let mut response = (self.status, render(&page)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}
