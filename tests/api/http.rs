//! The HTTP surface: health checks, request ids, body limits, GraphQL over HTTP (GET, POST,
//! content negotiation), the query limits, authorization headers, internal errors, CORS and
//! graceful shutdown.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use reqwest::header::{HeaderMap, ACCEPT, ALLOW, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
        .to_string()
}

/// True when the response carries no data (absent or null): the request never ran.
fn no_data(resp: &Value) -> bool {
    resp.get("data").is_none_or(Value::is_null)
}

/// POSTs a query with the given Accept header and returns (status, content type, body).
async fn post_accepting(app: &TestApp, accept: &str, query: &str) -> (StatusCode, String, Value) {
    let resp = app
        .client
        .post(app.url("/graphql"))
        .header(ACCEPT, accept)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let ct = content_type(resp.headers());
    let body: Value = resp.json().await.expect("json body");
    (status, ct, body)
}

async fn assert_too_complex(app: &TestApp, query: &str) {
    let r = app.gql(None, query, json!({})).await;
    assert_eq!(error_code(&r), "QUERY_TOO_COMPLEX", "{r}");
    assert!(no_data(&r), "a refused query must not run: {r}");
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn readyz_is_ready_on_a_migrated_database_and_not_while_a_migration_is_pending() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);

    Migrator::down(&app.db, Some(1))
        .await
        .expect("roll back the last migration");
    let resp = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);

    Migrator::up(&app.db, None).await.expect("migrate again");
    let resp = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_given_one_is_echoed() {
    let app = spawn_app().await;
    let first = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    let second = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    let id = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_default()
    };
    let (a, b) = (id(&first), id(&second));
    assert!(!a.is_empty(), "no generated x-request-id");
    assert!(!b.is_empty(), "no generated x-request-id");
    assert_ne!(a, b, "request ids must differ between requests");

    let mine = "client-chosen-id-42";
    let resp = app
        .client
        .post(app.url("/graphql"))
        .header("x-request-id", mine)
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(
        resp.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(mine)
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let limit = 2048;
    let app = spawn_app_with(|s| s.server.body_limit_bytes = limit).await;
    let body_of = |len: usize| {
        let base = json!({ "query": "{ me { id } }" }).to_string();
        // Pad the query with spaces (insignificant in GraphQL) to the wanted length.
        let pad = " ".repeat(len - base.len());
        let body = json!({ "query": format!("{{ me {{ id }} }}{pad}") }).to_string();
        assert_eq!(body.len(), len);
        body
    };
    let send = |body: String| {
        app.client
            .post(app.url("/graphql"))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    };
    let under = send(body_of(limit - 100)).await.expect("request");
    assert_eq!(under.status(), StatusCode::OK);
    let over = send(body_of(limit + 1)).await.expect("request");
    assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn queries_run_over_get_but_mutations_do_not() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ me { id } }")])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body, json!({ "data": { "me": null } }));

    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "mutation { logOutEverywhere { loggedOut } }")])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        resp.headers().get(ALLOW).and_then(|v| v.to_str().ok()),
        Some("POST")
    );
}

#[tokio::test]
async fn a_browser_gets_graphiql() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/graphql"))
        .header(ACCEPT, "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        content_type(resp.headers()).starts_with("text/html"),
        "{:?}",
        resp.headers()
    );
    let html = resp.text().await.expect("text");
    assert!(html.to_lowercase().contains("graphiql"), "{html}");
    assert!(html.contains("/graphql"), "{html}");
}

#[tokio::test]
async fn responses_follow_the_accept_header() {
    let app = spawn_app().await;
    let (status, ct, body) = post_accepting(&app, GRAPHQL_RESPONSE, "{ me { id } }").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, GRAPHQL_RESPONSE);
    assert_eq!(body, json!({ "data": { "me": null } }));

    let broken = "{ me { id }";
    let (status, ct, body) = post_accepting(&app, GRAPHQL_RESPONSE, broken).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(ct, GRAPHQL_RESPONSE);
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(no_data(&body), "{body}");

    let (status, ct, body) = post_accepting(&app, "application/json", broken).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ct, "application/json");
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

