//! Meet-ups, RSVPs and the outcomes published after a meet-up.

use async_graphql::{Context, Enum, InputObject, MaybeUndefined, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::connection::connection;
use super::groups::WorkingGroup;
use super::loaders::{GroupKey, MeetupKey, OutcomeOf, ViewerMembership, ViewerRsvp};
use super::scalars::{parse_id, to_id};
use super::{ctx, loader};
use crate::entities::meetup::{self, Status as DbStatus};
use crate::entities::rsvp::Status as DbRsvpStatus;
use crate::entities::{meetup_outcome, working_group};
use crate::error::AppError;
use crate::services::access::Access;
use crate::services::calendar_feeds;
use crate::services::meetups::{
    self as service, Filter, MeetupChanges, NewMeetup, NewOutcomes, RsvpView,
};
use crate::services::page::PageRequest;

/// Where a meet-up stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbStatus")]
pub enum MeetupStatus {
    /// Planned; RSVPs are open until it starts.
    Scheduled,
    /// Called off by its organisers (`cancelReason` says why).
    Cancelled,
    /// Took place, and its outcomes are published.
    Held,
}

/// An account's answer to a meet-up.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbRsvpStatus")]
pub enum RsvpStatus {
    /// Has a seat.
    Going,
    /// Waiting for a seat; the first on the waitlist takes the next seat that frees up.
    Waitlisted,
    /// Not attending.
    NotGoing,
}

/// How the viewer stands to `group_id`, read through the request's loaders (no statement
/// of its own per item).
async fn viewer_access(
    c: &Context<'_>,
    group_id: uuid::Uuid,
) -> async_graphql::Result<Option<Access>> {
    let Some(group) = loader(c)?.load_one(GroupKey(group_id)).await? else {
        return Ok(None);
    };
    Ok(Some(super::groups::viewer_access_to(c, group).await?))
}

async fn can_see_inside(c: &Context<'_>, group_id: uuid::Uuid) -> async_graphql::Result<bool> {
    Ok(viewer_access(c, group_id)
        .await?
        .is_some_and(|a| a.can_see_inside()))
}

pub struct Meetup(pub meetup::Model);

/// A meet-up of a working group. A private group's meet-ups are visible to its members only.
#[Object]
impl Meetup {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// The group that holds it.
    async fn working_group(&self, c: &Context<'_>) -> async_graphql::Result<Option<WorkingGroup>> {
        Ok(loader(c)?
            .load_one(GroupKey(self.0.working_group_id))
            .await?
            .map(WorkingGroup))
    }
    /// Title.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// Agenda, in Markdown.
    async fn agenda(&self) -> &str {
        &self.0.agenda
    }
    /// Agenda rendered to sanitised HTML.
    async fn agenda_html(&self) -> &str {
        &self.0.agenda_html
    }
    /// When it starts.
    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.starts_at
    }
    /// When it ends.
    async fn ends_at(&self) -> DateTime<Utc> {
        self.0.ends_at
    }
    /// The IANA time zone it is held in, such as `Europe/London`.
    async fn time_zone(&self) -> &str {
        &self.0.time_zone
    }
    /// Where it is held, if in person.
    async fn venue(&self) -> Option<&str> {
        self.0.venue.as_deref()
    }
    /// The venue's address, if in person.
    async fn address(&self) -> Option<&str> {
        self.0.address.as_deref()
    }
    /// The link to join online. Null unless the viewer may see inside the group and is
    /// GOING or organises the group (a former member never sees it).
    async fn online_url(&self, c: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let Some(url) = &self.0.online_url else {
            return Ok(None);
        };
        let (_, viewer) = ctx(c)?;
        if viewer.actor.is_none() {
            return Ok(None);
        }
        let Some(access) = viewer_access(c, self.0.working_group_id).await? else {
            return Ok(None);
        };
        let going = loader(c)?
            .load_one(ViewerRsvp(self.0.id))
            .await?
            .is_some_and(|r| r.row.status == DbRsvpStatus::Going);
        Ok(access.may_see_online_url(going).then(|| url.clone()))
    }
    /// How many can attend; null for no limit.
    async fn capacity(&self) -> Option<i32> {
        self.0.capacity
    }
    /// How many are GOING.
    async fn going_count(&self) -> i32 {
        self.0.going_count
    }
    /// How many are WAITLISTED.
    async fn waitlist_count(&self) -> i32 {
        self.0.waitlist_count
    }
    /// The viewer's RSVP; null when the viewer has none (or is anonymous).
    async fn viewer_rsvp(&self, c: &Context<'_>) -> async_graphql::Result<Option<Rsvp>> {
        Ok(loader(c)?.load_one(ViewerRsvp(self.0.id)).await?.map(Rsvp))
    }
    /// Where it stands.
    async fn status(&self) -> MeetupStatus {
        self.0.status.into()
    }
    /// Why it was cancelled, when CANCELLED.
    async fn cancel_reason(&self) -> Option<&str> {
        self.0.cancel_reason.as_deref()
    }
    /// What it decided, once HELD. A private group's outcomes not marked public are shown
    /// to its members only.
    async fn outcome(&self, c: &Context<'_>) -> async_graphql::Result<Option<MeetupOutcome>> {
        let Some(o) = loader(c)?.load_one(OutcomeOf(self.0.id)).await? else {
            return Ok(None);
        };
        let shown = viewer_access(c, o.working_group_id)
            .await?
            .is_some_and(|a| a.may_see_outcome(&o));
        Ok(shown.then_some(MeetupOutcome(o)))
    }
    /// The viewer's calendar (`.ics`) URL for this meet-up: the same for everyone in a
    /// public group; in a private group a secret URL per member, null for anyone else.
    async fn calendar_url(&self, c: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let (services, _) = ctx(c)?;
        Ok(viewer_access(c, self.0.working_group_id)
            .await?
            .and_then(|a| {
                calendar_feeds::meetup_feed_url(services, &self.0, &a.group, a.membership.as_ref())
            }))
    }
    /// The iCalendar SEQUENCE: increases with every change calendars should pick up.
    async fn sequence(&self) -> i32 {
        self.0.sequence
    }
    /// When it was scheduled.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct Rsvp(pub RsvpView);

/// An account's answer to a meet-up.
#[Object]
impl Rsvp {
    /// GOING, WAITLISTED or NOT_GOING.
    async fn status(&self) -> RsvpStatus {
        self.0.row.status.into()
    }
    /// The place on the waitlist, from 1, with no gaps; null unless WAITLISTED.
    async fn waitlist_position(&self) -> Option<i32> {
        self.0
            .position
            .map(|p| i32::try_from(p).unwrap_or(i32::MAX))
    }
    /// When the answer last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.row.updated_at
    }
}

