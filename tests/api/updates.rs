//! Official updates: who publishes them, the milestone they move on, their thread and the
//! followers' event, the commitment's updates newest first, and suggestions answering them.

use convene::entities::user::Role;
use convene::entities::{suggestion, thread};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::*;

pub const PUBLISH: &str = "mutation($i: PublishCommitmentUpdateInput!) { publishCommitmentUpdate(input: $i) { update { id title body bodyHtml hidden milestoneStatus milestone { id status } author { displayName } commitment { id } suggestionCount publishedAt } } }";
const CREATE_SUGGESTION: &str = "mutation($i: CreateSuggestionInput!) { createSuggestion(input: $i) { suggestion { id inReplyToUpdate { id title } } } }";
const UPDATE: &str = "query($id: ID!) { commitmentUpdate(id: $id) { id title suggestionCount suggestions(first: 10) { totalCount nodes { id title } } } }";

fn uuid(id: &str) -> uuid::Uuid {
    id.parse().expect("a UUID")
}

/// Publishes an update as `who` and returns the whole answer.
pub async fn publish(app: &TestApp, who: &Session, input: Value) -> Value {
    app.gql(Some(&who.access), PUBLISH, json!({ "i": input }))
        .await
}

/// Publishes an update and returns its ID.
pub async fn publish_update(app: &TestApp, who: &Session, commitment: &str, title: &str) -> String {
    let r = publish(
        app,
        who,
        json!({"commitmentId": commitment, "title": title, "body": format!("News: {title}")}),
    )
    .await;
    r["data"]["publishCommitmentUpdate"]["update"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("publishCommitmentUpdate failed: {r}"))
        .to_string()
}

async fn add_milestone(app: &TestApp, who: &Session, commitment: &str, title: &str) -> String {
    let r = app
        .gql(
            Some(&who.access),
            "mutation($i: AddMilestoneInput!) { addMilestone(input: $i) { milestone { id } } }",
            json!({"i": {"commitmentId": commitment, "title": title}}),
        )
        .await;
    r["data"]["addMilestone"]["milestone"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("addMilestone failed: {r}"))
        .to_string()
}

