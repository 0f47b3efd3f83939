//! Working groups' chat channels: posts received by a local webhook receiver for each event
//! (meet-up scheduled, outcomes, new thread, official responses on linked commitments), a
//! failed post retried and posted once, who sees and sets a channel, the URL checks, a
//! disconnected channel getting nothing, and a private group's posts staying in its own
//! channel.
//!
//! The background worker is off: each test drives the outbox worker itself.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{Duration, Utc};
use convene::entities::user::Role;
use convene::entities::{meetup, outbox};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::*;

const GROUP: &str = "mutation($i: CreateWorkingGroupInput!) { createWorkingGroup(input: $i) { workingGroup { id } } }";
const SET: &str = "mutation($i: SetGroupChannelInput!) { setGroupChannel(input: $i) { workingGroup { channel { connected webhookHost connectedAt } } } }";
const CHANNEL: &str =
    "query($id: ID!) { workingGroup(id: $id) { channel { connected webhookHost connectedAt } } }";
const JOIN: &str = "mutation($id: ID!) { joinWorkingGroup(id: $id) { membership { status } } }";
const SCHEDULE: &str =
    "mutation($i: ScheduleMeetupInput!) { scheduleMeetup(input: $i) { meetup { id } } }";
const PUBLISH: &str = "mutation($i: PublishMeetupOutcomesInput!) { publishMeetupOutcomes(input: $i) { meetup { status } } }";
const START: &str = "mutation($i: StartThreadInput!) { startThread(input: $i) { thread { id } } }";
const RESPOND: &str =
    "mutation($i: PublishResponseInput!) { publishResponse(input: $i) { response { id } } }";

/// A local webhook receiver: records every post (the path's last segment and the JSON
/// body with the status it answered), answering with the queued statuses first, then 200.
#[derive(Clone, Default)]
struct Receiver {
    posts: Arc<Mutex<Vec<(String, Value, u16)>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
    base: String,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            base: format!("http://{}", listener.local_addr().unwrap()),
            ..Default::default()
        };
        let app = Router::new()
            .route("/hooks/{name}", post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    /// The webhook URL of channel `name` (its path stands for the secret part).
    fn url(&self, name: &str) -> String {
        format!("{}/hooks/{name}", self.base)
    }

    fn answer_next(&self, status: u16) {
        self.answers.lock().unwrap().push_back(status);
    }

    /// Every request received: (channel, text, status answered).
    fn all(&self) -> Vec<(String, String, u16)> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .map(|(n, b, s)| (n.clone(), b["text"].as_str().unwrap_or("").to_string(), *s))
            .collect()
    }

    /// The texts channel `name` accepted (2xx), in order.
    fn texts(&self, name: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|(n, _, s)| n == name && *s == 200)
            .map(|(_, t, _)| t)
            .collect()
    }
}

async fn receive(
    State(r): State<Receiver>,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    let status = r.answers.lock().unwrap().pop_front().unwrap_or(200);
    r.posts.lock().unwrap().push((name, body, status));
    StatusCode::from_u16(status).unwrap()
}

