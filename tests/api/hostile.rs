//! Hostile queries and clients: fragment fan-out, nested connections, oversized and deeply
//! nested documents, introspection (the standard query passes, abuse does not), the closed
//! WebSocket route, request timeouts, and a stuck client against SIGTERM.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

const INTROSPECTION: &str = include_str!("fixtures/introspection-graphql-js-16.graphql");

fn refused(resp: &Value) -> bool {
    error_code(resp) == "QUERY_TOO_COMPLEX" && resp.get("data").is_none_or(Value::is_null)
}

fn cost(resp: &Value) -> u64 {
    resp["errors"][0]["extensions"]["cost"]
        .as_u64()
        .unwrap_or_else(|| panic!("no extensions.cost: {resp}"))
}

/// `levels` fragments, each spreading the next three times: 3^levels paths.
fn fan_out(levels: usize) -> String {
    let mut q = String::from("query{...F0}");
    for i in 0..levels {
        let n = i + 1;
        q.push_str(&format!(
            " fragment F{i} on Query{{...F{n} ...F{n} ...F{n}}}"
        ));
    }
    q.push_str(&format!(" fragment F{levels} on Query{{__typename}}"));
    q
}

#[tokio::test]
async fn fragment_fan_out_is_refused_at_once_at_every_size() {
    let app = spawn_app().await;
    for levels in [10, 19, 30] {
        let r = app.gql(None, &fan_out(levels), json!({})).await;
        assert!(refused(&r), "{levels} levels: {r}");
        assert!(cost(&r) > 5_000, "{r}");
    }
    // A few levels are fine: 3^4 = 81 `__typename`s.
    let r = app.gql(None, &fan_out(4), json!({})).await;
    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(r["data"]["__typename"], "Query");
}

#[tokio::test]
async fn nested_connections_are_refused_with_their_cost() {
    let app = spawn_app().await;
    let nested = "suggestions(first:100){nodes{commitment{suggestions(first:100){nodes{commitment{suggestions(first:100){nodes{body}}}}}}}}";
    let one = app.gql(None, &format!("{{ {nested} }}"), json!({})).await;
    assert!(refused(&one), "{one}");
    assert!(cost(&one) > 1_000_000, "{one}");

    let thirty: String = (0..30).map(|i| format!("a{i}: {nested} ")).collect();
    let many = app.gql(None, &format!("{{ {thirty}}}"), json!({})).await;
    assert!(refused(&many), "{many}");
    assert!(cost(&many) > 30 * 1_000_000, "{many}");

    // `first` given through a variable counts as its value.
    let q = "query($n: Int) { suggestions(first: $n) { nodes { commitment { suggestions(first: $n) { nodes { title } } } } } }";
    let small = app.gql(None, q, json!({ "n": 5 })).await;
    assert!(small["errors"].is_null(), "{small}");
    let large = app.gql(None, q, json!({ "n": 100 })).await;
    assert!(refused(&large), "{large}");
}

#[tokio::test]
async fn the_cost_budget_comes_from_the_settings() {
    let app = spawn_app_with(|s| s.graphql.max_cost = 50).await;
    // 10 × (1 + nodes(1 + id + title)) = 40
    let ok = app
        .gql(
            None,
            "{ suggestions(first: 10) { nodes { id title } } }",
            json!({}),
        )
        .await;
    assert!(ok["errors"].is_null(), "{ok}");
    let over = app
        .gql(
            None,
            "{ suggestions(first: 20) { nodes { id title } } }",
            json!({}),
        )
        .await;
    assert!(refused(&over), "{over}");
    assert_eq!(cost(&over), 80);
}

#[tokio::test]
async fn a_fragment_cycle_is_refused_without_walking_it() {
    let app = spawn_app().await;
    let r = app
        .gql(
            None,
            "{ ...A } fragment A on Query { ...B ...B } fragment B on Query { ...A ...A }",
            json!({}),
        )
        .await;
    assert!(r.get("data").is_none_or(Value::is_null), "{r}");
    assert_eq!(error_code(&r), "QUERY_TOO_COMPLEX", "{r}");
}

