//! Texts rendered late: a notification's text when it is read, its mail when it is sent,
//! digest items when the digest is written and channel posts when they are posted, each
//! from the database as it is then. A notification stores its sentence with a `TITLE`
//! slot; the slot is filled with the subject's title, or with the hidden marker when the
//! subject is hidden or the person it is for may no longer see it (a private group they
//! left). Every read here is batched: a page of notifications costs the same statements
//! whatever its size.

use std::collections::{HashMap, HashSet};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::Value;
use uuid::Uuid;

use super::event::ChannelMessage;
use crate::entities::notification::{self, SubjectType};
use crate::entities::{
    commitment_update, meetup, membership, post, suggestion, thread, user, working_group,
};
use crate::services::access;
use crate::services::channels;
use crate::services::moderation::HIDDEN_TITLE;
use crate::services::notifications::in_chunks;

/// Where a notification's sentence names its subject.
pub const TITLE: &str = "{title}";

/// The longest notification text shown; longer titles are cut.
const TEXT_MAX: usize = 480;

/// `s`, cut to `TEXT_MAX` characters.
pub fn clip(s: String) -> String {
    if s.chars().count() <= TEXT_MAX {
        s
    } else {
        let mut cut: String = s.chars().take(TEXT_MAX - 1).collect();
        cut.push('…');
        cut
    }
}

/// Whether `person` may see inside `group` (its meet-ups and threads). The one place the
/// rendering asks the access rules.
fn sees_inside(
    group: &working_group::Model,
    membership: Option<&membership::Model>,
    admin: bool,
) -> bool {
    access::Access {
        group: group.clone(),
        membership: membership.cloned(),
        admin,
    }
    .can_see_inside()
}

/// A notification as its recipient sees it now.
pub struct Rendered {
    /// The sentence.
    pub text: String,
    /// What it is about, as the recipient may see it (`None`: it has no title, as a report
    /// or an account).
    pub title: Option<String>,
}

/// What a subject is called, and in which group it lives (whose insides one must see).
struct Subject {
    title: String,
    hidden: bool,
    group: Option<Uuid>,
}

