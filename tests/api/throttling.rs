//! Throttling held in the database: password guesses per (account, address) pair, per
//! address and per account; sign-ups and mail requests per address; across instances.

use serde_json::{json, Value};

use crate::helpers::*;

async fn attempt(app: &TestApp, ip: &str, email: &str, password: &str) -> Value {
    app.gql_from(
        None,
        Some(ip),
        "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
        json!({"i": {"email": email, "password": password}}),
    )
    .await
}

const WRONG: &str = "wrong password here";

fn retry_after(r: &Value) -> i64 {
    r["errors"][0]["extensions"]["retryAfterSeconds"]
        .as_i64()
        .unwrap_or_else(|| panic!("no retryAfterSeconds: {r}"))
}

fn logged_in(r: &Value) -> bool {
    r["data"]["logIn"]["accessToken"].is_string()
}

#[tokio::test]
async fn a_guesser_is_locked_out_while_the_owner_gets_in_from_elsewhere() {
    let app = spawn_app().await;
    app.verified_user("quin@example.org", "Quin").await;
    let max = app.settings.limits.login_pair_max_failures;
    for i in 0..max {
        let r = attempt(&app, "198.51.100.66", "quin@example.org", WRONG).await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "attempt {i}: {r}");
    }
    // The guesser's address is shut for this account, even with the right password.
    let r = attempt(&app, "198.51.100.66", "quin@example.org", PASSWORD).await;
    assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
    let retry = retry_after(&r);
    assert!(
        retry > 0 && retry <= app.settings.limits.login_lockout_secs,
        "{retry}"
    );
    // The owner, elsewhere, is not.
    let r = attempt(&app, "203.0.113.5", "quin@example.org", PASSWORD).await;
    assert!(logged_in(&r), "{r}");
    // Once the lock-out has passed, the guesser's address may try again.
    exec(
        &app.db,
        "UPDATE throttle_buckets SET locked_until = '2000-01-01T00:00:00+00:00'",
    )
    .await;
    let r = attempt(&app, "198.51.100.66", "quin@example.org", PASSWORD).await;
    assert!(logged_in(&r), "{r}");
}

#[tokio::test]
async fn a_correct_login_clears_the_pairs_count() {
    let app = spawn_app().await;
    app.verified_user("uma@example.org", "Uma").await;
    let max = app.settings.limits.login_pair_max_failures;
    for _ in 0..2 {
        for _ in 0..max - 1 {
            let r = attempt(&app, "198.51.100.3", "uma@example.org", WRONG).await;
            assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
        }
        let r = attempt(&app, "198.51.100.3", "uma@example.org", PASSWORD).await;
        assert!(logged_in(&r), "{r}");
    }
}

