//! The daily digest: grouped by commitment, working group and thread, newest first; never
//! empty; once per person per local day; at the person's hour in their own time zone, with
//! later items waiting for the next day. Time is driven by the `now` handed to
//! `jobs::digest::run_once`; the outbox worker is driven by the test, and mail is read from
//! the memory transport.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use convene::entities::notification::{self, Kind, SubjectType};
use convene::entities::notification_preference::{self, EmailPreference};
use convene::entities::user::Role;
use convene::jobs::digest::{self, DigestRun};
use convene::mail::OutgoingMail;
use convene::services::unsubscribe::{self, Scope};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const FOLLOW_COMMITMENT: &str =
    "mutation($id: ID!) { followCommitment(id: $id) { commitment { followerCount } } }";
const START: &str =
    "mutation($i: StartThreadInput!) { startThread(input: $i) { thread { id } post { id } } }";
const REPLY: &str =
    "mutation($i: ReplyToThreadInput!) { replyToThread(input: $i) { post { id } } }";
const GROUP: &str = "mutation($i: CreateWorkingGroupInput!) { createWorkingGroup(input: $i) { workingGroup { id } } }";
const JOIN: &str = "mutation($id: ID!) { joinWorkingGroup(id: $id) { membership { id status } } }";
const SCHEDULE: &str =
    "mutation($i: ScheduleMeetupInput!) { scheduleMeetup(input: $i) { meetup { id } } }";
const PUBLISH_UPDATE: &str = "mutation($i: PublishCommitmentUpdateInput!) { publishCommitmentUpdate(input: $i) { update { id } } }";

impl Harness {
    /// One digest run at `now`, then the outbox delivered.
    async fn digest_at(&self, now: DateTime<Utc>) -> DigestRun {
        let r = digest::run_once(&self.app.db, &self.app.settings, &self.ctx.tokens, now)
            .await
            .expect("a digest run");
        self.deliver().await;
        r
    }

    fn digests_to(&self, email: &str) -> Vec<OutgoingMail> {
        self.app
            .mails_to(email)
            .into_iter()
            .filter(|m| m.template == "digest")
            .collect()
    }

    /// A notification waiting for `who`'s digest, written directly (for tests where the
    /// event behind it is not the point): a role change, filed under the account.
    async fn pending(&self, who: &Session, kind: Kind, text: &str, at: DateTime<Utc>) -> Uuid {
        let id = Uuid::now_v7();
        let recipient: Uuid = who.user_id.parse().unwrap();
        notification::Entity::insert(notification::ActiveModel {
            id: Set(id),
            recipient_id: Set(recipient),
            event_key: Set(format!("test:{id}")),
            kind: Set(kind),
            actor_id: Set(None),
            subject_type: Set(SubjectType::User),
            subject_id: Set(recipient),
            text: Set(text.to_string()),
            created_at: Set(at),
            read_at: Set(None),
            digest_pending: Set(true),
        })
        .exec(&self.app.db)
        .await
        .unwrap();
        id
    }

    async fn prefs_row(
        &self,
        who: &Session,
        set: impl FnOnce(&mut notification_preference::Model),
    ) {
        let mut row = notification_preference::Model {
            user_id: who.user_id.parse().unwrap(),
            my_suggestions: EmailPreference::DailyDigest,
            followed_commitments: EmailPreference::DailyDigest,
            discussions: EmailPreference::DailyDigest,
            meetups: EmailPreference::Immediate,
            moderation: EmailPreference::DailyDigest,
            digest_hour: None,
            time_zone: "Europe/London".into(),
            last_digest_on: None,
            updated_at: Utc::now(),
        };
        set(&mut row);
        let active: notification_preference::ActiveModel = row.into();
        notification_preference::Entity::insert(active)
            .exec(&self.app.db)
            .await
            .unwrap();
    }

