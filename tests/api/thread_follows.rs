//! Following a thread: idempotent follow and unfollow with the thread's counter, refused
//! for a thread the viewer may not read, and followers hearing of new posts as if they had
//! posted there — once, even when another rule names them too, and never of their own.
//!
//! The background worker is off: each test drives the outbox worker itself.

use std::collections::BTreeMap;

use convene::entities::user::Role;
use serde_json::{json, Value};

use crate::discussions::{group, join, thread_on};
use crate::helpers::*;

const FOLLOW: &str =
    "mutation($id: ID!) { followThread(id: $id) { thread { followerCount viewerIsFollowing } } }";
const UNFOLLOW: &str =
    "mutation($id: ID!) { unfollowThread(id: $id) { thread { followerCount viewerIsFollowing } } }";
const READ: &str = "query($id: ID!) { thread(id: $id) { followerCount viewerIsFollowing } }";
const REPLY: &str =
    "mutation($i: ReplyToThreadInput!) { replyToThread(input: $i) { post { id } } }";

impl Harness {
    async fn gql_as(&self, who: Option<&Session>, query: &str, vars: Value) -> Value {
        self.app
            .gql(who.map(|s| s.access.as_str()), query, vars)
            .await
    }

    /// Follows (or unfollows) and returns the thread as the answer shows it.
    async fn follow(&self, who: &Session, thread: &str, on: bool) -> Value {
        let (q, field) = if on {
            (FOLLOW, "followThread")
        } else {
            (UNFOLLOW, "unfollowThread")
        };
        let r = self.gql_as(Some(who), q, json!({ "id": thread })).await;
        assert!(r["errors"].is_null(), "{r}");
        r["data"][field]["thread"].clone()
    }

    async fn reply(&self, who: &Session, thread: &str, parent: Option<&str>) -> String {
        let r = self
            .gql_as(
                Some(who),
                REPLY,
                json!({"i": {"threadId": thread, "parentPostId": parent, "body": "A reply."}}),
            )
            .await;
        r["data"]["replyToThread"]["post"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("replyToThread failed: {r}"))
            .to_string()
    }
}

fn expect(pairs: &[(&Session, &str)]) -> BTreeMap<(String, String), i64> {
    pairs
        .iter()
        .map(|(s, k)| ((s.user_id.clone(), k.to_string()), 1))
        .collect()
}

#[tokio::test]
async fn following_is_idempotent_and_counted() {
    let h = Harness::new().await;
    let official = h
        .with_role("official@example.org", "Olu", Role::Official)
        .await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let commitment = create_commitment(&h.app, &official, "UK0101", "Open budgets").await;
    let (thread, _) = thread_on(
        &h.app,
        &official,
        json!({ "commitmentId": commitment }),
        "Budget lines",
    )
    .await;

    assert_eq!(
        h.follow(&ann, &thread, true).await,
        json!({"followerCount": 1, "viewerIsFollowing": true})
    );
    assert_eq!(
        h.follow(&ann, &thread, true).await,
        json!({"followerCount": 1, "viewerIsFollowing": true})
    );
    assert_eq!(
        h.follow(&bob, &thread, true).await,
        json!({"followerCount": 2, "viewerIsFollowing": true})
    );
    assert_eq!(
        h.follow(&ann, &thread, false).await,
        json!({"followerCount": 1, "viewerIsFollowing": false})
    );
    assert_eq!(
        h.follow(&ann, &thread, false).await,
        json!({"followerCount": 1, "viewerIsFollowing": false})
    );
    // Others read the count; only the follower reads true.
    let read = |who: Option<Session>| {
        let h = &h;
        let thread = thread.clone();
        async move {
            let r = h.gql_as(who.as_ref(), READ, json!({ "id": thread })).await;
            r["data"]["thread"].clone()
        }
    };
    assert_eq!(
        read(Some(bob.clone())).await,
        json!({"followerCount": 1, "viewerIsFollowing": true})
    );
    assert_eq!(
        read(Some(ann.clone())).await,
        json!({"followerCount": 1, "viewerIsFollowing": false})
    );
    assert_eq!(
        read(None).await,
        json!({"followerCount": 1, "viewerIsFollowing": false})
    );
    // Anonymous viewers cannot follow.
    let r = h.gql_as(None, FOLLOW, json!({ "id": thread })).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
}

