//! In-app notifications: each event reaches exactly the people its rule names (never the
//! actor, each person once), reading and marking read, a fan-out resumed or raced by two
//! workers delivering exactly once, and `notificationAdded` at the schema level.
//!
//! The background worker is off: each test drives the outbox worker itself (`deliver`),
//! so what exists before and after a fan-out is known.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use convene::entities::user::Role;
use convene::mail::Mailer;
use convene::outbox::OutboxWorker;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::helpers::*;

const LIST: &str = "query($n: Int, $after: String, $u: Boolean) { notifications(first: $n, after: $after, unreadOnly: $u) { totalCount pageInfo { hasNextPage endCursor } nodes { id kind text readAt createdAt actor { displayName } subject { __typename ... on Suggestion { id } ... on CommitmentUpdate { id } ... on Post { id } ... on Meetup { id } ... on WorkingGroup { id } ... on Report { id } ... on User { id } } } } unreadNotificationCount }";
const MARK: &str = "mutation($i: MarkNotificationsReadInput!) { markNotificationsRead(input: $i) { unreadCount } }";
const RESPOND: &str =
    "mutation($i: PublishResponseInput!) { publishResponse(input: $i) { response { id } } }";
const SUPPORT: &str =
    "mutation($id: ID!) { supportSuggestion(id: $id) { suggestion { supportCount } } }";
const FOLLOW_SUGGESTION: &str =
    "mutation($id: ID!) { followSuggestion(id: $id) { suggestion { followerCount } } }";
const FOLLOW_COMMITMENT: &str =
    "mutation($id: ID!) { followCommitment(id: $id) { commitment { followerCount } } }";
const START: &str =
    "mutation($i: StartThreadInput!) { startThread(input: $i) { thread { id } post { id } } }";
const REPLY: &str =
    "mutation($i: ReplyToThreadInput!) { replyToThread(input: $i) { post { id } } }";
const GROUP: &str = "mutation($i: CreateWorkingGroupInput!) { createWorkingGroup(input: $i) { workingGroup { id } } }";
const JOIN: &str = "mutation($id: ID!) { joinWorkingGroup(id: $id) { membership { id status } } }";
const DECIDE: &str = "mutation($i: DecideMembershipInput!) { decideMembership(input: $i) { membership { status } } }";
const INVITE: &str = "mutation($i: InviteToWorkingGroupInput!) { inviteToWorkingGroup(input: $i) { membership { status } } }";
const SCHEDULE: &str =
    "mutation($i: ScheduleMeetupInput!) { scheduleMeetup(input: $i) { meetup { id } } }";
const UPDATE_MEETUP: &str =
    "mutation($i: UpdateMeetupInput!) { updateMeetup(input: $i) { meetup { sequence } } }";
const CANCEL: &str =
    "mutation($i: CancelMeetupInput!) { cancelMeetup(input: $i) { meetup { status } } }";
const RSVP: &str = "mutation($i: RsvpMeetupInput!) { rsvpMeetup(input: $i) { rsvp { status } } }";
const REPORT: &str =
    "mutation($i: ReportContentInput!) { reportContent(input: $i) { report { id } } }";
const PUBLISH_UPDATE: &str = "mutation($i: PublishCommitmentUpdateInput!) { publishCommitmentUpdate(input: $i) { update { id } } }";

impl Harness {
    async fn list(&self, who: &Session, n: i32, after: Option<&str>, unread: bool) -> Value {
        let r = self
            .gql(who, LIST, json!({"n": n, "after": after, "u": unread}))
            .await;
        r["data"].clone()
    }
}

fn expect(pairs: &[(&Session, &str)]) -> BTreeMap<(String, String), i64> {
    pairs
        .iter()
        .map(|(s, k)| ((s.user_id.clone(), k.to_string()), 1))
        .collect()
}

fn in_days(d: i64) -> String {
    (Utc::now() + Duration::days(d)).to_rfc3339()
}

