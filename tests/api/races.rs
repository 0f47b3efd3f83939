//! One outcome under concurrency: conflicting official responses, opposite duplicates, a
//! merge while supports arrive, and concurrent milestones. Each race is run for many rounds
//! on PostgreSQL (READ COMMITTED, where missing row locks show) and a few on SQLite.

use std::collections::HashSet;

use convene::entities::user::Role;
use convene::entities::{suggestion, suggestion_follow, support};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const RESPOND: &str = "mutation($i: PublishResponseInput!) { publishResponse(input: $i) { response { newStatus } suggestion { status } } }";
const SUPPORT: &str =
    "mutation($id: ID!) { supportSuggestion(id: $id) { suggestion { supportCount } } }";
const STATE: &str = "query($id: ID!) { suggestion(id: $id) { status supportCount followerCount viewerHasSupported duplicateOf { id } responses { newStatus } } }";
const ADD_MILESTONE: &str =
    "mutation($i: AddMilestoneInput!) { addMilestone(input: $i) { milestone { id position } } }";
const MOVE_MILESTONE: &str =
    "mutation($i: UpdateMilestoneInput!) { updateMilestone(input: $i) { milestone { position } } }";
const MILESTONES: &str =
    "query($id: ID) { commitment(id: $id) { milestones { id title position } } }";

/// Rounds per race: enough on PostgreSQL for an unlocked read-check-write to lose at least
/// once; SQLite serialises writers, so a few show that the same code is right there too.
fn rounds() -> usize {
    if is_postgres() {
        20
    } else {
        4
    }
}

struct Stage {
    app: TestApp,
    officials: [Session; 2],
    authors: [Session; 2],
    commitment: String,
}

async fn stage() -> Stage {
    let app = spawn_app().await;
    let (o1, o2, a1, a2) = futures::join!(
        user_with_role(&app, "olu@example.org", "Olu Official", Role::Official),
        user_with_role(&app, "oona@example.org", "Oona Official", Role::Official),
        app.verified_user("ann@example.org", "Ann"),
        app.verified_user("bo@example.org", "Bo"),
    );
    let commitment = create_commitment(&app, &o1, "UK0072", "Involving data users").await;
    Stage {
        app,
        officials: [o1, o2],
        authors: [a1, a2],
        commitment,
    }
}

impl TestApp {
    async fn publish_response(&self, official: &Session, input: Value) -> Value {
        self.gql(Some(&official.access), RESPOND, json!({ "i": input }))
            .await
    }

    async fn suggestion_state(&self, token: Option<&str>, id: &str) -> Value {
        let r = self.gql(token, STATE, json!({ "id": id })).await;
        assert!(r["errors"].is_null(), "{r}");
        r["data"]["suggestion"].clone()
    }
}

fn succeeded(r: &Value) -> bool {
    r["errors"].is_null() && r["data"]["publishResponse"].is_object()
}

fn decline(id: &str) -> Value {
    json!({"suggestionId": id, "newStatus": "DECLINED", "body": "Out of scope for this action plan."})
}

fn duplicate(id: &str, of: &str) -> Value {
    json!({"suggestionId": id, "newStatus": "DUPLICATE", "duplicateOfId": of, "body": "Asked before."})
}

/// Supports and followers in the tables, next to the counters on the row.
async fn rows_and_counters(app: &TestApp, id: &str) -> ((u64, u64), (i32, i32)) {
    let uuid: Uuid = id.parse().expect("a suggestion id");
    let supports = support::Entity::find()
        .filter(support::Column::SuggestionId.eq(uuid))
        .count(&app.db)
        .await
        .expect("count supports");
    let follows = suggestion_follow::Entity::find()
        .filter(suggestion_follow::Column::SuggestionId.eq(uuid))
        .count(&app.db)
        .await
        .expect("count follows");
    let row = suggestion::Entity::find_by_id(uuid)
        .one(&app.db)
        .await
        .expect("read the suggestion")
        .expect("the suggestion exists");
    ((supports, follows), (row.support_count, row.follower_count))
}

