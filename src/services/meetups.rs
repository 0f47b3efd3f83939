//! Meet-ups of working groups: scheduling, attendance within capacity with a waitlist that
//! runs itself, cancellation, the outcomes organisers publish afterwards, and reminders.
//!
//! Every write locks the meet-up row first (`lock_exclusive`; SQLite's `BEGIN IMMEDIATE`
//! already serialises writers), so the seat count, the waitlist tickets and the promotions
//! of one meet-up happen in one strict order however many requests arrive at once.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query, QueryStatementBuilder};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use serde_json::json;
use uuid::Uuid;

use super::access::{self, Access};
use super::groups;
use super::page::{Cursor, Page, PageRequest};
use super::{field, toggle, Ctx};
use crate::auth::Actor;
use crate::calendar::{self, Method};
use crate::db::{begin_write, now};
use crate::domain::{DomainError, Title};
use crate::entities::meetup::{self, Status};
use crate::entities::rsvp::{self, Status as RsvpStatus};
use crate::entities::{meetup_outcome, outcome, user, working_group, working_group_commitment};
use crate::error::{AppError, AppResult};
use crate::outbox::event::{ChannelMessage, MeetupMail, OutboxEvent};
use crate::outbox::write as outbox;

pub const TITLE_MIN: usize = 3;
pub const TITLE_MAX: usize = 300;
pub const AGENDA_MAX: usize = 20_000;
pub const SUMMARY_MAX: usize = 50_000;
pub const VENUE_MAX: usize = 300;
pub const ADDRESS_MAX: usize = 500;
pub const URL_MAX: usize = 2_000;
pub const REASON_MAX: usize = 2_000;
pub const CAPACITY_MAX: i32 = 100_000;
pub const DECISIONS_MAX: usize = 50;
pub const DECISION_MAX_CHARS: usize = 1_000;
/// The kind of a meet-up's entry in the outcome record.
pub const OUTCOME_MEETUP: &str = "MEETUP_OUTCOME";

/// A meet-up to schedule, as the client sent it.
#[derive(Debug, Clone, Default)]
pub struct NewMeetup {
    pub group_id: Uuid,
    pub title: String,
    pub agenda: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub time_zone: String,
    pub venue: Option<String>,
    pub address: Option<String>,
    pub online_url: Option<String>,
    pub capacity: Option<i32>,
}

/// Changes to a meet-up: `None` leaves a field as it is; for the nullable ones,
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct MeetupChanges {
    pub title: Option<String>,
    pub agenda: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub time_zone: Option<String>,
    pub venue: Option<Option<String>>,
    pub address: Option<Option<String>>,
    pub online_url: Option<Option<String>>,
    pub capacity: Option<Option<i32>>,
}

/// Outcomes to publish.
#[derive(Debug, Clone, Default)]
pub struct NewOutcomes {
    pub meetup_id: Uuid,
    pub summary: String,
    pub decisions: Vec<String>,
    pub public: Option<bool>,
}

/// Narrows a list of meet-ups.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub group_id: Option<Uuid>,
    /// Only those not yet ended, soonest first (otherwise newest start first).
    pub upcoming: bool,
    /// Only those the viewer is GOING to or WAITLISTED for.
    pub attending_only: bool,
}

/// An RSVP with the viewer's place on the waitlist (1-based; None unless WAITLISTED).
#[derive(Debug, Clone)]
pub struct RsvpView {
    pub row: rsvp::Model,
    pub position: Option<i64>,
}

fn parse_time_zone(raw: &str) -> Result<String, DomainError> {
    let raw = raw.trim();
    chrono_tz::Tz::from_str(raw)
        .map(|tz| tz.name().to_string())
        .map_err(|_| DomainError(format!("{raw:?} is not an IANA time zone name")))
}

/// Trimmed; empty means none.
fn optional_text(raw: Option<&str>, max: usize) -> Result<Option<String>, DomainError> {
    let Some(s) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if s.chars().count() > max {
        return Err(DomainError(format!("at most {max} characters")));
    }
    Ok(Some(s.to_string()))
}

