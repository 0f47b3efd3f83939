use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn sign_up_mails_a_verification_link_that_verifies_once() {
    let app = spawn_app().await;
    let r = app.sign_up("Ann.Lee@Example.org", "Ann Lee").await;
    assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");
    let mail = app
        .wait_for_mail("Ann.Lee@Example.org", "verify_email")
        .await;
    assert!(mail.subject.contains("Confirm"));
    assert!(mail.text.contains(&app.settings.public.base_url));
    let token = token_from_mail(&mail);
    let q =
        "mutation($t: String!) { verifyEmail(token: $t) { user { displayName emailVerified } } }";
    let v = app.gql(None, q, json!({ "t": token })).await;
    assert_eq!(
        v["data"]["verifyEmail"]["user"]["emailVerified"], true,
        "{v}"
    );
    let again = app.gql(None, q, json!({ "t": token })).await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT", "{again}");
    assert_eq!(error_field(&again), "token");
}

#[tokio::test]
async fn sign_up_answers_the_same_for_a_taken_address_and_mails_its_owner() {
    let app = spawn_app().await;
    app.sign_up("ann@example.org", "Ann").await;
    app.wait_for_mail("ann@example.org", "verify_email").await;
    let r = app.sign_up("ANN@example.ORG", "Someone Else").await;
    assert_eq!(r, json!({ "data": { "signUp": { "accepted": true } } }));
    let notice = app.wait_for_mail("ann@example.org", "account_exists").await;
    assert!(
        notice.text.contains("already have an account"),
        "{}",
        notice.text
    );
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM users").await, 1);
    // A third try within the hour does not mail again.
    app.sign_up("ann@example.org", "Ann").await;
    app.settle().await;
    let notices = app
        .mails_to("ann@example.org")
        .into_iter()
        .filter(|m| m.template == "account_exists")
        .count();
    assert_eq!(notices, 1);
}

#[tokio::test]
async fn sign_up_refuses_weak_passwords_and_bad_input_with_the_field() {
    let app = spawn_app().await;
    let q = "mutation($i: SignUpInput!) { signUp(input: $i) { accepted } }";
    let cases = [
        (
            json!({"email": "bob@example.org", "password": "short", "displayName": "Bob"}),
            "password",
        ),
        (
            json!({"email": "bob@example.org", "password": "password1234", "displayName": "Bob"}),
            "password",
        ),
        (
            json!({"email": "bob@example.org", "password": "bob@example.org-is-mine-7", "displayName": "Bob"}),
            "password",
        ),
        (
            json!({"email": "bob@example.org", "password": "Roberta Quillfeather x9!", "displayName": "Roberta Quillfeather"}),
            "password",
        ),
        (
            json!({"email": "bob@example.org", "password": "x".repeat(257), "displayName": "Bob"}),
            "password",
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD, "displayName": "Bob"}),
            "email",
        ),
        (
            json!({"email": "bob@@example.org", "password": PASSWORD, "displayName": "Bob"}),
            "email",
        ),
        (
            json!({"email": "bob@example.org", "password": PASSWORD, "displayName": "  "}),
            "displayName",
        ),
        (
            json!({"email": "bob@example.org", "password": PASSWORD, "displayName": "B".repeat(81)}),
            "displayName",
        ),
    ];
    for (input, field) in cases {
        let r = app.gql(None, q, json!({ "i": input })).await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{input} -> {r}");
        assert_eq!(error_field(&r), field, "{input} -> {r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().len() > 5);
    }
    app.settle().await;
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM users").await, 0);
    assert!(app.mail.messages().is_empty());
}

