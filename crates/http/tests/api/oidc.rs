//! OpenID Connect over a real server: discovery, the code flow with a nonce through the real
//! login and consent forms, id_tokens verified against the JWKS with an independent verifier
//! (`jsonwebtoken`'s decoder), refresh, prompt and max_age, userinfo, identity-only tokens at
//! `/auth/check`, key rotation, and OpenID Connect switched off; and two OIDC client libraries
//! used unmodified against it, Authlib (Python) and openid-client (Node.js).

use crate::helpers::{
    browser, hidden_fields, introspect, on_both_backends, query_of, spawn_app, spawn_app_with,
    TestApp, TestClient, PASSWORD, T0,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gatehouse_core::paths;
use gatehouse_service::settings::SigningKeySecret;
use gatehouse_store::testing::Backend;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

on_both_backends!(
    discovery_repeats_the_oauth_metadata_and_adds_what_oidc_clients_need,
    the_code_flow_returns_an_id_token_that_verifies_with_the_jwks,
    a_refresh_returns_a_fresh_id_token_for_the_same_user_without_nonce,
    prompt_none_answers_at_once_or_with_login_or_consent_required,
    prompt_login_and_max_age_ask_a_signed_in_user_to_sign_in_again,
    userinfo_answers_the_granted_claims_and_refuses_other_tokens,
    a_token_with_only_identity_scopes_opens_no_api_route,
    after_rotation_old_id_tokens_still_verify_and_new_ones_carry_the_new_kid,
    without_a_signing_key_secret_openid_connect_is_off,
    authlib_signs_in_validates_the_id_token_and_calls_userinfo,
    openid_client_signs_in_and_validates_id_tokens_across_a_key_rotation,
);

const EMAIL: &str = "ada@example.com";
const NONCE: &str = "n-0S6_WzA2Mj";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub async fn spawn_oidc(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| {
        s.signing_key_secret = Some(SigningKeySecret::from([7u8; 32]));
    })
    .await
}

/// `Location`, made absolute for the server's own paths.
fn location(app: &TestApp, res: &reqwest::Response) -> String {
    let raw = res
        .headers()
        .get(reqwest::header::LOCATION)
        .unwrap_or_else(|| panic!("no Location ({})", res.status()))
        .to_str()
        .unwrap();
    if raw.starts_with('/') {
        app.url(raw)
    } else {
        raw.to_owned()
    }
}

/// Fills in the login page at `login_url` as [`EMAIL`]; where the browser is sent back.
async fn log_in_at(app: &TestApp, b: &reqwest::Client, login_url: &str) -> String {
    let page = b.get(login_url).send().await.unwrap();
    assert_eq!(page.status(), 200, "the login form is shown: {login_url}");
    let mut form = hidden_fields(&page.text().await.unwrap());
    form.insert("email".into(), EMAIL.into());
    form.insert("password".into(), PASSWORD.into());
    let res = b.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303, "signed in");
    location(app, &res)
}

/// Follows an authorization request in browser `b` through login (if asked) and consent (if
/// asked, answering allow) to the redirect back to the client.
pub(crate) async fn authorize(app: &TestApp, b: &reqwest::Client, url: &str) -> String {
    let mut next = url.to_owned();
    for _ in 0..4 {
        let res = b.get(&next).send().await.unwrap();
        match res.status().as_u16() {
            302 => return location(app, &res),
            303 => {
                let to = location(app, &res);
                if to.starts_with(&app.url("/login")) {
                    next = log_in_at(app, b, &to).await;
                } else {
                    return to;
                }
            }
            200 => {
                let mut form = hidden_fields(&res.text().await.unwrap());
                form.insert("decision".into(), "allow".into());
                let res = b
                    .post(app.url(paths::AUTHORIZE))
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 303);
                let to = location(app, &res);
                if to.starts_with(&app.url("/login")) {
                    next = log_in_at(app, b, &to).await;
                } else {
                    return to;
                }
            }
            other => panic!(
                "unexpected {other} for {next}: {}",
                res.text().await.unwrap()
            ),
        }
    }
    panic!("the authorization request did not end")
}

