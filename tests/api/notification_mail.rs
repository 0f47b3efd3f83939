//! Notification mail: each preference (IMMEDIATE, DAILY_DIGEST, OFF) honoured by the
//! fan-out, the defaults, the preferences API, one-click unsubscribe through real POSTs,
//! and `List-Unsubscribe` on a mail received by a real SMTP server.
//!
//! The background worker is off (but for the SMTP test): each test drives the outbox
//! worker itself, so what exists before and after a fan-out is known.

use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use convene::config::{MailTransportKind, SmtpTls};
use convene::entities::user::Role;
use convene::mail::OutgoingMail;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::smtp_server::SmtpServer;

const PREFS: &str = "{ notificationPreferences { mySuggestions followedCommitments discussions meetups moderation digestHour timeZone } }";
const SET_PREFS: &str = "mutation($i: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $i) { notificationPreferences { mySuggestions followedCommitments discussions meetups moderation digestHour timeZone } } }";
const START: &str =
    "mutation($i: StartThreadInput!) { startThread(input: $i) { thread { id } post { id } } }";
const REPLY: &str =
    "mutation($i: ReplyToThreadInput!) { replyToThread(input: $i) { post { id } } }";
const RESPOND: &str =
    "mutation($i: PublishResponseInput!) { publishResponse(input: $i) { response { id } } }";
const SUPPORT: &str =
    "mutation($id: ID!) { supportSuggestion(id: $id) { suggestion { supportCount } } }";
const FOLLOW_SUGGESTION: &str =
    "mutation($id: ID!) { followSuggestion(id: $id) { suggestion { followerCount } } }";
const GROUP: &str = "mutation($i: CreateWorkingGroupInput!) { createWorkingGroup(input: $i) { workingGroup { id } } }";
const SCHEDULE: &str =
    "mutation($i: ScheduleMeetupInput!) { scheduleMeetup(input: $i) { meetup { id } } }";
const UPDATE_MEETUP: &str =
    "mutation($i: UpdateMeetupInput!) { updateMeetup(input: $i) { meetup { sequence } } }";
const RSVP: &str = "mutation($i: RsvpMeetupInput!) { rsvpMeetup(input: $i) { rsvp { status } } }";

impl Harness {
    async fn prefs(&self, who: &Session, input: Value) -> Value {
        self.gql(who, SET_PREFS, json!({ "i": input })).await["data"]
            ["updateNotificationPreferences"]["notificationPreferences"]
            .clone()
    }

    /// Notification mails (of any template but verification) sent to `email`.
    fn notification_mails(&self, email: &str) -> Vec<OutgoingMail> {
        self.app
            .mails_to(email)
            .into_iter()
            .filter(|m| m.template != "verify_email")
            .collect()
    }

    /// (digest_pending, count) of `who`'s notifications.
    async fn digest_pending(&self, who: &Session) -> (i64, i64) {
        use convene::entities::notification;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let id: uuid::Uuid = who.user_id.parse().unwrap();
        let rows = notification::Entity::find()
            .filter(notification::Column::RecipientId.eq(id))
            .all(&self.app.db)
            .await
            .unwrap();
        let pending = rows.iter().filter(|n| n.digest_pending).count();
        (
            i64::try_from(pending).unwrap(),
            i64::try_from(rows.len()).unwrap(),
        )
    }
}

