//! A private group's inside (threads, posts, meet-ups, the member list, outcomes, calendar
//! feeds, live posts, notifications and mail) is out of reach of everyone who may not see
//! inside it: anonymous viewers, outsiders, PENDING and INVITED people, former members and
//! removed members. Private groups admit on REQUEST unless OPEN is asked for; leaving or
//! being removed gives up RSVPs, moves the waitlist up and stops the online link.

use std::time::Duration;

use convene::entities::notification::{self, Kind};
use convene::entities::user::Role;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::calendar::get;
use crate::helpers::*;
use crate::ws_client::WsClient;

const CREATE: &str = "mutation($i: CreateWorkingGroupInput!) { createWorkingGroup(input: $i) { workingGroup { id slug joinPolicy visibility } } }";
const UPDATE: &str = "mutation($i: UpdateWorkingGroupInput!) { updateWorkingGroup(input: $i) { workingGroup { joinPolicy visibility } } }";
const JOIN: &str = "mutation($id: ID!) { joinWorkingGroup(id: $id) { membership { id status } } }";
const LEAVE: &str = "mutation($id: ID!) { leaveWorkingGroup(id: $id) { workingGroup { id } } }";
const INVITE: &str = "mutation($i: InviteToWorkingGroupInput!) { inviteToWorkingGroup(input: $i) { membership { id status } } }";
const REMOVE: &str = "mutation($i: RemoveMemberInput!) { removeMember(input: $i) { membership { id status user { id } } } }";
const SCHEDULE: &str =
    "mutation($i: ScheduleMeetupInput!) { scheduleMeetup(input: $i) { meetup { id } } }";
const UPDATE_MEETUP: &str =
    "mutation($i: UpdateMeetupInput!) { updateMeetup(input: $i) { meetup { id sequence } } }";
const RSVP: &str = "mutation($i: RsvpMeetupInput!) { rsvpMeetup(input: $i) { rsvp { status } meetup { goingCount waitlistCount } } }";
const MEETUP: &str = "query($id: ID!) { meetup(id: $id) { id onlineUrl goingCount waitlistCount viewerRsvp { status } } }";
const START: &str =
    "mutation($i: StartThreadInput!) { startThread(input: $i) { thread { id posts(first: 1) { nodes { id } } } } }";
const REPLY: &str =
    "mutation($i: ReplyToThreadInput!) { replyToThread(input: $i) { post { id } } }";
const FOLLOW: &str = "mutation($id: ID!) { followThread(id: $id) { thread { id } } }";
const POST_ADDED: &str = "subscription($t: ID!) { postAdded(threadId: $t) { id body } }";
const ONLINE: &str = "https://meet.example.org/inner-circle";

/// Everyone in one private group, each standing differently to it.
struct World {
    app: TestApp,
    org: Session,
    admin: Session,
    /// An ACTIVE member.
    member: Session,
    /// Asked to join; PENDING.
    pending: Session,
    /// Invited; has not accepted.
    invited: Session,
    /// Was an ACTIVE member, GOING to the meet-up and following the thread; left.
    former: Session,
    /// Was an ACTIVE member; removed by the organiser.
    removed: Session,
    /// No relation to the group.
    outsider: Session,
    group: String,
    slug: String,
    meetup: String,
    thread: String,
    post: String,
    held: String,
}

async fn ok(app: &TestApp, who: &Session, query: &str, vars: Value) -> Value {
    let r = app.gql(Some(&who.access), query, vars).await;
    assert!(r["errors"].is_null(), "{query}: {r}");
    r["data"].clone()
}

fn id_at(v: &Value, path: &[&str]) -> String {
    let mut at = v;
    for p in path {
        at = &at[*p];
    }
    at.as_str()
        .unwrap_or_else(|| panic!("no {path:?} in {v}"))
        .to_string()
}

async fn private_group(app: &TestApp, org: &Session, slug: &str) -> String {
    let d = ok(
        app,
        org,
        CREATE,
        json!({"i": {"name": format!("Group {slug}"), "slug": slug, "visibility": "PRIVATE"}}),
    )
    .await;
    id_at(&d, &["createWorkingGroup", "workingGroup", "id"])
}

