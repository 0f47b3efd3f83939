//! The subscription socket's own rules, over a real WebSocket: the per-address cap keyed as
//! the throttles key (IPv6 by /64), one root field per subscription, and the `Origin` check
//! on the upgrade. (The byte-bounded send queue is tested beside the message-bounded one in
//! `subscriptions`.)

use serde_json::{json, Value};

use crate::helpers::*;
use crate::ws_client::WsClient;

/// Opens a socket with `headers` and has it acknowledged.
async fn connected(app: &TestApp, headers: &[(&str, &str)]) -> Result<WsClient, u16> {
    let mut ws = WsClient::try_open_with(app, headers).await?;
    ws.send(json!({ "type": "connection_init", "payload": {} }))
        .await;
    assert_eq!(ws.next().await["type"], "connection_ack");
    Ok(ws)
}

#[tokio::test]
async fn an_ipv6_network_shares_one_socket_cap_as_it_shares_one_throttle() {
    // The tests stand in for one trusted proxy: X-Forwarded-For names the client.
    let app = spawn_app_with(|c| c.websocket.max_connections_per_address = 2).await;
    let _a = connected(&app, &[("x-forwarded-for", "2001:db8:1:2::1")])
        .await
        .expect("first");
    let _b = connected(&app, &[("x-forwarded-for", "2001:db8:1:2:aaaa::7")])
        .await
        .expect("second");
    // Another address of the same /64 is the same client.
    let third = WsClient::try_open_with(&app, &[("x-forwarded-for", "2001:db8:1:2:ffff::9")]).await;
    assert_eq!(third.err(), Some(503));
    // The next /64 over, and an IPv4 client, are others.
    connected(&app, &[("x-forwarded-for", "2001:db8:1:3::1")])
        .await
        .expect("another network");
    connected(&app, &[("x-forwarded-for", "203.0.113.9")])
        .await
        .expect("an IPv4 client");
}

/// Subscribes with `query` and returns the error it is refused with.
async fn refused(ws: &mut WsClient, query: &str, variables: Value) -> Value {
    let id = ws.subscribe(query, variables).await;
    let errors = ws.error_for(&id).await;
    assert_eq!(
        errors[0]["extensions"]["code"], "BAD_USER_INPUT",
        "{errors}"
    );
    assert_eq!(errors[0]["extensions"]["field"], "query", "{errors}");
    errors
}

#[tokio::test]
async fn a_subscription_selects_exactly_one_root_field() {
    let app = spawn_app().await;
    let official = user_with_role(
        &app,
        "official@example.org",
        "Olu Official",
        convene::entities::user::Role::Official,
    )
    .await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let commitment = create_commitment(&app, &official, "UK0072", "Involving data users").await;
    let suggestion = create_suggestion(&app, &ann, &commitment, "Publish the register").await;
    let vars = json!({ "id": suggestion });
    let mut ws = WsClient::connect(&app, None).await;

    let two = "subscription($id: ID!) { a: suggestionUpdated(id: $id) { id } b: suggestionUpdated(id: $id) { id } }";
    let errors = refused(&mut ws, two, vars.clone()).await;
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("exactly one root field"), "{errors}");
    // `__typename` counts, alone or beside a field.
    refused(
        &mut ws,
        "subscription($id: ID!) { suggestionUpdated(id: $id) { id } __typename }",
        vars.clone(),
    )
    .await;
    refused(&mut ws, "subscription { __typename }", json!({})).await;
    // Fields are counted through named and inline fragments.
    refused(
        &mut ws,
        "subscription($id: ID!) { ...Both } \
         fragment Both on Subscription { suggestionUpdated(id: $id) { id } notificationAdded { id } }",
        vars.clone(),
    )
    .await;
    refused(
        &mut ws,
        "subscription($id: ID!) { suggestionUpdated(id: $id) { id } ... on Subscription { notificationAdded { id } } }",
        vars.clone(),
    )
    .await;
    // Any subscription of the document counts, not only the one chosen.
    let id = ws
        .subscribe_named(
            "subscription One($id: ID!) { suggestionUpdated(id: $id) { id } } \
             subscription Two($id: ID!) { a: suggestionUpdated(id: $id) { id } b: suggestionUpdated(id: $id) { id } }",
            "One",
            vars.clone(),
        )
        .await;
    let errors = ws.error_for(&id).await;
    assert_eq!(
        errors[0]["extensions"]["code"], "BAD_USER_INPUT",
        "{errors}"
    );

    // Refused before it ran, and the socket carries on: one field runs.
    let id = ws
        .subscribe_live(
            "subscription($id: ID!) { suggestionUpdated(id: $id) { id supportCount } }",
            vars.clone(),
        )
        .await;
    let r = app
        .gql(
            Some(&official.access),
            "mutation($id: ID!) { supportSuggestion(id: $id) { suggestion { id } } }",
            vars.clone(),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let data = ws.next_data(&id).await;
    assert_eq!(data["suggestionUpdated"]["supportCount"], 1, "{data}");
    assert_eq!(
        data["suggestionUpdated"]["id"],
        suggestion.as_str(),
        "{data}"
    );

    // Over HTTP the same document is refused by the same rule.
    let r = app.gql(None, two, vars).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("exactly one root field"),
        "{r}"
    );
}

#[tokio::test]
async fn upgrades_from_origins_outside_cors_origins_are_refused() {
    let app = spawn_app_with(|c| {
        c.server.cors_origins = vec!["https://app.example.org".into()];
        c.public.base_url = "https://convene.example.org/".into();
    })
    .await;
    let refused = WsClient::try_open_with(&app, &[("origin", "https://evil.example")]).await;
    assert_eq!(refused.err(), Some(403));
    let refused =
        WsClient::try_open_with(&app, &[("origin", "https://app.example.org.evil.example")]).await;
    assert_eq!(refused.err(), Some(403));
    connected(&app, &[("origin", "https://app.example.org")])
        .await
        .expect("a listed origin");
    connected(&app, &[("origin", "https://convene.example.org")])
        .await
        .expect("Convene's own origin");
    // Clients that are not browsers send no Origin.
    connected(&app, &[]).await.expect("no Origin");

    // `*` lets any origin in, as it does for CORS.
    let open = spawn_app().await;
    connected(&open, &[("origin", "https://elsewhere.example")])
        .await
        .expect("any origin under *");
}
