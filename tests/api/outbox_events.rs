//! Outbox events, typed and rendered late: a title hidden, or a private group left, after
//! the event never shows in a notification's text, its mail or the digest; rows written
//! in the old (template, payload) shape are still delivered; a row that is no event is
//! given up at once; and mail anyone can trigger is budgeted (an RSVP toggled, a join
//! request withdrawn and made again, an item reported twice).
//!
//! The background worker is off: each test drives the outbox worker itself.

use chrono::{Days, Utc};
use convene::entities::outbox::{self, Status};
use convene::entities::user::Role;
use convene::jobs::digest;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const MARKER: &str = "[hidden by a moderator]";
const SET_PREFS: &str = "mutation($i: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $i) { notificationPreferences { discussions } } }";
const SUPPORT: &str =
    "mutation($id: ID!) { supportSuggestion(id: $id) { suggestion { supportCount } } }";
const RESPOND: &str =
    "mutation($i: PublishResponseInput!) { publishResponse(input: $i) { response { id } } }";
const HIDE: &str =
    "mutation($i: ModerateContentInput!) { hideContent(input: $i) { content { hidden } } }";
const UNHIDE: &str =
    "mutation($i: ModerateContentInput!) { unhideContent(input: $i) { content { hidden } } }";
const NOTIFICATIONS: &str = "{ notifications(first: 50) { nodes { kind text } } }";
const GROUP: &str = "mutation($i: CreateWorkingGroupInput!) { createWorkingGroup(input: $i) { workingGroup { id } } }";
const JOIN: &str = "mutation($id: ID!) { joinWorkingGroup(id: $id) { membership { status } } }";
const LEAVE: &str = "mutation($id: ID!) { leaveWorkingGroup(id: $id) { workingGroup { id } } }";
const START: &str =
    "mutation($i: StartThreadInput!) { startThread(input: $i) { thread { id } post { id } } }";
const REPLY: &str =
    "mutation($i: ReplyToThreadInput!) { replyToThread(input: $i) { post { id } } }";
const SCHEDULE: &str =
    "mutation($i: ScheduleMeetupInput!) { scheduleMeetup(input: $i) { meetup { id } } }";
const RSVP: &str = "mutation($i: RsvpMeetupInput!) { rsvpMeetup(input: $i) { rsvp { status } } }";
const REPORT: &str =
    "mutation($i: ReportContentInput!) { reportContent(input: $i) { report { id } } }";

impl Harness {
    /// The texts of `who`'s notifications, newest first.
    async fn texts(&self, who: &Session) -> Vec<String> {
        let r = self.gql(who, NOTIFICATIONS, json!({})).await;
        r["data"]["notifications"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["text"].as_str().unwrap().to_string())
            .collect()
    }

