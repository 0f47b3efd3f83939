//! Calendars (RFC 5545): the feeds of groups and meet-ups over HTTP, parsed back with an
//! independent iCalendar parser; private groups' secret URLs and their rotation; and the
//! `invite.ics` attachment of meet-up mail, received over SMTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use convene::auth::Actor;
use convene::calendar::{self, Method};
use convene::config::{MailTransportKind, SmtpTls};
use convene::entities::outbox::{self, Status as OutboxStatus};
use convene::entities::user::Role;
use convene::entities::{meetup, membership, rsvp, working_group};
use convene::outbox::enqueue_mail;
use convene::services::{calendar_feeds, Ctx};
use ical::parser::ical::component::{IcalCalendar, IcalEvent};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter,
};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;
use crate::smtp_server::SmtpServer;

const TRICKY_TITLE: &str = "Budgets, open data; and more\nSecond line — café 東京 \\ ok";

fn at(days: i64, hours: i64) -> DateTime<Utc> {
    let t = Utc::now() + chrono::Duration::days(days) + chrono::Duration::hours(hours);
    // Whole seconds, as iCalendar writes them.
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

fn group_model(
    slug: &str,
    visibility: working_group::Visibility,
    creator: Uuid,
) -> working_group::Model {
    let now = Utc::now();
    working_group::Model {
        id: Uuid::now_v7(),
        slug: slug.into(),
        name: format!("Group {slug}, with; commas"),
        description: String::new(),
        description_html: String::new(),
        kind: working_group::Kind::WorkingGroup,
        visibility,
        join_policy: working_group::JoinPolicy::Open,
        outcomes_public: visibility == working_group::Visibility::Public,
        member_count: 0,
        created_by: creator,
        created_at: now,
        updated_at: now,
    }
}

async fn insert_group(
    db: &DatabaseConnection,
    slug: &str,
    visibility: working_group::Visibility,
    creator: Uuid,
) -> working_group::Model {
    group_model(slug, visibility, creator)
        .into_active_model()
        .reset_all()
        .insert(db)
        .await
        .unwrap()
}

async fn insert_membership(
    db: &DatabaseConnection,
    group: &working_group::Model,
    user: Uuid,
    role: membership::Role,
    status: membership::Status,
) -> membership::Model {
    let now = Utc::now();
    membership::ActiveModel {
        id: Set(Uuid::now_v7()),
        working_group_id: Set(group.id),
        user_id: Set(user),
        role: Set(role),
        status: Set(status),
        invited_by: Set(None),
        calendar_key_version: Set(0),
        joined_at: Set(Some(now)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .unwrap()
}

struct NewMeetup<'a> {
    title: &'a str,
    starts_at: DateTime<Utc>,
    venue: Option<&'a str>,
    online_url: Option<&'a str>,
    status: meetup::Status,
    sequence: i32,
}

impl Default for NewMeetup<'_> {
    fn default() -> Self {
        NewMeetup {
            title: "Monthly meet-up",
            starts_at: at(7, 0),
            venue: Some("Room 4"),
            online_url: None,
            status: meetup::Status::Scheduled,
            sequence: 0,
        }
    }
}

fn meetup_model(group: &working_group::Model, m: NewMeetup<'_>) -> meetup::Model {
    let now = Utc::now();
    meetup::Model {
        id: Uuid::now_v7(),
        working_group_id: group.id,
        title: m.title.into(),
        agenda: "1. Welcome\n2. Budgets, and; the rest".into(),
        agenda_html: String::new(),
        starts_at: m.starts_at,
        ends_at: m.starts_at + chrono::Duration::minutes(90),
        time_zone: "Europe/London".into(),
        venue: m.venue.map(str::to_string),
        address: m.venue.map(|_| "1 Horse Guards Rd, London".to_string()),
        online_url: m.online_url.map(str::to_string),
        capacity: Some(20),
        going_count: 0,
        waitlist_count: 0,
        next_waitlist_seq: 1,
        status: m.status,
        cancel_reason: (m.status == meetup::Status::Cancelled).then(|| "No room".into()),
        sequence: m.sequence,
        reminded_at: None,
        created_by: group.created_by,
        created_at: now,
        updated_at: now,
    }
}

async fn insert_meetup(
    db: &DatabaseConnection,
    group: &working_group::Model,
    m: NewMeetup<'_>,
) -> meetup::Model {
    meetup_model(group, m)
        .into_active_model()
        .reset_all()
        .insert(db)
        .await
        .unwrap()
}

async fn insert_going(db: &DatabaseConnection, meetup: &meetup::Model, user: Uuid) {
    let now = Utc::now();
    rsvp::ActiveModel {
        meetup_id: Set(meetup.id),
        user_id: Set(user),
        status: Set(rsvp::Status::Going),
        waitlist_seq: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .unwrap();
}

/// The app's services, as the server builds them.
fn services(app: &TestApp) -> Ctx {
    convene::startup::services(Arc::new(app.settings.clone()), app.db.clone()).unwrap()
}

fn actor(user_id: &str) -> Actor {
    Actor {
        id: Uuid::parse_str(user_id).unwrap(),
        session_id: Uuid::now_v7(),
        role: Role::Member,
        email_verified: true,
    }
}

fn uid(app: &TestApp, m: &meetup::Model) -> String {
    let host = url::Url::parse(&app.settings.public.base_url)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    format!("meetup-{}@{host}", m.id)
}

/// GETs `path` (a path, or a URL under the public base URL) and returns the status, the
/// content type and the body.
pub(crate) async fn get(app: &TestApp, path: &str, bearer: Option<&str>) -> (u16, String, String) {
    let base = app.settings.public.base_url.trim_end_matches('/');
    let path = path.strip_prefix(base).unwrap_or(path);
    let mut req = app.client.get(app.url(path));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, resp.text().await.unwrap())
}

/// GETs a feed that must be served, and parses it.
pub(crate) async fn feed(app: &TestApp, path: &str) -> IcalCalendar {
    let (status, content_type, body) = get(app, path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(content_type, "text/calendar; charset=utf-8");
    parse(&body)
}

pub(crate) fn parse(text: &str) -> IcalCalendar {
    for line in text.split("\r\n") {
        assert!(
            line.len() <= 75,
            "a line of {} octets: {line:?}",
            line.len()
        );
    }
    let mut parser = ical::IcalParser::new(text.as_bytes());
    let calendar = parser.next().expect("a calendar").expect("it parses");
    assert!(parser.next().is_none());
    calendar
}

/// RFC 5545 §3.3.11: TEXT values come back from the parser still escaped.
pub(crate) fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, false) => out.push(c),
            (_, true) => match chars.next() {
                Some('n') | Some('N') => out.push('\n'),
                Some(other) => out.push(other),
                None => panic!("dangling backslash in {value:?}"),
            },
        }
    }
    out
}

