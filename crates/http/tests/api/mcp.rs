//! An MCP client as agents run it, against an MCP server behind the gateway: the official MCP
//! TypeScript SDK's client-side OAuth, unmodified (`tests/clients/node/mcp_client.mjs`), and
//! the SDK's server side as the upstream (`mcp_upstream.mjs`). From nothing but the MCP URL the
//! client must get 401, find the protected resource metadata (RFC 9728) and the authorization
//! server metadata (RFC 8414), register (RFC 7591), authorize with PKCE and `resource`
//! (RFC 8707) through the real login and consent pages, exchange the code, and call the tool
//! through the gateway.

use crate::helpers::{introspect, on_both_backends, query_of, spawn_app_with, TestApp, PASSWORD};
use gatehouse_core::paths;
use gatehouse_service::settings::{RegistrationMode, Route};
use gatehouse_store::testing::Backend;
use serde_json::{json, Value};

on_both_backends!(the_mcp_sdk_discovers_registers_authorizes_and_calls_a_tool_through_the_gateway);

const EMAIL: &str = "ada@example.com";

/// The settings of the README's "Agents and MCP" example: open registration for `read`, a
/// `/mcp` route to the upstream, and a `/v1/` route of another resource.
fn mcp_settings(upstream: &str) -> impl FnOnce(&mut gatehouse_service::Settings) + '_ {
    move |s| {
        s.registration.mode = RegistrationMode::Open;
        s.registration.scopes = s.scopes.exactly(["read"]).unwrap();
        s.routes.push(Route {
            path_prefix: "/mcp".into(),
            upstream: Some(url::Url::parse(upstream).unwrap()),
            scopes: [("*".to_owned(), "read".to_owned())].into(),
            upstream_ca: None,
        });
        s.routes.push(crate::auth_check::v1_route(None));
    }
}

/// The requests of the client's log to `url` with `method`.
fn requests_to<'a>(log: &'a [Value], method: &str, url: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|r| r["method"] == method && r["url"] == url)
        .collect()
}

fn first_to<'a>(log: &'a [Value], method: &str, url: &str) -> &'a Value {
    requests_to(log, method, url)
        .first()
        .copied()
        .unwrap_or_else(|| panic!("the client never sent {method} {url}: {log:#?}"))
}