#[tokio::test]
async fn only_those_who_may_read_a_thread_may_follow_it() {
    let h = Harness::new().await;
    let org = h
        .with_role("org@example.org", "Orla", Role::Organiser)
        .await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let g = group(&h.app, &org, "inner-circle", "PRIVATE").await;
    join(&h.app, &ann, &g).await;
    let (thread, _) = thread_on(&h.app, &org, json!({ "workingGroupId": g }), "Members only").await;

    let r = h.gql_as(Some(&bob), FOLLOW, json!({ "id": thread })).await;
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
    assert_eq!(
        h.follow(&ann, &thread, true).await,
        json!({"followerCount": 1, "viewerIsFollowing": true})
    );

    // A new post reaches the member who follows, and nobody outside.
    h.reply(&org, &thread, None).await;
    assert_eq!(h.delivered().await, expect(&[(&ann, "THREAD_POST")]));

    // Once she has left the group she no longer hears of it, though she still follows.
    let r = h
        .gql_as(
            Some(&ann),
            "mutation($id: ID!) { leaveWorkingGroup(id: $id) { workingGroup { id } } }",
            json!({ "id": g }),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    h.reply(&org, &thread, None).await;
    assert!(h.delivered().await.is_empty());
}

#[tokio::test]
async fn followers_hear_of_new_posts_once_and_never_of_their_own() {
    let h = Harness::new().await;
    let official = h
        .with_role("official@example.org", "Olu", Role::Official)
        .await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let cid = h.user("cid@example.org", "Cid").await;
    let dee = h.user("dee@example.org", "Dee").await;
    let commitment = create_commitment(&h.app, &official, "UK0102", "Open budgets").await;
    let (thread, _) = thread_on(
        &h.app,
        &ann,
        json!({ "commitmentId": commitment }),
        "Budget lines",
    )
    .await;
    assert!(h.delivered().await.is_empty());

    // Cid never posted but follows; Ann, the author, follows her own thread too.
    h.follow(&cid, &thread, true).await;
    h.follow(&ann, &thread, true).await;

    // Bob answers the thread: Ann hears once (a reply to her, though she also follows),
    // Cid of a new post, Bob of nothing.
    let bobs = h.reply(&bob, &thread, None).await;
    assert_eq!(
        h.delivered().await,
        expect(&[(&ann, "POST_REPLY"), (&cid, "THREAD_POST")])
    );

    // Bob follows as well; Dee answers Bob: Bob hears once (replied to, poster and
    // follower), Ann and Cid of a new post.
    h.follow(&bob, &thread, true).await;
    h.reply(&dee, &thread, Some(&bobs)).await;
    assert_eq!(
        h.delivered().await,
        expect(&[
            (&bob, "POST_REPLY"),
            (&ann, "THREAD_POST"),
            (&cid, "THREAD_POST")
        ])
    );

    // Cid posts himself: he is not told of it; after unfollowing, a poster still hears.
    h.reply(&cid, &thread, None).await;
    assert_eq!(
        h.delivered().await,
        expect(&[
            (&ann, "POST_REPLY"),
            (&bob, "THREAD_POST"),
            (&dee, "THREAD_POST")
        ])
    );
    h.follow(&cid, &thread, false).await;
    h.reply(&dee, &thread, None).await;
    assert_eq!(
        h.delivered().await,
        expect(&[
            (&ann, "POST_REPLY"),
            (&bob, "THREAD_POST"),
            (&cid, "THREAD_POST")
        ])
    );
}
