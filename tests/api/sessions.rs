//! Login, tokens, refresh rotation and reuse detection, logout, password reset and change.

use base64::Engine;
use serde_json::json;

use crate::helpers::*;

const ME: &str = "{ me { id displayName } }";
const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken user { displayName } } }";

async fn status_of(app: &TestApp, token: &str) -> (u16, serde_json::Value) {
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn log_in_with_right_and_wrong_credentials() {
    let app = spawn_app().await;
    let s = app.verified_user("hal@example.org", "Hal").await;
    let (status, me) = status_of(&app, &s.access).await;
    assert_eq!(status, 200);
    assert_eq!(me["data"]["me"]["displayName"], "Hal");

    let ok = app.log_in("HAL@Example.org", PASSWORD).await;
    assert!(ok["data"]["logIn"]["accessToken"].is_string(), "{ok}");
    let wrong = app
        .log_in("hal@example.org", "not the password at all")
        .await;
    assert_eq!(error_code(&wrong), "UNAUTHENTICATED");
    let unknown = app.log_in("nobody@example.org", PASSWORD).await;
    assert_eq!(error_code(&unknown), "UNAUTHENTICATED");
    // The two failures look alike.
    assert_eq!(
        wrong["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );
    let bad = app.log_in("hal", PASSWORD).await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert_eq!(error_field(&bad), "email");
}

#[tokio::test]
async fn tampered_forged_and_expired_access_tokens_are_refused() {
    let app = spawn_app().await;
    let s = app.verified_user("ida@example.org", "Ida").await;
    let mut parts: Vec<String> = s.access.split('.').map(str::to_string).collect();
    assert_eq!(parts.len(), 3);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(&parts[1]).unwrap()).unwrap();
    for claim in ["iss", "aud", "sub", "iat", "exp", "jti", "typ"] {
        assert!(!claims[claim].is_null(), "claim {claim} missing: {claims}");
    }

    // Payload changed, signature kept.
    let mut forged = claims.clone();
    forged["sub"] = json!(uuid::Uuid::now_v7());
    parts[1] = b64.encode(forged.to_string());
    let tampered = parts.join(".");
    // alg: none with no signature.
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    );
    // Correct key, wrong audience; correct key, expired.
    let key = jsonwebtoken::EncodingKey::from_secret(SIGNING_KEY.as_bytes());
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("someone-else");
    let wrong_aud = jsonwebtoken::encode(&header, &wrong_aud, &key).unwrap();
    let mut expired = claims.clone();
    expired["iat"] = json!(chrono::Utc::now().timestamp() - 7200);
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    let expired = jsonwebtoken::encode(&header, &expired, &key).unwrap();
    // Another key entirely.
    let other = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"another-key-another-key-another-key"),
    )
    .unwrap();
    // HS512 with the right key: the algorithm is not on the allow-list.
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &key,
    )
    .unwrap();

    for (name, token) in [
        ("tampered", tampered),
        ("alg none", none),
        ("wrong audience", wrong_aud),
        ("expired", expired),
        ("other key", other),
        ("HS512", hs512),
        ("garbage", "not.a.jwt".to_string()),
    ] {
        let (status, body) = status_of(&app, &token).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{name}: {body}");
        assert!(body["data"].is_null(), "{name} ran as anonymous: {body}");
    }
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_ends_the_session() {
    let app = spawn_app().await;
    let s = app.verified_user("jo@example.org", "Jo").await;
    let r1 = app.gql(None, REFRESH, json!({"t": s.refresh})).await;
    let second = r1["data"]["refreshSession"]["refreshToken"]
        .as_str()
        .expect("rotated")
        .to_string();
    let access2 = r1["data"]["refreshSession"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second, s.refresh);
    assert_eq!(status_of(&app, &access2).await.0, 200);

    // The first token, presented again: theft detected.
    let reuse = app.gql(None, REFRESH, json!({"t": s.refresh})).await;
    assert_eq!(error_code(&reuse), "UNAUTHENTICATED", "{reuse}");
    // The whole family is gone: the rotated token and its access token no longer work.
    let r3 = app.gql(None, REFRESH, json!({"t": second})).await;
    assert_eq!(error_code(&r3), "UNAUTHENTICATED", "{r3}");
    assert_eq!(status_of(&app, &access2).await.0, 401);
    assert_eq!(status_of(&app, &s.access).await.0, 401);

    // Other sessions of the same account are untouched.
    let other = app.log_in("jo@example.org", PASSWORD).await;
    let t = other["data"]["logIn"]["accessToken"].as_str().unwrap();
    assert_eq!(status_of(&app, t).await.0, 200);

    let r = app.gql(None, REFRESH, json!({"t": "never-issued"})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
}

#[tokio::test]
async fn expired_refresh_tokens_are_refused() {
    let app = spawn_app().await;
    let s = app.verified_user("kim@example.org", "Kim").await;
    exec(
        &app.db,
        "UPDATE refresh_tokens SET expires_at = '2000-01-01T00:00:00+00:00'",
    )
    .await;
    let r = app.gql(None, REFRESH, json!({"t": s.refresh})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
}

#[tokio::test]
async fn log_out_and_log_out_everywhere_revoke() {
    let app = spawn_app().await;
    let a = app.verified_user("lu@example.org", "Lu").await;
    let b = app.log_in("lu@example.org", PASSWORD).await;
    let b_access = b["data"]["logIn"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let b_refresh = b["data"]["logIn"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    let c = app.log_in("lu@example.org", PASSWORD).await;
    let c_access = c["data"]["logIn"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();

    let out = "mutation($t: String!) { logOut(refreshToken: $t) { loggedOut } }";
    let r = app.gql(None, out, json!({"t": a.refresh})).await;
    assert_eq!(r["data"]["logOut"]["loggedOut"], true);
    assert_eq!(status_of(&app, &a.access).await.0, 401);
    let r = app.gql(None, REFRESH, json!({"t": a.refresh})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
    assert_eq!(status_of(&app, &b_access).await.0, 200);
    let r = app.gql(None, out, json!({"t": "unknown"})).await;
    assert_eq!(r["data"]["logOut"]["loggedOut"], false);

    let r = app
        .gql(
            Some(&b_access),
            "mutation { logOutEverywhere { loggedOut } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["logOutEverywhere"]["loggedOut"], true);
    assert_eq!(status_of(&app, &b_access).await.0, 401);
    assert_eq!(status_of(&app, &c_access).await.0, 401);
    let r = app.gql(None, REFRESH, json!({"t": b_refresh})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
    let r = app
        .gql(
            None,
            "mutation { logOutEverywhere { loggedOut } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
}

const RESET: &str = "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { user { displayName emailVerified } } }";
const REQUEST_RESET: &str =
    "mutation($e: String!) { requestPasswordReset(email: $e) { accepted } }";

#[tokio::test]
async fn password_reset_works_once_and_ends_every_session() {
    let app = spawn_app().await;
    let s = app.unverified_user("max@example.org", "Max").await;
    let r = app
        .gql(None, REQUEST_RESET, json!({"e": "Max@Example.org"}))
        .await;
    assert_eq!(r["data"]["requestPasswordReset"]["accepted"], true);
    let token = token_from_mail(&app.wait_for_mail("max@example.org", "password_reset").await);

    let weak = app
        .gql(
            None,
            RESET,
            json!({"i": {"token": token, "newPassword": "password"}}),
        )
        .await;
    assert_eq!(error_code(&weak), "BAD_USER_INPUT");
    assert_eq!(error_field(&weak), "newPassword");

    let new_password = "amber lighthouse keeps seven owls";
    let r = app
        .gql(
            None,
            RESET,
            json!({"i": {"token": token, "newPassword": new_password}}),
        )
        .await;
    // The link proved the mailbox, so the address is now verified.
    assert_eq!(
        r["data"]["resetPassword"]["user"],
        json!({"displayName": "Max", "emailVerified": true}),
        "{r}"
    );
    assert_eq!(status_of(&app, &s.access).await.0, 401);
    let r = app.gql(None, REFRESH, json!({"t": s.refresh})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&app.log_in("max@example.org", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    assert!(
        app.log_in("max@example.org", new_password).await["data"]["logIn"]["accessToken"]
            .is_string()
    );
    app.wait_for_mail("max@example.org", "password_changed")
        .await;

    let again = app
        .gql(
            None,
            RESET,
            json!({"i": {"token": token, "newPassword": "another fine password 77"}}),
        )
        .await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
    assert_eq!(error_field(&again), "token");
}

#[tokio::test]
async fn password_reset_for_unknown_addresses_answers_alike_and_tells_the_mailbox() {
    let app = spawn_app().await;
    let r = app
        .gql(None, REQUEST_RESET, json!({"e": "ghost@example.org"}))
        .await;
    assert_eq!(
        r,
        json!({"data": {"requestPasswordReset": {"accepted": true}}})
    );
    let m = app
        .wait_for_mail("ghost@example.org", "password_reset_no_account")
        .await;
    assert!(m.text.contains("there is no account"), "{}", m.text);
    let r = app.gql(None, REQUEST_RESET, json!({"e": "ghost"})).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT");
}

#[tokio::test]
async fn expired_reset_links_are_refused() {
    let app = spawn_app().await;
    app.verified_user("ned@example.org", "Ned").await;
    app.gql(None, REQUEST_RESET, json!({"e": "ned@example.org"}))
        .await;
    let token = token_from_mail(&app.wait_for_mail("ned@example.org", "password_reset").await);
    exec(&app.db, "UPDATE email_tokens SET expires_at = '2000-01-01T00:00:00+00:00' WHERE purpose = 'RESET_PASSWORD'").await;
    let r = app
        .gql(
            None,
            RESET,
            json!({"i": {"token": token, "newPassword": "amber lighthouse keeps seven owls"}}),
        )
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert_eq!(error_field(&r), "token");
    assert!(app.log_in("ned@example.org", PASSWORD).await["data"]["logIn"].is_object());
}

#[tokio::test]
async fn change_password_checks_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let here = app.verified_user("ola@example.org", "Ola").await;
    let there = app.log_in("ola@example.org", PASSWORD).await;
    let there_access = there["data"]["logIn"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let q =
        "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { user { displayName } } }";
    let new_password = "granite kettle under a paper moon";
    let r = app
        .gql(
            Some(&here.access),
            q,
            json!({"i": {"currentPassword": "wrong wrong wrong", "newPassword": new_password}}),
        )
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT");
    assert_eq!(error_field(&r), "currentPassword");
    let r = app
        .gql(
            Some(&here.access),
            q,
            json!({"i": {"currentPassword": PASSWORD, "newPassword": "ola@example.org!!x"}}),
        )
        .await;
    assert_eq!(error_field(&r), "newPassword", "{r}");
    let r = app
        .gql(
            Some(&here.access),
            q,
            json!({"i": {"currentPassword": PASSWORD, "newPassword": new_password}}),
        )
        .await;
    assert_eq!(
        r["data"]["changePassword"]["user"]["displayName"], "Ola",
        "{r}"
    );
    assert_eq!(status_of(&app, &here.access).await.0, 200);
    assert_eq!(status_of(&app, &there_access).await.0, 401);
    assert!(app.log_in("ola@example.org", new_password).await["data"]["logIn"].is_object());
    app.wait_for_mail("ola@example.org", "password_changed")
        .await;
}

#[tokio::test]
async fn weaker_hashes_are_upgraded_at_login() {
    let app = spawn_app().await;
    app.verified_user("pat@example.org", "Pat").await;
    let weak = convene::auth::password::hash_with_params(PASSWORD, 8192, 1, 1).unwrap();
    exec(
        &app.db,
        &format!("UPDATE users SET password_hash = '{weak}'"),
    )
    .await;
    let r = app.log_in("pat@example.org", PASSWORD).await;
    assert!(r["data"]["logIn"].is_object(), "{r}");
    let row = sea_orm::ConnectionTrait::query_one_raw(
        &app.db,
        sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            "SELECT password_hash FROM users".to_string(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let stored: String = row.try_get_by_index(0).unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(app.log_in("pat@example.org", PASSWORD).await["data"]["logIn"].is_object());
}

#[tokio::test]
async fn repeated_reset_requests_do_not_flood_a_mailbox() {
    let app = spawn_app().await;
    app.verified_user("quinn@example.org", "Quinn").await;
    for _ in 0..6 {
        let r = app
            .gql(None, REQUEST_RESET, json!({"e": "quinn@example.org"}))
            .await;
        assert_eq!(r["data"]["requestPasswordReset"]["accepted"], true, "{r}");
    }
    let resend = "mutation($e: String!) { resendVerificationEmail(email: $e) { accepted } }";
    app.unverified_user("ray@example.org", "Ray").await;
    for _ in 0..6 {
        let r = app.gql(None, resend, json!({"e": "ray@example.org"})).await;
        assert_eq!(
            r["data"]["resendVerificationEmail"]["accepted"], true,
            "{r}"
        );
    }
    app.settle().await;
    let resets = app
        .mails_to("quinn@example.org")
        .into_iter()
        .filter(|m| m.template == "password_reset")
        .count();
    assert_eq!(resets, convene::outbox::MAILS_PER_HOUR as usize);
    let verifications = app
        .mails_to("ray@example.org")
        .into_iter()
        .filter(|m| m.template == "verify_email")
        .count();
    assert_eq!(verifications, convene::outbox::MAILS_PER_HOUR as usize);
}

#[tokio::test]
async fn verifying_an_address_ends_the_sessions_of_whoever_signed_up_with_it() {
    let app = spawn_app().await;
    // Someone who does not own the mailbox signs up with it and logs in, twice.
    let squatter = app.unverified_user("owner@example.org", "Squatter").await;
    let second = app.logged_in("owner@example.org").await;
    assert_eq!(status_of(&app, &squatter.access).await.0, 200);
    // The mailbox's owner follows the link.
    let token = token_from_mail(&app.wait_for_mail("owner@example.org", "verify_email").await);
    app.verify_email(&token).await;
    for s in [&squatter, &second] {
        let (status, me) = status_of(&app, &s.access).await;
        assert_eq!((status, error_code(&me)), (401, "UNAUTHENTICATED"), "{me}");
        let r = app.gql(None, REFRESH, json!({ "t": s.refresh })).await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }
    let revoked = count(
        &app.db,
        "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL",
    )
    .await;
    assert_eq!(revoked, 2);
    // Sessions started after verification are unaffected.
    let after = app.logged_in("owner@example.org").await;
    assert_eq!(status_of(&app, &after.access).await.0, 200);
}