/// Invites `who` and has them accept: an ACTIVE member, returning the membership ID.
async fn admit(app: &TestApp, org: &Session, group: &str, who: &Session) -> String {
    ok(
        app,
        org,
        INVITE,
        json!({"i": {"workingGroupId": group, "userId": who.user_id}}),
    )
    .await;
    let d = ok(app, who, JOIN, json!({ "id": group })).await;
    assert_eq!(d["joinWorkingGroup"]["membership"]["status"], "ACTIVE");
    id_at(&d, &["joinWorkingGroup", "membership", "id"])
}

async fn schedule(app: &TestApp, org: &Session, group: &str, capacity: Option<i32>) -> String {
    let start = chrono::Utc::now() + chrono::Duration::days(7);
    let d = ok(
        app,
        org,
        SCHEDULE,
        json!({"i": {"workingGroupId": group, "title": "Inner circle", "startsAt": start,
            "endsAt": start + chrono::Duration::hours(2), "timeZone": "Europe/London",
            "venue": "Room 1", "onlineUrl": ONLINE, "capacity": capacity}}),
    )
    .await;
    id_at(&d, &["scheduleMeetup", "meetup", "id"])
}

async fn rsvp(app: &TestApp, who: &Session, meetup: &str, attending: bool) -> Value {
    ok(
        app,
        who,
        RSVP,
        json!({"i": {"meetupId": meetup, "attending": attending}}),
    )
    .await["rsvpMeetup"]
        .clone()
}

async fn meetup(app: &TestApp, who: &Session, id: &str) -> Value {
    ok(app, who, MEETUP, json!({ "id": id })).await["meetup"].clone()
}

/// A held meet-up whose outcomes the group keeps to its members.
async fn held_meetup(app: &TestApp, org: &Session, group: &str) -> String {
    use convene::entities::meetup;
    use sea_orm::sea_query::Expr;
    let id = schedule(app, org, group, None).await;
    let start = convene::db::now() - chrono::Duration::days(2);
    meetup::Entity::update_many()
        .col_expr(meetup::Column::StartsAt, Expr::value(start))
        .col_expr(
            meetup::Column::EndsAt,
            Expr::value(start + chrono::Duration::hours(2)),
        )
        .filter(meetup::Column::Id.eq(id.parse::<uuid::Uuid>().unwrap()))
        .exec(&app.db)
        .await
        .unwrap();
    ok(
        app,
        org,
        "mutation($i: PublishMeetupOutcomesInput!) { publishMeetupOutcomes(input: $i) { meetup { id } } }",
        json!({"i": {"meetupId": id, "summary": "Secret minutes", "decisions": ["Keep it quiet"], "public": false}}),
    )
    .await;
    id
}

async fn world() -> World {
    let app = spawn_app().await;
    let org = user_with_role(&app, "org@example.org", "Orla", Role::Organiser).await;
    let admin = user_with_role(&app, "admin@example.org", "Ada", Role::Admin).await;
    let member = app.verified_user("member@example.org", "Mia").await;
    let pending = app.verified_user("pending@example.org", "Pat").await;
    let invited = app.verified_user("invited@example.org", "Ivy").await;
    let former = app.verified_user("former@example.org", "Fay").await;
    let removed = app.verified_user("removed@example.org", "Rex").await;
    let outsider = app.verified_user("outsider@example.org", "Oli").await;
    let slug = "inner-circle".to_string();
    let group = private_group(&app, &org, &slug).await;
    admit(&app, &org, &group, &member).await;
    admit(&app, &org, &group, &former).await;
    let removed_membership = admit(&app, &org, &group, &removed).await;
    let d = ok(&app, &pending, JOIN, json!({ "id": group })).await;
    assert_eq!(d["joinWorkingGroup"]["membership"]["status"], "PENDING");
    ok(
        &app,
        &org,
        INVITE,
        json!({"i": {"workingGroupId": group, "userId": invited.user_id}}),
    )
    .await;

    let meetup_id = schedule(&app, &org, &group, None).await;
    let held = held_meetup(&app, &org, &group).await;
    let d = ok(
        &app,
        &org,
        START,
        json!({"i": {"workingGroupId": group, "title": "Inner plans", "body": "Shh."}}),
    )
    .await;
    let thread = id_at(&d, &["startThread", "thread", "id"]);
    // The two soon to be gone take part: they post, follow, go to the meet-up.
    for who in [&former, &removed, &member] {
        ok(
            &app,
            who,
            REPLY,
            json!({"i": {"threadId": thread, "body": "Count me in."}}),
        )
        .await;
        ok(&app, who, FOLLOW, json!({ "id": thread })).await;
        assert_eq!(
            rsvp(&app, who, &meetup_id, true).await["rsvp"]["status"],
            "GOING"
        );
        assert_eq!(meetup(&app, who, &meetup_id).await["onlineUrl"], ONLINE);
    }
    let post = {
        let d = ok(
            &app,
            &org,
            REPLY,
            json!({"i": {"threadId": thread, "body": "Agenda soon."}}),
        )
        .await;
        id_at(&d, &["replyToThread", "post", "id"])
    };
    app.notifications_settled().await;

    ok(&app, &former, LEAVE, json!({ "id": group })).await;
    ok(
        &app,
        &org,
        REMOVE,
        json!({"i": {"membershipId": removed_membership, "reason": "Left the organisation"}}),
    )
    .await;
    World {
        app,
        org,
        admin,
        member,
        pending,
        invited,
        former,
        removed,
        outsider,
        group,
        slug,
        meetup: meetup_id,
        thread,
        post,
        held,
    }
}

