//! The back channel: token (RFC 6749), revocation (RFC 7009), introspection (RFC 7662) and
//! metadata (RFC 8414) endpoints, one test per rule, with the error each refusal must carry.

use crate::helpers::{
    basic_post, introspect, ok_json, on_both_backends, query_of, spawn_app, spawn_app_with,
    TestApp, TestClient, CALLBACK, T0,
};
use gatehouse_core::oauth::authorize::AuthorizeParams;
use gatehouse_core::oauth::{OAuthErrorCode, TokenRequest};
use gatehouse_core::user::User;
use gatehouse_service::apps::{DecisionRequest, NewApp};
use gatehouse_service::oauth::ClientCredentials;
use gatehouse_service::ServiceError;
use gatehouse_store::testing::Backend;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response};
use serde_json::{json, Value};

const TOKEN: &str = "/oauth/v1/token";
const REVOKE: &str = "/oauth/v1/revoke";
const INTROSPECT: &str = "/oauth/v1/introspect";
const YEAR: i64 = 365 * 86_400;

on_both_backends!(
    metadata_lists_every_endpoint_grant_type_and_method,
    token_responses_are_never_cached,
    wrong_client_secret_is_invalid_client,
    unknown_client_is_invalid_client,
    missing_client_authentication_is_invalid_client,
    another_apps_client_secret_is_invalid_client,
    expired_client_secret_is_invalid_client,
    reset_client_secret_ends_the_old_one_at_once,
    a_cached_client_secret_stops_at_once_when_reset_or_the_app_is_suspended,
    reset_client_secret_keeps_the_old_one_for_the_grace_period,
    basic_and_body_client_secret_together_is_invalid_request,
    unknown_grant_type_is_unsupported_grant_type,
    missing_grant_type_is_invalid_request,
    json_body_is_invalid_request,
    repeated_parameter_is_invalid_request,
    missing_code_or_refresh_token_is_invalid_request_naming_it,
    a_malformed_token_request_is_refused_before_the_client_is_looked_up,
    garbage_code_is_invalid_grant,
    garbage_refresh_token_is_invalid_grant,
    code_issued_to_another_client_is_invalid_grant,
    redirect_uri_mismatch_at_exchange_is_invalid_grant,
    client_credentials_beyond_the_apps_scopes_is_invalid_scope,
    pending_apps_valid_credentials_get_no_token,
    public_client_cannot_use_client_credentials,
    an_app_deleted_while_its_request_is_served_is_refused_not_a_server_error,
    suspended_apps_tokens_turn_inactive_and_it_gets_no_new_ones,
    revoking_an_unknown_token_is_ok,
    a_client_cannot_revoke_another_clients_token,
    revoked_access_token_is_inactive,
    revocation_requires_client_authentication,
    approved_confidential_app_can_introspect_with_basic_or_post,
    account_can_introspect_with_basic,
    public_client_or_no_authentication_cannot_introspect,
    apps_that_are_not_approved_cannot_introspect,
    inactive_tokens_are_exactly_active_false,
    malformed_token_is_inactive,
    token_of_another_kind_is_inactive,
    active_token_carries_scope_client_sub_and_times,
    client_credentials_token_has_no_subject,
);

// ---------------------------------------------------------------------------------------------
// What the tests have in common
// ---------------------------------------------------------------------------------------------

/// A form POST to `path` with no `Authorization` header.
fn plain_post(app: &TestApp, path: &str, form: &[(&str, &str)]) -> RequestBuilder {
    app.http.post(app.url(path)).form(form)
}

/// Asserts an RFC 6749 §5.2 error with `status` and `error`, not cached, and for a 401 with
/// the Basic challenge.
async fn assert_oauth_error(res: Response, status: u16, error: &str) {
    assert_eq!(res.status(), status);
    let headers = res.headers().clone();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        headers.get(CONTENT_TYPE).unwrap(),
        "application/json",
        "{body}"
    );
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert_eq!(headers.get(CACHE_CONTROL).unwrap(), "no-store");
    if status == 401 {
        let challenge = headers
            .get(WWW_AUTHENTICATE)
            .expect("a WWW-Authenticate header")
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("Basic"), "{challenge}");
    }
    assert!(body.get("access_token").is_none(), "{body}");
}

