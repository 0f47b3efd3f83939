//! In-app notifications: the worker's fan-out of one outbox event to the people who hear
//! of it, and the reading side (a person's list, the unread count, marking read).
//!
//! A request writes one `notification` outbox row per event, whatever its audience; the
//! outbox worker turns it into notification rows here, in chunks, in one transaction with
//! marking the event delivered. `(event_key, recipient_id)` is unique and every insert is
//! `ON CONFLICT DO NOTHING`, so a fan-out that is interrupted, or run by two workers, ends
//! with each person notified exactly once.

use std::collections::HashSet;

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Actor;
use crate::db::{begin_write, now};
use crate::entities::notification::{self, Kind, SubjectType};
use crate::entities::{
    commitment_follow, membership, outbox, post, rsvp, suggestion_follow, support, thread,
    thread_follow, user, working_group,
};
use crate::error::{AppError, AppResult};
use crate::services::page::{Cursor, Page, PageRequest};
use crate::services::Ctx;

/// Rows per INSERT statement of a fan-out: well under both databases' bound-parameter
/// limits, and large enough that 10,000 recipients take ten statements.
pub const CHUNK: usize = 1_000;

/// `query` over `ids`, `CHUNK` ids per statement: the batched reads of a fan-out and of
/// the digest, which must cost statements by the thousand people, not one per person.
pub async fn in_chunks<C, T, F>(conn: &C, ids: &[Uuid], query: F) -> Result<Vec<T>, sea_orm::DbErr>
where
    C: ConnectionTrait,
    T: sea_orm::TryGetableMany,
    F: Fn(&[Uuid]) -> sea_orm::Selector<sea_orm::SelectGetableTuple<T>>,
{
    let mut out = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        out.extend(query(chunk).all(conn).await?);
    }
    Ok(out)
}

/// Outbox event names (the row's `template`) of the events written here.
pub const EVENT_SUGGESTION_CREATED: &str = "suggestion_created";
pub const EVENT_POST_ADDED: &str = "post_added";
pub const EVENT_RESPONSE_PUBLISHED: &str = "response_published";

/// The longest notification text kept; longer titles are cut.
const TEXT_MAX: usize = 480;

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
    pub text: String,
    pub people: Vec<Uuid>,
}

fn uuid_at(p: &Value, key: &str) -> Option<Uuid> {
    p.get(key)?.as_str()?.parse().ok()
}

fn str_at<'a>(p: &'a Value, key: &str) -> &'a str {
    p.get(key).and_then(Value::as_str).unwrap_or("")
}

fn need(p: &Value, key: &str) -> anyhow::Result<Uuid> {
    uuid_at(p, key).ok_or_else(|| anyhow::anyhow!("notification payload lacks {key}"))
}

fn clip(s: String) -> String {
    if s.chars().count() <= TEXT_MAX {
        s
    } else {
        let mut cut: String = s.chars().take(TEXT_MAX - 1).collect();
        cut.push('…');
        cut
    }
}

async fn users_of<C: ConnectionTrait, E: EntityTrait>(
    conn: &C,
    select: sea_orm::Select<E>,
    col: impl sea_orm::ColumnTrait,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    select
        .select_only()
        .column(col)
        .into_tuple::<Uuid>()
        .all(conn)
        .await
}

/// The people who hear of a suggestion's news: its followers and its supporters (a person
/// in both is listed twice; the fan-out keeps one).
pub async fn suggestion_audience<C: ConnectionTrait>(
    conn: &C,
    suggestion_id: Uuid,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    let mut people = users_of(
        conn,
        suggestion_follow::Entity::find()
            .filter(suggestion_follow::Column::SuggestionId.eq(suggestion_id)),
        suggestion_follow::Column::UserId,
    )
    .await?;
    people.extend(
        users_of(
            conn,
            support::Entity::find().filter(support::Column::SuggestionId.eq(suggestion_id)),
            support::Column::UserId,
        )
        .await?,
    );
    Ok(people)
}

async fn commitment_followers<C: ConnectionTrait>(
    conn: &C,
    commitment_id: Uuid,
) -> anyhow::Result<Vec<Uuid>> {
    users_of(
        conn,
        commitment_follow::Entity::find()
            .filter(commitment_follow::Column::CommitmentId.eq(commitment_id)),
        commitment_follow::Column::UserId,
    )
    .await
    .map_err(Into::into)
}

