//! Suspending accounts and ending sessions, through HTTP and the real WebSocket: a
//! suspended account cannot log in, refresh or act, its tokens are refused on their next
//! request and its sockets close at once; its content stays.

use std::time::Duration;

use chrono::Utc;
use convene::entities::user::Role;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::ws_client::WsClient;

const SUSPEND: &str =
    "mutation($i: SuspendUserInput!) { suspendUser(input: $i) { user { id suspendedUntil } } }";
const UNSUSPEND: &str =
    "mutation($id: ID!) { unsuspendUser(userId: $id) { user { id suspendedUntil } } }";
const END_SESSIONS: &str = "mutation($id: ID!) { endSessionsOf(userId: $id) { ended } }";
const NOTIFICATIONS: &str = "subscription { notificationAdded { id } }";

struct Stage {
    app: TestApp,
    admin: Session,
    ann: Session,
    bob: Session,
}

async fn stage() -> Stage {
    let app = spawn_app().await;
    let admin = user_with_role(&app, "admin@example.org", "Ada Admin", Role::Admin).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    Stage {
        app,
        admin,
        ann,
        bob,
    }
}

fn tomorrow() -> String {
    (Utc::now() + chrono::Duration::days(1)).to_rfc3339()
}

async fn suspend(s: &Stage, who: &Session, target: &str, until: &str, reason: &str) -> Value {
    s.app
        .gql(
            Some(&who.access),
            SUSPEND,
            json!({ "i": { "userId": target, "until": until, "reason": reason } }),
        )
        .await
}

/// A signed-in socket with a live subscription.
async fn listening(app: &TestApp, token: &str) -> WsClient {
    let mut ws = WsClient::connect(app, Some(token)).await;
    ws.subscribe_live(NOTIFICATIONS, json!({})).await;
    ws
}

/// The socket must close with 4403 well before any access token would expire.
async fn closes_at_once(ws: &mut WsClient) {
    let closed = tokio::time::timeout(Duration::from_secs(5), ws.closed())
        .await
        .expect("the socket closed at once");
    assert_eq!(closed.code, 4403, "{closed:?}");
}

