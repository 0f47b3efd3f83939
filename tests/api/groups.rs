//! Working groups: creating and editing, joining by each policy, requests, invitations,
//! roles, the last-organiser rule under concurrency, private groups' member lists, the
//! list and its filters, notification events, and the statement budget of a page.

use convene::entities::membership;
use convene::entities::user::Role;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::*;

const CREATE: &str = "mutation($i: CreateWorkingGroupInput!) { createWorkingGroup(input: $i) { workingGroup { id slug name description descriptionHtml kind visibility joinPolicy outcomesPublic memberCount commitments { reference } viewerMembership { role status joinedAt } } } }";
const UPDATE: &str = "mutation($i: UpdateWorkingGroupInput!) { updateWorkingGroup(input: $i) { workingGroup { id slug name descriptionHtml kind visibility joinPolicy outcomesPublic commitments { reference } } } }";
const JOIN: &str = "mutation($id: ID!) { joinWorkingGroup(id: $id) { membership { id role status joinedAt user { displayName } workingGroup { memberCount } } } }";
const LEAVE: &str = "mutation($id: ID!) { leaveWorkingGroup(id: $id) { workingGroup { memberCount viewerMembership { status } } } }";
const DECIDE: &str = "mutation($i: DecideMembershipInput!) { decideMembership(input: $i) { membership { id status role joinedAt } } }";
const INVITE: &str = "mutation($i: InviteToWorkingGroupInput!) { inviteToWorkingGroup(input: $i) { membership { id status role } } }";
const SET_ROLE: &str = "mutation($i: SetMemberRoleInput!) { setMemberRole(input: $i) { membership { id status role } } }";
const GROUP: &str = "query($id: ID!) { workingGroup(id: $id) { id name kind description visibility memberCount viewerMembership { id status role } members(first: 50) { totalCount nodes { role status user { displayName } } } } }";

struct Groups {
    app: TestApp,
    /// An ORGANISER account; creates the groups.
    org: Session,
    official: Session,
    ann: Session,
    bob: Session,
}

async fn groups() -> Groups {
    let app = spawn_app().await;
    let org = user_with_role(&app, "org@example.org", "Orla", Role::Organiser).await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let ann = app.verified_user("ann@example.org", "Ann").await;
    let bob = app.verified_user("bob@example.org", "Bob").await;
    Groups {
        app,
        org,
        official,
        ann,
        bob,
    }
}

async fn create(app: &TestApp, who: &Session, input: Value) -> Value {
    app.gql(Some(&who.access), CREATE, json!({ "i": input }))
        .await
}