impl Harness {
    async fn group(
        &self,
        organiser: &Session,
        slug: &str,
        visibility: &str,
        commitments: &[&str],
    ) -> String {
        let r = self
            .gql(
                organiser,
                GROUP,
                json!({"i": {"name": format!("Group {slug}"), "slug": slug, "description": "We meet.", "visibility": visibility, "joinPolicy": "OPEN", "commitmentIds": commitments}}),
            )
            .await;
        r["data"]["createWorkingGroup"]["workingGroup"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn connect(&self, organiser: &Session, group: &str, url: Option<&str>) -> Value {
        self.gql(
            organiser,
            SET,
            json!({"i": {"workingGroupId": group, "webhookUrl": url}}),
        )
        .await["data"]["setGroupChannel"]["workingGroup"]["channel"]
            .clone()
    }

    async fn schedule(&self, organiser: &Session, group: &str, title: &str) -> String {
        let starts = Utc::now() + Duration::days(7);
        let r = self
            .gql(
                organiser,
                SCHEDULE,
                json!({"i": {"workingGroupId": group, "title": title, "startsAt": starts.to_rfc3339(), "endsAt": (starts + Duration::hours(2)).to_rfc3339(), "timeZone": "Europe/London", "venue": "Room 1"}}),
            )
            .await;
        r["data"]["scheduleMeetup"]["meetup"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn start_thread(&self, who: &Session, group: &str, title: &str) -> String {
        let r = self
            .gql(
                who,
                START,
                json!({"i": {"workingGroupId": group, "title": title, "body": "Let us talk."}}),
            )
            .await;
        r["data"]["startThread"]["thread"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Channel rows in the outbox.
    async fn channel_rows(&self) -> Vec<outbox::Model> {
        outbox::Entity::find()
            .filter(outbox::Column::Kind.eq("channel"))
            .all(&self.app.db)
            .await
            .unwrap()
    }
}

fn link(base: &str, path: &str, title: &str) -> String {
    format!("<{}/{path}|{title}>", base.trim_end_matches('/'))
}

#[tokio::test]
async fn each_event_is_posted_to_the_channel_once_with_a_link() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let base = h.app.settings.public.base_url.clone();
    let official = h
        .with_role("official@example.org", "Olu", Role::Official)
        .await;
    let org = h.with_role("org@example.org", "Ola", Role::Organiser).await;
    let ann = h.user("ann@example.org", "Ann").await;
    let commitment = create_commitment(&h.app, &official, "UK0101", "Open registers").await;
    let group = h.group(&org, "registers", "PUBLIC", &[&commitment]).await;
    let channel = h.connect(&org, &group, Some(&rx.url("s3cret-a"))).await;
    assert_eq!(channel["connected"], true, "{channel}");
    assert_eq!(channel["webhookHost"], "127.0.0.1");
    assert!(channel["connectedAt"].is_string());
    h.gql(&ann, JOIN, json!({"id": group})).await;

    // A meet-up scheduled.
    let m = h.schedule(&org, &group, "Spring <forum> & more").await;
    h.deliver().await;
    assert_eq!(
        rx.texts("s3cret-a"),
        vec![format!(
            "New meet-up in Group registers: {} on {}",
            link(
                &base,
                &format!("meetups/{m}"),
                "Spring &lt;forum&gt; &amp; more"
            ),
            // Seven days from now, in London.
            (Utc::now() + Duration::days(7))
                .with_timezone(&chrono_tz::Europe::London)
                .format("%a %-d %b %Y, %H:%M %Z")
        )]
    );
    // The outbox row holds the text and names the group, never the URL.
    let rows = h.channel_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].recipient, group);
    assert_eq!(rows[0].status, outbox::Status::Sent);
    assert!(!rows[0].payload.contains("s3cret"), "{}", rows[0].payload);

    // Its outcomes, once it has been held.
    meetup::Entity::update_many()
        .col_expr(
            meetup::Column::StartsAt,
            Expr::value(convene::db::now() - Duration::hours(3)),
        )
        .col_expr(
            meetup::Column::EndsAt,
            Expr::value(convene::db::now() - Duration::hours(1)),
        )
        .filter(meetup::Column::Id.eq(uuid::Uuid::parse_str(&m).unwrap()))
        .exec(&h.app.db)
        .await
        .unwrap();
    h.gql(
        &org,
        PUBLISH,
        json!({"i": {"meetupId": m, "summary": "We met.", "decisions": ["Publish weekly"]}}),
    )
    .await;
    // A thread started in the group (by a member).
    let t = h.start_thread(&ann, &group, "Which registers first?").await;
    // An official response on a suggestion on the group's commitment.
    let s = create_suggestion(&h.app, &ann, &commitment, "Publish the register weekly").await;
    h.gql(
        &official,
        RESPOND,
        json!({"i": {"suggestionId": s, "body": "We will.", "newStatus": "ACCEPTED"}}),
    )
    .await;
    h.deliver().await;
    assert_eq!(
        rx.texts("s3cret-a")[1..],
        [
            format!(
                "Outcomes published for {} in Group registers",
                link(
                    &base,
                    &format!("meetups/{m}"),
                    "Spring &lt;forum&gt; &amp; more"
                )
            ),
            format!(
                "New thread in Group registers: {}",
                link(&base, &format!("threads/{t}"), "Which registers first?")
            ),
            format!(
                "Official response on {} (now ACCEPTED)",
                link(
                    &base,
                    &format!("suggestions/{s}"),
                    "Publish the register weekly"
                )
            ),
        ]
    );
    // Each once: nothing more however often the worker runs.
    h.deliver().await;
    assert_eq!(rx.all().len(), 4);
    assert!(h
        .channel_rows()
        .await
        .iter()
        .all(|r| r.status == outbox::Status::Sent && r.attempts == 1));
}

#[tokio::test]
async fn a_failed_post_is_retried_with_backoff_and_posted_once() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let org = h.with_role("org@example.org", "Ola", Role::Organiser).await;
    let group = h.group(&org, "retries", "PUBLIC", &[]).await;
    h.connect(&org, &group, Some(&rx.url("s3cret-b"))).await;
    rx.answer_next(500);
    h.deliver().await;
    h.schedule(&org, &group, "Autumn forum").await;
    let w = h.worker();
    // The members' notification event and the channel message.
    assert_eq!(w.run_once().await.unwrap(), 2);
    assert_eq!(rx.all().len(), 1);
    assert!(rx.texts("s3cret-b").is_empty());
    let row = h.channel_rows().await.remove(0);
    assert_eq!(row.status, outbox::Status::Pending);
    assert_eq!(row.attempts, 1);
    let error = row.last_error.clone().unwrap();
    assert!(error.contains("500"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
    // Not due before its backoff.
    assert!(row.next_attempt_at >= row.created_at + Duration::seconds(1));
    // Once due, it is posted; then nothing more.
    outbox::Entity::update_many()
        .col_expr(
            outbox::Column::NextAttemptAt,
            Expr::value(convene::db::now() - Duration::seconds(1)),
        )
        .filter(outbox::Column::Id.eq(row.id))
        .exec(&h.app.db)
        .await
        .unwrap();
    assert_eq!(w.run_once().await.unwrap(), 1);
    h.deliver().await;
    assert_eq!(rx.texts("s3cret-b").len(), 1);
    assert_eq!(rx.all().len(), 2);
    let row = h.channel_rows().await.remove(0);
    assert_eq!(row.status, outbox::Status::Sent);
    assert_eq!(row.attempts, 2);
}

#[tokio::test]
async fn only_organisers_see_and_set_the_channel() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let org = h.with_role("org@example.org", "Ola", Role::Organiser).await;
    let admin = h.with_role("admin@example.org", "Ada", Role::Admin).await;
    let ann = h.user("ann@example.org", "Ann").await;
    let bob = h.user("bob@example.org", "Bob").await;
    let group = h.group(&org, "secrets", "PUBLIC", &[]).await;
    h.gql(&ann, JOIN, json!({"id": group})).await;

    // Not connected: organisers see that; nobody else sees anything.
    let of = |r: Value| r["data"]["workingGroup"]["channel"].clone();
    assert_eq!(
        of(h.gql(&org, CHANNEL, json!({"id": group})).await),
        json!({"connected": false, "webhookHost": null, "connectedAt": null})
    );
    h.connect(&org, &group, Some(&rx.url("s3cret-c"))).await;
    for who in [&ann, &bob] {
        let r = h.gql(who, CHANNEL, json!({"id": group})).await;
        assert!(of(r.clone()).is_null(), "{r}");
        assert!(!r.to_string().contains("s3cret"));
    }
    let r = h.app.gql(None, CHANNEL, json!({"id": group})).await;
    assert!(of(r.clone()).is_null(), "{r}");
    for who in [&org, &admin] {
        let r = h.gql(who, CHANNEL, json!({"id": group})).await;
        assert_eq!(of(r.clone())["webhookHost"], "127.0.0.1", "{r}");
        assert!(!r.to_string().contains("s3cret"), "{r}");
    }

    // A member and an outsider may not set it; an administrator may.
    for who in [&ann, &bob] {
        for url in [Some(rx.url("mine")), None] {
            let r = h
                .app
                .gql(
                    Some(&who.access),
                    SET,
                    json!({"i": {"workingGroupId": group, "webhookUrl": url}}),
                )
                .await;
            assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
        }
    }
    let r = h
        .app
        .gql(
            None,
            SET,
            json!({"i": {"workingGroupId": group, "webhookUrl": null}}),
        )
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    h.connect(&admin, &group, Some(&rx.url("s3cret-d"))).await;
    h.schedule(&org, &group, "Winter forum").await;
    h.deliver().await;
    assert!(rx.texts("s3cret-c").is_empty());
    assert_eq!(rx.texts("s3cret-d").len(), 1);
}

#[tokio::test]
async fn webhook_urls_are_refused_with_one_generic_message() {
    let h = Harness::with(|s| s.channels.allow_private_targets = false).await;
    let org = h.with_role("org@example.org", "Ola", Role::Organiser).await;
    let group = h.group(&org, "checks", "PUBLIC", &[]).await;
    for url in [
        "not a url",
        "hooks.example.org/x",
        "ftp://93.184.216.34/x",
        "http://127.0.0.1:9/",
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://192.168.1.20/hooks/x",
        "http://169.254.169.254/latest",
        "http://[::1]:9/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://localhost:9/hooks/x",
        "http://localhost/hooks/x",
        // IPv4 carried inside IPv6, even of a global IPv4 address.
        "https://[64:ff9b::5db8:d822]/hooks/x",
        "https://[64:ff9b:1::5db8:d822]/hooks/x",
        "https://[2002:5db8:d822::1]/hooks/x",
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hooks/x",
        "https://[::ffff:0:5db8:d822]/hooks/x",
        // A global address on a port other than the web's.
        "https://93.184.216.34:8443/hooks/x",
        "http://93.184.216.34:25/",
        "https://[2606:4700::1111]:6379/",
    ] {
        let r = h
            .app
            .gql(
                Some(&org.access),
                SET,
                json!({"i": {"workingGroupId": group, "webhookUrl": url}}),
            )
            .await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{url}: {r}");
        assert_eq!(error_field(&r), "webhookUrl", "{url}: {r}");
        assert_eq!(
            r["errors"][0]["message"].as_str().unwrap(),
            convene::services::channels::REFUSED,
            "{url}"
        );
    }
    assert_eq!(
        count(&h.app.db, "SELECT COUNT(*) FROM group_channels").await,
        0
    );
    // A global address on port 80 or 443 is accepted outside production over http.
    for url in [
        "http://93.184.216.34/hooks/x",
        "http://93.184.216.34:80/hooks/x",
        "https://93.184.216.34:443/hooks/x",
    ] {
        let c = h.connect(&org, &group, Some(url)).await;
        assert_eq!(c["webhookHost"], "93.184.216.34", "{url}");
    }
    assert_eq!(
        count(&h.app.db, "SELECT COUNT(*) FROM group_channels").await,
        1
    );

    // In production, http is refused, with the same message.
    let p = Harness::with(|s| s.environment = "production".into()).await;
    let org = p.with_role("org@example.org", "Ola", Role::Organiser).await;
    let group = p.group(&org, "prod", "PUBLIC", &[]).await;
    let r = p
        .app
        .gql(
            Some(&org.access),
            SET,
            json!({"i": {"workingGroupId": group, "webhookUrl": "http://127.0.0.1:9/hooks/x"}}),
        )
        .await;
    assert_eq!(error_field(&r), "webhookUrl", "{r}");
    assert_eq!(
        r["errors"][0]["message"].as_str().unwrap(),
        convene::services::channels::REFUSED
    );
    // Private targets allowed: any address and port (a local receiver, as in these tests).
    let c = p
        .connect(&org, &group, Some("https://127.0.0.1:9/hooks/x"))
        .await;
    assert_eq!(c["connected"], true);
}

#[tokio::test]
async fn mentions_and_links_in_titles_reach_the_channel_inert() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let org = h.with_role("org@example.org", "Ola", Role::Organiser).await;
    let group = h.group(&org, "pings", "PUBLIC", &[]).await;
    h.connect(&org, &group, Some(&rx.url("pings"))).await;
    h.start_thread(
        &org,
        &group,
        "Hey @channel <!here> see [this](https://evil.example)",
    )
    .await;
    h.deliver().await;
    let texts = rx.texts("pings");
    assert_eq!(texts.len(), 1, "{texts:?}");
    let t = &texts[0];
    for live in ["@channel", "<!here>", "](", "https://evil"] {
        assert!(!t.contains(live), "{live} in {t}");
    }
    assert!(t.contains("&lt;!here&gt;"), "{t}");
    // The link Convene makes itself still works.
    assert!(
        t.contains(&format!(
            "<{}/threads/",
            h.app.settings.public.base_url.trim_end_matches('/')
        )),
        "{t}"
    );
}

#[tokio::test]
async fn a_disconnected_channel_gets_nothing() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let org = h.with_role("org@example.org", "Ola", Role::Organiser).await;
    let group = h.group(&org, "quiet", "PUBLIC", &[]).await;
    h.connect(&org, &group, Some(&rx.url("s3cret-e"))).await;
    // Queued while connected, disconnected before it is posted: done, nothing posted.
    h.schedule(&org, &group, "First forum").await;
    let c = h.connect(&org, &group, None).await;
    assert_eq!(
        c,
        json!({"connected": false, "webhookHost": null, "connectedAt": null})
    );
    h.deliver().await;
    let rows = h.channel_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, outbox::Status::Sent);
    assert!(rows[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("disconnected"));
    // Disconnected: nothing is even queued.
    h.schedule(&org, &group, "Second forum").await;
    h.deliver().await;
    assert_eq!(h.channel_rows().await.len(), 1);
    assert!(rx.all().is_empty());
    // Disconnecting again changes nothing.
    h.connect(&org, &group, None).await;
}

#[tokio::test]
async fn a_private_groups_posts_stay_in_its_own_channel() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let official = h
        .with_role("official@example.org", "Olu", Role::Official)
        .await;
    let org = h.with_role("org@example.org", "Ola", Role::Organiser).await;
    let ann = h.user("ann@example.org", "Ann").await;
    let commitment = create_commitment(&h.app, &official, "UK0102", "Beneficial ownership").await;
    let public = h.group(&org, "open", "PUBLIC", &[&commitment]).await;
    let private = h.group(&org, "closed", "PRIVATE", &[&commitment]).await;
    h.connect(&org, &public, Some(&rx.url("public"))).await;
    h.connect(&org, &private, Some(&rx.url("private"))).await;

