//! Commitments and milestones: officials write, everyone reads, verified accounts follow.

use convene::entities::user::Role;
use serde_json::json;

use crate::helpers::*;

const CREATE: &str = "mutation($i: CreateCommitmentInput!) { createCommitment(input: $i) { commitment { id reference title status descriptionHtml } } }";

#[tokio::test]
async fn officials_write_commitments_and_anyone_reads_them() {
    let app = spawn_app().await;
    let official = user_with_role(&app, "off@example.org", "Officer", Role::Official).await;
    let member = app.verified_user("mem@example.org", "Member").await;
    let input = json!({"i": {"reference": "uk0072", "title": "Involving data users", "description": "We **will** listen.", "status": "SUBSTANTIAL"}});

    let r = app.gql(Some(&member.access), CREATE, input.clone()).await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = app.gql(None, CREATE, input.clone()).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    let unverified = app.unverified_user("unv@example.org", "Unverified").await;
    app.make_role("unv@example.org", Role::Official).await;
    let r = app
        .gql(Some(&unverified.access), CREATE, input.clone())
        .await;
    assert_eq!(error_code(&r), "EMAIL_NOT_VERIFIED", "{r}");

    let r = app.gql(Some(&official.access), CREATE, input.clone()).await;
    let c = &r["data"]["createCommitment"]["commitment"];
    assert_eq!(c["reference"], "UK0072", "{r}");
    assert_eq!(c["status"], "SUBSTANTIAL");
    assert!(c["descriptionHtml"]
        .as_str()
        .unwrap()
        .contains("<strong>will</strong>"));
    let id = c["id"].as_str().unwrap().to_string();

    let r = app.gql(Some(&official.access), CREATE, input).await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    let r = app
        .gql(
            Some(&official.access),
            CREATE,
            json!({"i": {"reference": "bad ref!", "title": "Title", "description": ""}}),
        )
        .await;
    assert_eq!(error_field(&r), "reference", "{r}");

    let update = "mutation($i: UpdateCommitmentInput!) { updateCommitment(input: $i) { commitment { title leadInstitution status } } }";
    let r = app
        .gql(
            Some(&official.access),
            update,
            json!({"i": {"id": id, "leadInstitution": "GDS", "status": "COMPLETE"}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateCommitment"]["commitment"],
        json!({"title": "Involving data users", "leadInstitution": "GDS", "status": "COMPLETE"})
    );
    let r = app
        .gql(
            Some(&member.access),
            update,
            json!({"i": {"id": id, "title": "Hijacked"}}),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");

    let add = "mutation($i: AddMilestoneInput!) { addMilestone(input: $i) { milestone { id position title dueOn status } } }";
    let mut milestone_ids = Vec::new();
    for (i, title) in ["Working groups", "Steering group", "Partnership"]
        .iter()
        .enumerate()
    {
        let r = app
            .gql(
                Some(&official.access),
                add,
                json!({"i": {"commitmentId": id, "title": title, "dueOn": "2018-06-30"}}),
            )
            .await;
        let m = &r["data"]["addMilestone"]["milestone"];
        assert_eq!(m["position"], i + 1, "{r}");
        assert_eq!(m["dueOn"], "2018-06-30");
        milestone_ids.push(m["id"].as_str().unwrap().to_string());
    }
    let r = app
        .gql(
            Some(&member.access),
            add,
            json!({"i": {"commitmentId": id, "title": "Nope"}}),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let move_it = "mutation($i: UpdateMilestoneInput!) { updateMilestone(input: $i) { milestone { position status } } }";
    let r = app
        .gql(
            Some(&official.access),
            move_it,
            json!({"i": {"id": milestone_ids[2], "position": 1, "status": "COMPLETE"}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateMilestone"]["milestone"],
        json!({"position": 1, "status": "COMPLETE"}),
        "{r}"
    );
    let r = app
        .gql(
            Some(&official.access),
            move_it,
            json!({"i": {"id": milestone_ids[0], "position": 9}}),
        )
        .await;
    assert_eq!(error_field(&r), "position");

    // Anyone, anonymous included, reads by reference, milestones in order.
    let r = app
        .gql(None, "{ commitment(reference: \"uk0072\") { title milestones { title position } followerCount viewerIsFollowing } }", json!({}))
        .await;
    let titles: Vec<&str> = r["data"]["commitment"]["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Partnership", "Working groups", "Steering group"]);
    assert_eq!(r["data"]["commitment"]["viewerIsFollowing"], false);
}

#[tokio::test]
async fn commitments_list_filters_and_pages() {
    let app = spawn_app().await;
    let official = user_with_role(&app, "off@example.org", "Officer", Role::Official).await;
    for (reference, title, status) in [
        ("UK0063", "Beneficial ownership", "LIMITED"),
        ("UK0064", "Natural resource transparency", "COMPLETE"),
        ("UK0067", "Open contracting", "LIMITED"),
        ("UK0068", "Grants data", "SUBSTANTIAL"),
        ("UK0072", "Involving data users", "SUBSTANTIAL"),
    ] {
        let r = app
            .gql(Some(&official.access), CREATE, json!({"i": {"reference": reference, "title": title, "description": format!("Policy on {title}"), "status": status}}))
            .await;
        assert!(r["errors"].is_null(), "{r}");
    }
    let q = "query($f: CommitmentFilter, $first: Int, $after: String) { commitments(filter: $f, first: $first, after: $after) { totalCount nodes { reference } pageInfo { hasNextPage endCursor } edges { cursor } } }";
    let refs = |r: &serde_json::Value| -> Vec<String> {
        r["data"]["commitments"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["reference"].as_str().unwrap().to_string())
            .collect()
    };
    let r = app.gql(None, q, json!({"f": {"status": "LIMITED"}})).await;
    assert_eq!(refs(&r), ["UK0063", "UK0067"]);
    assert_eq!(r["data"]["commitments"]["totalCount"], 2);
    let r = app.gql(None, q, json!({"f": {"search": "DATA"}})).await;
    assert_eq!(refs(&r), ["UK0068", "UK0072"], "{r}");
    let r = app.gql(None, q, json!({"f": {"search": "uk006"}})).await;
    assert_eq!(refs(&r).len(), 4);
    let r = app.gql(None, q, json!({"f": {"search": "100%_"}})).await;
    assert!(refs(&r).is_empty());

    let p1 = app.gql(None, q, json!({"first": 2})).await;
    assert_eq!(refs(&p1), ["UK0063", "UK0064"]);
    assert_eq!(p1["data"]["commitments"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(p1["data"]["commitments"]["totalCount"], 5);
    let after = p1["data"]["commitments"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap();
    assert_eq!(p1["data"]["commitments"]["edges"][1]["cursor"], after);
    let p2 = app.gql(None, q, json!({"first": 2, "after": after})).await;
    assert_eq!(refs(&p2), ["UK0067", "UK0068"]);
    let after = p2["data"]["commitments"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap();
    let p3 = app.gql(None, q, json!({"first": 2, "after": after})).await;
    assert_eq!(refs(&p3), ["UK0072"]);
    assert_eq!(p3["data"]["commitments"]["pageInfo"]["hasNextPage"], false);

    for first in [0, 101, -1] {
        let r = app.gql(None, q, json!({"first": first})).await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
        assert_eq!(error_field(&r), "first");
    }
    let r = app.gql(None, q, json!({"after": "garbage"})).await;
    assert_eq!(error_field(&r), "after", "{r}");
}

#[tokio::test]
async fn following_a_commitment_counts_once_and_can_be_undone() {
    let app = spawn_app().await;
    let official = user_with_role(&app, "off@example.org", "Officer", Role::Official).await;
    let id = create_commitment(&app, &official, "UK0072", "Involving data users").await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let follow = "mutation($id: ID!) { followCommitment(id: $id) { commitment { followerCount viewerIsFollowing } } }";
    let unfollow = "mutation($id: ID!) { unfollowCommitment(id: $id) { commitment { followerCount viewerIsFollowing } } }";
    for _ in 0..2 {
        let r = app.gql(Some(&ann.access), follow, json!({"id": id})).await;
        assert_eq!(
            r["data"]["followCommitment"]["commitment"],
            json!({"followerCount": 1, "viewerIsFollowing": true}),
            "{r}"
        );
    }
    let r = app
        .gql(Some(&official.access), follow, json!({"id": id}))
        .await;
    assert_eq!(
        r["data"]["followCommitment"]["commitment"]["followerCount"],
        2
    );
    for _ in 0..2 {
        let r = app
            .gql(Some(&ann.access), unfollow, json!({"id": id}))
            .await;
        assert_eq!(
            r["data"]["unfollowCommitment"]["commitment"],
            json!({"followerCount": 1, "viewerIsFollowing": false}),
            "{r}"
        );
    }
    let unverified = app.unverified_user("unv@example.org", "Unv").await;
    let r = app
        .gql(Some(&unverified.access), follow, json!({"id": id}))
        .await;
    assert_eq!(error_code(&r), "EMAIL_NOT_VERIFIED");
    let r = app.gql(None, follow, json!({"id": id})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
    let r = app
        .gql(
            Some(&ann.access),
            follow,
            json!({"id": uuid::Uuid::now_v7().to_string()}),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
}

#[tokio::test]
async fn concurrent_follows_and_unfollows_keep_the_counter_equal_to_the_rows() {
    let app = spawn_app().await;
    let official = user_with_role(&app, "off@example.org", "Officer", Role::Official).await;
    let id = create_commitment(&app, &official, "UK0072", "Involving data users").await;
    let mut people = Vec::new();
    for chunk in (0..20).collect::<Vec<_>>().chunks(10) {
        people.extend(
            futures::future::join_all(chunk.iter().map(|i| app.verified_user_quick(i))).await,
        );
    }
    let follow = "mutation($id: ID!) { followCommitment(id: $id) { commitment { id } } }";
    let unfollow = "mutation($id: ID!) { unfollowCommitment(id: $id) { commitment { id } } }";
    // Everyone follows twice at once, then half unfollow twice at once while the other
    // half follow again.
    let twice = people
        .iter()
        .chain(people.iter())
        .map(|p| app.gql(Some(&p.access), follow, json!({"id": id})));
    for r in futures::future::join_all(twice).await {
        assert!(r["errors"].is_null(), "{r}");
    }
    let mixed = people.iter().enumerate().flat_map(|(i, p)| {
        let q = if i % 2 == 0 { unfollow } else { follow };
        [
            app.gql(Some(&p.access), q, json!({"id": id})),
            app.gql(Some(&p.access), q, json!({"id": id})),
        ]
    });
    futures::future::join_all(mixed).await;
    let r = app
        .gql(
            None,
            "query($id: ID) { commitment(id: $id) { followerCount } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r["data"]["commitment"]["followerCount"], 10, "{r}");
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM commitment_follows").await,
        10
    );
}

#[tokio::test]
async fn seeding_the_demo_plan_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let seed = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_convene"))
            .args(["seed", "--demo"])
            .env(
                "CONVENE_CONFIG_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
            )
            .env("CONVENE__DATABASE__URL", &url)
            .env("CONVENE__AUTH__SIGNING_KEY", SIGNING_KEY)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let first = seed();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("seeded 27 commitments with 8 milestones"),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let second = seed();
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout)
        .contains("seeded 0 commitments with 0 milestones (27 already there)"));

    let app = spawn_app_on(tempfile::tempdir().unwrap(), url, |_| {}).await;
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM commitments").await, 27);
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM milestones").await, 8);
    let r = app
        .gql(None, "{ commitment(reference: \"UK0072\") { title leadInstitution status actionPlan policyArea description milestones { position title dueOn } } }", json!({}))
        .await;
    let c = &r["data"]["commitment"];
    assert_eq!(
        c["title"],
        "Involving data users in shaping the future of open data"
    );
    assert_eq!(
        c["leadInstitution"],
        "Cabinet Office (Government Digital Service)"
    );
    assert_eq!(c["status"], "SUBSTANTIAL");
    assert_eq!(c["policyArea"], "Capacity Building");
    assert!(c["description"].as_str().unwrap().contains("Objective"));
    assert_eq!(c["milestones"].as_array().unwrap().len(), 8);
    assert_eq!(c["milestones"][0]["dueOn"], "2018-06-30");
    assert!(c["milestones"][0]["title"]
        .as_str()
        .unwrap()
        .starts_with("Develop a strong, ongoing and collaborative conversation"));
}
