//! The browser session cookie: HttpOnly, SameSite=Lax (so the top-level redirect back from a
//! client still carries it), and over https Secure with the `__Host-` prefix, which browsers
//! only accept from this very host (Secure, Path=/, no Domain): a sibling subdomain can
//! neither plant nor overwrite it.

use axum::http::{header, HeaderMap, HeaderValue};

/// The session cookie's name over plain http.
pub const COOKIE: &str = "gatehouse_session";
/// The session cookie's name over https.
pub const SECURE_COOKIE: &str = "__Host-gatehouse_session";

/// The session cookie's name: `secure` when the public URL is https.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_COOKIE
    } else {
        COOKIE
    }
}
/// The cookie holding the CSRF token of anonymous forms (sign-in, sign-up, password reset),
/// so that showing them stores nothing: the form's hidden field must repeat it. Over https
/// its name has the `__Host-` prefix, which browsers only accept from this very host (Secure,
/// Path=/, no Domain): a sibling subdomain cannot plant one.
pub fn csrf_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-gatehouse_csrf"
    } else {
        "gatehouse_csrf"
    }
}

/// Whether a cookie of this name is one of Gatehouse's own (session or CSRF, either
/// spelling): those never travel to an upstream.
pub fn is_own_cookie(name: &str) -> bool {
    [COOKIE, SECURE_COOKIE, csrf_cookie(false), csrf_cookie(true)].contains(&name)
}

/// The value of cookie `name` in a request, if present.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.to_owned())
}

/// The session cookie's value in a request, if present (`secure` as for
/// [`session_cookie_name`]).
pub fn session_cookie(headers: &HeaderMap, secure: bool) -> Option<String> {
    cookie_value(headers, session_cookie_name(secure))
}

/// A `Set-Cookie` value that stores the session `value` for `max_age` seconds (0 deletes it).
pub fn set_cookie(value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    set_named_cookie(session_cookie_name(secure), value, max_age, secure)
}

/// A `Set-Cookie` value for cookie `name`, with the same attributes as the session's.
pub fn set_named_cookie(
    name: &str,
    value: &str,
    max_age: i64,
    secure: bool,
) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; gatehouse_session=ghse_us_x; b=2".parse().unwrap(),
        );
        assert_eq!(session_cookie(&h, false).as_deref(), Some("ghse_us_x"));
        assert_eq!(
            session_cookie(&h, true),
            None,
            "over https only the __Host- name counts"
        );
        assert_eq!(session_cookie(&HeaderMap::new(), false), None);
    }

    #[test]
    fn cookie_attributes() {
        let c = set_cookie("v", 60, true).unwrap();
        assert_eq!(
            c,
            "__Host-gatehouse_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        let c = set_cookie("v", 60, false).unwrap();
        assert_eq!(
            c,
            "gatehouse_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60"
        );
    }
}
