//! Suggestions, supports, follows, official responses, the outcome log, ordering,
//! pagination under inserts, and the statement budget of a page.

use std::collections::HashSet;
use std::sync::Arc;

use convene::entities::user::Role;
use serde_json::{json, Value};

use crate::helpers::*;

const SUGGESTION: &str = "query($id: ID!) { suggestion(id: $id) { id title body bodyHtml status supportCount viewerHasSupported followerCount viewerIsFollowing respondedAt awaitingResponseSince author { displayName } commitment { reference } revisions { nodes { title body } } responses { body newStatus author { displayName } } duplicateOf { id } } }";
const CREATE: &str = "mutation($i: CreateSuggestionInput!) { createSuggestion(input: $i) { suggestion { id title status followerCount viewerIsFollowing bodyHtml awaitingResponseSince } } }";
const SUPPORT: &str = "mutation($id: ID!) { supportSuggestion(id: $id) { suggestion { supportCount viewerHasSupported } } }";
const UNSUPPORT: &str = "mutation($id: ID!) { withdrawSupport(id: $id) { suggestion { supportCount viewerHasSupported } } }";
const RESPOND: &str = "mutation($i: PublishResponseInput!) { publishResponse(input: $i) { response { id body bodyHtml newStatus previousStatus author { displayName } publishedAt } suggestion { status respondedAt awaitingResponseSince supportCount followerCount duplicateOf { id } } movedSupportCount movedFollowerCount } }";

struct Forum {
    app: TestApp,
    official: Session,
    ann: Session,
    commitment: String,
}

async fn forum() -> Forum {
    forum_with(|_| {}).await
}

async fn forum_with(configure: impl FnOnce(&mut convene::config::Settings)) -> Forum {
    let app = spawn_app_with(configure).await;
    let official =
        user_with_role(&app, "official@example.org", "Olu Official", Role::Official).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let commitment = create_commitment(&app, &official, "UK0072", "Involving data users").await;
    Forum {
        app,
        official,
        ann,
        commitment,
    }
}

async fn suggestion(app: &TestApp, token: Option<&str>, id: &str) -> Value {
    let r = app.gql(token, SUGGESTION, json!({"id": id})).await;
    assert!(r["errors"].is_null(), "{r}");
    r["data"]["suggestion"].clone()
}

#[tokio::test]
async fn verified_accounts_post_suggestions_and_bad_input_names_the_field() {
    let f = forum().await;
    let app = &f.app;
    let input = |title: &str, body: &str| json!({"i": {"commitmentId": f.commitment, "title": title, "body": body}});
    let r = app
        .gql(
            Some(&f.ann.access),
            CREATE,
            input("Publish the register as CSV", "Weekly, please."),
        )
        .await;
    let s = &r["data"]["createSuggestion"]["suggestion"];
    assert_eq!(s["status"], "SUBMITTED", "{r}");
    assert_eq!(s["followerCount"], 1, "the author follows automatically");
    assert_eq!(s["viewerIsFollowing"], true);
    assert!(s["awaitingResponseSince"].is_string());

    let r = app
        .gql(None, CREATE, input("Publish the register", "x"))
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
    let unverified = app.unverified_user("unv@example.org", "Unv").await;
    let r = app
        .gql(
            Some(&unverified.access),
            CREATE,
            input("Publish the register", "x"),
        )
        .await;
    assert_eq!(error_code(&r), "EMAIL_NOT_VERIFIED");
    for (title, body, field) in [
        ("Tiny", "ok body", "title"),
        (&"t".repeat(201)[..], "ok body", "title"),
        ("A fine title", "   ", "body"),
        ("A fine title", &"b".repeat(20_001)[..], "body"),
    ] {
        let r = app
            .gql(Some(&f.ann.access), CREATE, input(title, body))
            .await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
        assert_eq!(error_field(&r), field, "{r}");
    }
    let r = app.gql(Some(&f.ann.access), CREATE, json!({"i": {"commitmentId": uuid::Uuid::now_v7().to_string(), "title": "A fine title", "body": "b"}})).await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM suggestions").await, 1);
}

