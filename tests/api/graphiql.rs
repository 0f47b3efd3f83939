//! GraphiQL works offline: the page loads only assets the server itself serves, under a
//! strict Content-Security-Policy, and headless Chromium renders the editor and the schema.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::header::{
    HeaderMap, ACCEPT, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    X_CONTENT_TYPE_OPTIONS,
};
use reqwest::StatusCode;

use crate::helpers::*;

const CHROMIUM: &str = "/usr/bin/chromium";
/// Real time Chromium gets before the test kills it; the page needs a few seconds.
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(120);

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

fn header(headers: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
}

async fn get_page(app: &TestApp) -> reqwest::Response {
    app.client
        .get(app.url("/graphql"))
        .header(ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("request the page")
}

/// Every `src="…"` and `href="…"` in the page.
fn referenced_urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attr) {
            let after = &rest[start + attr.len()..];
            let end = after.find('"').expect("attribute closes");
            urls.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    urls
}

#[tokio::test]
async fn the_page_sends_a_strict_content_security_policy() {
    let app = spawn_app().await;
    let resp = get_page(&app).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert_eq!(header(&headers, CONTENT_SECURITY_POLICY), CSP);
    assert_eq!(header(&headers, X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(header(&headers, CONTENT_TYPE), "text/html; charset=utf-8");
    let html = resp.text().await.expect("page body");
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "the CSP forbids inline scripts and styles: {html}"
    );
    assert!(html.contains("data-endpoint=\"/graphql\""), "{html}");
}

#[tokio::test]
async fn every_asset_the_page_references_is_served_from_the_binary() {
    let app = spawn_app().await;
    let html = get_page(&app).await.text().await.expect("page body");
    let urls = referenced_urls(&html);
    let expected = [
        "graphiql.min.css",
        "page.css",
        "react.production.min.js",
        "react-dom.production.min.js",
        "graphiql.min.js",
        "init.js",
    ];
    for name in expected {
        assert!(
            urls.iter()
                .any(|u| u.starts_with(&format!("/graphiql/{name}?v="))),
            "{name} missing from {urls:?}"
        );
    }
    assert_eq!(urls.len(), expected.len(), "{urls:?}");
    for url in &urls {
        assert!(url.starts_with("/graphiql/"), "not a local asset: {url}");
        let resp = app.client.get(app.url(url)).send().await.expect("asset");
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        let headers = resp.headers().clone();
        let want = if url.contains(".css?") {
            "text/css; charset=utf-8"
        } else {
            "text/javascript; charset=utf-8"
        };
        assert_eq!(header(&headers, CONTENT_TYPE), want, "{url}");
        assert_eq!(header(&headers, X_CONTENT_TYPE_OPTIONS), "nosniff", "{url}");
        assert_eq!(
            header(&headers, CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{url}"
        );
        let body = resp.bytes().await.expect("asset body");
        assert!(body.len() > 100, "{url} is nearly empty");
    }
}

#[tokio::test]
async fn assets_revalidate_by_etag_and_only_versioned_urls_are_cached_for_long() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/graphiql/init.js"))
        .send()
        .await
        .expect("asset");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(resp.headers(), CACHE_CONTROL), "no-cache");
    let etag = header(resp.headers(), ETAG).to_string();
    assert!(etag.starts_with('"') && etag.len() > 2, "{etag}");

    let again = app
        .client
        .get(app.url("/graphiql/init.js?v=stale"))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("revalidate");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(again.headers(), CACHE_CONTROL), "no-cache");
    assert!(again.bytes().await.expect("body").is_empty());

    let changed = app
        .client
        .get(app.url("/graphiql/init.js"))
        .header(IF_NONE_MATCH, "\"something-else\"")
        .send()
        .await
        .expect("revalidate");
    assert_eq!(changed.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_assets_are_not_found() {
    let app = spawn_app().await;
    for path in ["/graphiql/nope.js", "/graphiql/..%2Fgraphql", "/graphiql/"] {
        let resp = app.client.get(app.url(path)).send().await.expect("asset");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn nothing_is_served_when_graphiql_is_off() {
    let app = spawn_app_with(|s| s.graphql.graphiql = false).await;
    let resp = get_page(&app).await;
    assert!(
        resp.headers().get(CONTENT_SECURITY_POLICY).is_none(),
        "{:?}",
        resp.headers()
    );
    assert!(!resp.text().await.expect("body").contains("graphiql.min.js"));
    let asset = app
        .client
        .get(app.url("/graphiql/graphiql.min.js"))
        .send()
        .await
        .expect("asset");
    assert_eq!(asset.status(), StatusCode::NOT_FOUND);
}

/// Runs headless Chromium on `url` and returns the DOM once the page has settled. Chromium
/// gets its own process group so that, should it hang, all of its processes are killed.
async fn chromium_dump_dom(url: &str, profile: &Path) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "the GraphiQL browser test needs Chromium at {CHROMIUM}: apt-get install -y chromium"
    );
    let mut command = tokio::process::Command::new(CHROMIUM);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        // Virtual time only runs while the page is idle, so a slow machine still gets the
        // whole budget for the scripts to run and the schema request to come back.
        .arg("--virtual-time-budget=30000")
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn().expect("start Chromium");
    let pid = child.id().expect("Chromium's pid");
    match tokio::time::timeout(CHROMIUM_DEADLINE, child.wait_with_output()).await {
        Ok(output) => {
            let output = output.expect("Chromium's output");
            let dom = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(
                output.status.success() && !dom.is_empty(),
                "Chromium failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            dom
        }
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            panic!("Chromium did not finish within {CHROMIUM_DEADLINE:?}; killed it");
        }
    }
}

#[tokio::test]
async fn chromium_renders_graphiql_with_the_schema_without_the_internet() {
    let app = spawn_app().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let dom = chromium_dump_dom(&app.url("/graphql"), profile.path()).await;

    // The editor: GraphiQL's query editor, built on CodeMirror.
    assert!(dom.contains("graphiql-query-editor"), "no editor: {dom}");
    assert!(dom.contains("CodeMirror"), "no CodeMirror: {dom}");
    // The documentation explorer, open at start, listing the root types: only there once
    // the introspection query has come back.
    assert!(dom.contains("graphiql-doc-explorer"), "no docs: {dom}");
    assert!(!dom.contains("Error fetching schema"), "{dom}");
    assert!(dom.contains("Root Types"), "schema not loaded: {dom}");
    assert!(dom.contains(">Query</a>"), "no Query root type: {dom}");
    assert!(
        dom.contains(">Mutation</a>"),
        "no Mutation root type: {dom}"
    );
}