async fn group_members<C: ConnectionTrait>(
    conn: &C,
    group_id: Uuid,
    organisers_only: bool,
) -> anyhow::Result<Vec<Uuid>> {
    let mut q = membership::Entity::find()
        .filter(membership::Column::WorkingGroupId.eq(group_id))
        .filter(membership::Column::Status.eq(membership::Status::Active));
    if organisers_only {
        q = q.filter(membership::Column::Role.eq(membership::Role::Organiser));
    }
    Ok(users_of(conn, q, membership::Column::UserId).await?)
}

/// Who may read the threads of `t`'s group when that group is private: its active members
/// and the site's administrators. `None` when anyone may read the thread.
async fn private_group_readers<C: ConnectionTrait>(
    conn: &C,
    t: Option<&thread::Model>,
) -> anyhow::Result<Option<HashSet<Uuid>>> {
    let Some(group_id) = t.and_then(|t| t.working_group_id) else {
        return Ok(None);
    };
    let private = working_group::Entity::find_by_id(group_id)
        .one(conn)
        .await?
        .is_some_and(|g| g.visibility != working_group::Visibility::Public);
    if !private {
        return Ok(None);
    }
    let mut readers: HashSet<Uuid> = group_members(conn, group_id, false)
        .await?
        .into_iter()
        .collect();
    readers.extend(
        users_of(
            conn,
            user::Entity::find().filter(user::Column::Role.eq(user::Role::Admin)),
            user::Column::Id,
        )
        .await?,
    );
    Ok(Some(readers))
}