#[tokio::test]
async fn suggestion_events_reach_followers_and_supporters_once_and_never_the_actor() {
    let h = Harness::new().await;
    let official = h
        .with_role("official@example.org", "Olu", Role::Official)
        .await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let cid = h.user("cid@example.org", "Cid").await;
    let dee = h.user("dee@example.org", "Dee").await;
    let commitment = create_commitment(&h.app, &official, "UK0090", "Open registers").await;
    h.deliver().await;
    // Cid and Ann follow the commitment.
    h.gql(&cid, FOLLOW_COMMITMENT, json!({"id": commitment}))
        .await;
    h.gql(&ann, FOLLOW_COMMITMENT, json!({"id": commitment}))
        .await;

    // A new suggestion: the commitment's followers hear of it, not its author (Ann).
    let s = create_suggestion(&h.app, &ann, &commitment, "Publish the register weekly").await;
    assert_eq!(h.delivered().await, expect(&[(&cid, "SUGGESTION_CREATED")]));

    // Bob follows and supports (two rules, one notification); Dee only supports; the
    // official follows it too but is the one responding.
    h.gql(&bob, FOLLOW_SUGGESTION, json!({"id": s})).await;
    h.gql(&bob, SUPPORT, json!({"id": s})).await;
    h.gql(&dee, SUPPORT, json!({"id": s})).await;
    h.gql(&official, FOLLOW_SUGGESTION, json!({"id": s})).await;
    assert!(
        h.delivered().await.is_empty(),
        "following and supporting notify nobody"
    );
    // The request wrote one event, whatever the audience.
    let before = count(
        &h.app.db,
        "SELECT COUNT(*) FROM outbox WHERE kind = 'notification'",
    )
    .await;
    h.gql(
        &official,
        RESPOND,
        json!({"i": {"suggestionId": s, "body": "We will.", "newStatus": "ACCEPTED"}}),
    )
    .await;
    assert_eq!(
        count(
            &h.app.db,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'notification'"
        )
        .await,
        before + 1
    );
    assert_eq!(
        h.delivered().await,
        expect(&[
            (&ann, "RESPONSE_PUBLISHED"),
            (&bob, "RESPONSE_PUBLISHED"),
            (&dee, "RESPONSE_PUBLISHED"),
        ])
    );
    let page = h.list(&bob, 10, None, false).await;
    let n = &page["notifications"]["nodes"][0];
    assert_eq!(n["kind"], "RESPONSE_PUBLISHED");
    assert_eq!(n["actor"]["displayName"], "Olu");
    assert_eq!(n["subject"]["__typename"], "Suggestion");
    assert_eq!(n["subject"]["id"], s.as_str());
    assert!(
        n["text"]
            .as_str()
            .unwrap()
            .contains("Publish the register weekly"),
        "{n}"
    );
    assert!(n["readAt"].is_null());

    // Merged as a duplicate: the duplicate's people hear of it, though they have moved
    // to the original by the time the worker runs.
    let dup = create_suggestion(&h.app, &cid, &commitment, "A weekly register please").await;
    h.gql(&dee, SUPPORT, json!({"id": dup})).await;
    h.deliver().await;
    h.gql(
        &official,
        RESPOND,
        json!({"i": {"suggestionId": dup, "body": "Same as the other.", "newStatus": "DUPLICATE", "duplicateOfId": s}}),
    )
    .await;
    assert_eq!(
        h.delivered().await,
        expect(&[(&cid, "SUGGESTION_MERGED"), (&dee, "SUGGESTION_MERGED")])
    );

    // An official update: the commitment's followers, not its author.
    h.gql(&official, FOLLOW_COMMITMENT, json!({"id": commitment}))
        .await;
    h.gql(
        &official,
        PUBLISH_UPDATE,
        json!({"i": {"commitmentId": commitment, "title": "Halfway there", "body": "News."}}),
    )
    .await;
    assert_eq!(
        h.delivered().await,
        expect(&[(&ann, "UPDATE_PUBLISHED"), (&cid, "UPDATE_PUBLISHED")])
    );
    // Every event was delivered, and delivering again writes nothing.
    assert_eq!(
        count(
            &h.app.db,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'notification' AND status <> 'SENT'"
        )
        .await,
        0
    );
    assert!(h.delivered().await.is_empty());
}