pub(crate) fn prop<'a>(props: &'a [ical::property::Property], name: &str) -> Option<&'a str> {
    let found: Vec<_> = props.iter().filter(|p| p.name == name).collect();
    assert!(found.len() <= 1, "more than one {name}");
    found.first().and_then(|p| p.value.as_deref())
}

pub(crate) fn event<'a>(cal: &'a IcalCalendar, uid: &str) -> &'a IcalEvent {
    cal.events
        .iter()
        .find(|e| prop(&e.properties, "UID") == Some(uid))
        .unwrap_or_else(|| panic!("no event {uid}"))
}

fn uids(cal: &IcalCalendar) -> Vec<String> {
    cal.events
        .iter()
        .map(|e| prop(&e.properties, "UID").unwrap().to_string())
        .collect()
}

pub(crate) fn ical_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

#[tokio::test]
async fn a_public_groups_feed_holds_its_upcoming_and_recent_meetups_and_reads_back() {
    let app = spawn_app().await;
    let organiser = app.verified_user("org@example.org", "Org").await;
    let creator = Uuid::parse_str(&organiser.user_id).unwrap();
    let public = working_group::Visibility::Public;
    let group = insert_group(&app.db, "open-data", public, creator).await;
    let other = insert_group(&app.db, "elsewhere", public, creator).await;

    let tricky = insert_meetup(
        &app.db,
        &group,
        NewMeetup {
            title: TRICKY_TITLE,
            starts_at: at(3, 2),
            sequence: 2,
            ..Default::default()
        },
    )
    .await;
    let cancelled = insert_meetup(
        &app.db,
        &group,
        NewMeetup {
            title: "Called off",
            status: meetup::Status::Cancelled,
            sequence: 5,
            ..Default::default()
        },
    )
    .await;
    let online = insert_meetup(
        &app.db,
        &group,
        NewMeetup {
            title: "Online only",
            venue: None,
            online_url: Some("https://meet.example.org/secret-room"),
            ..Default::default()
        },
    )
    .await;
    let recent = insert_meetup(
        &app.db,
        &group,
        NewMeetup {
            starts_at: at(-80, 0),
            status: meetup::Status::Held,
            ..Default::default()
        },
    )
    .await;
    let old = insert_meetup(
        &app.db,
        &group,
        NewMeetup {
            starts_at: at(-100, 0),
            ..Default::default()
        },
    )
    .await;
    let elsewhere = insert_meetup(&app.db, &other, NewMeetup::default()).await;

    let cal = feed(&app, "/calendar/groups/open-data.ics").await;
    assert_eq!(prop(&cal.properties, "METHOD"), Some("PUBLISH"));
    assert_eq!(
        unescape(prop(&cal.properties, "X-WR-CALNAME").unwrap()),
        "Group open-data, with; commas"
    );
    let mut got = uids(&cal);
    got.sort();
    let mut want: Vec<String> = [&tricky, &cancelled, &online, &recent]
        .into_iter()
        .map(|m| uid(&app, m))
        .collect();
    want.sort();
    assert_eq!(got, want, "upcoming and the last 90 days only");
    assert!(!got.contains(&uid(&app, &old)));
    assert!(!got.contains(&uid(&app, &elsewhere)));

    let base = app.settings.public.base_url.trim_end_matches('/');
    let p = &event(&cal, &uid(&app, &tricky)).properties;
    assert_eq!(unescape(prop(p, "SUMMARY").unwrap()), TRICKY_TITLE);
    assert_eq!(prop(p, "SEQUENCE"), Some("2"));
    assert_eq!(prop(p, "STATUS"), Some("CONFIRMED"));
    assert_eq!(
        prop(p, "DTSTART"),
        Some(ical_time(tricky.starts_at).as_str())
    );
    assert_eq!(prop(p, "DTEND"), Some(ical_time(tricky.ends_at).as_str()));
    assert!(prop(p, "DTSTAMP").is_some_and(|s| s.len() == 16 && s.ends_with('Z')));
    assert_eq!(
        unescape(prop(p, "LOCATION").unwrap()),
        "Room 4, 1 Horse Guards Rd, London"
    );
    assert_eq!(
        prop(p, "URL"),
        Some(format!("{base}/meetups/{}", tricky.id).as_str())
    );
    assert!(unescape(prop(p, "DESCRIPTION").unwrap()).contains("2. Budgets, and; the rest"));

    let p = &event(&cal, &uid(&app, &cancelled)).properties;
    assert_eq!(prop(p, "STATUS"), Some("CANCELLED"));
    assert_eq!(prop(p, "SEQUENCE"), Some("5"));

    // The online link is for those going and the organisers, not for a public feed.
    let (_, _, body) = get(&app, "/calendar/groups/open-data.ics", None).await;
    assert!(!body.contains("secret-room"), "{body}");
    assert_eq!(
        prop(&event(&cal, &uid(&app, &online)).properties, "LOCATION"),
        None
    );

    // The same UID in the meet-up's own feed, so calendar apps see one event.
    let cal = feed(&app, &format!("/calendar/meetups/{}.ics", tricky.id)).await;
    assert_eq!(uids(&cal), vec![uid(&app, &tricky)]);
    let p = &cal.events[0].properties;
    assert_eq!(unescape(prop(p, "SUMMARY").unwrap()), TRICKY_TITLE);
    assert_eq!(
        prop(p, "DTSTART"),
        Some(ical_time(tricky.starts_at).as_str())
    );

    // A group with nothing scheduled still has a feed, empty.
    let cal = feed(&app, "/calendar/groups/elsewhere.ics").await;
    assert_eq!(uids(&cal), vec![uid(&app, &elsewhere)]);
    insert_group(&app.db, "quiet", public, creator).await;
    let cal = feed(&app, "/calendar/groups/quiet.ics").await;
    assert!(cal.events.is_empty());
    assert_eq!(prop(&cal.properties, "VERSION"), Some("2.0"));

    // Feeds that do not exist.
    for path in [
        "/calendar/groups/nope.ics".to_string(),
        "/calendar/groups/open-data".to_string(),
        format!("/calendar/meetups/{}.ics", Uuid::now_v7()),
        "/calendar/meetups/not-an-id.ics".to_string(),
    ] {
        assert_eq!(get(&app, &path, None).await.0, 404, "{path}");
    }

    // The URL a viewer is given is the plain feed for a public group, for anyone.
    let ctx = services(&app);
    assert_eq!(
        calendar_feeds::group_calendar_url(&ctx, None, &group)
            .await
            .unwrap(),
        Some(format!("{base}/calendar/groups/open-data.ics"))
    );
    assert_eq!(
        calendar_feeds::meetup_calendar_url(&ctx, None, &tricky, &group)
            .await
            .unwrap(),
        Some(format!("{base}/calendar/meetups/{}.ics", tricky.id))
    );
}