#[tokio::test]
async fn officials_and_admins_publish_updates_that_move_a_milestone_and_open_a_thread() {
    let app = spawn_app().await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let admin = user_with_role(&app, "admin@example.org", "Ada", Role::Admin).await;
    let member = app.verified_user("ann@example.org", "Ann").await;
    let commitment = create_commitment(&app, &official, "UK0072", "Open contracts").await;
    let milestone = add_milestone(&app, &official, &commitment, "Publish the register").await;

    let r = publish(
        &app,
        &official,
        json!({"commitmentId": commitment, "title": "  The register is half done ", "body": "We published **half** <script>alert(1)</script>", "milestoneId": milestone, "milestoneStatus": "SUBSTANTIAL"}),
    )
    .await;
    let u = &r["data"]["publishCommitmentUpdate"]["update"];
    assert_eq!(u["title"], "The register is half done", "{r}");
    assert_eq!(u["milestoneStatus"], "SUBSTANTIAL");
    assert_eq!(u["milestone"]["id"], milestone.as_str());
    // The milestone moved on in the same write.
    assert_eq!(u["milestone"]["status"], "SUBSTANTIAL");
    assert_eq!(u["author"]["displayName"], "Olu");
    assert_eq!(u["hidden"], false);
    let html = u["bodyHtml"].as_str().unwrap();
    assert!(html.contains("<strong>half</strong>"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    let id = u["id"].as_str().unwrap().to_string();

    // Its thread exists, and the followers' event is queued once.
    let threads = thread::Entity::find()
        .filter(thread::Column::Context.eq(thread::Context::Update))
        .filter(thread::Column::UpdateId.eq(uuid(&id)))
        .filter(thread::Column::CommitmentId.eq(uuid(&commitment)))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(threads, 1);
    assert_eq!(
        count(
            &app.db,
            &format!("SELECT COUNT(*) FROM outbox WHERE kind = 'notification' AND template = 'commitment_update_published' AND recipient = 'audience:{commitment}'"),
        )
        .await,
        1
    );
    let ctx = convene::startup::services(std::sync::Arc::new(app.settings.clone()), app.db.clone())
        .unwrap();
    let thread = convene::services::updates::thread_of_update(&ctx.db, id.parse().unwrap())
        .await
        .unwrap()
        .expect("the update's thread");
    assert_eq!(thread.title, "The register is half done");

    // An admin publishes too; without a milestone nothing else moves.
    let r = publish(
        &app,
        &admin,
        json!({"commitmentId": commitment, "title": "A note", "body": "From the admins."}),
    )
    .await;
    assert!(
        r["data"]["publishCommitmentUpdate"]["update"]["milestone"].is_null(),
        "{r}"
    );

    // Members and the anonymous may not.
    let input = json!({"commitmentId": commitment, "title": "Mine", "body": "Hello"});
    assert_eq!(
        error_code(&publish(&app, &member, input.clone()).await),
        "FORBIDDEN"
    );
    let anon = app.gql(None, PUBLISH, json!({ "i": input })).await;
    assert_eq!(error_code(&anon), "UNAUTHENTICATED");
}

#[tokio::test]
async fn publishing_refuses_bad_input_naming_the_field() {
    let app = spawn_app().await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let commitment = create_commitment(&app, &official, "UK0072", "Open contracts").await;
    let other = create_commitment(&app, &official, "UK0073", "Open budgets").await;
    let elsewhere = add_milestone(&app, &official, &other, "Budget data").await;
    let cases = [
        (
            json!({"commitmentId": commitment, "title": "  ", "body": "x"}),
            "title",
        ),
        (
            json!({"commitmentId": commitment, "title": "x".repeat(301), "body": "x"}),
            "title",
        ),
        (
            json!({"commitmentId": commitment, "title": "Fine", "body": " "}),
            "body",
        ),
        (
            json!({"commitmentId": commitment, "title": "Fine", "body": "x", "milestoneId": elsewhere}),
            "milestoneId",
        ),
        (
            json!({"commitmentId": commitment, "title": "Fine", "body": "x", "milestoneStatus": "COMPLETE"}),
            "milestoneStatus",
        ),
    ];
    for (input, field) in cases {
        let r = publish(&app, &official, input).await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
        assert_eq!(error_field(&r), field, "{r}");
    }
    let r = publish(
        &app,
        &official,
        json!({"commitmentId": uuid::Uuid::now_v7().to_string(), "title": "Fine", "body": "x"}),
    )
    .await;
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
    // Nothing was written by the refusals; the other commitment's milestone did not move.
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM commitment_updates").await,
        0
    );
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(*) FROM threads WHERE context = 'UPDATE'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_commitments_updates_are_listed_newest_first_and_page_on() {
    let app = spawn_app().await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let a = create_commitment(&app, &official, "UK0001", "First").await;
    let b = create_commitment(&app, &official, "UK0002", "Second").await;
    for t in ["One", "Two", "Three"] {
        publish_update(&app, &official, &a, t).await;
    }
    publish_update(&app, &official, &b, "Only").await;

    let q = "query($id: ID!, $after: String) { commitment(id: $id) { updates(first: 2, after: $after) { totalCount nodes { title } pageInfo { hasNextPage endCursor } } } }";
    let r = app.gql(None, q, json!({"id": a})).await;
    let page = &r["data"]["commitment"]["updates"];
    assert_eq!(
        page["nodes"],
        json!([{"title": "Three"}, {"title": "Two"}]),
        "{r}"
    );
    assert_eq!(page["totalCount"], 3);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let r = app
        .gql(
            None,
            q,
            json!({"id": a, "after": page["pageInfo"]["endCursor"]}),
        )
        .await;
    let page = &r["data"]["commitment"]["updates"];
    assert_eq!(page["nodes"], json!([{"title": "One"}]), "{r}");
    assert_eq!(page["pageInfo"]["hasNextPage"], false);

    // A list of commitments reads every first page together, each with its own updates.
    let r = app
        .gql(
            None,
            "{ commitments(first: 10) { nodes { reference updates(first: 1) { nodes { title } pageInfo { hasNextPage } } } } }",
            json!({}),
        )
        .await;
    let nodes = r["data"]["commitments"]["nodes"]
        .as_array()
        .expect("commitments");
    let by_ref = |reference: &str| {
        nodes
            .iter()
            .find(|n| n["reference"] == reference)
            .unwrap_or_else(|| panic!("{reference} missing: {r}"))["updates"]
            .clone()
    };
    assert_eq!(
        by_ref("UK0001"),
        json!({"nodes": [{"title": "Three"}], "pageInfo": {"hasNextPage": true}})
    );
    assert_eq!(
        by_ref("UK0002"),
        json!({"nodes": [{"title": "Only"}], "pageInfo": {"hasNextPage": false}})
    );
}

#[tokio::test]
async fn readers_answer_an_update_with_a_suggestion_of_the_same_commitment() {
    let app = spawn_app().await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let commitment = create_commitment(&app, &official, "UK0072", "Open contracts").await;
    let other = create_commitment(&app, &official, "UK0073", "Open budgets").await;
    let update = publish_update(&app, &official, &commitment, "Register half done").await;

    let r = app
        .gql(
            Some(&ann.access),
            CREATE_SUGGESTION,
            json!({"i": {"commitmentId": commitment, "title": "Publish the other half", "body": "Soon, please.", "inReplyToUpdateId": update}}),
        )
        .await;
    let s = &r["data"]["createSuggestion"]["suggestion"];
    assert_eq!(s["inReplyToUpdate"]["id"], update.as_str(), "{r}");
    assert_eq!(s["inReplyToUpdate"]["title"], "Register half done");
    let answer = s["id"].as_str().unwrap().to_string();
    // An unrelated suggestion does not count.
    create_suggestion(&app, &ann, &commitment, "Something else entirely").await;

    let r = app.gql(None, UPDATE, json!({"id": update})).await;
    let u = &r["data"]["commitmentUpdate"];
    assert_eq!(u["suggestionCount"], 1, "{r}");
    assert_eq!(u["suggestions"]["totalCount"], 1);
    assert_eq!(
        u["suggestions"]["nodes"],
        json!([{"id": answer, "title": "Publish the other half"}])
    );

    // An update of another commitment, or none at all, is refused with the field.
    for bad in [update.clone(), uuid::Uuid::now_v7().to_string()] {
        let r = app
            .gql(
                Some(&ann.access),
                CREATE_SUGGESTION,
                json!({"i": {"commitmentId": other, "title": "Wrong place", "body": "Hmm.", "inReplyToUpdateId": bad}}),
            )
            .await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
        assert_eq!(error_field(&r), "inReplyToUpdateId", "{r}");
    }
    let r = app.gql(None, UPDATE, json!({"id": update})).await;
    assert_eq!(r["data"]["commitmentUpdate"]["suggestionCount"], 1, "{r}");
    let written = suggestion::Entity::find()
        .filter(suggestion::Column::CommitmentId.eq(uuid(&other)))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(written, 0);
}

#[tokio::test]
async fn a_page_of_updates_costs_the_same_statements_whatever_its_size() {
    let (app, statements) = spawn_app_recording_statements(|_| {}).await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let admin = user_with_role(&app, "admin@example.org", "Ada", Role::Admin).await;
    let commitment = create_commitment(&app, &official, "UK0072", "Open contracts").await;
    let milestone = add_milestone(&app, &official, &commitment, "Publish the register").await;
    for i in 0..12 {
        let who = if i % 2 == 0 { &official } else { &admin };
        let r = publish(
            &app,
            who,
            json!({"commitmentId": commitment, "title": format!("Update {i}"), "body": "News.", "milestoneId": milestone}),
        )
        .await;
        assert!(r["errors"].is_null(), "{r}");
    }
    // The worker's fan-out of the setup's events is not the page's cost.
    app.notifications_settled().await;
    let q = "query($c: ID!, $n: Int) { commitment(id: $c) { updates(first: $n) { nodes { title bodyHtml hidden author { displayName } milestone { title } commitment { reference } } } } }";
    let mut costs = Vec::new();
    for n in [2, 10] {
        statements.clear();
        let r = app.gql(None, q, json!({"c": commitment, "n": n})).await;
        let cost = statements.count();
        let nodes = r["data"]["commitment"]["updates"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"));
        assert_eq!(nodes.len(), n);
        assert!(nodes
            .iter()
            .all(|n| n["milestone"]["title"] == "Publish the register"));
        costs.push(cost);
    }
    assert_eq!(
        costs[0], costs[1],
        "statements for 2 vs 10 updates: {costs:?}"
    );
}

#[tokio::test]
async fn an_updates_thread_is_reached_from_the_update_and_answered_there() {
    let app = spawn_app().await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let commitment = create_commitment(&app, &official, "UK0072", "Open contracts").await;
    let update = publish_update(&app, &official, &commitment, "Register half done").await;

    let q = "query($id: ID!) { commitmentUpdate(id: $id) { thread { id title postCount context { __typename ... on CommitmentUpdate { id } } } } }";
    let r = app.gql(None, q, json!({"id": update})).await;
    let t = &r["data"]["commitmentUpdate"]["thread"];
    assert_eq!(t["title"], "Register half done", "{r}");
    assert_eq!(t["context"]["__typename"], "CommitmentUpdate");
    assert_eq!(t["context"]["id"], update.as_str());
    assert_eq!(t["postCount"], 0);
    let thread = t["id"].as_str().unwrap().to_string();

    let r = app
        .gql(
            Some(&ann.access),
            "mutation($i: ReplyToThreadInput!) { replyToThread(input: $i) { post { id thread { postCount } } } }",
            json!({"i": {"threadId": thread, "body": "Which half?"}}),
        )
        .await;
    assert_eq!(
        r["data"]["replyToThread"]["post"]["thread"]["postCount"], 1,
        "{r}"
    );
}

#[tokio::test]
async fn a_hidden_suggestions_thread_title_is_masked_like_the_suggestion() {
    let app = spawn_app().await;
    let admin = user_with_role(&app, "admin@example.org", "Ada", Role::Admin).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let commitment = create_commitment(&app, &admin, "UK0072", "Open contracts").await;
    let s = create_suggestion(&app, &ann, &commitment, "My phone number is 0123").await;
    let r = app
        .gql(
            Some(&admin.access),
            "mutation($i: ModerateContentInput!) { hideContent(input: $i) { content { hidden } } }",
            json!({"i": {"suggestionId": s, "note": "personal data"}}),
        )
        .await;
    assert_eq!(r["data"]["hideContent"]["content"]["hidden"], true, "{r}");

    let q = "query($id: ID!) { suggestion(id: $id) { thread { title } } }";
    for (who, expected) in [
        (None, "[hidden by a moderator]"),
        (Some(&bob), "[hidden by a moderator]"),
        (Some(&ann), "My phone number is 0123"),
        (Some(&admin), "My phone number is 0123"),
    ] {
        let r = app
            .gql(who.map(|w| w.access.as_str()), q, json!({"id": s}))
            .await;
        assert_eq!(r["data"]["suggestion"]["thread"]["title"], expected, "{r}");
    }
}
