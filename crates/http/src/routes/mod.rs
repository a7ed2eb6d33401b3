//! The router: every route module contributes its paths; the layers add the headers every
//! response needs.

mod account;
mod account_tokens;
mod admin;
mod admin_api;
mod auth_check;
pub(crate) mod authorize;
pub(crate) mod frame;
mod gateway;
pub(crate) mod login;
mod oauth;
pub(crate) mod observe;
mod oidc;
mod ops;
mod portal;
mod protected_resource;
mod registration;

use crate::error::ApiError;
use crate::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use gatehouse_core::paths;

/// Gatehouse's complete router, in its [`frame::Frame`] (the layers every request passes).
pub fn router(state: AppState) -> frame::Frame {
    frame::Frame::new(state.clone(), routes().with_state(state))
}

/// The router of the separate `/metrics` listener (`metrics_listen`): that path only.
pub fn metrics_router(gatehouse: gatehouse_service::Gatehouse) -> Router {
    Router::new()
        .route(
            paths::METRICS,
            get(move || {
                let gatehouse = gatehouse.clone();
                async move { observe::render(&gatehouse) }
            }),
        )
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}

/// Every route and its own layers, before the state is attached (so a test can list the
/// paths). What every request passes through is the [`frame::Frame`] around it.
fn routes() -> Router<AppState> {
    // Tokens, secrets shown once, and pages about one person: never stored by any cache.
    let private = Router::new()
        .merge(oauth::router())
        .merge(oidc::private_router())
        .merge(registration::router())
        .merge(authorize::router())
        .merge(account_tokens::router())
        .merge(login::router())
        .merge(account::router())
        .merge(portal::router())
        .merge(admin::router())
        .merge(admin_api::router())
        .layer(middleware::from_fn(no_store));
    Router::new()
        .merge(ops::router())
        .merge(oidc::public_router())
        .merge(protected_resource::router())
        .merge(private)
        .merge(auth_check::router())
        .route(paths::STYLESHEET, get(stylesheet_get))
        .route(paths::COPY_SCRIPT, get(copy_script_get))
        .fallback(gateway::gateway)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}

/// RFC 6749 §5.1: token responses must not be cached; neither may pages showing a secret once
/// or a person's apps and keys.
async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Marks a response that came from an upstream through the gateway: it is the upstream's, and
/// Gatehouse adds none of its own headers to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Proxied;

async fn stylesheet_get() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        include_str!("../../static/app.css"),
    )
        .into_response()
}

async fn copy_script_get() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        include_str!("../../static/copy.js"),
    )
        .into_response()
}

/// Query parameters whose values are secrets: an embed token, the one-time links mailed or
/// printed (`token`), and OAuth values a client might misplace in a query.
const SECRET_PARAMS: [&str; 5] = [
    "access_token",
    "token",
    "code",
    "refresh_token",
    "client_secret",
];