/// Everything a viewer might read of the group's inside, in one request.
const INSIDE: &str = r#"query($g: ID!, $m: ID!, $h: ID!, $t: ID!, $member: ID!) {
  workingGroup(id: $g) { members(first: 50) { nodes { id } } calendarUrl }
  meetup(id: $m) { id onlineUrl }
  held: meetup(id: $h) { outcome { summary } }
  thread(id: $t) { id posts(first: 50) { nodes { id body } } }
  groupThreads: threads(first: 50, filter: {workingGroupId: $g}) { totalCount nodes { id } }
  allThreads: threads(first: 100) { nodes { id } }
  groupMeetups: meetups(first: 50, filter: {workingGroupId: $g}) { totalCount nodes { id } }
  allMeetups: meetups(first: 100) { nodes { id } }
  outcomes(first: 100) { nodes { ... on MeetupOutcome { summary } } }
  workingGroups(first: 50, filter: {memberId: $member}) { nodes { id } }
}"#;

async fn inside(w: &World, who: Option<&Session>) -> Value {
    let r = w
        .app
        .gql(
            who.map(|s| s.access.as_str()),
            INSIDE,
            json!({"g": w.group, "m": w.meetup, "h": w.held, "t": w.thread, "member": w.member.user_id}),
        )
        .await;
    // What is out of reach is NOT_FOUND, exactly as what does not exist.
    for e in r["errors"].as_array().into_iter().flatten() {
        assert_eq!(e["extensions"]["code"], "NOT_FOUND", "{r}");
    }
    r["data"].clone()
}

fn assert_sees_nothing(d: &Value, who: &str, w: &World) {
    let text = d.to_string();
    assert!(d["workingGroup"]["members"].is_null(), "{who}: {d}");
    assert!(d["workingGroup"]["calendarUrl"].is_null(), "{who}: {d}");
    assert!(d["meetup"].is_null(), "{who}: {d}");
    assert!(d["held"].is_null(), "{who}: {d}");
    assert!(d["thread"].is_null(), "{who}: {d}");
    assert_eq!(
        d["groupThreads"]["totalCount"].as_i64().unwrap_or(0),
        0,
        "{who}: {d}"
    );
    assert_eq!(
        d["groupMeetups"]["totalCount"].as_i64().unwrap_or(0),
        0,
        "{who}: {d}"
    );
    assert_eq!(d["workingGroups"]["nodes"], json!([]), "{who}: {d}");
    for secret in [
        w.thread.as_str(),
        w.meetup.as_str(),
        w.held.as_str(),
        "Secret minutes",
        ONLINE,
    ] {
        assert!(!text.contains(secret), "{who} reached {secret}: {d}");
    }
}

