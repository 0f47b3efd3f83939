//! A page of suggestions reads only the columns its selection shows (`services::columns`):
//! every field still reads what it read whole, and the statement names no column the page
//! does not need.

use convene::entities::user::Role;
use convene::entities::{commitment, suggestion, user};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
use serde_json::json;

use crate::helpers::*;

/// Three suggestions whose columns all differ from their defaults: statuses, counts, answer
/// and update times, a duplicate, a hidden one, authors with every profile column set.
async fn varied_suggestions(app: &TestApp, official: &Session, commitment: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, name) in ["Ada", "Bo", "Cy"].into_iter().enumerate() {
        let author = app
            .verified_user(&format!("{}@example.org", name.to_lowercase()), name)
            .await;
        let r = app
            .gql(
                Some(&author.access),
                "mutation($i: CreateSuggestionInput!) { createSuggestion(input: $i) { suggestion { id } } }",
                json!({"i": {"commitmentId": commitment, "title": format!("Suggestion number {i}"), "body": format!("Body *{i}*")}}),
            )
            .await;
        let id = r["data"]["createSuggestion"]["suggestion"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_string();
        ids.push(id);
    }
    // An answer moves the first through the workflow and sets its answer time.
    let r = app
        .gql(
            Some(&official.access),
            "mutation($i: PublishResponseInput!) { publishResponse(input: $i) { response { id } } }",
            json!({"i": {"suggestionId": ids[0], "newStatus": "ACCEPTED", "body": "We will."}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let db = &app.db;
    let hours = chrono::Duration::hours;
    let now = convene::db::now();
    for (i, id) in ids.iter().enumerate() {
        let uuid = uuid::Uuid::parse_str(id).unwrap();
        let s = suggestion::Entity::find_by_id(uuid)
            .one(db)
            .await
            .unwrap()
            .unwrap();
        let author_id = s.author_id;
        let mut m = s.into_active_model();
        let n = i32::try_from(i).unwrap();
        m.support_count = Set(10 + n);
        m.follower_count = Set(20 + n);
        m.trending_score = Set(30 + n);
        m.updated_at = Set(now + hours(2 + i64::from(n)));
        if i == 1 {
            m.duplicate_of_id = Set(Some(uuid::Uuid::parse_str(&ids[0]).unwrap()));
            m.status = Set(suggestion::Status::Duplicate);
            m.awaiting_response = Set(false);
        }
        if i == 2 {
            m.hidden = Set(true);
        }
        m.update(db).await.unwrap();
        let mut a = user::Entity::find_by_id(author_id)
            .one(db)
            .await
            .unwrap()
            .unwrap()
            .into_active_model();
        a.bio = Set(format!("Bio {i}"));
        a.organisation = Set(format!("Organisation {i}"));
        a.sector = Set(user::Sector::Academic);
        a.role = Set(Role::Organiser);
        if i == 1 {
            a.email_verified_at = Set(None);
        }
        a.update(db).await.unwrap();
    }
    let mut c = commitment::Entity::find_by_id(uuid::Uuid::parse_str(commitment).unwrap())
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .into_active_model();
    c.follower_count = Set(7);
    c.policy_area = Set("Open contracting".into());
    c.updated_at = Set(now + hours(9));
    c.update(db).await.unwrap();
    ids
}

/// An app with an official, an admin, a commitment and its `varied_suggestions`.
struct Varied {
    app: TestApp,
    official: Session,
    admin: Session,
    commitment: String,
    ids: Vec<String>,
}

async fn varied_app() -> Varied {
    let app = spawn_app().await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let admin = user_with_role(&app, "admin@example.org", "Ann Admin", Role::Admin).await;
    let commitment = create_commitment(&app, &official, "UK0072", "Involving data users").await;
    let ids = varied_suggestions(&app, &official, &commitment).await;
    Varied {
        app,
        official,
        admin,
        commitment,
        ids,
    }
}

/// The fields of a type that take no required argument, each with the selection that
/// shows it: a leaf as itself, an object by its `id` when it has one.
async fn fields_of(app: &TestApp, type_name: &str) -> Vec<String> {
    const TYPE: &str = "query($n: String!) { __type(name: $n) { fields { name args { type { kind } } type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }";
    let r = app.gql(None, TYPE, json!({"n": type_name})).await;
    let mut out = Vec::new();
    for f in r["data"]["__type"]["fields"].as_array().unwrap() {
        if f["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["type"]["kind"] == "NON_NULL")
        {
            continue;
        }
        let mut ty = &f["type"];
        while ty["name"].is_null() {
            ty = &ty["ofType"];
        }
        let name = f["name"].as_str().unwrap();
        out.push(match ty["kind"].as_str().unwrap() {
            "SCALAR" | "ENUM" => name.to_string(),
            "OBJECT" => {
                let inner = app.gql(None, TYPE, json!({"n": ty["name"]})).await;
                let has_id = inner["data"]["__type"]["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|g| g["name"] == "id");
                if has_id {
                    format!("{name} {{ id }}")
                } else {
                    format!("{name} {{ __typename }}")
                }
            }
            _ => format!("{name} {{ __typename }}"),
        });
    }
    assert!(out.len() > 5, "{type_name}: {r}");
    out
}

/// Each field of a suggestion, of its author and of its commitment, read through a page
/// whose selection is that field alone (so the page reads the fewest columns), equals the
/// same field read whole through `suggestion(id:)`, for an anonymous viewer and an admin
/// (who sees hidden text and email addresses).
#[tokio::test]
async fn every_field_reads_the_same_through_a_narrowed_page() {
    let Varied {
        app,
        admin,
        commitment,
        ids,
        ..
    } = varied_app().await;

    let mut selections: Vec<(String, String)> = Vec::new();
    for f in fields_of(&app, "Suggestion").await {
        selections.push((f.clone(), f));
    }
    for (relation, ty) in [("author", "User"), ("commitment", "Commitment")] {
        for f in fields_of(&app, ty).await {
            selections.push((format!("{relation}.{f}"), format!("{relation} {{ {f} }}")));
        }
    }
    for token in [None, Some(admin.access.as_str())] {
        for (label, selection) in &selections {
            let page = app
                .gql(
                    token,
                    &format!("query($c: ID!) {{ suggestions(filter: {{commitmentId: $c}}, orderBy: NEW, first: 10) {{ nodes {{ id {selection} }} }} }}"),
                    json!({"c": commitment}),
                )
                .await;
            assert!(page["errors"].is_null(), "{label}: {page}");
            let whole_query = format!(
                "{{ {} }}",
                ids.iter()
                    .enumerate()
                    .map(|(i, id)| format!("s{i}: suggestion(id: \"{id}\") {{ id {selection} }}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            let whole = app.gql(token, &whole_query, json!({})).await;
            assert!(whole["errors"].is_null(), "{label}: {whole}");
            let nodes = page["data"]["suggestions"]["nodes"].as_array().unwrap();
            assert_eq!(nodes.len(), ids.len());
            for (i, id) in ids.iter().enumerate() {
                let listed = nodes.iter().find(|n| n["id"] == id.as_str()).unwrap();
                assert_eq!(
                    listed,
                    &whole["data"][format!("s{i}")],
                    "{label} (viewer {})",
                    if token.is_some() {
                        "admin"
                    } else {
                        "anonymous"
                    }
                );
            }
        }
    }
    // The data is varied enough for a field read as its default to show.
    let page = app
        .gql(
            Some(&admin.access),
            "query($c: ID!) { suggestions(filter: {commitmentId: $c}, orderBy: NEW) { nodes { status hidden respondedAt duplicateOf { id } author { bio sector role emailVerified } commitment { policyArea followerCount } } } }",
            json!({"c": commitment}),
        )
        .await;
    let nodes = page["data"]["suggestions"]["nodes"].as_array().unwrap();
    assert!(nodes.iter().any(|n| n["status"] == "DUPLICATE"));
    assert!(nodes.iter().any(|n| n["hidden"] == true));
    assert!(nodes.iter().any(|n| !n["respondedAt"].is_null()));
    assert!(nodes.iter().any(|n| !n["duplicateOf"].is_null()));
    assert!(nodes.iter().all(|n| n["author"]["sector"] == "ACADEMIC"));
    assert!(nodes.iter().any(|n| n["author"]["emailVerified"] == false));
    assert!(nodes
        .iter()
        .all(|n| n["commitment"]["policyArea"] == "Open contracting"));
}

/// The one statement of a page of suggestions names the columns its selection shows and
/// those every row needs, never bodies it does not show, and never the password hash.
#[tokio::test]
async fn a_page_reads_only_the_columns_its_selection_shows() {
    let (app, seen) = spawn_app_recording_statements(|_| {}).await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let commitment = create_commitment(&app, &official, "UK0072", "Involving data users").await;
    varied_suggestions(&app, &official, &commitment).await;

    let page_for = |token: Option<String>, query: String| {
        let app = &app;
        let seen = seen.clone();
        async move {
            seen.clear();
            let r = app.gql(token.as_deref(), &query, json!({})).await;
            assert!(r["errors"].is_null(), "{r}");
            // The outbox worker may run beside the request: only the list's statement counts.
            let statements: Vec<String> = seen
                .taken()
                .iter()
                .filter(|sql| sql.contains("FROM \"suggestions\""))
                .cloned()
                .collect();
            assert_eq!(statements.len(), 1, "{statements:?}");
            let sql = statements[0].clone();
            // The SELECT list alone: the join conditions name ids too.
            sql[..sql.find(" FROM ").unwrap()].to_string()
        }
    };
    let page = |query: String| page_for(None, query);

    // The benchmark's top page, for an anonymous viewer: what it shows, `hidden` (whether
    // the title shows) and nothing else; not even the foreign keys, as neither the author's
    // nor the commitment's id is shown.
    let top = page(
        "{ suggestions(first: 20) { nodes { id title supportCount author { displayName } commitment { reference } } } }".into(),
    )
    .await;
    assert_eq!(
        top,
        "SELECT \"suggestions\".\"id\", \"suggestions\".\"title\", \"suggestions\".\"support_count\", \"suggestions\".\"hidden\", \"users\".\"display_name\", \"commitments\".\"reference\""
    );
    for unwanted in [
        "\"body\"",
        "\"body_html\"",
        "\"email\"",
        "\"password_hash\"",
        "\"bio\"",
        "\"description\"",
        "\"action_plan\"",
        "\"responded_at\"",
        "\"updated_at\"",
    ] {
        assert!(!top.contains(unwanted), "{unwanted} read by {top}");
    }

    // What a selection reaches through a fragment and an alias is read.
    let wider = page(
        "{ suggestions(first: 20) { edges { node { ...F other: author { bio } state: status } } } } fragment F on Suggestion { bodyHtml commitment { description } }".into(),
    )
    .await;
    for wanted in [
        "\"body\"",
        "\"body_html\"",
        "\"bio\"",
        "\"description\"",
        "\"status\"",
    ] {
        assert!(wider.contains(wanted), "{wanted} missing from {wider}");
    }
    assert!(!wider.contains("\"password_hash\""), "{wider}");
    assert!(!wider.contains("\"display_name\""), "{wider}");

    // A foreign key is read when the joined object's own selection needs its id, and the
    // author's for every signed-in viewer (who may see a hidden text of theirs).
    let author_id = "\"suggestions\".\"author_id\"";
    let commitment_id = "\"suggestions\".\"commitment_id\"";
    for (token, selection, author, commitment) in [
        (None, "author { id displayName }", true, false),
        (None, "commitment { id }", false, true),
        (None, "commitment { viewerIsFollowing }", false, true),
        (None, "author { email }", true, false),
        (
            None,
            "title author { displayName } commitment { title }",
            false,
            false,
        ),
        (Some(official.access.clone()), "title", true, false),
    ] {
        let read = page_for(
            token.clone(),
            format!("{{ suggestions(first: 20) {{ nodes {{ id {selection} }} }} }}"),
        )
        .await;
        let label = format!("{selection} (signed in: {})", token.is_some());
        assert_eq!(read.contains(author_id), author, "{label}: {read}");
        assert_eq!(read.contains(commitment_id), commitment, "{label}: {read}");
    }
}

/// A list's objects answer their plain fields without a resolver each (`graphql::plain`);
/// a selection with a fragment goes async-graphql's own way. Every field of a suggestion,
/// of its author and of its commitment, and of a commitment in `commitments`, reads the
/// same both ways, for an anonymous viewer and an admin; so does a selection with aliases,
/// a response key given twice (merged) and `__typename` at each level.
#[tokio::test]
async fn every_field_reads_the_same_either_way() {
    let Varied {
        app,
        official,
        admin,
        commitment,
        ..
    } = varied_app().await;
    create_commitment(&app, &official, "UK0073", "Another commitment").await;

    let mut suggestion_selections: Vec<String> = fields_of(&app, "Suggestion").await;
    for (relation, ty) in [("author", "User"), ("commitment", "Commitment")] {
        for f in fields_of(&app, ty).await {
            suggestion_selections.push(format!("{relation} {{ {f} }}"));
        }
    }
    suggestion_selections.push(
        "__typename id t: title t: title supportCount n: supportCount \
         author { __typename displayName } author { id bio } \
         c: commitment { reference __typename } c: commitment { title }"
            .into(),
    );
    let commitment_selections = fields_of(&app, "Commitment").await;

    let pages = [
        (
            "suggestions",
            "Suggestion",
            suggestion_selections,
            "query($c: ID!) { suggestions(filter: {commitmentId: $c}, orderBy: NEW) { NODES } }",
        ),
        (
            "commitments",
            "Commitment",
            commitment_selections,
            "{ commitments { NODES } }",
        ),
    ];
    for token in [None, Some(admin.access.as_str())] {
        for (list, ty, selections, query) in &pages {
            for selection in selections {
                let plain = query.replace("NODES", &format!("nodes {{ id {selection} }}"));
                let generic = query.replace(
                    "NODES",
                    &format!("nodes {{ ... on {ty} {{ id {selection} }} }}"),
                );
                let vars = if query.contains("$c") {
                    json!({"c": commitment})
                } else {
                    json!({})
                };
                // Byte for byte: a plain selection with no key twice is written
                // straight from the list's rows (`plain::JsonText`), the fragment's
                // through async-graphql's tree of maps.
                let text = app.gql_text(token, &plain, vars.clone()).await;
                let b = app.gql_text(token, &generic, vars).await;
                let a: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert!(a["errors"].is_null(), "{selection}: {a}");
                let nodes = a["data"][list]["nodes"].as_array().unwrap();
                assert!(nodes.len() >= 2, "{selection}: {a}");
                assert_eq!(
                    text,
                    b,
                    "{list} {{ {selection} }}, admin: {}",
                    token.is_some()
                );
            }
        }
    }
    // A list selected twice under one key is merged item by item, whichever way each
    // part is answered.
    for query in [
        "{ suggestions { nodes { id } nodes { title author { displayName } } } }",
        "{ suggestions { nodes { id } } suggestions { nodes { title author { displayName } } } }",
        "{ suggestions { nodes { id author { id } author { displayName } } } }",
    ] {
        let r = app.gql(None, query, json!({})).await;
        assert!(r["errors"].is_null(), "{query}: {r}");
        let node = &r["data"]["suggestions"]["nodes"][0];
        assert!(node["id"].is_string(), "{query}: {r}");
        assert!(node["author"]["displayName"].is_string(), "{query}: {r}");
    }
    // The merged selection really merged: both parts of the repeated author are there.
    let r = app
        .gql(
            None,
            "{ suggestions { nodes { t: title t: title author { displayName } author { bio } } } }",
            json!({}),
        )
        .await;
    let node = &r["data"]["suggestions"]["nodes"][0];
    assert!(node["t"].is_string(), "{r}");
    assert!(node["author"]["displayName"].is_string(), "{r}");
    assert!(node["author"]["bio"].is_string(), "{r}");
}