    // The private group's thread and meet-up go to its own channel only.
    h.start_thread(&org, &private, "Our confidential plan")
        .await;
    h.schedule(&org, &private, "Closed meeting").await;
    h.deliver().await;
    assert_eq!(rx.texts("private").len(), 2);
    assert!(rx.texts("public").is_empty());
    assert!(!rx
        .all()
        .iter()
        .any(|(n, t, _)| n == "public" && t.contains("confidential")));

    // An official response on the shared commitment is public: both channels hear of it.
    let s = create_suggestion(&h.app, &ann, &commitment, "Publish the owners' register").await;
    h.gql(
        &official,
        RESPOND,
        json!({"i": {"suggestionId": s, "body": "We are on it."}}),
    )
    .await;
    h.deliver().await;
    assert_eq!(rx.texts("public").len(), 1);
    assert_eq!(rx.texts("private").len(), 3);
    assert!(rx.texts("public")[0].starts_with("Official response on <"));
}

#[tokio::test]
async fn a_thread_hidden_before_its_post_goes_out_reaches_the_channel_as_the_marker() {
    let h = Harness::new().await;
    let rx = Receiver::start().await;
    let org = h.with_role("org@example.org", "Ola", Role::Organiser).await;
    let admin = h.with_role("admin@example.org", "Ada", Role::Admin).await;
    let group = h.group(&org, "masked", "PUBLIC", &[]).await;
    h.connect(&org, &group, Some(&rx.url("masked"))).await;
    let thread = h
        .start_thread(&org, &group, "Abusive title nobody should read")
        .await;
    // Hidden after the event was written, before the worker posts it: the post is
    // rendered when sent, so the channel reads the marker, not the title.
    let r = h
        .gql(
            &admin,
            "mutation($i: ModerateContentInput!) { hideContent(input: $i) { content { hidden } } }",
            json!({"i": {"threadId": thread, "note": "abuse"}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    h.deliver().await;
    let texts = rx.texts("masked");
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(!texts[0].contains("Abusive"), "{}", texts[0]);
    assert!(
        texts[0].contains(convene::services::moderation::HIDDEN_TITLE),
        "{}",
        texts[0]
    );
}