#[tokio::test]
async fn a_private_groups_inside_is_out_of_reach_of_everyone_who_may_not_see_inside() {
    let w = world().await;
    let app = &w.app;

    // Through every list and item of the API.
    let r = w
        .app
        .gql(
            Some(&w.member.access),
            INSIDE,
            json!({"g": w.group, "m": w.meetup, "h": w.held, "t": w.thread, "member": w.member.user_id}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let d = inside(&w, Some(&w.member)).await;
    assert_eq!(d["meetup"]["id"], w.meetup.as_str(), "{d}");
    assert_eq!(d["meetup"]["onlineUrl"], ONLINE, "{d}");
    assert_eq!(d["held"]["outcome"]["summary"], "Secret minutes", "{d}");
    assert_eq!(d["groupThreads"]["totalCount"], 1, "{d}");
    assert!(d["workingGroup"]["calendarUrl"].is_string(), "{d}");
    assert_eq!(
        d["workingGroups"]["nodes"][0]["id"],
        w.group.as_str(),
        "{d}"
    );
    assert_sees_nothing(&inside(&w, None).await, "anonymous", &w);
    for (name, who) in [
        ("outsider", &w.outsider),
        ("pending", &w.pending),
        ("invited", &w.invited),
        ("former", &w.former),
        ("removed", &w.removed),
    ] {
        assert_sees_nothing(&inside(&w, Some(who)).await, name, &w);
    }
    // Administrators see inside every group.
    let d = inside(&w, Some(&w.admin)).await;
    assert_eq!(d["groupMeetups"]["totalCount"], 2, "{d}");

    // Through the calendar feeds: by session, and by a former member's old secret URL.
    let group_feed = format!("/calendar/groups/{}.ics", w.slug);
    let meetup_feed = format!("/calendar/meetups/{}.ics", w.meetup);
    for who in [&w.outsider, &w.pending, &w.invited, &w.former, &w.removed] {
        for path in [&group_feed, &meetup_feed] {
            let (status, _, body) = get(app, path, Some(&who.access)).await;
            assert_eq!(status, 404, "{path}: {body}");
        }
    }
    let (status, _, _) = get(app, &group_feed, Some(&w.member.access)).await;
    assert_eq!(status, 200);

    // Nobody who may not see inside can follow the thread or hear its posts live.
    for who in [&w.outsider, &w.pending, &w.invited, &w.former, &w.removed] {
        let r = app
            .gql(Some(&who.access), FOLLOW, json!({ "id": w.thread }))
            .await;
        assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
        let mut ws = WsClient::connect(app, Some(&who.access)).await;
        let sub = ws.subscribe(POST_ADDED, json!({ "t": w.thread })).await;
        let e = ws.error_for(&sub).await;
        assert!(e.to_string().contains("NOT_FOUND"), "{e}");
        ws.close().await;
    }

    // A former member's notifications about the thread and the meet-up, written while they
    // were in, no longer lead inside.
    let r = app
        .gql(
            Some(&w.former.access),
            "{ notifications(first: 50) { nodes { kind subject { __typename ... on Post { id body } } } } }",
            json!({}),
        )
        .await;
    let nodes = r["data"]["notifications"]["nodes"].as_array().unwrap();
    assert!(nodes.iter().any(|n| n["kind"] == "THREAD_POST"), "{r}");
    for n in nodes {
        if n["kind"] != "MEMBERSHIP_INVITED" {
            assert!(n["subject"].is_null(), "{r}");
        }
    }
    assert!(!r.to_string().contains(&w.post), "{r}");
    // The member's lead to the same post.
    let r = app
        .gql(
            Some(&w.member.access),
            "{ notifications(first: 50) { nodes { kind subject { ... on Post { id } } } } }",
            json!({}),
        )
        .await;
    assert!(r.to_string().contains(&w.post), "{r}");
}

/// Counts the notifications of `who` of `kind`.
async fn notified(app: &TestApp, who: &Session, kind: Kind) -> u64 {
    notification::Entity::find()
        .filter(notification::Column::RecipientId.eq(who.user_id.parse::<uuid::Uuid>().unwrap()))
        .filter(notification::Column::Kind.eq(kind))
        .count(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn nothing_new_reaches_former_or_removed_members_by_notification_mail_or_socket() {
    let w = world().await;
    let app = &w.app;
    let before: Vec<u64> = {
        let mut v = Vec::new();
        for who in [&w.former, &w.removed] {
            v.push(notified(app, who, Kind::ThreadPost).await);
        }
        v
    };
    // The member listens live; so do the two gone (their sockets opened while in).
    let mut member_ws = WsClient::connect(app, Some(&w.member.access)).await;
    let member_sub = member_ws
        .subscribe(POST_ADDED, json!({ "t": w.thread }))
        .await;

    // New inside activity: a post, and a change of time and place to the meet-up.
    ok(
        app,
        &w.org,
        REPLY,
        json!({"i": {"threadId": w.thread, "body": "The new plan."}}),
    )
    .await;
    let later = chrono::Utc::now() + chrono::Duration::days(8);
    ok(
        app,
        &w.org,
        UPDATE_MEETUP,
        json!({"i": {"id": w.meetup, "startsAt": later, "endsAt": later + chrono::Duration::hours(2),
            "onlineUrl": "https://meet.example.org/new-room"}}),
    )
    .await;
    app.notifications_settled().await;
    app.settle().await;

    let pushed = member_ws.next_data(&member_sub).await;
    assert_eq!(pushed["postAdded"]["body"], "The new plan.", "{pushed}");
    // The member still hears; the former and removed members hear nothing new.
    assert_eq!(notified(app, &w.member, Kind::MeetupChanged).await, 1);
    app.wait_for_mail("member@example.org", "meetup_changed")
        .await;
    for (i, (who, email)) in [
        (&w.former, "former@example.org"),
        (&w.removed, "removed@example.org"),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(notified(app, who, Kind::ThreadPost).await, before[i]);
        assert_eq!(notified(app, who, Kind::MeetupChanged).await, 0);
        for m in app.mails_to(email) {
            assert_ne!(m.template, "meetup_changed", "{email} got {m:?}");
            assert!(
                !format!("{m:?}").contains("new-room"),
                "{email} was sent the new online link: {m:?}"
            );
        }
        // No new online link through the API either: the meet-up is out of reach.
        let r = app
            .gql(Some(&who.access), MEETUP, json!({ "id": w.meetup }))
            .await;
        assert!(r["data"]["meetup"].is_null(), "{r}");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn a_socket_opened_while_a_member_hears_nothing_once_they_leave() {
    let app = spawn_app().await;
    let org = user_with_role(&app, "org@example.org", "Orla", Role::Organiser).await;
    let fay = app.verified_user("fay@example.org", "Fay").await;
    let group = private_group(&app, &org, "quiet-room").await;
    admit(&app, &org, &group, &fay).await;
    let d = ok(
        &app,
        &org,
        START,
        json!({"i": {"workingGroupId": group, "title": "Quiet plans", "body": "Shh."}}),
    )
    .await;
    let thread = id_at(&d, &["startThread", "thread", "id"]);
    let mut ws = WsClient::connect(&app, Some(&fay.access)).await;
    let sub = ws.subscribe(POST_ADDED, json!({ "t": thread })).await;
    let reply = json!({"i": {"threadId": thread, "body": "While you are here."}});
    ok(&app, &org, REPLY, reply).await;
    assert_eq!(
        ws.next_data(&sub).await["postAdded"]["body"],
        "While you are here."
    );
    ok(&app, &fay, LEAVE, json!({ "id": group })).await;
    ok(
        &app,
        &org,
        REPLY,
        json!({"i": {"threadId": thread, "body": "After you left."}}),
    )
    .await;
    assert!(
        ws.try_next_for(&sub, Duration::from_millis(800))
            .await
            .is_none(),
        "a former member heard a post of the private group"
    );
}

#[tokio::test]
async fn private_groups_admit_on_request_unless_open_is_asked_for() {
    let app = spawn_app().await;
    let org = user_with_role(&app, "org@example.org", "Orla", Role::Organiser).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let create = |input: Value| {
        let app = &app;
        let org = &org;
        async move {
            ok(app, org, CREATE, json!({ "i": input })).await["createWorkingGroup"]["workingGroup"]
                .clone()
        }
    };
    // Left out: REQUEST for a private group, OPEN for a public one.
    let private =
        create(json!({"name": "Private", "slug": "private-one", "visibility": "PRIVATE"})).await;
    assert_eq!(private["joinPolicy"], "REQUEST", "{private}");
    let public = create(json!({"name": "Public", "slug": "public-one"})).await;
    assert_eq!(public["joinPolicy"], "OPEN", "{public}");
    // Joining the private one asks; nothing inside opens.
    let d = ok(&app, &ann, JOIN, json!({ "id": private["id"] })).await;
    assert_eq!(d["joinWorkingGroup"]["membership"]["status"], "PENDING");
    // OPEN given by name makes a private group anyone may join.
    let open = create(json!({"name": "Open private", "slug": "open-private", "visibility": "PRIVATE", "joinPolicy": "OPEN"})).await;
    assert_eq!(open["joinPolicy"], "OPEN", "{open}");
    let d = ok(&app, &ann, JOIN, json!({ "id": open["id"] })).await;
    assert_eq!(d["joinWorkingGroup"]["membership"]["status"], "ACTIVE");
    // Making an OPEN group private without naming a policy makes it REQUEST; naming OPEN
    // keeps it.
    let d = ok(
        &app,
        &org,
        UPDATE,
        json!({"i": {"id": public["id"], "visibility": "PRIVATE"}}),
    )
    .await;
    assert_eq!(
        d["updateWorkingGroup"]["workingGroup"],
        json!({"joinPolicy": "REQUEST", "visibility": "PRIVATE"})
    );
    let again = create(json!({"name": "Public two", "slug": "public-two"})).await;
    let d = ok(
        &app,
        &org,
        UPDATE,
        json!({"i": {"id": again["id"], "visibility": "PRIVATE", "joinPolicy": "OPEN"}}),
    )
    .await;
    assert_eq!(
        d["updateWorkingGroup"]["workingGroup"],
        json!({"joinPolicy": "OPEN", "visibility": "PRIVATE"})
    );
}

#[tokio::test]
async fn leaving_or_being_removed_gives_up_rsvps_and_moves_the_waitlist_up() {
    let app = spawn_app().await;
    let org = user_with_role(&app, "org@example.org", "Orla", Role::Organiser).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    let cat = app.verified_user("cat@example.org", "Cat").await;
    // A public group: a former member still sees the meet-up, but not its online link.
    let d = ok(
        &app,
        &org,
        CREATE,
        json!({"i": {"name": "Open table", "slug": "open-table"}}),
    )
    .await;
    let group = id_at(&d, &["createWorkingGroup", "workingGroup", "id"]);
    let mut memberships = Vec::new();
    for who in [&ann, &bob, &cat] {
        let d = ok(&app, who, JOIN, json!({ "id": group })).await;
        memberships.push(id_at(&d, &["joinWorkingGroup", "membership", "id"]));
    }
    let m = schedule(&app, &org, &group, Some(1)).await;
    assert_eq!(rsvp(&app, &ann, &m, true).await["rsvp"]["status"], "GOING");
    assert_eq!(
        rsvp(&app, &bob, &m, true).await["rsvp"]["status"],
        "WAITLISTED"
    );
    assert_eq!(
        rsvp(&app, &cat, &m, true).await["rsvp"]["status"],
        "WAITLISTED"
    );

    // Ann leaves: her seat goes to Bob, first on the waitlist.
    ok(&app, &ann, LEAVE, json!({ "id": group })).await;
    let seen = meetup(&app, &ann, &m).await;
    assert_eq!(seen["viewerRsvp"], Value::Null, "{seen}");
    assert_eq!(seen["onlineUrl"], Value::Null, "{seen}");
    assert_eq!(seen["goingCount"], 1, "{seen}");
    assert_eq!(seen["waitlistCount"], 1, "{seen}");
    let bobs = meetup(&app, &bob, &m).await;
    assert_eq!(bobs["viewerRsvp"]["status"], "GOING", "{bobs}");
    assert_eq!(bobs["onlineUrl"], ONLINE, "{bobs}");
    app.wait_for_mail("bob@example.org", "meetup_promoted")
        .await;

    // Removing Bob gives his seat to Cat, and is in the moderation log with the reason.
    let r = app
        .gql(
            Some(&cat.access),
            REMOVE,
            json!({"i": {"membershipId": memberships[1], "reason": "no"}}),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let d = ok(
        &app,
        &org,
        REMOVE,
        json!({"i": {"membershipId": memberships[1], "reason": "Broke the code of conduct"}}),
    )
    .await;
    assert_eq!(
        d["removeMember"]["membership"]["user"]["id"],
        bob.user_id.as_str()
    );
    let cats = meetup(&app, &cat, &m).await;
    assert_eq!(cats["viewerRsvp"]["status"], "GOING", "{cats}");
    assert_eq!(cats["waitlistCount"], 0, "{cats}");
    assert_eq!(meetup(&app, &bob, &m).await["onlineUrl"], Value::Null);
    let r = app
        .gql(
            Some(&bob.access),
            "query($g: ID!) { workingGroup(id: $g) { memberCount viewerMembership { id } } }",
            json!({ "g": group }),
        )
        .await;
    assert_eq!(
        r["data"]["workingGroup"]["viewerMembership"],
        Value::Null,
        "{r}"
    );
    assert_eq!(r["data"]["workingGroup"]["memberCount"], 2, "{r}");

    // A change of place mails the new link to Cat, never to Ann or Bob.
    ok(
        &app,
        &org,
        UPDATE_MEETUP,
        json!({"i": {"id": m, "onlineUrl": "https://meet.example.org/moved"}}),
    )
    .await;
    app.wait_for_mail("cat@example.org", "meetup_changed").await;
    app.settle().await;
    for email in ["ann@example.org", "bob@example.org"] {
        assert!(
            app.mails_to(email)
                .iter()
                .all(|m| m.template != "meetup_changed"),
            "{email}"
        );
    }

    let admin = user_with_role(&app, "admin@example.org", "Ada", Role::Admin).await;
    let log = ok(
        &app,
        &admin,
        "{ moderationLog(first: 20) { nodes { action subjectType subjectId reason actor { displayName } } } }",
        json!({}),
    )
    .await;
    let entry = log["moderationLog"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["action"] == "MEMBER_REMOVED")
        .cloned()
        .unwrap_or_else(|| panic!("no MEMBER_REMOVED entry: {log}"));
    assert_eq!(
        entry,
        json!({"action": "MEMBER_REMOVED", "subjectType": "USER", "subjectId": bob.user_id,
            "reason": "Broke the code of conduct", "actor": {"displayName": "Orla"}})
    );
}

#[tokio::test]
async fn remove_member_refuses_oneself_the_last_organiser_and_non_organisers() {
    let app = spawn_app().await;
    let org = user_with_role(&app, "org@example.org", "Orla", Role::Organiser).await;
    let admin = user_with_role(&app, "admin@example.org", "Ada", Role::Admin).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let group = private_group(&app, &org, "steady").await;
    let ann_m = admit(&app, &org, &group, &ann).await;
    let org_m = ok(
        &app,
        &org,
        "query($g: ID!) { workingGroup(id: $g) { viewerMembership { id } } }",
        json!({ "g": group }),
    )
    .await["workingGroup"]["viewerMembership"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let remove = |who: &Session, membership: &str| {
        let vars = json!({"i": {"membershipId": membership}});
        let token = who.access.clone();
        let app = &app;
        async move { app.gql(Some(&token), REMOVE, vars).await }
    };
    // A member may not remove anyone; anonymous viewers must sign in.
    let r = remove(&ann, &org_m).await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = app
        .gql(None, REMOVE, json!({"i": {"membershipId": ann_m}}))
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    // Nobody removes themself: that is leaving.
    let r = remove(&org, &org_m).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert_eq!(error_field(&r), "membershipId", "{r}");
    // The last organiser stays, even against an administrator.
    let r = remove(&admin, &org_m).await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    // Bad input is typed.
    let r = app
        .gql(
            Some(&org.access),
            REMOVE,
            json!({"i": {"membershipId": ann_m, "reason": "x".repeat(1001)}}),
        )
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert_eq!(error_field(&r), "reason", "{r}");
    let r = remove(&org, "not-an-id").await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    // Nothing changed.
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM memberships").await, 2);
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM moderation_actions").await,
        0
    );
    // An administrator may remove a member of any group.
    let d = ok(&app, &admin, REMOVE, json!({"i": {"membershipId": ann_m}})).await;
    assert_eq!(d["removeMember"]["membership"]["id"], ann_m.as_str());
    let r = remove(&org, &ann_m).await;
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
}
