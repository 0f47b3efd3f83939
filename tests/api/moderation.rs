//! Moderation: reporting (and reporting twice), who sees the reports, resolving them,
//! hiding and unhiding with what each kind of viewer then sees, the moderation log and its
//! role changes, and the per-account writing limits.

use chrono::Duration;
use convene::entities::user::Role;
use convene::entities::{post, report, suggestion, thread, throttle_bucket, user};
use convene::services::discussions::{insert_thread, NewThread};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;
use crate::updates::publish_update;

const REPORT: &str = "mutation($i: ReportContentInput!) { reportContent(input: $i) { report { id reason details status resolution subjectType subjectId workingGroupId reporter { displayName } suggestion { id } update { id } } } }";
const RESOLVE: &str = "mutation($i: ResolveReportInput!) { resolveReport(input: $i) { report { id status resolution resolutionNote resolvedAt resolvedBy { displayName } } } }";
const REPORTS: &str = "query($open: Boolean) { reports(first: 50, filter: { open: $open }) { totalCount nodes { id status subjectType subjectId } } }";
const HIDE: &str = "mutation($i: ModerateContentInput!) { hideContent(input: $i) { content { subjectType subjectId hidden suggestion { id hidden } update { id hidden } } } }";
const UNHIDE: &str = "mutation($i: ModerateContentInput!) { unhideContent(input: $i) { content { subjectType subjectId hidden } } }";
const LOG: &str = "{ moderationLog(first: 50) { totalCount nodes { id action subjectType subjectId reason createdAt actor { displayName } } } }";
const SUGGESTION: &str =
    "query($id: ID!) { suggestion(id: $id) { title body bodyHtml hidden revisions { nodes { title } } } }";
const UPDATE: &str = "query($id: ID!) { commitmentUpdate(id: $id) { title body bodyHtml hidden } }";

struct World {
    app: TestApp,
    admin: Session,
    official: Session,
    /// Writes the suggestion.
    ann: Session,
    /// Another member.
    bob: Session,
    /// Organiser of `group`.
    org: Session,
    commitment: String,
    suggestion: String,
    update: String,
    group: String,
}

