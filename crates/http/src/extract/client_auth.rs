//! Client authentication at the OAuth endpoints (RFC 6749 §2.3): `client_secret_basic`,
//! `client_secret_post`, or a public client's bare `client_id`. Using two methods at once is
//! refused (§2.3).

use super::form::Params;
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gatehouse_core::oauth::{OAuthError, OAuthErrorCode};
use gatehouse_service::oauth::ClientCredentials;

/// The user and password of an `Authorization: Basic` header; `Ok(None)` without one,
/// `Err(())` when it is not well-formed Basic (bad base64, not UTF-8, no colon).
#[allow(clippy::result_unit_err)]
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let (scheme, encoded) = value.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(encoded).map_err(|_| ())?;
    let text = String::from_utf8(decoded).map_err(|_| ())?;
    let (user, password) = text.split_once(':').ok_or(())?;
    Ok(Some((user.to_owned(), password.to_owned())))
}

/// RFC 6749 §2.3.1: the client ID and secret are form-urlencoded before Basic encoding.
fn form_decode(raw: &str) -> String {
    url::form_urlencoded::parse(format!("x={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn invalid_client() -> OAuthError {
    OAuthError::new(
        OAuthErrorCode::InvalidClient,
        "client authentication failed",
    )
}

/// The client credentials of a token, revocation or introspection request.
pub fn client_credentials(
    headers: &HeaderMap,
    form: &Params,
) -> Result<ClientCredentials, OAuthError> {
    let basic = basic_credentials(headers).map_err(|()| invalid_client())?;
    let (body_id, body_secret) = (form.get("client_id"), form.get("client_secret"));
    match basic {
        Some((user, password)) => {
            let (id, secret) = (form_decode(&user), form_decode(&password));
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not two",
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Authorization header",
                ));
            }
            Ok(ClientCredentials::Secret {
                client_id: id,
                secret,
            })
        }
        None => Ok(match (body_id, body_secret) {
            (Some(id), Some(secret)) => ClientCredentials::Secret {
                client_id: id.to_owned(),
                secret: secret.to_owned(),
            },
            (Some(id), None) => ClientCredentials::PublicId(id.to_owned()),
            (None, _) => ClientCredentials::Missing,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn parses_basic_and_refuses_malformed() {
        let ok = basic_credentials(&headers("Basic YXBwX3g6c2VjcmV0")).unwrap();
        assert_eq!(ok, Some(("app_x".into(), "secret".into())));
        assert_eq!(
            basic_credentials(&headers("bAsIc YXBwX3g6c2VjcmV0"))
                .unwrap()
                .unwrap()
                .0,
            "app_x"
        );
        assert!(basic_credentials(&headers("Basic !!!")).is_err());
        assert!(basic_credentials(&headers("Basic bm9jb2xvbg==")).is_err());
        assert_eq!(basic_credentials(&HeaderMap::new()).unwrap(), None);
        assert_eq!(basic_credentials(&headers("Bearer abc")).unwrap(), None);
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let form = Params::parse(b"client_secret=s");
        let err = client_credentials(&headers("Basic YXBwX3g6c2VjcmV0"), &form).unwrap_err();
        assert_eq!(err.code, OAuthErrorCode::InvalidRequest);
    }

    #[test]
    fn body_credentials_and_public_ids() {
        let form = Params::parse(b"client_id=app_x&client_secret=s");
        assert!(matches!(
            client_credentials(&HeaderMap::new(), &form),
            Ok(ClientCredentials::Secret { .. })
        ));
        let form = Params::parse(b"client_id=app_x");
        assert!(matches!(
            client_credentials(&HeaderMap::new(), &form),
            Ok(ClientCredentials::PublicId(_))
        ));
        assert!(matches!(
            client_credentials(&HeaderMap::new(), &Params::default()),
            Ok(ClientCredentials::Missing)
        ));
    }
}