    async fn still_pending(&self, who: &Session) -> Vec<String> {
        notification::Entity::find()
            .filter(notification::Column::RecipientId.eq(who.user_id.parse::<Uuid>().unwrap()))
            .filter(notification::Column::DigestPending.eq(true))
            .order_by_asc(notification::Column::CreatedAt)
            .all(&self.app.db)
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.text)
            .collect()
    }

    async fn last_digest_on(&self, who: &Session) -> Option<String> {
        notification_preference::Entity::find_by_id(who.user_id.parse::<Uuid>().unwrap())
            .one(&self.app.db)
            .await
            .unwrap()
            .and_then(|p| p.last_digest_on)
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn id_of(r: &Value, path: &[&str]) -> String {
    let mut v = r;
    for p in path {
        v = &v[*p];
    }
    v.as_str().unwrap_or_else(|| panic!("{r}")).to_string()
}

/// Where `needle` first appears in `hay` (it must).
fn at(hay: &str, needle: &str) -> usize {
    hay.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{hay}"))
}

#[tokio::test]
async fn a_digest_groups_by_commitment_group_and_thread_newest_first() {
    let h = Harness::new().await;
    let official = h.user("official@example.org", "Olu").await;
    h.app
        .make_role("official@example.org", Role::Official)
        .await;
    let org = h.user("org@example.org", "Orla").await;
    h.app.make_role("org@example.org", Role::Organiser).await;
    let ann = h.user("ann@example.org", "Ann <Reader>").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let base = h
        .app
        .settings
        .public
        .base_url
        .trim_end_matches('/')
        .to_string();

    // Real events, delivered by the worker: Ann follows a commitment, joins a group, and
    // starts a thread with a hostile title.
    let commitment = create_commitment(&h.app, &official, "UK0101", "Open registers").await;
    h.gql(&ann, FOLLOW_COMMITMENT, json!({"id": commitment}))
        .await;
    let r = h
        .gql(
            &org,
            GROUP,
            json!({"i": {"name": "Data users", "slug": "data-users", "description": "We meet.", "visibility": "PUBLIC", "joinPolicy": "OPEN"}}),
        )
        .await;
    let group = id_of(&r, &["data", "createWorkingGroup", "workingGroup", "id"]);
    h.gql(&ann, JOIN, json!({"id": group})).await;
    let hostile = "<script>alert(1)</script> & \"budgets\"";
    let r = h
        .gql(
            &ann,
            START,
            json!({"i": {"commitmentId": commitment, "title": hostile, "body": "Which lines?"}}),
        )
        .await;
    let thread = id_of(&r, &["data", "startThread", "thread", "id"]);
    h.deliver().await;
    let before: Vec<Uuid> = notification::Entity::find()
        .all(&h.app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();

    // Four events for Ann, in this order: a suggestion on the commitment, a reply in her
    // thread, an official update on the commitment, a meet-up in her group.
    let suggestion = create_suggestion(&h.app, &bob, &commitment, "Publish weekly").await;
    h.deliver().await;
    let r = h
        .gql(
            &bob,
            REPLY,
            json!({"i": {"threadId": thread, "body": "Line 4, surely."}}),
        )
        .await;
    let post = id_of(&r, &["data", "replyToThread", "post", "id"]);
    h.deliver().await;
    let r = h
        .gql(
            &official,
            PUBLISH_UPDATE,
            json!({"i": {"commitmentId": commitment, "title": "Halfway there", "body": "News."}}),
        )
        .await;
    let update = id_of(&r, &["data", "publishCommitmentUpdate", "update", "id"]);
    h.deliver().await;
    let starts = (Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let ends = (Utc::now() + chrono::Duration::days(7) + chrono::Duration::hours(2)).to_rfc3339();
    let r = h
        .gql(
            &org,
            SCHEDULE,
            json!({"i": {"workingGroupId": group, "title": "Forum", "agenda": "Talk", "startsAt": starts, "endsAt": ends, "timeZone": "Europe/London", "venue": "Room 1"}}),
        )
        .await;
    let meetup = id_of(&r, &["data", "scheduleMeetup", "meetup", "id"]);
    h.deliver().await;

    // Ann's four, queued for her digest as the fan-out does for DAILY_DIGEST groups (the
    // meet-up's group is IMMEDIATE by default: queued for the digest before she changed
    // it, it still goes in), on a winter morning before 08:00 in London, in event order.
    let ann_id: Uuid = ann.user_id.parse().unwrap();
    let mine = notification::Entity::find()
        .filter(notification::Column::RecipientId.eq(ann_id))
        .filter(notification::Column::Id.is_not_in(before))
        .order_by_asc(notification::Column::Id)
        .all(&h.app.db)
        .await
        .unwrap();
    let kinds: Vec<Kind> = mine.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::SuggestionCreated,
            Kind::PostReply,
            Kind::UpdatePublished,
            Kind::MeetupScheduled
        ]
    );
    for (i, n) in mine.iter().enumerate() {
        notification::Entity::update_many()
            .col_expr(notification::Column::DigestPending, Expr::value(true))
            .col_expr(
                notification::Column::CreatedAt,
                Expr::value(utc(2027, 1, 14, 7, 10 * i as u32)),
            )
            .filter(notification::Column::Id.eq(n.id))
            .exec(&h.app.db)
            .await
            .unwrap();
    }

    let run = h.digest_at(utc(2027, 1, 14, 8, 0)).await;
    assert_eq!((run.considered, run.due, run.queued), (1, 1, 1), "{run:?}");
    let mails = h.digests_to("ann@example.org");
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.subject, "Your Convene digest: 4 new notifications");
    assert!(h.digests_to("bob@example.org").is_empty());

    // Sections by their newest item: the group (meet-up, 07:30), the commitment (update
    // 07:20, then the suggestion 07:00), the thread (reply 07:10).
    // (HTML escapes `/` in attributes and text too; a browser reads it back.)
    let html = m.html.replace("&#x2f;", "/");
    for body in [&m.text, &html] {
        let group_at = at(body, "Data users");
        let commitment_at = at(body, "UK0101: Open registers");
        let update_at = at(body, "Official update on UK0101");
        let suggestion_at = at(body, "New suggestion on UK0101");
        let thread_at = at(body, &format!("{base}/threads/{thread}"));
        assert!(
            group_at < commitment_at && commitment_at < update_at,
            "{body}"
        );
        assert!(
            update_at < suggestion_at && suggestion_at < thread_at,
            "{body}"
        );
        assert!(body.contains(&format!("{base}/meetups/{meetup}")));
        assert!(body.contains(&format!("{base}/groups/data-users")));
        assert!(body.contains(&format!("{base}/commitments/UK0101")));
        assert!(body.contains(&format!("{base}/updates/{update}")));
        assert!(body.contains(&format!("{base}/suggestions/{suggestion}")));
        assert!(body.contains(&format!("{base}/threads/{thread}#post-{post}")));
    }
    // The recipient's name and the thread's title: plain in the text, escaped in HTML.
    assert!(m.text.contains("Hello Ann <Reader>,"), "{}", m.text);
    assert!(m.text.contains(hostile));
    assert!(m.html.contains("Hello Ann &lt;Reader&gt;,"), "{}", m.html);
    assert!(!m.html.contains("<script>"), "{}", m.html);
    assert!(!m.html.contains("<Reader>"));
    assert!(
        m.html
            .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{}",
        m.html
    );

    // The unsubscribe link stops the digest, for Ann.
    let marker = format!("{base}/unsubscribe/");
    let token: String = m.text[at(&m.text, &marker) + marker.len()..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert_eq!(
        unsubscribe::verify(&h.ctx.tokens, &token),
        Some((ann_id, Scope::Digest))
    );
    assert!(html.contains(&format!("{marker}{token}")));
    // Everything went; the day is recorded.
    assert!(h.still_pending(&ann).await.is_empty());
    assert_eq!(h.last_digest_on(&ann).await.as_deref(), Some("2027-01-14"));
}

#[tokio::test]
async fn a_digest_is_never_empty_and_skips_what_is_off_or_undeliverable() {
    let h = Harness::new().await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let cid = h.user("cid@example.org", "Cid").await;
    let dee = h.user("dee@example.org", "Dee").await;
    let eve = h.app.unverified_user("eve@example.org", "Eve").await;
    let morning = utc(2027, 1, 14, 7, 0);
    let eight = utc(2027, 1, 14, 8, 0);

    // Ann has nothing pending (a notification already read about is not a candidate).
    let old = h
        .pending(&ann, Kind::RoleChanged, "Old news", morning)
        .await;
    notification::Entity::update_many()
        .col_expr(notification::Column::DigestPending, Expr::value(false))
        .filter(notification::Column::Id.eq(old))
        .exec(&h.app.db)
        .await
        .unwrap();
    // Bob's only item is in a group he has since turned OFF.
    h.prefs_row(&bob, |p| p.moderation = EmailPreference::Off)
        .await;
    h.pending(&bob, Kind::RoleChanged, "Bob is a moderator", morning)
        .await;
    // Cid turned discussions OFF: only his moderation item goes.
    h.prefs_row(&cid, |p| p.discussions = EmailPreference::Off)
        .await;
    h.pending(&cid, Kind::PostReply, "A reply Cid does not want", morning)
        .await;
    h.pending(&cid, Kind::RoleChanged, "Cid is an official", morning)
        .await;
    // Dee's address bounced too often; Eve never verified hers.
    convene::entities::email_deliverability::Entity::insert(
        convene::entities::email_deliverability::ActiveModel {
            user_id: Set(dee.user_id.parse().unwrap()),
            permanent_failures: Set(3),
            last_error: Set(Some("550 no such user".into())),
            last_failure_at: Set(Some(morning)),
            undeliverable_since: Set(Some(morning)),
        },
    )
    .exec(&h.app.db)
    .await
    .unwrap();
    h.pending(&dee, Kind::RoleChanged, "Dee news", morning)
        .await;
    h.pending(&eve, Kind::RoleChanged, "Eve news", morning)
        .await;

    let run = h.digest_at(eight).await;
    assert_eq!(
        (run.considered, run.due, run.queued, run.skipped),
        (4, 4, 1, 2),
        "{run:?}"
    );
    for who in ["ann", "bob", "dee", "eve"] {
        assert!(
            h.digests_to(&format!("{who}@example.org")).is_empty(),
            "{who} got a digest"
        );
    }
    let mails = h.digests_to("cid@example.org");
    assert_eq!(mails.len(), 1);
    assert!(mails[0].text.contains("Cid is an official"));
    assert!(!mails[0].text.contains("does not want"));
    assert!(mails[0].text.contains("Moderation and your account"));
    assert_eq!(mails[0].subject, "Your Convene digest: 1 new notification");
    // Nothing is left queued for anyone, and only Cid's day is recorded (Bob's empty
    // digest was not a digest).
    for who in [&bob, &cid, &dee, &eve] {
        assert!(h.still_pending(who).await.is_empty());
    }
    assert_eq!(h.last_digest_on(&bob).await, None);
    assert_eq!(h.last_digest_on(&cid).await.as_deref(), Some("2027-01-14"));
    // The next run finds nobody.
    let run = h.digest_at(utc(2027, 1, 15, 8, 0)).await;
    assert_eq!(run, DigestRun::default());
}

#[tokio::test]
async fn a_digest_goes_once_a_day_even_when_runs_race() {
    let h = Harness::new().await;
    let ann = h.user("ann@example.org", "Ann").await;
    h.pending(
        &ann,
        Kind::RoleChanged,
        "First news",
        utc(2027, 1, 14, 6, 0),
    )
    .await;

    // Two instances at 08:00 at once: one digest.
    let now = utc(2027, 1, 14, 8, 0);
    let (a, b) = tokio::join!(
        digest::run_once(&h.app.db, &h.app.settings, &h.ctx.tokens, now),
        digest::run_once(&h.app.db, &h.app.settings, &h.ctx.tokens, now),
    );
    assert_eq!(a.unwrap().queued + b.unwrap().queued, 1);
    h.deliver().await;
    assert_eq!(h.digests_to("ann@example.org").len(), 1);

    // Later that day, something new: it waits for tomorrow, however often the job runs.
    h.pending(
        &ann,
        Kind::RoleChanged,
        "Second news",
        utc(2027, 1, 14, 9, 0),
    )
    .await;
    for hour in [9, 12, 23] {
        let run = h.digest_at(utc(2027, 1, 14, hour, 30)).await;
        assert_eq!(run.queued, 0, "{run:?}");
    }
    assert_eq!(h.digests_to("ann@example.org").len(), 1);

    // Even with the recorded day lost, the day's key holds: no second digest, the item is
    // left for tomorrow, and the day is recorded again.
    exec(
        &h.app.db,
        "UPDATE notification_preferences SET last_digest_on = NULL",
    )
    .await;
    h.pending(
        &ann,
        Kind::RoleChanged,
        "Early news",
        utc(2027, 1, 14, 7, 0),
    )
    .await;
    let run = h.digest_at(utc(2027, 1, 14, 23, 45)).await;
    assert_eq!((run.due, run.queued), (1, 0), "{run:?}");
    assert_eq!(h.digests_to("ann@example.org").len(), 1);
    assert_eq!(h.last_digest_on(&ann).await.as_deref(), Some("2027-01-14"));
    assert_eq!(h.digest_at(utc(2027, 1, 14, 23, 50)).await.due, 0);

    // The next morning: one more, with what waited.
    let run = h.digest_at(utc(2027, 1, 15, 8, 0)).await;
    assert_eq!(run.queued, 1);
    let mails = h.digests_to("ann@example.org");
    assert_eq!(mails.len(), 2);
    let second = mails
        .iter()
        .find(|m| m.text.contains("Second news"))
        .expect("the second day's digest");
    assert!(second.text.contains("Early news"));
    assert!(!second.text.contains("First news"));
    assert!(h.still_pending(&ann).await.is_empty());
    assert_eq!(h.last_digest_on(&ann).await.as_deref(), Some("2027-01-15"));
}

#[tokio::test]
async fn a_digest_goes_at_the_hour_in_the_persons_time_zone() {
    let h = Harness::new().await;
    // Ann reads at 08:00 in New York (13:00 UTC in winter); Bob has the defaults (08:00 in
    // London); Cid chose 18:00 in London.
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let cid = h.user("cid@example.org", "Cid").await;
    h.prefs_row(&ann, |p| {
        p.time_zone = "America/New_York".into();
        p.digest_hour = Some(8);
    })
    .await;
    h.prefs_row(&cid, |p| p.digest_hour = Some(18)).await;
    for who in [&ann, &bob, &cid] {
        h.pending(
            who,
            Kind::RoleChanged,
            "Before dawn",
            utc(2027, 1, 14, 5, 0),
        )
        .await;
    }
    // Bob's second item comes after his moment: tomorrow's.
    h.pending(
        &bob,
        Kind::RoleChanged,
        "After breakfast",
        utc(2027, 1, 14, 8, 30),
    )
    .await;
    let sent = |h: &Harness| {
        ["ann", "bob", "cid"].map(|w| h.digests_to(&format!("{w}@example.org")).len())
    };

    assert_eq!(h.digest_at(utc(2027, 1, 14, 7, 59)).await.queued, 0);
    let run = h.digest_at(utc(2027, 1, 14, 8, 0)).await;
    assert_eq!((run.considered, run.due, run.queued), (3, 1, 1));
    assert_eq!(sent(&h), [0, 1, 0]);
    let bobs = h.digests_to("bob@example.org");
    assert!(bobs[0].text.contains("Before dawn"));
    assert!(!bobs[0].text.contains("After breakfast"));
    assert_eq!(h.still_pending(&bob).await, ["After breakfast"]);

    assert_eq!(h.digest_at(utc(2027, 1, 14, 12, 59)).await.queued, 0);
    assert_eq!(h.digest_at(utc(2027, 1, 14, 13, 0)).await.queued, 1);
    assert_eq!(sent(&h), [1, 1, 0]);
    assert_eq!(h.last_digest_on(&ann).await.as_deref(), Some("2027-01-14"));
    assert_eq!(h.digest_at(utc(2027, 1, 14, 17, 59)).await.queued, 0);
    assert_eq!(h.digest_at(utc(2027, 1, 14, 18, 0)).await.queued, 1);
    assert_eq!(sent(&h), [1, 1, 1]);

    // Past midnight UTC it is still the 14th in New York: Ann's day is done. Bob's waiting
    // item goes at 08:00 on the 15th.
    h.pending(
        &ann,
        Kind::RoleChanged,
        "Evening in New York",
        utc(2027, 1, 15, 1, 0),
    )
    .await;
    assert_eq!(h.digest_at(utc(2027, 1, 15, 2, 0)).await.queued, 0);
    assert_eq!(h.digest_at(utc(2027, 1, 15, 8, 0)).await.queued, 1);
    assert_eq!(sent(&h), [1, 2, 1]);
    assert!(h.digests_to("bob@example.org")[1]
        .text
        .contains("After breakfast"));
    assert_eq!(h.digest_at(utc(2027, 1, 15, 13, 0)).await.queued, 1);
    assert_eq!(sent(&h), [2, 2, 1]);
    assert_eq!(h.last_digest_on(&ann).await.as_deref(), Some("2027-01-15"));

    // In summer London is an hour ahead of UTC: Bob's 08:00 is 07:00 UTC.
    h.pending(
        &bob,
        Kind::RoleChanged,
        "Summer news",
        utc(2027, 7, 14, 5, 0),
    )
    .await;
    assert_eq!(h.digest_at(utc(2027, 7, 14, 6, 59)).await.queued, 0);
    assert_eq!(h.digest_at(utc(2027, 7, 14, 7, 0)).await.queued, 1);
    assert_eq!(sent(&h), [2, 3, 1]);
}

#[tokio::test]
async fn a_digest_run_costs_the_same_statements_for_3_people_or_50() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let h = Harness::new().await;
    let official = h.user("official@example.org", "Olu").await;
    h.app
        .make_role("official@example.org", Role::Official)
        .await;
    let commitment = create_commitment(&h.app, &official, "UK0102", "Open budgets").await;
    let suggestion: Uuid = create_suggestion(&h.app, &official, &commitment, "Line items")
        .await
        .parse()
        .unwrap();
    // 60 accounts, written directly.
    let now = Utc::now();
    let people: Vec<Uuid> = (0..60).map(|_| Uuid::now_v7()).collect();
    convene::entities::user::Entity::insert_many(people.iter().enumerate().map(|(i, id)| {
        let email = format!("reader{i}@example.org");
        convene::entities::user::ActiveModel::from(convene::entities::user::Model {
            id: *id,
            email: email.clone(),
            email_normalized: email,
            password_hash: "x".into(),
            display_name: format!("Reader {i}"),
            bio: String::new(),
            organisation: String::new(),
            sector: convene::entities::user::Sector::Individual,
            role: Role::Member,
            email_verified_at: Some(now),
            created_at: now,
            updated_at: now,
            suspended_until: None,
        })
    }))
    .exec_without_returning(&h.app.db)
    .await
    .unwrap();
    let queue = |who: &[Uuid], day: u32| {
        let rows: Vec<notification::ActiveModel> = who
            .iter()
            .flat_map(|p| {
                [
                    (SubjectType::Suggestion, suggestion, Kind::SuggestionCreated),
                    (SubjectType::User, *p, Kind::RoleChanged),
                ]
                .map(|(t, subject, kind)| {
                    let id = Uuid::now_v7();
                    notification::ActiveModel::from(notification::Model {
                        id,
                        recipient_id: *p,
                        event_key: format!("test:{id}"),
                        kind,
                        actor_id: None,
                        subject_type: t,
                        subject_id: subject,
                        text: "News".into(),
                        created_at: utc(2027, 1, day, 7, 0),
                        read_at: None,
                        digest_pending: true,
                    })
                })
            })
            .collect();
        notification::Entity::insert_many(rows).exec_without_returning(&h.app.db)
    };

    let mut counted = convene::db::connect_url(&h.app.database_url, 2)
        .await
        .unwrap();
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = statements.clone();
    counted.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let mut costs = Vec::new();
    for (who, day) in [(&people[..3], 14), (&people[3..53], 15)] {
        queue(who, day).await.unwrap();
        statements.store(0, Ordering::SeqCst);
        let run = digest::run_once(
            &counted,
            &h.app.settings,
            &h.ctx.tokens,
            utc(2027, 1, day, 8, 0),
        )
        .await
        .unwrap();
        assert_eq!(run.queued, who.len());
        costs.push(statements.load(Ordering::SeqCst));
    }
    assert_eq!(
        costs[0], costs[1],
        "statements for 3 vs 50 people: {costs:?}"
    );
    assert!(costs[0] <= 12, "a digest run took {} statements", costs[0]);
    h.deliver().await;
    assert_eq!(h.digests_to("reader52@example.org").len(), 1);
    assert!(h.digests_to("reader52@example.org")[0]
        .text
        .contains("UK0102: Open budgets"));
}