#[tokio::test]
async fn images_render_only_from_the_configured_hosts() {
    let f = forum_with(|s| s.markdown.image_hosts = vec!["images.gov.example".into()]).await;
    let body = "![chart](https://images.gov.example/chart.png)\n\n![pixel](https://tracker.example.com/p.gif)";
    let r = f.app.gql(Some(&f.ann.access), CREATE, json!({"i": {"commitmentId": f.commitment, "title": "Pictures and trackers", "body": body}})).await;
    let html = r["data"]["createSuggestion"]["suggestion"]["bodyHtml"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"));
    assert!(
        html.contains(r#"<img src="https://images.gov.example/chart.png" alt="chart">"#),
        "{html}"
    );
    // The other host is a link a reader may choose to follow, never loaded on view.
    assert_eq!(html.matches("<img").count(), 1, "{html}");
    assert!(
        html.contains(
            r#"<a href="https://tracker.example.com/p.gif" rel="nofollow ugc noopener">pixel</a>"#
        ),
        "{html}"
    );
}

#[tokio::test]
async fn markdown_is_rendered_and_scripts_never_survive() {
    let f = forum().await;
    let body = "**Open** the [register](https://example.org/reg).\n\n<script>alert('x')</script>\n<img src=x onerror=alert(1)>\n[click](javascript:alert(1)) <a href=\"#\" onclick=\"steal()\">raw</a>";
    let r = f.app.gql(Some(&f.ann.access), CREATE, json!({"i": {"commitmentId": f.commitment, "title": "Safe rendering please", "body": body}})).await;
    let html = r["data"]["createSuggestion"]["suggestion"]["bodyHtml"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(html.contains("<strong>open</strong>"), "{html}");
    assert!(
        html.contains(r#"<a href="https://example.org/reg" rel="nofollow ugc noopener">"#),
        "{html}"
    );
    // Raw HTML is shown as text, never as markup; no link may run script.
    for bad in ["<script", "<img", "<a href=\"#\"", "href=\"javascript"] {
        assert!(!html.contains(bad), "{bad} survived in {html}");
    }
    for tag in html
        .split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or(""))
    {
        assert!(
            !tag.contains("onerror") && !tag.contains("onclick"),
            "event handler in <{tag}>"
        );
    }
    let r = f.app.gql(Some(&f.ann.access), CREATE, json!({"i": {"commitmentId": f.commitment, "title": "Link schemes matter", "body": "[click](javascript:alert) and [mail](mailto:a@b.org)"}})).await;
    let html = r["data"]["createSuggestion"]["suggestion"]["bodyHtml"]
        .as_str()
        .unwrap();
    assert!(!html.contains("javascript"), "{html}");
    assert!(html.contains("href=\"mailto:a@b.org\""), "{html}");
}

#[tokio::test]
async fn authors_edit_while_submitted_keeping_revisions_and_can_withdraw() {
    let f = forum().await;
    let app = &f.app;
    let id = create_suggestion(app, &f.ann, &f.commitment, "First title here").await;
    let update = "mutation($i: UpdateSuggestionInput!) { updateSuggestion(input: $i) { suggestion { title body } } }";
    let r = app
        .gql(
            Some(&f.ann.access),
            update,
            json!({"i": {"id": id, "title": "Second title here", "body": "Better body"}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateSuggestion"]["suggestion"],
        json!({"title": "Second title here", "body": "Better body"}),
        "{r}"
    );
    app.gql(
        Some(&f.ann.access),
        update,
        json!({"i": {"id": id, "body": "Best body"}}),
    )
    .await;
    let s = suggestion(app, None, &id).await;
    assert_eq!(
        s["revisions"]["nodes"],
        json!([{"title": "First title here", "body": "Please consider: First title here"}, {"title": "Second title here", "body": "Better body"}])
    );

    let bob = app.verified_user("bob@example.org", "Bob").await;
    let r = app
        .gql(
            Some(&bob.access),
            update,
            json!({"i": {"id": id, "title": "Bob was here"}}),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");

    let r = app.gql(Some(&f.official.access), RESPOND, json!({"i": {"suggestionId": id, "body": "Looking at it.", "newStatus": "UNDER_REVIEW"}})).await;
    assert!(r["errors"].is_null(), "{r}");
    let r = app
        .gql(
            Some(&f.ann.access),
            update,
            json!({"i": {"id": id, "title": "Too late now"}}),
        )
        .await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");

    let withdraw = "mutation($id: ID!) { withdrawSuggestion(id: $id) { suggestion { status awaitingResponseSince } } }";
    let r = app
        .gql(Some(&bob.access), withdraw, json!({"id": id}))
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let r = app
        .gql(Some(&f.ann.access), withdraw, json!({"id": id}))
        .await;
    assert_eq!(
        r["data"]["withdrawSuggestion"]["suggestion"],
        json!({"status": "WITHDRAWN", "awaitingResponseSince": null}),
        "{r}"
    );
    // Kept on the record, and closed to support.
    assert_eq!(suggestion(app, None, &id).await["status"], "WITHDRAWN");
    let r = app.gql(Some(&bob.access), SUPPORT, json!({"id": id})).await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    let r = app
        .gql(Some(&f.ann.access), withdraw, json!({"id": id}))
        .await;
    assert_eq!(error_code(&r), "CONFLICT");
}

#[tokio::test]
async fn support_is_once_per_account_withdrawable_and_never_ones_own() {
    let f = forum().await;
    let app = &f.app;
    let id = create_suggestion(app, &f.ann, &f.commitment, "Open the bus data").await;
    let r = app
        .gql(Some(&f.ann.access), SUPPORT, json!({"id": id}))
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let bob = app.verified_user("bob@example.org", "Bob").await;
    for _ in 0..2 {
        let r = app.gql(Some(&bob.access), SUPPORT, json!({"id": id})).await;
        assert_eq!(
            r["data"]["supportSuggestion"]["suggestion"],
            json!({"supportCount": 1, "viewerHasSupported": true}),
            "{r}"
        );
    }
    let anon = suggestion(app, None, &id).await;
    assert_eq!(
        (
            anon["supportCount"].as_i64(),
            anon["viewerHasSupported"].as_bool()
        ),
        (Some(1), Some(false))
    );
    for _ in 0..2 {
        let r = app
            .gql(Some(&bob.access), UNSUPPORT, json!({"id": id}))
            .await;
        assert_eq!(
            r["data"]["withdrawSupport"]["suggestion"],
            json!({"supportCount": 0, "viewerHasSupported": false}),
            "{r}"
        );
    }
    let r = app.gql(None, SUPPORT, json!({"id": id})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
    let unverified = app.unverified_user("unv@example.org", "Unv").await;
    let r = app
        .gql(Some(&unverified.access), SUPPORT, json!({"id": id}))
        .await;
    assert_eq!(error_code(&r), "EMAIL_NOT_VERIFIED");

    let follow = "mutation($id: ID!) { followSuggestion(id: $id) { suggestion { followerCount viewerIsFollowing } } }";
    let unfollow = "mutation($id: ID!) { unfollowSuggestion(id: $id) { suggestion { followerCount viewerIsFollowing } } }";
    let r = app.gql(Some(&bob.access), follow, json!({"id": id})).await;
    assert_eq!(
        r["data"]["followSuggestion"]["suggestion"],
        json!({"followerCount": 2, "viewerIsFollowing": true})
    );
    let r = app.gql(Some(&bob.access), follow, json!({"id": id})).await;
    assert_eq!(
        r["data"]["followSuggestion"]["suggestion"]["followerCount"],
        2
    );
    let r = app
        .gql(Some(&f.ann.access), unfollow, json!({"id": id}))
        .await;
    assert_eq!(
        r["data"]["unfollowSuggestion"]["suggestion"],
        json!({"followerCount": 1, "viewerIsFollowing": false})
    );
}

#[tokio::test]
async fn fifty_concurrent_supports_count_exactly_fifty() {
    let f = forum().await;
    let app = &f.app;
    let id = create_suggestion(app, &f.ann, &f.commitment, "Everyone wants this").await;
    let mut sessions = Vec::new();
    for chunk in (0..50).collect::<Vec<_>>().chunks(10) {
        let made =
            futures::future::join_all(chunk.iter().map(|i| app.verified_user_quick(i))).await;
        sessions.extend(made);
    }
    let supports = sessions
        .iter()
        .map(|s| app.gql(Some(&s.access), SUPPORT, json!({"id": id})));
    for r in futures::future::join_all(supports).await {
        assert!(r["errors"].is_null(), "{r}");
    }
    // And again, all at once: nothing changes.
    let again = sessions
        .iter()
        .map(|s| app.gql(Some(&s.access), SUPPORT, json!({"id": id})));
    futures::future::join_all(again).await;
    assert_eq!(suggestion(app, None, &id).await["supportCount"], 50);
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM supports").await, 50);
    let half = sessions
        .iter()
        .take(20)
        .map(|s| app.gql(Some(&s.access), UNSUPPORT, json!({"id": id})));
    futures::future::join_all(half).await;
    assert_eq!(suggestion(app, None, &id).await["supportCount"], 30);
}

#[tokio::test]
async fn officials_move_suggestions_through_the_workflow() {
    let f = forum().await;
    let app = &f.app;
    let id = create_suggestion(app, &f.ann, &f.commitment, "Publish spend over 500").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    app.gql(
        Some(&bob.access),
        "mutation($id: ID!) { followSuggestion(id: $id) { suggestion { id } } }",
        json!({"id": id}),
    )
    .await;

    let r = app
        .gql(
            Some(&bob.access),
            RESPOND,
            json!({"i": {"suggestionId": id, "body": "I approve", "newStatus": "ACCEPTED"}}),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = app
        .gql(
            None,
            RESPOND,
            json!({"i": {"suggestionId": id, "body": "x"}}),
        )
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");

    let r = app.gql(Some(&f.official.access), RESPOND, json!({"i": {"suggestionId": id, "body": "We are *looking* into it.", "newStatus": "UNDER_REVIEW"}})).await;
    let p = &r["data"]["publishResponse"];
    assert_eq!(p["response"]["newStatus"], "UNDER_REVIEW", "{r}");
    assert_eq!(p["response"]["previousStatus"], "SUBMITTED");
    assert_eq!(p["response"]["author"]["displayName"], "Olu Official");
    assert!(p["response"]["bodyHtml"]
        .as_str()
        .unwrap()
        .contains("<em>looking</em>"));
    assert_eq!(p["suggestion"]["status"], "UNDER_REVIEW");
    assert!(p["suggestion"]["respondedAt"].is_string());
    assert!(p["suggestion"]["awaitingResponseSince"].is_null());
    let first_responded = p["suggestion"]["respondedAt"].clone();

    // Transitions outside the workflow name both statuses.
    let r = app
        .gql(
            Some(&f.official.access),
            RESPOND,
            json!({"i": {"suggestionId": id, "body": "Back", "newStatus": "SUBMITTED"}}),
        )
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert_eq!(error_field(&r), "newStatus");
    let msg = r["errors"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("UNDER_REVIEW") && msg.contains("SUBMITTED"),
        "{msg}"
    );
    let r = app
        .gql(
            Some(&f.official.access),
            RESPOND,
            json!({"i": {"suggestionId": id, "body": "Done", "newStatus": "IMPLEMENTED"}}),
        )
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT");
    // Declining needs an explanation.
    let r = app
        .gql(
            Some(&f.official.access),
            RESPOND,
            json!({"i": {"suggestionId": id, "newStatus": "DECLINED"}}),
        )
        .await;
    assert_eq!(error_field(&r), "body", "{r}");
    let r = app
        .gql(
            Some(&f.official.access),
            RESPOND,
            json!({"i": {"suggestionId": id}}),
        )
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT");

    let r = app.gql(Some(&f.official.access), RESPOND, json!({"i": {"suggestionId": id, "body": "Accepted for next quarter.", "newStatus": "ACCEPTED"}})).await;
    assert_eq!(
        r["data"]["publishResponse"]["suggestion"]["status"], "ACCEPTED",
        "{r}"
    );
    assert_eq!(
        r["data"]["publishResponse"]["suggestion"]["respondedAt"],
        first_responded
    );
    // A correction is a new response; an answer without a status change is allowed.
    let r = app
        .gql(
            Some(&f.official.access),
            RESPOND,
            json!({"i": {"suggestionId": id, "body": "Correction: next month."}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let r = app
        .gql(
            Some(&f.official.access),
            RESPOND,
            json!({"i": {"suggestionId": id, "body": "Live now.", "newStatus": "IMPLEMENTED"}}),
        )
        .await;
    assert_eq!(
        r["data"]["publishResponse"]["suggestion"]["status"],
        "IMPLEMENTED"
    );
    let r = app
        .gql(
            Some(&f.official.access),
            RESPOND,
            json!({"i": {"suggestionId": id, "body": "Undo", "newStatus": "DECLINED"}}),
        )
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT");

    let s = suggestion(app, None, &id).await;
    let statuses: Vec<Value> = s["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["newStatus"].clone())
        .collect();
    assert_eq!(
        statuses,
        [
            json!("UNDER_REVIEW"),
            json!("ACCEPTED"),
            Value::Null,
            json!("IMPLEMENTED")
        ]
    );
    // Each response queued one notification event, whatever its audience: the worker fans
    // it out to the followers (Ann the author, Bob), not the official.
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'notification' AND template = 'response_published'"
        )
        .await,
        4
    );
    let schema = app
        .gql(
            None,
            "{ __type(name: \"Mutation\") { fields { name } } }",
            json!({}),
        )
        .await;
    let names: Vec<&str> = schema["data"]["__type"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("Response") && *n != "publishResponse"),
        "responses are immutable: {names:?}"
    );
}

#[tokio::test]
async fn duplicates_merge_supports_and_followers_without_double_counting() {
    let f = forum().await;
    let app = &f.app;
    let original = create_suggestion(app, &f.ann, &f.commitment, "Open bus timetables").await;
    let carl = app.verified_user("carl@example.org", "Carl").await;
    let dup = create_suggestion(app, &carl, &f.commitment, "Bus timetables as open data").await;
    let mut users = Vec::new();
    for i in 0..3 {
        users.push(
            app.verified_user(&format!("u{i}@example.org"), &format!("User {i}"))
                .await,
        );
    }
    // u0 supports both; u1, u2 only the duplicate; Ann (the original's author) supports the duplicate.
    for u in &users {
        app.gql(Some(&u.access), SUPPORT, json!({"id": dup})).await;
    }
    app.gql(Some(&f.ann.access), SUPPORT, json!({"id": dup}))
        .await;
    app.gql(Some(&users[0].access), SUPPORT, json!({"id": original}))
        .await;

    let mark = |target: Value| json!({"i": {"suggestionId": dup, "body": "Same as another.", "newStatus": "DUPLICATE", "duplicateOfId": target}});
    let r = app
        .gql(Some(&f.official.access), RESPOND, mark(json!(dup)))
        .await;
    assert_eq!(error_field(&r), "duplicateOfId", "{r}");
    let r = app
        .gql(
            Some(&f.official.access),
            RESPOND,
            json!({"i": {"suggestionId": dup, "body": "x", "newStatus": "DUPLICATE"}}),
        )
        .await;
    assert_eq!(error_field(&r), "duplicateOfId");
    let other_commitment = create_commitment(app, &f.official, "UK0070", "FOI code").await;
    let elsewhere = create_suggestion(app, &carl, &other_commitment, "Elsewhere entirely").await;
    let r = app
        .gql(Some(&f.official.access), RESPOND, mark(json!(elsewhere)))
        .await;
    assert_eq!(error_field(&r), "duplicateOfId", "{r}");

    let r = app
        .gql(Some(&f.official.access), RESPOND, mark(json!(original)))
        .await;
    let p = &r["data"]["publishResponse"];
    assert_eq!(p["suggestion"]["status"], "DUPLICATE", "{r}");
    assert_eq!(p["suggestion"]["duplicateOf"]["id"], original);
    assert_eq!(
        p["movedSupportCount"], 2,
        "u1 and u2 move; u0 already supports; Ann cannot support her own"
    );
    assert_eq!(p["suggestion"]["supportCount"], 0);
    let o = suggestion(app, None, &original).await;
    assert_eq!(o["supportCount"], 3);
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM supports WHERE suggestion_id IN (SELECT id FROM suggestions WHERE title = 'Open bus timetables')").await, 3);
    // Carl (the duplicate's author, following it) now follows the original too.
    assert_eq!(p["movedFollowerCount"], 1);
    assert_eq!(o["followerCount"], 2);

    // A duplicate cannot be the original of another.
    let third = create_suggestion(app, &carl, &f.commitment, "Timetables again please").await;
    let r = app.gql(Some(&f.official.access), RESPOND, json!({"i": {"suggestionId": third, "body": "dup", "newStatus": "DUPLICATE", "duplicateOfId": dup}})).await;
    assert_eq!(error_field(&r), "duplicateOfId", "{r}");
}

const LIST: &str = "query($f: SuggestionFilter, $o: SuggestionOrder, $first: Int, $after: String) { suggestions(filter: $f, orderBy: $o, first: $first, after: $after) { totalCount nodes { id title supportCount } pageInfo { hasNextPage endCursor } } }";

fn titles(r: &Value) -> Vec<String> {
    r["data"]["suggestions"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn lists_filter_and_order() {
    let f = forum().await;
    let app = &f.app;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let cat = app.verified_user("cat@example.org", "Cat").await;
    let a = create_suggestion(app, &f.ann, &f.commitment, "Alpha suggestion").await;
    let b = create_suggestion(app, &bob, &f.commitment, "Bravo suggestion").await;
    let c = create_suggestion(app, &cat, &f.commitment, "Charlie suggestion").await;
    for s in [&bob, &cat] {
        app.gql(Some(&s.access), SUPPORT, json!({"id": a})).await;
    }
    app.gql(Some(&f.ann.access), SUPPORT, json!({"id": c}))
        .await;
    app.gql(
        Some(&f.official.access),
        RESPOND,
        json!({"i": {"suggestionId": b, "body": "Reviewing", "newStatus": "UNDER_REVIEW"}}),
    )
    .await;
    // An old support no longer counts as trending once the scores are refreshed.
    let old = (chrono::Utc::now() - chrono::Duration::days(8)).to_rfc3339();
    exec(&app.db, &format!("UPDATE supports SET created_at = '{old}' WHERE user_id = (SELECT id FROM users WHERE email_normalized = 'bob@example.org')")).await;
    convene::services::suggestions::refresh_trending(&app.db)
        .await
        .unwrap();

    let f_c = json!({"commitmentId": f.commitment});
    assert_eq!(
        titles(&app.gql(None, LIST, json!({"f": f_c, "o": "TOP"})).await),
        ["Alpha suggestion", "Charlie suggestion", "Bravo suggestion"]
    );
    assert_eq!(
        titles(&app.gql(None, LIST, json!({"f": f_c, "o": "NEW"})).await),
        ["Charlie suggestion", "Bravo suggestion", "Alpha suggestion"]
    );
    assert_eq!(
        titles(
            &app.gql(None, LIST, json!({"f": f_c, "o": "TRENDING"}))
                .await
        ),
        ["Charlie suggestion", "Alpha suggestion", "Bravo suggestion"]
    );
    let waiting = app.gql(None, LIST, json!({"o": "LONGEST_WAITING"})).await;
    assert_eq!(titles(&waiting), ["Alpha suggestion", "Charlie suggestion"]);
    assert_eq!(waiting["data"]["suggestions"]["totalCount"], 2);
    assert_eq!(
        titles(
            &app.gql(None, LIST, json!({"f": {"status": "UNDER_REVIEW"}}))
                .await
        ),
        ["Bravo suggestion"]
    );
    assert_eq!(
        titles(
            &app.gql(None, LIST, json!({"f": {"authorId": bob.user_id}}))
                .await
        ),
        ["Bravo suggestion"]
    );
    assert_eq!(
        titles(
            &app.gql(None, LIST, json!({"f": {"awaitingResponse": false}}))
                .await
        ),
        ["Bravo suggestion"]
    );
    let r = app
        .gql(None, LIST, json!({"f": {"commitmentId": "nope"}}))
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT");
    // Nested under the commitment too.
    let r = app.gql(None, "query($id: ID!) { commitment(id: $id) { suggestions(orderBy: TOP, first: 1) { nodes { title } totalCount } } }", json!({"id": f.commitment})).await;
    assert_eq!(
        r["data"]["commitment"]["suggestions"],
        json!({"nodes": [{"title": "Alpha suggestion"}], "totalCount": 3})
    );
}

#[tokio::test]
async fn paging_while_suggestions_arrive_never_repeats_or_skips() {
    let f = forum().await;
    let app = &f.app;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let mut existing = HashSet::new();
    for i in 0..23 {
        existing.insert(
            create_suggestion(
                app,
                &f.ann,
                &f.commitment,
                &format!("Existing suggestion {i:02}"),
            )
            .await,
        );
    }
    // Give some support so TOP has ties and distinct counts.
    for id in existing.iter().take(7) {
        app.gql(Some(&bob.access), SUPPORT, json!({"id": id})).await;
    }
    // Meanwhile, another client keeps posting suggestions.
    let writer = {
        let (client, url, token, commitment) = (
            app.client.clone(),
            app.url("/graphql"),
            bob.access.clone(),
            f.commitment.clone(),
        );
        tokio::spawn(async move {
            for i in 0..40 {
                let r: Value = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"query": "mutation($i: CreateSuggestionInput!) { createSuggestion(input: $i) { suggestion { id } } }",
                        "variables": {"i": {"commitmentId": commitment, "title": format!("Concurrent arrival {i}"), "body": "b"}}}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert!(r["errors"].is_null(), "{r}");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };
    for order in ["NEW", "TOP", "TRENDING", "LONGEST_WAITING"] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut n = 0;
        loop {
            let r = app.gql(None, LIST, json!({"f": {"commitmentId": f.commitment}, "o": order, "first": 5, "after": after})).await;
            for node in r["data"]["suggestions"]["nodes"]
                .as_array()
                .unwrap_or_else(|| panic!("{r}"))
            {
                seen.push(node["id"].as_str().unwrap().to_string());
            }
            // New suggestions arrive between pages.
            n += 1;
            create_suggestion(
                app,
                &bob,
                &f.commitment,
                &format!("Arrived during {order} {n}"),
            )
            .await;
            let info = &r["data"]["suggestions"]["pageInfo"];
            if info["hasNextPage"] != true {
                break;
            }
            after = info["endCursor"].as_str().map(str::to_string);
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{order}: a suggestion was repeated"
        );
        for id in &existing {
            assert!(
                unique.contains(id),
                "{order}: an existing suggestion was skipped"
            );
        }
    }
    writer.await.unwrap();
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(*) FROM suggestions WHERE title LIKE 'Concurrent arrival%'"
        )
        .await,
        40
    );
}

#[tokio::test]
async fn the_outcome_log_lists_responses_newest_first() {
    let f = forum().await;
    let app = &f.app;
    let other = create_commitment(app, &f.official, "UK0070", "FOI code").await;
    let s1 = create_suggestion(app, &f.ann, &f.commitment, "First for outcomes").await;
    let s2 = create_suggestion(app, &f.ann, &other, "Second for outcomes").await;
    app.gql(
        Some(&f.official.access),
        RESPOND,
        json!({"i": {"suggestionId": s1, "body": "one", "newStatus": "UNDER_REVIEW"}}),
    )
    .await;
    app.gql(
        Some(&f.official.access),
        RESPOND,
        json!({"i": {"suggestionId": s2, "body": "two"}}),
    )
    .await;
    app.gql(
        Some(&f.official.access),
        RESPOND,
        json!({"i": {"suggestionId": s1, "body": "three", "newStatus": "ACCEPTED"}}),
    )
    .await;
    let q = "query($f: OutcomeFilter) { outcomes(filter: $f) { totalCount nodes { __typename ... on OfficialResponse { body suggestion { title } commitment { reference } } } } }";
    let r = app.gql(None, q, json!({})).await;
    let bodies: Vec<&str> = r["data"]["outcomes"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["three", "two", "one"], "{r}");
    assert_eq!(
        r["data"]["outcomes"]["nodes"][0]["__typename"],
        "OfficialResponse"
    );
    assert_eq!(r["data"]["outcomes"]["totalCount"], 3);
    let r = app
        .gql(None, q, json!({"f": {"commitmentId": f.commitment}}))
        .await;
    let bodies: Vec<&str> = r["data"]["outcomes"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["three", "one"]);
    assert_eq!(
        r["data"]["outcomes"]["nodes"][0]["commitment"]["reference"],
        "UK0072"
    );
}

/// Inserts `n` authors and one suggestion each straight into the database.
async fn bulk_suggestions(
    db: &sea_orm::DatabaseConnection,
    commitment: uuid::Uuid,
    n: usize,
) -> Vec<uuid::Uuid> {
    use convene::entities::{suggestion, user};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let now = convene::db::now();
    let mut ids = Vec::new();
    for i in 0..n {
        let author = user::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            email: Set(format!("bulk{i}@example.org")),
            email_normalized: Set(format!("bulk{i}@example.org")),
            password_hash: Set("x".into()),
            display_name: Set(format!("Bulk {i}")),
            bio: Set(String::new()),
            organisation: Set(String::new()),
            sector: Set(user::Sector::Individual),
            role: Set(user::Role::Member),
            email_verified_at: Set(Some(now)),
            created_at: Set(now),
            updated_at: Set(now),
            suspended_until: Set(None),
        }
        .insert(db)
        .await
        .unwrap();
        let s = suggestion::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            commitment_id: Set(commitment),
            author_id: Set(author.id),
            title: Set(format!("Bulk suggestion {i}")),
            body: Set("b".into()),
            body_html: Set("<p>b</p>".into()),
            status: Set(suggestion::Status::Submitted),
            support_count: Set(i32::try_from(i % 7).unwrap()),
            follower_count: Set(1),
            trending_score: Set(0),
            awaiting_response: Set(true),
            responded_at: Set(None),
            duplicate_of_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            in_reply_to_update_id: Set(None),
            hidden: Set(false),
        }
        .insert(db)
        .await
        .unwrap();
        ids.push(s.id);
    }
    ids
}

#[tokio::test]
async fn a_page_costs_the_same_statements_whatever_its_size() {
    // A hundred suggestions with every relation cost about 5,400: over the default budget,
    // which is not what this test is about.
    let (app, statements) = spawn_app_recording_statements(|s| s.graphql.max_cost = 10_000).await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let viewer = app.verified_user("viewer@example.org", "Viewer").await;
    let commitment = create_commitment(&app, &official, "UK0072", "Involving data users").await;
    let ids = bulk_suggestions(&app.db, uuid::Uuid::parse_str(&commitment).unwrap(), 100).await;
    for id in ids.iter().step_by(3) {
        app.gql(Some(&viewer.access), SUPPORT, json!({"id": id.to_string()}))
            .await;
    }
    let q = "query($c: ID!, $n: Int) { suggestions(filter: {commitmentId: $c}, orderBy: TOP, first: $n) { totalCount nodes { title supportCount viewerHasSupported viewerIsFollowing followerCount author { displayName } commitment { reference } revisions { nodes { title } } responses { body } duplicateOf { id } } } }";
    let mut costs = Vec::new();
    for n in [10, 100] {
        statements.clear();
        let r = app
            .gql(Some(&viewer.access), q, json!({"c": commitment, "n": n}))
            .await;
        let cost = statements.count();
        let nodes = r["data"]["suggestions"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"));
        assert_eq!(nodes.len(), n);
        assert!(nodes.iter().any(|n| n["viewerHasSupported"] == true));
        assert!(nodes.iter().all(|n| n["author"]["displayName"]
            .as_str()
            .unwrap()
            .starts_with("Bulk")));
        costs.push(cost);
    }
    assert_eq!(
        costs[0], costs[1],
        "statements for 10 vs 100 suggestions: {costs:?}"
    );
    assert!(costs[0] <= 10, "a page took {} statements", costs[0]);
}

#[tokio::test]
async fn a_page_with_authors_and_commitments_reads_them_in_its_own_statement() {
    let (app, statements) = spawn_app_recording_statements(|_| {}).await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let commitment = create_commitment(&app, &official, "UK0072", "Involving data users").await;
    bulk_suggestions(&app.db, uuid::Uuid::parse_str(&commitment).unwrap(), 30).await;
    let q = "query($c: ID!) { suggestions(filter: {commitmentId: $c}, orderBy: NEW, first: 20) { nodes { title author { displayName } commitment { reference } } } }";
    statements.clear();
    let r = app.gql(None, q, json!({"c": commitment})).await;
    let nodes = r["data"]["suggestions"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(nodes.len(), 20);
    assert!(nodes
        .iter()
        .all(|n| n["commitment"]["reference"] == "UK0072"
            && n["author"]["displayName"]
                .as_str()
                .unwrap()
                .starts_with("Bulk")));
    let sql = statements.taken();
    assert_eq!(sql.len(), 1, "one statement for the page: {sql:#?}");
    // Neither the bodies (not selected) nor the password hash are read.
    assert!(!sql[0].contains("password_hash"), "{}", sql[0]);
    assert!(!sql[0].contains("\"suggestions\".\"body"), "{}", sql[0]);

    // Selecting the body reads it, still in one statement.
    statements.clear();
    let q = "query($c: ID!) { suggestions(filter: {commitmentId: $c}, first: 5) { nodes { body bodyHtml } } }";
    let r = app.gql(None, q, json!({"c": commitment})).await;
    let nodes = r["data"]["suggestions"]["nodes"].as_array().unwrap();
    assert!(
        nodes.iter().all(|n| !n["body"].as_str().unwrap().is_empty()
            && !n["bodyHtml"].as_str().unwrap().is_empty()),
        "{r}"
    );
    assert_eq!(statements.count(), 1);

    // The look-ahead sees through fragments too.
    statements.clear();
    let q = "query($c: ID!) { suggestions(filter: {commitmentId: $c}, first: 5) { nodes { ...B } } } fragment B on Suggestion { duplicateOf { id } title body }";
    let r = app.gql(None, q, json!({"c": commitment})).await;
    let nodes = r["data"]["suggestions"]["nodes"].as_array().unwrap();
    assert!(
        nodes
            .iter()
            .all(|n| !n["body"].as_str().unwrap().is_empty()),
        "{r}"
    );
    assert_eq!(statements.count(), 1);
}

/// A page's statement is read back by column position: every column must land in its own
/// field. Each column is given a value no other column of its type shares, so two read in
/// each other's place would show.
#[tokio::test]
async fn a_joined_page_reads_each_column_into_its_own_field() {
    use convene::entities::{commitment, suggestion, user};
    use convene::services::columns::ColumnSet;
    use convene::services::page::PageRequest;
    use convene::services::suggestions::{self as service, Filter, Include, Order};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};

    let f = forum().await;
    let db = &f.app.db;
    let c = uuid::Uuid::parse_str(&f.commitment).unwrap();
    let ids = bulk_suggestions(db, c, 3).await;
    let now = convene::db::now();
    let hours = chrono::Duration::hours;
    for (i, id) in ids.iter().enumerate() {
        let n = i as i32;
        let s = suggestion::Entity::find_by_id(*id)
            .one(db)
            .await
            .unwrap()
            .unwrap();
        let author = user::Entity::find_by_id(s.author_id)
            .one(db)
            .await
            .unwrap()
            .unwrap();
        let mut m = s.into_active_model();
        m.status = Set(suggestion::Status::Accepted);
        m.support_count = Set(10 + n);
        m.follower_count = Set(20 + n);
        m.trending_score = Set(30 + n);
        m.awaiting_response = Set(false);
        m.responded_at = Set(Some(now - hours(1)));
        m.duplicate_of_id = Set((i > 0).then_some(ids[0]));
        m.updated_at = Set(now + hours(2));
        m.update(db).await.unwrap();
        let mut a = author.into_active_model();
        a.bio = Set(format!("Bio {i}"));
        a.organisation = Set(format!("Organisation {i}"));
        a.sector = Set(user::Sector::Academic);
        a.role = Set(Role::Organiser);
        a.email_verified_at = Set(Some(now - hours(3)));
        a.update(db).await.unwrap();
    }
    let mut cm = commitment::Entity::find_by_id(c)
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .into_active_model();
    cm.follower_count = Set(7);
    cm.updated_at = Set(now + hours(4));
    cm.update(db).await.unwrap();

    let ctx = convene::startup::services(Arc::new(f.app.settings.clone()), db.clone()).unwrap();
    let filter = Filter {
        commitment_id: Some(c),
        ..Filter::default()
    };
    for (bodies, first) in [(false, 2), (true, 3)] {
        let mut everything = ColumnSet::ALL;
        if !bodies {
            everything = everything
                .without(suggestion::Column::Body)
                .without(suggestion::Column::BodyHtml);
        }
        let include = Include {
            suggestion: everything,
            author: Some(ColumnSet::ALL),
            commitment: Some(ColumnSet::ALL),
        };
        let page = PageRequest::parse(Some(first), None).unwrap();
        let listed = service::list_with(&ctx, &filter, Order::New, &page, include)
            .await
            .unwrap();
        assert_eq!(listed.items.len(), first as usize);
        assert_eq!(listed.has_next_page, first < 3);
        for (k, (_, l)) in listed.items.iter().enumerate() {
            let mut expected = suggestion::Entity::find_by_id(l.suggestion.id)
                .one(db)
                .await
                .unwrap()
                .unwrap();
            if !bodies {
                expected.body.clear();
                expected.body_html.clear();
            }
            assert_eq!(l.suggestion, expected);
            let author: user::Profile = user::Entity::find_by_id(expected.author_id)
                .one(db)
                .await
                .unwrap()
                .unwrap()
                .into();
            // Each suggestion has an author of its own; rows of one commitment share it.
            assert_eq!(l.author.as_deref(), Some(&author));
            let commitment = commitment::Entity::find_by_id(c)
                .one(db)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(l.commitment.as_deref(), Some(&commitment));
            if k > 0 {
                let first = listed.items[0].1.commitment.as_ref().unwrap();
                assert!(Arc::ptr_eq(l.commitment.as_ref().unwrap(), first));
            }
        }
    }
}