    async fn group_of(
        &self,
        organiser: &Session,
        slug: &str,
        visibility: &str,
        policy: &str,
    ) -> String {
        let r = self
            .gql(
                organiser,
                GROUP,
                json!({"i": {"name": format!("Group {slug}"), "slug": slug, "description": "We meet.", "visibility": visibility, "joinPolicy": policy}}),
            )
            .await;
        r["data"]["createWorkingGroup"]["workingGroup"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Every mail sent to `email`, as its subject and text.
    fn mail_text(&self, email: &str) -> String {
        self.app
            .mails_to(email)
            .iter()
            .map(|m| format!("{}\n{}\n{}", m.subject, m.text, m.html))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Outbox rows made from `template`.
    async fn rows_of(&self, template: &str) -> Vec<outbox::Model> {
        outbox::Entity::find()
            .filter(outbox::Column::Template.eq(template))
            .all(&self.app.db)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_suggestion_hidden_after_its_event_shows_the_marker_in_texts_and_mail() {
    let h = Harness::new().await;
    let official = h
        .with_role("official@example.org", "Olu", Role::Official)
        .await;
    let admin = h.with_role("admin@example.org", "Ada", Role::Admin).await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    h.gql(
        &bob,
        SET_PREFS,
        json!({"i": {"mySuggestions": "IMMEDIATE", "followedCommitments": "IMMEDIATE"}}),
    )
    .await;
    let commitment = create_commitment(&h.app, &official, "UK0707", "Open registers").await;
    let s = create_suggestion(&h.app, &ann, &commitment, "Secret plan Zanzibar").await;
    h.gql(&bob, SUPPORT, json!({"id": s})).await;
    h.gql(
        &official,
        RESPOND,
        json!({"i": {"suggestionId": s, "body": "We will.", "newStatus": "ACCEPTED"}}),
    )
    .await;
    // Hidden before the worker has sent anything: the event holds ids only.
    h.gql(
        &admin,
        HIDE,
        json!({"i": {"suggestionId": s, "note": "Abusive"}}),
    )
    .await;
    h.deliver().await;
    for row in h.rows_of("response_published").await {
        assert!(!row.payload.contains("Zanzibar"), "{}", row.payload);
    }
    let texts = h.texts(&bob).await;
    assert_eq!(
        texts,
        vec![format!("Official response to “{MARKER}”: now ACCEPTED")]
    );
    let mail = h.mail_text("bob@example.org");
    assert!(mail.contains(MARKER), "{mail}");
    assert!(!mail.contains("Zanzibar"), "{mail}");

    // Rendered when read, not frozen: shown again, the title is back.
    h.gql(
        &admin,
        UNHIDE,
        json!({"i": {"suggestionId": s, "note": "Fine"}}),
    )
    .await;
    assert_eq!(
        h.texts(&bob).await,
        vec!["Official response to “Secret plan Zanzibar”: now ACCEPTED".to_string()]
    );
}

#[tokio::test]
async fn a_thread_hidden_or_a_private_group_left_masks_notifications_and_the_digest() {
    let h = Harness::new().await;
    let org = h.with_role("org@example.org", "Ola", Role::Organiser).await;
    let admin = h.with_role("admin@example.org", "Ada", Role::Admin).await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    h.gql(
        &bob,
        SET_PREFS,
        json!({"i": {"discussions": "DAILY_DIGEST", "timeZone": "Europe/London", "digestHour": 8}}),
    )
    .await;
    let group = h.group_of(&org, "inner", "PRIVATE", "OPEN").await;
    for who in [&ann, &bob] {
        h.gql(who, JOIN, json!({"id": group})).await;
    }
    let start = |title: &'static str| {
        h.gql(
            &ann,
            START,
            json!({"i": {"workingGroupId": group, "title": title, "body": "Let us talk."}}),
        )
    };
    let private = start("Private plan Kilimanjaro").await["data"]["startThread"]["thread"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hidden = start("Rude title Matterhorn").await["data"]["startThread"]["thread"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for t in [&private, &hidden] {
        // Bob writes in both, then Ann answers him: Bob hears of each answer.
        h.gql(
            &bob,
            REPLY,
            json!({"i": {"threadId": t, "body": "Me too."}}),
        )
        .await;
        h.gql(&ann, REPLY, json!({"i": {"threadId": t, "body": "Good."}}))
            .await;
    }
    h.deliver().await;
    let texts = h.texts(&bob).await;
    assert!(texts.iter().any(|t| t.contains("Kilimanjaro")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("Matterhorn")), "{texts:?}");

    h.gql(
        &admin,
        HIDE,
        json!({"i": {"threadId": hidden, "note": "Rude"}}),
    )
    .await;
    h.gql(&bob, LEAVE, json!({"id": group})).await;
    let texts = h.texts(&bob).await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    for t in &texts {
        assert!(t.contains(MARKER), "{texts:?}");
        assert!(
            !t.contains("Kilimanjaro") && !t.contains("Matterhorn"),
            "{t}"
        );
    }
    // Ann still sees inside the group; only the hidden title is masked for her too.
    let ann_texts = h.texts(&ann).await;
    assert!(
        ann_texts.iter().all(|t| !t.contains("Matterhorn")),
        "{ann_texts:?}"
    );

    // The digest lists the items as Bob may see them now.
    let tomorrow = (Utc::now().date_naive() + Days::new(1))
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    digest::run_once(&h.app.db, &h.app.settings, &h.ctx.tokens, tomorrow)
        .await
        .expect("a digest run");
    h.deliver().await;
    let digest = h
        .app
        .mails_to("bob@example.org")
        .into_iter()
        .find(|m| m.template == "digest")
        .expect("Bob's digest");
    let all = format!("{}\n{}\n{}", digest.subject, digest.text, digest.html);
    assert!(all.contains(MARKER), "{all}");
    assert!(!all.contains("Kilimanjaro"), "{all}");
    assert!(!all.contains("Matterhorn"), "{all}");
}

/// Writes an outbox row as `template` and `payload`, due now.
async fn raw_row(h: &Harness, kind: &str, recipient: &str, template: &str, payload: Value) -> Uuid {
    let id = Uuid::now_v7();
    let at = convene::db::now();
    outbox::ActiveModel {
        id: Set(id),
        idempotency_key: Set(format!("test:{id}")),
        kind: Set(kind.into()),
        recipient: Set(recipient.into()),
        template: Set(template.into()),
        payload: Set(payload.to_string()),
        status: Set(Status::Pending),
        attempts: Set(0),
        next_attempt_at: Set(at),
        locked_until: Set(None),
        lease_token: Set(None),
        last_error: Set(None),
        created_at: Set(at),
        sent_at: Set(None),
    }
    .insert(&h.app.db)
    .await
    .unwrap();
    id
}

async fn row(h: &Harness, id: Uuid) -> outbox::Model {
    outbox::Entity::find_by_id(id)
        .one(&h.app.db)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_row_of_the_old_shape_is_still_delivered() {
    let h = Harness::new().await;
    let admin = h.with_role("admin@example.org", "Ada", Role::Admin).await;
    let ann = h.user("ann@example.org", "Ann").await;
    // As rows were written before events were typed: the name only in `template`, the
    // account only in `recipient`, and the role beside keys nobody reads any more.
    let id = raw_row(
        &h,
        "notification",
        &ann.user_id,
        "role_changed",
        json!({"user_id": ann.user_id, "role": "OFFICIAL", "actor_id": admin.user_id}),
    )
    .await;
    h.deliver().await;
    let r = row(&h, id).await;
    assert_eq!(r.status, Status::Sent, "{r:?}");
    assert_eq!(
        h.texts(&ann).await,
        vec!["Your role on Convene is now official".to_string()]
    );
}

#[tokio::test]
async fn a_row_that_is_no_event_goes_dead_at_once_with_its_reason() {
    let h = Harness::new().await;
    let ann = h.user("ann@example.org", "Ann").await;
    let unknown = raw_row(&h, "notification", &ann.user_id, "no_such_event", json!({})).await;
    let broken = raw_row(
        &h,
        "notification",
        "audience:x",
        "post_added",
        json!({"thread_id": "not an id"}),
    )
    .await;
    let worker = h.worker();
    worker.run_once().await.expect("a worker round");
    for id in [unknown, broken] {
        let r = row(&h, id).await;
        assert_eq!(r.status, Status::Dead, "{r:?}");
        assert_eq!(r.attempts, 1, "not retried: {r:?}");
        let why = r.last_error.unwrap_or_default();
        assert!(why.contains("undecodable outbox row"), "{why}");
    }
    assert!(h.texts(&ann).await.is_empty());
}

#[tokio::test]
async fn toggling_an_rsvp_mails_once_per_status() {
    let h = Harness::new().await;
    let org = h.with_role("org@example.org", "Ola", Role::Organiser).await;
    let ann = h.user("ann@example.org", "Ann").await;
    let group = h.group_of(&org, "rsvp", "PUBLIC", "OPEN").await;
    h.gql(&ann, JOIN, json!({"id": group})).await;
    let starts = Utc::now() + chrono::Duration::days(7);
    let m = h
        .gql(
            &org,
            SCHEDULE,
            json!({"i": {"workingGroupId": group, "title": "Forum", "startsAt": starts.to_rfc3339(), "endsAt": (starts + chrono::Duration::hours(2)).to_rfc3339(), "timeZone": "Europe/London", "venue": "Room 1"}}),
        )
        .await["data"]["scheduleMeetup"]["meetup"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for attending in [true, false, true, false, true] {
        h.gql(
            &ann,
            RSVP,
            json!({"i": {"meetupId": m, "attending": attending}}),
        )
        .await;
    }
    h.deliver().await;
    let rsvp_mails = h
        .app
        .mails_to("ann@example.org")
        .into_iter()
        .filter(|m| m.template == "meetup_rsvp")
        .count();
    assert_eq!(rsvp_mails, 1);
}

#[tokio::test]
async fn a_join_request_withdrawn_and_made_again_tells_the_organisers_once_a_day() {
    let h = Harness::new().await;
    let org = h.with_role("org@example.org", "Ola", Role::Organiser).await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let group = h.group_of(&org, "asks", "PUBLIC", "REQUEST").await;
    for _ in 0..3 {
        let r = h.gql(&ann, JOIN, json!({"id": group})).await;
        assert_eq!(
            r["data"]["joinWorkingGroup"]["membership"]["status"],
            "PENDING"
        );
        h.gql(&ann, LEAVE, json!({"id": group})).await;
    }
    h.gql(&ann, JOIN, json!({"id": group})).await;
    // Another person's request is news of its own.
    h.gql(&bob, JOIN, json!({"id": group})).await;
    h.deliver().await;
    let texts = h.texts(&org).await;
    assert_eq!(
        texts,
        vec!["New request to join Group asks".to_string(); 2],
        "{texts:?}"
    );
    assert_eq!(h.rows_of("membership_requested").await.len(), 2);
}

#[tokio::test]
async fn an_item_reported_twice_tells_the_moderators_once() {
    let h = Harness::new().await;
    let official = h
        .with_role("official@example.org", "Olu", Role::Official)
        .await;
    let admin = h.with_role("admin@example.org", "Ada", Role::Admin).await;
    let ann = h.user("ann@example.org", "Ann").await;
    let commitment = create_commitment(&h.app, &official, "UK0808", "Open registers").await;
    let s = create_suggestion(&h.app, &ann, &commitment, "Buy my product").await;
    let mut reporters = Vec::new();
    for i in 0..3 {
        reporters.push(h.user(&format!("r{i}@example.org"), &format!("R{i}")).await);
    }
    for r in &reporters {
        h.gql(
            r,
            REPORT,
            json!({"i": {"suggestionId": s, "reason": "SPAM"}}),
        )
        .await;
    }
    h.deliver().await;
    let texts = h.texts(&admin).await;
    assert_eq!(
        texts,
        vec!["New report to moderate (suggestion, spam)".to_string()],
        "{texts:?}"
    );
    assert_eq!(h.rows_of("report_filed").await.len(), 1);
}