fn message(r: &Value) -> &str {
    r["errors"][0]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_suspended_account_is_out_at_once_and_its_content_stays() {
    let s = stage().await;
    let official = user_with_role(&s.app, "official@example.org", "Olu", Role::Official).await;
    let commitment = create_commitment(&s.app, &official, "UK0072", "Involving data users").await;
    let suggestion = create_suggestion(&s.app, &s.ann, &commitment, "Publish the register").await;
    let mut socket = listening(&s.app, &s.ann.access).await;
    let mut bobs = listening(&s.app, &s.bob.access).await;

    let until = tomorrow();
    let r = suspend(&s, &s.admin, &s.ann.user_id, &until, "spam").await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(
        r["data"]["suspendUser"]["user"]["suspendedUntil"].is_string(),
        "admins see it: {r}"
    );

    // Her socket closes now, not when her access token expires; others' stay open.
    closes_at_once(&mut socket).await;
    bobs.send(json!({ "type": "ping" })).await;
    assert_eq!(bobs.next().await["type"], "pong");

    // Her access token is refused on its next request, for reading and writing alike.
    let r = s
        .app
        .gql(Some(&s.ann.access), "{ me { id } }", json!({}))
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    assert!(message(&r).contains("suspended until"), "{r}");
    let r = s
        .app
        .gql(
            Some(&s.ann.access),
            "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { user { id } } }",
            json!({ "i": { "bio": "still here" } }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    // Neither a new socket, nor a refresh, nor a new log-in lets her in.
    let refused = WsClient::try_connect(&s.app, Some(&s.ann.access))
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.code, 4403, "{refused:?}");
    let r = s
        .app
        .gql(
            None,
            "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }",
            json!({ "t": s.ann.refresh }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = s.app.log_in("ann@example.org", PASSWORD).await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    assert!(message(&r).contains("suspended until"), "{r}");
    // The wrong password still reads as a wrong password: nothing is told to a guesser.
    let r = s
        .app
        .log_in("ann@example.org", "not her password at all")
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");

    // What she wrote stays.
    let r = s
        .app
        .gql(
            None,
            "query($id: ID!) { suggestion(id: $id) { title author { displayName } } }",
            json!({ "id": suggestion }),
        )
        .await;
    assert_eq!(
        r["data"]["suggestion"]["title"], "Publish the register",
        "{r}"
    );

    // Others do not see when her suspension ends; admins do.
    let q = "query($id: ID!) { user(id: $id) { suspendedUntil } }";
    let r = s
        .app
        .gql(Some(&s.bob.access), q, json!({ "id": s.ann.user_id }))
        .await;
    assert!(r["data"]["user"]["suspendedUntil"].is_null(), "{r}");
    let r = s.app.gql(None, q, json!({ "id": s.ann.user_id })).await;
    assert!(r["data"]["user"]["suspendedUntil"].is_null(), "{r}");
    let r = s
        .app
        .gql(Some(&s.admin.access), q, json!({ "id": s.ann.user_id }))
        .await;
    assert!(r["data"]["user"]["suspendedUntil"].is_string(), "{r}");

    // Lifted, she logs in again; the ended sessions stay ended.
    let r = s
        .app
        .gql(
            Some(&s.admin.access),
            UNSUSPEND,
            json!({ "id": s.ann.user_id }),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(
        r["data"]["unsuspendUser"]["user"]["suspendedUntil"].is_null(),
        "{r}"
    );
    let r = s
        .app
        .gql(Some(&s.ann.access), "{ me { id } }", json!({}))
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    let again = s.app.logged_in("ann@example.org").await;
    let r = s
        .app
        .gql(
            Some(&again.access),
            "{ me { id suspendedUntil } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["me"]["id"], s.ann.user_id.as_str(), "{r}");
    assert!(r["data"]["me"]["suspendedUntil"].is_null(), "{r}");

    // Both are in the moderation log, with the reason.
    let r = s
        .app
        .gql(
            Some(&s.admin.access),
            "{ moderationLog(first: 10) { nodes { action subjectId reason actor { displayName } } } }",
            json!({}),
        )
        .await;
    let nodes = r["data"]["moderationLog"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"));
    let of = |action: &str| {
        nodes
            .iter()
            .find(|n| n["action"] == action && n["subjectId"] == s.ann.user_id.as_str())
            .unwrap_or_else(|| panic!("no {action} in {r}"))
    };
    assert!(
        of("SUSPEND")["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("spam"),
        "{r}"
    );
    assert_eq!(of("UNSUSPEND")["actor"]["displayName"], "Ada Admin", "{r}");
}

#[tokio::test]
async fn only_admins_suspend_and_bad_input_is_refused_by_field() {
    let s = stage().await;
    let official = user_with_role(&s.app, "official@example.org", "Olu", Role::Official).await;
    let ann = s.ann.user_id.clone();
    let until = tomorrow();
    for who in [&s.bob, &official] {
        let r = suspend(&s, who, &ann, &until, "spam").await;
        assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
        for m in [UNSUSPEND, END_SESSIONS] {
            let r = s.app.gql(Some(&who.access), m, json!({ "id": ann })).await;
            assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
        }
    }
    let r = s
        .app
        .gql(
            None,
            SUSPEND,
            json!({ "i": { "userId": ann, "until": until, "reason": "spam" } }),
        )
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");

    let past = (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    for (target, until, reason, field) in [
        (ann.as_str(), past.as_str(), "spam", "until"),
        (ann.as_str(), until.as_str(), "  ", "reason"),
        (ann.as_str(), until.as_str(), &"x".repeat(501)[..], "reason"),
        (s.admin.user_id.as_str(), until.as_str(), "oops", "userId"),
        ("not-an-id", until.as_str(), "spam", "userId"),
    ] {
        let r = suspend(&s, &s.admin, target, until, reason).await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{field}: {r}");
        assert_eq!(error_field(&r), field, "{r}");
    }
    let nobody = "01890000-0000-7000-8000-000000000000";
    let r = suspend(&s, &s.admin, nobody, &until, "spam").await;
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
    let r = s
        .app
        .gql(Some(&s.admin.access), END_SESSIONS, json!({ "id": nobody }))
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
    // Nothing was suspended by any of these.
    let r = s
        .app
        .gql(Some(&s.ann.access), "{ me { id } }", json!({}))
        .await;
    assert_eq!(r["data"]["me"]["id"], ann.as_str(), "{r}");
}

#[tokio::test]
async fn ending_someones_sessions_ends_their_tokens_and_sockets_but_not_the_account() {
    let s = stage().await;
    let second = s.app.logged_in("ann@example.org").await;
    let mut socket = listening(&s.app, &second.access).await;

    let r = s
        .app
        .gql(
            Some(&s.admin.access),
            END_SESSIONS,
            json!({ "id": s.ann.user_id }),
        )
        .await;
    assert_eq!(r["data"]["endSessionsOf"]["ended"], 2, "{r}");
    closes_at_once(&mut socket).await;
    for session in [&s.ann, &second] {
        let r = s
            .app
            .gql(Some(&session.access), "{ me { id } }", json!({}))
            .await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
        let r = s
            .app
            .gql(
                None,
                "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }",
                json!({ "t": session.refresh }),
            )
            .await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }
    // Not a suspension: she logs in again. Nothing left to end the second time.
    s.app.logged_in("ann@example.org").await;
    let r = s
        .app
        .gql(
            Some(&s.admin.access),
            END_SESSIONS,
            json!({ "id": s.bob.user_id }),
        )
        .await;
    assert_eq!(r["data"]["endSessionsOf"]["ended"], 1, "{r}");
}

#[tokio::test]
async fn logging_out_closes_that_sessions_sockets_only() {
    let s = stage().await;
    let second = s.app.logged_in("ann@example.org").await;
    let mut first_socket = listening(&s.app, &s.ann.access).await;
    let mut second_socket = listening(&s.app, &second.access).await;
    let r = s
        .app
        .gql(
            None,
            "mutation($t: String!) { logOut(refreshToken: $t) { loggedOut } }",
            json!({ "t": s.ann.refresh }),
        )
        .await;
    assert_eq!(r["data"]["logOut"]["loggedOut"], true, "{r}");
    closes_at_once(&mut first_socket).await;
    second_socket.send(json!({ "type": "ping" })).await;
    assert_eq!(second_socket.next().await["type"], "pong");
    let r = s
        .app
        .gql(
            Some(&second.access),
            "mutation { logOutEverywhere { loggedOut } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["logOutEverywhere"]["loggedOut"], true, "{r}");
    closes_at_once(&mut second_socket).await;
}

#[tokio::test]
async fn a_suspension_on_one_instance_closes_sockets_on_another() {
    if !is_postgres() {
        eprintln!("skipped: instances share events through PostgreSQL (CONVENE_TEST_DATABASE_URL)");
        return;
    }
    let s = stage().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let other = spawn_app_on(dir, s.app.database_url.clone(), |_| {}).await;
    let mut socket = listening(&other, &s.ann.access).await;
    let r = suspend(&s, &s.admin, &s.ann.user_id, &tomorrow(), "spam").await;
    assert!(r["errors"].is_null(), "{r}");
    closes_at_once(&mut socket).await;
}
