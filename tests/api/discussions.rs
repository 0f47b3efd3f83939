//! Threads and posts: starting, replying in conversation order, editing, deleting, reacting,
//! locking and pinning, private groups, hidden content per viewer, official answers,
//! paging under inserts, the statement budget of a thread page, and `postAdded`.

use std::collections::HashSet;
use std::sync::Arc;

use convene::entities::user::Role;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::helpers::*;

const START: &str = "mutation($i: StartThreadInput!) { startThread(input: $i) { thread { id title postCount locked pinned author { displayName } context { __typename ... on Commitment { reference } ... on WorkingGroup { slug } } } post { id body depth } } }";
const REPLY: &str = "mutation($i: ReplyToThreadInput!) { replyToThread(input: $i) { post { id body bodyHtml depth parent { id } author { displayName } thread { postCount } } } }";
const EDIT: &str = "mutation($i: EditPostInput!) { editPost(input: $i) { post { id body editedAt revisions { nodes { body createdAt } } } } }";
const DELETE: &str = "mutation($id: ID!) { deletePost(id: $id) { post { id body bodyHtml deleted revisions { nodes { body } } } } }";
const REACT: &str = "mutation($i: ReactInput!) { react(input: $i) { post { reactions { reaction count viewerReacted } } } }";
const THREAD: &str = "query($id: ID!, $n: Int = 10, $after: String) { thread(id: $id) { id title hidden locked lockReason pinned postCount lastActivityAt officialResponses { body } author { displayName } posts(first: $n, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id body bodyHtml depth hidden deleted editedAt author { displayName } parent { id } reactions { reaction count viewerReacted } } } } }";
const THREADS: &str = "query($f: ThreadFilter, $n: Int, $after: String) { threads(filter: $f, first: $n, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id title pinned } } }";
const GROUP: &str = "mutation($i: CreateWorkingGroupInput!) { createWorkingGroup(input: $i) { workingGroup { id } } }";
const JOIN: &str = "mutation($id: ID!) { joinWorkingGroup(id: $id) { membership { status } } }";

struct Forum {
    app: TestApp,
    official: Session,
    org: Session,
    admin: Session,
    ann: Session,
    bob: Session,
    commitment: String,
}

async fn forum() -> Forum {
    forum_with(|_| {}).await
}

async fn forum_with(configure: impl FnOnce(&mut convene::config::Settings)) -> Forum {
    let app = spawn_app_with(configure).await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let org = user_with_role(&app, "org@example.org", "Orla", Role::Organiser).await;
    let admin = user_with_role(&app, "admin@example.org", "Ada", Role::Admin).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let commitment = create_commitment(&app, &official, "UK0072", "Involving data users").await;
    Forum {
        app,
        official,
        org,
        admin,
        ann,
        bob,
        commitment,
    }
}