#[tokio::test]
async fn a_password_reset_lifts_the_owners_lock_outs() {
    let app = spawn_app_with(|s| s.limits.login_account_max_failures = 6).await;
    app.verified_user("ned@example.org", "Ned").await;
    // The owner forgets the password at home, and someone guesses from elsewhere.
    for ip in ["203.0.113.40", "198.51.100.40"] {
        for _ in 0..3 {
            let r = attempt(&app, ip, "ned@example.org", WRONG).await;
            assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
        }
    }
    let r = attempt(&app, "203.0.113.40", "ned@example.org", PASSWORD).await;
    assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
    let r = app
        .gql(
            None,
            "mutation($e: String!) { requestPasswordReset(email: $e) { accepted } }",
            json!({"e": "ned@example.org"}),
        )
        .await;
    assert_eq!(r["data"]["requestPasswordReset"]["accepted"], true, "{r}");
    let token = token_from_mail(&app.wait_for_mail("ned@example.org", "password_reset").await);
    let new_password = "amber lighthouse keeps seven owls";
    let r = app
        .gql(
            None,
            "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { user { id } } }",
            json!({"i": {"token": token, "newPassword": new_password}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let r = attempt(&app, "203.0.113.40", "ned@example.org", new_password).await;
    assert!(logged_in(&r), "{r}");
    // Every pair's guesses were forgotten, not only the owner's.
    for _ in 0..app.settings.limits.login_pair_max_failures - 1 {
        let r = attempt(&app, "198.51.100.40", "ned@example.org", WRONG).await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }
}

#[tokio::test]
async fn the_account_wide_limit_locks_every_address_at_its_count() {
    let app = spawn_app_with(|s| s.limits.login_account_max_failures = 7).await;
    app.verified_user("vic@example.org", "Vic").await;
    // One guess per address, so only the account-wide count grows.
    for i in 0..6 {
        let r = attempt(&app, &format!("10.0.0.{i}"), "vic@example.org", WRONG).await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "attempt {i}: {r}");
    }
    // One below the limit, the owner still gets in (and that login does not count).
    let r = attempt(&app, "203.0.113.5", "vic@example.org", PASSWORD).await;
    assert!(logged_in(&r), "{r}");
    let r = attempt(&app, "10.0.0.6", "vic@example.org", WRONG).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    // At the limit, nobody gets in from anywhere.
    for ip in ["203.0.113.5", "10.0.1.1"] {
        let r = attempt(&app, ip, "vic@example.org", PASSWORD).await;
        assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
        assert!(retry_after(&r) > 0, "{r}");
    }
}

#[tokio::test]
async fn an_address_locks_after_failures_across_accounts() {
    let app = spawn_app_with(|s| s.limits.login_ip_max_failures = 4).await;
    app.verified_user("rae@example.org", "Rae").await;
    for i in 0..4 {
        let r = attempt(&app, "192.0.2.7", &format!("user{i}@example.org"), WRONG).await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }
    let r = attempt(&app, "192.0.2.7", "rae@example.org", PASSWORD).await;
    assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
    let r = attempt(&app, "192.0.2.8", "rae@example.org", PASSWORD).await;
    assert!(logged_in(&r), "{r}");
}

#[tokio::test]
async fn forged_forwarded_entries_do_not_make_a_new_address() {
    let app = spawn_app_with(|s| s.limits.login_ip_max_failures = 3).await;
    app.verified_user("wes@example.org", "Wes").await;
    // The proxy appends the real address; whatever the client wrote before it is ignored.
    for i in 0..3 {
        let forged = format!("10.1.{i}.1, 10.2.{i}.2, 198.51.100.7");
        let r = attempt(&app, &forged, &format!("nobody{i}@example.org"), WRONG).await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }
    let r = attempt(&app, "10.1.9.1, 198.51.100.7", "wes@example.org", PASSWORD).await;
    assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
}

#[tokio::test]
async fn without_trusted_proxies_the_forwarded_header_is_ignored() {
    let app = spawn_app_with(|s| {
        s.server.trusted_proxies = 0;
        s.limits.login_ip_max_failures = 2;
    })
    .await;
    app.verified_user("xia@example.org", "Xia").await;
    for i in 0..2 {
        let r = attempt(&app, &format!("10.3.0.{i}"), "nobody@example.org", WRONG).await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }
    // Every request came from 127.0.0.1, whatever the header said.
    let r = attempt(&app, "10.3.0.9", "xia@example.org", PASSWORD).await;
    assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
}

#[tokio::test]
async fn an_over_long_forwarded_header_is_counted_like_any_other_request() {
    let app = spawn_app().await;
    app.verified_user("yan@example.org", "Yan").await;
    let max = app.settings.limits.login_pair_max_failures;
    for i in 0..max {
        let long = format!("{i}{}", "9".repeat(2000));
        let r = attempt(&app, &long, "yan@example.org", WRONG).await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "attempt {i}: {r}");
    }
    // They all counted against the peer's address.
    let r = attempt(&app, "not-an-address", "yan@example.org", PASSWORD).await;
    assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
    let longest = count(
        &app.db,
        "SELECT CAST(COALESCE(MAX(LENGTH(\"key\")), 0) AS BIGINT) FROM throttle_buckets",
    )
    .await;
    assert!(longest > 0 && longest <= 400, "{longest}");
}

#[tokio::test]
async fn parallel_guesses_beyond_the_limit_never_reach_the_password_check() {
    let app = spawn_app().await;
    app.verified_user("zoe@example.org", "Zoe").await;
    let max = app.settings.limits.login_pair_max_failures as usize;
    let tries = (0..20).map(|_| attempt(&app, "198.51.100.9", "zoe@example.org", WRONG));
    let answers = futures::future::join_all(tries).await;
    // A wrong-password answer means the password was checked.
    let checked = answers
        .iter()
        .filter(|r| error_code(r) == "UNAUTHENTICATED")
        .count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|r| error_code(r) == "RATE_LIMITED")
        .collect();
    assert_eq!(checked, max, "{answers:?}");
    assert_eq!(refused.len(), 20 - max, "{answers:?}");
    for r in refused {
        assert!(retry_after(r) > 0, "{r}");
    }
}