/// Sends `request` and asserts the refusal.
async fn assert_refused(request: RequestBuilder, status: u16, error: &str) {
    assert_oauth_error(request.send().await.unwrap(), status, error).await;
}

/// A `client_credentials` access token for `client` (all its scopes).
async fn client_credentials_token(app: &TestApp, client: &TestClient) -> String {
    let body = ok_json(basic_post(
        app,
        TOKEN,
        client,
        &[("grant_type", "client_credentials")],
    ))
    .await;
    body["access_token"].as_str().unwrap().to_owned()
}

/// An authorization code `user` granted to `client` for its first redirect URI, obtained
/// through the service as the consent step would.
async fn code_for(app: &TestApp, client: &TestClient, user: &User) -> String {
    let pairs = [
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("response_type", "code"),
        ("state", "s"),
    ];
    let params = AuthorizeParams::from_pairs(pairs.map(|(k, v)| (k.to_owned(), v.to_owned())));
    let (request, _) = app.gatehouse.validate_authorization(&params).await.unwrap();
    let location = app.gatehouse.issue_code(user, &request).await.unwrap();
    query_of(&location)["code"].clone()
}

/// The token response of exchanging a fresh code `user` granted to `client`.
async fn code_tokens(app: &TestApp, client: &TestClient, user: &User) -> Value {
    let code = code_for(app, client, user).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &client.redirect_uri),
    ];
    ok_json(basic_post(app, TOKEN, client, &form)).await
}

/// `value` with its last character changed: the same shape (for a secret, a bad checksum).
fn corrupted(value: &str) -> String {
    let mut s = value.to_owned();
    let last = s.pop().unwrap();
    s.push(if last == 'A' { 'B' } else { 'A' });
    s
}

fn with_secret(client: &TestClient, secret: &str) -> TestClient {
    TestClient {
        client_id: client.client_id.clone(),
        client_secret: Some(secret.to_owned()),
        redirect_uri: client.redirect_uri.clone(),
    }
}

/// Asserts `client` can (or cannot) get a token with its current credentials.
async fn assert_authenticates(app: &TestApp, client: &TestClient, expected: bool) {
    let res = basic_post(app, TOKEN, client, &[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    if expected {
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    } else {
        assert_oauth_error(res, 401, "invalid_client").await;
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------------

async fn metadata_lists_every_endpoint_grant_type_and_method(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let meta: Value = res.json().await.unwrap();
    let has = |field: &str, value: &str| {
        meta[field]
            .as_array()
            .unwrap_or_else(|| panic!("{field} is a list: {meta}"))
            .iter()
            .any(|v| v == value)
    };

    assert_eq!(meta["issuer"], app.base);
    assert_eq!(
        meta["authorization_endpoint"],
        app.url("/oauth/v1/authorize")
    );
    assert_eq!(meta["token_endpoint"], app.url(TOKEN));
    assert_eq!(meta["revocation_endpoint"], app.url(REVOKE));
    assert_eq!(meta["introspection_endpoint"], app.url(INTROSPECT));
    for grant in ["authorization_code", "refresh_token", "client_credentials"] {
        assert!(has("grant_types_supported", grant), "{grant}");
    }
    for method in ["client_secret_basic", "client_secret_post"] {
        assert!(
            has("token_endpoint_auth_methods_supported", method),
            "{method}"
        );
    }
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["response_types_supported"], json!(["code"]));
}

// ---------------------------------------------------------------------------------------------
// Token endpoint: client authentication
// ---------------------------------------------------------------------------------------------

async fn token_responses_are_never_cached(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let res = basic_post(
        &app,
        TOKEN,
        &client,
        &[("grant_type", "client_credentials")],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);

    // Errors too, whatever the status.
    for (request, status) in [
        (
            basic_post(
                &app,
                TOKEN,
                &with_secret(&client, "wrong"),
                &[("grant_type", "client_credentials")],
            ),
            401,
        ),
        (
            basic_post(&app, TOKEN, &client, &[("grant_type", "password")]),
            400,
        ),
        (
            basic_post(
                &app,
                TOKEN,
                &client,
                &[("grant_type", "authorization_code"), ("code", "nope")],
            ),
            400,
        ),
    ] {
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), status);
        assert_eq!(res.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    }
}

async fn wrong_client_secret_is_invalid_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let secret = client.client_secret.clone().unwrap();
    for wrong in [
        "wrong",
        corrupted(&secret).as_str(),
        &secret[..secret.len() - 1],
    ] {
        let form = [("grant_type", "client_credentials")];
        assert_refused(
            basic_post(&app, TOKEN, &with_secret(&client, wrong), &form),
            401,
            "invalid_client",
        )
        .await;
        // The same with client_secret_post.
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
            ("client_secret", wrong),
        ];
        assert_refused(plain_post(&app, TOKEN, &form), 401, "invalid_client").await;
    }
}