#[tokio::test]
async fn a_query_nested_too_deep_is_refused() {
    let app = spawn_app().await;
    // commitment → suggestions → nodes → commitment → … adds three levels a round.
    let nested = |rounds: usize| {
        format!(
            "{{ commitment(reference: \"UK0001\") {{ {} reference {} }} }}",
            "suggestions(first: 1) { nodes { commitment { ".repeat(rounds),
            "} } } ".repeat(rounds)
        )
    };
    // 1 + 3 × 3 + 1 = 11 levels: within the default 12.
    let ok = app.gql(None, &nested(3), json!({})).await;
    assert!(ok["errors"].is_null(), "{ok}");
    // 14 levels.
    assert_too_complex(&app, &nested(4)).await;
}

#[tokio::test]
async fn the_depth_limit_comes_from_the_settings() {
    let app = spawn_app_with(|s| s.graphql.max_depth = 3).await;
    let ok = app.gql(None, "{ me { id } }", json!({})).await;
    assert_eq!(ok, json!({ "data": { "me": null } }));
    assert_too_complex(
        &app,
        "{ suggestions(first: 1) { nodes { commitment { reference } } } }",
    )
    .await;
}

#[tokio::test]
async fn too_many_aliases_are_refused() {
    let app = spawn_app().await;
    let max = app.settings.graphql.max_aliases;
    let aliased = |n: usize| {
        let fields: String = (0..n).map(|i| format!("a{i}: me {{ id }} ")).collect();
        format!("{{ {fields}}}")
    };
    let ok = app.gql(None, &aliased(max), json!({})).await;
    assert!(ok["errors"].is_null(), "{max} aliases are allowed: {ok}");
    assert!(ok["data"]["a0"].is_null() && ok["data"].get("a0").is_some());
    assert_too_complex(&app, &aliased(max + 1)).await;
}

#[tokio::test]
async fn a_query_over_the_complexity_limit_is_refused() {
    let app = spawn_app_with(|s| s.graphql.max_complexity = 3).await;
    let ok = app.gql(None, "{ me { id } }", json!({})).await;
    assert_eq!(ok, json!({ "data": { "me": null } }));
    assert_too_complex(&app, "{ me { id displayName bio organisation } }").await;
}

#[tokio::test]
async fn too_many_directives_on_a_field_are_refused() {
    let app = spawn_app_with(|s| s.graphql.max_directives = 2).await;
    let ok = app
        .gql(
            None,
            "{ me @include(if: true) @skip(if: false) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(ok, json!({ "data": { "me": null } }));
    assert_too_complex(
        &app,
        "{ me @include(if: true) @skip(if: false) @include(if: true) { id } }",
    )
    .await;

    // The default limit too.
    let app = spawn_app().await;
    let many = " @include(if: true)".repeat(app.settings.graphql.max_directives + 1);
    assert_too_complex(&app, &format!("{{ me{many} {{ id }} }}")).await;
}

#[tokio::test]
async fn a_bad_token_is_an_error_never_anonymous() {
    let app = spawn_app().await;
    for auth in [
        "Bearer not-a-token",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
        "Basic x",
        "Bearer ",
    ] {
        let resp = app
            .client
            .post(app.url("/graphql"))
            .header("authorization", auth)
            .json(&json!({ "query": "{ me { id } }" }))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth}");
        assert!(
            resp.headers().get("www-authenticate").is_some(),
            "{auth}: no WWW-Authenticate"
        );
        let body: Value = resp.json().await.expect("json");
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{auth}: {body}");
        assert!(no_data(&body), "{auth}: {body}");
    }
}