#[tokio::test]
async fn the_lock_out_holds_across_instances_sharing_a_database() {
    let first = spawn_app().await;
    first.verified_user("sam@example.org", "Sam").await;
    let second = spawn_app_on(
        tempfile::tempdir().unwrap(),
        first.database_url.clone(),
        |_| {},
    )
    .await;
    let max = first.settings.limits.login_pair_max_failures;
    for i in 0..max {
        let app = if i % 2 == 0 { &first } else { &second };
        let r = attempt(app, "10.9.0.1", "sam@example.org", WRONG).await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }
    for app in [&first, &second] {
        let r = attempt(app, "10.9.0.1", "sam@example.org", PASSWORD).await;
        assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
    }
}

#[tokio::test]
async fn concurrent_failures_all_count() {
    let app = spawn_app_with(|s| s.limits.login_account_max_failures = 8).await;
    app.verified_user("tia@example.org", "Tia").await;
    let tries = (0..8).map(|i| {
        let app = &app;
        async move { attempt(app, &format!("10.8.0.{i}"), "tia@example.org", WRONG).await }
    });
    for r in futures::future::join_all(tries).await {
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }
    let r = attempt(&app, "10.8.1.1", "tia@example.org", PASSWORD).await;
    assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
}

async fn sign_up_from(app: &TestApp, ip: &str, email: &str) -> Value {
    app.gql_from(
        None,
        Some(ip),
        "mutation($i: SignUpInput!) { signUp(input: $i) { accepted } }",
        json!({ "i": { "email": email, "password": PASSWORD, "displayName": "Newcomer" } }),
    )
    .await
}

#[tokio::test]
async fn sign_ups_are_limited_per_address() {
    let app = spawn_app_with(|s| s.limits.signup_per_hour_per_address = 2).await;
    for i in 0..2 {
        let r = sign_up_from(&app, "198.51.100.20", &format!("new{i}@example.org")).await;
        assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");
    }
    let r = sign_up_from(&app, "198.51.100.20", "new2@example.org").await;
    assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
    let retry = retry_after(&r);
    assert!(retry > 0 && retry <= 3600, "{retry}");
    let made = count(
        &app.db,
        "SELECT COUNT(*) FROM users WHERE email_normalized = 'new2@example.org'",
    )
    .await;
    assert_eq!(made, 0);
    // Another address has its own allowance.
    let r = sign_up_from(&app, "198.51.100.21", "new2@example.org").await;
    assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");
}

const REQUEST_RESET: &str =
    "mutation($e: String!) { requestPasswordReset(email: $e) { accepted } }";
const RESEND: &str = "mutation($e: String!) { resendVerificationEmail(email: $e) { accepted } }";

#[tokio::test]
async fn mail_requests_share_one_limit_per_address_across_instances() {
    let first = spawn_app_with(|s| s.limits.mail_requests_per_hour_per_address = 3).await;
    let second = spawn_app_on(
        tempfile::tempdir().unwrap(),
        first.database_url.clone(),
        |s| s.limits.mail_requests_per_hour_per_address = 3,
    )
    .await;
    let ip = Some("198.51.100.30");
    let e = json!({"e": "someone@example.org"});
    let r = first.gql_from(None, ip, REQUEST_RESET, e.clone()).await;
    assert_eq!(r["data"]["requestPasswordReset"]["accepted"], true, "{r}");
    let r = second.gql_from(None, ip, RESEND, e.clone()).await;
    assert_eq!(
        r["data"]["resendVerificationEmail"]["accepted"], true,
        "{r}"
    );
    let r = first.gql_from(None, ip, RESEND, e.clone()).await;
    assert_eq!(
        r["data"]["resendVerificationEmail"]["accepted"], true,
        "{r}"
    );
    for (app, query) in [(&second, REQUEST_RESET), (&first, RESEND)] {
        let r = app.gql_from(None, ip, query, e.clone()).await;
        assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
        let retry = retry_after(&r);
        assert!(retry > 0 && retry <= 3600, "{retry}");
    }
    let r = second
        .gql_from(None, Some("198.51.100.31"), REQUEST_RESET, e)
        .await;
    assert_eq!(r["data"]["requestPasswordReset"]["accepted"], true, "{r}");
}