/// Creates a group and returns its ID.
async fn group(app: &TestApp, who: &Session, slug: &str, visibility: &str, policy: &str) -> String {
    let r = create(
        app,
        who,
        json!({"name": format!("Group {slug}"), "slug": slug, "description": "We *meet*.", "visibility": visibility, "joinPolicy": policy}),
    )
    .await;
    r["data"]["createWorkingGroup"]["workingGroup"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createWorkingGroup failed: {r}"))
        .to_string()
}

async fn join(app: &TestApp, who: &Session, id: &str) -> Value {
    app.gql(Some(&who.access), JOIN, json!({ "id": id })).await
}

async fn leave(app: &TestApp, who: &Session, id: &str) -> Value {
    app.gql(Some(&who.access), LEAVE, json!({ "id": id })).await
}

async fn decide(app: &TestApp, who: &Session, membership: &str, approve: bool) -> Value {
    app.gql(
        Some(&who.access),
        DECIDE,
        json!({"i": {"membershipId": membership, "approve": approve}}),
    )
    .await
}

async fn invite(app: &TestApp, who: &Session, group: &str, user: &str) -> Value {
    app.gql(
        Some(&who.access),
        INVITE,
        json!({"i": {"workingGroupId": group, "userId": user}}),
    )
    .await
}

async fn set_role(app: &TestApp, who: &Session, membership: &str, role: &str) -> Value {
    app.gql(
        Some(&who.access),
        SET_ROLE,
        json!({"i": {"membershipId": membership, "role": role}}),
    )
    .await
}

async fn show(app: &TestApp, who: Option<&Session>, id: &str) -> Value {
    let r = app
        .gql(who.map(|s| s.access.as_str()), GROUP, json!({ "id": id }))
        .await;
    assert!(r["errors"].is_null(), "{r}");
    r["data"]["workingGroup"].clone()
}

fn membership_id(r: &Value, op: &str) -> String {
    r["data"][op]["membership"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{op} failed: {r}"))
        .to_string()
}

async fn outbox_rows(app: &TestApp, template: &str, recipient: &str) -> i64 {
    count(
        &app.db,
        &format!(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'notification' AND template = '{template}' AND recipient = '{recipient}'"
        ),
    )
    .await
}

#[tokio::test]
async fn organisers_officials_and_admins_create_groups_and_become_their_first_organiser() {
    let g = groups().await;
    let app = &g.app;
    let c1 = create_commitment(app, &g.official, "UK0072", "Involving data users").await;
    let c2 = create_commitment(app, &g.official, "UK0071", "Open contracting").await;
    let r = create(
        app,
        &g.org,
        json!({"name": "  Data   Steering Group ", "slug": "Data-Steering-Group", "description": "Steers **data**.<script>alert(1)</script>", "kind": "STEERING_GROUP", "visibility": "PRIVATE", "joinPolicy": "REQUEST", "commitmentIds": [c1, c2, c1]}),
    )
    .await;
    let w = &r["data"]["createWorkingGroup"]["workingGroup"];
    assert_eq!(w["name"], "Data Steering Group", "{r}");
    assert_eq!(w["slug"], "data-steering-group");
    assert_eq!(w["kind"], "STEERING_GROUP");
    assert_eq!(w["visibility"], "PRIVATE");
    assert_eq!(w["joinPolicy"], "REQUEST");
    // A steering group publishes its minutes by default, even when private.
    assert_eq!(w["outcomesPublic"], true);
    assert_eq!(w["memberCount"], 1);
    assert_eq!(w["viewerMembership"]["role"], "ORGANISER");
    assert_eq!(w["viewerMembership"]["status"], "ACTIVE");
    assert!(w["viewerMembership"]["joinedAt"].is_string());
    let html = w["descriptionHtml"].as_str().unwrap();
    assert!(
        html.contains("<strong>data</strong>") && !html.contains("<script"),
        "{html}"
    );
    let refs: Vec<&str> = w["commitments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["UK0071", "UK0072"]);

    // Defaults: a private working group admits on request and keeps its outcomes to itself;
    // public groups publish.
    let r = create(
        app,
        &g.official,
        json!({"name": "Leaders", "slug": "leaders", "visibility": "PRIVATE"}),
    )
    .await;
    let w = &r["data"]["createWorkingGroup"]["workingGroup"];
    assert_eq!(w["kind"], "WORKING_GROUP", "{r}");
    assert_eq!(w["joinPolicy"], "REQUEST");
    assert_eq!(w["outcomesPublic"], false);
    let admin = user_with_role(app, "admin@example.org", "Ada", Role::Admin).await;
    let r = create(
        app,
        &admin,
        json!({"name": "Network", "slug": "network", "kind": "NETWORK"}),
    )
    .await;
    let w = &r["data"]["createWorkingGroup"]["workingGroup"];
    assert_eq!(w["visibility"], "PUBLIC", "{r}");
    assert_eq!(w["outcomesPublic"], true);
    let r = create(
        app,
        &admin,
        json!({"name": "Open", "slug": "open-one", "outcomesPublic": false}),
    )
    .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert_eq!(error_field(&r), "outcomesPublic");

    // Commitment.workingGroups lists the linked groups, private ones included.
    let q = "query($id: ID!) { commitment(id: $id) { workingGroups { slug visibility } } }";
    let r = app.gql(None, q, json!({"id": c1})).await;
    assert_eq!(
        r["data"]["commitment"]["workingGroups"],
        json!([{"slug": "data-steering-group", "visibility": "PRIVATE"}]),
        "{r}"
    );
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM memberships").await, 3);
}

#[tokio::test]
async fn creating_a_group_is_refused_to_members_the_unverified_and_bad_input() {
    let g = groups().await;
    let app = &g.app;
    let ok = json!({"name": "Data users", "slug": "data-users"});
    let r = create(app, &g.ann, ok.clone()).await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    app.unverified_user("una@example.org", "Una").await;
    app.make_role("una@example.org", Role::Organiser).await;
    let una = app.logged_in("una@example.org").await;
    let r = create(app, &una, ok.clone()).await;
    assert_eq!(error_code(&r), "EMAIL_NOT_VERIFIED", "{r}");
    let r = app.gql(None, CREATE, json!({"i": ok})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");

    for (input, field) in [
        (json!({"name": "Da", "slug": "data-users"}), "name"),
        (
            json!({"name": "x".repeat(201), "slug": "data-users"}),
            "name",
        ),
        (json!({"name": "Data users", "slug": "data users"}), "slug"),
        (json!({"name": "Data users", "slug": "dü"}), "slug"),
        (json!({"name": "Data users", "slug": "-data"}), "slug"),
        (
            json!({"name": "Data users", "slug": "a".repeat(81)}),
            "slug",
        ),
        (
            json!({"name": "Data users", "slug": "data-users", "description": "x".repeat(20_001)}),
            "description",
        ),
        (
            json!({"name": "Data users", "slug": "data-users", "commitmentIds": [uuid::Uuid::now_v7().to_string()]}),
            "commitmentIds",
        ),
        (
            json!({"name": "Data users", "slug": "data-users", "commitmentIds": ["nope"]}),
            "commitmentIds",
        ),
    ] {
        let r = create(app, &g.org, input.clone()).await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{input}: {r}");
        assert_eq!(error_field(&r), field, "{input}: {r}");
    }
    group(app, &g.org, "data-users", "PUBLIC", "OPEN").await;
    let r = create(
        app,
        &g.official,
        json!({"name": "Other", "slug": "DATA-USERS"}),
    )
    .await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    assert_eq!(error_field(&r), "slug");
    // Nothing half-written by the refusals.
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM working_groups").await,
        1
    );
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM memberships").await, 1);
}

#[tokio::test]
async fn organisers_and_admins_edit_a_group_and_others_cannot() {
    let g = groups().await;
    let app = &g.app;
    let c1 = create_commitment(app, &g.official, "UK0072", "Involving data users").await;
    let id = group(app, &g.org, "data-users", "PUBLIC", "OPEN").await;
    group(app, &g.org, "taken", "PUBLIC", "OPEN").await;
    join(app, &g.ann, &id).await;
    let r = app
        .gql(
            Some(&g.ann.access),
            UPDATE,
            json!({"i": {"id": id, "name": "Mine now"}}),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = app
        .gql(
            Some(&g.org.access),
            UPDATE,
            json!({"i": {"id": id, "slug": "taken"}}),
        )
        .await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    assert_eq!(error_field(&r), "slug");
    let r = app
        .gql(
            Some(&g.org.access),
            UPDATE,
            json!({"i": {"id": id, "slug": "no way"}}),
        )
        .await;
    assert_eq!(error_field(&r), "slug", "{r}");
    let r = app
        .gql(
            Some(&g.org.access),
            UPDATE,
            json!({"i": {"id": id, "name": "Data users forum", "slug": "data-users", "description": "New _text_", "visibility": "PRIVATE", "joinPolicy": "INVITE", "kind": "NETWORK", "commitmentIds": [c1], "outcomesPublic": false}}),
        )
        .await;
    let w = &r["data"]["updateWorkingGroup"]["workingGroup"];
    assert_eq!(w["name"], "Data users forum", "{r}");
    assert_eq!(w["slug"], "data-users");
    assert_eq!(w["visibility"], "PRIVATE");
    assert_eq!(w["joinPolicy"], "INVITE");
    assert_eq!(w["kind"], "NETWORK");
    assert_eq!(w["outcomesPublic"], false);
    assert_eq!(w["commitments"], json!([{"reference": "UK0072"}]));
    assert!(w["descriptionHtml"]
        .as_str()
        .unwrap()
        .contains("<em>text</em>"));
    // An administrator runs every group; an empty list unlinks the commitments.
    let admin = user_with_role(app, "admin@example.org", "Ada", Role::Admin).await;
    let r = app
        .gql(
            Some(&admin.access),
            UPDATE,
            json!({"i": {"id": id, "visibility": "PUBLIC", "commitmentIds": []}}),
        )
        .await;
    let w = &r["data"]["updateWorkingGroup"]["workingGroup"];
    assert_eq!(w["visibility"], "PUBLIC", "{r}");
    assert_eq!(
        w["outcomesPublic"], true,
        "a public group's outcomes are public"
    );
    assert_eq!(w["commitments"], json!([]));
    // By slug too.
    let r = app
        .gql(
            None,
            "{ workingGroup(slug: \"Data-Users\") { name } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["workingGroup"]["name"], "Data users forum", "{r}");
}

#[tokio::test]
async fn an_open_group_admits_at_once_and_members_leave() {
    let g = groups().await;
    let app = &g.app;
    let id = group(app, &g.org, "open", "PUBLIC", "OPEN").await;
    let r = join(app, &g.ann, &id).await;
    let m = &r["data"]["joinWorkingGroup"]["membership"];
    assert_eq!(m["status"], "ACTIVE", "{r}");
    assert_eq!(m["role"], "MEMBER");
    assert_eq!(m["user"]["displayName"], "Ann");
    assert_eq!(m["workingGroup"]["memberCount"], 2);
    // Joining again changes nothing.
    let again = join(app, &g.ann, &id).await;
    assert_eq!(
        again["data"]["joinWorkingGroup"]["membership"]["id"],
        m["id"]
    );
    assert_eq!(
        again["data"]["joinWorkingGroup"]["membership"]["workingGroup"]["memberCount"],
        2
    );
    let unverified = app.unverified_user("una@example.org", "Una").await;
    let r = join(app, &unverified, &id).await;
    assert_eq!(error_code(&r), "EMAIL_NOT_VERIFIED", "{r}");

    let w = show(app, None, &id).await;
    let names: Vec<&str> = w["members"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["user"]["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Orla", "Ann"]);
    assert_eq!(w["members"]["totalCount"], 2);
    assert!(w["viewerMembership"].is_null());

    let r = leave(app, &g.ann, &id).await;
    let w = &r["data"]["leaveWorkingGroup"]["workingGroup"];
    assert_eq!(w["memberCount"], 1, "{r}");
    assert!(w["viewerMembership"].is_null());
    // Leaving a group one is not in changes nothing.
    let r = leave(app, &g.ann, &id).await;
    assert_eq!(
        r["data"]["leaveWorkingGroup"]["workingGroup"]["memberCount"], 1,
        "{r}"
    );
    // The last organiser stays.
    let r = leave(app, &g.org, &id).await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    assert_eq!(show(app, None, &id).await["memberCount"], 1);
    let r = join(app, &g.ann, "not-an-id").await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    let r = join(app, &g.ann, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
}

#[tokio::test]
async fn a_request_group_admits_after_an_organiser_approves_and_a_rejected_request_may_ask_again() {
    let g = groups().await;
    let app = &g.app;
    let id = group(app, &g.org, "request", "PRIVATE", "REQUEST").await;
    let r = join(app, &g.ann, &id).await;
    assert_eq!(
        r["data"]["joinWorkingGroup"]["membership"]["status"], "PENDING",
        "{r}"
    );
    assert!(r["data"]["joinWorkingGroup"]["membership"]["joinedAt"].is_null());
    let ann_m = membership_id(&r, "joinWorkingGroup");
    // One event for the organisers, whose audience is worked out on delivery.
    assert_eq!(
        outbox_rows(app, "membership_requested", &format!("audience:{id}")).await,
        1
    );
    // Asking twice is one request.
    let r = join(app, &g.ann, &id).await;
    assert_eq!(membership_id(&r, "joinWorkingGroup"), ann_m);
    assert_eq!(
        outbox_rows(app, "membership_requested", &format!("audience:{id}")).await,
        1
    );
    assert_eq!(show(app, Some(&g.org), &id).await["memberCount"], 1);

    // A member who is not an organiser cannot decide.
    let r = join(app, &g.bob, &id).await;
    let bob_m = membership_id(&r, "joinWorkingGroup");
    let r = decide(app, &g.org, &bob_m, true).await;
    assert_eq!(
        r["data"]["decideMembership"]["membership"]["status"], "ACTIVE",
        "{r}"
    );
    let r = decide(app, &g.bob, &ann_m, true).await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");

    let r = decide(app, &g.org, &ann_m, false).await;
    assert_eq!(
        r["data"]["decideMembership"]["membership"]["status"], "REJECTED",
        "{r}"
    );
    assert_eq!(
        outbox_rows(app, "membership_decided", &g.ann.user_id).await,
        1
    );
    // Deciding again is refused: only a PENDING request is decided.
    let r = decide(app, &g.org, &ann_m, true).await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    let ann_sees = show(app, Some(&g.ann), &id).await;
    assert_eq!(ann_sees["viewerMembership"]["status"], "REJECTED");

    // Asking again makes it PENDING again; the organisers heard of Ann's request today
    // already, so they are not told again (a request is heard once per person a day).
    let r = join(app, &g.ann, &id).await;
    assert_eq!(
        r["data"]["joinWorkingGroup"]["membership"]["status"], "PENDING",
        "{r}"
    );
    assert_eq!(membership_id(&r, "joinWorkingGroup"), ann_m);
    assert_eq!(
        outbox_rows(app, "membership_requested", &format!("audience:{id}")).await,
        2
    );
    let r = decide(app, &g.org, &ann_m, true).await;
    let m = &r["data"]["decideMembership"]["membership"];
    assert_eq!(m["status"], "ACTIVE", "{r}");
    assert!(m["joinedAt"].is_string());
    assert_eq!(
        outbox_rows(app, "membership_decided", &g.ann.user_id).await,
        2
    );
    let payload: String = {
        let row = app
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                app.db.get_database_backend(),
                format!("SELECT payload FROM outbox WHERE template = 'membership_decided' AND recipient = '{}' ORDER BY created_at DESC", g.ann.user_id),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index(0).unwrap()
    };
    let payload: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["approved"], true, "{payload}");
    assert_eq!(payload["working_group_id"], id.as_str());
    assert_eq!(show(app, Some(&g.org), &id).await["memberCount"], 3);

    // A pending request is withdrawn by leaving.
    let carl = app.verified_user("carl@example.org", "Carl").await;
    join(app, &carl, &id).await;
    let r = leave(app, &carl, &id).await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(show(app, Some(&carl), &id).await["viewerMembership"].is_null());
    assert_eq!(show(app, Some(&g.org), &id).await["memberCount"], 3);
}

#[tokio::test]
async fn an_invite_group_admits_only_the_invited_who_accept_by_joining() {
    let g = groups().await;
    let app = &g.app;
    let id = group(app, &g.org, "invite", "PUBLIC", "INVITE").await;
    let r = join(app, &g.ann, &id).await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM memberships").await, 1);

    let r = invite(app, &g.org, &id, &g.ann.user_id).await;
    assert_eq!(
        r["data"]["inviteToWorkingGroup"]["membership"]["status"], "INVITED",
        "{r}"
    );
    let ann_m = membership_id(&r, "inviteToWorkingGroup");
    assert_eq!(
        outbox_rows(app, "membership_invited", &g.ann.user_id).await,
        1
    );
    // Inviting twice is one invitation.
    let r = invite(app, &g.org, &id, &g.ann.user_id).await;
    assert_eq!(membership_id(&r, "inviteToWorkingGroup"), ann_m);
    assert_eq!(
        outbox_rows(app, "membership_invited", &g.ann.user_id).await,
        1
    );
    assert_eq!(
        show(app, Some(&g.ann), &id).await["viewerMembership"]["status"],
        "INVITED"
    );

    let r = join(app, &g.ann, &id).await;
    let m = &r["data"]["joinWorkingGroup"]["membership"];
    assert_eq!(m["status"], "ACTIVE", "{r}");
    assert_eq!(m["workingGroup"]["memberCount"], 2);
    // Inviting an ACTIVE member is a conflict; a member who is not an organiser cannot invite.
    let r = invite(app, &g.org, &id, &g.ann.user_id).await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    let r = invite(app, &g.ann, &id, &g.bob.user_id).await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = invite(app, &g.org, &id, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert_eq!(error_field(&r), "userId");

    // Declining an invitation is leaving.
    invite(app, &g.org, &id, &g.bob.user_id).await;
    let r = leave(app, &g.bob, &id).await;
    assert_eq!(
        r["data"]["leaveWorkingGroup"]["workingGroup"]["memberCount"], 2,
        "{r}"
    );
    let r = join(app, &g.bob, &id).await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");

    // A pending request in a REQUEST group turns into an invitation.
    let req = group(app, &g.org, "request", "PUBLIC", "REQUEST").await;
    let r = join(app, &g.bob, &req).await;
    let bob_m = membership_id(&r, "joinWorkingGroup");
    let r = invite(app, &g.org, &req, &g.bob.user_id).await;
    assert_eq!(membership_id(&r, "inviteToWorkingGroup"), bob_m);
    assert_eq!(
        r["data"]["inviteToWorkingGroup"]["membership"]["status"],
        "INVITED"
    );
    let r = join(app, &g.bob, &req).await;
    assert_eq!(
        r["data"]["joinWorkingGroup"]["membership"]["status"], "ACTIVE",
        "{r}"
    );
}

#[tokio::test]
async fn organisers_promote_and_demote_and_the_last_organiser_stays() {
    let g = groups().await;
    let app = &g.app;
    let id = group(app, &g.org, "roles", "PUBLIC", "OPEN").await;
    let ann_m = membership_id(&join(app, &g.ann, &id).await, "joinWorkingGroup");
    let bob_m = membership_id(&join(app, &g.bob, &id).await, "joinWorkingGroup");
    let org_m = show(app, Some(&g.org), &id).await["viewerMembership"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = set_role(app, &g.ann, &bob_m, "ORGANISER").await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = set_role(app, &g.org, &org_m, "MEMBER").await;
    assert_eq!(
        error_code(&r),
        "CONFLICT",
        "the last organiser cannot be demoted: {r}"
    );
    let r = set_role(app, &g.org, &ann_m, "ORGANISER").await;
    assert_eq!(
        r["data"]["setMemberRole"]["membership"]["role"], "ORGANISER",
        "{r}"
    );
    // Organisers come first in the member list, then by join time.
    let w = show(app, None, &id).await;
    let list: Vec<(&str, &str)> = w["members"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["user"]["displayName"].as_str().unwrap(),
                n["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        list,
        [
            ("Orla", "ORGANISER"),
            ("Ann", "ORGANISER"),
            ("Bob", "MEMBER")
        ]
    );
    // Paging on from a cursor keeps that order.
    let q = "query($id: ID!, $a: String) { workingGroup(id: $id) { members(first: 1, after: $a) { pageInfo { hasNextPage endCursor } nodes { user { displayName } } } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let r = app.gql(None, q, json!({"id": id, "a": after})).await;
        let m = &r["data"]["workingGroup"]["members"];
        let nodes = m["nodes"].as_array().unwrap_or_else(|| panic!("{r}"));
        seen.extend(
            nodes
                .iter()
                .map(|n| n["user"]["displayName"].as_str().unwrap().to_string()),
        );
        if m["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = m["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, ["Orla", "Ann", "Bob"]);
    // Now Ann may demote Orla, and then Ann is the last.
    let r = set_role(app, &g.ann, &org_m, "MEMBER").await;
    assert_eq!(
        r["data"]["setMemberRole"]["membership"]["role"], "MEMBER",
        "{r}"
    );
    let r = set_role(app, &g.org, &bob_m, "ORGANISER").await;
    assert_eq!(error_code(&r), "FORBIDDEN", "no longer an organiser: {r}");
    let r = leave(app, &g.ann, &id).await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    let r = set_role(app, &g.ann, &ann_m, "MEMBER").await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
    // A pending membership has no role to set.
    let req = group(app, &g.org, "req", "PUBLIC", "REQUEST").await;
    let pending = membership_id(&join(app, &g.bob, &req).await, "joinWorkingGroup");
    let r = set_role(app, &g.org, &pending, "ORGANISER").await;
    assert_eq!(error_code(&r), "CONFLICT", "{r}");
}

#[tokio::test]
async fn of_two_organisers_leaving_or_stepping_down_at_once_exactly_one_succeeds() {
    let g = groups().await;
    let app = &g.app;
    for round in 0..3 {
        let id = group(app, &g.org, &format!("pair-{round}"), "PUBLIC", "OPEN").await;
        let ann_m = membership_id(&join(app, &g.ann, &id).await, "joinWorkingGroup");
        let r = set_role(app, &g.org, &ann_m, "ORGANISER").await;
        assert!(r["errors"].is_null(), "{r}");
        let org_m = show(app, Some(&g.org), &id).await["viewerMembership"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let results: Vec<Value> = if round == 1 {
            // Both step down at once.
            let (a, b) = tokio::join!(
                set_role(app, &g.org, &org_m, "MEMBER"),
                set_role(app, &g.ann, &ann_m, "MEMBER")
            );
            vec![a, b]
        } else {
            let (a, b) = tokio::join!(leave(app, &g.org, &id), leave(app, &g.ann, &id));
            vec![a, b]
        };
        let ok = results.iter().filter(|r| r["errors"].is_null()).count();
        let conflicts = results
            .iter()
            .filter(|r| error_code(r) == "CONFLICT")
            .count();
        assert_eq!((ok, conflicts), (1, 1), "round {round}: {results:?}");
        let gid = uuid::Uuid::parse_str(&id).unwrap();
        let active = || {
            membership::Entity::find()
                .filter(membership::Column::WorkingGroupId.eq(gid))
                .filter(membership::Column::Status.eq(membership::Status::Active))
        };
        let organisers = active()
            .filter(membership::Column::Role.eq(membership::Role::Organiser))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(organisers, 1, "round {round}");
        let w = show(app, None, &id).await;
        let rows = active().count(&app.db).await.unwrap();
        assert_eq!(
            w["memberCount"], rows,
            "round {round}: the counter equals the rows"
        );
    }
}

#[tokio::test]
async fn a_private_groups_member_list_is_for_its_members_only() {
    let g = groups().await;
    let app = &g.app;
    let id = group(app, &g.org, "private", "PRIVATE", "REQUEST").await;
    // Bob is a member, Ann has only asked.
    let bob_m = membership_id(&join(app, &g.bob, &id).await, "joinWorkingGroup");
    decide(app, &g.org, &bob_m, true).await;
    join(app, &g.ann, &id).await;
    let carl = app.verified_user("carl@example.org", "Carl").await;

    for (who, label) in [
        (None, "anonymous"),
        (Some(&carl), "non-member"),
        (Some(&g.ann), "pending member"),
    ] {
        let w = show(app, who, &id).await;
        // The name, kind and description are public; the member list is not.
        assert_eq!(w["name"], "Group private", "{label}");
        assert_eq!(w["kind"], "WORKING_GROUP", "{label}");
        assert_eq!(w["description"], "We *meet*.", "{label}");
        assert!(w["members"].is_null(), "{label}: {w}");
    }
    for (who, label) in [(&g.bob, "member"), (&g.org, "organiser")] {
        let w = show(app, Some(who), &id).await;
        assert_eq!(w["members"]["totalCount"], 2, "{label}: {w}");
        assert_eq!(
            w["members"]["nodes"].as_array().unwrap().len(),
            2,
            "{label}"
        );
    }
    let admin = user_with_role(app, "admin@example.org", "Ada", Role::Admin).await;
    assert_eq!(
        show(app, Some(&admin), &id).await["members"]["totalCount"],
        2
    );

    // The list's member filter does not reveal the private membership either.
    let q =
        "query($m: ID!) { workingGroups(filter: {memberId: $m}) { totalCount nodes { slug } } }";
    let public = group(app, &g.org, "public", "PUBLIC", "OPEN").await;
    join(app, &g.bob, &public).await;
    let slugs = |r: &Value| -> Vec<String> {
        r["data"]["workingGroups"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|n| n["slug"].as_str().unwrap().to_string())
            .collect()
    };
    for who in [None, Some(&carl), Some(&g.ann)] {
        let r = app
            .gql(
                who.map(|s| s.access.as_str()),
                q,
                json!({"m": g.bob.user_id}),
            )
            .await;
        assert_eq!(slugs(&r), ["public"], "{r}");
        assert_eq!(r["data"]["workingGroups"]["totalCount"], 1);
    }
    for who in [&g.bob, &g.org, &admin] {
        let r = app
            .gql(Some(&who.access), q, json!({"m": g.bob.user_id}))
            .await;
        assert_eq!(slugs(&r), ["private", "public"], "{r}");
    }
}

#[tokio::test]
async fn the_group_list_pages_by_name_and_filters_by_search_commitment_and_member() {
    let g = groups().await;
    let app = &g.app;
    let c1 = create_commitment(app, &g.official, "UK0072", "Involving data users").await;
    for (name, slug, commitments) in [
        ("Delta transport data", "delta", vec![c1.clone()]),
        ("Alpha health", "alpha", vec![]),
        ("Charlie open contracts", "charlie", vec![c1.clone()]),
        ("Bravo 100% data", "bravo", vec![]),
    ] {
        let r = create(
            app,
            &g.org,
            json!({"name": name, "slug": slug, "commitmentIds": commitments}),
        )
        .await;
        assert!(r["errors"].is_null(), "{r}");
    }
    let q = "query($f: WorkingGroupFilter, $n: Int, $a: String) { workingGroups(first: $n, after: $a, filter: $f) { totalCount pageInfo { hasNextPage endCursor } nodes { slug } } }";
    let slugs = |r: &Value| -> Vec<String> {
        r["data"]["workingGroups"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|n| n["slug"].as_str().unwrap().to_string())
            .collect()
    };
    let p1 = app.gql(None, q, json!({"n": 3})).await;
    assert_eq!(slugs(&p1), ["alpha", "bravo", "charlie"], "{p1}");
    assert_eq!(p1["data"]["workingGroups"]["totalCount"], 4);
    assert_eq!(p1["data"]["workingGroups"]["pageInfo"]["hasNextPage"], true);
    let after = p1["data"]["workingGroups"]["pageInfo"]["endCursor"].clone();
    let p2 = app.gql(None, q, json!({"n": 3, "a": after})).await;
    assert_eq!(slugs(&p2), ["delta"], "{p2}");
    assert_eq!(
        p2["data"]["workingGroups"]["pageInfo"]["hasNextPage"],
        false
    );
    let r = app.gql(None, q, json!({"a": "junk"})).await;
    assert_eq!(error_field(&r), "after", "{r}");

    let r = app.gql(None, q, json!({"f": {"search": "DATA"}})).await;
    assert_eq!(slugs(&r), ["bravo", "delta"], "{r}");
    let r = app.gql(None, q, json!({"f": {"search": "100%"}})).await;
    assert_eq!(
        slugs(&r),
        ["bravo"],
        "a % is a character, not a wildcard: {r}"
    );
    let r = app.gql(None, q, json!({"f": {"commitmentId": c1}})).await;
    assert_eq!(slugs(&r), ["charlie", "delta"], "{r}");
    assert_eq!(r["data"]["workingGroups"]["totalCount"], 2);
    let ids = app
        .gql(None, "{ workingGroups { nodes { id slug } } }", json!({}))
        .await;
    let id_of = |slug: &str| {
        ids["data"]["workingGroups"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["slug"] == slug)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    join(app, &g.ann, &id_of("charlie")).await;
    join(app, &g.ann, &id_of("alpha")).await;
    let r = app
        .gql(None, q, json!({"f": {"memberId": g.ann.user_id}}))
        .await;
    assert_eq!(slugs(&r), ["alpha", "charlie"], "{r}");
    let r = app
        .gql(
            None,
            q,
            json!({"f": {"memberId": g.ann.user_id, "commitmentId": c1, "search": "open"}}),
        )
        .await;
    assert_eq!(slugs(&r), ["charlie"], "{r}");
}

#[tokio::test]
async fn a_page_of_groups_costs_the_same_statements_whatever_its_size() {
    let (app, statements) = spawn_app_recording_statements(|s| s.graphql.max_cost = 10_000).await;
    let org = user_with_role(&app, "org@example.org", "Orla", Role::Organiser).await;
    let official = user_with_role(&app, "official@example.org", "Olu", Role::Official).await;
    let viewer = app.verified_user("viewer@example.org", "Viewer").await;
    let c1 = create_commitment(&app, &official, "UK0072", "Involving data users").await;
    let c2 = create_commitment(&app, &official, "UK0071", "Open contracting").await;
    for i in 0..20 {
        let r = create(
            &app,
            &org,
            json!({"name": format!("Group {i:02}"), "slug": format!("group-{i:02}"), "commitmentIds": [c1, c2]}),
        )
        .await;
        let id = r["data"]["createWorkingGroup"]["workingGroup"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        if i % 2 == 0 {
            join(&app, &viewer, &id).await;
        }
    }
    let q = "query($n: Int) { workingGroups(first: $n) { nodes { name memberCount commitments { reference workingGroups { slug } } viewerMembership { status role } members(first: 5) { nodes { role user { displayName } } } } } }";
    let mut costs = Vec::new();
    for n in [2, 20] {
        statements.clear();
        let r = app.gql(Some(&viewer.access), q, json!({"n": n})).await;
        let cost = statements.count();
        let nodes = r["data"]["workingGroups"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"));
        assert_eq!(nodes.len(), n);
        assert!(nodes
            .iter()
            .all(|n| n["commitments"].as_array().unwrap().len() == 2));
        assert_eq!(nodes[0]["viewerMembership"]["status"], "ACTIVE");
        assert!(nodes[1]["viewerMembership"].is_null());
        assert_eq!(
            nodes[0]["members"]["nodes"][1]["user"]["displayName"],
            "Viewer"
        );
        assert_eq!(nodes[1]["members"]["nodes"].as_array().unwrap().len(), 1);
        assert!(nodes
            .iter()
            .all(|n| n["members"]["nodes"][0]["user"]["displayName"] == "Orla"));
        costs.push(cost);
    }
    // One statement per level whatever the page's size (groups, their commitments, the
    // commitments' groups, the viewer's memberships, the members, the people, and the
    // viewer's session): two levels that load the same kind of row share a round when
    // timing lets them, so a page may take fewer, never more.
    for (n, cost) in [2, 20].iter().zip(&costs) {
        assert!(*cost <= 8, "{cost} statements for {n} groups: {costs:?}");
    }
}