/// `uri` with the value of every secret-bearing parameter replaced by `REDACTED` (names are
/// compared decoded, so `access%5Ftoken` is caught too).
pub fn redact_secrets(uri: &str) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return uri.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let name = url::form_urlencoded::parse(pair.as_bytes())
                .next()
                .map(|(name, _)| name.into_owned());
            match name {
                Some(name) if SECRET_PARAMS.contains(&name.as_str()) => {
                    format!("{name}=REDACTED")
                }
                _ => pair.to_owned(),
            }
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_secrets as redact_access_token;
    use gatehouse_core::paths;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The paths the router registers. axum has no API to list them; its `Debug` output
    /// lists them (`node: Node { paths: {RouteId(1): "/healthz", ...} }`) for this kind of
    /// inspection. Should a new axum print them differently, the tests below fail (they
    /// compare with the non-empty table), so they cannot pass by finding nothing.
    fn registered_paths() -> BTreeSet<String> {
        let shown = format!("{:?}", super::routes());
        let start = shown.find("node: Node { paths: {").unwrap_or(shown.len());
        let end = shown.find("fallback_router").unwrap_or(shown.len());
        shown
            .get(start..end)
            .unwrap_or("")
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_router_registers_exactly_the_served_paths_of_the_table() {
        let served: BTreeSet<String> = paths::SERVED.iter().map(|p| p.to_string()).collect();
        let registered = registered_paths();
        let unlisted: Vec<_> = registered.difference(&served).collect();
        let unrouted: Vec<_> = served.difference(&registered).collect();
        assert!(
            unlisted.is_empty(),
            "routed but missing from gatehouse_core::paths::SERVED: {unlisted:?}"
        );
        assert!(
            unrouted.is_empty(),
            "in gatehouse_core::paths::SERVED but not routed: {unrouted:?}"
        );
        for planned in paths::PLANNED {
            assert!(
                !registered.contains(*planned),
                "{planned} is planned, not served"
            );
        }
    }

    #[test]
    fn the_admin_api_document_lists_exactly_the_routed_admin_api_paths() {
        use utoipa::OpenApi;
        let registered: BTreeSet<String> = registered_paths()
            .into_iter()
            .filter(|p| p.starts_with("/admin/api/v1/") && p != paths::ADMIN_API_OPENAPI)
            .collect();
        let documented: BTreeSet<String> = super::admin_api::AdminApiDoc::openapi()
            .paths
            .paths
            .keys()
            .cloned()
            .collect();
        let undocumented: Vec<_> = registered.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&registered).collect();
        assert!(
            undocumented.is_empty(),
            "routed, not in the OpenAPI document: {undocumented:?}"
        );
        assert!(
            unrouted.is_empty(),
            "in the OpenAPI document, not routed: {unrouted:?}"
        );
        assert!(registered.len() > 15, "{registered:?}");
    }

    /// Whether `path` (no query) is an instance of `pattern`, a `{name}` segment standing for
    /// any one segment.
    fn instance_of(path: &str, pattern: &str) -> bool {
        let (mut path, mut pattern) = (path.split('/'), pattern.split('/'));
        loop {
            match (path.next(), pattern.next()) {
                (None, None) => return true,
                (Some(seg), Some(pat)) if seg == pat => {}
                (Some(seg), Some(pat)) if pat.starts_with('{') && !seg.is_empty() => {}
                _ => return false,
            }
        }
    }

    fn templates(dir: &Path, found: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                templates(&path, found);
            } else {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path.display().to_string(), text));
            }
        }
    }

    #[test]
    fn every_link_and_form_in_the_templates_targets_a_served_path() {
        let mut files = Vec::new();
        templates(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
            &mut files,
        );
        let mut checked = 0;
        for (file, text) in files {
            for attribute in ["href=\"", "action=\""] {
                for rest in text.split(attribute).skip(1) {
                    let target = rest.split('"').next().unwrap();
                    if !target.starts_with('/') {
                        continue; // `#main`, or a URL handed in by the handler
                    }
                    // `{{ app.client_id }}` stands for one segment.
                    let mut path = String::new();
                    for (i, part) in target.split("{{").enumerate() {
                        match part.split_once("}}") {
                            Some((_, after)) if i > 0 => {
                                path.push('x');
                                path.push_str(after);
                            }
                            _ => path.push_str(part),
                        }
                    }
                    let path = path.split(['?', '#']).next().unwrap();
                    assert!(
                        paths::SERVED.iter().any(|p| instance_of(path, p)),
                        "{file}: {target} is not a served path"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 20, "only {checked} links found");
    }

    #[test]
    fn one_time_links_never_reach_the_log() {
        assert_eq!(
            redact_access_token("/setup?token=ghlk_us_x"),
            "/setup?token=REDACTED"
        );
        assert_eq!(
            redact_access_token("/reset-password?tok%65n=ghlk_us_x&x=1"),
            "/reset-password?token=REDACTED&x=1"
        );
    }

    #[test]
    fn access_tokens_never_reach_the_log() {
        assert_eq!(
            redact_access_token("/v?a=1&access_token=ghet_us_x&b=2"),
            "/v?a=1&access_token=REDACTED&b=2"
        );
        assert_eq!(redact_access_token("/v"), "/v");
        assert_eq!(
            redact_access_token("/v?access%5Ftoken=ghet_us_x"),
            "/v?access_token=REDACTED"
        );
    }
}
