//! Meet-ups: scheduling and its refusals, private meet-ups, RSVPs and the waitlist (also
//! under concurrency), changes and cancellations with their mails, outcomes in the record,
//! reminders across instances, and the statement budget of a group page.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use convene::entities::membership::{Role as MemberRole, Status as MemberStatus};
use convene::entities::user::Role;
use convene::entities::working_group::Visibility;
use convene::entities::{meetup, membership, rsvp, working_group, working_group_commitment};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const SCHEDULE: &str = "mutation($i: ScheduleMeetupInput!) { scheduleMeetup(input: $i) { meetup { id title agendaHtml status sequence capacity goingCount waitlistCount timeZone venue onlineUrl workingGroup { name } } } }";
const UPDATE: &str = "mutation($i: UpdateMeetupInput!) { updateMeetup(input: $i) { meetup { id title sequence capacity goingCount waitlistCount startsAt venue } } }";
const CANCEL: &str = "mutation($i: CancelMeetupInput!) { cancelMeetup(input: $i) { meetup { status sequence cancelReason } } }";
const RSVP: &str = "mutation($i: RsvpMeetupInput!) { rsvpMeetup(input: $i) { rsvp { status waitlistPosition updatedAt } meetup { goingCount waitlistCount } } }";
const MEETUP: &str = "query($id: ID!) { meetup(id: $id) { id title status sequence capacity goingCount waitlistCount onlineUrl viewerRsvp { status waitlistPosition } outcome { summary summaryHtml decisions } } }";
const PUBLISH: &str = "mutation($i: PublishMeetupOutcomesInput!) { publishMeetupOutcomes(input: $i) { meetup { status } outcome { id summaryHtml decisions publishedAt meetup { title } } } }";

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

/// Some account, to stand as the creator of rows written directly.
async fn any_user(db: &DatabaseConnection) -> Uuid {
    use sea_orm::EntityTrait;
    convene::entities::user::Entity::find()
        .one(db)
        .await
        .unwrap()
        .expect("an account exists")
        .id
}

/// A group written straight to the database (the group mutations live elsewhere).
async fn insert_group(db: &DatabaseConnection, slug: &str, visibility: Visibility) -> Uuid {
    let now = convene::db::now();
    let g = working_group::ActiveModel {
        id: Set(Uuid::now_v7()),
        slug: Set(slug.into()),
        name: Set(format!("Group {slug}")),
        description: Set("About data.".into()),
        description_html: Set("<p>About data.</p>".into()),
        kind: Set(working_group::Kind::WorkingGroup),
        visibility: Set(visibility),
        join_policy: Set(working_group::JoinPolicy::Open),
        outcomes_public: Set(visibility == Visibility::Public),
        member_count: Set(0),
        created_by: Set(any_user(db).await),
        created_at: Set(now),
        updated_at: Set(now),
    };
    g.insert(db).await.unwrap().id
}