fn code_of(location: &str) -> String {
    let q = query_of(location);
    assert_eq!(q.get("error"), None, "{location}");
    q.get("code").cloned().expect("a code")
}

async fn exchange(app: &TestApp, client: &TestClient, code: &str) -> Value {
    let res = app
        .http
        .post(app.url(paths::TOKEN))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn refresh(app: &TestApp, client: &TestClient, refresh_token: &str) -> Value {
    let res = app
        .http
        .post(app.url(paths::TOKEN))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The authorization URL for `scope` with PKCE, a nonce and `extra`.
fn oidc_url(app: &TestApp, client: &TestClient, scope: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("scope", scope),
        ("nonce", NONCE),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    app.authorize_url(client, &params)
}

/// A user, an approved confidential app with `read write`, and a browser that went through
/// the flow for `scope`; the token response.
async fn signed_in_tokens(app: &TestApp, scope: &str) -> (TestClient, reqwest::Client, Value) {
    app.user(EMAIL).await;
    let client = app.client(&["read", "write"], &[], false, true).await;
    let b = browser();
    let to = authorize(app, &b, &oidc_url(app, &client, scope, &[])).await;
    let tokens = exchange(app, &client, &code_of(&to)).await;
    (client, b, tokens)
}

async fn jwks(app: &TestApp) -> Value {
    let res = app.http.get(app.url(paths::JWKS)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Verifies `id_token` with the key its header names in the server's JWKS, for `client`, and
/// returns its claims and `kid`.
async fn verified(app: &TestApp, client: &TestClient, id_token: &str) -> (Value, String) {
    let header = decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("a kid header");
    let set = jwks(app).await;
    let jwk = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS {set}"));
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["use"], "sig");
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&client.client_id]);
    validation.set_issuer(&[&app.base]);
    // The test server's clock is a manual one, ahead of the real one: exp is checked
    // against the test clock below instead.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = decode::<Value>(id_token, &key, &validation)
        .unwrap_or_else(|e| panic!("the id_token does not verify: {e}"));
    (data.claims, kid)
}

/// OIDC Core §3.1.3.6, computed here independently of the server.
fn at_hash(access_token: &str) -> String {
    let hash = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&hash[..16])
}

async fn discovery_repeats_the_oauth_metadata_and_adds_what_oidc_clients_need(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let get = |path: &'static str| {
        let request = app.http.get(app.url(path));
        async move {
            let res = request.send().await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            res.json::<Value>().await.unwrap()
        }
    };
    let oauth = get(paths::METADATA).await;
    let oidc = get(paths::OPENID_CONFIGURATION).await;
    for key in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "response_types_supported",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
        "code_challenge_methods_supported",
        "authorization_response_iss_parameter_supported",
    ] {
        assert_eq!(oidc[key], oauth[key], "{key}");
    }
    assert_eq!(oidc["issuer"], app.base);
    assert_eq!(oidc["jwks_uri"], app.url(paths::JWKS));
    assert_eq!(oidc["userinfo_endpoint"], app.url(paths::USERINFO));
    assert_eq!(
        oidc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        oidc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        oidc["response_types_supported"],
        serde_json::json!(["code"])
    );
    let scopes: Vec<&str> = oidc["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for scope in ["openid", "email", "profile", "read", "write", "views"] {
        assert!(scopes.contains(&scope), "{scope} in {scopes:?}");
    }
    let claims = oidc["claims_supported"].to_string();
    for claim in [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "email",
    ] {
        assert!(claims.contains(&format!("\"{claim}\"")), "{claim}");
    }
    let set = jwks(&app).await;
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "one key, made at the first start: {set}");
    for field in ["kty", "n", "e", "kid", "alg", "use"] {
        assert!(keys[0][field].is_string(), "{field} in {set}");
    }
    assert_eq!(keys[0]["e"], "AQAB");
    // 2048 bits: 256 bytes of modulus, 342 base64url characters.
    assert_eq!(keys[0]["n"].as_str().unwrap().len(), 342);
}