async fn unknown_client_is_invalid_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    for unknown_id in [corrupted(&client.client_id), "nobody".to_owned()] {
        let unknown = TestClient {
            client_id: unknown_id,
            ..with_secret(&client, client.client_secret.as_deref().unwrap())
        };
        let form = [("grant_type", "client_credentials")];
        assert_refused(
            basic_post(&app, TOKEN, &unknown, &form),
            401,
            "invalid_client",
        )
        .await;
    }
}

async fn missing_client_authentication_is_invalid_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    assert_refused(
        plain_post(&app, TOKEN, &[("grant_type", "client_credentials")]),
        401,
        "invalid_client",
    )
    .await;
    // A confidential client naming itself without its secret has not authenticated either.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", &client.client_id),
    ];
    assert_refused(plain_post(&app, TOKEN, &form), 401, "invalid_client").await;
    // Nor has a malformed Basic header.
    let garbled = app
        .http
        .post(app.url(TOKEN))
        .header("authorization", "Basic !!!")
        .form(&[("grant_type", "client_credentials")]);
    assert_refused(garbled, 401, "invalid_client").await;
}

async fn another_apps_client_secret_is_invalid_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let mine = app.client(&[], &[], false, true).await;
    let theirs = app.client(&[], &[], false, true).await;
    let borrowed = with_secret(&mine, theirs.client_secret.as_deref().unwrap());
    assert_refused(
        basic_post(
            &app,
            TOKEN,
            &borrowed,
            &[("grant_type", "client_credentials")],
        ),
        401,
        "invalid_client",
    )
    .await;
}

async fn expired_client_secret_is_invalid_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    app.clock.advance(YEAR - 1);
    assert_authenticates(&app, &client, true).await;
    app.clock.advance(1);
    assert_authenticates(&app, &client, false).await;
}

async fn reset_client_secret_ends_the_old_one_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let old = app.client(&[], &[], false, true).await;
    let (_, plain) = app
        .gatehouse
        .reset_client_secret("test", &old.client_id)
        .await
        .unwrap();
    let new = with_secret(&old, plain.expose());
    assert_authenticates(&app, &old, false).await;
    assert_authenticates(&app, &new, true).await;
}