fn parse_online_url(raw: Option<&str>) -> Result<Option<String>, DomainError> {
    let Some(s) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if s.len() > URL_MAX {
        return Err(DomainError(format!(
            "a link is at most {URL_MAX} characters"
        )));
    }
    let url = url::Url::parse(s).map_err(|_| DomainError("not a valid URL".to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(DomainError("the link must be an http or https URL".into()));
    }
    Ok(Some(url.to_string()))
}

fn check_capacity(c: Option<i32>) -> Result<Option<i32>, DomainError> {
    match c {
        Some(n) if !(1..=CAPACITY_MAX).contains(&n) => Err(DomainError(format!(
            "the capacity is at least 1 and at most {CAPACITY_MAX} (leave it out for no limit)"
        ))),
        other => Ok(other),
    }
}

fn check_times(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> AppResult<()> {
    if ends_at <= starts_at {
        return Err(AppError::bad_input(
            "endsAt",
            "a meet-up must end after it starts",
        ));
    }
    if ends_at - starts_at > Duration::days(31) {
        return Err(AppError::bad_input(
            "endsAt",
            "a meet-up lasts at most 31 days",
        ));
    }
    Ok(())
}

fn check_place(m: &meetup::Model) -> AppResult<()> {
    if m.venue.is_none() && m.address.is_none() && m.online_url.is_none() {
        return Err(AppError::bad_input(
            "venue",
            "a meet-up needs a venue and address, an online link, or both",
        ));
    }
    Ok(())
}

async fn load<C: ConnectionTrait>(conn: &C, id: Uuid) -> AppResult<meetup::Model> {
    meetup::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or(AppError::NotFound("meetup"))
}

async fn load_locked(tx: &DatabaseTransaction, id: Uuid) -> AppResult<meetup::Model> {
    meetup::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or(AppError::NotFound("meetup"))
}

/// The viewer's standing in the meet-up's group; a private group's meet-up is `NotFound`
/// to anyone who cannot see inside, exactly as a missing one.
async fn visible_access<C: ConnectionTrait>(
    conn: &C,
    actor: Option<&Actor>,
    m: &meetup::Model,
) -> AppResult<Access> {
    let access = groups::access(conn, actor, m.working_group_id).await?;
    if !access.can_see_inside() {
        return Err(AppError::NotFound("meetup"));
    }
    Ok(access)
}

/// The meet-up if the viewer may see it; `None` when missing or in a private group the
/// viewer is not a member of (the two look the same).
pub async fn find(ctx: &Ctx, actor: Option<&Actor>, id: Uuid) -> AppResult<Option<meetup::Model>> {
    let Some(m) = meetup::Entity::find_by_id(id).one(&ctx.db).await? else {
        return Ok(None);
    };
    match visible_access(&ctx.db, actor, &m).await {
        Ok(_) => Ok(Some(m)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// "Tuesday 1 December 2026, 14:00–16:00 (Europe/London)", for mail.
pub fn when(m: &meetup::Model) -> String {
    let Ok(tz) = chrono_tz::Tz::from_str(&m.time_zone) else {
        return format!("{} – {} (UTC)", m.starts_at, m.ends_at);
    };
    let (s, e) = (m.starts_at.with_timezone(&tz), m.ends_at.with_timezone(&tz));
    if s.date_naive() == e.date_naive() {
        format!(
            "{}–{} ({})",
            s.format("%A %-d %B %Y, %H:%M"),
            e.format("%H:%M"),
            m.time_zone
        )
    } else {
        format!(
            "{} – {} ({})",
            s.format("%A %-d %B %Y, %H:%M"),
            e.format("%A %-d %B %Y, %H:%M"),
            m.time_zone
        )
    }
}

fn place(m: &meetup::Model) -> String {
    [m.venue.as_deref(), m.address.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
}

/// What every meet-up mail shows (but the recipient's name).
fn shown(ctx: &Ctx, m: &meetup::Model, group: &working_group::Model) -> serde_json::Value {
    json!({
        "meetup_id": m.id,
        "title": m.title,
        "group_name": group.name,
        "when": when(m),
        "place": place(m),
        "online": m.online_url.is_some(),
        "cancel_reason": m.cancel_reason,
        "meetup_url": ctx.link(&format!("meetups/{}", m.id)),
    })
}

/// The invitation for those GOING, or without the online link for the others: it is for
/// those GOING (and the organisers, who see it in the API).
fn invitation(
    ctx: &Ctx,
    m: &meetup::Model,
    group: &working_group::Model,
    method: Method,
    going: bool,
) -> String {
    let base = ctx.settings.public.base_url.as_str();
    if going {
        calendar::invite(m, group, method, base)
    } else {
        let hidden = meetup::Model {
            online_url: None,
            ..m.clone()
        };
        calendar::invite(&hidden, group, method, base)
    }
}

/// A direct mail's payload (the RSVP confirmations, which answer the person's own action).
fn mail_payload(
    ctx: &Ctx,
    m: &meetup::Model,
    group: &working_group::Model,
    display_name: &str,
    method: Option<Method>,
    going: bool,
) -> serde_json::Value {
    let mut p = shown(ctx, m, group);
    p["display_name"] = json!(display_name);
    if let Some(method) = method {
        p["ics"] = json!(invitation(ctx, m, group, method, going));
        p["ics_method"] = json!(method.as_str());
    }
    p
}

/// What a meet-up event carries for each person's mail (see `outbox::mail`): what the
/// templates show and, with `method`, the invitation for those GOING and for the
/// WAITLISTED.
fn event_mail(
    ctx: &Ctx,
    m: &meetup::Model,
    group: &working_group::Model,
    method: Option<Method>,
) -> MeetupMail {
    MeetupMail {
        mail: Some(shown(ctx, m, group)),
        ics: method.map(|method| invitation(ctx, m, group, method, true)),
        ics_waitlisted: method.map(|method| invitation(ctx, m, group, method, false)),
        ics_method: method.map(|method| method.as_str().to_string()),
    }
}

async fn group_of<C: ConnectionTrait>(
    conn: &C,
    m: &meetup::Model,
) -> AppResult<working_group::Model> {
    working_group::Entity::find_by_id(m.working_group_id)
        .one(conn)
        .await?
        .ok_or(AppError::NotFound("working group"))
}

async fn person<C: ConnectionTrait>(conn: &C, id: Uuid) -> AppResult<(String, String)> {
    let found: Option<(String, String)> = user::Entity::find_by_id(id)
        .select_only()
        .column(user::Column::Email)
        .column(user::Column::DisplayName)
        .into_tuple()
        .one(conn)
        .await?;
    found.ok_or(AppError::NotFound("user"))
}

async fn bump(
    tx: &DatabaseTransaction,
    id: Uuid,
    col: meetup::Column,
    delta: i32,
) -> AppResult<()> {
    toggle::bump::<meetup::Entity, _, _>(tx, meetup::Column::Id, id, col, delta).await
}

/// Schedules a meet-up (group organisers and administrators); members hear of it through
/// the notification event written in the same transaction.
pub async fn schedule(ctx: &Ctx, actor: &Actor, input: NewMeetup) -> AppResult<meetup::Model> {
    actor.require_verified()?;
    let title = field("title", Title::parse(&input.title, TITLE_MIN, TITLE_MAX))?;
    let agenda = field(
        "agenda",
        ctx.markdown
            .body(input.agenda.as_deref().unwrap_or(""), 0, AGENDA_MAX),
    )?;
    let time_zone = field("timeZone", parse_time_zone(&input.time_zone))?;
    let venue = field("venue", optional_text(input.venue.as_deref(), VENUE_MAX))?;
    let address = field(
        "address",
        optional_text(input.address.as_deref(), ADDRESS_MAX),
    )?;
    let online_url = field("onlineUrl", parse_online_url(input.online_url.as_deref()))?;
    let capacity = field("capacity", check_capacity(input.capacity))?;
    let (starts_at, ends_at) = (trunc(input.starts_at), trunc(input.ends_at));
    check_times(starts_at, ends_at)?;
    let at = now();
    if starts_at <= at {
        return Err(AppError::bad_input(
            "startsAt",
            "a meet-up must start in the future",
        ));
    }
    let tx = begin_write(&ctx.db).await?;
    let access = groups::access(&tx, Some(actor), input.group_id).await?;
    access.require_organiser()?;
    let m = meetup::Model {
        id: Uuid::now_v7(),
        working_group_id: access.group.id,
        title: title.as_str().to_string(),
        agenda: agenda.source().to_string(),
        agenda_html: agenda.html().to_string(),
        starts_at,
        ends_at,
        time_zone,
        venue,
        address,
        online_url,
        capacity,
        going_count: 0,
        waitlist_count: 0,
        next_waitlist_seq: 1,
        status: Status::Scheduled,
        cancel_reason: None,
        sequence: 0,
        reminded_at: None,
        created_by: actor.id,
        created_at: at,
        updated_at: at,
    };
    check_place(&m)?;
    let created = m.into_active_model().insert(&tx).await?;
    outbox::enqueue_event(
        &tx,
        &OutboxEvent::MeetupScheduled {
            meetup_id: created.id,
            working_group_id: created.working_group_id,
            actor_id: Some(actor.id),
        },
    )
    .await?;
    outbox::post_to_channels(
        &tx,
        &[created.working_group_id],
        ChannelMessage::MeetupScheduled {
            meetup_id: created.id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// Both databases keep microseconds.
fn trunc(t: DateTime<Utc>) -> DateTime<Utc> {
    chrono::DurationRound::duration_trunc(t, Duration::microseconds(1)).unwrap_or(t)
}

fn require_scheduled(m: &meetup::Model) -> AppResult<()> {
    match m.status {
        Status::Scheduled => Ok(()),
        Status::Cancelled => Err(AppError::Conflict("this meet-up was cancelled".into())),
        Status::Held => Err(AppError::Conflict(
            "this meet-up has been held and its outcomes published".into(),
        )),
    }
}

/// Edits a meet-up (organisers). A change of time or place bumps the calendar SEQUENCE and
/// writes one event through which everyone GOING or WAITLISTED is notified and, as their
/// preferences say, mailed an updated invitation; raising the capacity promotes
/// from the waitlist in order; lowering it below the number GOING is refused.
pub async fn update(
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    changes: MeetupChanges,
) -> AppResult<meetup::Model> {
    actor.require_verified()?;
    let title = changes
        .title
        .as_deref()
        .map(|t| field("title", Title::parse(t, TITLE_MIN, TITLE_MAX)))
        .transpose()?;
    let agenda = changes
        .agenda
        .as_deref()
        .map(|a| field("agenda", ctx.markdown.body(a, 0, AGENDA_MAX)))
        .transpose()?;
    let time_zone = changes
        .time_zone
        .as_deref()
        .map(|z| field("timeZone", parse_time_zone(z)))
        .transpose()?;
    let venue = changes
        .venue
        .map(|v| field("venue", optional_text(v.as_deref(), VENUE_MAX)))
        .transpose()?;
    let address = changes
        .address
        .map(|v| field("address", optional_text(v.as_deref(), ADDRESS_MAX)))
        .transpose()?;
    let online_url = changes
        .online_url
        .map(|v| field("onlineUrl", parse_online_url(v.as_deref())))
        .transpose()?;
    let capacity = changes
        .capacity
        .map(|c| field("capacity", check_capacity(c)))
        .transpose()?;

    let tx = begin_write(&ctx.db).await?;
    let old = load_locked(&tx, id).await?;
    let access = visible_access(&tx, Some(actor), &old).await?;
    access.require_organiser()?;
    require_scheduled(&old)?;
    let at = now();
    let mut new = old.clone();
    if let Some(t) = title {
        new.title = t.as_str().to_string();
    }
    if let Some(a) = agenda {
        new.agenda = a.source().to_string();
        new.agenda_html = a.html().to_string();
    }
    if let Some(s) = changes.starts_at {
        new.starts_at = trunc(s);
    }
    if let Some(e) = changes.ends_at {
        new.ends_at = trunc(e);
    }
    if let Some(z) = time_zone {
        new.time_zone = z;
    }
    if let Some(v) = venue {
        new.venue = v;
    }
    if let Some(v) = address {
        new.address = v;
    }
    if let Some(v) = online_url {
        new.online_url = v;
    }
    if let Some(c) = capacity {
        new.capacity = c;
    }
    let time_changed = new.starts_at != old.starts_at
        || new.ends_at != old.ends_at
        || new.time_zone != old.time_zone;
    let place_changed =
        new.venue != old.venue || new.address != old.address || new.online_url != old.online_url;
    if time_changed {
        check_times(new.starts_at, new.ends_at)?;
        if new.starts_at != old.starts_at && new.starts_at <= at {
            return Err(AppError::bad_input(
                "startsAt",
                "a meet-up must start in the future",
            ));
        }
    }
    check_place(&new)?;
    if let Some(cap) = new.capacity {
        if cap < old.going_count {
            return Err(AppError::bad_input(
                "capacity",
                format!(
                    "{} people are going: the capacity cannot be lower than {}",
                    old.going_count, old.going_count
                ),
            ));
        }
    }
    let calendar_changed =
        time_changed || place_changed || new.title != old.title || new.agenda != old.agenda;
    if new == old {
        return Ok(old);
    }
    if calendar_changed {
        new.sequence = old.sequence + 1;
    }
    new.updated_at = at;
    let mut write = meetup::Entity::update_many()
        .col_expr(meetup::Column::Title, Expr::value(new.title.clone()))
        .col_expr(meetup::Column::Agenda, Expr::value(new.agenda.clone()))
        .col_expr(
            meetup::Column::AgendaHtml,
            Expr::value(new.agenda_html.clone()),
        )
        .col_expr(meetup::Column::StartsAt, Expr::value(new.starts_at))
        .col_expr(meetup::Column::EndsAt, Expr::value(new.ends_at))
        .col_expr(meetup::Column::TimeZone, Expr::value(new.time_zone.clone()))
        .col_expr(meetup::Column::Venue, Expr::value(new.venue.clone()))
        .col_expr(meetup::Column::Address, Expr::value(new.address.clone()))
        .col_expr(
            meetup::Column::OnlineUrl,
            Expr::value(new.online_url.clone()),
        )
        .col_expr(meetup::Column::Capacity, Expr::value(new.capacity))
        .col_expr(meetup::Column::Sequence, Expr::value(new.sequence))
        .col_expr(meetup::Column::UpdatedAt, Expr::value(new.updated_at));
    if new.starts_at != old.starts_at {
        // The reminder is re-armed for the new start.
        write = write.col_expr(
            meetup::Column::RemindedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        );
    }
    write.filter(meetup::Column::Id.eq(id)).exec(&tx).await?;
    let group = access.group;

    if time_changed || place_changed {
        // One event: everyone GOING or WAITLISTED gets its notification and, as their
        // preferences say, the mail with the updated invitation.
        let current = load(&tx, id).await?;
        outbox::enqueue_event(
            &tx,
            &OutboxEvent::MeetupChanged {
                meetup_id: id,
                sequence: current.sequence,
                actor_id: Some(actor.id),
                mail: event_mail(ctx, &current, &group, Some(Method::Request)),
            },
        )
        .await?;
    }
    if old.waitlist_count > 0 {
        let current = load(&tx, id).await?;
        fill_free_seats(ctx, &tx, &current, &group).await?;
    }
    let updated = load(&tx, id).await?;
    tx.commit().await?;
    Ok(updated)
}

/// How many seats of `m` are free: the one seat rule that taking a seat, withdrawing, a
/// change of capacity and a member leaving all ask. No capacity: always a seat.
fn free_seats(m: &meetup::Model) -> i64 {
    let free = m
        .capacity
        .map_or(i64::MAX, |cap| i64::from(cap) - i64::from(m.going_count));
    Ord::max(free, 0)
}

/// Gives `m`'s free seats to the head of its waitlist. The caller holds the meet-up's lock
/// and passes the row as it is now.
async fn fill_free_seats(
    ctx: &Ctx,
    tx: &DatabaseTransaction,
    m: &meetup::Model,
    group: &working_group::Model,
) -> AppResult<u64> {
    let n = Ord::min(free_seats(m), i64::from(m.waitlist_count));
    if n <= 0 {
        return Ok(0);
    }
    promote(ctx, tx, m, group, n).await
}

/// Gives up `user_id`'s RSVPs to `group`'s meet-ups that have not started yet, as a member
/// leaving or removed from it must: the rows go, and each freed seat goes to the head of
/// that meet-up's waitlist in the same transaction. The caller holds the group's lock.
pub(super) async fn give_up_rsvps(
    ctx: &Ctx,
    tx: &DatabaseTransaction,
    group: &working_group::Model,
    user_id: Uuid,
) -> AppResult<()> {
    let upcoming = Query::select()
        .column(meetup::Column::Id)
        .from(meetup::Entity)
        .and_where(meetup::Column::WorkingGroupId.eq(group.id))
        .and_where(meetup::Column::Status.eq(Status::Scheduled))
        .and_where(meetup::Column::StartsAt.gt(now()))
        .to_owned();
    let theirs = rsvp::Entity::find()
        .filter(rsvp::Column::UserId.eq(user_id))
        .filter(rsvp::Column::MeetupId.in_subquery(upcoming))
        .order_by_asc(rsvp::Column::MeetupId)
        .all(tx)
        .await?;
    for r in theirs {
        // Locked in id order, so two members leaving at once cannot wait on each other.
        let m = load_locked(tx, r.meetup_id).await?;
        rsvp::Entity::delete_by_id((r.meetup_id, user_id))
            .exec(tx)
            .await?;
        match r.status {
            RsvpStatus::Going => bump(tx, m.id, meetup::Column::GoingCount, -1).await?,
            RsvpStatus::Waitlisted => bump(tx, m.id, meetup::Column::WaitlistCount, -1).await?,
            RsvpStatus::NotGoing => {}
        }
        let after = load(tx, m.id).await?;
        fill_free_seats(ctx, tx, &after, group).await?;
    }
    Ok(())
}

/// Moves up to `n` people from the head of the waitlist to GOING, in ticket order, writing
/// each one's notification event (its mail carries the invitation). The caller holds the meet-up's lock.
async fn promote(
    ctx: &Ctx,
    tx: &DatabaseTransaction,
    m: &meetup::Model,
    group: &working_group::Model,
    n: i64,
) -> AppResult<u64> {
    let first = rsvp::Entity::find()
        .filter(rsvp::Column::MeetupId.eq(m.id))
        .filter(rsvp::Column::Status.eq(RsvpStatus::Waitlisted))
        .order_by_asc(rsvp::Column::WaitlistSeq)
        .limit(u64::try_from(n).unwrap_or(0))
        .all(tx)
        .await?;
    if first.is_empty() {
        return Ok(0);
    }
    let k = i32::try_from(first.len()).unwrap_or(i32::MAX);
    let at = now();
    let ids: Vec<Uuid> = first.iter().map(|r| r.user_id).collect();
    rsvp::Entity::update_many()
        .col_expr(rsvp::Column::Status, Expr::value(RsvpStatus::Going))
        .col_expr(rsvp::Column::WaitlistSeq, Expr::value(Option::<i64>::None))
        .col_expr(rsvp::Column::UpdatedAt, Expr::value(at))
        .filter(rsvp::Column::MeetupId.eq(m.id))
        .filter(rsvp::Column::UserId.is_in(ids.clone()))
        .exec(tx)
        .await?;
    bump(tx, m.id, meetup::Column::GoingCount, k).await?;
    bump(tx, m.id, meetup::Column::WaitlistCount, -k).await?;
    let promotion = Uuid::now_v7();
    for r in &first {
        outbox::enqueue_event(
            tx,
            &OutboxEvent::MeetupPromoted {
                meetup_id: m.id,
                user_id: r.user_id,
                promotion,
                mail: event_mail(ctx, m, group, Some(Method::Request)),
            },
        )
        .await?;
    }
    Ok(first.len() as u64)
}

/// Cancels a meet-up with a reason (organisers): everyone GOING or WAITLISTED is notified
/// through one event whose mail carries a cancellation their calendar understands.
pub async fn cancel(
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    reason: Option<&str>,
) -> AppResult<meetup::Model> {
    actor.require_verified()?;
    let reason = field("reason", optional_text(reason, REASON_MAX))?;
    let tx = begin_write(&ctx.db).await?;
    let m = load_locked(&tx, id).await?;
    let access = visible_access(&tx, Some(actor), &m).await?;
    access.require_organiser()?;
    require_scheduled(&m)?;
    let at = now();
    if m.ends_at <= at {
        return Err(AppError::Conflict(
            "this meet-up has already ended; publish its outcomes instead".into(),
        ));
    }
    let sequence = m.sequence + 1;
    let mut am = m.into_active_model();
    am.status = Set(Status::Cancelled);
    am.cancel_reason = Set(reason);
    am.sequence = Set(sequence);
    am.updated_at = Set(at);
    am.update(&tx).await?;
    let current = load(&tx, id).await?;
    let group = access.group;
    outbox::enqueue_event(
        &tx,
        &OutboxEvent::MeetupCancelled {
            meetup_id: id,
            actor_id: Some(actor.id),
            mail: event_mail(ctx, &current, &group, Some(Method::Cancel)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(current)
}

/// The viewer's answer to a meet-up. `attending`: GOING while seats remain, then WAITLISTED
/// with the next ticket; not attending frees the seat, and the head of the waitlist takes
/// it in the same transaction. Repeating an answer changes nothing.
pub async fn rsvp(
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    attending: bool,
) -> AppResult<(RsvpView, meetup::Model)> {
    actor.require_verified()?;
    let tx = begin_write(&ctx.db).await?;
    let m = load_locked(&tx, id).await?;
    let access = visible_access(&tx, Some(actor), &m).await?;
    if m.status == Status::Cancelled {
        return Err(AppError::Conflict(
            "this meet-up was cancelled and takes no RSVPs".into(),
        ));
    }
    if m.status == Status::Held || m.starts_at <= now() {
        return Err(AppError::Conflict(
            "this meet-up has already started: RSVPs are closed".into(),
        ));
    }
    let group = access.group;
    let existing = rsvp::Entity::find_by_id((id, actor.id)).one(&tx).await?;
    let current = existing.as_ref().map(|r| r.status);
    let at = now();
    let next = match (attending, current) {
        (true, Some(RsvpStatus::Going | RsvpStatus::Waitlisted))
        | (false, Some(RsvpStatus::NotGoing)) => None,
        (true, _) => {
            let seat = free_seats(&m) > 0;
            Some(if seat {
                (RsvpStatus::Going, None)
            } else {
                (RsvpStatus::Waitlisted, Some(m.next_waitlist_seq))
            })
        }
        (false, _) => Some((RsvpStatus::NotGoing, None)),
    };
    if let Some((status, seq)) = next {
        let row = rsvp::ActiveModel {
            meetup_id: Set(id),
            user_id: Set(actor.id),
            status: Set(status),
            waitlist_seq: Set(seq),
            created_at: Set(at),
            updated_at: Set(at),
        };
        if existing.is_some() {
            rsvp::Entity::update_many()
                .col_expr(rsvp::Column::Status, Expr::value(status))
                .col_expr(rsvp::Column::WaitlistSeq, Expr::value(seq))
                .col_expr(rsvp::Column::UpdatedAt, Expr::value(at))
                .filter(rsvp::Column::MeetupId.eq(id))
                .filter(rsvp::Column::UserId.eq(actor.id))
                .exec(&tx)
                .await?;
        } else {
            toggle::add_row::<rsvp::Entity, _>(&tx, row).await?;
        }
        match current {
            Some(RsvpStatus::Going) => bump(&tx, id, meetup::Column::GoingCount, -1).await?,
            Some(RsvpStatus::Waitlisted) => {
                bump(&tx, id, meetup::Column::WaitlistCount, -1).await?;
            }
            _ => {}
        }
        match status {
            RsvpStatus::Going => bump(&tx, id, meetup::Column::GoingCount, 1).await?,
            RsvpStatus::Waitlisted => {
                bump(&tx, id, meetup::Column::WaitlistCount, 1).await?;
                bump(&tx, id, meetup::Column::NextWaitlistSeq, 1).await?;
            }
            RsvpStatus::NotGoing => {}
        }
        let (email, name) = person(&tx, actor.id).await?;
        match status {
            RsvpStatus::Going => {
                outbox::enqueue_mail(
                    &tx,
                    // Once per person and status for this version of the meet-up: turning
                    // an RSVP off and on again mails nobody again.
                    &format!("meetup-rsvp:{id}:{}:{}", actor.id, m.sequence),
                    &email,
                    "meetup_rsvp",
                    mail_payload(ctx, &m, &group, &name, Some(Method::Request), true),
                )
                .await?;
            }
            RsvpStatus::Waitlisted => {
                let mut p = mail_payload(ctx, &m, &group, &name, None, false);
                p["position"] = json!(m.waitlist_count + 1);
                outbox::enqueue_mail(
                    &tx,
                    &format!("meetup-waitlisted:{id}:{}:{}", actor.id, m.sequence),
                    &email,
                    "meetup_waitlisted",
                    p,
                )
                .await?;
            }
            RsvpStatus::NotGoing => {}
        }
        if current == Some(RsvpStatus::Going) {
            let after = load(&tx, id).await?;
            fill_free_seats(ctx, &tx, &after, &group).await?;
        }
    }
    let row = rsvp::Entity::find_by_id((id, actor.id))
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("rsvp"))?;
    let position = waitlist_position(&tx, &row).await?;
    let updated = load(&tx, id).await?;
    tx.commit().await?;
    Ok((RsvpView { row, position }, updated))
}

async fn waitlist_position<C: ConnectionTrait>(
    conn: &C,
    r: &rsvp::Model,
) -> AppResult<Option<i64>> {
    let Some(seq) = r
        .waitlist_seq
        .filter(|_| r.status == RsvpStatus::Waitlisted)
    else {
        return Ok(None);
    };
    let ahead = rsvp::Entity::find()
        .filter(rsvp::Column::MeetupId.eq(r.meetup_id))
        .filter(rsvp::Column::Status.eq(RsvpStatus::Waitlisted))
        .filter(rsvp::Column::WaitlistSeq.lte(seq))
        .count(conn)
        .await?;
    Ok(Some(i64::try_from(ahead).unwrap_or(i64::MAX)))
}

/// The viewer's RSVPs to `meetups`, with waitlist positions: two statements whatever the
/// number of meet-ups (the second only when the viewer waits somewhere).
pub async fn viewer_rsvps<C: ConnectionTrait>(
    conn: &C,
    viewer: Uuid,
    meetups: &[Uuid],
) -> AppResult<Vec<RsvpView>> {
    let rows = rsvp::Entity::find()
        .filter(rsvp::Column::UserId.eq(viewer))
        .filter(rsvp::Column::MeetupId.is_in(meetups.iter().copied()))
        .all(conn)
        .await?;
    let waiting: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.status == RsvpStatus::Waitlisted)
        .map(|r| r.meetup_id)
        .collect();
    let mut positions = std::collections::HashMap::new();
    if !waiting.is_empty() {
        // Per meet-up, the waitlisted whose ticket is not after the viewer's.
        let mine = Query::select()
            .column(rsvp::Column::WaitlistSeq)
            .from_as(rsvp::Entity, MINE)
            .and_where(
                Expr::col((MINE, rsvp::Column::MeetupId))
                    .equals((rsvp::Entity, rsvp::Column::MeetupId)),
            )
            .and_where(Expr::col((MINE, rsvp::Column::UserId)).eq(viewer))
            .to_owned();
        let counted: Vec<(Uuid, i64)> = rsvp::Entity::find()
            .select_only()
            .column(rsvp::Column::MeetupId)
            .expr(Expr::col((rsvp::Entity, rsvp::Column::UserId)).count())
            .filter(rsvp::Column::MeetupId.is_in(waiting))
            .filter(rsvp::Column::Status.eq(RsvpStatus::Waitlisted))
            .filter(
                Expr::col((rsvp::Entity, rsvp::Column::WaitlistSeq)).lte(Expr::SubQuery(
                    None,
                    Box::new(mine.into_sub_query_statement()),
                )),
            )
            .group_by(rsvp::Column::MeetupId)
            .into_tuple()
            .all(conn)
            .await?;
        positions.extend(counted);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let position = (row.status == RsvpStatus::Waitlisted)
                .then(|| positions.get(&row.meetup_id).copied())
                .flatten();
            RsvpView { row, position }
        })
        .collect())
}

#[derive(sea_orm::DeriveIden, Clone, Copy)]
struct Mine;
const MINE: Mine = Mine;

/// Publishes what a meet-up decided (organisers, once it has ended): it becomes HELD and
/// its outcome enters the record, public as the group decides.
pub async fn publish_outcomes(
    ctx: &Ctx,
    actor: &Actor,
    input: NewOutcomes,
) -> AppResult<(meetup::Model, meetup_outcome::Model)> {
    actor.require_verified()?;
    let summary = field("summary", ctx.markdown.body(&input.summary, 1, SUMMARY_MAX))?;
    if input.decisions.len() > DECISIONS_MAX {
        return Err(AppError::bad_input(
            "decisions",
            format!("at most {DECISIONS_MAX} decisions"),
        ));
    }
    let mut decisions = Vec::with_capacity(input.decisions.len());
    for d in &input.decisions {
        let d = d.trim();
        if d.is_empty() {
            return Err(AppError::bad_input(
                "decisions",
                "a decision cannot be empty",
            ));
        }
        if d.chars().count() > DECISION_MAX_CHARS {
            return Err(AppError::bad_input(
                "decisions",
                format!("a decision is at most {DECISION_MAX_CHARS} characters"),
            ));
        }
        decisions.push(d.to_string());
    }
    if decisions.is_empty() {
        return Err(AppError::bad_input(
            "decisions",
            "list at least one decision",
        ));
    }
    let tx = begin_write(&ctx.db).await?;
    let m = load_locked(&tx, input.meetup_id).await?;
    let access = visible_access(&tx, Some(actor), &m).await?;
    access.require_organiser()?;
    match m.status {
        Status::Cancelled => {
            return Err(AppError::Conflict(
                "this meet-up was cancelled: it has no outcomes".into(),
            ))
        }
        Status::Held => {
            return Err(AppError::Conflict(
                "this meet-up's outcomes are already published".into(),
            ))
        }
        Status::Scheduled => {}
    }
    let at = now();
    if m.ends_at > at {
        return Err(AppError::Conflict(
            "outcomes are published once the meet-up has ended".into(),
        ));
    }
    let group = &access.group;
    let public = access::open_inside(group) || input.public.unwrap_or(group.outcomes_public);
    let published = meetup_outcome::ActiveModel {
        id: Set(Uuid::now_v7()),
        meetup_id: Set(m.id),
        working_group_id: Set(m.working_group_id),
        summary: Set(summary.source().to_string()),
        summary_html: Set(summary.html().to_string()),
        decisions: Set(serde_json::to_string(&decisions).map_err(AppError::internal)?),
        public: Set(public),
        published_by: Set(actor.id),
        published_at: Set(at),
    }
    .insert(&tx)
    .await?;
    outcome::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(OUTCOME_MEETUP.to_string()),
        response_id: Set(None),
        commitment_id: Set(None),
        meetup_outcome_id: Set(Some(published.id)),
        public: Set(public),
        published_at: Set(at),
    }
    .insert(&tx)
    .await?;
    let mut am = m.into_active_model();
    am.status = Set(Status::Held);
    am.updated_at = Set(at);
    let held = am.update(&tx).await?;
    // Posted to the group's own channel only, public outcomes or not.
    outbox::post_to_channels(
        &tx,
        &[held.working_group_id],
        ChannelMessage::OutcomesPublished {
            meetup_id: held.id,
            outcome_id: published.id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((held, published))
}

/// The decisions stored as JSON text.
pub fn decisions(o: &meetup_outcome::Model) -> Vec<String> {
    serde_json::from_str(&o.decisions).unwrap_or_default()
}

fn filtered(actor: Option<&Actor>, filter: &Filter) -> Select<meetup::Entity> {
    let mut q = meetup::Entity::find().filter(access::readable_meetups(actor));
    if let Some(g) = filter.group_id {
        q = q.filter(meetup::Column::WorkingGroupId.eq(g));
    }
    if filter.upcoming {
        q = q.filter(meetup::Column::EndsAt.gt(now()));
    }
    if filter.attending_only {
        let viewer = actor.map(|a| a.id).unwrap_or_else(Uuid::nil);
        let mine = Query::select()
            .column(rsvp::Column::MeetupId)
            .from(rsvp::Entity)
            .and_where(rsvp::Column::UserId.eq(viewer))
            .and_where(rsvp::Column::Status.is_in([RsvpStatus::Going, RsvpStatus::Waitlisted]))
            .to_owned();
        q = q.filter(meetup::Column::Id.in_subquery(mine));
    }
    q
}

/// A page of the meet-ups the viewer may see.
pub async fn list(
    ctx: &Ctx,
    actor: Option<&Actor>,
    filter: &Filter,
    page: &PageRequest,
) -> AppResult<Page<meetup::Model>> {
    let mut q = filtered(actor, filter);
    let key = |m: &meetup::Model| Cursor {
        k: Some(json!(m.starts_at.to_rfc3339())),
        id: m.id,
    };
    if let Some(after) = &page.after {
        let starts = DateTime::parse_from_rfc3339(&after.key_str()?)
            .map_err(|_| AppError::bad_input("after", "not a cursor from this list"))?
            .with_timezone(&Utc);
        let row = Expr::tuple([
            Expr::col((meetup::Entity, meetup::Column::StartsAt)),
            Expr::col((meetup::Entity, meetup::Column::Id)),
        ]);
        let at = Expr::tuple([Expr::value(starts), Expr::value(after.id)]);
        q = q.filter(if filter.upcoming {
            row.gt(at)
        } else {
            row.lt(at)
        });
    }
    q = if filter.upcoming {
        q.order_by_asc(meetup::Column::StartsAt)
            .order_by_asc(meetup::Column::Id)
    } else {
        q.order_by_desc(meetup::Column::StartsAt)
            .order_by_desc(meetup::Column::Id)
    };
    let rows = q.limit(page.first + 1).all(&ctx.db).await?;
    Ok(Page::from_rows(rows, page.first, key))
}

pub async fn count(ctx: &Ctx, actor: Option<&Actor>, filter: &Filter) -> AppResult<u64> {
    Ok(filtered(actor, filter).count(&ctx.db).await?)
}

/// Queues the reminder of every meet-up starting within `hours` for each person GOING: a
/// `meetup_reminder` notification event each, mailed as their preferences say.
/// The idempotency key names the meet-up, the person and the start, so any number of
/// instances running this at once send each reminder once, and moving the meet-up re-arms
/// it. Returns how many new reminders were queued.
pub async fn queue_reminders(ctx: &Ctx, hours: i64) -> AppResult<u64> {
    let at = now();
    let soon = meetup::Entity::find()
        .filter(meetup::Column::Status.eq(Status::Scheduled))
        .filter(meetup::Column::StartsAt.gt(at))
        .filter(meetup::Column::StartsAt.lte(at + Duration::hours(hours)))
        .order_by_asc(meetup::Column::StartsAt)
        .limit(500)
        .all(&ctx.db)
        .await?;
    let mut queued = 0;
    for m in soon {
        let group = group_of(&ctx.db, &m).await?;
        let going: Vec<Uuid> = rsvp::Entity::find()
            .select_only()
            .column(rsvp::Column::UserId)
            .filter(rsvp::Column::MeetupId.eq(m.id))
            .filter(rsvp::Column::Status.eq(RsvpStatus::Going))
            .into_tuple()
            .all(&ctx.db)
            .await?;
        let starts = m.starts_at.timestamp();
        let mail = event_mail(ctx, &m, &group, None);
        for uid in going {
            // A notification event per person: its mail honours their preferences.
            let new = outbox::enqueue_event(
                &ctx.db,
                &OutboxEvent::MeetupReminder {
                    meetup_id: m.id,
                    user_id: uid,
                    starts,
                    mail: mail.clone(),
                },
            )
            .await?;
            queued += u64::from(new);
        }
        if m.reminded_at.is_none() {
            meetup::Entity::update_many()
                .col_expr(meetup::Column::RemindedAt, Expr::value(at))
                .filter(meetup::Column::Id.eq(m.id))
                .exec(&ctx.db)
                .await?;
        }
    }
    Ok(queued)
}

/// Meet-up outcomes in the record about `commitment_id`: those of the groups linked to it.
pub fn outcomes_of_commitment(commitment_id: Uuid) -> sea_orm::sea_query::SelectStatement {
    let groups = Query::select()
        .column(working_group_commitment::Column::WorkingGroupId)
        .from(working_group_commitment::Entity)
        .and_where(working_group_commitment::Column::CommitmentId.eq(commitment_id))
        .to_owned();
    Query::select()
        .column(meetup_outcome::Column::Id)
        .from(meetup_outcome::Entity)
        .and_where(meetup_outcome::Column::WorkingGroupId.in_subquery(groups))
        .to_owned()
}