/// Renders `rows` (notifications of any recipients) as each recipient sees them now.
pub async fn notifications<C: ConnectionTrait>(
    conn: &C,
    rows: &[notification::Model],
) -> Result<HashMap<Uuid, Rendered>, sea_orm::DbErr> {
    let ids = |t: SubjectType| -> Vec<Uuid> {
        let set: HashSet<Uuid> = rows
            .iter()
            .filter(|r| r.subject_type == t)
            .map(|r| r.subject_id)
            .collect();
        set.into_iter().collect()
    };
    let mut subjects: HashMap<Uuid, Subject> = HashMap::new();
    let mut group_ids: HashSet<Uuid> = ids(SubjectType::WorkingGroup).into_iter().collect();
    let of = |title: String, hidden: bool, group: Option<Uuid>| Subject {
        title,
        hidden,
        group,
    };

    let wanted = ids(SubjectType::Suggestion);
    if !wanted.is_empty() {
        let found: Vec<(Uuid, String, bool)> = in_chunks(conn, &wanted, |c| {
            suggestion::Entity::find()
                .select_only()
                .columns([
                    suggestion::Column::Id,
                    suggestion::Column::Title,
                    suggestion::Column::Hidden,
                ])
                .filter(suggestion::Column::Id.is_in(c.iter().copied()))
                .into_tuple()
        })
        .await?;
        for (id, title, hidden) in found {
            subjects.insert(id, of(title, hidden, None));
        }
    }
    let wanted = ids(SubjectType::CommitmentUpdate);
    if !wanted.is_empty() {
        let found: Vec<(Uuid, String, bool)> = in_chunks(conn, &wanted, |c| {
            commitment_update::Entity::find()
                .select_only()
                .columns([
                    commitment_update::Column::Id,
                    commitment_update::Column::Title,
                    commitment_update::Column::Hidden,
                ])
                .filter(commitment_update::Column::Id.is_in(c.iter().copied()))
                .into_tuple()
        })
        .await?;
        for (id, title, hidden) in found {
            subjects.insert(id, of(title, hidden, None));
        }
    }
    let wanted = ids(SubjectType::Post);
    if !wanted.is_empty() {
        let posts: Vec<(Uuid, Uuid)> = in_chunks(conn, &wanted, |c| {
            post::Entity::find()
                .select_only()
                .columns([post::Column::Id, post::Column::ThreadId])
                .filter(post::Column::Id.is_in(c.iter().copied()))
                .into_tuple()
        })
        .await?;
        let thread_ids: Vec<Uuid> = posts
            .iter()
            .map(|(_, t)| *t)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let threads: HashMap<Uuid, (String, bool, Option<Uuid>)> =
            in_chunks(conn, &thread_ids, |c| {
                thread::Entity::find()
                    .select_only()
                    .columns([
                        thread::Column::Id,
                        thread::Column::Title,
                        thread::Column::Hidden,
                        thread::Column::WorkingGroupId,
                    ])
                    .filter(thread::Column::Id.is_in(c.iter().copied()))
                    .into_tuple::<(Uuid, String, bool, Option<Uuid>)>()
            })
            .await?
            .into_iter()
            .map(|(id, title, hidden, group)| (id, (title, hidden, group)))
            .collect();
        for (post_id, thread_id) in posts {
            if let Some((title, hidden, group)) = threads.get(&thread_id) {
                group_ids.extend(*group);
                subjects.insert(post_id, of(title.clone(), *hidden, *group));
            }
        }
    }
    let wanted = ids(SubjectType::Meetup);
    if !wanted.is_empty() {
        let found: Vec<(Uuid, String, Uuid)> = in_chunks(conn, &wanted, |c| {
            meetup::Entity::find()
                .select_only()
                .columns([
                    meetup::Column::Id,
                    meetup::Column::Title,
                    meetup::Column::WorkingGroupId,
                ])
                .filter(meetup::Column::Id.is_in(c.iter().copied()))
                .into_tuple()
        })
        .await?;
        for (id, title, group) in found {
            group_ids.insert(group);
            subjects.insert(id, of(title, false, Some(group)));
        }
    }
    let group_ids: Vec<Uuid> = group_ids.into_iter().collect();
    let mut groups: HashMap<Uuid, working_group::Model> = HashMap::new();
    for chunk in group_ids.chunks(crate::outbox::write::CHUNK) {
        for g in working_group::Entity::find()
            .filter(working_group::Column::Id.is_in(chunk.iter().copied()))
            .all(conn)
            .await?
        {
            groups.insert(g.id, g);
        }
    }
    for id in ids(SubjectType::WorkingGroup) {
        if let Some(g) = groups.get(&id) {
            // A group's name is shown to whoever it concerns (an invitation, a request
            // declined): only what is inside it is kept to its members.
            subjects.insert(id, of(g.name.clone(), false, None));
        }
    }
    // Whose standing matters: the recipients of items inside a private group.
    let private: Vec<Uuid> = groups
        .values()
        .filter(|g| g.visibility != working_group::Visibility::Public)
        .map(|g| g.id)
        .collect();
    let mut memberships: HashMap<(Uuid, Uuid), membership::Model> = HashMap::new();
    let mut admins: HashSet<Uuid> = HashSet::new();
    if !private.is_empty() {
        let people: Vec<Uuid> = rows
            .iter()
            .map(|r| r.recipient_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for chunk in people.chunks(crate::outbox::write::CHUNK) {
            for m in membership::Entity::find()
                .filter(membership::Column::UserId.is_in(chunk.iter().copied()))
                .filter(membership::Column::WorkingGroupId.is_in(private.iter().copied()))
                .all(conn)
                .await?
            {
                memberships.insert((m.user_id, m.working_group_id), m);
            }
        }
        admins = in_chunks(conn, &people, |c| {
            user::Entity::find()
                .select_only()
                .column(user::Column::Id)
                .filter(user::Column::Id.is_in(c.iter().copied()))
                .filter(user::Column::Role.eq(user::Role::Admin))
                .into_tuple()
        })
        .await?
        .into_iter()
        .collect();
    }

    let mut out = HashMap::with_capacity(rows.len());
    for n in rows {
        let title = match n.subject_type {
            SubjectType::Report | SubjectType::User => None,
            _ => Some(match subjects.get(&n.subject_id) {
                // Gone since: nothing of it is shown.
                None => HIDDEN_TITLE.to_string(),
                Some(s) if s.hidden => HIDDEN_TITLE.to_string(),
                Some(s) => {
                    let visible = match s.group.map(|g| groups.get(&g)) {
                        None => true,
                        Some(None) => false,
                        Some(Some(g)) => sees_inside(
                            g,
                            memberships.get(&(n.recipient_id, g.id)),
                            admins.contains(&n.recipient_id),
                        ),
                    };
                    if visible {
                        s.title.clone()
                    } else {
                        HIDDEN_TITLE.to_string()
                    }
                }
            }),
        };
        let text = match &title {
            Some(t) if n.text.contains(TITLE) => n.text.replace(TITLE, t),
            // Written before texts were rendered late: its title is frozen inside, so a
            // subject masked now masks the whole sentence.
            Some(t) if t == HIDDEN_TITLE => HIDDEN_TITLE.to_string(),
            _ => n.text.clone(),
        };
        out.insert(
            n.id,
            Rendered {
                text: clip(text),
                title,
            },
        );
    }
    Ok(out)
}

/// `rows` with their `text` rendered for their recipients.
pub async fn with_texts<C: ConnectionTrait>(
    conn: &C,
    mut rows: Vec<notification::Model>,
) -> Result<Vec<notification::Model>, sea_orm::DbErr> {
    let mut rendered = notifications(conn, &rows).await?;
    for n in &mut rows {
        if let Some(r) = rendered.remove(&n.id) {
            n.text = r.text;
        }
    }
    Ok(rows)
}

/// The mail of a notification (`payload` names it by `notification_id`) as it is sent:
/// its sentence, its subject's title and, for a meet-up's own mail, the title the template
/// shows, all read now. A notification gone since leaves the payload as queued.
pub async fn mail_payload<C: ConnectionTrait>(
    conn: &C,
    payload: &mut Value,
) -> Result<(), sea_orm::DbErr> {
    let Some(id) = payload
        .get("notification_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Uuid>().ok())
    else {
        return Ok(());
    };
    let Some(n) = notification::Entity::find_by_id(id).one(conn).await? else {
        return Ok(());
    };
    let Some(r) = notifications(conn, std::slice::from_ref(&n))
        .await?
        .remove(&n.id)
    else {
        return Ok(());
    };
    payload["text"] = r.text.into();
    if let Some(title) = r.title {
        payload["subject_title"] = title.clone().into();
        if payload.get("title").is_some() {
            payload["title"] = title.into();
        }
    }
    Ok(())
}

/// A channel message's text as it is posted, from the database now: `None` when what it
/// is about is gone.
pub async fn channel_text<C: ConnectionTrait>(
    conn: &C,
    base_url: &str,
    group_id: Uuid,
    message: &ChannelMessage,
) -> Result<Option<String>, sea_orm::DbErr> {
    let link = channels::text::Links::new(base_url);
    let group = || async { working_group::Entity::find_by_id(group_id).one(conn).await };
    Ok(match message {
        ChannelMessage::Text { text } => Some(text.clone()),
        ChannelMessage::MeetupScheduled { meetup_id } => {
            let (Some(m), Some(g)) = (
                meetup::Entity::find_by_id(*meetup_id).one(conn).await?,
                group().await?,
            ) else {
                return Ok(None);
            };
            Some(channels::text::meetup_scheduled(&link, &g, &m))
        }
        ChannelMessage::OutcomesPublished { meetup_id, .. } => {
            let (Some(m), Some(g)) = (
                meetup::Entity::find_by_id(*meetup_id).one(conn).await?,
                group().await?,
            ) else {
                return Ok(None);
            };
            Some(channels::text::outcomes_published(&link, &g, &m))
        }
        ChannelMessage::ThreadStarted { thread_id } => {
            let (Some(t), Some(g)) = (
                thread::Entity::find_by_id(*thread_id).one(conn).await?,
                group().await?,
            ) else {
                return Ok(None);
            };
            Some(channels::text::thread_started(&link, &g.name, &t))
        }
        ChannelMessage::SuggestionResponse {
            suggestion_id,
            new_status,
            ..
        } => suggestion::Entity::find_by_id(*suggestion_id)
            .one(conn)
            .await?
            .map(|s| {
                channels::text::suggestion_response(
                    &link,
                    s.id,
                    &s.title,
                    s.hidden,
                    new_status.as_deref(),
                )
            }),
        ChannelMessage::ThreadResponse { thread_id, .. } => thread::Entity::find_by_id(*thread_id)
            .one(conn)
            .await?
            .map(|t| channels::text::thread_response(&link, &t)),
    })
}
