//! The table of paths (`gatehouse_core::paths`) against the running server: every served path
//! answers (it is not left to the gateway's 404), planned ones are not served yet, the RFC 8414
//! metadata names only table paths, and both spellings of the portal and admin home pages work.

use crate::helpers::{
    admin, browser, location, on_both_backends, page, page_ok, signed_in, spawn_app,
};
use gatehouse_core::paths;
use gatehouse_store::testing::Backend;
use serde_json::{json, Value};

on_both_backends!(
    every_served_path_answers_and_every_planned_one_is_left_to_the_gateway,
    the_metadata_names_only_paths_of_the_table,
    the_portal_home_page_answers_with_and_without_a_trailing_slash,
    the_admin_home_page_answers_with_and_without_a_trailing_slash,
);

/// Whether a response is the gateway's own 404: what a path no route serves gets.
async fn is_gateway_404(res: reqwest::Response) -> bool {
    res.status() == 404 && res.json::<Value>().await.ok() == Some(json!({ "message": "Not Found" }))
}

async fn every_served_path_answers_and_every_planned_one_is_left_to_the_gateway(backend: Backend) {
    let app = spawn_app(backend).await;
    let get = |path: String| {
        let request = app.http.get(app.url(&path));
        async move { request.send().await.unwrap() }
    };
    // The check below can tell: a path beside the table gets the gateway's 404.
    assert!(is_gateway_404(get("/portalx".to_owned()).await).await);
    for pattern in paths::SERVED {
        let path = paths::expand(pattern, &["x", "approve"]);
        let res = get(path.clone()).await;
        let status = res.status();
        assert!(
            !is_gateway_404(res).await,
            "GET {path} ({pattern}) fell through to the gateway ({status})"
        );
    }
    for path in paths::PLANNED {
        assert!(
            is_gateway_404(get(path.to_string()).await).await,
            "{path} is planned: serving it means moving it to SERVED"
        );
    }
}

async fn the_metadata_names_only_paths_of_the_table(backend: Backend) {
    let app = spawn_app(backend).await;
    let metadata: Value = app
        .http
        .get(app.url(paths::METADATA))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], app.base);
    let endpoints: Vec<&str> = metadata
        .as_object()
        .unwrap()
        .iter()
        .filter(|(key, _)| key.ends_with("_endpoint"))
        .map(|(key, url)| {
            let url = url.as_str().unwrap();
            url.strip_prefix(&app.base)
                .unwrap_or_else(|| panic!("{key}: {url} is not under the issuer"))
        })
        .collect();
    for endpoint in &endpoints {
        assert!(
            paths::SERVED.contains(endpoint),
            "{endpoint} is not in the table"
        );
    }
    for endpoint in [
        paths::AUTHORIZE,
        paths::TOKEN,
        paths::REVOKE,
        paths::INTROSPECT,
    ] {
        assert!(
            endpoints.contains(&endpoint),
            "{endpoint} is not advertised"
        );
    }
}

async fn the_portal_home_page_answers_with_and_without_a_trailing_slash(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = browser();
    for path in ["/portal", "/portal/"] {
        let res = anonymous.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        let back = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", path)
            .finish();
        assert_eq!(location(&res), format!("/login?{back}"));
    }
    let dev = signed_in(&app, "dev@example.com").await;
    let without = page_ok(&app, &dev, "/portal").await;
    let with = page_ok(&app, &dev, "/portal/").await;
    assert!(without.contains("<h1>My Apps</h1>"), "{without}");
    assert_eq!(with, without);
}

async fn the_admin_home_page_answers_with_and_without_a_trailing_slash(backend: Backend) {
    let app = spawn_app(backend).await;
    let (console, _) = admin(&app).await;
    let without = page_ok(&app, &console, "/admin").await;
    let with = page_ok(&app, &console, "/admin/").await;
    assert!(without.contains("<h1>Review queue</h1>"), "{without}");
    assert_eq!(with, without);
    let dev = signed_in(&app, "dev@example.com").await;
    assert_eq!(
        page(&app, &dev, "/admin/").await.0,
        page(&app, &dev, "/admin").await.0,
        "a developer is refused alike"
    );
}