async fn a_cached_client_secret_stops_at_once_when_reset_or_the_app_is_suspended(backend: Backend) {
    let app = spawn_app(backend).await;
    let old = app.client(&[], &[], false, true).await;
    // Used once, the secret's answer is in this node's cache.
    assert_authenticates(&app, &old, true).await;
    assert_authenticates(&app, &old, true).await;
    let (_, plain) = app
        .gatehouse
        .reset_client_secret("test", &old.client_id)
        .await
        .unwrap();
    assert_authenticates(&app, &old, false).await;
    let new = with_secret(&old, plain.expose());
    assert_authenticates(&app, &new, true).await;
    app.gatehouse
        .decide_app("test", &new.client_id, DecisionRequest::Suspend)
        .await
        .unwrap();
    assert_refused(
        basic_post(&app, TOKEN, &new, &[("grant_type", "client_credentials")]),
        400,
        "unauthorized_client",
    )
    .await;
}

async fn reset_client_secret_keeps_the_old_one_for_the_grace_period(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.lifetimes.client_secret_grace = 600
    })
    .await;
    let old = app.client(&[], &[], false, true).await;
    let (_, plain) = app
        .gatehouse
        .reset_client_secret("test", &old.client_id)
        .await
        .unwrap();
    let new = with_secret(&old, plain.expose());
    assert_authenticates(&app, &old, true).await;
    assert_authenticates(&app, &new, true).await;
    app.clock.advance(599);
    assert_authenticates(&app, &old, true).await;
    app.clock.advance(1);
    assert_authenticates(&app, &old, false).await;
    assert_authenticates(&app, &new, true).await;
}

async fn basic_and_body_client_secret_together_is_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let secret = client.client_secret.as_deref().unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client.client_id.as_str()),
        ("client_secret", secret),
    ];
    assert_refused(
        basic_post(&app, TOKEN, &client, &form),
        400,
        "invalid_request",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Token endpoint: the request
// ---------------------------------------------------------------------------------------------

async fn unknown_grant_type_is_unsupported_grant_type(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    for grant in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        let form = [("grant_type", grant), ("username", "a"), ("password", "b")];
        assert_refused(
            basic_post(&app, TOKEN, &client, &form),
            400,
            "unsupported_grant_type",
        )
        .await;
    }
}

async fn missing_grant_type_is_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    assert_refused(
        basic_post(&app, TOKEN, &client, &[("scope", "read")]),
        400,
        "invalid_request",
    )
    .await;
    assert_refused(
        basic_post(&app, TOKEN, &client, &[("grant_type", "")]),
        400,
        "invalid_request",
    )
    .await;
}

async fn json_body_is_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let request = app
        .http
        .post(app.url(TOKEN))
        .basic_auth(&client.client_id, client.client_secret.as_ref())
        .json(&json!({ "grant_type": "client_credentials" }));
    assert_refused(request, 400, "invalid_request").await;
}

async fn repeated_parameter_is_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    for body in [
        "grant_type=client_credentials&scope=read&scope=read",
        "grant_type=client_credentials&grant_type=client_credentials",
    ] {
        let request = app
            .http
            .post(app.url(TOKEN))
            .basic_auth(&client.client_id, client.client_secret.as_ref())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        assert_refused(request, 400, "invalid_request").await;
    }
}

async fn missing_code_or_refresh_token_is_invalid_request_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    for (grant, missing) in [
        ("authorization_code", "code"),
        ("refresh_token", "refresh_token"),
    ] {
        for form in [
            vec![("grant_type", grant)],
            vec![("grant_type", grant), (missing, "")],
        ] {
            let res = basic_post(&app, TOKEN, &client, &form)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 400);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"], "invalid_request", "{body}");
            assert_eq!(
                body["error_description"],
                format!("{missing} is required"),
                "{body}"
            );
        }
    }
}

async fn a_malformed_token_request_is_refused_before_the_client_is_looked_up(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let wrong = with_secret(&client, "wrong");
    for form in [
        vec![("grant_type", "authorization_code")],
        vec![("grant_type", "password")],
        vec![("scope", "read")],
    ] {
        let res = basic_post(&app, TOKEN, &wrong, &form).send().await.unwrap();
        assert_eq!(res.status(), 400, "{form:?}");
        let res = plain_post(&app, TOKEN, &form).send().await.unwrap();
        assert_eq!(res.status(), 400, "{form:?}");
    }
}