async fn add_member(
    db: &DatabaseConnection,
    group: Uuid,
    user: &Session,
    role: MemberRole,
    status: MemberStatus,
) {
    let now = convene::db::now();
    membership::ActiveModel {
        id: Set(Uuid::now_v7()),
        working_group_id: Set(group),
        user_id: Set(uuid(&user.user_id)),
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
    .unwrap();
}

/// A meet-up written straight to the database, at any time (past ones included).
async fn insert_meetup(
    db: &DatabaseConnection,
    group: Uuid,
    title: &str,
    starts_in: Duration,
    capacity: Option<i32>,
) -> Uuid {
    let now = convene::db::now();
    meetup::ActiveModel {
        id: Set(Uuid::now_v7()),
        working_group_id: Set(group),
        title: Set(title.into()),
        agenda: Set(String::new()),
        agenda_html: Set(String::new()),
        starts_at: Set(now + starts_in),
        ends_at: Set(now + starts_in + Duration::hours(2)),
        time_zone: Set("Europe/London".into()),
        venue: Set(Some("Room 1".into())),
        address: Set(None),
        online_url: Set(Some("https://meet.example.org/x".into())),
        capacity: Set(capacity),
        going_count: Set(0),
        waitlist_count: Set(0),
        next_waitlist_seq: Set(1),
        status: Set(meetup::Status::Scheduled),
        cancel_reason: Set(None),
        sequence: Set(0),
        reminded_at: Set(None),
        created_by: Set(any_user(db).await),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .unwrap()
    .id
}

struct Stage {
    app: TestApp,
    organiser: Session,
    group: Uuid,
}

async fn stage(visibility: Visibility) -> Stage {
    stage_with(visibility, |_| {}).await
}

async fn stage_with(
    visibility: Visibility,
    configure: impl FnOnce(&mut convene::config::Settings),
) -> Stage {
    let app = spawn_app_with(configure).await;
    let organiser = app
        .verified_user("olga@example.org", "Olga Organiser")
        .await;
    let group = insert_group(&app.db, "data-users", visibility).await;
    add_member(
        &app.db,
        group,
        &organiser,
        MemberRole::Organiser,
        MemberStatus::Active,
    )
    .await;
    Stage {
        app,
        organiser,
        group,
    }
}

fn in_days(d: i64) -> String {
    (Utc::now() + Duration::days(d)).to_rfc3339()
}

fn meetup_input(group: Uuid) -> Value {
    json!({
        "workingGroupId": group.to_string(),
        "title": "Data users' forum",
        "agenda": "1. *Welcome*\n2. <script>x</script>Registers",
        "startsAt": in_days(7),
        "endsAt": (Utc::now() + Duration::days(7) + Duration::hours(2)).to_rfc3339(),
        "timeZone": "Europe/London",
        "venue": "Room 1, 70 Whitehall",
        "address": "70 Whitehall, London SW1A 2AS",
        "onlineUrl": "https://meet.example.org/forum",
        "capacity": 2
    })
}

impl Stage {
    async fn schedule(&self, input: Value) -> String {
        let r = self
            .app
            .gql(
                Some(&self.organiser.access),
                SCHEDULE,
                json!({ "i": input }),
            )
            .await;
        r["data"]["scheduleMeetup"]["meetup"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("scheduleMeetup failed: {r}"))
            .to_string()
    }

    async fn rsvp(&self, who: &Session, id: &str, attending: bool) -> Value {
        self.app
            .gql(
                Some(&who.access),
                RSVP,
                json!({"i": {"meetupId": id, "attending": attending}}),
            )
            .await
    }

    async fn meetup(&self, who: Option<&Session>, id: &str) -> Value {
        let r = self
            .app
            .gql(who.map(|s| s.access.as_str()), MEETUP, json!({ "id": id }))
            .await;
        assert!(r["errors"].is_null(), "{r}");
        r["data"]["meetup"].clone()
    }

    async fn member(&self, email: &str, name: &str) -> Session {
        let s = self.app.verified_user(email, name).await;
        add_member(
            &self.app.db,
            self.group,
            &s,
            MemberRole::Member,
            MemberStatus::Active,
        )
        .await;
        s
    }
}

/// The outbox payloads of `template` rows to `recipient`.
async fn outbox_payloads(app: &TestApp, recipient: &str, template: &str) -> Vec<Value> {
    use convene::entities::outbox;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    outbox::Entity::find()
        .filter(outbox::Column::Recipient.eq(recipient))
        .filter(outbox::Column::Template.eq(template))
        .order_by_asc(outbox::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| serde_json::from_str(&r.payload).unwrap())
        .collect()
}

#[tokio::test]
async fn organisers_schedule_meetups_and_bad_input_names_the_field() {
    let s = stage(Visibility::Public).await;
    let app = &s.app;
    let r = app
        .gql(
            Some(&s.organiser.access),
            SCHEDULE,
            json!({ "i": meetup_input(s.group) }),
        )
        .await;
    let m = &r["data"]["scheduleMeetup"]["meetup"];
    assert_eq!(m["title"], "Data users' forum", "{r}");
    assert_eq!(m["status"], "SCHEDULED");
    assert_eq!(m["sequence"], 0);
    assert_eq!(m["capacity"], 2);
    assert_eq!(m["goingCount"], 0);
    assert_eq!(m["timeZone"], "Europe/London");
    assert_eq!(m["onlineUrl"], "https://meet.example.org/forum");
    assert_eq!(m["workingGroup"]["name"], "Group data-users");
    let html = m["agendaHtml"].as_str().unwrap();
    assert!(
        html.contains("<em>Welcome</em>") && !html.contains("<script"),
        "{html}"
    );
    // The members hear of it through one notification event for the group.
    assert_eq!(
        count(
            &app.db,
            &format!(
                "SELECT COUNT(*) FROM outbox WHERE template = 'meetup_scheduled' AND recipient = 'audience:{}'",
                s.group
            )
        )
        .await,
        1
    );

    let refused = |change: Value| {
        let mut input = meetup_input(s.group);
        for (k, v) in change.as_object().unwrap() {
            input[k] = v.clone();
        }
        app.gql(Some(&s.organiser.access), SCHEDULE, json!({ "i": input }))
    };
    let cases = [
        (json!({"endsAt": in_days(6)}), "endsAt"),
        (
            json!({"startsAt": in_days(-2), "endsAt": in_days(-1)}),
            "startsAt",
        ),
        (
            json!({"startsAt": (Utc::now() - Duration::hours(1)).to_rfc3339()}),
            "startsAt",
        ),
        (json!({"timeZone": "Mars/Olympus_Mons"}), "timeZone"),
        (json!({"capacity": 0}), "capacity"),
        (json!({"capacity": -3}), "capacity"),
        (json!({"title": "a"}), "title"),
        (json!({"onlineUrl": "javascript:alert(1)"}), "onlineUrl"),
        (json!({"onlineUrl": "not a url"}), "onlineUrl"),
        (
            json!({"venue": null, "address": "  ", "onlineUrl": null}),
            "venue",
        ),
    ];
    for (change, field) in cases {
        let r = refused(change.clone()).await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{change}: {r}");
        assert_eq!(error_field(&r), field, "{change}: {r}");
    }
    // A member who does not organise, an outsider, and an anonymous visitor cannot.
    let member = s.member("mo@example.org", "Mo Member").await;
    let outsider = app.verified_user("out@example.org", "Out Sider").await;
    for who in [&member, &outsider] {
        let r = app
            .gql(
                Some(&who.access),
                SCHEDULE,
                json!({ "i": meetup_input(s.group) }),
            )
            .await;
        assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    }
    let r = app
        .gql(None, SCHEDULE, json!({ "i": meetup_input(s.group) }))
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    // Administrators run every group.
    let admin = user_with_role(app, "admin@example.org", "Ada Admin", Role::Admin).await;
    let r = app
        .gql(
            Some(&admin.access),
            SCHEDULE,
            json!({ "i": meetup_input(s.group) }),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM meetups").await,
        2,
        "no refused meet-up was written"
    );
}

#[tokio::test]
async fn a_private_groups_meetup_is_not_found_for_outsiders() {
    let s = stage(Visibility::Private).await;
    let app = &s.app;
    let id = s.schedule(meetup_input(s.group)).await;
    let member = s.member("mo@example.org", "Mo Member").await;
    let outsider = app.verified_user("out@example.org", "Out Sider").await;
    let pending = app.verified_user("pat@example.org", "Pat Pending").await;
    add_member(
        &app.db,
        s.group,
        &pending,
        MemberRole::Member,
        MemberStatus::Pending,
    )
    .await;

    let missing = app
        .gql(
            Some(&outsider.access),
            MEETUP,
            json!({"id": Uuid::now_v7().to_string()}),
        )
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND", "{missing}");
    assert!(missing["data"]["meetup"].is_null());
    for who in [None, Some(&outsider), Some(&pending)] {
        let token = who.map(|w| w.access.as_str());
        let r = app.gql(token, MEETUP, json!({"id": id})).await;
        assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
        assert!(r["data"]["meetup"].is_null(), "{r}");
        assert_eq!(
            r["errors"][0]["message"], missing["errors"][0]["message"],
            "a hidden meet-up looks exactly like a missing one"
        );
        let list = app
            .gql(token, "{ meetups { totalCount nodes { id } } }", json!({}))
            .await;
        assert_eq!(list["data"]["meetups"]["totalCount"], 0, "{list}");
        let group = app
            .gql(
                token,
                "query($id: ID!) { workingGroup(id: $id) { name meetups { nodes { id } } } }",
                json!({"id": s.group.to_string()}),
            )
            .await;
        assert_eq!(group["data"]["workingGroup"]["name"], "Group data-users");
        assert!(
            group["data"]["workingGroup"]["meetups"].is_null(),
            "{group}"
        );
    }
    for who in [&outsider, &pending] {
        let r = s.rsvp(who, &id, true).await;
        assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
    }
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM rsvps").await, 0);
    // Members see it, list it, and can come.
    assert_eq!(s.meetup(Some(&member), &id).await["id"], id.as_str());
    let list = app
        .gql(
            Some(&member.access),
            "{ meetups { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["data"]["meetups"]["totalCount"], 1, "{list}");
    let group = app
        .gql(
            Some(&member.access),
            "query($id: ID!) { workingGroup(id: $id) { meetups { nodes { id } } } }",
            json!({"id": s.group.to_string()}),
        )
        .await;
    assert_eq!(
        group["data"]["workingGroup"]["meetups"]["nodes"][0]["id"],
        id.as_str()
    );
    let r = s.rsvp(&member, &id, true).await;
    assert_eq!(r["data"]["rsvpMeetup"]["rsvp"]["status"], "GOING", "{r}");
}

#[tokio::test]
async fn the_online_link_is_for_those_going_and_the_organisers() {
    let s = stage(Visibility::Public).await;
    let app = &s.app;
    let id = s.schedule(meetup_input(s.group)).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let cat = app.verified_user("cat@example.org", "Cat").await;
    assert!(s.meetup(None, &id).await["onlineUrl"].is_null());
    assert!(s.meetup(Some(&ann), &id).await["onlineUrl"].is_null());
    assert_eq!(
        s.meetup(Some(&s.organiser), &id).await["onlineUrl"],
        "https://meet.example.org/forum"
    );
    s.rsvp(&ann, &id, true).await;
    s.rsvp(&bob, &id, true).await;
    s.rsvp(&cat, &id, true).await; // waitlisted: capacity 2
    assert_eq!(
        s.meetup(Some(&ann), &id).await["onlineUrl"],
        "https://meet.example.org/forum"
    );
    let waiting = s.meetup(Some(&cat), &id).await;
    assert_eq!(waiting["viewerRsvp"]["status"], "WAITLISTED");
    assert!(waiting["onlineUrl"].is_null(), "{waiting}");
    s.rsvp(&ann, &id, false).await;
    assert!(s.meetup(Some(&ann), &id).await["onlineUrl"].is_null());
    assert_eq!(
        s.meetup(Some(&cat), &id).await["onlineUrl"],
        "https://meet.example.org/forum",
        "promoted, so going"
    );
}

#[tokio::test]
async fn seats_fill_then_the_waitlist_and_a_withdrawal_promotes_the_first_waiting() {
    let s = stage(Visibility::Public).await;
    let app = &s.app;
    let id = s.schedule(meetup_input(s.group)).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let cat = app.verified_user("cat@example.org", "Cat").await;
    let dan = app.verified_user("dan@example.org", "Dan").await;
    let status = |r: &Value| {
        (
            r["data"]["rsvpMeetup"]["rsvp"]["status"].clone(),
            r["data"]["rsvpMeetup"]["rsvp"]["waitlistPosition"].clone(),
        )
    };
    assert_eq!(
        status(&s.rsvp(&ann, &id, true).await),
        (json!("GOING"), Value::Null)
    );
    assert_eq!(
        status(&s.rsvp(&bob, &id, true).await),
        (json!("GOING"), Value::Null)
    );
    assert_eq!(
        status(&s.rsvp(&cat, &id, true).await),
        (json!("WAITLISTED"), json!(1))
    );
    let r = s.rsvp(&dan, &id, true).await;
    assert_eq!(status(&r), (json!("WAITLISTED"), json!(2)));
    assert_eq!(
        r["data"]["rsvpMeetup"]["meetup"],
        json!({"goingCount": 2, "waitlistCount": 2})
    );
    // Repeating an answer changes nothing.
    let again = s.rsvp(&cat, &id, true).await;
    assert_eq!(status(&again), (json!("WAITLISTED"), json!(1)));
    assert_eq!(
        again["data"]["rsvpMeetup"]["meetup"],
        json!({"goingCount": 2, "waitlistCount": 2})
    );
    let sent = app.wait_for_mail("ann@example.org", "meetup_rsvp").await;
    let invite = sent
        .attachments
        .iter()
        .find(|a| a.filename == "invite.ics")
        .expect("the confirmation carries the invitation");
    assert!(
        invite.content_type.contains("method=REQUEST"),
        "{}",
        invite.content_type
    );
    let waiting = app
        .wait_for_mail("cat@example.org", "meetup_waitlisted")
        .await;
    assert!(
        waiting.attachments.is_empty(),
        "no invitation while waiting"
    );
    let going_mail = &outbox_payloads(app, "ann@example.org", "meetup_rsvp").await[0];
    assert_eq!(going_mail["ics_method"], "REQUEST");
    assert!(going_mail["meetup_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/meetups/{id}")));

    // Ann withdraws: Cat, first on the waitlist, takes the seat in the same transaction.
    let r = s.rsvp(&ann, &id, false).await;
    assert_eq!(status(&r), (json!("NOT_GOING"), Value::Null));
    assert_eq!(
        r["data"]["rsvpMeetup"]["meetup"],
        json!({"goingCount": 2, "waitlistCount": 1})
    );
    let cat_view = s.meetup(Some(&cat), &id).await;
    assert_eq!(
        cat_view["viewerRsvp"],
        json!({"status": "GOING", "waitlistPosition": null})
    );
    assert_eq!(
        s.meetup(Some(&dan), &id).await["viewerRsvp"],
        json!({"status": "WAITLISTED", "waitlistPosition": 1})
    );
    let promoted = app
        .wait_for_mail("cat@example.org", "meetup_promoted")
        .await;
    assert!(
        promoted.text.contains("Data users' forum"),
        "{}",
        promoted.text
    );
    assert!(promoted.text.contains(&format!("/meetups/{id}")));
    assert_eq!(
        count(
            &app.db,
            &format!(
                "SELECT COUNT(*) FROM outbox WHERE kind = 'notification' AND template = 'meetup_promoted' AND recipient = '{}'",
                cat.user_id
            )
        )
        .await,
        1
    );
    // Withdrawing from the waitlist, and withdrawing twice, are fine too.
    let r = s.rsvp(&dan, &id, false).await;
    assert_eq!(
        r["data"]["rsvpMeetup"]["meetup"],
        json!({"goingCount": 2, "waitlistCount": 0})
    );
    let r = s.rsvp(&dan, &id, false).await;
    assert_eq!(status(&r), (json!("NOT_GOING"), Value::Null));
    // Coming back joins the end of the queue with a fresh ticket.
    let r = s.rsvp(&ann, &id, true).await;
    assert_eq!(status(&r), (json!("WAITLISTED"), json!(1)));
    assert!(s.meetup(None, &id).await["viewerRsvp"].is_null());
}

#[tokio::test]
async fn raising_the_capacity_promotes_in_order_and_lowering_it_below_those_going_is_refused() {
    let s = stage(Visibility::Public).await;
    let app = &s.app;
    let id = s.schedule(meetup_input(s.group)).await;
    let mut people = Vec::new();
    for (i, name) in ["ann", "bob", "cat", "dan", "eve"].iter().enumerate() {
        let p = app
            .verified_user(&format!("{name}@example.org"), name)
            .await;
        s.rsvp(&p, &id, true).await;
        people.push((i, name.to_string(), p));
    }
    // 2 going (ann, bob); cat, dan, eve waiting in that order.
    let r = app
        .gql(
            Some(&s.organiser.access),
            UPDATE,
            json!({"i": {"id": id, "capacity": 1}}),
        )
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert_eq!(error_field(&r), "capacity");
    assert!(
        r["errors"][0]["message"].as_str().unwrap().contains('2'),
        "{r}"
    );
    let r = app
        .gql(
            Some(&s.organiser.access),
            UPDATE,
            json!({"i": {"id": id, "capacity": 4}}),
        )
        .await;
    assert_eq!(r["data"]["updateMeetup"]["meetup"]["goingCount"], 4, "{r}");
    assert_eq!(r["data"]["updateMeetup"]["meetup"]["waitlistCount"], 1);
    let view = |who: usize| s.meetup(Some(&people[who].2), &id);
    assert_eq!(view(2).await["viewerRsvp"]["status"], "GOING");
    assert_eq!(view(3).await["viewerRsvp"]["status"], "GOING");
    assert_eq!(
        view(4).await["viewerRsvp"],
        json!({"status": "WAITLISTED", "waitlistPosition": 1})
    );
    app.wait_for_mail("cat@example.org", "meetup_promoted")
        .await;
    app.wait_for_mail("dan@example.org", "meetup_promoted")
        .await;
    app.settle().await;
    assert!(app
        .mails_to("eve@example.org")
        .iter()
        .all(|m| m.template != "meetup_promoted"));
    // A capacity change alone is not a change of time or place.
    assert_eq!(r["data"]["updateMeetup"]["meetup"]["sequence"], 0);
    // No limit at all: everyone waiting comes.
    let r = app
        .gql(
            Some(&s.organiser.access),
            UPDATE,
            json!({"i": {"id": id, "capacity": null}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateMeetup"]["meetup"],
        json!({"id": id, "title": "Data users' forum", "sequence": 0, "capacity": null, "goingCount": 5, "waitlistCount": 0, "startsAt": r["data"]["updateMeetup"]["meetup"]["startsAt"], "venue": "Room 1, 70 Whitehall"})
    );
    // Members who do not organise cannot edit.
    let r = app
        .gql(
            Some(&people[0].2.access),
            UPDATE,
            json!({"i": {"id": id, "capacity": 10}}),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
}

#[tokio::test]
async fn a_time_change_bumps_the_sequence_and_mails_everyone_coming() {
    let s = stage(Visibility::Public).await;
    let app = &s.app;
    let id = s.schedule(meetup_input(s.group)).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let cat = app.verified_user("cat@example.org", "Cat").await;
    let dan = app.verified_user("dan@example.org", "Dan").await;
    for p in [&ann, &bob, &cat] {
        s.rsvp(p, &id, true).await;
    }
    s.rsvp(&dan, &id, false).await;
    // A title change moves the calendar's SEQUENCE but mails nobody.
    let r = app
        .gql(
            Some(&s.organiser.access),
            UPDATE,
            json!({"i": {"id": id, "title": "Data users' forum (spring)"}}),
        )
        .await;
    assert_eq!(r["data"]["updateMeetup"]["meetup"]["sequence"], 1, "{r}");
    let later = Utc::now() + Duration::days(8);
    let r = app
        .gql(
            Some(&s.organiser.access),
            UPDATE,
            json!({"i": {"id": id, "startsAt": later.to_rfc3339(), "endsAt": (later + Duration::hours(3)).to_rfc3339()}}),
        )
        .await;
    assert_eq!(r["data"]["updateMeetup"]["meetup"]["sequence"], 2, "{r}");
    for who in ["ann@example.org", "bob@example.org", "cat@example.org"] {
        let m = app.wait_for_mail(who, "meetup_changed").await;
        assert!(m.text.contains("spring"), "{}", m.text);
        let p = outbox_payloads(app, who, "meetup_changed").await;
        assert_eq!(p.len(), 1, "one mail per change");
        assert_eq!(p[0]["ics_method"], "REQUEST");
    }
    app.settle().await;
    assert!(app
        .mails_to("dan@example.org")
        .iter()
        .all(|m| m.template != "meetup_changed"));
    assert_eq!(
        count(
            &app.db,
            &format!(
                "SELECT COUNT(*) FROM outbox WHERE template = 'meetup_changed' AND recipient = 'audience:{id}'"
            )
        )
        .await,
        1
    );
    // A change of place is mailed too; an end before the start is refused.
    let r = app
        .gql(
            Some(&s.organiser.access),
            UPDATE,
            json!({"i": {"id": id, "venue": "Room 2"}}),
        )
        .await;
    assert_eq!(r["data"]["updateMeetup"]["meetup"]["sequence"], 3, "{r}");
    // The change is one event; the worker's fan-out writes each person's mail.
    app.notifications_settled().await;
    assert_eq!(
        outbox_payloads(app, "ann@example.org", "meetup_changed")
            .await
            .len(),
        2
    );
    let r = app
        .gql(
            Some(&s.organiser.access),
            UPDATE,
            json!({"i": {"id": id, "endsAt": in_days(1)}}),
        )
        .await;
    assert_eq!(error_field(&r), "endsAt", "{r}");
    let r = app
        .gql(
            Some(&s.organiser.access),
            UPDATE,
            json!({"i": {"id": id, "timeZone": "Europe/Atlantis"}}),
        )
        .await;
    assert_eq!(error_field(&r), "timeZone", "{r}");
    assert_eq!(s.meetup(None, &id).await["sequence"], 3);
}

#[tokio::test]
async fn cancelling_mails_everyone_coming_and_closes_rsvps() {
    let s = stage(Visibility::Public).await;
    let app = &s.app;
    let id = s.schedule(meetup_input(s.group)).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let cat = app.verified_user("cat@example.org", "Cat").await;
    for p in [&ann, &bob, &cat] {
        s.rsvp(p, &id, true).await;
    }
    let r = app
        .gql(
            Some(&ann.access),
            CANCEL,
            json!({"i": {"id": id, "reason": "no"}}),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = app
        .gql(
            Some(&s.organiser.access),
            CANCEL,
            json!({"i": {"id": id, "reason": "The room flooded."}}),
        )
        .await;
    assert_eq!(
        r["data"]["cancelMeetup"]["meetup"],
        json!({"status": "CANCELLED", "sequence": 1, "cancelReason": "The room flooded."})
    );
    for who in ["ann@example.org", "bob@example.org", "cat@example.org"] {
        let m = app.wait_for_mail(who, "meetup_cancelled").await;
        assert!(m.text.contains("The room flooded."), "{}", m.text);
        let p = outbox_payloads(app, who, "meetup_cancelled").await;
        assert_eq!(p[0]["ics_method"], "CANCEL");
    }
    assert_eq!(
        count(
            &app.db,
            &format!("SELECT COUNT(*) FROM outbox WHERE template = 'meetup_cancelled' AND recipient = 'audience:{id}'")
        )
        .await,
        1
    );
    let dan = app.verified_user("dan@example.org", "Dan").await;
    let r = s.rsvp(&dan, &id, true).await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    assert!(r["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("cancelled"));
    let r = app
        .gql(
            Some(&s.organiser.access),
            CANCEL,
            json!({"i": {"id": id, "reason": "again"}}),
        )
        .await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    let r = app
        .gql(
            Some(&s.organiser.access),
            UPDATE,
            json!({"i": {"id": id, "title": "Back on?"}}),
        )
        .await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
}

#[tokio::test]
async fn no_rsvp_once_a_meetup_has_started() {
    let s = stage(Visibility::Public).await;
    let app = &s.app;
    let started = insert_meetup(
        &app.db,
        s.group,
        "Already going on",
        Duration::minutes(-10),
        None,
    )
    .await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    for attending in [true, false] {
        let r = s.rsvp(&ann, &started.to_string(), attending).await;
        assert_eq!(error_code(&r), "CONFLICT", "{r}");
        assert!(
            r["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("started"),
            "{r}"
        );
    }
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM rsvps").await, 0);
}

#[tokio::test]
async fn outcomes_are_published_after_the_end_and_join_the_linked_commitments_record() {
    let s = stage(Visibility::Public).await;
    let app = &s.app;
    let official = user_with_role(app, "official@example.org", "Olu", Role::Official).await;
    let commitment = create_commitment(app, &official, "UK0072", "Involving data users").await;
    let other = create_commitment(app, &official, "UK0073", "Something else").await;
    working_group_commitment::ActiveModel {
        working_group_id: Set(s.group),
        commitment_id: Set(uuid(&commitment)),
    }
    .insert(&app.db)
    .await
    .unwrap();
    let ended = insert_meetup(&app.db, s.group, "Spring forum", Duration::days(-1), None)
        .await
        .to_string();
    let upcoming = s.schedule(meetup_input(s.group)).await;
    let input = |id: &str, decisions: Value| json!({"i": {"meetupId": id, "summary": "We met. **Much** was said.", "decisions": decisions}});
    let r = app
        .gql(
            Some(&s.organiser.access),
            PUBLISH,
            input(&upcoming, json!(["Too early"])),
        )
        .await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    for bad in [json!([]), json!(["ok", "  "]), json!(["x".repeat(1001)])] {
        let r = app
            .gql(Some(&s.organiser.access), PUBLISH, input(&ended, bad))
            .await;
        assert_eq!(error_field(&r), "decisions", "{r}");
    }
    let member = s.member("mo@example.org", "Mo").await;
    let r = app
        .gql(Some(&member.access), PUBLISH, input(&ended, json!(["No"])))
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = app
        .gql(
            Some(&s.organiser.access),
            PUBLISH,
            input(
                &ended,
                json!(["Publish the register weekly", "Meet again in June"]),
            ),
        )
        .await;
    let p = &r["data"]["publishMeetupOutcomes"];
    assert_eq!(p["meetup"]["status"], "HELD", "{r}");
    assert_eq!(
        p["outcome"]["decisions"],
        json!(["Publish the register weekly", "Meet again in June"])
    );
    assert!(p["outcome"]["summaryHtml"]
        .as_str()
        .unwrap()
        .contains("<strong>Much</strong>"));
    let r = app
        .gql(
            Some(&s.organiser.access),
            PUBLISH,
            input(&ended, json!(["Twice"])),
        )
        .await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    let m = s.meetup(None, &ended).await;
    assert_eq!(m["status"], "HELD");
    assert_eq!(m["outcome"]["decisions"][1], "Meet again in June");

    let record = "query($c: ID) { outcomes(filter: {commitmentId: $c}) { totalCount nodes { __typename ... on MeetupOutcome { decisions meetup { title } } } } }";
    let r = app.gql(None, record, json!({"c": commitment})).await;
    assert_eq!(r["data"]["outcomes"]["totalCount"], 1, "{r}");
    assert_eq!(
        r["data"]["outcomes"]["nodes"][0],
        json!({"__typename": "MeetupOutcome", "decisions": ["Publish the register weekly", "Meet again in June"], "meetup": {"title": "Spring forum"}})
    );
    let r = app.gql(None, record, json!({"c": other})).await;
    assert_eq!(r["data"]["outcomes"]["totalCount"], 0, "{r}");
    let r = app.gql(None, record, json!({"c": null})).await;
    assert_eq!(r["data"]["outcomes"]["totalCount"], 1, "{r}");

    // A private group's minutes stay off the public record unless marked public.
    let private = insert_group(&app.db, "steering", Visibility::Private).await;
    add_member(
        &app.db,
        private,
        &s.organiser,
        MemberRole::Organiser,
        MemberStatus::Active,
    )
    .await;
    working_group_commitment::ActiveModel {
        working_group_id: Set(private),
        commitment_id: Set(uuid(&commitment)),
    }
    .insert(&app.db)
    .await
    .unwrap();
    let closed = insert_meetup(&app.db, private, "Closed session", Duration::days(-2), None)
        .await
        .to_string();
    let open = insert_meetup(&app.db, private, "Open minutes", Duration::days(-3), None)
        .await
        .to_string();
    let r = app
        .gql(
            Some(&s.organiser.access),
            PUBLISH,
            input(&closed, json!(["Secret"])),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let mut open_input = input(&open, json!(["Shared"]));
    open_input["i"]["public"] = json!(true);
    let r = app
        .gql(Some(&s.organiser.access), PUBLISH, open_input)
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let r = app.gql(None, record, json!({"c": commitment})).await;
    assert_eq!(r["data"]["outcomes"]["totalCount"], 2, "{r}");
    let nodes = r["data"]["outcomes"]["nodes"].as_array().unwrap();
    assert!(nodes.iter().all(|n| n["decisions"] != json!(["Secret"])));
    // The public minutes of a private group do not open its meet-up to outsiders.
    let shared = nodes
        .iter()
        .find(|n| n["decisions"] == json!(["Shared"]))
        .unwrap();
    assert!(shared["meetup"].is_null(), "{shared}");
    // Members read their group's non-public minutes on the meet-up itself.
    assert_eq!(
        s.meetup(Some(&s.organiser), &closed).await["outcome"]["decisions"],
        json!(["Secret"])
    );
}

#[tokio::test]
async fn lists_filter_by_group_upcoming_and_attendance() {
    let s = stage(Visibility::Public).await;
    let app = &s.app;
    let other_group = insert_group(&app.db, "other", Visibility::Public).await;
    let past = insert_meetup(&app.db, s.group, "Past", Duration::days(-10), None).await;
    let soon = insert_meetup(&app.db, s.group, "Soon", Duration::days(1), None).await;
    let later = insert_meetup(&app.db, s.group, "Later", Duration::days(5), None).await;
    let elsewhere = insert_meetup(&app.db, other_group, "Elsewhere", Duration::days(3), None).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    s.rsvp(&ann, &later.to_string(), true).await;
    s.rsvp(&ann, &elsewhere.to_string(), true).await;
    let titles = |r: &Value| -> Vec<String> {
        r["data"]["meetups"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_string())
            .collect()
    };
    let q = "query($f: MeetupFilter, $first: Int, $after: String) { meetups(filter: $f, first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { title } } }";
    let r = app.gql(None, q, json!({"f": {}})).await;
    assert_eq!(titles(&r), ["Later", "Elsewhere", "Soon", "Past"]);
    let r = app
        .gql(None, q, json!({"f": {"upcoming": true}, "first": 2}))
        .await;
    assert_eq!(titles(&r), ["Soon", "Elsewhere"]);
    let cursor = r["data"]["meetups"]["pageInfo"]["endCursor"].clone();
    let r = app
        .gql(
            None,
            q,
            json!({"f": {"upcoming": true}, "first": 2, "after": cursor}),
        )
        .await;
    assert_eq!(titles(&r), ["Later"]);
    assert_eq!(r["data"]["meetups"]["pageInfo"]["hasNextPage"], false);
    let r = app
        .gql(
            None,
            q,
            json!({"f": {"workingGroupId": s.group.to_string(), "upcoming": true}}),
        )
        .await;
    assert_eq!(titles(&r), ["Soon", "Later"]);
    let r = app
        .gql(Some(&ann.access), q, json!({"f": {"attendingOnly": true}}))
        .await;
    assert_eq!(titles(&r), ["Later", "Elsewhere"]);
    assert_eq!(r["data"]["meetups"]["totalCount"], 2);
    let r = app
        .gql(None, q, json!({"f": {"attendingOnly": true}}))
        .await;
    assert!(titles(&r).is_empty());
    let _ = (past, soon);
}

#[tokio::test]
async fn reminders_go_once_to_each_person_going_whatever_the_number_of_instances() {
    let fast = |s: &mut convene::config::Settings| s.jobs.reminder_interval_secs = 1;
    let s = stage_with(Visibility::Public, fast).await;
    let app = &s.app;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let cat = app.verified_user("cat@example.org", "Cat").await;
    // A second instance on the same database, started once the accounts are made (its
    // outbox worker sends whatever it claims first).
    let second = spawn_app_on(
        tempfile::tempdir().unwrap(),
        s.app.database_url.clone(),
        fast,
    )
    .await;
    let soon = (Utc::now() + Duration::hours(3)).to_rfc3339();
    let mut input = meetup_input(s.group);
    input["startsAt"] = json!(soon);
    input["endsAt"] = json!((Utc::now() + Duration::hours(5)).to_rfc3339());
    let id = s.schedule(input).await;
    let far = s.schedule(meetup_input(s.group)).await;
    for p in [&ann, &bob] {
        s.rsvp(p, &id, true).await;
        s.rsvp(p, &far, true).await;
    }
    s.rsvp(&cat, &id, false).await;
    let reminders = |who: &str| {
        let who = who.to_string();
        let a = app.mails_to(&who);
        let b = second.mails_to(&who);
        a.into_iter()
            .chain(b)
            .filter(|m| m.template == "meetup_reminder")
            .count()
    };
    let wait_for = |n: usize| async move {
        for _ in 0..200 {
            if reminders("ann@example.org") >= n && reminders("bob@example.org") >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("reminders did not arrive");
    };
    wait_for(1).await;
    // Both instances keep running the job for a few more rounds.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(reminders("ann@example.org"), 1);
    assert_eq!(reminders("bob@example.org"), 1);
    assert_eq!(reminders("cat@example.org"), 0);
    assert_eq!(reminders("olga@example.org"), 0);
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'email' AND template = 'meetup_reminder'"
        )
        .await,
        2,
        "the meet-up a week away is not reminded yet"
    );
    // Each reminder is a notification too, once per person.
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(*) FROM notifications WHERE kind = 'MEETUP_REMINDER'"
        )
        .await,
        2
    );
    let m = app
        .mails_to("ann@example.org")
        .into_iter()
        .chain(second.mails_to("ann@example.org"))
        .find(|m| m.template == "meetup_reminder")
        .unwrap();
    assert!(m.text.contains("Data users' forum"), "{}", m.text);
    // Moving the meet-up re-arms its reminder.
    let r = app
        .gql(
            Some(&s.organiser.access),
            UPDATE,
            json!({"i": {"id": id, "startsAt": (Utc::now() + Duration::hours(4)).to_rfc3339()}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    wait_for(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(reminders("ann@example.org"), 2);
    assert_eq!(reminders("bob@example.org"), 2);
}

/// The crowd logs in from one address, more at once than the lock-out allows.
fn many_logins(s: &mut convene::config::Settings) {
    s.limits.login_ip_max_failures = 10_000;
    s.limits.login_pair_max_failures = 10_000;
}

/// Accounts, logged in, made in parallel batches.
async fn crowd(app: &TestApp, n: i32) -> Vec<Session> {
    let mut sessions = Vec::new();
    let numbers: Vec<i32> = (0..n).collect();
    for chunk in numbers.chunks(20) {
        sessions.extend(
            futures::future::join_all(chunk.iter().map(|i| app.verified_user_quick(i))).await,
        );
    }
    sessions
}

async fn positions(s: &Stage, sessions: &[Session], id: &str) -> Vec<(String, Option<i64>)> {
    futures::future::join_all(sessions.iter().map(|p| s.meetup(Some(p), id)))
        .await
        .into_iter()
        .map(|m| {
            (
                m["viewerRsvp"]["status"].as_str().unwrap().to_string(),
                m["viewerRsvp"]["waitlistPosition"].as_i64(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_rsvps_at_once_fill_ten_seats_and_queue_ninety_without_gaps() {
    let s = stage_with(Visibility::Public, many_logins).await;
    let app = &s.app;
    let mut input = meetup_input(s.group);
    input["capacity"] = json!(10);
    let id = s.schedule(input).await;
    let people = crowd(app, 100).await;
    let answers = futures::future::join_all(people.iter().map(|p| s.rsvp(p, &id, true))).await;
    for r in &answers {
        assert!(r["errors"].is_null(), "{r}");
    }
    let seen = positions(&s, &people, &id).await;
    let going = seen.iter().filter(|(st, _)| st == "GOING").count();
    assert_eq!(going, 10);
    let mut waiting: Vec<i64> = seen
        .iter()
        .filter(|(st, _)| st == "WAITLISTED")
        .map(|(_, p)| p.unwrap())
        .collect();
    waiting.sort_unstable();
    assert_eq!(waiting, (1..=90).collect::<Vec<_>>());
    let m = s.meetup(None, &id).await;
    assert_eq!(
        (m["goingCount"].clone(), m["waitlistCount"].clone()),
        (json!(10), json!(90))
    );
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM rsvps WHERE status = 'GOING'").await,
        10
    );
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(DISTINCT waitlist_seq) FROM rsvps WHERE status = 'WAITLISTED'"
        )
        .await,
        90
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_concurrent_withdrawals_promote_the_first_five_waiting_in_order() {
    let s = stage_with(Visibility::Public, many_logins).await;
    let app = &s.app;
    let mut input = meetup_input(s.group);
    input["capacity"] = json!(10);
    let id = s.schedule(input).await;
    let people = crowd(app, 30).await;
    futures::future::join_all(people.iter().map(|p| s.rsvp(p, &id, true))).await;
    let before = positions(&s, &people, &id).await;
    let going: Vec<usize> = (0..people.len())
        .filter(|i| before[*i].0 == "GOING")
        .collect();
    assert_eq!(going.len(), 10);
    let withdrawals = going
        .iter()
        .take(5)
        .map(|i| s.rsvp(&people[*i], &id, false));
    for r in futures::future::join_all(withdrawals).await {
        assert!(r["errors"].is_null(), "{r}");
    }
    let after = positions(&s, &people, &id).await;
    for (i, (status, position)) in before.iter().enumerate() {
        let now = &after[i];
        match (status.as_str(), position) {
            ("GOING", _) if going[..5].contains(&i) => assert_eq!(now.0, "NOT_GOING"),
            ("GOING", _) => assert_eq!(now.0, "GOING"),
            (_, Some(p)) if *p <= 5 => {
                assert_eq!(now.0, "GOING", "position {p} is promoted")
            }
            (_, Some(p)) => {
                assert_eq!(
                    now,
                    &("WAITLISTED".to_string(), Some(p - 5)),
                    "position {p}"
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let m = s.meetup(None, &id).await;
    assert_eq!(
        (m["goingCount"].clone(), m["waitlistCount"].clone()),
        (json!(10), json!(15))
    );
    // Each promoted person is mailed.
    let promoted: HashSet<usize> = (0..people.len())
        .filter(|i| before[*i].1.is_some_and(|p| p <= 5))
        .collect();
    for i in &promoted {
        app.wait_for_mail(&format!("crowd{i}@example.org"), "meetup_promoted")
            .await;
    }
}

#[tokio::test]
async fn a_group_page_costs_the_same_statements_for_2_and_20_meetups() {
    let (app, statements) = spawn_app_recording_statements(|s| {
        s.jobs.reminder_interval_secs = 3600;
        s.jobs.trending_refresh_secs = 3600;
    })
    .await;
    let viewer = app.verified_user("viewer@example.org", "Viewer").await;
    let mut costs = Vec::new();
    for n in [2usize, 20] {
        let group = insert_group(&app.db, &format!("group-{n}"), Visibility::Private).await;
        add_member(
            &app.db,
            group,
            &viewer,
            MemberRole::Member,
            MemberStatus::Active,
        )
        .await;
        for i in 0..n {
            let m = insert_meetup(
                &app.db,
                group,
                &format!("Meet-up {i}"),
                Duration::days(i as i64 + 1),
                Some(1),
            )
            .await;
            // The viewer is going to some and waiting for others.
            let now = convene::db::now();
            let status = match i % 3 {
                0 => rsvp::Status::Going,
                1 => rsvp::Status::Waitlisted,
                _ => continue,
            };
            rsvp::ActiveModel {
                meetup_id: Set(m),
                user_id: Set(uuid(&viewer.user_id)),
                status: Set(status),
                waitlist_seq: Set((status == rsvp::Status::Waitlisted).then_some(1)),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&app.db)
            .await
            .unwrap();
        }
        // The group page: the group, its next 10 meet-ups with going counts and the viewer's
        // RSVP, and 20 members.
        for i in 0..3 {
            let member = app.verified_user_quick(&(n as i32 * 10 + i)).await;
            add_member(
                &app.db,
                group,
                &member,
                MemberRole::Member,
                MemberStatus::Active,
            )
            .await;
        }
        let q = "query($id: ID!) { workingGroup(id: $id) { name memberCount viewerMembership { role } calendarUrl members(first: 20) { nodes { role user { displayName } } } meetups(first: 10, upcoming: true) { nodes { title goingCount waitlistCount onlineUrl calendarUrl viewerRsvp { status waitlistPosition } outcome { summary } workingGroup { name } } } } }";
        statements.clear();
        let r = app
            .gql(Some(&viewer.access), q, json!({"id": group.to_string()}))
            .await;
        let cost = statements.count();
        let nodes = r["data"]["workingGroup"]["meetups"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"));
        assert_eq!(nodes.len(), n.min(10));
        let members = r["data"]["workingGroup"]["members"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"));
        assert_eq!(members.len(), 4, "{r}");
        assert!(
            r["data"]["workingGroup"]["calendarUrl"]
                .as_str()
                .is_some_and(|u| u.contains("token=")),
            "{r}"
        );
        assert_eq!(nodes[0]["viewerRsvp"]["status"], "GOING");
        assert_eq!(nodes[0]["onlineUrl"], "https://meet.example.org/x");
        assert_eq!(
            nodes[1]["viewerRsvp"],
            json!({"status": "WAITLISTED", "waitlistPosition": 1})
        );
        assert!(nodes[1]["onlineUrl"].is_null());
        costs.push(cost);
    }
    assert_eq!(
        costs[0], costs[1],
        "statements for 2 and 20 meet-ups: {costs:?}"
    );
}

/// An account verified straight in the database, for apps whose mail goes to a real SMTP
/// server rather than the in-memory transport the usual helper reads.
async fn smtp_user(app: &TestApp, email: &str, name: &str) -> Session {
    app.unverified_user(email, name).await;
    exec(
        &app.db,
        &format!("UPDATE users SET email_verified_at = created_at WHERE email = '{email}'"),
    )
    .await;
    app.logged_in(email).await
}

/// Waits for a mail to `to` that carries an `invite.ics` whose METHOD is `method` and whose
/// SEQUENCE is `sequence`, and returns the parsed calendar.
async fn invitation(
    smtp: &crate::smtp_server::SmtpServer,
    to: &str,
    method: &str,
    sequence: &str,
) -> ical::parser::ical::component::IcalCalendar {
    use crate::calendar::{parse, prop};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        for mail in smtp.received_for(to) {
            let message = mail.mime();
            let Some(part) = message.find("text/calendar") else {
                continue;
            };
            let cal = parse(&part.decoded());
            let event = &cal.events[0].properties;
            if prop(&cal.properties, "METHOD") == Some(method)
                && prop(event, "SEQUENCE") == Some(sequence)
            {
                assert!(
                    part.content_type()
                        .contains(&format!("method={}", method.to_lowercase())),
                    "{}",
                    part.content_type()
                );
                return cal;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {method} invitation with SEQUENCE {sequence} to {to}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn rsvp_and_change_mails_arrive_over_smtp_with_invitations_a_calendar_parser_reads() {
    use crate::calendar::{feed, ical_time, prop, unescape};
    use convene::config::{MailTransportKind, SmtpTls};
    let smtp = crate::smtp_server::SmtpServer::start().await;
    let app = spawn_app_with(|s| {
        s.mail.transport = MailTransportKind::Smtp;
        s.mail.smtp.host = "127.0.0.1".into();
        s.mail.smtp.port = smtp.port();
        s.mail.smtp.tls = SmtpTls::None;
        s.mail.smtp.timeout_secs = 5;
    })
    .await;
    let organiser = smtp_user(&app, "olga@example.org", "Olga Organiser").await;
    let guest = smtp_user(&app, "gus@example.org", "Gus").await;
    let group = insert_group(&app.db, "data-users", Visibility::Public).await;
    add_member(
        &app.db,
        group,
        &organiser,
        MemberRole::Organiser,
        MemberStatus::Active,
    )
    .await;
    let title = "Registers, APIs; and the café's 東京 data";
    let mut input = meetup_input(group);
    input["title"] = json!(title);
    let r = app
        .gql(Some(&organiser.access), SCHEDULE, json!({ "i": input }))
        .await;
    let id = r["data"]["scheduleMeetup"]["meetup"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    let r = app
        .gql(
            Some(&guest.access),
            RSVP,
            json!({"i": {"meetupId": id, "attending": true}}),
        )
        .await;
    assert_eq!(r["data"]["rsvpMeetup"]["rsvp"]["status"], "GOING", "{r}");

    // The confirmation carries the invitation, addressed to the guest.
    let cal = invitation(&smtp, "gus@example.org", "REQUEST", "0").await;
    let event = &cal.events[0].properties;
    assert_eq!(unescape(prop(event, "SUMMARY").unwrap()), title);
    assert_eq!(prop(event, "STATUS"), Some("CONFIRMED"));
    assert_eq!(prop(event, "ATTENDEE"), Some("mailto:gus@example.org"));
    assert!(unescape(prop(event, "LOCATION").unwrap()).contains("Room 1, 70 Whitehall"));
    assert!(prop(event, "URL")
        .unwrap()
        .ends_with(&format!("/meetups/{id}")));
    // Going, so the online link is in it.
    assert!(
        unescape(prop(event, "DESCRIPTION").unwrap()).contains("https://meet.example.org/forum")
    );

    // A time change: SEQUENCE 1 in the change mail and in the feed, at the new time.
    let starts = Utc::now() + Duration::days(8);
    let ends = starts + Duration::hours(2);
    let r = app
        .gql(
            Some(&organiser.access),
            UPDATE,
            json!({"i": {"id": id, "startsAt": starts.to_rfc3339(), "endsAt": ends.to_rfc3339()}}),
        )
        .await;
    assert_eq!(r["data"]["updateMeetup"]["meetup"]["sequence"], 1, "{r}");
    let cal = invitation(&smtp, "gus@example.org", "REQUEST", "1").await;
    let dtstart = prop(&cal.events[0].properties, "DTSTART")
        .unwrap()
        .to_string();
    let fed = feed(&app, &format!("/calendar/meetups/{id}.ics")).await;
    let fed_event = &fed.events[0].properties;
    assert_eq!(prop(fed_event, "SEQUENCE"), Some("1"));
    assert_eq!(prop(fed_event, "DTSTART"), Some(dtstart.as_str()));
    assert_eq!(
        &dtstart[..13],
        &ical_time(starts)[..13],
        "the new start, to the minute"
    );

    // Cancelling sends METHOD:CANCEL with the next SEQUENCE and STATUS:CANCELLED.
    let r = app
        .gql(
            Some(&organiser.access),
            CANCEL,
            json!({"i": {"id": id, "reason": "Room flooded, sorry"}}),
        )
        .await;
    assert_eq!(
        r["data"]["cancelMeetup"]["meetup"]["status"], "CANCELLED",
        "{r}"
    );
    let cal = invitation(&smtp, "gus@example.org", "CANCEL", "2").await;
    assert_eq!(prop(&cal.events[0].properties, "STATUS"), Some("CANCELLED"));
}