#[tokio::test]
async fn expired_verification_links_are_refused_and_resend_issues_a_new_one() {
    let app = spawn_app().await;
    app.sign_up("cat@example.org", "Cat").await;
    let first = token_from_mail(&app.wait_for_mail("cat@example.org", "verify_email").await);
    exec(
        &app.db,
        "UPDATE email_tokens SET expires_at = '2000-01-01T00:00:00+00:00'",
    )
    .await;
    let q = "mutation($t: String!) { verifyEmail(token: $t) { user { emailVerified } } }";
    let r = app.gql(None, q, json!({ "t": first })).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    let r = app.gql(None, q, json!({ "t": "made-up-token" })).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");

    let resend = "mutation($e: String!) { resendVerificationEmail(email: $e) { accepted } }";
    let r = app
        .gql(None, resend, json!({ "e": "cat@example.org" }))
        .await;
    assert_eq!(r["data"]["resendVerificationEmail"]["accepted"], true);
    // Unknown addresses get the same answer and no mail.
    let r = app
        .gql(None, resend, json!({ "e": "nobody@example.org" }))
        .await;
    assert_eq!(r["data"]["resendVerificationEmail"]["accepted"], true);
    for _ in 0..100 {
        if app.mails_to("cat@example.org").len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mails = app.mails_to("cat@example.org");
    assert_eq!(mails.len(), 2);
    let second = token_from_mail(&mails[1]);
    assert_ne!(first, second);
    let r = app.gql(None, q, json!({ "t": second })).await;
    assert_eq!(
        r["data"]["verifyEmail"]["user"]["emailVerified"], true,
        "{r}"
    );
    app.settle().await;
    assert!(app.mails_to("nobody@example.org").is_empty());
}

#[tokio::test]
async fn unverified_accounts_log_in_and_edit_their_profile() {
    let app = spawn_app().await;
    let s = app.unverified_user("dan@example.org", "Dan").await;
    let me = app
        .gql(
            Some(&s.access),
            "{ me { displayName emailVerified email role sector organisation } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({"displayName": "Dan", "emailVerified": false, "email": "dan@example.org", "role": "MEMBER", "sector": "CIVIL_SOCIETY", "organisation": "Open Data Co-op"})
    );
    let q = "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { user { displayName bio organisation sector } } }";
    let r = app
        .gql(Some(&s.access), q, json!({"i": {"displayName": "Dan Ek", "bio": "I map bus stops.", "sector": "ACADEMIC"}}))
        .await;
    assert_eq!(
        r["data"]["updateProfile"]["user"],
        json!({"displayName": "Dan Ek", "bio": "I map bus stops.", "organisation": "Open Data Co-op", "sector": "ACADEMIC"})
    );
    let r = app
        .gql(Some(&s.access), q, json!({"i": {"bio": "b".repeat(2001)}}))
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT");
    assert_eq!(error_field(&r), "bio");
    let r = app.gql(None, q, json!({"i": {"bio": "anon"}})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
}

#[tokio::test]
async fn email_is_visible_to_its_owner_and_admins_only() {
    let app = spawn_app().await;
    let eve = app.verified_user("eve@example.org", "Eve").await;
    let fay = app.verified_user("fay@example.org", "Fay").await;
    let q = "query($id: ID!) { user(id: $id) { displayName email } }";
    let r = app
        .gql(Some(&fay.access), q, json!({"id": eve.user_id}))
        .await;
    assert_eq!(
        r["data"]["user"],
        json!({"displayName": "Eve", "email": null})
    );
    let r = app.gql(None, q, json!({"id": eve.user_id})).await;
    assert_eq!(r["data"]["user"]["email"], serde_json::Value::Null);
    let r = app
        .gql(Some(&eve.access), q, json!({"id": eve.user_id}))
        .await;
    assert_eq!(r["data"]["user"]["email"], "eve@example.org");
    app.make_role("fay@example.org", convene::entities::user::Role::Admin)
        .await;
    let r = app
        .gql(Some(&fay.access), q, json!({"id": eve.user_id}))
        .await;
    assert_eq!(r["data"]["user"]["email"], "eve@example.org");
    let r = app.gql(None, q, json!({"id": "not-an-id"})).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT");
    let r = app
        .gql(None, q, json!({"id": uuid::Uuid::now_v7().to_string()}))
        .await;
    assert_eq!(r["data"]["user"], serde_json::Value::Null);
}

#[tokio::test]
async fn only_admins_change_roles_and_the_last_admin_stays() {
    let app = spawn_app().await;
    let root = app.verified_user("root@example.org", "Root").await;
    let gus = app.verified_user("gus@example.org", "Gus").await;
    let q = "mutation($i: SetUserRoleInput!) { setUserRole(input: $i) { user { role } } }";
    let r = app
        .gql(
            Some(&gus.access),
            q,
            json!({"i": {"userId": gus.user_id, "role": "ADMIN"}}),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = app
        .gql(
            None,
            q,
            json!({"i": {"userId": gus.user_id, "role": "ADMIN"}}),
        )
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");

    app.make_role("root@example.org", convene::entities::user::Role::Admin)
        .await;
    let r = app
        .gql(
            Some(&root.access),
            q,
            json!({"i": {"userId": gus.user_id, "role": "OFFICIAL"}}),
        )
        .await;
    assert_eq!(r["data"]["setUserRole"]["user"]["role"], "OFFICIAL", "{r}");
    // The role takes effect on the next request with the same token.
    let me = app
        .gql(Some(&gus.access), "{ me { role } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["role"], "OFFICIAL");

    let r = app
        .gql(
            Some(&root.access),
            q,
            json!({"i": {"userId": root.user_id, "role": "MEMBER"}}),
        )
        .await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    let r = app
        .gql(
            Some(&root.access),
            q,
            json!({"i": {"userId": uuid::Uuid::now_v7().to_string(), "role": "MEMBER"}}),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
    // With a second admin, the first may step down.
    let r = app
        .gql(
            Some(&root.access),
            q,
            json!({"i": {"userId": gus.user_id, "role": "ADMIN"}}),
        )
        .await;
    assert_eq!(r["data"]["setUserRole"]["user"]["role"], "ADMIN");
    let r = app
        .gql(
            Some(&root.access),
            q,
            json!({"i": {"userId": root.user_id, "role": "MEMBER"}}),
        )
        .await;
    assert_eq!(r["data"]["setUserRole"]["user"]["role"], "MEMBER", "{r}");
}