async fn garbage_code_is_invalid_grant(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let real = code_for(&app, &client, &app.user("garbage-code@example.com").await).await;
    for code in [
        "garbage",
        corrupted(&real).as_str(),
        &real[..real.len() - 1],
        client.client_secret.as_deref().unwrap(),
    ] {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
        ];
        assert_refused(
            basic_post(&app, TOKEN, &client, &form),
            400,
            "invalid_grant",
        )
        .await;
    }
    // None of that spoiled the real code.
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &real),
        ("redirect_uri", CALLBACK),
    ];
    ok_json(basic_post(&app, TOKEN, &client, &form)).await;
}

async fn garbage_refresh_token_is_invalid_grant(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let tokens = code_tokens(
        &app,
        &client,
        &app.user("garbage-refresh@example.com").await,
    )
    .await;
    let real = tokens["refresh_token"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    for refresh in [
        "garbage",
        corrupted(real).as_str(),
        &real[..real.len() - 1],
        access,
    ] {
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
        assert_refused(
            basic_post(&app, TOKEN, &client, &form),
            400,
            "invalid_grant",
        )
        .await;
    }
    ok_json(basic_post(
        &app,
        TOKEN,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", real)],
    ))
    .await;
}

async fn code_issued_to_another_client_is_invalid_grant(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.client(&[], &[], false, true).await;
    let b = app.client(&[], &[], false, true).await;
    let code = code_for(&app, &a, &app.user("two-clients@example.com").await).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CALLBACK),
    ];
    assert_refused(basic_post(&app, TOKEN, &b, &form), 400, "invalid_grant").await;
}

async fn redirect_uri_mismatch_at_exchange_is_invalid_grant(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = "https://client.example.com/other";
    let client = app.client(&[], &[CALLBACK, other], false, true).await;
    let code = code_for(&app, &client, &app.user("mismatch@example.com").await).await;
    for redirect_uri in [other, "https://client.example.com/callback/", ""] {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect_uri),
        ];
        assert_refused(
            basic_post(&app, TOKEN, &client, &form),
            400,
            "invalid_grant",
        )
        .await;
    }
}

async fn client_credentials_beyond_the_apps_scopes_is_invalid_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&["read"], &[], false, true).await;
    for scope in ["write", "read write", "admin"] {
        let form = [("grant_type", "client_credentials"), ("scope", scope)];
        assert_refused(
            basic_post(&app, TOKEN, &client, &form),
            400,
            "invalid_scope",
        )
        .await;
    }
    let body = ok_json(basic_post(
        &app,
        TOKEN,
        &client,
        &[("grant_type", "client_credentials"), ("scope", "read")],
    ))
    .await;
    assert_eq!(body["scope"], "read");
}

async fn pending_apps_valid_credentials_get_no_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, false).await;
    let res = basic_post(
        &app,
        TOKEN,
        &client,
        &[("grant_type", "client_credentials")],
    )
    .send()
    .await
    .unwrap();
    let status = res.status().as_u16();
    assert!(status == 400 || status == 401, "{status}");
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"] == "unauthorized_client" || body["error"] == "invalid_client",
        "{body}"
    );
    assert!(body.get("access_token").is_none());
}

async fn public_client_cannot_use_client_credentials(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], true, true).await;
    assert!(client.client_secret.is_none());
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client.client_id.as_str()),
    ];
    assert_refused(plain_post(&app, TOKEN, &form), 400, "unauthorized_client").await;
}