#[tokio::test]
async fn replies_reach_the_author_replied_to_and_the_threads_other_writers() {
    let h = Harness::new().await;
    let official = h
        .with_role("official@example.org", "Olu", Role::Official)
        .await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let cid = h.user("cid@example.org", "Cid").await;
    let commitment = create_commitment(&h.app, &official, "UK0091", "Open budgets").await;
    let r = h
        .gql(
            &ann,
            START,
            json!({"i": {"commitmentId": commitment, "title": "Budget lines", "body": "Which ones?"}}),
        )
        .await;
    let thread = r["data"]["startThread"]["thread"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        h.delivered().await.is_empty(),
        "a new thread has nobody to tell yet"
    );

    // Bob answers the thread: Ann, its author, hears of a reply (once, though she also
    // wrote in it).
    let r = h
        .gql(
            &bob,
            REPLY,
            json!({"i": {"threadId": thread, "body": "All of them."}}),
        )
        .await;
    let bobs = r["data"]["replyToThread"]["post"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(h.delivered().await, expect(&[(&ann, "POST_REPLY")]));

    // Cid answers Bob: Bob hears of a reply, Ann of a new post; Cid of nothing.
    let r = h
        .gql(
            &cid,
            REPLY,
            json!({"i": {"threadId": thread, "parentPostId": bobs, "body": "Agreed."}}),
        )
        .await;
    let cids = r["data"]["replyToThread"]["post"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        h.delivered().await,
        expect(&[(&bob, "POST_REPLY"), (&ann, "THREAD_POST")])
    );
    let page = h.list(&bob, 10, None, false).await;
    assert_eq!(
        page["notifications"]["nodes"][0]["subject"]["__typename"],
        "Post"
    );
    assert_eq!(
        page["notifications"]["nodes"][0]["subject"]["id"],
        cids.as_str()
    );
    assert_eq!(
        page["notifications"]["nodes"][0]["actor"]["displayName"],
        "Cid"
    );

    // Ann writes again: the other two writers hear of it (Bob's post was a reply to the
    // thread, so neither is "replied to" but Ann, who wrote it).
    h.gql(
        &ann,
        REPLY,
        json!({"i": {"threadId": thread, "body": "Thanks both."}}),
    )
    .await;
    assert_eq!(
        h.delivered().await,
        expect(&[(&bob, "THREAD_POST"), (&cid, "THREAD_POST")])
    );
}

#[tokio::test]
async fn group_meetup_and_report_events_reach_exactly_whom_they_concern() {
    let h = Harness::new().await;
    let org = h
        .with_role("org@example.org", "Orla", Role::Organiser)
        .await;
    let admin = h.with_role("admin@example.org", "Ada", Role::Admin).await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let cid = h.user("cid@example.org", "Cid").await;
    let dee = h.user("dee@example.org", "Dee").await;

    // A group taking requests: the organiser hears of each, the requester of the answer.
    let r = h
        .gql(
            &org,
            GROUP,
            json!({"i": {"name": "Data users", "slug": "data-users", "description": "We meet.", "visibility": "PUBLIC", "joinPolicy": "REQUEST"}}),
        )
        .await;
    let group = r["data"]["createWorkingGroup"]["workingGroup"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.deliver().await;
    let mut requests = Vec::new();
    for who in [&ann, &bob] {
        let r = h.gql(who, JOIN, json!({"id": group})).await;
        requests.push(
            r["data"]["joinWorkingGroup"]["membership"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        h.delivered().await,
        BTreeMap::from([((org.user_id.clone(), "MEMBERSHIP_REQUESTED".to_string()), 2)])
    );
    for m in &requests {
        h.gql(
            &org,
            DECIDE,
            json!({"i": {"membershipId": m, "approve": true}}),
        )
        .await;
    }
    assert_eq!(
        h.delivered().await,
        expect(&[(&ann, "MEMBERSHIP_DECIDED"), (&bob, "MEMBERSHIP_DECIDED")])
    );
    // A role in the group, and on the site: that person only.
    h.gql(
        &org,
        "mutation($i: SetMemberRoleInput!) { setMemberRole(input: $i) { membership { role } } }",
        json!({"i": {"membershipId": requests[0], "role": "ORGANISER"}}),
    )
    .await;
    assert_eq!(
        h.delivered().await,
        expect(&[(&ann, "MEMBER_ROLE_CHANGED")])
    );
    h.gql(
        &admin,
        "mutation($i: SetUserRoleInput!) { setUserRole(input: $i) { user { role } } }",
        json!({"i": {"userId": dee.user_id, "role": "OFFICIAL"}}),
    )
    .await;
    assert_eq!(h.delivered().await, expect(&[(&dee, "ROLE_CHANGED")]));
    let page = h.list(&dee, 1, None, false).await;
    assert_eq!(
        page["notifications"]["nodes"][0]["subject"]["__typename"],
        "User"
    );
    assert_eq!(
        page["notifications"]["nodes"][0]["actor"]["displayName"],
        "Ada"
    );
    h.gql(
        &org,
        INVITE,
        json!({"i": {"workingGroupId": group, "userId": cid.user_id}}),
    )
    .await;
    assert_eq!(h.delivered().await, expect(&[(&cid, "MEMBERSHIP_INVITED")]));
    let page = h.list(&cid, 10, None, false).await;
    assert_eq!(
        page["notifications"]["nodes"][0]["subject"]["__typename"],
        "WorkingGroup"
    );
    assert_eq!(
        page["notifications"]["nodes"][0]["actor"]["displayName"],
        "Orla"
    );

    // A meet-up: every member but its organiser; then a change and a cancellation reach
    // only those coming (Ann going, Bob waitlisted), not Dee, who is no member.
    let r = h
        .gql(
            &org,
            SCHEDULE,
            json!({"i": {"workingGroupId": group, "title": "Forum", "agenda": "Talk", "startsAt": in_days(7), "endsAt": (Utc::now() + Duration::days(7) + Duration::hours(2)).to_rfc3339(), "timeZone": "Europe/London", "venue": "Room 1", "capacity": 1}}),
        )
        .await;
    let meetup = r["data"]["scheduleMeetup"]["meetup"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        h.delivered().await,
        expect(&[(&ann, "MEETUP_SCHEDULED"), (&bob, "MEETUP_SCHEDULED")])
    );
    h.gql(
        &ann,
        RSVP,
        json!({"i": {"meetupId": meetup, "attending": true}}),
    )
    .await;
    h.gql(
        &bob,
        RSVP,
        json!({"i": {"meetupId": meetup, "attending": true}}),
    )
    .await;
    assert!(h.delivered().await.is_empty());
    h.gql(
        &org,
        UPDATE_MEETUP,
        json!({"i": {"id": meetup, "venue": "Room 2"}}),
    )
    .await;
    assert_eq!(
        h.delivered().await,
        expect(&[(&ann, "MEETUP_CHANGED"), (&bob, "MEETUP_CHANGED")])
    );
    // Ann withdraws: Bob moves up from the waitlist and hears of it.
    h.gql(
        &ann,
        RSVP,
        json!({"i": {"meetupId": meetup, "attending": false}}),
    )
    .await;
    assert_eq!(h.delivered().await, expect(&[(&bob, "MEETUP_PROMOTED")]));
    h.gql(&org, CANCEL, json!({"i": {"id": meetup, "reason": "Snow"}}))
        .await;
    assert_eq!(h.delivered().await, expect(&[(&bob, "MEETUP_CANCELLED")]));

    // A report: the site's administrators, not the reporter.
    let official = h
        .with_role("official@example.org", "Olu", Role::Official)
        .await;
    let commitment = create_commitment(&h.app, &official, "UK0092", "Open meetings").await;
    let s = create_suggestion(&h.app, &ann, &commitment, "Something to report here").await;
    h.deliver().await;
    h.gql(
        &dee,
        REPORT,
        json!({"i": {"suggestionId": s, "reason": "SPAM"}}),
    )
    .await;
    assert_eq!(h.delivered().await, expect(&[(&admin, "REPORT_FILED")]));
    let page = h.list(&admin, 10, None, false).await;
    assert_eq!(page["notifications"]["nodes"][0]["kind"], "REPORT_FILED");
    assert_eq!(
        page["notifications"]["nodes"][0]["subject"]["__typename"],
        "Report"
    );
}

#[tokio::test]
async fn reading_marks_only_ones_own_and_unread_only_pages_newest_first() {
    let h = Harness::new().await;
    let official = h
        .with_role("official@example.org", "Olu", Role::Official)
        .await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let commitment = create_commitment(&h.app, &official, "UK0093", "Open reading").await;
    h.gql(&ann, FOLLOW_COMMITMENT, json!({"id": commitment}))
        .await;
    h.gql(&bob, FOLLOW_COMMITMENT, json!({"id": commitment}))
        .await;
    for i in 0..5 {
        h.gql(
            &official,
            PUBLISH_UPDATE,
            json!({"i": {"commitmentId": commitment, "title": format!("Update number {i}"), "body": "News."}}),
        )
        .await;
    }
    h.deliver().await;

    // Anonymous: refused.
    let r = h.app.gql(None, LIST, json!({"n": 5})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    let r = h.app.gql(None, MARK, json!({"i": {"all": true}})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");

    let all = h.list(&ann, 10, None, false).await;
    assert_eq!(all["notifications"]["totalCount"], 5);
    assert_eq!(all["unreadNotificationCount"], 5);
    let texts: Vec<String> = all["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap().to_string())
        .collect();
    // Newest first.
    assert!(
        texts[0].contains("Update number 4") && texts[4].contains("Update number 0"),
        "{texts:?}"
    );
    let ids: Vec<String> = all["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();

    // Marking two by ID, plus one of Bob's: Bob's is left alone.
    let bobs = h.list(&bob, 1, None, false).await["notifications"]["nodes"][0]["id"].clone();
    let r = h
        .gql(&ann, MARK, json!({"i": {"ids": [ids[1], ids[3], bobs]}}))
        .await;
    assert_eq!(r["data"]["markNotificationsRead"]["unreadCount"], 3);
    assert_eq!(
        h.list(&bob, 1, None, false).await["unreadNotificationCount"],
        5
    );
    // Marking again changes nothing; neither ids nor all is refused.
    let r = h.gql(&ann, MARK, json!({"i": {"ids": [ids[1]]}})).await;
    assert_eq!(r["data"]["markNotificationsRead"]["unreadCount"], 3);
    let r = h.app.gql(Some(&ann.access), MARK, json!({"i": {}})).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");

    // Unread only, two at a time: 4, 2, 0 — in order, no repeats, then the end.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let p = h.list(&ann, 2, after.as_deref(), true).await;
        let c = &p["notifications"];
        assert_eq!(c["totalCount"], 3);
        for n in c["nodes"].as_array().unwrap() {
            assert!(n["readAt"].is_null());
            seen.push(n["id"].as_str().unwrap().to_string());
        }
        if c["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = c["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen, vec![ids[0].clone(), ids[2].clone(), ids[4].clone()]);
    let read = h.list(&ann, 10, None, false).await;
    assert!(read["notifications"]["nodes"][1]["readAt"].is_string());

    // All: none left unread, for Ann only.
    let r = h.gql(&ann, MARK, json!({"i": {"all": true}})).await;
    assert_eq!(r["data"]["markNotificationsRead"]["unreadCount"], 0);
    assert_eq!(
        h.list(&ann, 1, None, true).await["notifications"]["totalCount"],
        0
    );
    assert_eq!(
        h.list(&bob, 1, None, false).await["unreadNotificationCount"],
        5
    );
}

/// Followers of a commitment, made directly: many accounts cost too much through sign-up.
async fn followers(h: &Harness, commitment: &str, n: usize) -> Vec<uuid::Uuid> {
    use convene::entities::{commitment_follow, user};
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let commitment: uuid::Uuid = commitment.parse().unwrap();
    let at = Utc::now();
    let ids: Vec<uuid::Uuid> = (0..n).map(|_| uuid::Uuid::now_v7()).collect();
    for (c, chunk) in ids.chunks(500).enumerate() {
        let users = chunk.iter().enumerate().map(|(i, id)| {
            let email = format!("f{c}-{i}@example.org");
            sea_orm::IntoActiveModel::into_active_model(user::Model {
                id: *id,
                email_normalized: email.clone(),
                email,
                password_hash: "x".into(),
                display_name: format!("F{c}-{i}"),
                bio: String::new(),
                organisation: String::new(),
                sector: user::Sector::CivilSociety,
                role: Role::Member,
                email_verified_at: Some(at),
                created_at: at,
                updated_at: at,
                suspended_until: None,
            })
        });
        user::Entity::insert_many(users)
            .exec(&h.app.db)
            .await
            .expect("insert followers");
        let follows = chunk.iter().map(|id| commitment_follow::ActiveModel {
            commitment_id: Set(commitment),
            user_id: Set(*id),
            created_at: Set(at),
        });
        commitment_follow::Entity::insert_many(follows)
            .exec(&h.app.db)
            .await
            .expect("insert follows");
    }
    ids
}

#[tokio::test]
async fn a_fan_out_resumed_or_raced_delivers_exactly_once() {
    use convene::entities::outbox;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let h = Harness::new().await;
    let official = h
        .with_role("official@example.org", "Olu", Role::Official)
        .await;
    let commitment = create_commitment(&h.app, &official, "UK0094", "Open crashes").await;
    h.deliver().await;
    let people = followers(&h, &commitment, 2_500).await;

    // Interrupted: part of the notifications exist (as if a fan-out stopped after its first
    // chunk) and the event is still pending; the worker fills in only what is missing.
    h.gql(
        &official,
        PUBLISH_UPDATE,
        json!({"i": {"commitmentId": commitment, "title": "First news", "body": "News."}}),
    )
    .await;
    let row = outbox::Entity::find()
        .filter(outbox::Column::Template.eq("commitment_update_published"))
        .one(&h.app.db)
        .await
        .unwrap()
        .unwrap();
    let event =
        convene::outbox::OutboxEvent::decode(&row.template, &row.recipient, &row.payload).unwrap();
    let convene::outbox::plan::Delivery::Notify(mut plan) =
        convene::outbox::plan::plan(&h.app.db, &event)
            .await
            .unwrap()
    else {
        panic!("an update notifies its followers");
    };
    plan.audiences[0].people.truncate(1_200);
    let first = convene::outbox::notify::insert_planned(&h.app.db, &row.idempotency_key, &plan)
        .await
        .unwrap();
    assert_eq!(first.len(), 1_200);
    let mut live = h.ctx.events.subscribe();
    h.deliver().await;
    let per_person = |event: &str| {
        format!("SELECT COUNT(*) FROM (SELECT recipient_id FROM notifications WHERE event_key = '{event}' GROUP BY recipient_id HAVING COUNT(*) = 1) x")
    };
    assert_eq!(
        count(&h.app.db, &per_person(&row.idempotency_key)).await,
        2_500
    );
    assert_eq!(
        count(
            &h.app.db,
            &format!(
                "SELECT COUNT(*) FROM notifications WHERE event_key = '{}'",
                row.idempotency_key
            )
        )
        .await,
        2_500
    );
    // Only the new ones were announced (more than the bus buffers: a lag counts those it
    // dropped; only the worker publishes on this bus).
    let mut announced = 0;
    loop {
        match live.try_recv() {
            Ok(convene::events::Event::NotificationAdded { .. }) => announced += 1,
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => announced += n,
            Err(_) => break,
        }
    }
    assert_eq!(announced, 1_300);

    // Raced: two workers, each with its own connections, on three events at once.
    for i in 0..3 {
        h.gql(
            &official,
            PUBLISH_UPDATE,
            json!({"i": {"commitmentId": commitment, "title": format!("More news {i}"), "body": "News."}}),
        )
        .await;
    }
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let db = convene::db::connect_url(&h.app.database_url, 4)
            .await
            .unwrap();
        let s = &h.app.settings;
        let (mailer, _) = Mailer::from_settings(&s.mail, &s.public.base_url).unwrap();
        let mut jobs = s.jobs.clone();
        jobs.batch_size = 1;
        let w = OutboxWorker::new(db, mailer, jobs);
        tasks.push(tokio::spawn(async move {
            while w.run_once().await.expect("a round") > 0 {}
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    h.deliver().await;
    assert_eq!(
        count(&h.app.db, "SELECT COUNT(*) FROM notifications").await,
        4 * 2_500
    );
    assert_eq!(
        count(&h.app.db, "SELECT COUNT(*) FROM (SELECT event_key, recipient_id FROM notifications GROUP BY event_key, recipient_id HAVING COUNT(*) > 1) x").await,
        0
    );
    assert_eq!(
        count(
            &h.app.db,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'notification' AND status <> 'SENT'"
        )
        .await,
        0
    );
    assert!(!people.is_empty());
}

/// `notificationAdded` at the schema level: the viewer's own, as the worker writes them;
/// anonymous refused.
#[tokio::test]
async fn notification_added_pushes_the_viewers_own() {
    use convene::auth::{Actor, Viewer};

    let h = Harness::new().await;
    let official = h
        .with_role("official@example.org", "Olu", Role::Official)
        .await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let commitment = create_commitment(&h.app, &official, "UK0095", "Open live").await;
    h.gql(&ann, FOLLOW_COMMITMENT, json!({"id": commitment}))
        .await;
    h.deliver().await;
    let schema = convene::graphql::build_schema(&h.app.settings.graphql);
    let subscribe = |who: Option<&Session>| {
        let actor = who.map(|s| Actor {
            id: s.user_id.parse().unwrap(),
            session_id: uuid::Uuid::nil(),
            role: Role::Member,
            email_verified: true,
        });
        let id = actor.as_ref().map(|a| a.id);
        let req = async_graphql::Request::new(
            "subscription { notificationAdded { id kind text actor { displayName } subject { __typename } } }",
        )
        .data(h.ctx.clone())
        .data(Viewer {
            actor,
            ..Default::default()
        })
        .data(convene::graphql::loaders::request_loader(h.ctx.clone(), id));
        schema.execute_stream(req)
    };
    let mut anonymous = subscribe(None);
    let first = anonymous.next().await.unwrap();
    assert_eq!(
        first.errors[0]
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .map(|v| v.to_string()),
        Some("\"UNAUTHENTICATED\"".to_string()),
        "{first:?}"
    );
    let mut anns = subscribe(Some(&ann));
    let mut bobs = subscribe(Some(&bob));
    // The first poll subscribes, then waits.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), anns.next())
            .await
            .is_err()
    );
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), bobs.next())
            .await
            .is_err()
    );

    h.gql(
        &official,
        PUBLISH_UPDATE,
        json!({"i": {"commitmentId": commitment, "title": "Live news", "body": "News."}}),
    )
    .await;
    h.deliver().await;
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), anns.next())
        .await
        .expect("Ann hears of it")
        .unwrap();
    assert!(got.errors.is_empty(), "{got:?}");
    let got = got.data.into_json().unwrap();
    let n = &got["notificationAdded"];
    assert_eq!(n["kind"], "UPDATE_PUBLISHED");
    assert_eq!(n["actor"]["displayName"], "Olu");
    assert_eq!(n["subject"]["__typename"], "CommitmentUpdate");
    let listed = h.list(&ann, 1, None, false).await;
    assert_eq!(listed["notifications"]["nodes"][0]["id"], n["id"]);
    // Bob follows nothing: he hears nothing.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), bobs.next())
            .await
            .is_err()
    );
}