pub struct MeetupOutcome(pub meetup_outcome::Model);

/// What a meet-up decided: the minutes and the decisions. A private group's outcomes are
/// public only if its organisers marked them so.
#[Object]
impl MeetupOutcome {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// The meet-up; null for those who cannot see inside its (private) group.
    async fn meetup(&self, c: &Context<'_>) -> async_graphql::Result<Option<Meetup>> {
        if !can_see_inside(c, self.0.working_group_id).await? {
            return Ok(None);
        }
        Ok(loader(c)?
            .load_one(MeetupKey(self.0.meetup_id))
            .await?
            .map(Meetup))
    }
    /// The group that met.
    async fn working_group(&self, c: &Context<'_>) -> async_graphql::Result<Option<WorkingGroup>> {
        Ok(loader(c)?
            .load_one(GroupKey(self.0.working_group_id))
            .await?
            .map(WorkingGroup))
    }
    /// The minutes, in Markdown.
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    /// The minutes rendered to sanitised HTML.
    async fn summary_html(&self) -> &str {
        &self.0.summary_html
    }
    /// The decisions taken, in order.
    async fn decisions(&self) -> Vec<String> {
        service::decisions(&self.0)
    }
    /// Whether anyone may read it.
    async fn public(&self) -> bool {
        self.0.public
    }
    /// When it was published.
    async fn published_at(&self) -> DateTime<Utc> {
        self.0.published_at
    }
}

connection!(
    MeetupConnection,
    MeetupEdge,
    Meetup,
    "A page of meet-ups.",
    "A meet-up in a list."
);
// Its fields go through its resolvers (`graphql::plain`).
impl super::plain::Plain for Meetup {}

/// Narrows the list of meet-ups. A private group's meet-ups are listed for its members only.
#[derive(InputObject, Default)]
pub struct MeetupFilter {
    /// Only this group's meet-ups.
    pub working_group_id: Option<ID>,
    /// true: only those not yet ended, soonest first; otherwise all, newest start first.
    pub upcoming: Option<bool>,
    /// true: only those the viewer is GOING to or WAITLISTED for.
    pub attending_only: Option<bool>,
}

async fn meetup_connection(
    c: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: Filter,
) -> async_graphql::Result<MeetupConnection> {
    let (services, viewer) = ctx(c)?;
    let page = PageRequest::parse(first, after.as_deref())?;
    let actor = viewer.actor.clone();
    let found = service::list(services, actor.as_ref(), &filter, &page).await?;
    let s = services.clone();
    Ok(MeetupConnection::new(
        found,
        Meetup,
        Box::new(move || {
            let (s, f, a) = (s.clone(), filter.clone(), actor.clone());
            Box::pin(async move { service::count(&s, a.as_ref(), &f).await })
        }),
    ))
}