/// The app is deleted after its client authenticated and before its grant is stored (deleting
/// an app deletes its codes and tokens): each grant is refused as a client error, and the
/// client that is gone is `invalid_client`, never a `server_error`.
async fn an_app_deleted_while_its_request_is_served_is_refused_not_a_server_error(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let owner = app.user("deleted-app-owner@example.com").await;
    let created = app
        .gatehouse
        .create_app(
            "test",
            NewApp {
                owner_email: owner.email.as_str(),
                name: "Fleet Dashboard",
                redirect_uris: &[CALLBACK.to_owned()],
                scopes: &[],
                public: false,
            },
        )
        .await
        .unwrap();
    let client_id = created.app.client_id.to_string();
    app.gatehouse
        .decide_app("test", &client_id, DecisionRequest::Approve)
        .await
        .unwrap();
    let client = TestClient {
        client_id: client_id.clone(),
        client_secret: created.secret.map(|(_, plain)| plain.expose().to_owned()),
        redirect_uri: CALLBACK.to_owned(),
    };
    let user = app.user("deleted-app-user@example.com").await;
    let code = code_for(&app, &client, &user).await;
    let refresh = code_tokens(&app, &client, &user).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let authenticated = app
        .gatehouse
        .authenticate_client(&ClientCredentials::Secret {
            client_id: client_id.clone(),
            secret: client.client_secret.clone().unwrap(),
        })
        .await
        .unwrap();

    app.gatehouse
        .delete_my_app(&owner, &client_id)
        .await
        .unwrap();

    let requests = [
        (
            TokenRequest::ClientCredentials {
                scope: None,
                resource: None,
            },
            OAuthErrorCode::InvalidClient,
        ),
        (
            TokenRequest::AuthorizationCode {
                code,
                redirect_uri: Some(CALLBACK.to_owned()),
                code_verifier: None,
                resource: None,
            },
            OAuthErrorCode::InvalidGrant,
        ),
        (
            TokenRequest::RefreshToken {
                refresh_token: refresh,
                scope: None,
                resource: None,
            },
            OAuthErrorCode::InvalidGrant,
        ),
    ];
    for (request, expected) in requests {
        match app.gatehouse.grant_tokens(&authenticated, &request).await {
            Err(ServiceError::OAuth(e)) => assert_eq!(e.code, expected, "{request:?}: {e}"),
            other => panic!("{request:?}: expected {expected:?}, got {other:?}"),
        }
    }
    // Over HTTP the client no longer authenticates at all.
    assert_refused(
        basic_post(
            &app,
            TOKEN,
            &client,
            &[("grant_type", "client_credentials")],
        ),
        401,
        "invalid_client",
    )
    .await;
}

async fn suspended_apps_tokens_turn_inactive_and_it_gets_no_new_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let resource_server = app.client(&[], &[], false, true).await;
    let token = client_credentials_token(&app, &client).await;
    app.gatehouse
        .decide_app("test", &client.client_id, DecisionRequest::Suspend)
        .await
        .unwrap();
    assert_eq!(
        introspect(&app, &resource_server, &token).await,
        json!({ "active": false })
    );
    let res = basic_post(
        &app,
        TOKEN,
        &client,
        &[("grant_type", "client_credentials")],
    )
    .send()
    .await
    .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    let body: Value = res.json().await.unwrap();
    assert!(body.get("access_token").is_none(), "{body}");
}

// ---------------------------------------------------------------------------------------------
// Revocation
// ---------------------------------------------------------------------------------------------