/// Who hears of the outbox event `row`, and what they read. An event addressed to one
/// account (its recipient is an account ID) reaches that account; an `audience:` event
/// reaches the people its rule names at the time of delivery.
pub async fn plan<C: ConnectionTrait>(conn: &C, row: &outbox::Model) -> anyhow::Result<Plan> {
    let p: Value = serde_json::from_str(&row.payload)?;
    let single: Option<Uuid> = row.recipient.parse().ok();
    let one = |kind: Kind, text: String| -> anyhow::Result<Vec<Audience>> {
        let person = single
            .ok_or_else(|| anyhow::anyhow!("{} is addressed to one account", row.template))?;
        Ok(vec![Audience {
            kind,
            text,
            people: vec![person],
        }])
    };
    let plan = match row.template.as_str() {
        EVENT_RESPONSE_PUBLISHED => {
            let id = need(&p, "suggestion_id")?;
            let title = str_at(&p, "suggestion_title");
            let (kind, text) = match p.get("duplicate_of_id").and_then(Value::as_str) {
                Some(_) => (
                    Kind::SuggestionMerged,
                    format!("“{title}” was merged into another suggestion"),
                ),
                None => match p.get("new_status").and_then(Value::as_str) {
                    Some(status) => (
                        Kind::ResponsePublished,
                        format!("Official response to “{title}”: now {status}"),
                    ),
                    None => (
                        Kind::ResponsePublished,
                        format!("Official response to “{title}”"),
                    ),
                },
            };
            // A merge moves the duplicate's followers and supporters to the original in
            // the same write, so its audience was taken before and rides in the event.
            let listed = p.get("audience_ids").and_then(Value::as_array).map(|ids| {
                ids.iter()
                    .filter_map(|v| v.as_str()?.parse().ok())
                    .collect::<Vec<Uuid>>()
            });
            let people = match (single, listed) {
                (Some(person), _) => vec![person],
                (None, Some(listed)) => listed,
                (None, None) => suggestion_audience(conn, id).await?,
            };
            Plan {
                actor_id: uuid_at(&p, "actor_id"),
                subject_type: SubjectType::Suggestion,
                subject_id: id,
                audiences: vec![Audience { kind, text, people }],
            }
        }
        EVENT_SUGGESTION_CREATED => Plan {
            actor_id: uuid_at(&p, "actor_id"),
            subject_type: SubjectType::Suggestion,
            subject_id: need(&p, "suggestion_id")?,
            audiences: vec![Audience {
                kind: Kind::SuggestionCreated,
                text: format!(
                    "New suggestion on {}: “{}”",
                    str_at(&p, "commitment_reference"),
                    str_at(&p, "suggestion_title")
                ),
                people: commitment_followers(conn, need(&p, "commitment_id")?).await?,
            }],
        },
        crate::services::updates::EVENT_PUBLISHED => Plan {
            actor_id: uuid_at(&p, "author_id"),
            subject_type: SubjectType::CommitmentUpdate,
            subject_id: need(&p, "update_id")?,
            audiences: vec![Audience {
                kind: Kind::UpdatePublished,
                text: format!(
                    "Official update on {}: “{}”",
                    str_at(&p, "commitment_reference"),
                    str_at(&p, "update_title")
                ),
                people: commitment_followers(conn, need(&p, "commitment_id")?).await?,
            }],
        },
        EVENT_POST_ADDED => {
            let thread_id = need(&p, "thread_id")?;
            let title = str_at(&p, "thread_title");
            let the_thread = thread::Entity::find_by_id(thread_id).one(conn).await?;
            // Replied to: the parent post's author, or the thread's for a top-level post.
            let mut replied_to: Vec<Uuid> = match uuid_at(&p, "parent_post_id") {
                Some(parent) => post::Entity::find_by_id(parent)
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
                    .filter(post::Column::ThreadId.eq(thread_id))
                    .filter(post::Column::DeletedAt.is_null())
                    .distinct(),
                post::Column::AuthorId,
            )
            .await?;
            posters.extend(
                users_of(
                    conn,
                    thread_follow::Entity::find()
                        .filter(thread_follow::Column::ThreadId.eq(thread_id)),
                    thread_follow::Column::UserId,
                )
                .await?,
            );
            // A private group's thread reaches only those who may still read it.
            if let Some(readers) = private_group_readers(conn, the_thread.as_ref()).await? {
                replied_to.retain(|u| readers.contains(u));
                posters.retain(|u| readers.contains(u));
            }
            Plan {
                actor_id: uuid_at(&p, "actor_id"),
                subject_type: SubjectType::Post,
                subject_id: need(&p, "post_id")?,
                audiences: vec![
                    Audience {
                        kind: Kind::PostReply,
                        text: format!("New reply to you in “{title}”"),
                        people: replied_to,
                    },
                    Audience {
                        kind: Kind::ThreadPost,
                        text: format!("New post in “{title}”"),
                        people: posters,
                    },
                ],
            }
        }
        "meetup_scheduled" => Plan {
            actor_id: uuid_at(&p, "actor_id"),
            subject_type: SubjectType::Meetup,
            subject_id: need(&p, "meetup_id")?,
            audiences: vec![Audience {
                kind: Kind::MeetupScheduled,
                text: format!("Meet-up scheduled: “{}”", str_at(&p, "title")),
                people: group_members(conn, need(&p, "working_group_id")?, false).await?,
            }],
        },
        "meetup_changed" | "meetup_cancelled" => {
            let id = need(&p, "meetup_id")?;
            let (kind, verb) = if row.template == "meetup_changed" {
                (Kind::MeetupChanged, "changed")
            } else {
                (Kind::MeetupCancelled, "cancelled")
            };
            let people = users_of(
                conn,
                rsvp::Entity::find()
                    .filter(rsvp::Column::MeetupId.eq(id))
                    .filter(
                        rsvp::Column::Status.is_in([rsvp::Status::Going, rsvp::Status::Waitlisted]),
                    ),
                rsvp::Column::UserId,
            )
            .await?;
            Plan {
                actor_id: uuid_at(&p, "actor_id"),
                subject_type: SubjectType::Meetup,
                subject_id: id,
                audiences: vec![Audience {
                    kind,
                    text: format!("Meet-up {verb}: “{}”", str_at(&p, "title")),
                    people,
                }],
            }
        }
        "meetup_reminder" => Plan {
            actor_id: None,
            subject_type: SubjectType::Meetup,
            subject_id: need(&p, "meetup_id")?,
            audiences: one(
                Kind::MeetupReminder,
                format!("Starting soon: “{}”", str_at(&p, "title")),
            )?,
        },
        "meetup_promoted" => Plan {
            actor_id: None,
            subject_type: SubjectType::Meetup,
            subject_id: need(&p, "meetup_id")?,
            audiences: one(
                Kind::MeetupPromoted,
                format!(
                    "A seat freed up: you are now going to “{}”",
                    str_at(&p, "title")
                ),
            )?,
        },
        "membership_requested" => {
            let group = need(&p, "working_group_id")?;
            Plan {
                actor_id: uuid_at(&p, "user_id"),
                subject_type: SubjectType::WorkingGroup,
                subject_id: group,
                audiences: vec![Audience {
                    kind: Kind::MembershipRequested,
                    text: format!("New request to join {}", str_at(&p, "working_group_name")),
                    people: group_members(conn, group, true).await?,
                }],
            }
        }
        "membership_decided" => {
            let approved = p.get("approved").and_then(Value::as_bool).unwrap_or(false);
            let name = str_at(&p, "working_group_name");
            Plan {
                actor_id: uuid_at(&p, "decided_by"),
                subject_type: SubjectType::WorkingGroup,
                subject_id: need(&p, "working_group_id")?,
                audiences: one(
                    Kind::MembershipDecided,
                    if approved {
                        format!("Your request to join {name} was approved")
                    } else {
                        format!("Your request to join {name} was declined")
                    },
                )?,
            }
        }
        "membership_invited" => Plan {
            actor_id: uuid_at(&p, "invited_by"),
            subject_type: SubjectType::WorkingGroup,
            subject_id: need(&p, "working_group_id")?,
            audiences: one(
                Kind::MembershipInvited,
                format!(
                    "You are invited to join {}",
                    str_at(&p, "working_group_name")
                ),
            )?,
        },
        crate::services::moderation::EVENT_REPORT_FILED => {
            // The site's administrators, and for content inside a group its organisers.
            let mut people = users_of(
                conn,
                user::Entity::find().filter(user::Column::Role.eq(user::Role::Admin)),
                user::Column::Id,
            )
            .await?;
            if let Some(group) = uuid_at(&p, "working_group_id") {
                people.extend(group_members(conn, group, true).await?);
            }
            Plan {
                actor_id: uuid_at(&p, "actor_id"),
                subject_type: SubjectType::Report,
                subject_id: need(&p, "report_id")?,
                audiences: vec![Audience {
                    kind: Kind::ReportFiled,
                    text: format!(
                        "New report to moderate ({}, {})",
                        str_at(&p, "subject_type").to_lowercase(),
                        str_at(&p, "reason").to_lowercase().replace('_', " ")
                    ),
                    people,
                }],
            }
        }
        "role_changed" => Plan {
            actor_id: uuid_at(&p, "actor_id"),
            subject_type: SubjectType::User,
            subject_id: need(&p, "user_id")?,
            audiences: one(
                Kind::RoleChanged,
                format!(
                    "Your role on Convene is now {}",
                    str_at(&p, "role").to_lowercase()
                ),
            )?,
        },
        "member_role_changed" => Plan {
            actor_id: uuid_at(&p, "actor_id"),
            subject_type: SubjectType::WorkingGroup,
            subject_id: need(&p, "working_group_id")?,
            audiences: one(
                Kind::MemberRoleChanged,
                format!(
                    "You are now {} in {}",
                    match str_at(&p, "role") {
                        "ORGANISER" => "an organiser",
                        _ => "a member",
                    },
                    str_at(&p, "working_group_name")
                ),
            )?,
        },
        other => anyhow::bail!("no notification rule for event {other:?}"),
    };
    Ok(plan)
}