/// A group's meet-ups, for `WorkingGroup.meetups`: null for viewers who cannot see inside
/// a private group.
pub async fn group_meetups(
    c: &Context<'_>,
    group: &working_group::Model,
    first: Option<i32>,
    after: Option<String>,
    upcoming: Option<bool>,
) -> async_graphql::Result<Option<MeetupConnection>> {
    let access = super::groups::viewer_access_to(c, group.clone()).await?;
    if !access.can_see_inside() {
        return Ok(None);
    }
    // Every meet-up of the page belongs to this group: hand its row and the viewer's
    // membership to the loader, so the items' own checks cost no statement and no round.
    let l = loader(c)?;
    l.prime([(GroupKey(group.id), group.clone())]);
    if let Some(m) = access.membership {
        l.prime([(ViewerMembership(group.id), m)]);
    }
    let filter = Filter {
        group_id: Some(group.id),
        upcoming: upcoming.unwrap_or(false),
        attending_only: false,
    };
    Ok(Some(meetup_connection(c, first, after, filter).await?))
}

/// A meet-up to schedule.
#[derive(InputObject)]
pub struct ScheduleMeetupInput {
    /// The group holding it (its organisers schedule).
    pub working_group_id: ID,
    /// Title, 3–300 characters.
    pub title: String,
    /// Agenda in Markdown, up to 20,000 characters.
    pub agenda: Option<String>,
    /// When it starts; must be in the future.
    pub starts_at: DateTime<Utc>,
    /// When it ends; must be after the start.
    pub ends_at: DateTime<Utc>,
    /// The IANA time zone it is held in, such as `Europe/London`.
    pub time_zone: String,
    /// Where it is held, if in person (a venue and address, an online link, or both).
    pub venue: Option<String>,
    /// The venue's address.
    pub address: Option<String>,
    /// An http or https link to join online; shown only to those GOING and to organisers.
    pub online_url: Option<String>,
    /// How many can attend, at least 1; leave out for no limit.
    pub capacity: Option<i32>,
}

/// Changes to a meet-up; fields left out stay as they are, and null clears the optional
/// ones. A change of time or place mails everyone GOING or WAITLISTED.
#[derive(InputObject)]
pub struct UpdateMeetupInput {
    /// The meet-up.
    pub id: ID,
    /// New title.
    pub title: Option<String>,
    /// New agenda, in Markdown.
    pub agenda: Option<String>,
    /// New start; must be in the future.
    pub starts_at: Option<DateTime<Utc>>,
    /// New end.
    pub ends_at: Option<DateTime<Utc>>,
    /// New IANA time zone.
    pub time_zone: Option<String>,
    /// New venue; null removes it.
    pub venue: MaybeUndefined<String>,
    /// New address; null removes it.
    pub address: MaybeUndefined<String>,
    /// New online link; null removes it.
    pub online_url: MaybeUndefined<String>,
    /// New capacity (raising it promotes from the waitlist; it cannot go below the number
    /// GOING); null for no limit.
    pub capacity: MaybeUndefined<i32>,
}

fn maybe<T>(v: MaybeUndefined<T>) -> Option<Option<T>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// A meet-up to cancel.
#[derive(InputObject)]
pub struct CancelMeetupInput {
    /// The meet-up.
    pub id: ID,
    /// Why, for those who were coming.
    pub reason: Option<String>,
}

/// An answer to a meet-up.
#[derive(InputObject)]
pub struct RsvpMeetupInput {
    /// The meet-up.
    pub meetup_id: ID,
    /// true: GOING while seats remain, WAITLISTED after; false: NOT_GOING (frees the seat).
    pub attending: bool,
}

/// Outcomes of a meet-up that has ended.
#[derive(InputObject)]
pub struct PublishMeetupOutcomesInput {
    /// The meet-up.
    pub meetup_id: ID,
    /// The minutes, in Markdown.
    pub summary: String,
    /// The decisions taken: 1–50, each 1–1,000 characters.
    pub decisions: Vec<String>,
    /// Whether anyone may read them; a public group's always are, and a private group's
    /// follow the group's default when left out.
    pub public: Option<bool>,
}

macro_rules! meetup_payload {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(SimpleObject)]
        pub struct $name {
            /// The meet-up as it is now.
            pub meetup: Meetup,
        }
    };
}

meetup_payload!(ScheduleMeetupPayload, "The answer to `scheduleMeetup`.");
meetup_payload!(UpdateMeetupPayload, "The answer to `updateMeetup`.");
meetup_payload!(CancelMeetupPayload, "The answer to `cancelMeetup`.");

/// The answer to `rsvpMeetup`.
#[derive(SimpleObject)]
pub struct RsvpMeetupPayload {
    /// The viewer's RSVP as it is now.
    pub rsvp: Rsvp,
    /// The meet-up as it is now.
    pub meetup: Meetup,
}