#[tokio::test]
async fn a_private_groups_feeds_need_the_members_current_secret_url() {
    let app = spawn_app().await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let cat = app.verified_user("cat@example.org", "Cat").await;
    let ann_id = Uuid::parse_str(&ann.user_id).unwrap();
    let bob_id = Uuid::parse_str(&bob.user_id).unwrap();
    let cat_id = Uuid::parse_str(&cat.user_id).unwrap();
    let private = working_group::Visibility::Private;
    let group = insert_group(&app.db, "steering", private, ann_id).await;
    let other = insert_group(&app.db, "leaders", private, bob_id).await;
    let ann_m = insert_membership(
        &app.db,
        &group,
        ann_id,
        membership::Role::Member,
        membership::Status::Active,
    )
    .await;
    // Bob is a member of the other group only; Cat's request is pending.
    insert_membership(
        &app.db,
        &other,
        bob_id,
        membership::Role::Organiser,
        membership::Status::Active,
    )
    .await;
    insert_membership(
        &app.db,
        &group,
        cat_id,
        membership::Role::Member,
        membership::Status::Pending,
    )
    .await;
    let m = insert_meetup(
        &app.db,
        &group,
        NewMeetup {
            title: TRICKY_TITLE,
            online_url: Some("https://meet.example.org/steering"),
            ..Default::default()
        },
    )
    .await;
    let group_path = "/calendar/groups/steering.ics";
    let meetup_path = format!("/calendar/meetups/{}.ics", m.id);

    let ctx = services(&app);
    let ann_url = calendar_feeds::group_calendar_url(&ctx, Some(&actor(&ann.user_id)), &group)
        .await
        .unwrap()
        .expect("a member has a calendar URL");
    let ann_meetup_url =
        calendar_feeds::meetup_calendar_url(&ctx, Some(&actor(&ann.user_id)), &m, &group)
            .await
            .unwrap()
            .expect("a member has a meet-up calendar URL");
    let bob_url = calendar_feeds::group_calendar_url(&ctx, Some(&actor(&bob.user_id)), &other)
        .await
        .unwrap()
        .unwrap();
    let token = ann_url.split_once("?token=").unwrap().1.to_string();
    let bob_token = bob_url.split_once("?token=").unwrap().1.to_string();
    assert!(token.starts_with(&ann_m.id.to_string()));

    // Non-members and pending members have none; anonymous viewers neither.
    for viewer in [None, Some(actor(&bob.user_id)), Some(actor(&cat.user_id))] {
        assert_eq!(
            calendar_feeds::group_calendar_url(&ctx, viewer.as_ref(), &group)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            calendar_feeds::meetup_calendar_url(&ctx, viewer.as_ref(), &m, &group)
                .await
                .unwrap(),
            None
        );
    }

    // Without the member's token, or with a wrong one, the feeds do not exist.
    let forged = format!("{}.{}", ann_m.id, "A".repeat(43));
    for query in [
        String::new(),
        "?token=".to_string(),
        "?token=garbage".to_string(),
        format!("?token={bob_token}"),
        format!("?token={forged}"),
        format!("?token={}", token.split_once('.').unwrap().1),
    ] {
        for path in [group_path.to_string(), meetup_path.clone()] {
            let (status, _, body) = get(&app, &format!("{path}{query}"), None).await;
            assert_eq!(status, 404, "{path}{query}: {body}");
            assert!(!body.contains("BEGIN:VCALENDAR"));
        }
    }
    // Another member's access token does not open it either.
    assert_eq!(get(&app, group_path, Some(&bob.access)).await.0, 404);

    // The member's URLs work.
    let cal = feed(&app, &ann_url).await;
    assert_eq!(uids(&cal), vec![uid(&app, &m)]);
    let p = &cal.events[0].properties;
    assert_eq!(unescape(prop(p, "SUMMARY").unwrap()), TRICKY_TITLE);
    // Ann is not going: no online link.
    assert_eq!(
        prop(p, "LOCATION").map(unescape).as_deref(),
        Some("Room 4, 1 Horse Guards Rd, London")
    );
    assert!(!unescape(prop(p, "DESCRIPTION").unwrap()).contains("meet.example.org"));
    let cal = feed(&app, &ann_meetup_url).await;
    assert_eq!(uids(&cal), vec![uid(&app, &m)]);
    // So does her own access token, for a client that sends it.
    assert_eq!(get(&app, group_path, Some(&ann.access)).await.0, 200);

    // Once she is going, her feed shows the link.
    insert_going(&app.db, &m, ann_id).await;
    let cal = feed(&app, &ann_url).await;
    assert!(
        unescape(prop(&cal.events[0].properties, "DESCRIPTION").unwrap())
            .contains("Online: https://meet.example.org/steering")
    );

    // Rotating gives a new URL; the old one stops working.
    let rotate = "mutation($g: ID!) { rotateCalendarUrl(workingGroupId: $g) { calendarUrl } }";
    let r = app
        .gql(Some(&ann.access), rotate, json!({ "g": group.id }))
        .await;
    let new_url = r["data"]["rotateCalendarUrl"]["calendarUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    assert_ne!(new_url, ann_url);
    assert!(new_url.contains(group_path));
    assert_eq!(get(&app, &ann_url, None).await.0, 404);
    assert_eq!(get(&app, &ann_meetup_url, None).await.0, 404);
    assert_eq!(feed(&app, &new_url).await.events.len(), 1);
    assert_eq!(
        calendar_feeds::group_calendar_url(&ctx, Some(&actor(&ann.user_id)), &group)
            .await
            .unwrap(),
        Some(new_url.clone())
    );
    let new_token = new_url.split_once("?token=").unwrap().1;
    assert_eq!(
        get(&app, &format!("{meetup_path}?token={new_token}"), None)
            .await
            .0,
        200
    );

    // Who may not rotate: anonymous, non-members, pending members; nor on a public group.
    let r = app.gql(None, rotate, json!({ "g": group.id })).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    for s in [&bob, &cat] {
        let r = app
            .gql(Some(&s.access), rotate, json!({ "g": group.id }))
            .await;
        assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    }
    let r = app
        .gql(Some(&ann.access), rotate, json!({ "g": Uuid::now_v7() }))
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
    let r = app
        .gql(Some(&ann.access), rotate, json!({ "g": "x" }))
        .await;
    assert_eq!(error_field(&r), "workingGroupId", "{r}");
    let public = insert_group(&app.db, "open", working_group::Visibility::Public, ann_id).await;
    let r = app
        .gql(Some(&ann.access), rotate, json!({ "g": public.id }))
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert_eq!(error_field(&r), "workingGroupId", "{r}");

    // A member who leaves (no longer ACTIVE) loses the feed with the same URL.
    let current = membership::Entity::find_by_id(ann_m.id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let mut leaving = current.into_active_model();
    leaving.status = Set(membership::Status::Rejected);
    leaving.update(&app.db).await.unwrap();
    assert_eq!(get(&app, &new_url, None).await.0, 404);
}

#[tokio::test]
async fn a_mail_with_an_ics_payload_arrives_over_smtp_with_an_invite_attachment() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(|s| {
        s.mail.transport = MailTransportKind::Smtp;
        s.mail.smtp.host = "127.0.0.1".into();
        s.mail.smtp.port = smtp.port();
        s.mail.smtp.tls = SmtpTls::None;
        s.mail.smtp.timeout_secs = 5;
    })
    .await;
    // The mail is made from rows as a service would read them; none need exist for it.
    let group = group_model("invites", working_group::Visibility::Public, Uuid::now_v7());
    let m = meetup_model(
        &group,
        NewMeetup {
            title: TRICKY_TITLE,
            sequence: 1,
            ..Default::default()
        },
    );
    let base = app.settings.public.base_url.clone();
    let ics = calendar::invite(&m, &group, Method::Request, &base);
    let to = "guest@example.org";
    enqueue_mail(
        &app.db,
        &format!("test-invite:{}", m.id),
        to,
        "password_changed",
        json!({ "display_name": "Guest", "ics": ics, "ics_method": "REQUEST" }),
    )
    .await
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    let received = loop {
        if let Some(r) = smtp.received_for(to).into_iter().next() {
            break r;
        }
        assert!(Instant::now() < deadline, "no mail to {to}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let message = received.mime();
    assert!(
        message.content_type().starts_with("multipart/mixed"),
        "{}",
        received.raw()
    );
    // The readable bodies are still there, as alternatives.
    assert!(message.find("multipart/alternative").is_some());
    assert!(message.find("text/plain").is_some());
    assert!(message.find("text/html").is_some());
    let attachment = message.find("text/calendar").expect("a text/calendar part");
    let content_type = attachment.content_type();
    assert!(content_type.contains("method=request"), "{content_type}");
    assert!(content_type.contains("charset=utf-8"), "{content_type}");
    let disposition = attachment.header("Content-Disposition").unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(disposition.contains("invite.ics"), "{disposition}");

    let cal = parse(&attachment.decoded());
    assert_eq!(prop(&cal.properties, "METHOD"), Some("REQUEST"));
    let p = &event(&cal, &uid(&app, &m)).properties;
    assert_eq!(unescape(prop(p, "SUMMARY").unwrap()), TRICKY_TITLE);
    assert_eq!(prop(p, "SEQUENCE"), Some("1"));
    assert_eq!(prop(p, "STATUS"), Some("CONFIRMED"));
    assert_eq!(prop(p, "DTSTART"), Some(ical_time(m.starts_at).as_str()));
    assert_eq!(prop(p, "ATTENDEE"), Some("mailto:guest@example.org"));
    assert_eq!(prop(p, "ORGANIZER"), Some("mailto:no-reply@localhost"));

    // Once sent, the row keeps no calendar text (it may hold the online link).
    let deadline = Instant::now() + Duration::from_secs(15);
    let row = loop {
        let row = outbox::Entity::find()
            .filter(outbox::Column::Recipient.eq(to))
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        if row.status == OutboxStatus::Sent {
            break row;
        }
        assert!(Instant::now() < deadline, "the row was not marked sent");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(row.attempts, 1);
    assert!(!row.payload.contains("VCALENDAR"), "{}", row.payload);
    assert!(row.payload.contains("REQUEST"), "{}", row.payload);
}