async fn world() -> World {
    let app = spawn_app().await;
    let admin = user_with_role(&app, "admin@example.org", "Ada", Role::Admin).await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let org = user_with_role(&app, "org@example.org", "Orla", Role::Organiser).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let commitment = create_commitment(&app, &official, "UK0072", "Open contracts").await;
    let suggestion = create_suggestion(&app, &ann, &commitment, "Publish every contract").await;
    let update = publish_update(&app, &official, &commitment, "Register half done").await;
    let r = app
        .gql(
            Some(&org.access),
            "mutation($i: CreateWorkingGroupInput!) { createWorkingGroup(input: $i) { workingGroup { id } } }",
            json!({"i": {"name": "Data users", "slug": "data-users", "visibility": "PUBLIC", "joinPolicy": "OPEN"}}),
        )
        .await;
    let group = r["data"]["createWorkingGroup"]["workingGroup"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createWorkingGroup failed: {r}"))
        .to_string();
    World {
        app,
        admin,
        official,
        ann,
        bob,
        org,
        commitment,
        suggestion,
        update,
        group,
    }
}

fn uuid(id: &str) -> Uuid {
    id.parse().expect("a UUID")
}

/// A thread in `group` by `author`, with one post by `author`, written straight into the
/// database (threads and posts have their own API elsewhere). Returns (thread, post).
async fn group_thread_with_post(app: &TestApp, group: &str, author: &str) -> (String, String) {
    let t = insert_thread(
        &app.db,
        NewThread {
            context: thread::Context::WorkingGroup,
            commitment_id: None,
            working_group_id: Some(uuid(group)),
            suggestion_id: None,
            update_id: None,
            author_id: uuid(author),
            title: "Meeting notes".into(),
        },
    )
    .await
    .expect("thread");
    let at = chrono::Utc::now();
    let p = post::ActiveModel {
        id: Set(Uuid::now_v7()),
        thread_id: Set(t.id),
        parent_id: Set(None),
        author_id: Set(uuid(author)),
        depth: Set(1),
        sort_key: Set("0000000001".into()),
        body: Set("Buy cheap watches".into()),
        body_html: Set("<p>Buy cheap watches</p>".into()),
        hidden: Set(false),
        deleted_at: Set(None),
        edited_at: Set(None),
        thumbs_up_count: Set(0),
        heart_count: Set(0),
        lightbulb_count: Set(0),
        question_count: Set(0),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(&app.db)
    .await
    .expect("post");
    (t.id.to_string(), p.id.to_string())
}

async fn report(app: &TestApp, who: &Session, input: Value) -> Value {
    app.gql(Some(&who.access), REPORT, json!({ "i": input }))
        .await
}

fn report_id(r: &Value) -> String {
    r["data"]["reportContent"]["report"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("reportContent failed: {r}"))
        .to_string()
}

async fn resolve(app: &TestApp, who: &Session, report: &str, action: &str, note: &str) -> Value {
    app.gql(
        Some(&who.access),
        RESOLVE,
        json!({"i": {"reportId": report, "action": action, "note": note}}),
    )
    .await
}

async fn log_actions(app: &TestApp, admin: &Session) -> Vec<(String, String, String)> {
    let r = app.gql(Some(&admin.access), LOG, json!({})).await;
    r["data"]["moderationLog"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("moderationLog failed: {r}"))
        .iter()
        .map(|n| {
            (
                n["action"].as_str().unwrap_or_default().to_string(),
                n["subjectType"].as_str().unwrap_or_default().to_string(),
                n["subjectId"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_account_reports_an_item_once_while_it_is_open_and_moderators_hear_of_it() {
    let w = world().await;
    let app = &w.app;
    let input =
        json!({"suggestionId": w.suggestion, "reason": "SPAM", "details": "  Advertising.  "});
    let r = report(app, &w.bob, input.clone()).await;
    let rep = &r["data"]["reportContent"]["report"];
    assert_eq!(rep["status"], "OPEN", "{r}");
    assert_eq!(rep["reason"], "SPAM");
    assert_eq!(rep["details"], "Advertising.");
    assert_eq!(rep["subjectType"], "SUGGESTION");
    assert_eq!(rep["subjectId"], w.suggestion.as_str());
    assert_eq!(rep["suggestion"]["id"], w.suggestion.as_str());
    assert!(rep["update"].is_null());
    assert!(rep["workingGroupId"].is_null());
    assert_eq!(rep["reporter"]["displayName"], "Bob");
    let first = report_id(&r);

    // Twice is a conflict; the first report stays the only one.
    let again = report(app, &w.bob, input.clone()).await;
    assert_eq!(error_code(&again), "CONFLICT", "{again}");
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM reports").await, 1);
    // The moderators' notification event was written with the report, once.
    assert_eq!(
        count(
            &app.db,
            &format!("SELECT COUNT(*) FROM outbox WHERE kind = 'notification' AND template = 'report_filed' AND recipient = 'audience:{first}'"),
        )
        .await,
        1
    );

    // Someone else may report the same item; once dismissed, Bob may report it again.
    report_id(&report(app, &w.official, input.clone()).await);
    let r = resolve(app, &w.admin, &first, "DISMISS", "Not spam").await;
    assert_eq!(
        r["data"]["resolveReport"]["report"]["resolution"], "DISMISS",
        "{r}"
    );
    report_id(&report(app, &w.bob, input.clone()).await);
    // The moderators heard of the item once: it has been waiting for them all along (the
    // official's report is still open), so the later reports mail nobody.
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(*) FROM outbox WHERE template = 'report_filed'"
        )
        .await,
        1
    );

    // Refusals: anonymous, one's own content, no item or two, bad IDs.
    let anon = app.gql(None, REPORT, json!({ "i": input })).await;
    assert_eq!(error_code(&anon), "UNAUTHENTICATED");
    let own = report(
        app,
        &w.ann,
        json!({"suggestionId": w.suggestion, "reason": "OTHER"}),
    )
    .await;
    assert_eq!(error_code(&own), "FORBIDDEN", "{own}");
    for bad in [
        json!({"reason": "SPAM"}),
        json!({"suggestionId": w.suggestion, "updateId": w.update, "reason": "SPAM"}),
    ] {
        let r = report(app, &w.bob, bad).await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
        assert_eq!(error_field(&r), "input", "{r}");
    }
    let r = report(
        app,
        &w.bob,
        json!({"updateId": Uuid::now_v7().to_string(), "reason": "SPAM"}),
    )
    .await;
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
    let r = report(
        app,
        &w.bob,
        json!({"updateId": w.update, "reason": "SPAM", "details": "x".repeat(2001)}),
    )
    .await;
    assert_eq!(error_field(&r), "details", "{r}");
}

#[tokio::test]
async fn admins_see_every_report_organisers_their_groups_and_others_none() {
    let w = world().await;
    let app = &w.app;
    let (thread_id, post_id) = group_thread_with_post(app, &w.group, &w.ann.user_id).await;
    let on_post =
        report_id(&report(app, &w.bob, json!({"postId": post_id, "reason": "SPAM"})).await);
    let r = report(
        app,
        &w.bob,
        json!({"threadId": thread_id, "reason": "OFF_TOPIC"}),
    )
    .await;
    assert_eq!(
        r["data"]["reportContent"]["report"]["workingGroupId"],
        w.group.as_str(),
        "{r}"
    );
    let on_thread = report_id(&r);
    let on_suggestion = report_id(
        &report(
            app,
            &w.bob,
            json!({"suggestionId": w.suggestion, "reason": "ABUSE"}),
        )
        .await,
    );
    // A post's report knows its group through the thread.
    let r = report::Entity::find_by_id(uuid(&on_post))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.working_group_id, Some(uuid(&w.group)));

    let ids = |r: &Value| -> Vec<String> {
        r["data"]["reports"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("reports failed: {r}"))
            .iter()
            .map(|n| n["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let all = app.gql(Some(&w.admin.access), REPORTS, json!({})).await;
    assert_eq!(
        ids(&all),
        vec![on_suggestion.clone(), on_thread.clone(), on_post.clone()],
        "{all}"
    );
    assert_eq!(all["data"]["reports"]["totalCount"], 3);
    let theirs = app.gql(Some(&w.org.access), REPORTS, json!({})).await;
    assert_eq!(
        ids(&theirs),
        vec![on_thread.clone(), on_post.clone()],
        "{theirs}"
    );
    for who in [&w.bob, &w.official] {
        let r = app.gql(Some(&who.access), REPORTS, json!({})).await;
        assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    }
    assert_eq!(
        error_code(&app.gql(None, REPORTS, json!({})).await),
        "UNAUTHENTICATED"
    );

    // The organiser decides on their group's content, not on the rest.
    let r = resolve(app, &w.org, &on_post, "HIDE", "Spam").await;
    let decided = &r["data"]["resolveReport"]["report"];
    assert_eq!(decided["status"], "RESOLVED", "{r}");
    assert_eq!(decided["resolution"], "HIDE");
    assert_eq!(decided["resolutionNote"], "Spam");
    assert_eq!(decided["resolvedBy"]["displayName"], "Orla");
    assert!(decided["resolvedAt"].is_string());
    let p = post::Entity::find_by_id(uuid(&post_id))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(p.hidden);
    let r = resolve(app, &w.org, &on_suggestion, "HIDE", "No").await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = resolve(app, &w.bob, &on_thread, "HIDE", "No").await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    // An admin hides the thread through its report.
    let r = resolve(app, &w.admin, &on_thread, "HIDE", "Off topic").await;
    assert_eq!(
        r["data"]["resolveReport"]["report"]["resolution"], "HIDE",
        "{r}"
    );
    let t = thread::Entity::find_by_id(uuid(&thread_id))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(t.hidden);

    // Open and resolved filters.
    let open = app
        .gql(Some(&w.admin.access), REPORTS, json!({"open": true}))
        .await;
    assert_eq!(ids(&open), vec![on_suggestion.clone()], "{open}");
    let done = app
        .gql(Some(&w.admin.access), REPORTS, json!({"open": false}))
        .await;
    assert_eq!(ids(&done), vec![on_thread, on_post], "{done}");
}

#[tokio::test]
async fn hiding_through_a_report_resolves_every_open_report_and_a_decided_report_stays_decided() {
    let w = world().await;
    let app = &w.app;
    let input =
        json!({"updateId": w.update, "reason": "PERSONAL_DATA", "details": "A phone number"});
    let by_bob = report_id(&report(app, &w.bob, input.clone()).await);
    let by_ann = report_id(&report(app, &w.ann, input.clone()).await);

    let r = resolve(app, &w.admin, &by_bob, "HIDE", "Removes a phone number").await;
    assert_eq!(
        r["data"]["resolveReport"]["report"]["status"], "RESOLVED",
        "{r}"
    );
    let other = report::Entity::find_by_id(uuid(&by_ann))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (other.status, other.resolution),
        (report::Status::Resolved, Some(report::Resolution::Hide))
    );
    let r = app.gql(None, UPDATE, json!({"id": w.update})).await;
    assert_eq!(r["data"]["commitmentUpdate"]["hidden"], true, "{r}");
    let again = resolve(app, &w.admin, &by_bob, "DISMISS", "Changed my mind").await;
    assert_eq!(error_code(&again), "CONFLICT", "{again}");

    // A dismissal leaves the item as it was.
    let on_suggestion = report_id(
        &report(
            app,
            &w.bob,
            json!({"suggestionId": w.suggestion, "reason": "OTHER"}),
        )
        .await,
    );
    let r = resolve(app, &w.admin, &on_suggestion, "DISMISS", "Fine as it is").await;
    assert_eq!(
        r["data"]["resolveReport"]["report"]["resolution"], "DISMISS",
        "{r}"
    );
    let r = app.gql(None, SUGGESTION, json!({"id": w.suggestion})).await;
    assert_eq!(r["data"]["suggestion"]["hidden"], false, "{r}");

    let log = log_actions(app, &w.admin).await;
    assert_eq!(
        log,
        vec![
            (
                "REPORT_DISMISSED".to_string(),
                "SUGGESTION".to_string(),
                w.suggestion.clone()
            ),
            (
                "REPORT_UPHELD".to_string(),
                "UPDATE".to_string(),
                w.update.clone()
            ),
            ("HIDE".to_string(), "UPDATE".to_string(), w.update.clone()),
        ]
    );
}

/// What a viewer sees of a suggestion.
async fn suggestion_as(app: &TestApp, who: Option<&Session>, id: &str) -> Value {
    let r = app
        .gql(
            who.map(|s| s.access.as_str()),
            SUGGESTION,
            json!({"id": id}),
        )
        .await;
    r["data"]["suggestion"].clone()
}

async fn update_as(app: &TestApp, who: Option<&Session>, id: &str) -> Value {
    let r = app
        .gql(who.map(|s| s.access.as_str()), UPDATE, json!({"id": id}))
        .await;
    r["data"]["commitmentUpdate"].clone()
}

#[tokio::test]
async fn hidden_suggestions_and_updates_show_a_marker_except_to_their_author_and_moderators() {
    let w = world().await;
    let app = &w.app;
    // The author edits once, so there is a revision to keep from others too.
    let r = app
        .gql(
            Some(&w.ann.access),
            "mutation($i: UpdateSuggestionInput!) { updateSuggestion(input: $i) { suggestion { id } } }",
            json!({"i": {"id": w.suggestion, "body": "Every contract, with its annexes."}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");

    let r = app
        .gql(
            Some(&w.admin.access),
            HIDE,
            json!({"i": {"suggestionId": w.suggestion, "note": "Abusive"}}),
        )
        .await;
    let c = &r["data"]["hideContent"]["content"];
    assert_eq!(c["hidden"], true, "{r}");
    assert_eq!(c["subjectType"], "SUGGESTION");
    assert_eq!(c["suggestion"]["hidden"], true);
    let r = app
        .gql(
            Some(&w.admin.access),
            HIDE,
            json!({"i": {"updateId": w.update, "note": "Wrong figures"}}),
        )
        .await;
    assert_eq!(
        r["data"]["hideContent"]["content"]["update"]["hidden"], true,
        "{r}"
    );

    // The author and an admin see the real text, marked hidden.
    for who in [&w.ann, &w.admin] {
        let s = suggestion_as(app, Some(who), &w.suggestion).await;
        assert_eq!(s["title"], "Publish every contract", "{s}");
        assert_eq!(s["body"], "Every contract, with its annexes.");
        assert_eq!(s["hidden"], true);
        assert_eq!(
            s["revisions"]["nodes"].as_array().map(Vec::len),
            Some(1),
            "{s}"
        );
    }
    for who in [&w.official, &w.admin] {
        let u = update_as(app, Some(who), &w.update).await;
        assert_eq!(u["title"], "Register half done", "{u}");
        assert_eq!(u["hidden"], true);
    }
    // Everyone else, signed in or not, sees the marker, in a list too.
    for who in [Some(&w.bob), Some(&w.org), None] {
        let s = suggestion_as(app, who, &w.suggestion).await;
        assert_eq!(s["title"], "[hidden by a moderator]", "{s}");
        assert!(
            s["body"]
                .as_str()
                .unwrap()
                .contains("hidden by a moderator"),
            "{s}"
        );
        assert!(
            s["bodyHtml"]
                .as_str()
                .unwrap()
                .contains("hidden by a moderator"),
            "{s}"
        );
        assert_eq!(s["hidden"], true);
        assert_eq!(s["revisions"]["nodes"], json!([]));
        let u = update_as(app, who, &w.update).await;
        assert_eq!(u["title"], "[hidden by a moderator]", "{u}");
        assert!(
            u["bodyHtml"]
                .as_str()
                .unwrap()
                .contains("hidden by a moderator"),
            "{u}"
        );
        assert!(!u["body"].as_str().unwrap().contains("News"), "{u}");
        let list = app
            .gql(
                who.map(|s| s.access.as_str()),
                "query($id: ID!) { commitment(id: $id) { suggestions(first: 5) { nodes { title body hidden } } updates(first: 5) { nodes { title hidden } } } }",
                json!({"id": w.commitment}),
            )
            .await;
        let c = &list["data"]["commitment"];
        assert_eq!(
            c["suggestions"]["nodes"][0]["title"], "[hidden by a moderator]",
            "{list}"
        );
        assert_eq!(c["suggestions"]["nodes"][0]["hidden"], true);
        assert_eq!(
            c["updates"]["nodes"][0]["title"], "[hidden by a moderator]",
            "{list}"
        );
    }

    // Only moderators hide and unhide: not members, officials or another group's organiser.
    for who in [&w.bob, &w.ann, &w.official, &w.org] {
        let r = app
            .gql(
                Some(&who.access),
                UNHIDE,
                json!({"i": {"suggestionId": w.suggestion}}),
            )
            .await;
        assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    }
    // Unhidden, everyone sees it again.
    let r = app
        .gql(
            Some(&w.admin.access),
            UNHIDE,
            json!({"i": {"suggestionId": w.suggestion, "note": "On appeal"}}),
        )
        .await;
    assert_eq!(
        r["data"]["unhideContent"]["content"]["hidden"], false,
        "{r}"
    );
    for who in [Some(&w.bob), None] {
        let s = suggestion_as(app, who, &w.suggestion).await;
        assert_eq!(s["title"], "Publish every contract", "{s}");
        assert_eq!(s["hidden"], false);
    }
    // Unhiding what is visible changes nothing and is not logged again.
    let r = app
        .gql(
            Some(&w.admin.access),
            UNHIDE,
            json!({"i": {"suggestionId": w.suggestion}}),
        )
        .await;
    assert_eq!(
        r["data"]["unhideContent"]["content"]["hidden"], false,
        "{r}"
    );
    let log = log_actions(app, &w.admin).await;
    assert_eq!(
        log,
        vec![
            (
                "UNHIDE".to_string(),
                "SUGGESTION".to_string(),
                w.suggestion.clone()
            ),
            ("HIDE".to_string(), "UPDATE".to_string(), w.update.clone()),
            (
                "HIDE".to_string(),
                "SUGGESTION".to_string(),
                w.suggestion.clone()
            ),
        ]
    );
}

#[tokio::test]
async fn group_organisers_hide_and_unhide_their_groups_posts_and_threads() {
    let w = world().await;
    let app = &w.app;
    let (thread_id, post_id) = group_thread_with_post(app, &w.group, &w.bob.user_id).await;
    let r = report(app, &w.ann, json!({"postId": post_id, "reason": "SPAM"})).await;
    let open = report_id(&r);
    let r = app
        .gql(Some(&w.org.access), HIDE, json!({"i": {"postId": post_id}}))
        .await;
    assert_eq!(r["data"]["hideContent"]["content"]["hidden"], true, "{r}");
    // Hiding directly resolves the item's open reports.
    let r = report::Entity::find_by_id(uuid(&open))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, report::Status::Resolved);
    let r = app
        .gql(
            Some(&w.org.access),
            HIDE,
            json!({"i": {"threadId": thread_id}}),
        )
        .await;
    assert_eq!(r["data"]["hideContent"]["content"]["hidden"], true, "{r}");
    let r = app
        .gql(
            Some(&w.org.access),
            UNHIDE,
            json!({"i": {"postId": post_id}}),
        )
        .await;
    assert_eq!(
        r["data"]["unhideContent"]["content"]["hidden"], false,
        "{r}"
    );
    let p = post::Entity::find_by_id(uuid(&post_id))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(!p.hidden);
    let t = thread::Entity::find_by_id(uuid(&thread_id))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(t.hidden);
    let r = app
        .gql(Some(&w.ann.access), HIDE, json!({"i": {"postId": post_id}}))
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    // The log names the organiser.
    let r = app.gql(Some(&w.admin.access), LOG, json!({})).await;
    let nodes = r["data"]["moderationLog"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{r}");
    assert!(
        nodes.iter().all(|n| n["actor"]["displayName"] == "Orla"),
        "{r}"
    );
}

#[tokio::test]
async fn the_moderation_log_is_for_admins_and_records_role_changes() {
    let w = world().await;
    let app = &w.app;
    let r = app
        .gql(
            Some(&w.admin.access),
            "mutation($i: SetUserRoleInput!) { setUserRole(input: $i) { user { role } } }",
            json!({"i": {"userId": w.bob.user_id, "role": "OFFICIAL"}}),
        )
        .await;
    assert_eq!(r["data"]["setUserRole"]["user"]["role"], "OFFICIAL", "{r}");
    let r = app.gql(Some(&w.admin.access), LOG, json!({})).await;
    let log = &r["data"]["moderationLog"];
    assert_eq!(log["totalCount"], 1, "{r}");
    let entry = &log["nodes"][0];
    assert_eq!(entry["action"], "ROLE_CHANGE");
    assert_eq!(entry["subjectType"], "USER");
    assert_eq!(entry["subjectId"], w.bob.user_id.as_str());
    assert_eq!(entry["reason"], "MEMBER → OFFICIAL");
    assert_eq!(entry["actor"]["displayName"], "Ada");
    assert!(entry["createdAt"].is_string());

    for who in [&w.bob, &w.official, &w.org, &w.ann] {
        let r = app.gql(Some(&who.access), LOG, json!({})).await;
        assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    }
    assert_eq!(
        error_code(&app.gql(None, LOG, json!({})).await),
        "UNAUTHENTICATED"
    );

    // Paging: newest first, no repeats.
    for (title, hidden) in [("a", true), ("b", false)] {
        let _ = title;
        let op = if hidden { HIDE } else { UNHIDE };
        app.gql(
            Some(&w.admin.access),
            op,
            json!({"i": {"updateId": w.update}}),
        )
        .await;
    }
    let q = "query($after: String) { moderationLog(first: 2, after: $after) { nodes { action } pageInfo { hasNextPage endCursor } } }";
    let r = app.gql(Some(&w.admin.access), q, json!({})).await;
    let page = &r["data"]["moderationLog"];
    assert_eq!(
        page["nodes"],
        json!([{"action": "UNHIDE"}, {"action": "HIDE"}]),
        "{r}"
    );
    let r = app
        .gql(
            Some(&w.admin.access),
            q,
            json!({"after": page["pageInfo"]["endCursor"]}),
        )
        .await;
    let page = &r["data"]["moderationLog"];
    assert_eq!(page["nodes"], json!([{"action": "ROLE_CHANGE"}]), "{r}");
    assert_eq!(page["pageInfo"]["hasNextPage"], false);
}

// ---- Per-account writing limits -------------------------------------------------------

const CREATE_SUGGESTION: &str =
    "mutation($i: CreateSuggestionInput!) { createSuggestion(input: $i) { suggestion { id } } }";

async fn suggest(app: &TestApp, who: &Session, commitment: &str, n: usize) -> Value {
    app.gql(
        Some(&who.access),
        CREATE_SUGGESTION,
        json!({"i": {"commitmentId": commitment, "title": format!("Suggestion number {n}"), "body": "Please."}}),
    )
    .await
}

pub(crate) fn retry_after(r: &Value) -> i64 {
    assert_eq!(error_code(r), "RATE_LIMITED", "{r}");
    r["errors"][0]["extensions"]["retryAfterSeconds"]
        .as_i64()
        .unwrap_or_else(|| panic!("no retryAfterSeconds: {r}"))
}

/// Makes an account older than a day, as if it had signed up earlier.
async fn age(app: &TestApp, who: &Session) {
    user::Entity::update_many()
        .col_expr(
            user::Column::CreatedAt,
            Expr::value(chrono::Utc::now() - Duration::days(2)),
        )
        .filter(user::Column::Id.eq(uuid(&who.user_id)))
        .exec(&app.db)
        .await
        .expect("age the account");
}

/// Moves the start of every per-minute window back, as if the minute had passed.
pub(crate) async fn a_minute_passes(app: &TestApp) {
    throttle_bucket::Entity::update_many()
        .col_expr(
            throttle_bucket::Column::WindowStartedAt,
            Expr::value(chrono::Utc::now() - Duration::seconds(61)),
        )
        .filter(throttle_bucket::Column::Key.like("write-%-minute:%"))
        .exec(&app.db)
        .await
        .expect("rewind the minute");
}

#[tokio::test]
async fn suggestions_are_limited_per_minute_and_per_hour_and_tighter_for_new_accounts() {
    let app = spawn_app_with(|s| {
        s.limits.suggestions_per_minute = 2;
        s.limits.suggestions_per_hour = 4;
        s.limits.new_account_factor = 0.5;
    })
    .await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let newcomer = app.verified_user("new@example.org", "Nia").await;
    let commitment = create_commitment(&app, &official, "UK0072", "Open contracts").await;
    age(&app, &ann).await;

    // Per minute: two, then a wait of at most a minute.
    for n in 0..2 {
        assert!(suggest(&app, &ann, &commitment, n).await["errors"].is_null());
    }
    let wait = retry_after(&suggest(&app, &ann, &commitment, 2).await);
    assert!((1..=60).contains(&wait), "{wait}");
    // Per hour: the minute passes, two more fill the hour's four, then the hour is full
    // however many minutes pass.
    a_minute_passes(&app).await;
    for n in 3..5 {
        assert!(suggest(&app, &ann, &commitment, n).await["errors"].is_null());
    }
    a_minute_passes(&app).await;
    let wait = retry_after(&suggest(&app, &ann, &commitment, 5).await);
    assert!((61..=3600).contains(&wait), "{wait}");
    // Refused writes were not written.
    let written = suggestion::Entity::find()
        .filter(suggestion::Column::AuthorId.eq(uuid(&ann.user_id)))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(written, 4);
    // Each account has its own budget.
    assert!(suggest(&app, &official, &commitment, 0).await["errors"].is_null());

    // An account younger than a day gets half: one a minute.
    assert!(suggest(&app, &newcomer, &commitment, 0).await["errors"].is_null());
    let wait = retry_after(&suggest(&app, &newcomer, &commitment, 1).await);
    assert!((1..=60).contains(&wait), "{wait}");
    a_minute_passes(&app).await;
    assert!(suggest(&app, &newcomer, &commitment, 2).await["errors"].is_null());
    // ...and two an hour.
    a_minute_passes(&app).await;
    let wait = retry_after(&suggest(&app, &newcomer, &commitment, 3).await);
    assert!(wait > 60, "{wait}");
}

#[tokio::test]
async fn a_refused_write_does_not_use_up_the_budget() {
    let app = spawn_app_with(|s| {
        s.limits.suggestions_per_minute = 1;
        s.limits.new_account_factor = 1.0;
    })
    .await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let commitment = create_commitment(&app, &official, "UK0072", "Open contracts").await;
    let other = create_commitment(&app, &official, "UK0073", "Open budgets").await;
    let update = publish_update(&app, &official, &other, "Budgets").await;
    let r = app
        .gql(
            Some(&ann.access),
            CREATE_SUGGESTION,
            json!({"i": {"commitmentId": commitment, "title": "Answering the wrong one", "body": "x", "inReplyToUpdateId": update}}),
        )
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert!(suggest(&app, &ann, &commitment, 0).await["errors"].is_null());
    retry_after(&suggest(&app, &ann, &commitment, 1).await);
}

#[tokio::test]
async fn the_database_refuses_to_rewrite_or_delete_the_moderation_log() {
    let w = world().await;
    let app = &w.app;
    let r = app
        .gql(
            Some(&w.admin.access),
            HIDE,
            json!({"i": {"updateId": w.update}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    for sql in [
        "UPDATE moderation_actions SET reason = 'rewritten'",
        "DELETE FROM moderation_actions",
    ] {
        let refused = sea_orm::ConnectionTrait::execute_unprepared(&app.db, sql).await;
        assert!(refused.is_err(), "{sql} went through");
    }
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(*) FROM moderation_actions WHERE reason IS NULL"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn concurrent_writes_on_two_instances_share_one_budget() {
    let limit = |s: &mut convene::config::Settings| {
        s.limits.suggestions_per_minute = 3;
        s.limits.new_account_factor = 1.0;
    };
    let one = spawn_app_with(limit).await;
    let official = user_with_role(&one, "official@example.org", "Olu", Role::Official).await;
    let ann = one.verified_user("ann@example.org", "Ann").await;
    let commitment = create_commitment(&one, &official, "UK0072", "Open contracts").await;
    // The second instance starts once the accounts exist (its outbox worker would take the
    // first one's verification mails).
    let two = spawn_app_on(
        tempfile::tempdir().unwrap(),
        one.database_url.clone(),
        limit,
    )
    .await;
    let answers = futures::future::join_all((0..10).map(|n| {
        let app = if n % 2 == 0 { &one } else { &two };
        suggest(app, &ann, &commitment, n)
    }))
    .await;
    let written = answers.iter().filter(|r| r["errors"].is_null()).count();
    assert_eq!(written, 3, "{answers:?}");
    for r in answers.iter().filter(|r| !r["errors"].is_null()) {
        retry_after(r);
    }
}

#[tokio::test]
async fn a_private_groups_content_cannot_be_reported_by_those_who_cannot_see_it() {
    let w = world().await;
    let app = &w.app;
    let r = app
        .gql(
            Some(&w.org.access),
            "mutation($i: CreateWorkingGroupInput!) { createWorkingGroup(input: $i) { workingGroup { id } } }",
            json!({"i": {"name": "Steering", "slug": "steering", "visibility": "PRIVATE", "joinPolicy": "INVITE"}}),
        )
        .await;
    let private = r["data"]["createWorkingGroup"]["workingGroup"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    let (_, post_id) = group_thread_with_post(app, &private, &w.org.user_id).await;
    let r = report(app, &w.bob, json!({"postId": post_id, "reason": "SPAM"})).await;
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
    // An administrator sees inside every group, and may report (and moderate) there.
    let r = report(app, &w.admin, json!({"postId": post_id, "reason": "OTHER"})).await;
    assert_eq!(
        r["data"]["reportContent"]["report"]["workingGroupId"],
        private.as_str(),
        "{r}"
    );
}

#[tokio::test]
async fn nobody_moderates_their_own_content_or_decides_reports_about_it() {
    let w = world().await;
    let app = &w.app;
    // The organiser's own post in their own group, reported by Ann.
    let (_, post_id) = group_thread_with_post(app, &w.group, &w.org.user_id).await;
    let on_org =
        report_id(&report(app, &w.ann, json!({"postId": post_id, "reason": "SPAM"})).await);
    for action in ["HIDE", "DISMISS"] {
        let r = resolve(app, &w.org, &on_org, action, "it is mine").await;
        assert_eq!(error_code(&r), "FORBIDDEN", "{action}: {r}");
    }
    let r = app
        .gql(Some(&w.org.access), HIDE, json!({"i": {"postId": post_id}}))
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    // Not even an administrator, on their own suggestion.
    let own = create_suggestion(app, &w.admin, &w.commitment, "An administrator's own idea").await;
    let on_admin = report_id(
        &report(
            app,
            &w.bob,
            json!({"suggestionId": own, "reason": "OFF_TOPIC"}),
        )
        .await,
    );
    let r = resolve(app, &w.admin, &on_admin, "DISMISS", "it is fine").await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = app
        .gql(
            Some(&w.admin.access),
            HIDE,
            json!({"i": {"suggestionId": own}}),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    // Nothing was hidden, decided or logged by the refused attempts.
    assert!(
        !post::Entity::find_by_id(uuid(&post_id))
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .hidden
    );
    assert!(
        !suggestion::Entity::find_by_id(uuid(&own))
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .hidden
    );
    assert!(log_actions(app, &w.admin).await.is_empty());
    // Another moderator decides each.
    let r = resolve(app, &w.admin, &on_org, "HIDE", "spam").await;
    assert_eq!(
        r["data"]["resolveReport"]["report"]["status"], "RESOLVED",
        "{r}"
    );
    let abe = user_with_role(app, "abe@example.org", "Abe", Role::Admin).await;
    let r = resolve(app, &abe, &on_admin, "DISMISS", "on topic").await;
    assert_eq!(
        r["data"]["resolveReport"]["report"]["status"], "RESOLVED",
        "{r}"
    );
}

/// Makes `who` an active organiser of `group`, as if they had been promoted.
async fn make_organiser(app: &TestApp, group: &str, who: &Session) {
    let at = chrono::Utc::now();
    convene::entities::membership::ActiveModel {
        id: Set(Uuid::now_v7()),
        working_group_id: Set(uuid(group)),
        user_id: Set(uuid(&who.user_id)),
        role: Set(convene::entities::membership::Role::Organiser),
        status: Set(convene::entities::membership::Status::Active),
        invited_by: Set(None),
        calendar_key_version: Set(1),
        joined_at: Set(Some(at)),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(&app.db)
    .await
    .expect("membership");
}

#[tokio::test]
async fn a_site_moderators_hide_is_undone_only_at_site_level() {
    let w = world().await;
    let app = &w.app;
    let (_, post_id) = group_thread_with_post(app, &w.group, &w.bob.user_id).await;
    let hide = |who: &Session| {
        let token = who.access.clone();
        let post_id = post_id.clone();
        async move {
            app.gql(Some(&token), HIDE, json!({"i": {"postId": post_id}}))
                .await
        }
    };
    let unhide = |who: &Session| {
        let token = who.access.clone();
        let post_id = post_id.clone();
        async move {
            app.gql(Some(&token), UNHIDE, json!({"i": {"postId": post_id}}))
                .await
        }
    };
    // An administrator hides a post in the group: its organiser cannot unhide it.
    assert_eq!(
        hide(&w.admin).await["data"]["hideContent"]["content"]["hidden"],
        true
    );
    let r = unhide(&w.org).await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    assert!(
        post::Entity::find_by_id(uuid(&post_id))
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .hidden
    );
    // An administrator can.
    let r = unhide(&w.admin).await;
    assert_eq!(
        r["data"]["unhideContent"]["content"]["hidden"], false,
        "{r}"
    );
    // The organiser's own hide is theirs to undo.
    assert_eq!(
        hide(&w.org).await["data"]["hideContent"]["content"]["hidden"],
        true
    );
    let r = unhide(&w.org).await;
    assert_eq!(
        r["data"]["unhideContent"]["content"]["hidden"], false,
        "{r}"
    );

    // An OFFICIAL who also organises the group hides as a site moderator: the group's other
    // organiser cannot overrule it, nor can the official at group level; an admin can.
    make_organiser(app, &w.group, &w.official).await;
    assert_eq!(
        hide(&w.official).await["data"]["hideContent"]["content"]["hidden"],
        true
    );
    for who in [&w.org, &w.official] {
        let r = unhide(who).await;
        assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    }
    let r = unhide(&w.admin).await;
    assert_eq!(
        r["data"]["unhideContent"]["content"]["hidden"], false,
        "{r}"
    );
    let actions: Vec<String> = log_actions(app, &w.admin)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(
        actions,
        ["UNHIDE", "HIDE", "UNHIDE", "HIDE", "UNHIDE", "HIDE"],
        "{actions:?}"
    );
}

#[tokio::test]
async fn unverified_accounts_cannot_report_and_reports_have_an_hourly_budget() {
    let app = spawn_app_with(|s| {
        s.limits.reports_per_hour = 3;
        s.limits.new_account_factor = 1.0;
    })
    .await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let commitment = create_commitment(&app, &official, "UK0072", "Open contracts").await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let mut suggestions = Vec::new();
    for n in 0..5 {
        suggestions.push(
            create_suggestion(&app, &ann, &commitment, &format!("Suggestion number {n}")).await,
        );
    }
    // Unverified: refused before anything is counted or written.
    app.sign_up("una@example.org", "Una").await;
    let una = app.logged_in("una@example.org").await;
    let r = report(
        &app,
        &una,
        json!({"suggestionId": suggestions[0], "reason": "SPAM"}),
    )
    .await;
    assert_eq!(error_code(&r), "EMAIL_NOT_VERIFIED", "{r}");
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM reports").await, 0);

    let bob = app.verified_user("bob@example.org", "Bob").await;
    for s in &suggestions[..2] {
        let r = report(&app, &bob, json!({"suggestionId": s, "reason": "SPAM"})).await;
        assert!(r["errors"].is_null(), "{r}");
    }
    // A duplicate is a conflict and does not use up the budget: the third still goes in.
    let r = report(
        &app,
        &bob,
        json!({"suggestionId": suggestions[0], "reason": "SPAM"}),
    )
    .await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    let r = report(
        &app,
        &bob,
        json!({"suggestionId": suggestions[2], "reason": "SPAM"}),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    // ...but the hour's three are used: the fourth waits, however many minutes pass.
    a_minute_passes(&app).await;
    let r = report(
        &app,
        &bob,
        json!({"suggestionId": suggestions[3], "reason": "SPAM"}),
    )
    .await;
    let wait = retry_after(&r);
    assert!((61..=3600).contains(&wait), "{wait}");
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM reports").await, 3);
    // Each account has its own budget.
    let r = report(
        &app,
        &official,
        json!({"suggestionId": suggestions[3], "reason": "SPAM"}),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
}
