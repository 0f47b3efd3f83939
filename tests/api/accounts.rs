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
