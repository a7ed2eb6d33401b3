//! Error responses, one type per error shape the API promises (OAuth errors, protected API
//! calls, pages). The mapping from error to status lives here and nowhere else; internal
//! details are logged once, never sent.

use crate::views::{render, ErrorPage};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_core::oauth::authorize::AuthorizeRejection;
use gatehouse_core::oauth::{OAuthError, OAuthErrorCode};
use gatehouse_service::ServiceError;
use serde::Serialize;
use std::sync::Arc;

/// The body of every `{"message": …}` answer.
#[derive(Debug, Serialize)]
struct MessageBody {
    message: &'static str,
}

/// An error answered as `{"message": …}` (gateway, `/auth/check`, operational endpoints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: a request Gatehouse will not interpret (a non-canonical path).
    BadRequest,
    /// 401: no valid credential; offers Bearer, then Basic (RFC 6750 §3.1 `invalid_token` when
    /// a token was sent), naming the resource's metadata (RFC 9728 §5.1).
    Unauthorized {
        /// Whether a bearer token was presented.
        token_sent: bool,
        /// The metadata URL of the resource the call was for.
        resource_metadata: Option<Arc<str>>,
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
        let mut response = (status, Json(MessageBody { message })).into_response();
        // All challenges in one field (RFC 9110 §11.6.1): nginx before 1.23 passes on only the
        // first WWW-Authenticate header of an auth_request answer.
        let challenge = match self {
            Self::Unauthorized {
                token_sent,
                resource_metadata,
            } => HeaderValue::try_from(unauthorized_challenge(
                token_sent,
                resource_metadata.as_deref(),
            ))
            .ok(),
            Self::Forbidden {
                insufficient_scope: true,
            } => Some(HeaderValue::from_static(
                "Bearer realm=\"gatehouse\", error=\"insufficient_scope\"",
            )),
            Self::BadRequest
            | Self::Forbidden {
                insufficient_scope: false,
            }
            | Self::NotFound
            | Self::MethodNotAllowed
            | Self::BadGateway
            | Self::Unavailable
            | Self::GatewayTimeout => None,
        };
        if let Some(challenge) = challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// The challenges of a 401 from a protected API call, in one field: Bearer first (the MCP
/// SDK, among others, reads only a leading Bearer challenge), with `error="invalid_token"`
/// when a token was sent (RFC 6750 §3.1) and the resource's metadata URL (RFC 9728 §5.1,
/// visible ASCII without quotes or backslashes: see `ProtectedResource::challenge_url`), then
/// Basic.
fn unauthorized_challenge(token_sent: bool, resource_metadata: Option<&str>) -> String {
    let mut challenge = String::from("Bearer realm=\"gatehouse\"");
    if token_sent {
        challenge.push_str(", error=\"invalid_token\"");
    }
    if let Some(url) = resource_metadata {
        challenge.push_str(", resource_metadata=\"");
        challenge.push_str(url);
        challenge.push('"');
    }
    challenge.push_str(", Basic realm=\"gatehouse\"");
    challenge
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

impl OAuthHttpError {
    /// The status, the RFC 6749 §5.2 error and the `Retry-After` seconds for each way a use
    /// case can fail. Every variant is named, so a new one cannot reach a client unmapped.
    fn answer(self) -> (StatusCode, OAuthError, Option<i64>) {
        let refused = |error: OAuthError| (status_of(error.code), error, None);
        match self.0 {
            ServiceError::OAuth(e) => refused(e),
            ServiceError::Authorize(rejection) => match rejection {
                AuthorizeRejection::Redirect { error, .. } => refused(error),
                AuthorizeRejection::ErrorPage(message) => {
                    refused(OAuthError::invalid_request(message))
                }
            },
            e @ (ServiceError::Invalid(_)
            | ServiceError::Transition(_)
            | ServiceError::NotApplicable(_)) => {
                refused(OAuthError::invalid_request(e.to_string()))
            }
            // Something the request refers to is gone: the use case found it, then it was
            // deleted. The request cannot succeed as sent, and the server did nothing wrong.
            ServiceError::NotFound { .. } => refused(OAuthError::new(
                OAuthErrorCode::InvalidGrant,
                "the request refers to something that no longer exists",
            )),
            // Credentials of a person that cannot be used (RFC 6749 §5.2: invalid_grant
            // covers the resource owner's credentials).
            e @ (ServiceError::LoginFailed
            | ServiceError::EmailNotVerified
            | ServiceError::LinkInvalid) => refused(OAuthError::with(
                OAuthErrorCode::InvalidGrant,
                e.to_string(),
            )),
            e @ (ServiceError::Throttled { retry_after_secs }
            | ServiceError::RateLimited { retry_after_secs }) => (
                StatusCode::TOO_MANY_REQUESTS,
                OAuthError::with(OAuthErrorCode::TemporarilyUnavailable, e.to_string()),
                Some(retry_after_secs),
            ),
            e @ ServiceError::Busy { retry_after_secs } => (
                StatusCode::SERVICE_UNAVAILABLE,
                OAuthError::with(OAuthErrorCode::TemporarilyUnavailable, e.to_string()),
                Some(retry_after_secs),
            ),
            ServiceError::Unavailable(source) => {
                tracing::warn!(error = %source, "oauth endpoint: database unavailable");
                refused(OAuthError::new(
                    OAuthErrorCode::TemporarilyUnavailable,
                    "the service is temporarily unavailable",
                ))
            }
            // A value Gatehouse generated collided with a stored one: the server's failure,
            // not the client's.
            e @ ServiceError::Conflict(_) => {
                tracing::error!(error = ?e, "oauth endpoint: conflict while storing");
                refused(OAuthError::new(
                    OAuthErrorCode::ServerError,
                    "internal error",
                ))
            }
            ServiceError::Internal(source) => {
                tracing::error!(error = ?source, "oauth endpoint failed");
                refused(OAuthError::new(
                    OAuthErrorCode::ServerError,
                    "internal error",
                ))
            }
        }
    }
}

/// The status of each OAuth error code: failed client authentication is 401 (RFC 6749 §5.2),
/// other refusals 400.
fn status_of(code: OAuthErrorCode) -> StatusCode {
    match code {
        OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        OAuthErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthErrorCode::InvalidRequest
        | OAuthErrorCode::InvalidGrant
        | OAuthErrorCode::UnauthorizedClient
        | OAuthErrorCode::UnsupportedGrantType
        | OAuthErrorCode::InvalidScope
        | OAuthErrorCode::AccessDenied
        | OAuthErrorCode::UnsupportedResponseType
        | OAuthErrorCode::UnsupportedTokenType
        | OAuthErrorCode::LoginRequired
        | OAuthErrorCode::ConsentRequired
        | OAuthErrorCode::InvalidTarget => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for OAuthHttpError {
    fn into_response(self) -> Response {
        let (status, error, retry_after) = self.answer();
        let mut response = (status, Json(error)).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gatehouse\""),
            );
        }
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
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
            ServiceError::Invalid(_)
            | ServiceError::Transition(_)
            | ServiceError::NotApplicable(_)
            | ServiceError::OAuth(_)
            | ServiceError::Authorize(_)
            | ServiceError::LoginFailed
            | ServiceError::EmailNotVerified
            | ServiceError::LinkInvalid => Self::new(StatusCode::BAD_REQUEST, e.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::{TransitionError, ValidationError};

    fn oauth_answer(error: ServiceError) -> (u16, &'static str, Option<i64>) {
        let (status, error, retry_after) = OAuthHttpError(error).answer();
        (status.as_u16(), error.code.as_str(), retry_after)
    }

    #[test]
    fn the_bearer_challenge_comes_first_with_the_resource_metadata() {
        let url = "https://api.example.com/.well-known/oauth-protected-resource/mcp";
        assert_eq!(
            unauthorized_challenge(false, Some(url)),
            format!("Bearer realm=\"gatehouse\", resource_metadata=\"{url}\", Basic realm=\"gatehouse\"")
        );
        assert_eq!(
            unauthorized_challenge(true, Some(url)),
            format!(
                "Bearer realm=\"gatehouse\", error=\"invalid_token\", resource_metadata=\"{url}\", \
                 Basic realm=\"gatehouse\""
            )
        );
        assert_eq!(
            unauthorized_challenge(true, None),
            "Bearer realm=\"gatehouse\", error=\"invalid_token\", Basic realm=\"gatehouse\""
        );
    }

    #[test]
    fn every_service_error_has_its_oauth_answer() {
        let cases = [
            (
                ServiceError::OAuth(OAuthError::new(OAuthErrorCode::InvalidClient, "x")),
                (401, "invalid_client", None),
            ),
            (
                ServiceError::Invalid(ValidationError::NoRedirectUri),
                (400, "invalid_request", None),
            ),
            (
                ServiceError::Transition(TransitionError {
                    from: "rejected",
                    action: "approve",
                }),
                (400, "invalid_request", None),
            ),
            (
                ServiceError::not_found("client, user or account", "?"),
                (400, "invalid_grant", None),
            ),
            (
                ServiceError::NotApplicable("public apps have no secret".into()),
                (400, "invalid_request", None),
            ),
            (
                ServiceError::Authorize(AuthorizeRejection::Redirect {
                    redirect_uri: "https://app.example.com/cb".into(),
                    error: OAuthError::new(OAuthErrorCode::AccessDenied, "denied"),
                    state: None,
                }),
                (400, "access_denied", None),
            ),
            (
                ServiceError::Authorize(AuthorizeRejection::ErrorPage("unknown client".into())),
                (400, "invalid_request", None),
            ),
            (ServiceError::LoginFailed, (400, "invalid_grant", None)),
            (ServiceError::EmailNotVerified, (400, "invalid_grant", None)),
            (ServiceError::LinkInvalid, (400, "invalid_grant", None)),
            (
                ServiceError::Throttled {
                    retry_after_secs: 30,
                },
                (429, "temporarily_unavailable", Some(30)),
            ),
            (
                ServiceError::RateLimited {
                    retry_after_secs: 6,
                },
                (429, "temporarily_unavailable", Some(6)),
            ),
            (
                ServiceError::Busy {
                    retry_after_secs: 1,
                },
                (503, "temporarily_unavailable", Some(1)),
            ),
            (
                ServiceError::Unavailable("down".into()),
                (503, "temporarily_unavailable", None),
            ),
            (
                ServiceError::Conflict("token family already exists".into()),
                (500, "server_error", None),
            ),
            (
                ServiceError::Internal("broken".into()),
                (500, "server_error", None),
            ),
        ];
        for (error, expected) in cases {
            let shown = format!("{error:?}");
            assert_eq!(oauth_answer(error), expected, "{shown}");
        }
    }

    #[test]
    fn internal_details_never_reach_the_oauth_body() {
        let (_, error, _) = OAuthHttpError(ServiceError::Internal("secret detail".into())).answer();
        assert_eq!(error.description, "internal error");
    }

    #[test]
    fn oauth_errors_serialize_as_rfc_6749_section_5_2() {
        let body = serde_json::to_value(OAuthError::new(
            OAuthErrorCode::InvalidGrant,
            "invalid authorization code",
        ))
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "error": "invalid_grant",
                "error_description": "invalid authorization code",
            })
        );
    }

    #[test]
    fn throttled_oauth_answers_say_when_to_come_back() {
        let response = OAuthHttpError(ServiceError::Throttled {
            retry_after_secs: 0,
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
