//! The authorization policy as a table: every mutation and every field that is not public,
//! for every kind of viewer, each cell asserted through HTTP against one fixture world.
//!
//! How to read a row: the document (a mutation is run as `mutation { <doc> { __typename } }`,
//! a field as `query { <doc> }` over HTTP, a subscription as `subscription { <doc> }` over
//! the WebSocket), what each cell acts on, then what each kind of viewer gets.
//! `@name` in a document stands for a fixture (a quoted ID or string, see `World::value`).
//!
//! | cell  | meaning                                                                    |
//! |-------|----------------------------------------------------------------------------|
//! | `YES` | allowed: the mutation answers its payload, the field its value             |
//! | `NUL` | the field answers null (or an empty list): hidden without an error         |
//! | `MSK` | the field answers the moderation marker instead of the text (hidden)       |
//! | `UNA` `ENV` `FBD` `NFD` | the error's `extensions.code`: UNAUTHENTICATED, EMAIL_NOT_VERIFIED, FORBIDDEN, NOT_FOUND |
//!
//! The viewers, in column order: anonymous; a signed-up account whose address is not
//! verified; a verified MEMBER with no tie to the group; PENDING, INVITED and former
//! members of the private group; an ACTIVE member; the group's organiser (a site MEMBER
//! promoted in the group); a site ORGANISER, OFFICIAL and ADMIN with no tie to the group; and
//! the author of the item acted on (an ACTIVE member who wrote the thread, the post and the
//! suggestion).
//!
//! A new mutation cannot ship without its row: `every_mutation_has_a_row` reads the exported
//! `schema.graphql`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use chrono::{Duration, SecondsFormat, Utc};
use convene::entities::meetup;
use convene::entities::user::{self, Role};
use convene::services::moderation::{HIDDEN_BODY, HIDDEN_TITLE};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;
use crate::ws_client::WsClient;

/// One kind of viewer: a column of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Who {
    Anonymous,
    Unverified,
    Member,
    Pending,
    Invited,
    Former,
    Active,
    GroupOrganiser,
    SiteOrganiser,
    Official,
    Admin,
    Author,
}

const VIEWERS: usize = 12;
const COLUMNS: [Who; VIEWERS] = [
    Who::Anonymous,
    Who::Unverified,
    Who::Member,
    Who::Pending,
    Who::Invited,
    Who::Former,
    Who::Active,
    Who::GroupOrganiser,
    Who::SiteOrganiser,
    Who::Official,
    Who::Admin,
    Who::Author,
];

/// What a cell expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    Yes,
    Null,
    Masked,
    Code(&'static str),
}

const YES: Cell = Cell::Yes;
const NUL: Cell = Cell::Null;
const MSK: Cell = Cell::Masked;
const UNA: Cell = Cell::Code("UNAUTHENTICATED");
const ENV: Cell = Cell::Code("EMAIL_NOT_VERIFIED");
const FBD: Cell = Cell::Code("FORBIDDEN");
const NFD: Cell = Cell::Code("NOT_FOUND");

/// What a cell acts on. `World` is shared by the whole run, so its rows change nothing
/// another cell depends on; every other target is made afresh for each cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum On {
    /// The shared fixture world.
    World,
    /// The shared world; the operation ends sessions, so everyone logs in again after
    /// the row.
    EndsSessions,
    /// A new account, signed up but not verified: `@token` is its verification token.
    NewAccount,
    /// A new verified account that is none of the viewers: `@user`.
    Bystander,
    /// A new session of the viewer's own account: `@refresh`.
    OwnSession,
    /// A password-reset token for the viewer's own account: `@token` (everyone logs in
    /// again after the row).
    ResetToken,
    /// A new private group with a member in each state (`@privateGroup`,
    /// `@pendingMembership`, `@activeMembership`).
    Group,
    /// A new post by the author in the private group's thread: `@post`.
    Post,
    /// A new post by the author in a public thread on the commitment: `@post`.
    PublicPost,
    /// `Post`, reported by the active member: `@report`.
    Report,
    /// `Post`, hidden by the group's organiser.
    HiddenByGroup,
    /// `Post`, hidden by an ADMIN: only an ADMIN undoes it.
    HiddenBySite,
    /// A new thread by the author in the private group: `@thread`.
    Thread,
    /// A new thread by the author on the commitment: `@thread`.
    PublicThread,
    /// `Thread`, locked by the group's organiser.
    LockedThread,
    /// A new post by the author in a new thread of the private group, which the group's
    /// organiser then locked: `@post`.
    LockedPost,
    /// A new post by the group's organiser in the private group's thread: `@post`.
    OrganisersPost,
    /// `OrganisersPost`, reported by the active member: `@report`.
    OrganisersReport,
    /// A new post by the ADMIN in a public thread on the commitment: `@post`.
    AdminsPost,
    /// A new suggestion by the author: `@suggestion`.
    Suggestion,
    /// A new upcoming meet-up of the private group: `@meetup`.
    Meetup,
    /// A new meet-up of the private group that has ended: `@meetup`.
    EndedMeetup,
}

struct Row {
    on: On,
    doc: &'static str,
    cells: [Cell; VIEWERS],
}

const fn row(on: On, doc: &'static str, cells: [Cell; VIEWERS]) -> Row {
    Row { on, doc, cells }
}

use On::*;