/// One notification about to be written.
pub struct NewRow {
    pub id: Uuid,
    pub recipient_id: Uuid,
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

/// Writes the notifications of `plan` for event `event_key` in chunks of `CHUNK` rows,
/// skipping any (event, recipient) already written; returns the rows that are new.
pub async fn insert_planned<C: ConnectionTrait>(
    conn: &C,
    event_key: &str,
    plan: &Plan,
) -> anyhow::Result<Vec<NewRow>> {
    insert_planned_marking(conn, event_key, plan, &HashSet::new()).await
}

/// As [`insert_planned`], with the notifications of the people in `digest` marked
/// `digest_pending` (their mail waits for the daily digest).
pub async fn insert_planned_marking<C: ConnectionTrait>(
    conn: &C,
    event_key: &str,
    plan: &Plan,
    digest: &HashSet<Uuid>,
) -> anyhow::Result<Vec<NewRow>> {
    let at = now();
    let backend = conn.get_database_backend();
    let mut written = Vec::new();
    for chunk in recipients(plan).chunks(CHUNK) {
        let mut q = Query::insert();
        q.into_table(notification::Entity)
            .columns([
                notification::Column::Id,
                notification::Column::RecipientId,
                notification::Column::EventKey,
                notification::Column::Kind,
                notification::Column::ActorId,
                notification::Column::SubjectType,
                notification::Column::SubjectId,
                notification::Column::Text,
                notification::Column::CreatedAt,
                notification::Column::DigestPending,
            ])
            .on_conflict(
                OnConflict::columns([
                    notification::Column::EventKey,
                    notification::Column::RecipientId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .returning(
                Query::returning()
                    .columns([notification::Column::Id, notification::Column::RecipientId]),
            );
        for &(person, audience) in chunk {
            let a = &plan.audiences[audience];
            let kind: sea_orm::Value = sea_orm::ActiveEnum::to_value(&a.kind).into();
            let subject: sea_orm::Value = sea_orm::ActiveEnum::to_value(&plan.subject_type).into();
            q.values_panic([
                Uuid::now_v7().into(),
                person.into(),
                event_key.into(),
                Expr::val(kind),
                plan.actor_id.into(),
                Expr::val(subject),
                plan.subject_id.into(),
                clip(a.text.clone()).into(),
                at.into(),
                digest.contains(&person).into(),
            ]);
        }
        let rows = conn.query_all_raw(backend.build(&q)).await?;
        for r in rows {
            written.push(NewRow {
                id: r.try_get_by_index(0)?,
                recipient_id: r.try_get_by_index(1)?,
            });
        }
    }
    Ok(written)
}

/// A page of the viewer's notifications, newest first (ids are UUID v7).
pub async fn list(
    ctx: &Ctx,
    actor: &Actor,
    page: &PageRequest,
    unread_only: bool,
) -> AppResult<Page<notification::Model>> {
    let mut q = notification::Entity::find()
        .filter(notification::Column::RecipientId.eq(actor.id))
        .order_by_desc(notification::Column::Id)
        .limit(page.first + 1);
    if unread_only {
        q = q.filter(notification::Column::ReadAt.is_null());
    }
    if let Some(after) = &page.after {
        q = q.filter(notification::Column::Id.lt(after.id));
    }
    let rows = q.all(&ctx.db).await?;
    Ok(Page::from_rows(rows, page.first, |n| Cursor {
        k: None,
        id: n.id,
    }))
}

/// How many notifications the list would hold in all.
pub async fn count(ctx: &Ctx, actor_id: Uuid, unread_only: bool) -> AppResult<u64> {
    let mut q = notification::Entity::find().filter(notification::Column::RecipientId.eq(actor_id));
    if unread_only {
        q = q.filter(notification::Column::ReadAt.is_null());
    }
    Ok(q.count(&ctx.db).await?)
}

/// One of the viewer's own notifications; someone else's is not found.
pub async fn find_own(
    ctx: &Ctx,
    actor_id: Uuid,
    id: Uuid,
) -> AppResult<Option<notification::Model>> {
    Ok(notification::Entity::find_by_id(id)
        .filter(notification::Column::RecipientId.eq(actor_id))
        .one(&ctx.db)
        .await?)
}

/// What to mark read.
pub enum Mark {
    Ids(Vec<Uuid>),
    All,
}

/// Marks the viewer's own notifications read (others' IDs are ignored: they are not the
/// viewer's to mark); ones already read keep their first `read_at`. Returns the unread
/// count after.
pub async fn mark_read(ctx: &Ctx, actor: &Actor, mark: Mark) -> AppResult<u64> {
    let tx = begin_write(&ctx.db).await?;
    let mut q = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(now()))
        .filter(notification::Column::RecipientId.eq(actor.id))
        .filter(notification::Column::ReadAt.is_null());
    if let Mark::Ids(ids) = mark {
        if ids.len() > 100 {
            return Err(AppError::bad_input("ids", "at most 100 IDs at a time"));
        }
        q = q.filter(notification::Column::Id.is_in(ids));
    }
    q.exec(&tx).await?;
    let unread = notification::Entity::find()
        .filter(notification::Column::RecipientId.eq(actor.id))
        .filter(notification::Column::ReadAt.is_null())
        .count(&tx)
        .await?;
    tx.commit().await?;
    Ok(unread)
}