#[tokio::test]
async fn an_internal_error_hides_the_database_text() {
    let app = spawn_app().await;
    exec(&app.db, "DROP TABLE refresh_tokens").await;
    let r = app
        .gql(
            None,
            r#"mutation { refreshSession(refreshToken: "x") { accessToken } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&r), "INTERNAL", "{r}");
    assert_eq!(r["errors"][0]["message"], "internal error", "{r}");
    let text = r.to_string().to_lowercase();
    for leak in [
        "refresh_tokens",
        "no such table",
        "does not exist",
        "sqlite",
        "sqlx",
    ] {
        assert!(!text.contains(leak), "the response leaks {leak:?}: {r}");
    }
}

#[tokio::test]
async fn unknown_fields_and_wrong_variable_types_are_bad_input() {
    let app = spawn_app().await;
    let r = app.gql(None, "{ noSuchField }", json!({})).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert!(no_data(&r), "{r}");

    let r = app.gql(None, "{ me { id noSuchField } }", json!({})).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");

    let q = "mutation($t: String!) { verifyEmail(token: $t) { user { id } } }";
    let r = app.gql(None, q, json!({ "t": 123 })).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert!(no_data(&r), "{r}");

    let r = app.gql(None, q, json!({})).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "missing variable: {r}");

    let resp = app
        .client
        .post(app.url("/graphql"))
        .header(CONTENT_TYPE, "application/json")
        .body("this is not json")
        .send()
        .await
        .expect("request");
    // A body that is not JSON is a bad request for every client.
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

#[tokio::test]
async fn cors_preflights_are_answered() {
    let app = spawn_app().await;
    let resp = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", "https://front.example.org")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization",
        )
        .send()
        .await
        .expect("request");
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(
        resp.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
    let methods = resp
        .headers()
        .get("access-control-allow-methods")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(methods.contains("POST"), "{methods}");
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let allowed = "https://front.example.org";
    let app = spawn_app_with(|s| s.server.cors_origins = vec![allowed.to_string()]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let ok = preflight(allowed).await.expect("request");
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(allowed)
    );
    let other = preflight("https://elsewhere.example.com")
        .await
        .expect("request");
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        other.headers()
    );
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish_then_refuses_connections() {
    let app = spawn_app().await;
    let host = app.address.trim_start_matches("http://").to_string();
    let body = json!({ "query": "{ me { id } }" }).to_string();
    let (head, tail) = body.split_at(body.len() / 2);

    // A request whose headers and half its body have arrived.
    let mut stream = tokio::net::TcpStream::connect(&host)
        .await
        .expect("connect");
    let request = format!(
        "POST /graphql HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{head}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write head");
    stream.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "the server stopped with a request in flight"
    );

    stream.write_all(tail.as_bytes()).await.expect("write tail");
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("the in-flight request was answered")
    .expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#"{"data":{"me":null}}"#), "{response}");

    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("stop finished")
        .expect("join")
        .expect("stop returned Ok");
    assert!(
        tokio::net::TcpStream::connect(&host).await.is_err(),
        "the port still accepts connections after stop"
    );
}

/// A document that passed validation once runs without it next time (`Admission::Trusted`),
/// but only when each variable is a plain scalar given a value of its type: a validated
/// document with wrong, missing or out-of-range variables gets the same error, before any
/// data, as it did before it was ever validated; and a document that failed validation
/// fails every time.
#[tokio::test]
async fn a_validated_document_still_checks_each_requests_variables() {
    let app = spawn_app().await;
    let q = "query($c: ID!, $n: Int) { suggestions(filter: {commitmentId: $c}, first: $n) { nodes { id } } }";
    let c = uuid::Uuid::now_v7().to_string();
    // Seen first with a wrong variable: cached, not yet validated.
    let before = app.gql(None, q, json!({ "c": c, "n": "five" })).await;
    assert_eq!(error_code(&before), "BAD_USER_INPUT", "{before}");
    assert!(no_data(&before), "{before}");
    for _ in 0..3 {
        let r = app.gql(None, q, json!({ "c": c, "n": 5 })).await;
        assert!(r["errors"].is_null(), "{r}");
        assert_eq!(r["data"]["suggestions"]["nodes"], json!([]));
    }
    // Validated now; each of these must still be refused before it runs.
    let after = app.gql(None, q, json!({ "c": c, "n": "five" })).await;
    assert_eq!(after, before, "the same refusal as before validation");
    for bad in [
        json!({ "c": c, "n": 3_000_000_000_i64 }),
        json!({ "c": c, "n": 1.5 }),
        json!({ "c": null, "n": 5 }),
        json!({ "n": 5 }),
        json!({ "c": { "id": c }, "n": 5 }),
        json!({ "c": true }),
    ] {
        let r = app.gql(None, q, bad.clone()).await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{bad}: {r}");
        assert!(no_data(&r), "{bad}: {r}");
    }
    // A non-null variable given null names the variable.
    let r = app.gql(None, q, json!({ "c": null, "n": 5 })).await;
    assert_eq!(r["errors"][0]["extensions"]["field"], "c", "{r}");
    // An integer is an ID too, and null is a nullable Int.
    let r = app.gql(None, q, json!({ "c": 12, "n": null })).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert!(
        r["errors"][0]["path"].is_array(),
        "refused by the resolver, not validation: {r}"
    );

    let invalid = "{ suggestions { nodes { id noSuchField } } }";
    for _ in 0..3 {
        let r = app.gql(None, invalid, json!({})).await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
        assert!(no_data(&r), "{r}");
    }
}