async fn assert_counters_match_rows(app: &TestApp, id: &str) {
    let ((supports, follows), (support_count, follower_count)) = rows_and_counters(app, id).await;
    assert_eq!(
        i64::from(support_count),
        supports as i64,
        "support_count of {id}"
    );
    assert_eq!(
        i64::from(follower_count),
        follows as i64,
        "follower_count of {id}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_responses_at_once_leave_exactly_one_winner() {
    let st = stage().await;
    let app = &st.app;
    let [olu, oona] = &st.officials;
    for round in 0..rounds() {
        let id = create_suggestion(
            app,
            &st.authors[0],
            &st.commitment,
            &format!("Round {round}: open the register"),
        )
        .await;
        let original = create_suggestion(
            app,
            &st.authors[1],
            &st.commitment,
            &format!("Round {round}: publish the register"),
        )
        .await;
        let r = app
            .publish_response(
                olu,
                json!({"suggestionId": id, "newStatus": "UNDER_REVIEW"}),
            )
            .await;
        assert!(succeeded(&r), "{r}");

        // From UNDER_REVIEW either may happen, but neither may follow the other.
        let (declined, duplicated) = futures::join!(
            app.publish_response(olu, decline(&id)),
            app.publish_response(oona, duplicate(&id, &original)),
        );
        let (winner, loser) = match (succeeded(&declined), succeeded(&duplicated)) {
            (true, false) => (&declined, &duplicated),
            (false, true) => (&duplicated, &declined),
            _ => panic!("round {round}: not exactly one winner:\n{declined}\n{duplicated}"),
        };
        assert_eq!(
            error_code(loser),
            "BAD_USER_INPUT",
            "round {round}: {loser}"
        );
        assert_eq!(error_field(loser), "newStatus", "round {round}: {loser}");

        let won = winner["data"]["publishResponse"]["response"]["newStatus"].clone();
        let s = app.suggestion_state(None, &id).await;
        assert_eq!(s["status"], won, "round {round}: {s}");
        let statuses: Vec<&Value> = s["responses"]
            .as_array()
            .expect("responses")
            .iter()
            .map(|r| &r["newStatus"])
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s != "UNDER_REVIEW").count(),
            1,
            "round {round}: one response after review, the winner's: {s}"
        );
        assert!(statuses.contains(&&won), "round {round}: {s}");
        assert_counters_match_rows(app, &id).await;
        assert_counters_match_rows(app, &original).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opposite_duplicates_at_once_never_both_succeed() {
    let st = stage().await;
    let app = &st.app;
    let [olu, oona] = &st.officials;
    for round in 0..rounds() {
        let a = create_suggestion(
            app,
            &st.authors[0],
            &st.commitment,
            &format!("Round {round}: timetables as CSV"),
        )
        .await;
        let b = create_suggestion(
            app,
            &st.authors[1],
            &st.commitment,
            &format!("Round {round}: timetables as open data"),
        )
        .await;
        let (a_to_b, b_to_a) = futures::join!(
            app.publish_response(olu, duplicate(&a, &b)),
            app.publish_response(oona, duplicate(&b, &a)),
        );
        let (dup, original, loser) = match (succeeded(&a_to_b), succeeded(&b_to_a)) {
            (true, false) => (&a, &b, &b_to_a),
            (false, true) => (&b, &a, &a_to_b),
            _ => panic!("round {round}: not exactly one winner:\n{a_to_b}\n{b_to_a}"),
        };
        assert_eq!(
            error_code(loser),
            "BAD_USER_INPUT",
            "round {round}: {loser}"
        );

        let d = app.suggestion_state(None, dup).await;
        let o = app.suggestion_state(None, original).await;
        assert_eq!(d["status"], "DUPLICATE", "round {round}");
        assert_eq!(d["duplicateOf"]["id"], original.as_str(), "round {round}");
        assert_eq!(
            o["status"], "SUBMITTED",
            "round {round}: never both DUPLICATE"
        );
        assert!(o["duplicateOf"].is_null(), "round {round}: {o}");
        assert_counters_match_rows(app, &a).await;
        assert_counters_match_rows(app, &b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_merge_while_supports_arrive_keeps_every_support() {
    const SUPPORTERS: i32 = 8;
    let st = stage().await;
    let app = &st.app;
    let numbers: Vec<i32> = (0..SUPPORTERS).collect();
    let supporters =
        futures::future::join_all(numbers.iter().map(|i| app.verified_user_quick(i))).await;
    let support = |who: &Session, id: &str| {
        let (token, id) = (who.access.clone(), id.to_string());
        async move { app.gql(Some(&token), SUPPORT, json!({ "id": id })).await }
    };
    for round in 0..rounds() {
        let original = create_suggestion(
            app,
            &st.authors[0],
            &st.commitment,
            &format!("Round {round}: bus stops as open data"),
        )
        .await;
        let dup = create_suggestion(
            app,
            &st.authors[1],
            &st.commitment,
            &format!("Round {round}: open the bus stop list"),
        )
        .await;
        // Supporters 0-3 are on the duplicate before the merge starts.
        for s in &supporters[..4] {
            let r = support(s, &dup).await;
            assert!(r["errors"].is_null(), "{r}");
        }
        // During the merge 2-7 support the duplicate and 4-7 the original too.
        let late_dup = futures::future::join_all(supporters[2..].iter().map(|s| support(s, &dup)));
        let late_original =
            futures::future::join_all(supporters[4..].iter().map(|s| support(s, &original)));
        let (merged, late_dup, late_original) = futures::join!(
            app.publish_response(&st.officials[0], duplicate(&dup, &original)),
            late_dup,
            late_original,
        );
        assert!(succeeded(&merged), "round {round}: {merged}");
        for r in &late_original {
            assert!(r["errors"].is_null(), "round {round}: {r}");
        }
        for r in &late_dup {
            // Before the merge it counts (and moves); after it, the duplicate takes none.
            assert!(
                r["errors"].is_null() || error_code(r) == "CONFLICT",
                "round {round}: {r}"
            );
        }

        // Every support that succeeded, on either, is on the original now.
        for (i, s) in supporters.iter().enumerate() {
            let seen = app.suggestion_state(Some(&s.access), &original).await;
            assert_eq!(
                seen["viewerHasSupported"], true,
                "round {round}: supporter {i}"
            );
        }
        let o = app.suggestion_state(None, &original).await;
        assert_eq!(o["supportCount"], SUPPORTERS, "round {round}: {o}");
        let d = app.suggestion_state(None, &dup).await;
        assert_eq!(d["supportCount"], 0, "round {round}: {d}");
        assert_counters_match_rows(app, &original).await;
        assert_counters_match_rows(app, &dup).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_milestones_take_distinct_positions() {
    const MILESTONES_PER_ROUND: usize = 20;
    let st = stage().await;
    let app = &st.app;
    let official = &st.officials[0];
    for round in 0..rounds() {
        let commitment = create_commitment(
            app,
            official,
            &format!("RACE{round}"),
            &format!("Race number {round}"),
        )
        .await;
        let adds = (0..MILESTONES_PER_ROUND).map(|i| {
            app.gql(
                Some(&official.access),
                ADD_MILESTONE,
                json!({"i": {"commitmentId": commitment, "title": format!("Milestone {i}")}}),
            )
        });
        let mut positions: Vec<i64> = futures::future::join_all(adds)
            .await
            .iter()
            .map(|r| {
                r["data"]["addMilestone"]["milestone"]["position"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("round {round}: {r}"))
            })
            .collect();
        positions.sort();
        let expected: Vec<i64> = (1..=MILESTONES_PER_ROUND as i64).collect();
        assert_eq!(positions, expected, "round {round}");
    }
}

async fn milestone_titles(app: &TestApp, commitment: &str) -> Vec<(String, i64)> {
    let r = app.gql(None, MILESTONES, json!({ "id": commitment })).await;
    r["data"]["commitment"]["milestones"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|m| {
            (
                m["title"].as_str().unwrap_or_default().to_string(),
                m["position"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moving_milestones_keeps_positions_one_to_n() {
    const N: usize = 6;
    let st = stage().await;
    let app = &st.app;
    let official = &st.officials[0];
    let mut ids = Vec::new();
    for i in 0..N {
        let r = app
            .gql(
                Some(&official.access),
                ADD_MILESTONE,
                json!({"i": {"commitmentId": st.commitment, "title": format!("Step {i}")}}),
            )
            .await;
        ids.push(
            r["data"]["addMilestone"]["milestone"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{r}"))
                .to_string(),
        );
    }
    // The order the moves should give, kept beside as a plain list.
    let mut model: Vec<usize> = (0..N).collect();
    for (which, to) in [(5, 1), (0, 6), (2, 3), (3, 2), (4, 5), (1, 1), (5, 6)] {
        let r = app
            .gql(
                Some(&official.access),
                MOVE_MILESTONE,
                json!({"i": {"id": ids[which], "position": to}}),
            )
            .await;
        assert_eq!(
            r["data"]["updateMilestone"]["milestone"]["position"], to,
            "{r}"
        );
        let from = model.iter().position(|m| *m == which).unwrap_or_default();
        let moved = model.remove(from);
        model.insert(to - 1, moved);
        let got = milestone_titles(app, &st.commitment).await;
        let want: Vec<(String, i64)> = model
            .iter()
            .enumerate()
            .map(|(p, m)| (format!("Step {m}"), p as i64 + 1))
            .collect();
        assert_eq!(got, want, "after moving step {which} to {to}");
    }

    // Moves at once still leave each position taken exactly once.
    for round in 0..rounds() {
        let moves = ids.iter().enumerate().map(|(i, id)| {
            app.gql(
                Some(&official.access),
                MOVE_MILESTONE,
                json!({"i": {"id": id, "position": N - (i + round) % N}}),
            )
        });
        for r in futures::future::join_all(moves).await {
            assert!(r["errors"].is_null(), "round {round}: {r}");
        }
        let positions: HashSet<i64> = milestone_titles(app, &st.commitment)
            .await
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(positions, (1..=N as i64).collect(), "round {round}");
    }
}