/// Marks `who`'s address unverified, as it would be before verifying a new one.
async fn unverify(db: &sea_orm::DatabaseConnection, who: &Session) {
    use convene::entities::user;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let id: uuid::Uuid = who.user_id.parse().unwrap();
    user::Entity::update_many()
        .col_expr(
            user::Column::EmailVerifiedAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await
        .unwrap();
}

/// Marks `who`'s address undeliverable, as repeated 5xx answers would.
async fn mark_undeliverable(db: &sea_orm::DatabaseConnection, who: &Session) {
    use convene::entities::email_deliverability;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    email_deliverability::ActiveModel {
        user_id: Set(who.user_id.parse().unwrap()),
        permanent_failures: Set(3),
        last_error: Set(Some("550 no such user".into())),
        last_failure_at: Set(Some(Utc::now())),
        undeliverable_since: Set(Some(Utc::now())),
    }
    .insert(db)
    .await
    .unwrap();
}

/// The `List-Unsubscribe` URL of a mail.
fn unsubscribe_url(m: &OutgoingMail) -> String {
    m.list_unsubscribe
        .as_ref()
        .expect("a List-Unsubscribe")
        .url
        .clone()
}

/// The path of `/unsubscribe/{token}` in a URL.
fn unsubscribe_path(url: &str) -> String {
    let at = url.find("/unsubscribe/").expect("an unsubscribe path");
    url[at..].to_string()
}

/// A thread on a new commitment, started by the first of `posters`, each of the others
/// posting in it once: whoever posts next, they all hear of it.
struct Thread {
    id: String,
}

async fn thread_with_posters(h: &Harness, posters: &[&Session], title: &str) -> Thread {
    h.user("official@example.org", "Olu").await;
    h.app
        .make_role("official@example.org", Role::Official)
        .await;
    let official = h.app.logged_in("official@example.org").await;
    let commitment = create_commitment(&h.app, &official, "UK0190", "Open mail").await;
    let (first, rest) = posters.split_first().expect("a thread author");
    let r = h
        .gql(
            first,
            START,
            json!({"i": {"commitmentId": commitment, "title": title, "body": "Which ones?"}}),
        )
        .await;
    let id = r["data"]["startThread"]["thread"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for p in rest {
        h.gql(p, REPLY, json!({"i": {"threadId": id, "body": "Me too."}}))
            .await;
    }
    h.deliver().await;
    Thread { id }
}

#[tokio::test]
async fn immediate_digest_and_off_are_each_honoured_and_the_actor_gets_nothing() {
    let h = Harness::new().await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let cid = h.user("cid@example.org", "Cid").await;
    let dee = h.user("dee@example.org", "Dee").await;
    let eve = h.user("eve@example.org", "Eve").await;
    let hostile = "<script>alert(1)</script> & \"budgets\"";
    let t = thread_with_posters(&h, &[&ann, &bob, &cid, &dee, &eve], hostile).await;
    // Ann and Bob want mail at once; Cid keeps the default (the digest); Dee wants none.
    for who in [&ann, &bob, &eve] {
        h.prefs(who, json!({"discussions": "IMMEDIATE"})).await;
    }
    h.prefs(&dee, json!({"discussions": "OFF"})).await;
    let before: Vec<(i64, i64)> = {
        let mut v = Vec::new();
        for who in [&ann, &bob, &cid, &dee, &eve] {
            v.push(h.digest_pending(who).await);
        }
        v
    };
    let sent_before = |e: &str| h.notification_mails(e).len();
    let (a0, b0, c0, d0, e0) = (
        sent_before("ann@example.org"),
        sent_before("bob@example.org"),
        sent_before("cid@example.org"),
        sent_before("dee@example.org"),
        sent_before("eve@example.org"),
    );

    // Eve posts: all the others hear of it.
    h.gql(
        &eve,
        REPLY,
        json!({"i": {"threadId": t.id, "body": "And me."}}),
    )
    .await;
    h.deliver().await;

    // IMMEDIATE: one mail each, not left for the digest.
    for (who, email, before_n) in [(&ann, "ann@example.org", a0), (&bob, "bob@example.org", b0)] {
        let mails = h.notification_mails(email);
        assert_eq!(mails.len(), before_n + 1, "{email}: {mails:?}");
        let m = mails.last().unwrap();
        assert_eq!(m.template, "notification");
        assert!(m.text.contains(hostile), "{}", m.text);
        assert!(!m.html.contains("<script>"), "{}", m.html);
        assert!(m.html.contains("&lt;script&gt;"), "{}", m.html);
        let name = if email.starts_with("ann") {
            "Ann"
        } else {
            "Bob"
        };
        assert!(m.text.contains(&format!("Hello {name}")), "{}", m.text);
        let link = format!(
            "{}/threads/{}#post-",
            h.app.settings.public.base_url.trim_end_matches('/'),
            t.id
        );
        assert!(m.text.contains(&link), "{}", m.text);
        assert!(m.html.replace("&#x2f;", "/").contains(&link), "{}", m.html);
        assert!(m.text.contains("/unsubscribe/"), "{}", m.text);
        assert!(m.html.contains("/unsubscribe/"), "{}", m.html);
        assert!(m.list_unsubscribe.is_some());
        let i = if email.starts_with("ann") { 0 } else { 1 };
        let (pending, all) = h.digest_pending(who).await;
        assert_eq!(pending, before[i].0);
        assert_eq!(all, before[i].1 + 1);
    }
    // DAILY_DIGEST: no mail; the notification waits for the digest.
    assert_eq!(h.notification_mails("cid@example.org").len(), c0);
    let (pending, all) = h.digest_pending(&cid).await;
    assert_eq!((pending, all), (before[2].0 + 1, before[2].1 + 1));
    // OFF: no mail, nothing for the digest; the in-app notification stays.
    assert_eq!(h.notification_mails("dee@example.org").len(), d0);
    let (pending, all) = h.digest_pending(&dee).await;
    assert_eq!((pending, all), (before[3].0, before[3].1 + 1));
    // The actor: nothing at all.
    assert_eq!(h.notification_mails("eve@example.org").len(), e0);
    assert_eq!(h.digest_pending(&eve).await, before[4]);
    // One row per mail, keyed by the notification.
    assert_eq!(
        count(
            &h.app.db,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'email' AND idempotency_key LIKE 'notify-mail:%'"
        )
        .await,
        i64::try_from(a0 + b0 + 2).unwrap()
    );
    // Delivering again sends nothing more.
    h.deliver().await;
    assert_eq!(h.notification_mails("ann@example.org").len(), a0 + 1);
}

#[tokio::test]
async fn by_default_a_meetup_change_is_mailed_at_once_and_a_response_waits_for_the_digest() {
    let h = Harness::new().await;
    h.user("org@example.org", "Orla").await;
    h.app.make_role("org@example.org", Role::Organiser).await;
    let org = h.app.logged_in("org@example.org").await;
    let ann = h.user("ann@example.org", "Ann").await;
    h.user("official@example.org", "Olu").await;
    h.app
        .make_role("official@example.org", Role::Official)
        .await;
    let official = h.app.logged_in("official@example.org").await;
    let r = h
        .gql(
            &org,
            GROUP,
            json!({"i": {"name": "Data users", "slug": "data-users", "description": "We meet.", "visibility": "PUBLIC", "joinPolicy": "OPEN"}}),
        )
        .await;
    let group = r["data"]["createWorkingGroup"]["workingGroup"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = h
        .gql(
            &org,
            SCHEDULE,
            json!({"i": {"workingGroupId": group, "title": "Forum", "agenda": "Talk", "startsAt": (Utc::now() + Duration::days(7)).to_rfc3339(), "endsAt": (Utc::now() + Duration::days(7) + Duration::hours(2)).to_rfc3339(), "timeZone": "Europe/London", "venue": "Room 1"}}),
        )
        .await;
    let meetup = r["data"]["scheduleMeetup"]["meetup"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.gql(
        &ann,
        RSVP,
        json!({"i": {"meetupId": meetup, "attending": true}}),
    )
    .await;
    h.deliver().await;
    // The RSVP confirmation is direct mail, without List-Unsubscribe.
    let rsvp = h.app.wait_for_mail("ann@example.org", "meetup_rsvp").await;
    assert!(rsvp.list_unsubscribe.is_none());
    h.gql(
        &org,
        UPDATE_MEETUP,
        json!({"i": {"id": meetup, "venue": "Room 2"}}),
    )
    .await;
    h.deliver().await;
    let changed: Vec<OutgoingMail> = h
        .app
        .mails_to("ann@example.org")
        .into_iter()
        .filter(|m| m.template == "meetup_changed")
        .collect();
    assert_eq!(changed.len(), 1, "one mail per event and person");
    let m = &changed[0];
    assert!(m.text.contains("Hello Ann"), "{}", m.text);
    assert_eq!(m.attachments.len(), 1);
    assert!(m.attachments[0].content_type.contains("method=REQUEST"));
    assert!(unsubscribe_url(m).contains("/unsubscribe/"));
    assert!(m.text.contains("/unsubscribe/"), "{}", m.text);
    // The organiser made the change and hears nothing of it.
    assert!(h
        .app
        .mails_to("org@example.org")
        .iter()
        .all(|m| m.template != "meetup_changed"));

    // A response on a suggestion Ann follows: in the digest by default.
    let commitment = create_commitment(&h.app, &official, "UK0191", "Open defaults").await;
    let s = create_suggestion(&h.app, &org, &commitment, "Publish the register weekly").await;
    h.gql(&ann, FOLLOW_SUGGESTION, json!({"id": s})).await;
    h.deliver().await;
    let before = h.digest_pending(&ann).await;
    let mails = h.notification_mails("ann@example.org").len();
    h.gql(
        &official,
        RESPOND,
        json!({"i": {"suggestionId": s, "body": "We will.", "newStatus": "ACCEPTED"}}),
    )
    .await;
    h.deliver().await;
    assert_eq!(h.notification_mails("ann@example.org").len(), mails);
    assert_eq!(h.digest_pending(&ann).await, (before.0 + 1, before.1 + 1));
}

#[tokio::test]
async fn preferences_read_and_change_partially_and_bad_input_names_the_field() {
    let h = Harness::new().await;
    let ann = h.user("ann@example.org", "Ann").await;
    let r = h.app.gql(None, PREFS, json!({})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    let r = h
        .app
        .gql(None, SET_PREFS, json!({"i": {"meetups": "OFF"}}))
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");

    let r = h.gql(&ann, PREFS, json!({})).await;
    assert_eq!(
        r["data"]["notificationPreferences"],
        json!({"mySuggestions": "DAILY_DIGEST", "followedCommitments": "DAILY_DIGEST", "discussions": "DAILY_DIGEST", "meetups": "IMMEDIATE", "moderation": "DAILY_DIGEST", "digestHour": 8, "timeZone": "Europe/London"})
    );
    let p = h
        .prefs(&ann, json!({"meetups": "OFF", "digestHour": 18}))
        .await;
    assert_eq!(
        p,
        json!({"mySuggestions": "DAILY_DIGEST", "followedCommitments": "DAILY_DIGEST", "discussions": "DAILY_DIGEST", "meetups": "OFF", "moderation": "DAILY_DIGEST", "digestHour": 18, "timeZone": "Europe/London"})
    );
    // A second, partial change keeps the first.
    let p = h
        .prefs(
            &ann,
            json!({"discussions": "IMMEDIATE", "timeZone": "America/New_York"}),
        )
        .await;
    assert_eq!(p["meetups"], "OFF");
    assert_eq!(p["digestHour"], 18);
    assert_eq!(p["discussions"], "IMMEDIATE");
    assert_eq!(p["timeZone"], "America/New_York");
    assert_eq!(
        h.gql(&ann, PREFS, json!({})).await["data"]["notificationPreferences"],
        p
    );

    for (input, field) in [
        (json!({"digestHour": 24}), "digestHour"),
        (json!({"digestHour": -1}), "digestHour"),
        (json!({"timeZone": "Mars/Olympus_Mons"}), "timeZone"),
        (json!({"meetups": "OFF", "timeZone": ""}), "timeZone"),
    ] {
        let r = h
            .app
            .gql(Some(&ann.access), SET_PREFS, json!({ "i": input }))
            .await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
        assert_eq!(error_field(&r), field, "{r}");
    }
    // A refused change changes nothing.
    assert_eq!(
        h.gql(&ann, PREFS, json!({})).await["data"]["notificationPreferences"],
        p
    );
    assert_eq!(
        count(&h.app.db, "SELECT COUNT(*) FROM notification_preferences").await,
        1
    );
}

#[tokio::test]
async fn one_click_unsubscribe_through_a_real_post_and_a_forged_token_changes_nothing() {
    let h = Harness::new().await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let t = thread_with_posters(&h, &[&ann, &bob], "Budget lines").await;
    h.prefs(&ann, json!({"discussions": "IMMEDIATE"})).await;
    h.gql(
        &bob,
        REPLY,
        json!({"i": {"threadId": t.id, "body": "Again."}}),
    )
    .await;
    h.deliver().await;
    let m = h
        .notification_mails("ann@example.org")
        .into_iter()
        .last()
        .expect("a notification mail");
    let path = unsubscribe_path(&unsubscribe_url(&m));
    let client = &h.app.client;

    // The page names what will stop and asks to confirm; showing it changes nothing.
    let page = client.get(h.app.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let body = page.text().await.unwrap();
    assert!(body.contains("replies and discussions"), "{body}");
    assert!(body.contains("<form method=\"post\""), "{body}");
    let prefs = h.gql(&ann, PREFS, json!({})).await;
    assert_eq!(
        prefs["data"]["notificationPreferences"]["discussions"],
        "IMMEDIATE"
    );

    // A forged token: 404, nothing changes.
    let forged = format!("{}x", path.trim_end_matches(|c: char| c != '.'));
    for url in [
        h.app.url(&forged),
        h.app.url("/unsubscribe/nonsense"),
        h.app.url(&path.replace("discussions", "meetups")),
    ] {
        let r = client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{url}");
        assert_eq!(client.get(&url).send().await.unwrap().status(), 404);
    }
    let prefs = h.gql(&ann, PREFS, json!({})).await;
    assert_eq!(
        prefs["data"]["notificationPreferences"]["discussions"],
        "IMMEDIATE"
    );

    // The one-click POST (RFC 8058) applies at once, without logging in; again is harmless.
    for _ in 0..2 {
        let r = client
            .post(h.app.url(&path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        assert!(body.contains("replies and discussions"), "{body}");
    }
    let prefs = h.gql(&ann, PREFS, json!({})).await;
    let p = &prefs["data"]["notificationPreferences"];
    assert_eq!(p["discussions"], "OFF");
    assert_eq!(p["meetups"], "IMMEDIATE", "only the link's group stops");
    // Bob's preferences were never touched.
    let prefs = h.gql(&bob, PREFS, json!({})).await;
    assert_eq!(
        prefs["data"]["notificationPreferences"]["discussions"],
        "DAILY_DIGEST"
    );

    // Mail stops: Bob posts again, Ann gets nothing.
    let before = h.notification_mails("ann@example.org").len();
    h.gql(
        &bob,
        REPLY,
        json!({"i": {"threadId": t.id, "body": "Once more."}}),
    )
    .await;
    h.deliver().await;
    assert_eq!(h.notification_mails("ann@example.org").len(), before);

    // A digest link turns off every group sent by digest, and the others stay.
    let digest = convene::services::unsubscribe::token(
        &h.ctx.tokens,
        ann.user_id.parse().unwrap(),
        convene::services::unsubscribe::Scope::Digest,
    );
    let body = client
        .get(h.app.url(&format!("/unsubscribe/{digest}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("the daily digest"), "{body}");
    let r = client
        .post(h.app.url(&format!("/unsubscribe/{digest}")))
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let prefs = h.gql(&ann, PREFS, json!({})).await;
    assert_eq!(
        prefs["data"]["notificationPreferences"],
        json!({"mySuggestions": "OFF", "followedCommitments": "OFF", "discussions": "OFF", "meetups": "IMMEDIATE", "moderation": "OFF", "digestHour": 8, "timeZone": "Europe/London"})
    );
}

#[tokio::test]
async fn a_follower_who_also_supports_gets_one_mail_and_unverified_or_undeliverable_none() {
    let h = Harness::new().await;
    h.user("official@example.org", "Olu").await;
    h.app
        .make_role("official@example.org", Role::Official)
        .await;
    let official = h.app.logged_in("official@example.org").await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let cid = h.user("cid@example.org", "Cid").await;
    let dee = h.user("dee@example.org", "Dee").await;
    let commitment = create_commitment(&h.app, &official, "UK0192", "Open once").await;
    let s = create_suggestion(&h.app, &ann, &commitment, "Publish the register weekly").await;
    for who in [&bob, &cid, &dee] {
        h.prefs(who, json!({"mySuggestions": "IMMEDIATE"})).await;
        h.gql(who, FOLLOW_SUGGESTION, json!({"id": s})).await;
        h.gql(who, SUPPORT, json!({"id": s})).await;
    }
    h.deliver().await;
    // Cid's address is no longer verified; Dee's is marked undeliverable.
    unverify(&h.app.db, &cid).await;
    mark_undeliverable(&h.app.db, &dee).await;
    let (c0, d0) = (h.digest_pending(&cid).await, h.digest_pending(&dee).await);
    h.gql(
        &official,
        RESPOND,
        json!({"i": {"suggestionId": s, "body": "We will.", "newStatus": "ACCEPTED"}}),
    )
    .await;
    h.deliver().await;
    let mails = h.notification_mails("bob@example.org");
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].text.contains("Publish the register weekly"));
    assert!(
        mails[0].text.contains(&format!("/suggestions/{s}")),
        "{}",
        mails[0].text
    );
    // Nothing for the unverified or undeliverable, not even for the digest.
    assert!(h.notification_mails("cid@example.org").is_empty());
    assert!(h.notification_mails("dee@example.org").is_empty());
    assert_eq!(h.digest_pending(&cid).await, (c0.0, c0.1 + 1));
    assert_eq!(h.digest_pending(&dee).await, (d0.0, d0.1 + 1));
    // Ann, the suggestion's author, keeps the default: the digest.
    assert!(h.notification_mails("ann@example.org").is_empty());
}

#[tokio::test]
async fn list_unsubscribe_headers_arrive_over_smtp_and_their_url_works() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(|s| {
        s.mail.transport = MailTransportKind::Smtp;
        s.mail.smtp.host = "127.0.0.1".into();
        s.mail.smtp.port = smtp.port();
        s.mail.smtp.tls = SmtpTls::None;
        s.mail.smtp.timeout_secs = 5;
    })
    .await;
    // Accounts verified directly: their verification mail went to the SMTP server.
    let mut people = Vec::new();
    for (email, name) in [
        ("official@example.org", "Olu"),
        ("ann@example.org", "Ann"),
        ("bob@example.org", "Bob"),
    ] {
        let r = app.sign_up(email, name).await;
        assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");
        let stamp = if is_postgres() {
            "now()"
        } else {
            "'2026-01-01T00:00:00Z'"
        };
        exec(
            &app.db,
            &format!("UPDATE users SET email_verified_at = {stamp} WHERE email = '{email}'"),
        )
        .await;
        people.push(app.logged_in(email).await);
    }
    app.make_role("official@example.org", Role::Official).await;
    let official = app.logged_in("official@example.org").await;
    let (ann, bob) = (&people[1], &people[2]);
    let commitment = create_commitment(&app, &official, "UK0193", "Open SMTP").await;
    let r = app
        .gql(
            Some(&ann.access),
            SET_PREFS,
            json!({"i": {"discussions": "IMMEDIATE"}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let r = app
        .gql(
            Some(&ann.access),
            START,
            json!({"i": {"commitmentId": commitment, "title": "Budget lines", "body": "Which ones?"}}),
        )
        .await;
    let thread = r["data"]["startThread"]["thread"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .gql(
            Some(&bob.access),
            REPLY,
            json!({"i": {"threadId": thread, "body": "All of them."}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");

    let deadline = Instant::now() + StdDuration::from_secs(15);
    let received = loop {
        if let Some(r) = smtp
            .received_for("ann@example.org")
            .into_iter()
            .find(|m| m.raw().contains("X-Convene-Template: notification"))
        {
            break r;
        }
        assert!(Instant::now() < deadline, "no notification mail to Ann");
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    };
    let message = received.mime();
    let header = message
        .header("List-Unsubscribe")
        .expect("a List-Unsubscribe header")
        .to_string();
    assert_eq!(
        message.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    // `<https-or-base URL>, <mailto:…?subject=unsubscribe%20TOKEN>`
    let parts: Vec<&str> = header.split(", ").collect();
    assert_eq!(parts.len(), 2, "{header}");
    let url = parts[0]
        .strip_prefix('<')
        .and_then(|p| p.strip_suffix('>'))
        .expect("an angle-bracketed URL");
    let base = app.settings.public.base_url.trim_end_matches('/');
    assert!(url.starts_with(&format!("{base}/unsubscribe/")), "{url}");
    let token = url.rsplit('/').next().unwrap();
    assert_eq!(
        parts[1],
        format!("<mailto:no-reply@localhost?subject=unsubscribe%20{token}>")
    );
    assert!(
        !received.raw().contains("List-Unsubscribe: =?"),
        "the header is plain ASCII"
    );
    // The URL works: a one-click POST turns discussions off for Ann.
    let r = app
        .client
        .post(app.url(&unsubscribe_path(url)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app.gql(Some(&ann.access), PREFS, json!({})).await;
    assert_eq!(r["data"]["notificationPreferences"]["discussions"], "OFF");
    // Once sent, the mail's row keeps no unsubscribe token.
    let deadline = Instant::now() + StdDuration::from_secs(15);
    loop {
        let left = count(
            &app.db,
            &format!("SELECT COUNT(*) FROM outbox WHERE payload LIKE '%{token}%'"),
        )
        .await;
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the token stayed in the outbox");
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn the_reminder_is_a_notification_whose_mail_honours_the_meetups_preference() {
    let h = Harness::new().await;
    h.user("org@example.org", "Orla").await;
    h.app.make_role("org@example.org", Role::Organiser).await;
    let org = h.app.logged_in("org@example.org").await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let r = h
        .gql(
            &org,
            GROUP,
            json!({"i": {"name": "Data users", "slug": "data-users", "description": "We meet.", "visibility": "PUBLIC", "joinPolicy": "OPEN"}}),
        )
        .await;
    let group = r["data"]["createWorkingGroup"]["workingGroup"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = h
        .gql(
            &org,
            SCHEDULE,
            json!({"i": {"workingGroupId": group, "title": "Soon <b>forum</b>", "agenda": "Talk", "startsAt": (Utc::now() + Duration::hours(3)).to_rfc3339(), "endsAt": (Utc::now() + Duration::hours(5)).to_rfc3339(), "timeZone": "Europe/London", "venue": "Room 1"}}),
        )
        .await;
    let meetup = r["data"]["scheduleMeetup"]["meetup"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for who in [&ann, &bob] {
        h.gql(
            who,
            RSVP,
            json!({"i": {"meetupId": meetup, "attending": true}}),
        )
        .await;
    }
    // Bob wants no meet-up mail.
    h.prefs(&bob, json!({"meetups": "OFF"})).await;
    h.deliver().await;
    // Queued twice (two instances, or two rounds): one event per person.
    for _ in 0..2 {
        convene::services::meetups::queue_reminders(&h.ctx, 24)
            .await
            .unwrap();
    }
    h.deliver().await;
    let reminders = |email: &str| {
        h.app
            .mails_to(email)
            .into_iter()
            .filter(|m| m.template == "meetup_reminder")
            .collect::<Vec<_>>()
    };
    let ann_mail = reminders("ann@example.org");
    assert_eq!(ann_mail.len(), 1);
    assert!(ann_mail[0].list_unsubscribe.is_some());
    assert!(
        !ann_mail[0].html.contains("<b>forum"),
        "{}",
        ann_mail[0].html
    );
    assert!(reminders("bob@example.org").is_empty());
    assert_eq!(
        count(
            &h.app.db,
            "SELECT COUNT(*) FROM notifications WHERE kind = 'MEETUP_REMINDER'"
        )
        .await,
        2,
        "both hear of it in the app"
    );
}