/// A group created by `org` (its organiser), returned by ID.
pub(crate) async fn group(app: &TestApp, org: &Session, slug: &str, visibility: &str) -> String {
    let r = app
        .gql(
            Some(&org.access),
            GROUP,
            json!({"i": {"name": format!("Group {slug}"), "slug": slug, "description": "We meet.", "visibility": visibility, "joinPolicy": "OPEN"}}),
        )
        .await;
    r["data"]["createWorkingGroup"]["workingGroup"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createWorkingGroup failed: {r}"))
        .to_string()
}

pub(crate) async fn join(app: &TestApp, who: &Session, group: &str) {
    let r = app.gql(Some(&who.access), JOIN, json!({"id": group})).await;
    assert_eq!(
        r["data"]["joinWorkingGroup"]["membership"]["status"], "ACTIVE",
        "{r}"
    );
}

async fn start(app: &TestApp, who: &Session, place: Value, title: &str, body: &str) -> Value {
    let mut i = place;
    i["title"] = json!(title);
    i["body"] = json!(body);
    app.gql(Some(&who.access), START, json!({ "i": i })).await
}

/// Starts a thread and returns (thread ID, first post ID).
pub(crate) async fn thread_on(
    app: &TestApp,
    who: &Session,
    place: Value,
    title: &str,
) -> (String, String) {
    let r = start(app, who, place, title, "Let us talk about it.").await;
    let t = &r["data"]["startThread"];
    (
        t["thread"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("startThread failed: {r}"))
            .to_string(),
        t["post"]["id"].as_str().unwrap().to_string(),
    )
}

async fn reply(
    app: &TestApp,
    who: &Session,
    thread: &str,
    parent: Option<&str>,
    body: &str,
) -> Value {
    app.gql(
        Some(&who.access),
        REPLY,
        json!({"i": {"threadId": thread, "parentPostId": parent, "body": body}}),
    )
    .await
}

pub(crate) async fn reply_id(
    app: &TestApp,
    who: &Session,
    thread: &str,
    parent: Option<&str>,
    body: &str,
) -> String {
    let r = reply(app, who, thread, parent, body).await;
    r["data"]["replyToThread"]["post"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("replyToThread failed: {r}"))
        .to_string()
}

async fn thread(app: &TestApp, who: Option<&Session>, id: &str) -> Value {
    let r = app
        .gql(
            who.map(|s| s.access.as_str()),
            THREAD,
            json!({"id": id, "n": 50}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    r["data"]["thread"].clone()
}

/// Sets the hidden flag of a post or a thread, as a moderator's decision would.
pub(crate) async fn hide(app: &TestApp, post: Option<&str>, thread: Option<&str>) {
    use convene::entities::{post, thread};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let id = |s: &str| uuid::Uuid::parse_str(s).unwrap();
    if let Some(p) = post {
        post::Entity::update_many()
            .col_expr(post::Column::Hidden, sea_orm::sea_query::Expr::value(true))
            .filter(post::Column::Id.eq(id(p)))
            .exec(&app.db)
            .await
            .unwrap();
    }
    if let Some(t) = thread {
        thread::Entity::update_many()
            .col_expr(
                thread::Column::Hidden,
                sea_orm::sea_query::Expr::value(true),
            )
            .filter(thread::Column::Id.eq(id(t)))
            .exec(&app.db)
            .await
            .unwrap();
    }
}

/// Posts in a thread, counted in the database.
async fn posts_in(app: &TestApp, thread: &str) -> u64 {
    use convene::entities::post;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    post::Entity::find()
        .filter(post::Column::ThreadId.eq(uuid::Uuid::parse_str(thread).unwrap()))
        .count(&app.db)
        .await
        .unwrap()
}

fn bodies(t: &Value) -> Vec<String> {
    t["posts"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{t}"))
        .iter()
        .map(|p| p["body"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn verified_accounts_start_threads_on_commitments_and_in_their_groups() {
    let f = forum().await;
    let app = &f.app;
    let r = start(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "How will data users be involved?",
        "I would like **a panel**.",
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    let t = &r["data"]["startThread"];
    assert_eq!(t["thread"]["postCount"], 1);
    assert_eq!(t["thread"]["author"]["displayName"], "Ann");
    assert_eq!(t["thread"]["context"]["reference"], "UK0072");
    assert_eq!(t["post"]["body"], "I would like **a panel**.");
    assert_eq!(t["post"]["depth"], 1);
    let id = t["thread"]["id"].as_str().unwrap();
    let shown = thread(app, None, id).await;
    assert_eq!(
        shown["posts"]["nodes"][0]["bodyHtml"],
        "<p>I would like <strong>a panel</strong>.</p>\n"
    );

    // Refusals: anonymous, unverified, neither or both places, bad title and body.
    let anon = app
        .gql(
            None,
            START,
            json!({"i": {"commitmentId": f.commitment, "title": "Anonymous thread", "body": "b"}}),
        )
        .await;
    assert_eq!(error_code(&anon), "UNAUTHENTICATED");
    let carl = app.unverified_user("carl@example.org", "Carl").await;
    let r = start(
        app,
        &carl,
        json!({"commitmentId": f.commitment}),
        "Unverified thread",
        "b",
    )
    .await;
    assert_eq!(error_code(&r), "EMAIL_NOT_VERIFIED");
    let g = group(app, &f.org, "data-users", "PUBLIC").await;
    let r = start(app, &f.ann, json!({}), "Nowhere at all", "b").await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    let r = start(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment, "workingGroupId": g}),
        "Two places at once",
        "b",
    )
    .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT");
    let r = start(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "Hi",
        "b",
    )
    .await;
    assert_eq!(
        (error_code(&r), error_field(&r)),
        ("BAD_USER_INPUT", "title")
    );
    let r = start(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "Empty body",
        "  ",
    )
    .await;
    assert_eq!(
        (error_code(&r), error_field(&r)),
        ("BAD_USER_INPUT", "body")
    );
    let long = "x".repeat(20_001);
    let r = start(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "Long body",
        &long,
    )
    .await;
    assert_eq!(error_field(&r), "body");

    // In a group: only its active members.
    let r = start(
        app,
        &f.ann,
        json!({"workingGroupId": g}),
        "Outsider thread",
        "b",
    )
    .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    join(app, &f.ann, &g).await;
    let r = start(
        app,
        &f.ann,
        json!({"workingGroupId": g}),
        "Member thread here",
        "b",
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(
        r["data"]["startThread"]["thread"]["context"]["slug"],
        "data-users"
    );
    let group_thread = r["data"]["startThread"]["thread"]["id"].as_str().unwrap();
    // Reading a public group's thread: anyone; writing in it: members only.
    thread(app, None, group_thread).await;
    let r = reply(app, &f.bob, group_thread, None, "Can I say something?").await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    join(app, &f.bob, &g).await;
    let r = reply(app, &f.bob, group_thread, None, "Now I can.").await;
    assert!(r["errors"].is_null(), "{r}");

    // Lists: by commitment, by group, and through the parent objects.
    let r = app
        .gql(None, THREADS, json!({"f": {"commitmentId": f.commitment}}))
        .await;
    assert_eq!(r["data"]["threads"]["totalCount"], 1, "{r}");
    let r = app
        .gql(None, THREADS, json!({"f": {"workingGroupId": g}}))
        .await;
    assert_eq!(
        r["data"]["threads"]["nodes"][0]["title"],
        "Member thread here"
    );
    let r = app.gql(None, THREADS, json!({})).await;
    assert_eq!(r["data"]["threads"]["totalCount"], 2, "{r}");
    let r = app
        .gql(
            None,
            "query($c: ID!, $g: ID!) { commitment(id: $c) { threads(first: 5) { nodes { title } } } workingGroup(id: $g) { threads { nodes { title postCount } } } }",
            json!({"c": f.commitment, "g": g}),
        )
        .await;
    assert_eq!(
        r["data"]["commitment"]["threads"]["nodes"][0]["title"], "How will data users be involved?",
        "{r}"
    );
    assert_eq!(
        r["data"]["workingGroup"]["threads"]["nodes"][0]["postCount"],
        2
    );
}

#[tokio::test]
async fn replies_follow_their_parents_and_nest_at_most_five_deep() {
    let f = forum().await;
    let app = &f.app;
    let (t, first) = thread_on(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "Ordering of replies",
    )
    .await;
    let a = reply_id(app, &f.bob, &t, None, "A").await;
    let b = reply_id(app, &f.ann, &t, None, "B").await;
    let a1 = reply_id(app, &f.ann, &t, Some(&a), "A1").await;
    let _b1 = reply_id(app, &f.bob, &t, Some(&b), "B1").await;
    let _a2 = reply_id(app, &f.bob, &t, Some(&a), "A2").await;
    let _a1x = reply_id(app, &f.bob, &t, Some(&a1), "A1x").await;
    let _first1 = reply_id(app, &f.bob, &t, Some(&first), "F1").await;
    let shown = thread(app, None, &t).await;
    assert_eq!(
        bodies(&shown),
        [
            "Let us talk about it.",
            "F1",
            "A",
            "A1",
            "A1x",
            "A2",
            "B",
            "B1"
        ]
    );
    assert_eq!(shown["postCount"], 8);
    assert_eq!(shown["posts"]["totalCount"], 8);

    // A chain five deep; a reply to the fifth becomes its sibling, under the fourth.
    let mut parent = a1.clone(); // depth 2
    let mut chain = vec![];
    for d in 3..=5 {
        parent = reply_id(app, &f.ann, &t, Some(&parent), &format!("D{d}")).await;
        chain.push(parent.clone());
    }
    let r = reply(app, &f.bob, &t, Some(&parent), "Too deep").await;
    assert!(r["errors"].is_null(), "{r}");
    let deep = &r["data"]["replyToThread"]["post"];
    assert_eq!(deep["depth"], 5);
    assert_eq!(
        deep["parent"]["id"],
        json!(chain[1]),
        "attached to the fifth's parent"
    );
    let shown = thread(app, None, &t).await;
    let order = bodies(&shown);
    let at = |b: &str| order.iter().position(|x| x == b).unwrap();
    assert!(
        at("D5") < at("Too deep") && at("Too deep") < at("A2"),
        "{order:?}"
    );
    let depths: Vec<i64> = shown["posts"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["depth"].as_i64().unwrap())
        .collect();
    assert!(depths.iter().all(|d| (1..=5).contains(d)));

    // A parent from another thread is refused.
    let (other, other_first) = thread_on(
        app,
        &f.bob,
        json!({"commitmentId": f.commitment}),
        "Another thread",
    )
    .await;
    let r = reply(app, &f.ann, &t, Some(&other_first), "Crossed").await;
    assert_eq!(
        (error_code(&r), error_field(&r)),
        ("BAD_USER_INPUT", "parentPostId")
    );
    let r = reply(app, &f.ann, &other, None, "").await;
    assert_eq!(error_field(&r), "body");
    let carl = app.unverified_user("carl@example.org", "Carl").await;
    let r = reply(app, &carl, &t, None, "Unverified reply").await;
    assert_eq!(error_code(&r), "EMAIL_NOT_VERIFIED");
}

#[tokio::test]
async fn authors_edit_keeping_every_version_and_delete_keeping_the_replies() {
    let f = forum().await;
    let app = &f.app;
    let (t, first) = thread_on(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "Edits and deletions",
    )
    .await;
    let r = app
        .gql(
            Some(&f.ann.access),
            EDIT,
            json!({"i": {"id": first, "body": "Second version"}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let p = &r["data"]["editPost"]["post"];
    assert_eq!(p["body"], "Second version");
    assert!(p["editedAt"].is_string());
    let r = app
        .gql(
            Some(&f.ann.access),
            EDIT,
            json!({"i": {"id": first, "body": "Third version"}}),
        )
        .await;
    let revisions: Vec<&str> = r["data"]["editPost"]["post"]["revisions"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["body"].as_str().unwrap())
        .collect();
    assert_eq!(revisions, ["Let us talk about it.", "Second version"]);
    // Someone else's post: refused.
    let r = app
        .gql(
            Some(&f.bob.access),
            EDIT,
            json!({"i": {"id": first, "body": "Bob was here"}}),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let r = app
        .gql(Some(&f.bob.access), DELETE, json!({"id": first}))
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");

    let child = reply_id(app, &f.bob, &t, Some(&first), "A reply to the first").await;
    let r = app
        .gql(Some(&f.ann.access), DELETE, json!({"id": first}))
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let p = &r["data"]["deletePost"]["post"];
    assert_eq!(p["deleted"], true);
    assert_eq!(p["body"], "[deleted]");
    assert_eq!(p["revisions"]["nodes"], json!([]));
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM post_revisions").await,
        0
    );
    // Deleting again changes nothing; a deleted post is not edited.
    let r = app
        .gql(Some(&f.ann.access), DELETE, json!({"id": first}))
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let r = app
        .gql(
            Some(&f.ann.access),
            EDIT,
            json!({"i": {"id": first, "body": "Back"}}),
        )
        .await;
    assert_eq!(error_code(&r), "CONFLICT");
    let shown = thread(app, None, &t).await;
    assert_eq!(bodies(&shown), ["[deleted]", "A reply to the first"]);
    assert_eq!(shown["posts"]["nodes"][1]["id"], json!(child));
    assert_eq!(shown["posts"]["nodes"][1]["parent"]["id"], json!(first));
    assert_eq!(shown["posts"]["nodes"][0]["author"]["displayName"], "Ann");
    assert_eq!(shown["postCount"], 2);
}

#[tokio::test]
async fn reactions_toggle_once_per_kind_and_reacting_twice_changes_nothing() {
    let f = forum().await;
    let app = &f.app;
    let (_, first) = thread_on(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "Reactions please",
    )
    .await;
    async fn react_as(app: &TestApp, post: &str, who: &Session, kind: &str, on: bool) -> Value {
        app.gql(
            Some(&who.access),
            REACT,
            json!({"i": {"postId": post, "reaction": kind, "on": on}}),
        )
        .await
    }
    let react = |who, kind, on| react_as(app, &first, who, kind, on);
    let summary = |r: &Value| r["data"]["react"]["post"]["reactions"].clone();
    let r = react(&f.bob, "THUMBS_UP", true).await;
    assert_eq!(
        summary(&r),
        json!([
            {"reaction": "THUMBS_UP", "count": 1, "viewerReacted": true},
            {"reaction": "HEART", "count": 0, "viewerReacted": false},
            {"reaction": "LIGHTBULB", "count": 0, "viewerReacted": false},
            {"reaction": "QUESTION", "count": 0, "viewerReacted": false},
        ])
    );
    let r = react(&f.bob, "THUMBS_UP", true).await;
    assert_eq!(summary(&r)[0]["count"], 1, "twice is once");
    let r = react(&f.bob, "LIGHTBULB", true).await;
    assert_eq!(summary(&r)[2]["count"], 1);
    let r = react(&f.official, "THUMBS_UP", true).await;
    assert_eq!(
        summary(&r)[0],
        json!({"reaction": "THUMBS_UP", "count": 2, "viewerReacted": true})
    );
    let r = react(&f.bob, "THUMBS_UP", false).await;
    assert_eq!(
        summary(&r)[0],
        json!({"reaction": "THUMBS_UP", "count": 1, "viewerReacted": false})
    );
    let r = react(&f.bob, "THUMBS_UP", false).await;
    assert_eq!(summary(&r)[0]["count"], 1, "taking back twice is once");
    let r = react(&f.ann, "HEART", true).await;
    assert_eq!(error_code(&r), "FORBIDDEN", "not one's own post");
    let anon = app
        .gql(
            None,
            REACT,
            json!({"i": {"postId": first, "reaction": "HEART", "on": true}}),
        )
        .await;
    assert_eq!(error_code(&anon), "UNAUTHENTICATED");
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM post_reactions").await,
        2
    );
}

#[tokio::test]
async fn fifty_concurrent_reactions_count_exactly_fifty() {
    let f = forum().await;
    let app = &f.app;
    let (_, first) = thread_on(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "Everyone reacts",
    )
    .await;
    let mut sessions = Vec::new();
    for chunk in (0..50).collect::<Vec<_>>().chunks(10) {
        let made =
            futures::future::join_all(chunk.iter().map(|i| app.verified_user_quick(i))).await;
        sessions.extend(made);
    }
    let go = |on: bool, take: usize| {
        futures::future::join_all(sessions.iter().take(take).flat_map(|s| {
            ["THUMBS_UP", "HEART"].map(|kind| {
                app.gql(
                    Some(&s.access),
                    REACT,
                    json!({"i": {"postId": first, "reaction": kind, "on": on}}),
                )
            })
        }))
    };
    for r in go(true, 50).await {
        assert!(r["errors"].is_null(), "{r}");
    }
    go(true, 50).await;
    let shown = |v: Value| v["posts"]["nodes"][0]["reactions"].clone();
    let thread_id: String = {
        let r = app
            .gql(None, THREADS, json!({"f": {"commitmentId": f.commitment}}))
            .await;
        r["data"]["threads"]["nodes"][0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let r = shown(thread(app, None, &thread_id).await);
    assert_eq!(r[0]["count"], 50, "{r}");
    assert_eq!(r[1]["count"], 50, "{r}");
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM post_reactions").await,
        100
    );
    go(false, 20).await;
    let r = shown(thread(app, None, &thread_id).await);
    assert_eq!(
        (r[0]["count"].clone(), r[1]["count"].clone()),
        (json!(30), json!(30))
    );
}

#[tokio::test]
async fn locked_threads_refuse_posts_with_the_reason_and_moderators_are_logged() {
    let f = forum().await;
    let app = &f.app;
    let g = group(app, &f.org, "stewards", "PUBLIC").await;
    join(app, &f.ann, &g).await;
    join(app, &f.bob, &g).await;
    let (gt, _) = thread_on(app, &f.ann, json!({"workingGroupId": g}), "Group business").await;
    let (ct, _) = thread_on(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "Commitment business",
    )
    .await;
    let lock = "mutation($id: ID!, $r: String) { lockThread(id: $id, reason: $r) { thread { locked lockReason } } }";
    let bare_lock = "mutation($id: ID!) { lockThread(id: $id) { thread { locked lockReason } } }";
    let unlock = "mutation($id: ID!) { unlockThread(id: $id) { thread { locked lockReason } } }";
    let pin = "mutation($id: ID!) { pinThread(id: $id) { thread { pinned } } }";
    let unpin = "mutation($id: ID!) { unpinThread(id: $id) { thread { pinned } } }";

    // Members and group organisers outside their group may not.
    let r = app.gql(Some(&f.bob.access), lock, json!({"id": gt})).await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let r = app.gql(Some(&f.org.access), pin, json!({"id": ct})).await;
    assert_eq!(
        error_code(&r),
        "FORBIDDEN",
        "an organiser moderates their group only"
    );
    // The group's organiser locks its thread, with a reason.
    let r = app
        .gql(
            Some(&f.org.access),
            lock,
            json!({"id": gt, "r": "Moved to the meet-up"}),
        )
        .await;
    assert_eq!(
        r["data"]["lockThread"]["thread"],
        json!({"locked": true, "lockReason": "Moved to the meet-up"}),
        "{r}"
    );
    let r = reply(app, &f.bob, &gt, None, "One more thing").await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Moved to the meet-up"),
        "{r}"
    );
    // Officials lock anywhere; lockThread(id) alone still works.
    let r = app
        .gql(Some(&f.official.access), bare_lock, json!({"id": ct}))
        .await;
    assert_eq!(
        r["data"]["lockThread"]["thread"],
        json!({"locked": true, "lockReason": null}),
        "{r}"
    );
    let r = reply(app, &f.bob, &ct, None, "Locked out").await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    // Locking again is no new entry.
    app.gql(Some(&f.official.access), bare_lock, json!({"id": ct}))
        .await;
    let r = app
        .gql(Some(&f.admin.access), unlock, json!({"id": ct}))
        .await;
    assert_eq!(r["data"]["unlockThread"]["thread"]["locked"], false, "{r}");
    assert!(reply(app, &f.bob, &ct, None, "Open again").await["errors"].is_null());

    // Pinned threads come first, then the most recently active.
    let (_, _) = thread_on(
        app,
        &f.bob,
        json!({"commitmentId": f.commitment}),
        "A newer thread",
    )
    .await;
    let titles = |r: &Value| -> Vec<String> {
        r["data"]["threads"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_string())
            .collect()
    };
    let r = app
        .gql(None, THREADS, json!({"f": {"commitmentId": f.commitment}}))
        .await;
    assert_eq!(titles(&r), ["A newer thread", "Commitment business"]);
    let r = app
        .gql(Some(&f.official.access), pin, json!({"id": ct}))
        .await;
    assert_eq!(r["data"]["pinThread"]["thread"]["pinned"], true);
    let r = app
        .gql(None, THREADS, json!({"f": {"commitmentId": f.commitment}}))
        .await;
    assert_eq!(titles(&r), ["Commitment business", "A newer thread"]);
    assert_eq!(r["data"]["threads"]["nodes"][0]["pinned"], true);
    // Paging across the pinned boundary.
    let p1 = app
        .gql(
            None,
            THREADS,
            json!({"f": {"commitmentId": f.commitment}, "n": 1}),
        )
        .await;
    let after = p1["data"]["threads"]["pageInfo"]["endCursor"].clone();
    let p2 = app
        .gql(
            None,
            THREADS,
            json!({"f": {"commitmentId": f.commitment}, "n": 1, "after": after}),
        )
        .await;
    assert_eq!(titles(&p1), ["Commitment business"]);
    assert_eq!(titles(&p2), ["A newer thread"], "{p2}");
    let r = app
        .gql(Some(&f.official.access), unpin, json!({"id": ct}))
        .await;
    assert_eq!(r["data"]["unpinThread"]["thread"]["pinned"], false);
    // One at a time, by last activity: the same threads in the same order.
    thread_on(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "The newest thread",
    )
    .await;
    let all = titles(
        &app.gql(None, THREADS, json!({"f": {"commitmentId": f.commitment}}))
            .await,
    );
    assert_eq!(
        all,
        ["The newest thread", "A newer thread", "Commitment business"]
    );
    let mut paged = Vec::new();
    let mut after = Value::Null;
    loop {
        let r = app
            .gql(
                None,
                THREADS,
                json!({"f": {"commitmentId": f.commitment}, "n": 1, "after": after}),
            )
            .await;
        paged.extend(titles(&r));
        if r["data"]["threads"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = r["data"]["threads"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(paged, all);

    // Every change is on the record, with who and why.
    let rows = app
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            "SELECT action, subject_type, reason FROM moderation_actions ORDER BY created_at, id"
                .to_string(),
        ))
        .await
        .unwrap();
    let log: Vec<(String, String, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "action").unwrap(),
                r.try_get("", "subject_type").unwrap(),
                r.try_get("", "reason").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        log,
        [
            ("LOCK", Some("Moved to the meet-up")),
            ("LOCK", None),
            ("UNLOCK", None),
            ("PIN", None),
            ("UNPIN", None)
        ]
        .map(|(a, r)| (a.to_string(), "THREAD".to_string(), r.map(str::to_string)))
    );
}

use sea_orm::ConnectionTrait;

#[tokio::test]
async fn a_private_groups_threads_are_for_its_members_only() {
    let f = forum().await;
    let app = &f.app;
    let g = group(app, &f.org, "inner-circle", "PRIVATE").await;
    let (t, first) = thread_on(app, &f.org, json!({"workingGroupId": g}), "Private matters").await;
    // Outsiders, signed in or not, find nothing.
    for who in [None, Some(&f.bob)] {
        let r = app
            .gql(who.map(|s| s.access.as_str()), THREAD, json!({"id": t}))
            .await;
        assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
        let r = app
            .gql(who.map(|s| s.access.as_str()), THREADS, json!({}))
            .await;
        assert_eq!(r["data"]["threads"]["totalCount"], 0, "{r}");
        let r = app
            .gql(
                who.map(|s| s.access.as_str()),
                THREADS,
                json!({"f": {"workingGroupId": g}}),
            )
            .await;
        assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
        let r = app
            .gql(
                who.map(|s| s.access.as_str()),
                "query($g: ID!) { workingGroup(id: $g) { threads { totalCount } } }",
                json!({"g": g}),
            )
            .await;
        assert_eq!(r["data"]["workingGroup"]["threads"], Value::Null, "{r}");
    }
    let r = reply(app, &f.bob, &t, None, "Let me in").await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let r = app
        .gql(
            Some(&f.bob.access),
            REACT,
            json!({"i": {"postId": first, "reaction": "HEART", "on": true}}),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let r = start(
        app,
        &f.bob,
        json!({"workingGroupId": g}),
        "Sneaking in here",
        "b",
    )
    .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    // Members and administrators read it.
    join(app, &f.ann, &g).await;
    assert_eq!(
        thread(app, Some(&f.ann), &t).await["title"],
        "Private matters"
    );
    assert_eq!(
        thread(app, Some(&f.admin), &t).await["title"],
        "Private matters"
    );
    let r = app.gql(Some(&f.ann.access), THREADS, json!({})).await;
    assert_eq!(r["data"]["threads"]["totalCount"], 1);
    assert!(reply(app, &f.ann, &t, None, "Inside now").await["errors"].is_null());
}

#[tokio::test]
async fn hidden_content_shows_a_marker_except_to_its_author_and_moderators() {
    let f = forum().await;
    let app = &f.app;
    let g = group(app, &f.org, "moderated", "PUBLIC").await;
    join(app, &f.ann, &g).await;
    join(app, &f.bob, &g).await;
    let (t, first) = thread_on(app, &f.ann, json!({"workingGroupId": g}), "A heated topic").await;
    let p = reply_id(app, &f.bob, &t, Some(&first), "Something rude").await;
    hide(app, Some(&p), Some(&t)).await;
    let carl = app.verified_user("carl@example.org", "Carl").await;
    // Anonymous, a bystander and another member see markers; the author, the group's
    // organiser and an administrator see the text, marked hidden.
    for (who, sees_post, sees_title) in [
        (None, false, false),
        (Some(&carl), false, false),
        (Some(&f.ann), false, true),
        (Some(&f.bob), true, false),
        (Some(&f.org), true, true),
        (Some(&f.admin), true, true),
    ] {
        let shown = thread(app, who, &t).await;
        assert_eq!(shown["hidden"], true);
        assert_eq!(
            shown["title"],
            if sees_title {
                "A heated topic"
            } else {
                "[hidden by a moderator]"
            },
            "{who:?}"
        );
        let post = &shown["posts"]["nodes"][1];
        assert_eq!(post["hidden"], true);
        if sees_post {
            assert_eq!(post["body"], "Something rude", "{who:?}");
            assert_eq!(post["bodyHtml"], "<p>Something rude</p>\n");
        } else {
            assert_eq!(post["body"], "[hidden by a moderator]", "{who:?}");
            assert!(!post["bodyHtml"].as_str().unwrap().contains("rude"));
        }
        assert_eq!(shown["posts"]["nodes"][0]["body"], "Let us talk about it.");
    }
    // An official is not a moderator of hidden content outside their role.
    let shown = thread(app, Some(&f.official), &t).await;
    assert_eq!(
        shown["posts"]["nodes"][1]["body"],
        "[hidden by a moderator]"
    );
}

#[tokio::test]
async fn officials_answer_threads_and_the_answers_enter_the_outcome_record() {
    let f = forum().await;
    let app = &f.app;
    let respond = "mutation($i: PublishResponseInput!) { publishResponse(input: $i) { response { body thread { id } commitment { reference } } suggestion { id } thread { officialResponses { body } } } }";
    let (t, _) = thread_on(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "When is the panel?",
    )
    .await;
    let r = app
        .gql(
            Some(&f.ann.access),
            respond,
            json!({"i": {"threadId": t, "body": "Soon"}}),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let s = create_suggestion(app, &f.ann, &f.commitment, "A suggestion as well").await;
    let r = app
        .gql(
            Some(&f.official.access),
            respond,
            json!({"i": {"threadId": t, "suggestionId": s, "body": "Both"}}),
        )
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT");
    let r = app
        .gql(
            Some(&f.official.access),
            respond,
            json!({"i": {"threadId": t}}),
        )
        .await;
    assert_eq!(
        (error_code(&r), error_field(&r)),
        ("BAD_USER_INPUT", "body")
    );
    let r = app
        .gql(
            Some(&f.official.access),
            respond,
            json!({"i": {"threadId": t, "body": "In March.", "newStatus": "ACCEPTED"}}),
        )
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "no status on a thread");
    let r = app
        .gql(
            Some(&f.official.access),
            respond,
            json!({"i": {"threadId": t, "body": "The panel meets in **March**."}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let p = &r["data"]["publishResponse"];
    assert_eq!(p["suggestion"], Value::Null);
    assert_eq!(p["response"]["thread"]["id"], json!(t));
    assert_eq!(p["response"]["commitment"]["reference"], "UK0072");
    assert_eq!(
        p["thread"]["officialResponses"],
        json!([{"body": "The panel meets in **March**."}])
    );
    let shown = thread(app, None, &t).await;
    assert_eq!(
        shown["officialResponses"][0]["body"],
        "The panel meets in **March**."
    );
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(*) FROM threads WHERE official_response_count = 1"
        )
        .await,
        1
    );
    let q = "query($f: OutcomeFilter) { outcomes(filter: $f) { totalCount nodes { ... on OfficialResponse { body thread { title } } } } }";
    let r = app
        .gql(None, q, json!({"f": {"commitmentId": f.commitment}}))
        .await;
    assert_eq!(r["data"]["outcomes"]["totalCount"], 1, "{r}");
    assert_eq!(
        r["data"]["outcomes"]["nodes"][0]["thread"]["title"],
        "When is the panel?"
    );

    // A private group's thread: answered, but kept out of the public record.
    let g = group(app, &f.org, "closed-room", "PRIVATE").await;
    let (pt, _) = thread_on(
        app,
        &f.org,
        json!({"workingGroupId": g}),
        "Closed discussion",
    )
    .await;
    let r = app
        .gql(
            Some(&f.official.access),
            respond,
            json!({"i": {"threadId": pt, "body": "Noted."}}),
        )
        .await;
    assert_eq!(
        error_code(&r),
        "NOT_FOUND",
        "an official outside the group does not see it"
    );
    let r = app
        .gql(
            Some(&f.admin.access),
            respond,
            json!({"i": {"threadId": pt, "body": "Noted."}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let r = app.gql(None, q, json!({})).await;
    assert_eq!(r["data"]["outcomes"]["totalCount"], 1, "{r}");
}

#[tokio::test]
async fn every_suggestion_has_its_thread() {
    let f = forum().await;
    let app = &f.app;
    let s = create_suggestion(app, &f.ann, &f.commitment, "Publish the minutes").await;
    let r = app
        .gql(
            None,
            "query($id: ID!) { suggestion(id: $id) { thread { id title postCount author { displayName } context { __typename ... on Suggestion { id } } } } }",
            json!({"id": s}),
        )
        .await;
    let t = &r["data"]["suggestion"]["thread"];
    assert_eq!(t["title"], "Publish the minutes", "{r}");
    assert_eq!(t["postCount"], 0);
    assert_eq!(t["author"]["displayName"], "Ann");
    assert_eq!(t["context"], json!({"__typename": "Suggestion", "id": s}));
    let id = t["id"].as_str().unwrap();
    let r = app
        .gql(None, THREADS, json!({"f": {"suggestionId": s}}))
        .await;
    assert_eq!(r["data"]["threads"]["nodes"][0]["id"], json!(id));
    // Not among the commitment's own discussions.
    let r = app
        .gql(None, THREADS, json!({"f": {"commitmentId": f.commitment}}))
        .await;
    assert_eq!(r["data"]["threads"]["totalCount"], 0);
    assert!(reply(app, &f.bob, id, None, "I agree").await["errors"].is_null());
    // Renaming the suggestion renames its thread.
    let r = app
        .gql(
            Some(&f.ann.access),
            "mutation($i: UpdateSuggestionInput!) { updateSuggestion(input: $i) { suggestion { thread { title } } } }",
            json!({"i": {"id": s, "title": "Publish the minutes monthly"}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateSuggestion"]["suggestion"]["thread"]["title"],
        "Publish the minutes monthly",
        "{r}"
    );
    assert_eq!(thread(app, None, id).await["postCount"], 1);
}

#[tokio::test]
async fn paging_posts_while_posts_arrive_never_repeats_or_skips() {
    let f = forum().await;
    let app = &f.app;
    let (t, first) = thread_on(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "A busy thread",
    )
    .await;
    let mut existing = vec![first.clone()];
    let mut parents = vec![first.clone()];
    for i in 0..24 {
        let parent = if i % 3 == 0 {
            None
        } else {
            parents.last().cloned()
        };
        let id = reply_id(app, &f.bob, &t, parent.as_deref(), &format!("Existing {i}")).await;
        parents.push(id.clone());
        existing.push(id);
    }
    // Meanwhile another client keeps replying, at the top and under early posts.
    let writer = {
        let (client, url, token, t, targets) = (
            app.client.clone(),
            app.url("/graphql"),
            f.official.access.clone(),
            t.clone(),
            existing.clone(),
        );
        tokio::spawn(async move {
            for i in 0..30 {
                let parent = (i % 2 == 0).then(|| targets[i % targets.len()].clone());
                let r: Value = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"query": REPLY, "variables": {"i": {"threadId": t, "parentPostId": parent, "body": format!("Arrival {i}")}}}))
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
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut n = 0;
    loop {
        let r = app
            .gql(None, THREAD, json!({"id": t, "n": 4, "after": after}))
            .await;
        let posts = &r["data"]["thread"]["posts"];
        for node in posts["nodes"].as_array().unwrap_or_else(|| panic!("{r}")) {
            seen.push(node["id"].as_str().unwrap().to_string());
        }
        n += 1;
        // Replies arrive between pages, some under posts already read.
        let target = existing[n % existing.len()].clone();
        reply_id(
            app,
            &f.ann,
            &t,
            Some(&target),
            &format!("Between pages {n}"),
        )
        .await;
        if posts["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = posts["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a post was repeated");
    for id in &existing {
        assert!(unique.contains(id), "an existing post was skipped");
    }
    writer.await.unwrap();
    let total = posts_in(app, &t).await;
    let shown = thread(app, None, &t).await;
    assert_eq!(shown["postCount"], total, "postCount is exact");
    let last: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(shown["lastActivityAt"].clone()).unwrap();
    let newest = {
        use convene::entities::post;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        post::Entity::find()
            .filter(post::Column::ThreadId.eq(uuid::Uuid::parse_str(&t).unwrap()))
            .order_by_desc(post::Column::CreatedAt)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .created_at
    };
    assert_eq!(last, newest, "lastActivityAt is the newest post");
}

#[tokio::test]
async fn a_thread_page_costs_the_same_statements_for_5_and_50_posts() {
    let (app, statements) = spawn_app_recording_statements(|s| s.graphql.max_cost = 20_000).await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let org = user_with_role(&app, "org@example.org", "Orla", Role::Organiser).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let viewer = app.verified_user("viewer@example.org", "Viewer").await;
    let g = group(&app, &org, "measured", "PUBLIC").await;
    for who in [&ann, &bob, &viewer] {
        join(&app, who, &g).await;
    }
    let commitment = create_commitment(&app, &official, "UK0072", "Involving data users").await;
    let mut threads = Vec::new();
    let _ = commitment;
    for n in [5, 50] {
        let (t, first) = thread_on(
            &app,
            &ann,
            json!({"workingGroupId": g}),
            &format!("Thread of {n}"),
        )
        .await;
        let mut last = first;
        for i in 1..n {
            let (who, parent) = if i % 2 == 0 {
                (&bob, Some(last.as_str()))
            } else {
                (&ann, None)
            };
            last = reply_id(&app, who, &t, parent, &format!("Post {i}")).await;
            if i % 3 == 0 {
                app.gql(
                    Some(&viewer.access),
                    REACT,
                    json!({"i": {"postId": last, "reaction": "HEART", "on": true}}),
                )
                .await;
            }
        }
        threads.push((n, t));
    }
    // The worker's fan-out of the setup's events is not the page's cost.
    app.notifications_settled().await;
    let q = "query($id: ID!) { thread(id: $id) { title locked postCount author { displayName } officialResponses { body } posts(first: 50) { nodes { id body bodyHtml depth hidden deleted editedAt author { displayName } parent { id } thread { id } reactions { reaction count viewerReacted } revisions { nodes { body } } } } } }";
    let mut costs = Vec::new();
    for (n, t) in &threads {
        statements.clear();
        let r = app.gql(Some(&viewer.access), q, json!({"id": t})).await;
        let cost = statements.count();
        let nodes = r["data"]["thread"]["posts"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"));
        assert_eq!(nodes.len(), *n);
        assert!(nodes
            .iter()
            .any(|p| p["reactions"][1]["viewerReacted"] == true));
        let seen: Vec<String> = statements
            .taken()
            .iter()
            .map(|sql| sql.chars().take(90).collect())
            .collect();
        costs.push((cost, seen));
    }
    assert_eq!(
        costs[0].0, costs[1].0,
        "statements for 5 vs 50 posts: {costs:#?}"
    );
    let costs: Vec<usize> = costs.into_iter().map(|c| c.0).collect();
    assert!(costs[0] <= 15, "a thread page took {} statements", costs[0]);
}

/// `postAdded` at the schema level (the WebSocket transport is tested with it): a reader
/// receives new posts of the thread, an outsider of a private group is refused, and a post
/// hidden by the time it is read is never pushed to those who may not see it.
#[tokio::test]
async fn post_added_pushes_visible_posts_and_refuses_outsiders() {
    use convene::auth::{Actor, Viewer};
    use convene::services::discussions::posts;

    let f = forum().await;
    let app = &f.app;
    let g = group(app, &f.org, "live-room", "PRIVATE").await;
    join(app, &f.ann, &g).await;
    let carl = app.verified_user("carl@example.org", "Carl").await;
    join(app, &carl, &g).await;
    let (t, _) = thread_on(app, &f.ann, json!({"workingGroupId": g}), "Live discussion").await;
    let ctx = convene::startup::services(Arc::new(app.settings.clone()), app.db.clone()).unwrap();
    let schema = convene::graphql::build_schema(&app.settings.graphql);
    let actor = |s: &Session, role: Role| Actor {
        id: uuid::Uuid::parse_str(&s.user_id).unwrap(),
        session_id: uuid::Uuid::nil(),
        role,
        email_verified: true,
    };
    let subscribe = |who: Option<Actor>| {
        let id = who.as_ref().map(|a| a.id);
        let req = async_graphql::Request::new(
            "subscription($t: ID!) { postAdded(threadId: $t) { id body hidden author { displayName } } }",
        )
        .variables(async_graphql::Variables::from_json(json!({"t": t})))
        .data(ctx.clone())
        .data(Viewer {
            actor: who,
            ..Default::default()
        })
        .data(convene::graphql::loaders::request_loader(ctx.clone(), id));
        schema.execute_stream(req)
    };
    // Outsiders: refused with the same error as the query.
    let mut outsider = subscribe(Some(actor(&f.bob, Role::Member)));
    let first = outsider.next().await.unwrap();
    assert_eq!(
        first.errors[0]
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .map(|v| v.to_string()),
        Some("\"NOT_FOUND\"".to_string()),
        "{first:?}"
    );
    let mut anonymous = subscribe(None);
    assert!(!anonymous.next().await.unwrap().errors.is_empty());

    let org = actor(&f.org, Role::Organiser);
    let ann = actor(&f.ann, Role::Member);
    let mut member = subscribe(Some(actor(&carl, Role::Member)));
    let mut moderator = subscribe(Some(org.clone()));
    // The first poll subscribes and checks access, then waits for a post.
    let pending = tokio::time::timeout(std::time::Duration::from_millis(200), member.next()).await;
    assert!(pending.is_err(), "nothing was posted yet");
    let pending =
        tokio::time::timeout(std::time::Duration::from_millis(200), moderator.next()).await;
    assert!(pending.is_err());

    let thread_id = uuid::Uuid::parse_str(&t).unwrap();
    let rude = posts::reply(&ctx, &ann, thread_id, None, "A rude remark")
        .await
        .unwrap();
    // Hidden before the subscribers read it: never pushed to those who may not see it.
    hide(app, Some(&rude.id.to_string()), None).await;
    posts::reply(&ctx, &ann, thread_id, None, "A visible reply")
        .await
        .unwrap();

    let got = member.next().await.unwrap();
    assert!(got.errors.is_empty(), "{got:?}");
    let got = got.data.into_json().unwrap();
    assert_eq!(
        got["postAdded"]["body"], "A visible reply",
        "the hidden post was skipped"
    );
    assert_eq!(got["postAdded"]["author"]["displayName"], "Ann");

    let got = moderator.next().await.unwrap().data.into_json().unwrap();
    assert_eq!(got["postAdded"]["body"], "A rude remark");
    assert_eq!(got["postAdded"]["hidden"], true);
    let got = moderator.next().await.unwrap().data.into_json().unwrap();
    assert_eq!(got["postAdded"]["body"], "A visible reply");
}

#[tokio::test]
async fn a_page_of_threads_with_their_first_posts_costs_the_same_statements_whatever_its_size() {
    let (app, statements) = spawn_app_recording_statements(|s| s.graphql.max_cost = 20_000).await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let small = create_commitment(&app, &official, "UK0070", "FOI code").await;
    let large = create_commitment(&app, &official, "UK0072", "Involving data users").await;
    for (commitment, n) in [(&small, 2), (&large, 8)] {
        for i in 0..n {
            let (t, first) = thread_on(
                &app,
                &ann,
                json!({"commitmentId": commitment}),
                &format!("Topic {i}"),
            )
            .await;
            reply_id(&app, &bob, &t, Some(&first), "A reply").await;
        }
    }
    // The worker's fan-out of the setup's events is not the page's cost.
    app.notifications_settled().await;
    let q = "query($c: ID!) { commitment(id: $c) { threads(first: 10) { totalCount nodes { title postCount author { displayName } posts(first: 3) { nodes { body author { displayName } reactions { count viewerReacted } } } } } } }";
    let mut costs = Vec::new();
    for (commitment, n) in [(&small, 2), (&large, 8)] {
        statements.clear();
        let r = app
            .gql(Some(&bob.access), q, json!({"c": commitment}))
            .await;
        let cost = statements.taken();
        let nodes = r["data"]["commitment"]["threads"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"));
        assert_eq!(nodes.len(), n);
        assert!(nodes
            .iter()
            .all(|t| t["posts"]["nodes"][1]["body"] == "A reply"
                && t["posts"]["nodes"][1]["author"]["displayName"] == "Bob"));
        costs.push(cost);
    }
    // One statement per level whatever the page's size: the viewer's session, the
    // commitment, the threads, their count, their first posts, the viewer's reactions, and
    // the people (the threads' authors and the posts' authors load at different levels, so
    // at most two rounds; they share one when the posts arrive before the first round
    // starts).
    const BUDGET: usize = 8;
    for (n, cost) in [2, 8].iter().zip(&costs) {
        assert!(
            cost.len() <= BUDGET,
            "{} statements for {n} threads: {cost:#?}",
            cost.len()
        );
    }
}

#[tokio::test]
async fn concurrent_replies_keep_the_post_count_and_the_order_exact() {
    let f = forum().await;
    let app = &f.app;
    let (t, first) = thread_on(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "Everyone replies",
    )
    .await;
    let writers = [&f.ann, &f.bob, &f.official, &f.org];
    let bodies: Vec<String> = (0..24).map(|i| format!("Reply {i}")).collect();
    let replies = bodies.iter().enumerate().map(|(i, body)| {
        let who = writers[i % writers.len()];
        let parent = (i % 2 == 0).then_some(first.as_str());
        reply(app, who, &t, parent, body)
    });
    for r in futures::future::join_all(replies).await {
        assert!(r["errors"].is_null(), "{r}");
    }
    let shown = thread(app, None, &t).await;
    assert_eq!(shown["postCount"], 25);
    assert_eq!(posts_in(app, &t).await, 25);
    let nodes = shown["posts"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 25);
    // The first post's replies come right after it, then the replies to the thread.
    let depths: Vec<i64> = nodes.iter().map(|p| p["depth"].as_i64().unwrap()).collect();
    assert_eq!(
        &depths[..13],
        &[1; 1]
            .iter()
            .chain([2; 12].iter())
            .copied()
            .collect::<Vec<_>>()[..]
    );
    assert!(depths[13..].iter().all(|d| *d == 1));
}

async fn edit(app: &TestApp, who: &Session, post: &str, body: &str) -> Value {
    app.gql(
        Some(&who.access),
        EDIT,
        json!({"i": {"id": post, "body": body}}),
    )
    .await
}

const UPDATE_SUGGESTION: &str =
    "mutation($i: UpdateSuggestionInput!) { updateSuggestion(input: $i) { suggestion { title } } }";

#[tokio::test]
async fn edits_of_posts_and_suggestions_share_a_budget() {
    let f = forum_with(|s| {
        s.limits.edits_per_minute = 3;
        s.limits.edits_per_hour = 5;
        s.limits.new_account_factor = 1.0;
    })
    .await;
    let app = &f.app;
    let (t, first) = thread_on(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "Edit budgets",
    )
    .await;
    let idea = create_suggestion(app, &f.ann, &f.commitment, "An idea to edit").await;
    // Two post edits and a suggestion edit fill the minute.
    for n in 1..=2 {
        let r = edit(app, &f.ann, &first, &format!("Version {n}")).await;
        assert!(r["errors"].is_null(), "{r}");
    }
    let r = app
        .gql(
            Some(&f.ann.access),
            UPDATE_SUGGESTION,
            json!({"i": {"id": idea, "title": "An idea, edited once"}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let wait = crate::moderation::retry_after(&edit(app, &f.ann, &first, "Version 3").await);
    assert!((1..=60).contains(&wait), "{wait}");
    let r = app
        .gql(
            Some(&f.ann.access),
            UPDATE_SUGGESTION,
            json!({"i": {"id": idea, "title": "An idea, edited twice"}}),
        )
        .await;
    crate::moderation::retry_after(&r);
    // The refused edits wrote nothing.
    let s = app
        .gql(
            Some(&f.ann.access),
            "query($id: ID!) { suggestion(id: $id) { title } }",
            json!({"id": idea}),
        )
        .await;
    assert_eq!(
        s["data"]["suggestion"]["title"], "An idea, edited once",
        "{s}"
    );
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM post_revisions").await,
        2
    );
    // An edit that changes nothing is no write.
    assert!(edit(app, &f.ann, &first, "Version 2").await["errors"].is_null());
    // Writing posts has its own budget; other accounts theirs.
    assert!(reply(app, &f.ann, &t, None, "Still replying").await["errors"].is_null());
    let (_, bobs) = thread_on(
        app,
        &f.bob,
        json!({"commitmentId": f.commitment}),
        "Bob's thread",
    )
    .await;
    assert!(edit(app, &f.bob, &bobs, "Bob's edit").await["errors"].is_null());
    // The hour: two more after the minute, then none however many minutes pass.
    crate::moderation::a_minute_passes(app).await;
    for n in 3..=4 {
        assert!(edit(app, &f.ann, &first, &format!("Version {n}")).await["errors"].is_null());
    }
    crate::moderation::a_minute_passes(app).await;
    let wait = crate::moderation::retry_after(&edit(app, &f.ann, &first, "Version 5").await);
    assert!((61..=3600).contains(&wait), "{wait}");
}

const POST_REVISIONS: &str = "query($id: ID!, $n: Int, $after: String) { thread(id: $id) { posts(first: 1) { nodes { revisions(first: $n, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { body } } } } } }";
const SUGGESTION_REVISIONS: &str = "query($id: ID!, $n: Int, $after: String) { suggestion(id: $id) { revisions(first: $n, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { title } } } }";

#[tokio::test]
async fn an_item_keeps_at_most_max_revisions_read_a_page_at_a_time() {
    let f = forum_with(|s| s.limits.max_revisions = 3).await;
    let app = &f.app;
    let (t, first) = thread_on(
        app,
        &f.ann,
        json!({"commitmentId": f.commitment}),
        "Many versions",
    )
    .await;
    for n in 1..=5 {
        assert!(edit(app, &f.ann, &first, &format!("Version {n}")).await["errors"].is_null());
    }
    // Five edits, three kept: the oldest two went in the edits' own transactions.
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM post_revisions").await,
        3
    );
    let page = |n: i64, after: Option<String>| {
        app.gql(
            Some(&f.ann.access),
            POST_REVISIONS,
            json!({"id": t, "n": n, "after": after}),
        )
    };
    let r = page(2, None).await;
    let revs = &r["data"]["thread"]["posts"]["nodes"][0]["revisions"];
    assert_eq!(revs["totalCount"], 3, "{r}");
    assert_eq!(
        revs["nodes"],
        json!([{"body": "Version 2"}, {"body": "Version 3"}]),
        "{r}"
    );
    assert_eq!(revs["pageInfo"]["hasNextPage"], true);
    let after = revs["pageInfo"]["endCursor"].as_str().map(str::to_string);
    let r = page(2, after).await;
    let revs = &r["data"]["thread"]["posts"]["nodes"][0]["revisions"];
    assert_eq!(revs["nodes"], json!([{"body": "Version 4"}]), "{r}");
    assert_eq!(revs["pageInfo"]["hasNextPage"], false);
    // No more than a hundred at a time.
    for n in [0, 101] {
        let r = page(n, None).await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
        assert_eq!(error_field(&r), "first", "{r}");
    }

    // A suggestion's history is capped and paged the same way.
    let idea = create_suggestion(app, &f.ann, &f.commitment, "Version 0 of an idea").await;
    for n in 1..=4 {
        let r = app
            .gql(
                Some(&f.ann.access),
                UPDATE_SUGGESTION,
                json!({"i": {"id": idea, "title": format!("Version {n} of an idea")}}),
            )
            .await;
        assert!(r["errors"].is_null(), "{r}");
    }
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM suggestion_revisions").await,
        3
    );
    let r = app
        .gql(None, SUGGESTION_REVISIONS, json!({"id": idea, "n": 1}))
        .await;
    let revs = &r["data"]["suggestion"]["revisions"];
    assert_eq!(revs["totalCount"], 3, "{r}");
    assert_eq!(
        revs["nodes"],
        json!([{"title": "Version 1 of an idea"}]),
        "{r}"
    );
    let after = revs["pageInfo"]["endCursor"].as_str().unwrap().to_string();
    let r = app
        .gql(
            None,
            SUGGESTION_REVISIONS,
            json!({"id": idea, "n": 100, "after": after}),
        )
        .await;
    let revs = &r["data"]["suggestion"]["revisions"];
    assert_eq!(
        revs["nodes"],
        json!([{"title": "Version 2 of an idea"}, {"title": "Version 3 of an idea"}]),
        "{r}"
    );
    assert_eq!(revs["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn authors_cannot_edit_in_a_locked_thread() {
    let f = forum().await;
    let app = &f.app;
    let g = group(app, &f.org, "locked-edits", "PUBLIC").await;
    join(app, &f.ann, &g).await;
    let (gt, anns) = thread_on(app, &f.ann, json!({"workingGroupId": g}), "Soon locked").await;
    let anns_reply = reply_id(app, &f.ann, &gt, None, "A reply to delete").await;
    let orgs = reply_id(app, &f.org, &gt, None, "The organiser's note").await;
    let r = app
        .gql(
            Some(&f.org.access),
            "mutation($id: ID!, $r: String) { lockThread(id: $id, reason: $r) { thread { locked } } }",
            json!({"id": gt, "r": "Decided at the meet-up"}),
        )
        .await;
    assert_eq!(r["data"]["lockThread"]["thread"]["locked"], true, "{r}");
    // The author may not edit in it, and is told why.
    let r = edit(app, &f.ann, &anns, "Rewriting history").await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Decided at the meet-up"),
        "{r}"
    );
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM post_revisions").await,
        0
    );
    // Deleting one's own post is still allowed.
    let r = app
        .gql(Some(&f.ann.access), DELETE, json!({"id": anns_reply}))
        .await;
    assert_eq!(r["data"]["deletePost"]["post"]["deleted"], true, "{r}");
    // Its moderators still edit their own posts.
    assert!(edit(app, &f.org, &orgs, "The organiser's corrected note").await["errors"].is_null());
    // Unlocked, the author edits again.
    app.gql(
        Some(&f.org.access),
        "mutation($id: ID!) { unlockThread(id: $id) { thread { locked } } }",
        json!({"id": gt}),
    )
    .await;
    assert!(edit(app, &f.ann, &anns, "A fair correction").await["errors"].is_null());
}