#[tokio::test]
async fn too_many_spreads_oversized_and_deeply_bracketed_documents_are_refused() {
    let app = spawn_app().await;
    let spreads = app.settings.graphql.max_fragment_spreads + 1;
    let q = format!(
        "{{ {} }} fragment F on Query {{ __typename }}",
        "...F ".repeat(spreads)
    );
    let r = app.gql(None, &q, json!({})).await;
    assert!(refused(&r), "{r}");

    let big = format!(
        "{{ __typename }}{}",
        " ".repeat(app.settings.graphql.max_document_bytes)
    );
    let r = app.gql(None, &big, json!({})).await;
    assert!(refused(&r), "{r}");

    // Deep enough to threaten the parser's stack, far inside the body limit.
    let deep = format!("{{{}}}", "a{".repeat(5_000) + &"}".repeat(5_000));
    let r = app.gql(None, &deep, json!({})).await;
    assert!(refused(&r), "{r}");
    let values = format!(
        "{{ me(x: {}1{}) {{ id }} }}",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let r = app.gql(None, &values, json!({})).await;
    assert!(refused(&r), "{r}");
}

#[tokio::test]
async fn the_standard_introspection_query_is_answered_in_full() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": INTROSPECTION, "operationName": "IntrospectionQuery" }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let r: Value = resp.json().await.expect("json");
    assert!(r["errors"].is_null(), "{r}");
    let schema = &r["data"]["__schema"];
    assert_eq!(schema["queryType"]["name"], "Query");
    assert_eq!(schema["mutationType"]["name"], "Mutation");
    let types = schema["types"].as_array().expect("types");
    let named = |n: &str| types.iter().find(|t| t["name"] == n);
    let suggestion = named("Suggestion").expect("Suggestion type");
    assert!(suggestion["description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
    assert!(suggestion["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .any(|f| f["name"] == "supportCount"));
    assert!(
        named("__Schema").is_some(),
        "introspection types are listed"
    );
    assert!(!schema["directives"]
        .as_array()
        .expect("directives")
        .is_empty());
}

#[tokio::test]
async fn introspection_abuse_stays_bounded() {
    let app = spawn_app().await;
    // Lists nested four deep: types × fields × fields × fields.
    let r = app
        .gql(
            None,
            "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }",
            json!({}),
        )
        .await;
    assert!(refused(&r), "{r}");
    // An `ofType` chain past the standard query's depth.
    let levels = app.settings.graphql.max_introspection_depth;
    let deep = format!(
        "{{ __type(name: \"Query\") {{ {} name {} }} }}",
        "ofType { ".repeat(levels),
        "}".repeat(levels)
    );
    let r = app.gql(None, &deep, json!({})).await;
    assert!(refused(&r), "{r}");
    // Introspection off: the standard query gets nothing.
    let app = spawn_app_with(|s| s.graphql.introspection = false).await;
    let r = app.gql(None, INTROSPECTION, json!({})).await;
    assert!(r["data"]["__schema"].is_null(), "{r}");
}

#[tokio::test]
async fn the_websocket_route_speaks_only_graphql_transport_ws() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/graphql/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "graphql-transport-ws")
        .send()
        .await
        .expect("request");
    // Subscriptions (tests/api/subscriptions.rs) answer here, under their own limits.
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("graphql-transport-ws")
    );
}

/// Sends the headers and half the body of a POST, and returns the open stream.
async fn half_sent_request(host: &str) -> tokio::net::TcpStream {
    let body = json!({ "query": "{ me { id } }" }).to_string();
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!(
        "POST /graphql HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        body.len(),
        &body[..body.len() / 2]
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write head");
    stream.flush().await.expect("flush");
    stream
}

#[tokio::test]
async fn a_request_past_its_time_is_answered_408_and_dropped() {
    let app = spawn_app_with(|s| s.server.request_timeout_secs = 1).await;
    let host = app.address.trim_start_matches("http://").to_string();
    let mut stream = half_sent_request(&host).await;
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("the stuck request was answered")
    .expect("read");
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    // Nothing of it is left running: the server stops at once.
    tokio::time::timeout(Duration::from_secs(20), app.stop())
        .await
        .expect("stopped")
        .expect("stop returned Ok");
}

#[tokio::test]
async fn sigterm_exits_within_the_grace_period_despite_a_stuck_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let host = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_convene"))
        .current_dir(dir.path())
        .env(
            "CONVENE_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        )
        .env("RUST_LOG", "warn")
        .env("CONVENE__SERVER__ADDRESS", &host)
        .env("CONVENE__SERVER__SHUTDOWN_GRACE_SECS", "2")
        .env("CONVENE__SERVER__REQUEST_TIMEOUT_SECS", "600")
        .env("CONVENE__DATABASE__URL", "sqlite://convene.db?mode=rwc")
        .env("CONVENE__JOBS__ENABLED", "false")
        .env_remove("CONVENE_ENV")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start convene");

    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let up = client
            .get(format!("http://{host}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let _stuck = half_sent_request(&host).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());

    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("convene was still running 30 s after SIGTERM with a 2 s grace period");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut log = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut log);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut log);
    }
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("grace period over"), "{log}");
}

#[tokio::test]
async fn graphql_over_http_shoulds_hold() {
    let app = spawn_app().await;
    let post = |content_type: Option<&str>, accept: &str, body: &str| {
        let mut req = app
            .client
            .post(app.url("/graphql"))
            .header(ACCEPT, accept)
            .body(body.to_string());
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        req.send()
    };
    let valid = json!({ "query": "{ __typename }" }).to_string();
    for accept in ["application/json", "application/graphql-response+json"] {
        // A POST with no content type.
        let r = post(None, accept, &valid).await.expect("request");
        assert!(r.status().is_client_error(), "{accept}: {}", r.status());
        // A body that is not JSON: 400 whatever the client accepts.
        let r = post(Some("application/json"), accept, "{ not json")
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{accept}");
        let body: Value = r.json().await.expect("json");
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
    // graphql-response+json: parse and validation failures are 400 with no `data` entry.
    for query in ["{ me { id }", "{ noSuchField }"] {
        let body = json!({ "query": query }).to_string();
        let r = post(
            Some("application/json"),
            "application/graphql-response+json",
            &body,
        )
        .await
        .expect("request");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = r.json().await.expect("json");
        assert!(body.get("data").is_none(), "{query}: {body}");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
}