async fn the_code_flow_returns_an_id_token_that_verifies_with_the_jwks(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let (client, _, tokens) = signed_in_tokens(&app, "openid email read").await;
    assert_eq!(tokens["scope"], "email openid read");
    let id_token = tokens["id_token"].as_str().expect("an id_token");
    let (claims, _) = verified(&app, &client, id_token).await;
    let user = crate::helpers::stored_user(&app, EMAIL).await.unwrap();
    assert_eq!(claims["sub"], user.user_id.to_string());
    assert_eq!(claims["aud"], client.client_id);
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["nonce"], NONCE, "the nonce is echoed");
    assert_eq!(claims["iat"], T0.unix());
    assert_eq!(claims["exp"], T0.unix() + 3600);
    assert_eq!(claims["auth_time"], T0.unix(), "signed in at T0");
    assert_eq!(
        claims["at_hash"],
        at_hash(tokens["access_token"].as_str().unwrap())
    );
    assert_eq!(claims["email"], EMAIL);
    assert_eq!(claims["email_verified"], true);

    // Without `email`, no email claims; without `openid`, no id_token at all.
    let b = browser();
    let to = authorize(&app, &b, &oidc_url(&app, &client, "openid", &[])).await;
    let tokens = exchange(&app, &client, &code_of(&to)).await;
    let (claims, _) = verified(&app, &client, tokens["id_token"].as_str().unwrap()).await;
    assert!(claims.get("email").is_none(), "{claims}");
    let to = authorize(&app, &b, &oidc_url(&app, &client, "read", &[])).await;
    let tokens = exchange(&app, &client, &code_of(&to)).await;
    assert!(tokens.get("id_token").is_none(), "{tokens}");
}

async fn a_refresh_returns_a_fresh_id_token_for_the_same_user_without_nonce(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let (client, _, first) = signed_in_tokens(&app, "openid read").await;
    let (before, _) = verified(&app, &client, first["id_token"].as_str().unwrap()).await;
    app.clock.advance(600);
    let second = refresh(&app, &client, first["refresh_token"].as_str().unwrap()).await;
    let (after, _) = verified(&app, &client, second["id_token"].as_str().unwrap()).await;
    assert_eq!(after["sub"], before["sub"]);
    assert_eq!(after["aud"], before["aud"]);
    assert_eq!(after["iat"], T0.unix() + 600);
    assert_eq!(after["auth_time"], T0.unix(), "still the original sign-in");
    assert!(after.get("nonce").is_none(), "{after}");
    assert_eq!(
        after["at_hash"],
        at_hash(second["access_token"].as_str().unwrap())
    );
    // Narrowed to product scopes only: no id_token.
    let res = app
        .http
        .post(app.url(paths::TOKEN))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", second["refresh_token"].as_str().unwrap()),
            ("scope", "read"),
        ])
        .send()
        .await
        .unwrap();
    let third: Value = res.json().await.unwrap();
    assert_eq!(third["scope"], "read");
    assert!(third.get("id_token").is_none(), "{third}");
}

