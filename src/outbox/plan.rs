//! Who hears of each event, with which mail template and what text: one exhaustive match
//! over `OutboxEvent`, so an event cannot exist without its plan. Audiences are worked out
//! when the event is delivered; texts name their subject by the `render::TITLE` slot, which
//! is filled with the subject's title (or the hidden marker) whenever the text is shown.

use std::collections::HashSet;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::event::{ChannelMessage, OutboxEvent};
use super::mail::TEMPLATE as NOTIFICATION_MAIL;
use super::render::TITLE;
use crate::entities::notification::{Kind, SubjectType};
use crate::entities::{
    commitment, commitment_follow, membership, post, report, rsvp, thread, thread_follow, user,
};
use crate::services::access::{self, Subject};
use crate::services::moderation;
use crate::services::notifications::{suggestion_audience, users_of};

/// What the worker does with an event: notify people (and mail them as they prefer), or
/// post to a group's channel.
pub enum Delivery {
    Notify(Plan),
    Post {
        working_group_id: Uuid,
        message: ChannelMessage,
    },
}

/// Who hears of one event and what they read. Audiences are listed in order of
/// precedence: a person in several hears once, as the first one that names them says.
pub struct Plan {
    pub actor_id: Option<Uuid>,
    pub subject_type: SubjectType,
    pub subject_id: Uuid,
    pub audiences: Vec<Audience>,
}

pub struct Audience {
    pub kind: Kind,
    /// The mail template of its immediate mail.
    pub template: &'static str,
    /// What they read, with `outbox::render::TITLE` where the subject's title goes.
    pub text: String,
    pub people: Vec<Uuid>,
}

impl Audience {
    /// An audience mailed with its kind's template.
    pub fn new(kind: Kind, text: String, people: Vec<Uuid>) -> Self {
        Audience {
            kind,
            template: template_for(kind),
            text,
            people,
        }
    }
}

/// The rows `plan` asks for: each person once (first audience wins), never the actor.
pub fn recipients(plan: &Plan) -> Vec<(Uuid, usize)> {
    let mut seen = HashSet::new();
    if let Some(actor) = plan.actor_id {
        seen.insert(actor);
    }
    let mut out = Vec::new();
    for (i, a) in plan.audiences.iter().enumerate() {
        for &person in &a.people {
            if seen.insert(person) {
                out.push((person, i));
            }
        }
    }
    out
}

async fn commitment_followers<C: ConnectionTrait>(
    conn: &C,
    commitment_id: Uuid,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    users_of(
        conn,
        commitment_follow::Entity::find()
            .filter(commitment_follow::Column::CommitmentId.eq(commitment_id)),
        commitment_follow::Column::UserId,
    )
    .await
}

async fn commitment_reference<C: ConnectionTrait>(
    conn: &C,
    commitment_id: Uuid,
) -> Result<String, sea_orm::DbErr> {
    Ok(commitment::Entity::find_by_id(commitment_id)
        .select_only()
        .column(commitment::Column::Reference)
        .into_tuple::<String>()
        .one(conn)
        .await?
        .unwrap_or_default())
}

async fn group_members<C: ConnectionTrait>(
    conn: &C,
    group_id: Uuid,
    organisers_only: bool,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    let mut q = membership::Entity::find()
        .filter(membership::Column::WorkingGroupId.eq(group_id))
        .filter(membership::Column::Status.eq(membership::Status::Active));
    if organisers_only {
        q = q.filter(membership::Column::Role.eq(membership::Role::Organiser));
    }
    users_of(conn, q, membership::Column::UserId).await
}

async fn admins<C: ConnectionTrait>(conn: &C) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    users_of(
        conn,
        user::Entity::find().filter(user::Column::Role.eq(user::Role::Admin)),
        user::Column::Id,
    )
    .await
}

fn one(kind: Kind, text: String, person: Uuid) -> Vec<Audience> {
    vec![Audience::new(kind, text, vec![person])]
}