async fn revoking_an_unknown_token_is_ok(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let token = client_credentials_token(&app, &client).await;
    for unknown in ["garbage", corrupted(&token).as_str()] {
        let res = basic_post(&app, REVOKE, &client, &[("token", unknown)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{unknown}");
        assert_eq!(res.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    }
    assert_eq!(
        introspect(&app, &client, &token).await["active"],
        true,
        "the real token is untouched"
    );
    // Revoking twice: the second time the token is as good as unknown.
    for _ in 0..2 {
        let res = basic_post(
            &app,
            REVOKE,
            &client,
            &[("token", &token), ("token_type_hint", "access_token")],
        )
        .send()
        .await
        .unwrap();
        assert_eq!(res.status(), 200);
    }
}

async fn a_client_cannot_revoke_another_clients_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.client(&[], &[], false, true).await;
    let stranger = app.client(&[], &[], false, true).await;
    let access = client_credentials_token(&app, &owner).await;
    let refresh = code_tokens(&app, &owner, &app.user("not-yours@example.com").await).await
        ["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for token in [&access, &refresh] {
        assert_refused(
            basic_post(&app, REVOKE, &stranger, &[("token", token)]),
            400,
            "unauthorized_client",
        )
        .await;
        assert_eq!(
            introspect(&app, &owner, token).await["active"],
            true,
            "the token stays active"
        );
    }
}

async fn revoked_access_token_is_inactive(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let token = client_credentials_token(&app, &client).await;
    assert_eq!(introspect(&app, &client, &token).await["active"], true);
    let res = basic_post(&app, REVOKE, &client, &[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        introspect(&app, &client, &token).await,
        json!({ "active": false })
    );
}

async fn revocation_requires_client_authentication(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let token = client_credentials_token(&app, &client).await;
    assert_refused(
        plain_post(&app, REVOKE, &[("token", &token)]),
        401,
        "invalid_client",
    )
    .await;
    assert_refused(
        basic_post(
            &app,
            REVOKE,
            &with_secret(&client, "wrong"),
            &[("token", &token)],
        ),
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(
        introspect(&app, &client, &token).await["active"],
        true,
        "still active"
    );
}

// ---------------------------------------------------------------------------------------------
// Introspection
// ---------------------------------------------------------------------------------------------

async fn approved_confidential_app_can_introspect_with_basic_or_post(backend: Backend) {
    let app = spawn_app(backend).await;
    let holder = app.client(&[], &[], false, true).await;
    let resource_server = app.client(&[], &[], false, true).await;
    let token = client_credentials_token(&app, &holder).await;

    let by_basic = introspect(&app, &resource_server, &token).await;
    assert_eq!(by_basic["active"], true);
    let secret = resource_server.client_secret.as_deref().unwrap();
    let form = [
        ("token", token.as_str()),
        ("client_id", &resource_server.client_id),
        ("client_secret", secret),
    ];
    let by_post = ok_json(plain_post(&app, INTROSPECT, &form)).await;
    assert_eq!(by_post, by_basic);
}

async fn account_can_introspect_with_basic(backend: Backend) {
    let app = spawn_app(backend).await;
    let holder = app.client(&[], &[], false, true).await;
    let token = client_credentials_token(&app, &holder).await;
    let created = app
        .gatehouse
        .create_account("test", "Acme", &[])
        .await
        .unwrap();
    let account_id = created.account.account_id.as_str();
    let request = app
        .http
        .post(app.url(INTROSPECT))
        .basic_auth(account_id, Some(created.secret_key.expose()))
        .form(&[("token", &token)]);
    let body = ok_json(request).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], holder.client_id);

    let wrong = app
        .http
        .post(app.url(INTROSPECT))
        .basic_auth(account_id, Some("wrong"))
        .form(&[("token", &token)]);
    assert_refused(wrong, 401, "invalid_client").await;
}

async fn public_client_or_no_authentication_cannot_introspect(backend: Backend) {
    let app = spawn_app(backend).await;
    let holder = app.client(&[], &[], false, true).await;
    let public = app.client(&[], &[], true, true).await;
    let token = client_credentials_token(&app, &holder).await;
    assert_refused(
        plain_post(&app, INTROSPECT, &[("token", &token)]),
        401,
        "invalid_client",
    )
    .await;
    let form = [("token", token.as_str()), ("client_id", &public.client_id)];
    assert_refused(plain_post(&app, INTROSPECT, &form), 401, "invalid_client").await;
    let public_basic = app
        .http
        .post(app.url(INTROSPECT))
        .basic_auth(&public.client_id, Some(""))
        .form(&[("token", &token)]);
    assert_refused(public_basic, 401, "invalid_client").await;
}

async fn apps_that_are_not_approved_cannot_introspect(backend: Backend) {
    let app = spawn_app(backend).await;
    let holder = app.client(&[], &[], false, true).await;
    let token = client_credentials_token(&app, &holder).await;
    let pending = app.client(&[], &[], false, false).await;
    let suspended = app.client(&[], &[], false, true).await;
    app.gatehouse
        .decide_app("test", &suspended.client_id, DecisionRequest::Suspend)
        .await
        .unwrap();
    for caller in [&pending, &suspended] {
        let res = basic_post(&app, INTROSPECT, caller, &[("token", &token)])
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{}", res.status());
        let body: Value = res.json().await.unwrap();
        assert!(body.get("active").is_none(), "{body}");
    }
}

async fn inactive_tokens_are_exactly_active_false(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let revoked = client_credentials_token(&app, &client).await;
    basic_post(&app, REVOKE, &client, &[("token", &revoked)])
        .send()
        .await
        .unwrap();
    let expiring = client_credentials_token(&app, &client).await;
    let tokens = code_tokens(&app, &client, &app.user("inactive@example.com").await).await;
    let rotated = tokens["refresh_token"].as_str().unwrap().to_owned();
    ok_json(basic_post(
        &app,
        TOKEN,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", &rotated)],
    ))
    .await;

    assert_eq!(
        introspect(&app, &client, &revoked).await,
        json!({ "active": false }),
        "revoked"
    );
    assert_eq!(
        introspect(&app, &client, &rotated).await,
        json!({ "active": false }),
        "rotated away"
    );
    assert_eq!(introspect(&app, &client, &expiring).await["active"], true);
    app.clock.advance(3600);
    assert_eq!(
        introspect(&app, &client, &expiring).await,
        json!({ "active": false }),
        "expired"
    );
}

async fn malformed_token_is_inactive(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let real = client_credentials_token(&app, &client).await;
    for token in [
        "garbage",
        "ghat_us_",
        corrupted(&real).as_str(),
        &real[..real.len() - 1],
        "<script>",
        "%00",
    ] {
        assert_eq!(
            introspect(&app, &client, token).await,
            json!({ "active": false }),
            "{token}"
        );
    }
}

async fn token_of_another_kind_is_inactive(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let client_secret = client.client_secret.clone().unwrap();
    let account = app
        .gatehouse
        .create_account("test", "Acme", &[])
        .await
        .unwrap();
    let code = code_for(&app, &client, &app.user("kinds@example.com").await).await;
    for (kind, token) in [
        ("client secret", client_secret.as_str()),
        ("secret key", account.secret_key.expose()),
        ("code", &code),
    ] {
        assert_eq!(
            introspect(&app, &client, token).await,
            json!({ "active": false }),
            "{kind}"
        );
    }
}

async fn active_token_carries_scope_client_sub_and_times(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&["read", "write"], &[], false, true).await;
    let user = app.user("active@example.com").await;
    let tokens = code_tokens(&app, &client, &user).await;
    let answer = introspect(&app, &client, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["scope"], "read write");
    assert_eq!(answer["client_id"], client.client_id);
    assert_eq!(answer["sub"], user.user_id.as_str());
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["iat"], T0.unix());
    assert_eq!(answer["exp"], T0.unix() + 3600);
}

async fn client_credentials_token_has_no_subject(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&["read"], &[], false, true).await;
    let token = client_credentials_token(&app, &client).await;
    let answer = introspect(&app, &client, &token).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["scope"], "read");
    assert_eq!(answer["client_id"], client.client_id);
    assert_eq!(answer["token_type"], "Bearer");
    assert!(answer["iat"].is_i64() && answer["exp"].is_i64(), "{answer}");
    assert!(answer.get("sub").is_none(), "no user granted it: {answer}");
}