/// Every mutation. A row's first word is the operation; an operation may have several rows
/// when what it acts on changes the answer.
#[rustfmt::skip]
const MUTATIONS: &[Row] = &[
    //                                                                                           anon unv  mem  pnd  inv  frm  act  gor  sor  off  adm  aut
    // Accounts: signing up, in and out needs no session; the rest is one's own account.
    row(World,       r#"signUp(input: {email: @newEmail, password: @password, displayName: "Newcomer"})"#, [YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(NewAccount,  r#"verifyEmail(token: @token)"#,                                                     [YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"resendVerificationEmail(email: @myEmail)"#,                                        [YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"logIn(input: {email: @myEmail, password: @password})"#,                            [YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(OwnSession,  r#"refreshSession(refreshToken: @refresh)"#,                                          [YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(OwnSession,  r#"logOut(refreshToken: @refresh)"#,                                                  [YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(EndsSessions, r#"logOutEverywhere"#,                                                               [UNA, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"requestPasswordReset(email: @myEmail)"#,                                           [YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(ResetToken,  r#"resetPassword(input: {token: @token, newPassword: @password})"#,                  [YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(EndsSessions, r#"changePassword(input: {currentPassword: @password, newPassword: @password})"#,   [UNA, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"updateProfile(input: {bio: "Reads the register weekly."})"#,                      [UNA, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"setUserRole(input: {userId: @member, role: MEMBER})"#,                            [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, FBD]),
    row(Bystander,   r#"suspendUser(input: {userId: @user, until: "2099-01-01T00:00:00Z", reason: "policy"})"#, [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, FBD]),
    row(World,       r#"unsuspendUser(userId: @member)"#,                                                  [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, FBD]),
    row(Bystander,   r#"endSessionsOf(userId: @user)"#,                                                    [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, FBD]),

    // Commitments: officials and admins keep the plan; anyone verified follows it.
    row(World,       r#"createCommitment(input: {reference: @newReference, title: "A new commitment", description: "Made by a policy cell."})"#,
                                                                                                         [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, YES, FBD]),
    row(World,       r#"updateCommitment(input: {id: @commitment, leadInstitution: "Cabinet Office"})"#,  [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, YES, FBD]),
    row(World,       r#"addMilestone(input: {commitmentId: @commitment, title: "Publish the first register"})"#,
                                                                                                         [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, YES, FBD]),
    row(World,       r#"updateMilestone(input: {id: @milestone, title: "Publish the register"})"#,        [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, YES, FBD]),
    row(World,       r#"followCommitment(id: @commitment)"#,                                               [UNA, ENV, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"unfollowCommitment(id: @commitment)"#,                                             [UNA, ENV, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),

    // Suggestions: verified accounts write; only the author edits or withdraws.
    row(World,       r#"createSuggestion(input: {commitmentId: @commitment, title: "Publish it weekly", body: "Every Monday."})"#,
                                                                                                         [UNA, ENV, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"updateSuggestion(input: {id: @suggestion, body: "Every Monday, before noon."})"#, [UNA, ENV, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES]),
    row(Suggestion,  r#"withdrawSuggestion(id: @suggestion)"#,                                             [UNA, ENV, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES]),
    row(World,       r#"supportSuggestion(id: @suggestion)"#,                                              [UNA, ENV, YES, YES, YES, YES, YES, YES, YES, YES, YES, FBD]),
    row(World,       r#"withdrawSupport(id: @suggestion)"#,                                                [UNA, ENV, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"followSuggestion(id: @suggestion)"#,                                               [UNA, ENV, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"unfollowSuggestion(id: @suggestion)"#,                                             [UNA, ENV, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"publishResponse(input: {suggestionId: @suggestion, body: "We are looking into it."})"#,
                                                                                                         [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, YES, FBD]),
    row(World,       r#"publishCommitmentUpdate(input: {commitmentId: @commitment, title: "Half done", body: "The register is half built."})"#,
                                                                                                         [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, YES, FBD]),

    // Working groups: the private group (REQUEST) unless the row says otherwise.
    row(World,       r#"createWorkingGroup(input: {name: "A new group", slug: @newSlug})"#,               [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, YES, YES, FBD]),
    row(World,       r#"updateWorkingGroup(input: {id: @privateGroup, description: "We meet monthly."})"#, [UNA, ENV, FBD, FBD, FBD, FBD, FBD, YES, FBD, FBD, YES, FBD]),
    row(Group,       r#"joinWorkingGroup(id: @privateGroup)"#,                                             [UNA, ENV, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"joinWorkingGroup(id: @publicGroup)"#,                                              [UNA, ENV, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(Group,       r#"leaveWorkingGroup(id: @privateGroup)"#,                                            [UNA, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(Group,       r#"decideMembership(input: {membershipId: @pendingMembership, approve: true})"#,      [UNA, ENV, FBD, FBD, FBD, FBD, FBD, YES, FBD, FBD, YES, FBD]),
    row(Group,       r#"inviteToWorkingGroup(input: {workingGroupId: @privateGroup, userId: @member})"#,   [UNA, ENV, FBD, FBD, FBD, FBD, FBD, YES, FBD, FBD, YES, FBD]),
    row(Group,       r#"setMemberRole(input: {membershipId: @activeMembership, role: ORGANISER})"#,        [UNA, ENV, FBD, FBD, FBD, FBD, FBD, YES, FBD, FBD, YES, FBD]),
    row(Group,       r#"removeMember(input: {membershipId: @activeMembership, reason: "Policy cell"})"#,   [UNA, ENV, FBD, FBD, FBD, FBD, FBD, YES, FBD, FBD, YES, FBD]),
    row(World,       r#"setGroupChannel(input: {workingGroupId: @privateGroup, webhookUrl: null})"#,      [UNA, ENV, FBD, FBD, FBD, FBD, FBD, YES, FBD, FBD, YES, FBD]),
    row(World,       r#"rotateCalendarUrl(workingGroupId: @privateGroup)"#,                                [UNA, FBD, FBD, FBD, FBD, FBD, YES, YES, FBD, FBD, FBD, YES]),

    // Meet-ups of the private group.
    row(World,       r#"scheduleMeetup(input: {workingGroupId: @privateGroup, title: "Spring forum", startsAt: @nextWeek, endsAt: @nextWeekEnd, timeZone: "Europe/London", venue: "Room 1"})"#,
                                                                                                         [UNA, ENV, FBD, FBD, FBD, FBD, FBD, YES, FBD, FBD, YES, FBD]),
    row(World,       r#"updateMeetup(input: {id: @meetup, agenda: "Minutes first."})"#,                   [UNA, ENV, NFD, NFD, NFD, NFD, FBD, YES, NFD, NFD, YES, FBD]),
    row(Meetup,      r#"cancelMeetup(input: {id: @meetup, reason: "The room flooded."})"#,                [UNA, ENV, NFD, NFD, NFD, NFD, FBD, YES, NFD, NFD, YES, FBD]),
    row(Meetup,      r#"rsvpMeetup(input: {meetupId: @meetup, attending: true})"#,                         [UNA, ENV, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, YES, YES]),
    row(EndedMeetup, r#"publishMeetupOutcomes(input: {meetupId: @meetup, summary: "We met.", decisions: ["Publish weekly"]})"#,
                                                                                                         [UNA, ENV, NFD, NFD, NFD, NFD, FBD, YES, NFD, NFD, YES, FBD]),

    // Discussions: the private group's thread unless the row says otherwise.
    row(World,       r#"startThread(input: {workingGroupId: @privateGroup, title: "Next steps", body: "Shall we?"})"#,
                                                                                                         [UNA, ENV, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, FBD, YES]),
    row(World,       r#"startThread(input: {commitmentId: @commitment, title: "Next steps", body: "Shall we?"})"#,
                                                                                                         [UNA, ENV, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"replyToThread(input: {threadId: @thread, body: "Agreed."})"#,                      [UNA, ENV, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, YES, YES]),
    row(LockedThread, r#"replyToThread(input: {threadId: @thread, body: "Agreed."})"#,                     [UNA, ENV, NFD, NFD, NFD, NFD, FBD, YES, NFD, NFD, YES, FBD]),
    row(World,       r#"editPost(input: {id: @post, body: "Agreed, with changes."})"#,                     [UNA, ENV, NFD, NFD, NFD, NFD, FBD, FBD, NFD, NFD, FBD, YES]),
    row(Post,        r#"deletePost(id: @post)"#,                                                           [UNA, NFD, NFD, NFD, NFD, NFD, FBD, FBD, NFD, NFD, FBD, YES]),
    row(World,       r#"react(input: {postId: @post, reaction: THUMBS_UP, on: true})"#,                    [UNA, ENV, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, YES, FBD]),
    row(PublicThread, r#"replyToThread(input: {threadId: @thread, body: "Agreed."})"#,                     [UNA, ENV, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(PublicPost,  r#"editPost(input: {id: @post, body: "Agreed, with changes."})"#,                     [UNA, ENV, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES]),
    row(PublicPost,  r#"deletePost(id: @post)"#,                                                           [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES]),
    // The author of a post in a locked thread neither edits it nor is stopped from deleting it.
    row(LockedPost,  r#"editPost(input: {id: @post, body: "Agreed, with changes."})"#,                     [UNA, ENV, NFD, NFD, NFD, NFD, FBD, FBD, NFD, NFD, FBD, FBD]),
    row(LockedPost,  r#"deletePost(id: @post)"#,                                                           [UNA, NFD, NFD, NFD, NFD, NFD, FBD, FBD, NFD, NFD, FBD, YES]),
    row(PublicPost,  r#"react(input: {postId: @post, reaction: THUMBS_UP, on: true})"#,                    [UNA, ENV, YES, YES, YES, YES, YES, YES, YES, YES, YES, FBD]),
    row(Thread,      r#"lockThread(id: @thread, reason: "Cooling off")"#,                                 [UNA, ENV, NFD, NFD, NFD, NFD, FBD, YES, NFD, NFD, YES, FBD]),
    row(PublicThread, r#"lockThread(id: @thread, reason: "Cooling off")"#,                                [UNA, ENV, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, YES, FBD]),
    row(LockedThread, r#"unlockThread(id: @thread)"#,                                                      [UNA, ENV, NFD, NFD, NFD, NFD, FBD, YES, NFD, NFD, YES, FBD]),
    row(Thread,      r#"pinThread(id: @thread)"#,                                                          [UNA, ENV, NFD, NFD, NFD, NFD, FBD, YES, NFD, NFD, YES, FBD]),
    row(Thread,      r#"unpinThread(id: @thread)"#,                                                        [UNA, ENV, NFD, NFD, NFD, NFD, FBD, YES, NFD, NFD, YES, FBD]),
    row(World,       r#"followThread(id: @thread)"#,                                                       [UNA, ENV, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, YES, YES]),
    row(World,       r#"unfollowThread(id: @thread)"#,                                                     [UNA, ENV, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, YES, YES]),

    // Moderation: a group's organisers moderate its content, site moderators everything.
    row(Post,        r#"reportContent(input: {postId: @post, reason: SPAM})"#,                             [UNA, ENV, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, YES, FBD]),
    row(PublicPost,  r#"reportContent(input: {postId: @post, reason: SPAM})"#,                             [UNA, ENV, YES, YES, YES, YES, YES, YES, YES, YES, YES, FBD]),
    row(Report,      r#"resolveReport(input: {reportId: @report, action: DISMISS})"#,                      [UNA, FBD, FBD, FBD, FBD, FBD, FBD, YES, FBD, FBD, YES, FBD]),
    row(Post,        r#"hideContent(input: {postId: @post, note: "Off topic"})"#,                          [UNA, FBD, FBD, FBD, FBD, FBD, FBD, YES, FBD, FBD, YES, FBD]),
    row(PublicPost,  r#"hideContent(input: {postId: @post, note: "Off topic"})"#,                          [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, FBD]),
    // Nobody moderates their own content: the group's organiser's own post, an ADMIN's own post.
    row(OrganisersReport, r#"resolveReport(input: {reportId: @report, action: DISMISS})"#,                 [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, FBD]),
    row(OrganisersPost, r#"hideContent(input: {postId: @post, note: "Off topic"})"#,                       [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, FBD]),
    row(AdminsPost,  r#"hideContent(input: {postId: @post, note: "Off topic"})"#,                          [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD]),
    row(HiddenByGroup, r#"unhideContent(input: {postId: @post})"#,                                         [UNA, FBD, FBD, FBD, FBD, FBD, FBD, YES, FBD, FBD, YES, FBD]),
    row(HiddenBySite, r#"unhideContent(input: {postId: @post})"#,                                          [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, FBD]),

    // Notifications: one's own.
    row(World,       r#"markNotificationsRead(input: {all: true})"#,                                       [UNA, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"updateNotificationPreferences(input: {digestHour: 8})"#,                           [UNA, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
];

/// Every subscription that is not public: what each viewer hears, on its own socket.
#[rustfmt::skip]
const SUBSCRIPTIONS: &[Row] = &[
    //                                                                                           anon unv  mem  pnd  inv  frm  act  gor  sor  off  adm  aut
    row(World,       r#"postAdded(threadId: @thread) { id }"#,                                              [NFD, NFD, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, YES, YES]),
    row(World,       r#"suggestionUpdated(id: @hiddenSuggestion) { title }"#,                               [YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"notificationAdded { id }"#,                                                         [UNA, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
];

/// Every field that is not public: what each viewer reads.
#[rustfmt::skip]
const FIELDS: &[Row] = &[
    //                                                                                           anon unv  mem  pnd  inv  frm  act  gor  sor  off  adm  aut
    row(World,       r#"user(id: @author) { email }"#,                                                     [NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, YES, YES]),
    row(World,       r#"user(id: @author) { emailDeliverable }"#,                                          [NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, YES]),
    row(World,       r#"workingGroup(id: @privateGroup) { members(first: 5) { nodes { id } } }"#,          [NUL, NUL, NUL, NUL, NUL, NUL, YES, YES, NUL, NUL, YES, YES]),
    row(World,       r#"workingGroup(id: @privateGroup) { meetups(first: 5) { nodes { id } } }"#,          [NUL, NUL, NUL, NUL, NUL, NUL, YES, YES, NUL, NUL, YES, YES]),
    row(World,       r#"workingGroup(id: @privateGroup) { threads(first: 5) { nodes { id } } }"#,          [NUL, NUL, NUL, NUL, NUL, NUL, YES, YES, NUL, NUL, YES, YES]),
    row(World,       r#"workingGroup(id: @privateGroup) { calendarUrl }"#,                                  [NUL, NUL, NUL, NUL, NUL, NUL, YES, YES, NUL, NUL, NUL, YES]),
    row(World,       r#"workingGroup(id: @privateGroup) { channel { connected } }"#,                        [NUL, NUL, NUL, NUL, NUL, NUL, NUL, YES, NUL, NUL, YES, NUL]),
    row(World,       r#"meetup(id: @meetup) { title }"#,                                                    [NFD, NFD, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, YES, YES]),
    row(World,       r#"meetup(id: @meetup) { onlineUrl }"#,                                                [NFD, NFD, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, YES, NUL]),
    row(World,       r#"meetup(id: @meetup) { calendarUrl }"#,                                              [NFD, NFD, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, NUL, YES]),
    row(World,       r#"meetups(filter: {workingGroupId: @privateGroup}) { nodes { id } }"#,                [NUL, NUL, NUL, NUL, NUL, NUL, YES, YES, NUL, NUL, YES, YES]),
    row(World,       r#"meetups(first: 5) { nodes { id } }"#,                                               [NUL, NUL, NUL, NUL, NUL, NUL, YES, YES, NUL, NUL, YES, YES]),
    row(World,       r#"meetup(id: @heldMeetup) { outcome { summary } }"#,                                  [NFD, NFD, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, YES, YES]),
    row(World,       r#"outcomes(first: 5) { nodes { ... on MeetupOutcome { summary } } }"#,                [NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL, NUL]),
    row(World,       r#"workingGroups(filter: {memberId: @author}) { nodes { id } }"#,                      [NUL, NUL, NUL, NUL, NUL, NUL, YES, YES, NUL, NUL, YES, YES]),
    row(World,       r#"thread(id: @thread) { title }"#,                                                    [NFD, NFD, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, YES, YES]),
    row(World,       r#"threads(filter: {workingGroupId: @privateGroup}) { nodes { id } }"#,                [NFD, NFD, NFD, NFD, NFD, NFD, YES, YES, NFD, NFD, YES, YES]),
    row(World,       r#"suggestion(id: @hiddenSuggestion) { title }"#,                                      [MSK, MSK, MSK, MSK, MSK, MSK, MSK, MSK, MSK, MSK, YES, YES]),
    row(World,       r#"thread(id: @hiddenPostThread) { posts(first: 1) { nodes { body } } }"#,           [NFD, NFD, NFD, NFD, NFD, NFD, MSK, YES, NFD, NFD, YES, YES]),
    row(World,       r#"reports(first: 5) { nodes { id } }"#,                                               [UNA, FBD, FBD, FBD, FBD, FBD, FBD, YES, FBD, FBD, YES, FBD]),
    row(World,       r#"moderationLog(first: 5) { nodes { id } }"#,                                         [UNA, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, FBD, YES, FBD]),
    row(World,       r#"notifications(first: 5) { totalCount }"#,                                           [UNA, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"unreadNotificationCount"#,                                                          [UNA, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
    row(World,       r#"notificationPreferences { digestHour }"#,                                           [UNA, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES, YES]),
];

/// The operation a row is about: its document's first name.
fn operation(doc: &str) -> &str {
    let end = doc
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(doc.len());
    &doc[..end]
}

/// The names of `type Mutation`'s fields in the exported schema.
fn schema_mutations() -> BTreeSet<String> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let sdl = std::fs::read_to_string(path).expect("schema.graphql is readable");
    let doc = async_graphql::parser::parse_schema(&sdl).expect("schema.graphql parses");
    let mut names = BTreeSet::new();
    for def in doc.definitions {
        if let TypeSystemDefinition::Type(t) = def {
            if t.node.name.node.as_str() == "Mutation" {
                if let TypeKind::Object(object) = &t.node.kind {
                    names.extend(object.fields.iter().map(|f| f.node.name.node.to_string()));
                }
            }
        }
    }
    assert!(!names.is_empty(), "schema.graphql has no Mutation type");
    names
}

#[test]
fn every_mutation_has_a_row() {
    let in_schema = schema_mutations();
    let in_table: BTreeSet<String> = MUTATIONS
        .iter()
        .map(|r| operation(r.doc).to_string())
        .collect();
    let missing: Vec<_> = in_schema.difference(&in_table).collect();
    assert!(
        missing.is_empty(),
        "mutations without a row in the authorization table (tests/api/authorization.rs): \
         {missing:?}; write down who may call each, for every kind of viewer"
    );
    let unknown: Vec<_> = in_table.difference(&in_schema).collect();
    assert!(
        unknown.is_empty(),
        "rows for mutations the schema does not have: {unknown:?}"
    );
}

/// What a cell got.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    Yes,
    Null,
    Masked,
    Code(String, String),
}

impl Got {
    fn matches(&self, cell: Cell) -> bool {
        match (self, cell) {
            (Got::Yes, Cell::Yes) | (Got::Null, Cell::Null) | (Got::Masked, Cell::Masked) => true,
            (Got::Code(code, _), Cell::Code(want)) => code == want,
            _ => false,
        }
    }
}

impl fmt::Display for Got {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Got::Yes => write!(f, "allowed"),
            Got::Null => write!(f, "null"),
            Got::Masked => write!(f, "the marker"),
            Got::Code(code, message) => write!(f, "{code} ({message})"),
        }
    }
}

/// The first scalar an answer leads to, following each object's first key and each list's
/// first item: a query row selects one path, so this is the value the row is about.
fn leaf(v: &Value) -> &Value {
    match v {
        Value::Object(m) => m.values().next().map_or(&Value::Null, leaf),
        Value::Array(items) => items.first().map_or(&Value::Null, leaf),
        _ => v,
    }
}

fn outcome(resp: &Value, mutation: bool) -> Got {
    if let Some(e) = resp["errors"].get(0) {
        return Got::Code(
            e["extensions"]["code"]
                .as_str()
                .unwrap_or("<no code>")
                .to_string(),
            e["message"].as_str().unwrap_or_default().to_string(),
        );
    }
    let answer = leaf(&resp["data"]);
    if mutation {
        return if answer.is_null() {
            Got::Null
        } else {
            Got::Yes
        };
    }
    match answer {
        Value::Null => Got::Null,
        Value::String(s) if s == HIDDEN_TITLE || s == HIDDEN_BODY => Got::Masked,
        _ => Got::Yes,
    }
}

/// The fixture world: one account per kind of viewer, a commitment with a milestone and a
/// suggestion, a public OPEN group, a private REQUEST group with a member in each state, its
/// upcoming meet-up (the active and the former member answered GOING), a held meet-up whose
/// outcomes are for members only, its thread with a
/// post, a report on that post, a thread whose opening post is hidden, and a hidden
/// suggestion.
struct World {
    app: TestApp,
    sessions: HashMap<Who, Session>,
    /// The account each viewer acts as when a document names "its own" (anonymous: a
    /// spare account nobody holds a session of).
    emails: HashMap<Who, String>,
    founder: Session,
    ids: HashMap<&'static str, String>,
    serial: u32,
}

fn email_of(who: Who) -> String {
    format!("{who:?}@policy.example.org").to_lowercase()
}

fn data_id(r: &Value, path: &str) -> String {
    r.pointer(&format!("/data/{path}"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {path} in {r}"))
        .to_string()
}

fn in_days(days: i64) -> String {
    (Utc::now() + Duration::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl World {
    async fn build() -> World {
        let app = spawn_app().await;
        let founder = user_with_role(
            &app,
            "founder@policy.example.org",
            "Founder",
            Role::Organiser,
        )
        .await;
        let mut sessions = HashMap::new();
        for who in COLUMNS {
            let email = email_of(who);
            let name = format!("{who:?}");
            let s = match who {
                Who::Anonymous => {
                    // The spare account anonymous cells act on (logIn, password resets).
                    app.verified_user(&email, &name).await;
                    continue;
                }
                Who::Unverified => app.unverified_user(&email, &name).await,
                Who::SiteOrganiser => user_with_role(&app, &email, &name, Role::Organiser).await,
                Who::Official => user_with_role(&app, &email, &name, Role::Official).await,
                Who::Admin => user_with_role(&app, &email, &name, Role::Admin).await,
                _ => app.verified_user(&email, &name).await,
            };
            sessions.insert(who, s);
        }
        let emails = COLUMNS.iter().map(|w| (*w, email_of(*w))).collect();
        let mut world = World {
            app,
            sessions,
            emails,
            founder,
            ids: HashMap::new(),
            serial: 0,
        };
        world.populate().await;
        world
    }

    fn session(&self, who: Who) -> &Session {
        &self.sessions[&who]
    }

    async fn call(&self, who: &Session, doc: &str, vars: Value) -> Value {
        let r = self.app.gql(Some(&who.access), doc, vars).await;
        assert!(r["errors"].is_null(), "fixture step failed: {doc}: {r}");
        r
    }

    /// Runs a fixture step and returns the ID the answer holds at `path`.
    async fn made(&self, who: &Session, doc: &str, vars: Value, path: &str) -> String {
        data_id(&self.call(who, doc, vars).await, path)
    }

    async fn populate(&mut self) {
        let official = self.session(Who::Official).clone();
        let author = self.session(Who::Author).clone();
        let admin = self.session(Who::Admin).clone();
        let commitment = create_commitment(&self.app, &official, "POL-1", "Open registers").await;
        let milestone = self
            .made(
                &official,
                "mutation($i: AddMilestoneInput!) { addMilestone(input: $i) { milestone { id } } }",
                json!({"i": {"commitmentId": commitment, "title": "Publish the first register"}}),
                "addMilestone/milestone/id",
            )
            .await;
        self.ids.insert("milestone", milestone);
        self.ids.insert("commitment", commitment.clone());
        let suggestion =
            create_suggestion(&self.app, &author, &commitment, "Publish it weekly").await;
        self.ids.insert("suggestion", suggestion);
        let hidden = create_suggestion(&self.app, &author, &commitment, "Publish it daily").await;
        self.call(
            &admin,
            "mutation($i: ModerateContentInput!) { hideContent(input: $i) { __typename } }",
            json!({"i": {"suggestionId": hidden, "note": "Off topic"}}),
        )
        .await;
        self.ids.insert("hiddenSuggestion", hidden);
        let public = self.create_group("PUBLIC", "OPEN").await;
        self.ids.insert("publicGroup", public);

        let group = self.private_group().await;
        let meetup = self.meetup(&group["privateGroup"], 7).await;
        for who in [Who::Active, Who::Former] {
            self.call(
                self.session(who),
                "mutation($i: RsvpMeetupInput!) { rsvpMeetup(input: $i) { __typename } }",
                json!({"i": {"meetupId": meetup, "attending": true}}),
            )
            .await;
        }
        self.leave(Who::Former, &group["privateGroup"]).await;
        self.ids.extend(group);
        self.ids.insert("meetup", meetup);
        // A held meet-up whose outcomes the private group keeps to its members.
        let held = self.ended_meetup(&self.ids["privateGroup"]).await;
        self.call(
            &self.founder,
            "mutation($i: PublishMeetupOutcomesInput!) { publishMeetupOutcomes(input: $i) { __typename } }",
            json!({"i": {"meetupId": held, "summary": "We chose CSV.", "decisions": ["CSV first"], "public": false}}),
        )
        .await;
        self.ids.insert("heldMeetup", held);
        let thread = self.thread(false).await;
        self.ids.insert("thread", thread);
        // A thread of the private group whose opening post an ADMIN hid.
        let hidden = self.thread(false).await;
        let r = self
            .call(
                &admin,
                "query($id: ID!) { thread(id: $id) { posts(first: 1) { nodes { id } } } }",
                json!({ "id": hidden }),
            )
            .await;
        self.hide_post(&admin, &data_id(&r, "thread/posts/nodes/0/id"))
            .await;
        self.ids.insert("hiddenPostThread", hidden);
        let post = self.post().await;
        let report = self.report(&post).await;
        self.ids.insert("post", post);
        self.ids.insert("report", report);
        // Every viewer has a notification or two to read and mark.
        self.app.notifications_settled().await;
    }

    async fn create_group(&mut self, visibility: &str, policy: &str) -> String {
        self.serial += 1;
        self.made(
            &self.founder,
            "mutation($i: CreateWorkingGroupInput!) { createWorkingGroup(input: $i) { workingGroup { id } } }",
            json!({"i": {
                    "name": format!("Group {}", self.serial),
                    "slug": format!("policy-group-{}", self.serial),
                    "visibility": visibility,
                    "joinPolicy": policy,
                    "commitmentIds": [self.ids["commitment"]],
                }}),
            "createWorkingGroup/workingGroup/id",
        )
        .await
    }

    async fn join(&self, who: Who, group: &str) -> String {
        self.made(
            self.session(who),
            "mutation($id: ID!) { joinWorkingGroup(id: $id) { membership { id } } }",
            json!({"id": group}),
            "joinWorkingGroup/membership/id",
        )
        .await
    }

    async fn admit(&self, who: Who, group: &str) -> String {
        let membership = self.join(who, group).await;
        self.call(
            &self.founder,
            "mutation($i: DecideMembershipInput!) { decideMembership(input: $i) { __typename } }",
            json!({"i": {"membershipId": membership, "approve": true}}),
        )
        .await;
        membership
    }

    async fn leave(&self, who: Who, group: &str) {
        self.call(
            self.session(who),
            "mutation($id: ID!) { leaveWorkingGroup(id: $id) { __typename } }",
            json!({"id": group}),
        )
        .await;
    }

    /// A private REQUEST group with a member in each state; the former member is still
    /// ACTIVE (the caller makes them leave, once they have answered a meet-up or not).
    async fn private_group(&mut self) -> HashMap<&'static str, String> {
        let group = self.create_group("PRIVATE", "REQUEST").await;
        let pending = self.join(Who::Pending, &group).await;
        let invitee = self.session(Who::Invited).user_id.clone();
        self.call(
            &self.founder,
            "mutation($i: InviteToWorkingGroupInput!) { inviteToWorkingGroup(input: $i) { __typename } }",
            json!({"i": {"workingGroupId": group, "userId": invitee}}),
        )
        .await;
        let active = self.admit(Who::Active, &group).await;
        self.admit(Who::Author, &group).await;
        self.admit(Who::Former, &group).await;
        let organiser = self.admit(Who::GroupOrganiser, &group).await;
        self.call(
            &self.founder,
            "mutation($i: SetMemberRoleInput!) { setMemberRole(input: $i) { __typename } }",
            json!({"i": {"membershipId": organiser, "role": "ORGANISER"}}),
        )
        .await;
        HashMap::from([
            ("privateGroup", group),
            ("pendingMembership", pending),
            ("activeMembership", active),
        ])
    }

    async fn meetup(&self, group: &str, in_days_from_now: i64) -> String {
        self.made(
            &self.founder,
            "mutation($i: ScheduleMeetupInput!) { scheduleMeetup(input: $i) { meetup { id } } }",
            json!({"i": {
                "workingGroupId": group,
                "title": "Register review",
                "startsAt": in_days(in_days_from_now),
                "endsAt": in_days(in_days_from_now + 1),
                "timeZone": "Europe/London",
                "onlineUrl": "https://meet.example.org/register",
            }}),
            "scheduleMeetup/meetup/id",
        )
        .await
    }

    /// A meet-up of `group` that ended yesterday (scheduled, then moved into the past:
    /// scheduling one in the past is refused).
    async fn ended_meetup(&self, group: &str) -> String {
        let m = self.meetup(group, 7).await;
        let id: Uuid = m.parse().expect("a meet-up's ID is a UUID");
        let start = convene::db::now() - Duration::days(2);
        meetup::Entity::update_many()
            .col_expr(meetup::Column::StartsAt, Expr::value(start))
            .col_expr(
                meetup::Column::EndsAt,
                Expr::value(start + Duration::hours(2)),
            )
            .filter(meetup::Column::Id.eq(id))
            .exec(&self.app.db)
            .await
            .expect("move the meet-up into the past");
        m
    }

    /// A thread by the author: in the private group, or on the commitment.
    async fn thread(&self, public: bool) -> String {
        let place = if public {
            json!({"commitmentId": self.ids["commitment"]})
        } else {
            json!({"workingGroupId": self.ids["privateGroup"]})
        };
        let mut input = place;
        input["title"] = json!("Register formats");
        input["body"] = json!("CSV or JSON?");
        self.made(
            self.session(Who::Author),
            "mutation($i: StartThreadInput!) { startThread(input: $i) { thread { id } } }",
            json!({ "i": input }),
            "startThread/thread/id",
        )
        .await
    }

    async fn reply(&self, thread: &str) -> String {
        self.reply_as(Who::Author, thread).await
    }

    async fn reply_as(&self, who: Who, thread: &str) -> String {
        self.made(
            self.session(who),
            "mutation($i: ReplyToThreadInput!) { replyToThread(input: $i) { post { id } } }",
            json!({"i": {"threadId": thread, "body": "Both, please."}}),
            "replyToThread/post/id",
        )
        .await
    }

    /// A post by the author in the private group's thread.
    async fn post(&self) -> String {
        self.reply(&self.ids["thread"]).await
    }

    async fn report(&self, post: &str) -> String {
        self.made(
            self.session(Who::Active),
            "mutation($i: ReportContentInput!) { reportContent(input: $i) { report { id } } }",
            json!({"i": {"postId": post, "reason": "SPAM"}}),
            "reportContent/report/id",
        )
        .await
    }

    async fn moderate(&self, who: &Session, op: &str, field: &str, id: &str) {
        self.call(
            who,
            &format!("mutation($id: ID!) {{ {op}({field}: $id) {{ __typename }} }}"),
            json!({ "id": id }),
        )
        .await;
    }

    async fn hide_post(&self, who: &Session, post: &str) {
        self.call(
            who,
            "mutation($i: ModerateContentInput!) { hideContent(input: $i) { __typename } }",
            json!({"i": {"postId": post}}),
        )
        .await;
    }

    /// The newest token mailed to `email` with `template`, waiting for one newer than the
    /// `before` mails already there.
    async fn mailed_token(&self, email: &str, template: &str, before: usize) -> String {
        for _ in 0..200 {
            let mails: Vec<_> = self
                .app
                .mails_to(email)
                .into_iter()
                .filter(|m| m.template == template)
                .collect();
            if mails.len() > before {
                return token_from_mail(&mails[mails.len() - 1]);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no new {template} mail to {email}");
    }

    fn mails(&self, email: &str, template: &str) -> usize {
        self.app
            .mails_to(email)
            .iter()
            .filter(|m| m.template == template)
            .count()
    }

    /// The fixtures a cell of `on` acts on, made for `who`, over the shared world's.
    async fn fresh(&mut self, on: On, who: Who) -> HashMap<&'static str, String> {
        let mut ids = self.ids.clone();
        let organiser = self.session(Who::GroupOrganiser).clone();
        let admin = self.session(Who::Admin).clone();
        match on {
            On::World | On::EndsSessions => {}
            On::NewAccount => {
                self.serial += 1;
                let email = format!("newcomer{}@policy.example.org", self.serial);
                let r = self.app.sign_up(&email, "Newcomer").await;
                assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");
                ids.insert("token", self.mailed_token(&email, "verify_email", 0).await);
            }
            On::Bystander => {
                self.serial += 1;
                let email = format!("bystander{}@policy.example.org", self.serial);
                let r = self.app.sign_up(&email, "Bystander").await;
                assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");
                let token = self.mailed_token(&email, "verify_email", 0).await;
                self.app.verify_email(&token).await;
                ids.insert("user", self.app.logged_in(&email).await.user_id);
            }
            On::OwnSession => {
                let s = self.app.logged_in(&self.emails[&who]).await;
                ids.insert("refresh", s.refresh);
            }
            On::ResetToken => {
                let email = self.emails[&who].clone();
                let before = self.mails(&email, "password_reset");
                self.serial += 1;
                let r = self
                    .app
                    .gql_from(
                        None,
                        Some(&format!("10.255.{}.1", self.serial % 250)),
                        "mutation($e: String!) { requestPasswordReset(email: $e) { accepted } }",
                        json!({ "e": email }),
                    )
                    .await;
                assert!(r["errors"].is_null(), "{r}");
                ids.insert(
                    "token",
                    self.mailed_token(&email, "password_reset", before).await,
                );
            }
            On::Group => {
                let group = self.private_group().await;
                self.leave(Who::Former, &group["privateGroup"]).await;
                ids.extend(group);
            }
            On::Post | On::Report | On::HiddenByGroup | On::HiddenBySite => {
                let post = self.post().await;
                match on {
                    On::Report => {
                        ids.insert("report", self.report(&post).await);
                    }
                    On::HiddenByGroup => self.hide_post(&organiser, &post).await,
                    On::HiddenBySite => self.hide_post(&admin, &post).await,
                    _ => {}
                }
                ids.insert("post", post);
            }
            On::PublicPost | On::AdminsPost => {
                let thread = self.thread(true).await;
                let writer = if on == On::AdminsPost {
                    Who::Admin
                } else {
                    Who::Author
                };
                ids.insert("post", self.reply_as(writer, &thread).await);
            }
            On::LockedPost => {
                let thread = self.thread(false).await;
                ids.insert("post", self.reply(&thread).await);
                self.moderate(&organiser, "lockThread", "id", &thread).await;
            }
            On::OrganisersPost | On::OrganisersReport => {
                let post = self
                    .reply_as(Who::GroupOrganiser, &self.ids["thread"])
                    .await;
                if on == On::OrganisersReport {
                    ids.insert("report", self.report(&post).await);
                }
                ids.insert("post", post);
            }
            On::Thread | On::LockedThread => {
                let thread = self.thread(false).await;
                if on == On::LockedThread {
                    self.moderate(&organiser, "lockThread", "id", &thread).await;
                }
                ids.insert("thread", thread);
            }
            On::PublicThread => {
                ids.insert("thread", self.thread(true).await);
            }
            On::Suggestion => {
                let s = create_suggestion(
                    &self.app,
                    self.session(Who::Author),
                    &self.ids["commitment"],
                    "Publish it monthly",
                )
                .await;
                ids.insert("suggestion", s);
            }
            On::Meetup => {
                ids.insert("meetup", self.meetup(&self.ids["privateGroup"], 7).await);
            }
            On::EndedMeetup => {
                ids.insert("meetup", self.ended_meetup(&self.ids["privateGroup"]).await);
            }
        }
        ids
    }

    /// What `@name` stands for in a document, as a GraphQL literal.
    fn value(&mut self, name: &str, who: Who, ids: &HashMap<&'static str, String>) -> String {
        let text = match name {
            "password" => PASSWORD.to_string(),
            "myEmail" => self.emails[&who].clone(),
            "member" | "author" => self
                .session(if name == "member" {
                    Who::Member
                } else {
                    Who::Author
                })
                .user_id
                .clone(),
            "newEmail" | "newSlug" | "newReference" => {
                self.serial += 1;
                match name {
                    "newEmail" => format!("signup{}@policy.example.org", self.serial),
                    "newSlug" => format!("new-group-{}", self.serial),
                    _ => format!("NEW-{}", self.serial),
                }
            }
            "nextWeek" => in_days(7),
            "nextWeekEnd" => in_days(8),
            _ => ids
                .get(name)
                .unwrap_or_else(|| panic!("no fixture @{name}"))
                .clone(),
        };
        Value::String(text).to_string()
    }

    /// The document with each `@name` replaced by its value.
    fn expand(&mut self, doc: &str, who: Who, ids: &HashMap<&'static str, String>) -> String {
        let mut out = String::with_capacity(doc.len() + 64);
        let mut rest = doc;
        while let Some(at) = rest.find('@') {
            out.push_str(&rest[..at]);
            let name_len = rest[at + 1..]
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len() - at - 1);
            let name = &rest[at + 1..at + 1 + name_len];
            out.push_str(&self.value(name, who, ids));
            rest = &rest[at + 1 + name_len..];
        }
        out.push_str(rest);
        out
    }

    /// Puts the accounts back as the world had them after a row that ended their
    /// sessions or reset their passwords (which also verifies an address: the mailed link
    /// proved it): the unverified account is unverified again, and everyone logs in again.
    async fn restore_accounts(&mut self) {
        let unverified: Uuid = self
            .session(Who::Unverified)
            .user_id
            .parse()
            .expect("an account's ID is a UUID");
        user::Entity::update_many()
            .col_expr(
                user::Column::EmailVerifiedAt,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            )
            .filter(user::Column::Id.eq(unverified))
            .exec(&self.app.db)
            .await
            .expect("unverify the unverified account");
        for who in COLUMNS {
            if let Some(s) = self.sessions.get(&who) {
                let fresh = self.app.logged_in(&email_of(who)).await;
                assert_eq!(fresh.user_id, s.user_id);
                self.sessions.insert(who, fresh);
            }
        }
    }

    /// Runs every subscription cell: each viewer subscribes on its own socket, all of a
    /// row's at once; one line per cell that did not hold.
    async fn run_subscriptions(&mut self, rows: &[Row]) -> Vec<String> {
        let mut failures = Vec::new();
        for row in rows {
            assert_eq!(row.on, On::World, "subscription rows read the shared world");
            let mut cells = Vec::new();
            for who in COLUMNS {
                let ids = self.ids.clone();
                let doc = format!("subscription {{ {} }}", self.expand(row.doc, who, &ids));
                let token = self.sessions.get(&who).map(|s| s.access.clone());
                cells.push((token, doc));
            }
            let app = &self.app;
            let got = futures::future::join_all(
                cells
                    .into_iter()
                    .map(|(token, doc)| subscribed(app, token, doc)),
            )
            .await;
            for ((column, who), got) in COLUMNS.iter().enumerate().zip(got) {
                if !got.matches(row.cells[column]) {
                    failures.push(mismatch(row, *who, column, &got));
                }
            }
        }
        failures
    }

    /// Runs every cell of `rows`; returns one line per cell that did not hold.
    async fn run(&mut self, rows: &[Row], mutation: bool, serial: &mut u32) -> Vec<String> {
        let mut failures = Vec::new();
        for row in rows {
            for (column, who) in COLUMNS.iter().enumerate() {
                let ids = self.fresh(row.on, *who).await;
                let body = self.expand(row.doc, *who, &ids);
                let doc = if mutation {
                    format!("mutation {{ {body} {{ __typename }} }}")
                } else {
                    format!("query {{ {body} }}")
                };
                *serial += 1;
                // Each cell asks from its own address, so that per-address limits never
                // answer for the policy.
                let ip = format!(
                    "10.{}.{}.{}",
                    *serial / 65536,
                    (*serial / 256) % 256,
                    *serial % 256
                );
                let token = self.sessions.get(who).map(|s| s.access.clone());
                let resp = self
                    .app
                    .gql_from(token.as_deref(), Some(&ip), &doc, json!({}))
                    .await;
                let got = outcome(&resp, mutation);
                if !got.matches(row.cells[column]) {
                    failures.push(mismatch(row, *who, column, &got));
                }
            }
            if matches!(row.on, On::EndsSessions | On::ResetToken) {
                self.restore_accounts().await;
            }
        }
        failures
    }
}

fn mismatch(row: &Row, who: Who, column: usize, got: &Got) -> String {
    format!(
        "{:<60} {:<15} expected {:?}, got {got}",
        row.doc.chars().take(60).collect::<String>(),
        format!("{who:?}"),
        row.cells[column],
    )
}

/// The codes a refused socket names in its close reason.
const CODES: [&str; 4] = [
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "EMAIL_NOT_VERIFIED",
];

/// What a subscription cell got: the socket refused at `connection_init`, the subscription
/// answered an error, or it is still listening a second after it was started (a refusal
/// comes from the check the subscription runs before listening, well within that).
async fn subscribed(app: &TestApp, token: Option<String>, doc: String) -> Got {
    let mut ws = match WsClient::try_connect(app, token.as_deref()).await {
        Ok(ws) => ws,
        Err(closed) => {
            let code = CODES
                .into_iter()
                .find(|c| closed.reason.contains(c))
                .unwrap_or("<no code>");
            return Got::Code(code.to_string(), closed.reason);
        }
    };
    let id = ws.subscribe(&doc, json!({})).await;
    let answer = ws
        .try_next_for(&id, std::time::Duration::from_secs(1))
        .await;
    ws.close().await;
    let Some(m) = answer else {
        return Got::Yes;
    };
    let error = if m["type"] == "error" {
        &m["payload"][0]
    } else {
        &m["payload"]["errors"][0]
    };
    match error["extensions"]["code"].as_str() {
        Some(code) => Got::Code(
            code.to_string(),
            error["message"].as_str().unwrap_or_default().to_string(),
        ),
        None => Got::Yes,
    }
}

#[tokio::test]
async fn every_cell_of_the_policy_holds() {
    let mut world = World::build().await;
    let mut serial = 0;
    // Fields first: the mutations' rows add to the world (threads, members of the public
    // group), and the fields are read as the fixture left them.
    let mut failures = world.run(FIELDS, false, &mut serial).await;
    failures.extend(world.run_subscriptions(SUBSCRIPTIONS).await);
    failures.extend(world.run(MUTATIONS, true, &mut serial).await);
    assert!(
        failures.is_empty(),
        "{} cells of the authorization table do not hold:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
