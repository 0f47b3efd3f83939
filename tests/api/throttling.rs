//! Login throttling held in the database: per account, per address, across instances.

use serde_json::json;

use crate::helpers::*;

async fn attempt(app: &TestApp, ip: &str, email: &str, password: &str) -> serde_json::Value {
    app.gql_from(
        None,
        Some(ip),
        "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
        json!({"i": {"email": email, "password": password}}),
    )
    .await
}

#[tokio::test]
async fn an_account_locks_after_repeated_failures_even_for_the_right_password() {
    let app = spawn_app().await;
    app.verified_user("quin@example.org", "Quin").await;
    let max = app.settings.limits.login_account_max_failures;
    for i in 0..max {
        // Spread over addresses so only the account limit applies.
        let r = attempt(
            &app,
            &format!("10.0.0.{i}"),
            "quin@example.org",
            "wrong password here",
        )
        .await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "attempt {i}: {r}");
    }
    let r = attempt(&app, "10.0.1.1", "quin@example.org", PASSWORD).await;
    assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
    let retry = r["errors"][0]["extensions"]["retryAfterSeconds"]
        .as_i64()
        .unwrap();
    assert!(
        retry > 0 && retry <= app.settings.limits.login_lockout_secs,
        "{retry}"
    );
    // Once the lock-out has passed, the right password works again.
    exec(
        &app.db,
        "UPDATE throttle_buckets SET locked_until = '2000-01-01T00:00:00+00:00'",
    )
    .await;
    let r = attempt(&app, "10.0.1.1", "quin@example.org", PASSWORD).await;
    assert!(r["data"]["logIn"]["accessToken"].is_string(), "{r}");
}

#[tokio::test]
async fn an_address_locks_after_failures_across_accounts() {
    let app = spawn_app_with(|s| s.limits.login_ip_max_failures = 4).await;
    app.verified_user("rae@example.org", "Rae").await;
    for i in 0..4 {
        let r = attempt(
            &app,
            "192.0.2.7",
            &format!("user{i}@example.org"),
            "wrong password here",
        )
        .await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }
    let r = attempt(&app, "192.0.2.7", "rae@example.org", PASSWORD).await;
    assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
    let r = attempt(&app, "192.0.2.8", "rae@example.org", PASSWORD).await;
    assert!(r["data"]["logIn"]["accessToken"].is_string(), "{r}");
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
    let max = first.settings.limits.login_account_max_failures;
    for i in 0..max {
        let app = if i % 2 == 0 { &first } else { &second };
        let r = attempt(
            app,
            &format!("10.9.0.{i}"),
            "sam@example.org",
            "wrong password here",
        )
        .await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }
    for app in [&first, &second] {
        let r = attempt(app, "10.9.9.9", "sam@example.org", PASSWORD).await;
        assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
    }
}

#[tokio::test]
async fn concurrent_failures_all_count() {
    let app = spawn_app_with(|s| s.limits.login_account_max_failures = 8).await;
    app.verified_user("tia@example.org", "Tia").await;
    let tries = (0..8).map(|i| {
        let app = &app;
        async move {
            attempt(
                app,
                &format!("10.8.0.{i}"),
                "tia@example.org",
                "wrong password here",
            )
            .await
        }
    });
    for r in futures::future::join_all(tries).await {
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }
    let r = attempt(&app, "10.8.1.1", "tia@example.org", PASSWORD).await;
    assert_eq!(error_code(&r), "RATE_LIMITED", "{r}");
}
