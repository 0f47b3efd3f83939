//! In-app notifications: the viewer's own list, the unread count, marking read, and the
//! live `notificationAdded` subscription.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, Subscription, Union, ID};
use chrono::{DateTime, Utc};
use futures::Stream;

use super::accounts::User;
use super::connection::connection;
use super::discussions::Post;
use super::groups::{viewer_access_to, WorkingGroup};
use super::loaders::{
    GroupKey, MeetupKey, PostKey, ReportKey, SuggestionKey, ThreadKey, UpdateKey, UserKey,
};
use super::meetups::Meetup;
use super::moderation::Report;
use super::scalars::{parse_id, to_id};
use super::suggestions::Suggestion;
use super::updates::CommitmentUpdate;
use super::{ctx, loader};
use crate::entities::notification::{self, Kind as DbKind, SubjectType};
use crate::error::AppError;
use crate::events::Event;
use crate::services::notifications::{self as service, Mark};
use crate::services::page::PageRequest;

/// What a notification is about.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbKind")]
pub enum NotificationKind {
    /// An official response was published on a suggestion the viewer follows or supports
    /// (perhaps changing its status).
    ResponsePublished,
    /// A suggestion the viewer follows or supports was merged into another as a duplicate.
    SuggestionMerged,
    /// A new suggestion on a commitment the viewer follows.
    SuggestionCreated,
    /// A new official update on a commitment the viewer follows.
    UpdatePublished,
    /// A reply to the viewer's post or thread.
    PostReply,
    /// A new post in a thread the viewer wrote in.
    ThreadPost,
    /// A meet-up was scheduled in one of the viewer's groups.
    MeetupScheduled,
    /// A meet-up the viewer is going to (or waitlisted for) changed.
    MeetupChanged,
    /// A meet-up the viewer is going to (or waitlisted for) was cancelled.
    MeetupCancelled,
    /// The viewer moved from the waitlist to GOING.
    MeetupPromoted,
    /// A meet-up the viewer is going to starts within a day.
    MeetupReminder,
    /// Someone asked to join a group the viewer organises.
    MembershipRequested,
    /// The viewer's request to join a group was decided.
    MembershipDecided,
    /// The viewer was invited to join a group.
    MembershipInvited,
    /// A new report for the viewer to moderate.
    ReportFiled,
    /// An administrator changed the viewer's role on Convene.
    RoleChanged,
    /// An organiser changed the viewer's role in a group.
    MemberRoleChanged,
}

/// The object a notification links to.
#[derive(Union)]
pub enum NotificationSubject {
    /// A suggestion.
    Suggestion(Suggestion),
    /// An official update.
    CommitmentUpdate(CommitmentUpdate),
    /// A post in a thread.
    Post(Post),
    /// A meet-up.
    Meetup(Meetup),
    /// A working group.
    WorkingGroup(WorkingGroup),
    /// A report to moderate.
    Report(Report),
    /// An account (the viewer's own, for a role change).
    User(User),
}

pub struct Notification(pub notification::Model);

/// Something that happened which the viewer hears of: one per event and person.
#[Object]
impl Notification {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// What happened.
    async fn kind(&self) -> NotificationKind {
        self.0.kind.into()
    }
    /// Who did it; null for events nobody in particular caused (a seat freeing up).
    async fn actor(&self, c: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.actor_id else {
            return Ok(None);
        };
        Ok(loader(c)?.load_one(UserKey(id)).await?.map(User))
    }
    /// What it is about; null when it is gone or the viewer may no longer see it (a private
    /// group they left, a report they no longer moderate).
    async fn subject(&self, c: &Context<'_>) -> async_graphql::Result<Option<NotificationSubject>> {
        let l = loader(c)?;
        let id = self.0.subject_id;
        Ok(match self.0.subject_type {
            SubjectType::Suggestion => l
                .load_one(SuggestionKey(id))
                .await?
                .map(|s| NotificationSubject::Suggestion(Suggestion::from(s))),
            SubjectType::CommitmentUpdate => l
                .load_one(UpdateKey(id))
                .await?
                .map(|u| NotificationSubject::CommitmentUpdate(CommitmentUpdate(u))),
            SubjectType::Post => {
                let Some(p) = l.load_one(PostKey(id)).await? else {
                    return Ok(None);
                };
                let Some(t) = l.load_one(ThreadKey(p.thread_id)).await? else {
                    return Ok(None);
                };
                if !sees_inside(c, t.working_group_id).await? {
                    return Ok(None);
                }
                Some(NotificationSubject::Post(Post(p)))
            }
            SubjectType::Meetup => {
                let Some(m) = l.load_one(MeetupKey(id)).await? else {
                    return Ok(None);
                };
                if !sees_inside(c, Some(m.working_group_id)).await? {
                    return Ok(None);
                }
                Some(NotificationSubject::Meetup(Meetup(m)))
            }
            SubjectType::WorkingGroup => l
                .load_one(GroupKey(id))
                .await?
                .map(|g| NotificationSubject::WorkingGroup(WorkingGroup(g))),
            SubjectType::User => l
                .load_one(UserKey(id))
                .await?
                .map(|u| NotificationSubject::User(User(u))),
            SubjectType::Report => {
                let Some(r) = l.load_one(ReportKey(id)).await? else {
                    return Ok(None);
                };
                if !moderates(c, r.working_group_id).await? {
                    return Ok(None);
                }
                Some(NotificationSubject::Report(Report(r)))
            }
        })
    }
    /// A short sentence saying what happened, as it stands now: a hidden item, or one the
    /// viewer may no longer see, shows as "[hidden by a moderator]".
    async fn text(&self) -> &str {
        &self.0.text
    }
    /// When it was written.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the viewer marked it read; null while unread.
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }
}