/// Who hears of `event` and what they read, as the database stands now.
pub async fn plan<C: ConnectionTrait>(conn: &C, event: &OutboxEvent) -> anyhow::Result<Delivery> {
    let plan = match event {
        OutboxEvent::ResponsePublished {
            suggestion_id,
            actor_id,
            new_status,
            duplicate_of_id,
            audience_ids,
            ..
        } => {
            let (kind, text) = match (duplicate_of_id, new_status) {
                (Some(_), _) => (
                    Kind::SuggestionMerged,
                    format!("“{TITLE}” was merged into another suggestion"),
                ),
                (None, Some(status)) => (
                    Kind::ResponsePublished,
                    format!("Official response to “{TITLE}”: now {status}"),
                ),
                (None, None) => (
                    Kind::ResponsePublished,
                    format!("Official response to “{TITLE}”"),
                ),
            };
            let people = match audience_ids {
                Some(listed) => listed.clone(),
                None => suggestion_audience(conn, *suggestion_id).await?,
            };
            Plan {
                actor_id: *actor_id,
                subject_type: SubjectType::Suggestion,
                subject_id: *suggestion_id,
                audiences: vec![Audience::new(kind, text, people)],
            }
        }
        OutboxEvent::SuggestionCreated {
            suggestion_id,
            commitment_id,
            actor_id,
        } => Plan {
            actor_id: *actor_id,
            subject_type: SubjectType::Suggestion,
            subject_id: *suggestion_id,
            audiences: vec![Audience::new(
                Kind::SuggestionCreated,
                format!(
                    "New suggestion on {}: “{TITLE}”",
                    commitment_reference(conn, *commitment_id).await?
                ),
                commitment_followers(conn, *commitment_id).await?,
            )],
        },
        OutboxEvent::UpdatePublished {
            update_id,
            commitment_id,
            author_id,
        } => Plan {
            actor_id: *author_id,
            subject_type: SubjectType::CommitmentUpdate,
            subject_id: *update_id,
            audiences: vec![Audience::new(
                Kind::UpdatePublished,
                format!(
                    "Official update on {}: “{TITLE}”",
                    commitment_reference(conn, *commitment_id).await?
                ),
                commitment_followers(conn, *commitment_id).await?,
            )],
        },
        OutboxEvent::PostAdded {
            thread_id,
            post_id,
            parent_post_id,
            actor_id,
        } => {
            let the_thread = thread::Entity::find_by_id(*thread_id).one(conn).await?;
            // Replied to: the parent post's author, or the thread's for a top-level post.
            let replied_to: Vec<Uuid> = match parent_post_id {
                Some(parent) => post::Entity::find_by_id(*parent)
                    .one(conn)
                    .await?
                    .map(|p| p.author_id),
                None => the_thread.as_ref().map(|t| t.author_id),
            }
            .into_iter()
            .collect();
            // Everyone who posted in the thread, and everyone who follows it.
            let mut posters: Vec<Uuid> = users_of(
                conn,
                post::Entity::find()
                    .filter(post::Column::ThreadId.eq(*thread_id))
                    .filter(post::Column::DeletedAt.is_null())
                    .distinct(),
                post::Column::AuthorId,
            )
            .await?;
            posters.extend(
                users_of(
                    conn,
                    thread_follow::Entity::find()
                        .filter(thread_follow::Column::ThreadId.eq(*thread_id)),
                    thread_follow::Column::UserId,
                )
                .await?,
            );
            // A private group's thread reaches only those who may still read it.
            let subject = Subject::Thread(*thread_id);
            let replied_to = access::who_may_see(conn, subject, replied_to).await?;
            let posters = access::who_may_see(conn, subject, posters).await?;
            Plan {
                actor_id: *actor_id,
                subject_type: SubjectType::Post,
                subject_id: *post_id,
                audiences: vec![
                    Audience::new(
                        Kind::PostReply,
                        format!("New reply to you in “{TITLE}”"),
                        replied_to,
                    ),
                    Audience::new(Kind::ThreadPost, format!("New post in “{TITLE}”"), posters),
                ],
            }
        }
        OutboxEvent::MeetupScheduled {
            meetup_id,
            working_group_id,
            actor_id,
        } => Plan {
            actor_id: *actor_id,
            subject_type: SubjectType::Meetup,
            subject_id: *meetup_id,
            audiences: vec![Audience::new(
                Kind::MeetupScheduled,
                format!("Meet-up scheduled: “{TITLE}”"),
                access::who_may_see(
                    conn,
                    Subject::Meetup(*meetup_id),
                    group_members(conn, *working_group_id, false).await?,
                )
                .await?,
            )],
        },
        OutboxEvent::MeetupChanged {
            meetup_id,
            actor_id,
            ..
        }
        | OutboxEvent::MeetupCancelled {
            meetup_id,
            actor_id,
            ..
        } => {
            let (kind, verb) = match event {
                OutboxEvent::MeetupChanged { .. } => (Kind::MeetupChanged, "changed"),
                _ => (Kind::MeetupCancelled, "cancelled"),
            };
            let people = users_of(
                conn,
                rsvp::Entity::find()
                    .filter(rsvp::Column::MeetupId.eq(*meetup_id))
                    .filter(
                        rsvp::Column::Status.is_in([rsvp::Status::Going, rsvp::Status::Waitlisted]),
                    ),
                rsvp::Column::UserId,
            )
            .await?;
            // Mail and calendar updates (with the online link) only for those who may still
            // see the meet-up.
            let people = access::who_may_see(conn, Subject::Meetup(*meetup_id), people).await?;
            Plan {
                actor_id: *actor_id,
                subject_type: SubjectType::Meetup,
                subject_id: *meetup_id,
                audiences: vec![Audience::new(
                    kind,
                    format!("Meet-up {verb}: “{TITLE}”"),
                    people,
                )],
            }
        }
        OutboxEvent::MeetupReminder {
            meetup_id, user_id, ..
        } => Plan {
            actor_id: None,
            subject_type: SubjectType::Meetup,
            subject_id: *meetup_id,
            // Queued before the person left, delivered after: it goes nowhere.
            audiences: vec![Audience::new(
                Kind::MeetupReminder,
                format!("Starting soon: “{TITLE}”"),
                access::who_may_see(conn, Subject::Meetup(*meetup_id), vec![*user_id]).await?,
            )],
        },
        OutboxEvent::MeetupPromoted {
            meetup_id, user_id, ..
        } => Plan {
            actor_id: None,
            subject_type: SubjectType::Meetup,
            subject_id: *meetup_id,
            // Queued before the person left, delivered after: it goes nowhere.
            audiences: vec![Audience::new(
                Kind::MeetupPromoted,
                format!("A seat freed up: you are now going to “{TITLE}”"),
                access::who_may_see(conn, Subject::Meetup(*meetup_id), vec![*user_id]).await?,
            )],
        },
        OutboxEvent::MembershipRequested {
            working_group_id,
            user_id,
            ..
        } => Plan {
            actor_id: Some(*user_id),
            subject_type: SubjectType::WorkingGroup,
            subject_id: *working_group_id,
            audiences: vec![Audience::new(
                Kind::MembershipRequested,
                format!("New request to join {TITLE}"),
                group_members(conn, *working_group_id, true).await?,
            )],
        },
        OutboxEvent::MembershipDecided {
            working_group_id,
            user_id,
            approved,
            decided_by,
            ..
        } => Plan {
            actor_id: *decided_by,
            subject_type: SubjectType::WorkingGroup,
            subject_id: *working_group_id,
            audiences: one(
                Kind::MembershipDecided,
                if *approved {
                    format!("Your request to join {TITLE} was approved")
                } else {
                    format!("Your request to join {TITLE} was declined")
                },
                *user_id,
            ),
        },
        OutboxEvent::MembershipInvited {
            working_group_id,
            user_id,
            invited_by,
            ..
        } => Plan {
            actor_id: *invited_by,
            subject_type: SubjectType::WorkingGroup,
            subject_id: *working_group_id,
            audiences: one(
                Kind::MembershipInvited,
                format!("You are invited to join {TITLE}"),
                *user_id,
            ),
        },
        OutboxEvent::ReportFiled {
            report_id,
            actor_id,
            working_group_id,
        } => {
            // The site's administrators, and for content inside a group its organisers.
            let mut people = admins(conn).await?;
            if let Some(group) = working_group_id {
                people.extend(group_members(conn, *group, true).await?);
            }
            let what = report::Entity::find_by_id(*report_id).one(conn).await?;
            let text = match what {
                Some(r) => format!(
                    "New report to moderate ({}, {})",
                    moderation::subject_type_str(r.subject_type).to_lowercase(),
                    moderation::reason_str(r.reason)
                        .to_lowercase()
                        .replace('_', " ")
                ),
                None => "New report to moderate".to_string(),
            };
            Plan {
                actor_id: *actor_id,
                subject_type: SubjectType::Report,
                subject_id: *report_id,
                audiences: vec![Audience::new(Kind::ReportFiled, text, people)],
            }
        }
        OutboxEvent::RoleChanged {
            user_id,
            role,
            actor_id,
            ..
        } => Plan {
            actor_id: *actor_id,
            subject_type: SubjectType::User,
            subject_id: *user_id,
            audiences: one(
                Kind::RoleChanged,
                format!("Your role on Convene is now {}", role.to_lowercase()),
                *user_id,
            ),
        },
        OutboxEvent::MemberRoleChanged {
            working_group_id,
            user_id,
            role,
            actor_id,
            ..
        } => Plan {
            actor_id: *actor_id,
            subject_type: SubjectType::WorkingGroup,
            subject_id: *working_group_id,
            audiences: one(
                Kind::MemberRoleChanged,
                format!(
                    "You are now {} in {TITLE}",
                    match role.as_str() {
                        "ORGANISER" => "an organiser",
                        _ => "a member",
                    }
                ),
                *user_id,
            ),
        },
        OutboxEvent::ChannelPost {
            working_group_id,
            message,
        } => {
            return Ok(Delivery::Post {
                working_group_id: *working_group_id,
                message: message.clone(),
            })
        }
    };
    Ok(Delivery::Notify(plan))
}

/// The mail template of a notification kind: a meet-up's own (with its invitation), or
/// the generic notification mail.
pub fn template_for(kind: Kind) -> &'static str {
    match kind {
        Kind::MeetupChanged => "meetup_changed",
        Kind::MeetupCancelled => "meetup_cancelled",
        Kind::MeetupPromoted => "meetup_promoted",
        Kind::MeetupReminder => "meetup_reminder",
        Kind::ResponsePublished
        | Kind::SuggestionMerged
        | Kind::SuggestionCreated
        | Kind::UpdatePublished
        | Kind::PostReply
        | Kind::ThreadPost
        | Kind::MeetupScheduled
        | Kind::MembershipRequested
        | Kind::MembershipDecided
        | Kind::MembershipInvited
        | Kind::ReportFiled
        | Kind::RoleChanged
        | Kind::MemberRoleChanged => NOTIFICATION_MAIL,
    }
}