async fn admin_api_app(app: &TestApp, client_id: &str) -> Value {
    let key = app.gatehouse.create_admin_key("test", "ci").await.unwrap();
    let res = app
        .http
        .get(app.url(&paths::ADMIN_API_APP.replace("{client_id}", client_id)))
        .bearer_auth(key.admin_key.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn the_mcp_sdk_discovers_registers_authorizes_and_calls_a_tool_through_the_gateway(
    backend: Backend,
) {
    let upstream = crate::node::Server::start("mcp_upstream.mjs", &[]).await;
    let upstream_url = format!("http://127.0.0.1:{}", upstream.hello["port"]);
    let app = spawn_app_with(backend, mcp_settings(&upstream_url)).await;
    let user = app.user(EMAIL).await;
    let mcp_url = app.url("/mcp");
    let metadata_url = app.url("/.well-known/oauth-protected-resource/mcp");

    let out = crate::node::run("mcp_client.mjs", &[&mcp_url, EMAIL, PASSWORD]).await;
    let log = out["requests"].as_array().unwrap().as_slice();

    // 1. The first call is refused, and the challenge says where the metadata is.
    let first = &log[0];
    assert_eq!(
        (&first["method"], &first["url"], &first["rpc"]),
        (&json!("POST"), &json!(mcp_url), &json!("initialize")),
        "{log:#?}"
    );
    assert_eq!(first["status"], 401, "{first}");
    let challenge = first["www_authenticate"].as_str().unwrap_or_default();
    // The SDK reads the challenge's parameters only when the header's first challenge is
    // Bearer (`extractWWWAuthenticateParams` in its client/auth.js).
    assert!(
        challenge.starts_with("Bearer "),
        "the Bearer challenge comes first: {challenge}"
    );
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "the 401 names the protected resource metadata (RFC 9728 §5.1): {challenge}"
    );

    // 2. Discovery: the resource's metadata, then the authorization server's.
    assert_eq!(
        first_to(log, "GET", &metadata_url)["status"],
        200,
        "{log:#?}"
    );
    assert_eq!(
        first_to(log, "GET", &app.url(paths::METADATA))["status"],
        200,
        "{log:#?}"
    );

    // 3. Registration (RFC 7591): a public client with its loopback redirect URI.
    let registration = first_to(log, "POST", &app.url(paths::CLIENT_REGISTRATION));
    assert_eq!(registration["status"], 201, "{registration}");
    assert_eq!(registration["json"]["token_endpoint_auth_method"], "none");
    let client_id = out["client_information"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let redirect_uri = registration["json"]["redirect_uris"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        redirect_uri.starts_with("http://127.0.0.1:"),
        "{redirect_uri}"
    );

    // 4. The authorization request: PKCE with S256, and the resource from the metadata.
    let authorization_url = out["authorization_url"].as_str().unwrap();
    assert!(
        authorization_url.starts_with(&app.url(paths::AUTHORIZE)),
        "{authorization_url}"
    );
    let q = query_of(authorization_url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], client_id);
    assert_eq!(q["redirect_uri"], redirect_uri);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43, "{authorization_url}");
    assert_eq!(q["scope"], "read");
    assert_eq!(
        q.get("resource").map(String::as_str),
        Some(mcp_url.as_str()),
        "RFC 8707 resource in the authorization request: {authorization_url}"
    );
    assert_eq!(
        out["callback_iss"], app.base,
        "RFC 9207 iss on the callback"
    );

    // 5. The exchange, with the resource again.
    let token = first_to(log, "POST", &app.url(paths::TOKEN));
    assert_eq!(token["status"], 200, "{token}");
    assert_eq!(token["form"]["grant_type"], "authorization_code");
    assert_eq!(token["form"]["client_id"], client_id);
    assert_eq!(
        token["form"]["resource"], mcp_url,
        "RFC 8707 resource in the token request: {token}"
    );
    assert_eq!(out["tokens"]["token_type"], "Bearer");
    assert_eq!(out["tokens"]["scope"], "read");

    // 6. The tool, called through the gateway with the token: the upstream saw who called and
    // never the token.
    let last = log.last().unwrap();
    assert_eq!(
        (
            &last["url"],
            &last["rpc"],
            &last["status"],
            &last["authorization"]
        ),
        (
            &json!(mcp_url),
            &json!("tools/call"),
            &json!(200),
            &json!("Bearer")
        ),
        "{log:#?}"
    );
    assert_eq!(out["tools"], json!(["whoami"]));
    let whoami = &out["whoami"];
    assert_eq!(whoami["subject"], user.user_id.to_string(), "{whoami}");
    assert_eq!(whoami["client"], client_id, "{whoami}");
    assert_eq!(whoami["scopes"], "read", "{whoami}");
    assert_eq!(whoami["authorization"], Value::Null, "{whoami}");

    // The app is in the admin API as registered by the client itself, approved at once.
    let registered = admin_api_app(&app, &client_id).await;
    assert_eq!(registered["registration"], "dynamic", "{registered}");
    assert_eq!(registered["client_type"], "public", "{registered}");
    assert_eq!(registered["status"], "approved", "{registered}");
    assert!(registered["auto_approved_at"].is_string(), "{registered}");
    assert_eq!(registered["redirect_uris"], json!([redirect_uri]));

    // Introspection reports the token's audience, and the token opens no other resource.
    let access_token = out["tokens"]["access_token"].as_str().unwrap();
    let resource_server = app.client(&["read"], &[], false, true).await;
    let answer = introspect(&app, &resource_server, access_token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], client_id, "{answer}");
    assert_eq!(answer["sub"], user.user_id.to_string(), "{answer}");
    assert!(
        answer["aud"] == json!(mcp_url) || answer["aud"] == json!([mcp_url]),
        "introspection reports the resource as aud: {answer}"
    );
    let res = app
        .http
        .get(app.url(paths::AUTH_CHECK))
        .bearer_auth(access_token)
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", "/v1/trips")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        401,
        "a token for {mcp_url} is refused on /v1/"
    );
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
}