/// The answer to `publishMeetupOutcomes`.
#[derive(SimpleObject)]
pub struct PublishMeetupOutcomesPayload {
    /// The meet-up, now HELD.
    pub meetup: Meetup,
    /// The published outcome.
    pub outcome: MeetupOutcome,
}

#[derive(Default)]
pub struct MeetupQuery;

#[Object]
impl MeetupQuery {
    /// Meet-ups the viewer may see; a private group's are listed for its members only.
    async fn meetups(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
        #[graphql(desc = "Narrows the list.")] filter: Option<MeetupFilter>,
    ) -> async_graphql::Result<MeetupConnection> {
        let filter = filter.unwrap_or_default();
        let filter = Filter {
            group_id: filter
                .working_group_id
                .as_ref()
                .map(|i| parse_id("filter.workingGroupId", i))
                .transpose()?,
            upcoming: filter.upcoming.unwrap_or(false),
            attending_only: filter.attending_only.unwrap_or(false),
        };
        meetup_connection(c, first, after, filter).await
    }

    /// One meet-up. A missing one, and a private group's meet-up asked for by anyone but its
    /// members, both answer NOT_FOUND.
    async fn meetup(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: ID,
    ) -> async_graphql::Result<Option<Meetup>> {
        let (services, viewer) = ctx(c)?;
        let found = service::find(services, viewer.actor.as_ref(), parse_id("id", &id)?).await?;
        match found {
            Some(m) => Ok(Some(Meetup(m))),
            None => Err(AppError::NotFound("meetup").into()),
        }
    }
}

#[derive(Default)]
pub struct MeetupMutation;

#[Object]
impl MeetupMutation {
    /// Schedules a meet-up (the group's organisers, and administrators).
    async fn schedule_meetup(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: ScheduleMeetupInput,
    ) -> async_graphql::Result<ScheduleMeetupPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let created = service::schedule(
            services,
            actor,
            NewMeetup {
                group_id: parse_id("workingGroupId", &input.working_group_id)?,
                title: input.title,
                agenda: input.agenda,
                starts_at: input.starts_at,
                ends_at: input.ends_at,
                time_zone: input.time_zone,
                venue: input.venue,
                address: input.address,
                online_url: input.online_url,
                capacity: input.capacity,
            },
        )
        .await?;
        Ok(ScheduleMeetupPayload {
            meetup: Meetup(created),
        })
    }

    /// Edits a meet-up (organisers).
    async fn update_meetup(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: UpdateMeetupInput,
    ) -> async_graphql::Result<UpdateMeetupPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("id", &input.id)?;
        let updated = service::update(
            services,
            actor,
            id,
            MeetupChanges {
                title: input.title,
                agenda: input.agenda,
                starts_at: input.starts_at,
                ends_at: input.ends_at,
                time_zone: input.time_zone,
                venue: maybe(input.venue),
                address: maybe(input.address),
                online_url: maybe(input.online_url),
                capacity: maybe(input.capacity),
            },
        )
        .await?;
        Ok(UpdateMeetupPayload {
            meetup: Meetup(updated),
        })
    }

    /// Cancels a meet-up (organisers); everyone GOING or WAITLISTED is mailed.
    async fn cancel_meetup(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CancelMeetupInput,
    ) -> async_graphql::Result<CancelMeetupPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("id", &input.id)?;
        let cancelled = service::cancel(services, actor, id, input.reason.as_deref()).await?;
        Ok(CancelMeetupPayload {
            meetup: Meetup(cancelled),
        })
    }

    /// Answers a meet-up: GOING while seats remain, then WAITLISTED in order; not attending
    /// frees the seat for the first on the waitlist. A private group's meet-ups are for its
    /// members only; no RSVP once a meet-up has started or was cancelled.
    async fn rsvp_meetup(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: RsvpMeetupInput,
    ) -> async_graphql::Result<RsvpMeetupPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("meetupId", &input.meetup_id)?;
        let (rsvp, meetup) = service::rsvp(services, actor, id, input.attending).await?;
        Ok(RsvpMeetupPayload {
            rsvp: Rsvp(rsvp),
            meetup: Meetup(meetup),
        })
    }

    /// Publishes a meet-up's outcomes once it has ended (organisers): it becomes HELD and the
    /// outcomes enter the record.
    async fn publish_meetup_outcomes(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: PublishMeetupOutcomesInput,
    ) -> async_graphql::Result<PublishMeetupOutcomesPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let (meetup, outcome) = service::publish_outcomes(
            services,
            actor,
            NewOutcomes {
                meetup_id: parse_id("meetupId", &input.meetup_id)?,
                summary: input.summary,
                decisions: input.decisions,
                public: input.public,
            },
        )
        .await?;
        Ok(PublishMeetupOutcomesPayload {
            meetup: Meetup(meetup),
            outcome: MeetupOutcome(outcome),
        })
    }
}