/// Whether the viewer sees inside the group (always, for content outside any group).
async fn sees_inside(c: &Context<'_>, group: Option<uuid::Uuid>) -> async_graphql::Result<bool> {
    let Some(g) = group else {
        return Ok(true);
    };
    match loader(c)?.load_one(GroupKey(g)).await? {
        Some(group) => Ok(viewer_access_to(c, group).await?.can_see_inside()),
        None => Ok(false),
    }
}

/// Whether the viewer moderates reports in this place: administrators everywhere, a
/// group's organisers for content inside it.
async fn moderates(c: &Context<'_>, group: Option<uuid::Uuid>) -> async_graphql::Result<bool> {
    let (_, viewer) = ctx(c)?;
    if viewer.actor.as_ref().is_some_and(|a| a.is_admin()) {
        return Ok(true);
    }
    let Some(g) = group else {
        return Ok(false);
    };
    match loader(c)?.load_one(GroupKey(g)).await? {
        Some(group) => Ok(viewer_access_to(c, group).await?.is_organiser()),
        None => Ok(false),
    }
}

connection!(
    NotificationConnection,
    NotificationEdge,
    Notification,
    "A page of the viewer's notifications, newest first.",
    "A notification with its cursor."
);
// Its fields go through its resolvers (`graphql::plain`).
impl super::plain::Plain for Notification {}

/// What `markNotificationsRead` marks: some notifications by ID, or all of them.
#[derive(InputObject)]
pub struct MarkNotificationsReadInput {
    /// The notifications to mark read (at most 100); IDs that are not the viewer's are
    /// ignored.
    pub ids: Option<Vec<ID>>,
    /// true: every one of the viewer's notifications.
    pub all: Option<bool>,
}

/// The answer to `markNotificationsRead`.
#[derive(SimpleObject)]
pub struct MarkNotificationsReadPayload {
    /// How many of the viewer's notifications are still unread.
    pub unread_count: i32,
}

fn count_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// The viewer's notifications, newest first. UNAUTHENTICATED when anonymous.
    async fn notifications(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
        #[graphql(desc = "true: only those not yet read.")] unread_only: Option<bool>,
    ) -> async_graphql::Result<NotificationConnection> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let page = PageRequest::parse(first, after.as_deref())?;
        let unread_only = unread_only.unwrap_or(false);
        let mut found = service::list(services, actor, &page, unread_only).await?;
        // Texts as the viewer may see them now, for the whole page at once.
        let (cursors, rows): (Vec<_>, Vec<_>) = found.items.into_iter().unzip();
        let rows = crate::outbox::render::with_texts(&services.db, rows).await?;
        found.items = cursors.into_iter().zip(rows).collect();
        let (s, id) = (services.clone(), actor.id);
        Ok(NotificationConnection::new(
            found,
            Notification,
            Box::new(move || {
                let s = s.clone();
                Box::pin(async move { service::count(&s, id, unread_only).await })
            }),
        ))
    }

    /// How many of the viewer's notifications are unread. UNAUTHENTICATED when anonymous.
    async fn unread_notification_count(&self, c: &Context<'_>) -> async_graphql::Result<i32> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        Ok(count_i32(service::count(services, actor.id, true).await?))
    }
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Marks the viewer's own notifications read: the given `ids`, or `all`. Give exactly
    /// one of them.
    async fn mark_notifications_read(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Which notifications.")] input: MarkNotificationsReadInput,
    ) -> async_graphql::Result<MarkNotificationsReadPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let mark = match (input.ids, input.all) {
            (Some(ids), None | Some(false)) => Mark::Ids(
                ids.iter()
                    .map(|id| parse_id("ids", id))
                    .collect::<Result<_, _>>()?,
            ),
            (None, Some(true)) => Mark::All,
            _ => return Err(AppError::bad_input("ids", "give either ids or all: true").into()),
        };
        let unread = service::mark_read(services, actor, mark).await?;
        Ok(MarkNotificationsReadPayload {
            unread_count: count_i32(unread),
        })
    }
}

#[derive(Default)]
pub struct NotificationSubscription;

#[Subscription]
impl NotificationSubscription {
    /// Each new notification of the viewer's, as the worker writes it. UNAUTHENTICATED
    /// when anonymous.
    async fn notification_added(
        &self,
        c: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = Notification>> {
        let (services, viewer) = ctx(c)?;
        let me = viewer.require()?.id;
        let events = services.events.subscribe();
        let services = services.clone();
        Ok(futures::stream::unfold(events, move |mut events| {
            let services = services.clone();
            async move {
                loop {
                    let id = match events.recv().await {
                        Ok(Event::NotificationAdded { user_id, id }) if user_id == me => id,
                        Ok(_) => continue,
                        // Fell behind: the missed ones are in `notifications`.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    };
                    // Read again, as the viewer's own.
                    let found = match service::find_own(&services, me, id).await {
                        Ok(Some(n)) => crate::outbox::render::with_texts(&services.db, vec![n])
                            .await
                            .map(|mut rows| rows.pop())
                            .map_err(crate::error::AppError::from),
                        other => other,
                    };
                    match found {
                        Ok(Some(n)) => return Some((Notification(n), events)),
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e.message(), "notificationAdded: reading a notification failed");
                            continue;
                        }
                    }
                }
            }
        }))
    }
}