async fn prompt_none_answers_at_once_or_with_login_or_consent_required(backend: Backend) {
    let app = spawn_oidc(backend).await;
    app.user(EMAIL).await;
    let client = app.client(&["read"], &[], false, true).await;
    let b = browser();
    let none = |scope: &str| oidc_url(&app, &client, scope, &[("prompt", "none")]);
    let refused = |res: &reqwest::Response| {
        assert_eq!(res.status(), 302);
        query_of(&location(&app, res))
    };
    // Nobody signed in.
    let res = b.get(none("openid read")).send().await.unwrap();
    let q = refused(&res);
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "state-123");
    assert_eq!(q["iss"], app.base);
    // Signed in, no consent yet.
    let to = log_in_at(&app, &b, &app.url("/login")).await;
    assert!(to.ends_with("/portal"), "{to}");
    let res = b.get(none("openid read")).send().await.unwrap();
    assert_eq!(refused(&res)["error"], "consent_required");
    // After consent: a code at once, no page.
    authorize(&app, &b, &oidc_url(&app, &client, "openid read", &[])).await;
    let res = b.get(none("openid read")).send().await.unwrap();
    assert_eq!(res.status(), 302);
    code_of(&location(&app, &res));
    // prompt=none with another value is a malformed request.
    let res = b
        .get(oidc_url(
            &app,
            &client,
            "openid",
            &[("prompt", "none login")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused(&res)["error"], "invalid_request");
}

async fn prompt_login_and_max_age_ask_a_signed_in_user_to_sign_in_again(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let (client, b, _) = signed_in_tokens(&app, "openid read").await;
    // Consent given, session live: a plain request gets its code at once.
    let res = b
        .get(oidc_url(&app, &client, "openid read", &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);

    // prompt=login: the login form, although signed in; the request continues without it.
    app.clock.advance(100);
    let res = b
        .get(oidc_url(
            &app,
            &client,
            "openid read",
            &[("prompt", "login")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let login = location(&app, &res);
    assert!(login.contains("reauth=1"), "{login}");
    let back = log_in_at(&app, &b, &login).await;
    assert!(!back.contains("prompt"), "{back}");
    let res = b.get(&back).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let tokens = exchange(&app, &client, &code_of(&location(&app, &res))).await;
    let (claims, _) = verified(&app, &client, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["auth_time"], T0.unix() + 100, "the new sign-in");

    // max_age: a sign-in 100 s old is fine for 120 and too old for 60.
    app.clock.advance(100);
    let res = b
        .get(oidc_url(
            &app,
            &client,
            "openid read",
            &[("max_age", "120")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302, "within max_age");
    let res = b
        .get(oidc_url(&app, &client, "openid read", &[("max_age", "60")]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "older than max_age");
    let login = location(&app, &res);
    assert!(login.contains("reauth=1"), "{login}");
    let back = log_in_at(&app, &b, &login).await;
    let res = b.get(&back).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let tokens = exchange(&app, &client, &code_of(&location(&app, &res))).await;
    let (claims, _) = verified(&app, &client, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["auth_time"], T0.unix() + 200);
}

async fn userinfo_answers_the_granted_claims_and_refuses_other_tokens(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let (client, b, tokens) = signed_in_tokens(&app, "openid email read").await;
    let token = tokens["access_token"].as_str().unwrap();
    let user = crate::helpers::stored_user(&app, EMAIL).await.unwrap();
    let res = app
        .http
        .get(app.url(paths::USERINFO))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"].to_str().unwrap(), "no-store");
    let info: Value = res.json().await.unwrap();
    assert_eq!(
        info,
        serde_json::json!({ "sub": user.user_id.to_string(), "email": EMAIL, "email_verified": true })
    );
    // POST with the token in the form body (RFC 6750 §2.2).
    let res = app
        .http
        .post(app.url(paths::USERINFO))
        .form(&[("access_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), info);

    let challenge = |res: &reqwest::Response| {
        res.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    // No token; a wrong one; a revoked one.
    let res = app.http.get(app.url(paths::USERINFO)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(challenge(&res).starts_with("Bearer"), "{}", challenge(&res));
    for bad in [
        "nonsense",
        "ghat_us_0000000000000000000000000000000000000000",
    ] {
        let res = app
            .http
            .get(app.url(paths::USERINFO))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{bad}");
        assert!(
            challenge(&res).contains("error=\"invalid_token\""),
            "{}",
            challenge(&res)
        );
    }
    // A live token without `openid`.
    let to = authorize(&app, &b, &oidc_url(&app, &client, "read", &[])).await;
    let plain = exchange(&app, &client, &code_of(&to)).await;
    let res = app
        .http
        .get(app.url(paths::USERINFO))
        .bearer_auth(plain["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(challenge(&res).contains("error=\"insufficient_scope\""));
    // Both ways at once is a malformed request.
    let res = app
        .http
        .post(app.url(paths::USERINFO))
        .bearer_auth(token)
        .form(&[("access_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Expired: invalid_token.
    app.clock.advance(3600);
    let res = app
        .http
        .get(app.url(paths::USERINFO))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

async fn a_token_with_only_identity_scopes_opens_no_api_route(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let (client, b, tokens) = signed_in_tokens(&app, "openid email profile").await;
    let check = |token: String| {
        let request = app
            .http
            .get(app.url(paths::AUTH_CHECK))
            .bearer_auth(token)
            .header("X-Original-Method", "GET")
            .header("X-Original-URI", "/anything");
        async move { request.send().await.unwrap() }
    };
    let identity_only = tokens["access_token"].as_str().unwrap().to_owned();
    let res = check(identity_only.clone()).await;
    assert_eq!(
        res.status(),
        403,
        "default_policy = authenticated wants a product scope"
    );
    // The same token still serves userinfo: it is good for signing in, nothing else.
    let res = app
        .http
        .get(app.url(paths::USERINFO))
        .bearer_auth(&identity_only)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // With a product scope besides, it passes, and only product scopes go upstream.
    let to = authorize(&app, &b, &oidc_url(&app, &client, "openid read", &[])).await;
    let tokens = exchange(&app, &client, &code_of(&to)).await;
    let res = check(tokens["access_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["gatehouse-scopes"].to_str().unwrap(), "read");
    // Introspection reports the identity scopes the grant holds with the product ones, from
    // the answer `/auth/check` cached as from the store, times included.
    for (token, scope) in [
        (tokens["access_token"].as_str().unwrap(), "openid read"),
        (identity_only.as_str(), "email openid profile"),
    ] {
        for _ in 0..2 {
            let answer = introspect(&app, &client, token).await;
            assert_eq!(answer["active"], true, "{answer}");
            assert_eq!(answer["scope"], scope, "{answer}");
            assert_eq!(answer["token_type"], "Bearer", "{answer}");
            assert_eq!(answer["client_id"], client.client_id.as_str(), "{answer}");
            assert!(answer["sub"].is_string(), "{answer}");
            assert_eq!(answer["iat"], T0.unix(), "{answer}");
            assert_eq!(
                answer["exp"].as_i64().unwrap() - T0.unix(),
                tokens["expires_in"].as_i64().unwrap(),
                "{answer}"
            );
        }
    }
}

async fn after_rotation_old_id_tokens_still_verify_and_new_ones_carry_the_new_kid(
    backend: Backend,
) {
    let app = spawn_oidc(backend).await;
    let (client, _, first) = signed_in_tokens(&app, "openid read").await;
    let old_token = first["id_token"].as_str().unwrap().to_owned();
    let (_, old_kid) = verified(&app, &client, &old_token).await;

    let new_kid = app.gatehouse.rotate_signing_key("test").await.unwrap();
    assert_ne!(new_kid, old_kid);
    let set = jwks(&app).await;
    let kids: Vec<&str> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);
    verified(&app, &client, &old_token).await;

    let second = refresh(&app, &client, first["refresh_token"].as_str().unwrap()).await;
    let (_, kid) = verified(&app, &client, second["id_token"].as_str().unwrap()).await;
    assert_eq!(kid, new_kid, "signed with the new current key");

    // Once every id_token of the old key has expired (an hour, and a minute to spare), the
    // old key leaves the JWKS.
    app.clock.advance(3600 + 59);
    assert_eq!(jwks(&app).await["keys"].as_array().unwrap().len(), 2);
    app.clock.advance(1);
    let set = jwks(&app).await;
    assert_eq!(set["keys"].as_array().unwrap().len(), 1);
    assert_eq!(set["keys"][0]["kid"], new_kid.as_str());
}

async fn without_a_signing_key_secret_openid_connect_is_off(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in [paths::OPENID_CONFIGURATION, paths::JWKS, paths::USERINFO] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["message"], "OpenID Connect is not enabled on this server",
            "{path}"
        );
    }
    app.user(EMAIL).await;
    let client = app.client(&["read"], &[], false, true).await;
    let b = browser();
    let res = b
        .get(oidc_url(&app, &client, "openid read", &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let q = query_of(&location(&app, &res));
    assert_eq!(q["error"], "invalid_scope");
    assert!(
        app.store.current_signing_key().await.unwrap().is_none(),
        "no key is made without a secret"
    );
}

/// The interpreter of the test venv (`./scripts/test-python-setup`), or
/// `$GATEHOUSE_TEST_PYTHON`.
fn python() -> std::path::PathBuf {
    if let Some(python) = std::env::var_os("GATEHOUSE_TEST_PYTHON").filter(|p| !p.is_empty()) {
        return python.into();
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python")
}

/// Authlib, an OpenID Connect client library used unmodified, against the running server:
/// discovery, the code flow with PKCE and a nonce through the real login and consent forms,
/// the id_token checked against the JWKS, and userinfo (`tests/clients/authlib_oidc.py`).
async fn authlib_signs_in_validates_the_id_token_and_calls_userinfo(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let user = app.user(EMAIL).await;
    let client = app.client(&["read"], &[], false, true).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/authlib_oidc.py");
    let python = python();
    assert!(
        python.exists(),
        "{} is missing: run ./scripts/test-python-setup",
        python.display()
    );
    let mut child = std::process::Command::new(&python)
        .arg(script)
        .args([
            app.base.as_str(),
            &client.client_id,
            client.client_secret.as_deref().unwrap(),
            &client.redirect_uri,
            EMAIL,
            PASSWORD,
            &T0.unix().to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded wait for the client to finish; the server keeps answering meanwhile.
    let deadline = std::time::Instant::now() + crate::helpers::WAIT * 2;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!(
                "the Authlib client did not finish within {:?}",
                crate::helpers::WAIT * 2
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Authlib client failed:\n{stderr}"
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    let claims = &result["claims"];
    assert_eq!(claims["sub"], user.user_id.to_string());
    assert_eq!(claims["aud"], client.client_id);
    assert_eq!(claims["nonce"], result["nonce"]);
    assert_eq!(claims["email"], EMAIL);
    assert_eq!(result["userinfo"]["sub"], user.user_id.to_string());
    assert_eq!(result["userinfo"]["email"], EMAIL);
    let current = app.store.current_signing_key().await.unwrap().unwrap();
    assert_eq!(result["kid"], current.kid.as_str());
}

/// openid-client v6 (Node.js), used unmodified against the running server
/// (`tests/clients/node/openid_client_oidc.mjs`): discovery, the code flow with PKCE, state and a
/// nonce through the real login and consent pages, the id_token validated by the library
/// against the JWKS it fetches, userinfo. Then `signing-key rotate` (what the command runs):
/// the id_token from before still validates against the JWKS fetched after, and a refresh
/// brings an id_token with the new `kid` that the library validates too.
async fn openid_client_signs_in_and_validates_id_tokens_across_a_key_rotation(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let user = app.user(EMAIL).await;
    let client = app.client(&["read"], &[], false, true).await;
    let secret = client.client_secret.as_deref().unwrap();
    let now = T0.unix().to_string();
    let first = crate::node::run(
        "openid_client_oidc.mjs",
        &[
            "sign-in",
            &app.base,
            &client.client_id,
            secret,
            &client.redirect_uri,
            EMAIL,
            PASSWORD,
            &now,
        ],
    )
    .await;
    let claims = &first["claims"];
    assert_eq!(claims["sub"], user.user_id.to_string());
    assert_eq!(claims["aud"], client.client_id);
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["nonce"], first["nonce"]);
    assert!(
        first["nonce"].as_str().is_some_and(|n| n.len() >= 32),
        "openid-client's own random nonce: {first}"
    );
    assert_eq!(claims["email"], EMAIL);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(first["userinfo"]["sub"], user.user_id.to_string());
    assert_eq!(first["userinfo"]["email"], EMAIL);
    let old_kid = app.store.current_signing_key().await.unwrap().unwrap().kid;
    assert_eq!(first["kid"], old_kid.as_str());

    let new_kid = app.gatehouse.rotate_signing_key("test").await.unwrap();
    app.clock.advance(60);
    let now = (T0.unix() + 60).to_string();
    let after = crate::node::run(
        "openid_client_oidc.mjs",
        &[
            "after-rotation",
            &app.base,
            &client.client_id,
            secret,
            first["id_token"].as_str().unwrap(),
            first["refresh_token"].as_str().unwrap(),
            &now,
        ],
    )
    .await;
    assert_eq!(after["old"]["kid"], old_kid.as_str());
    assert_eq!(after["old"]["claims"]["sub"], user.user_id.to_string());
    assert_eq!(after["refreshed"]["kid"], new_kid.as_str());
    assert_eq!(
        after["refreshed"]["claims"]["sub"],
        user.user_id.to_string()
    );
    assert_eq!(after["refreshed"]["claims"]["iat"], T0.unix() + 60);
}
