//! The calendar feeds of groups and meet-ups: who may read them, their URLs, and the secret
//! per-member URLs of private groups.
//!
//! A private group's feed is read by calendar apps, which send no access token, so its URL
//! carries one: `<membership id>.<mac>`, where the mac is a keyed digest (under the auth
//! signing key) of the membership and its `calendar_key_version`. Nothing secret is stored;
//! bumping the version (`rotate`) retires the old URL, and the URL works only while the
//! membership is ACTIVE.

use chrono::Duration;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::access::{self, Access};
use super::Ctx;
use crate::auth::tokens::TokenKeys;
use crate::auth::Actor;
use crate::calendar::{self, Method};
use crate::db::{begin_write, now};
use crate::entities::membership;
use crate::entities::rsvp;
use crate::entities::working_group;
use crate::entities::{meetup, rsvp::Status as RsvpStatus};
use crate::error::{AppError, AppResult};

/// What the keyed digest of a calendar token is made for.
const PURPOSE: &str = "calendar-feed";

/// A group feed holds the upcoming meet-ups and those that started this long ago at most.
pub const FEED_PAST_DAYS: i64 = 90;

/// At most this many meet-ups in a feed (the latest starts first to go).
pub const FEED_LIMIT: u64 = 500;

fn mac_message(m: &membership::Model) -> String {
    format!("{}:{}", m.id, m.calendar_key_version)
}

/// The secret token of `membership`'s calendar URL, as it stands now.
pub fn member_token(keys: &TokenKeys, membership: &membership::Model) -> String {
    format!(
        "{}.{}",
        membership.id,
        keys.url_mac(PURPOSE, &mac_message(membership))
    )
}

/// The path of a group's feed.
pub fn group_feed_path(group: &working_group::Model) -> String {
    format!("/calendar/groups/{}.ics", group.slug)
}

/// The path of a meet-up's feed.
pub fn meetup_feed_path(meetup: &meetup::Model) -> String {
    format!("/calendar/meetups/{}.ics", meetup.id)
}

/// `path` for the viewer whose membership of the group is `membership` (any status, or
/// none): the plain path for a public group; for a private one, the path with the member's
/// secret token when the membership is ACTIVE, else nothing.
fn feed_url(
    ctx: &Ctx,
    group: &working_group::Model,
    membership: Option<&membership::Model>,
    path: &str,
) -> Option<String> {
    if access::open_inside(group) {
        return Some(ctx.link(path));
    }
    let m = membership.filter(|m| access::active_in(m, group.id))?;
    Some(format!(
        "{}?token={}",
        ctx.link(path),
        member_token(&ctx.tokens, m)
    ))
}

/// `WorkingGroup.calendarUrl` from the viewer's membership row when the caller already has
/// it (through the request loader): no statement.
pub fn group_feed_url(
    ctx: &Ctx,
    group: &working_group::Model,
    viewer_membership: Option<&membership::Model>,
) -> Option<String> {
    feed_url(ctx, group, viewer_membership, &group_feed_path(group))
}

/// `Meetup.calendarUrl` from the viewer's membership of the meet-up's group when the caller
/// already has it: no statement.
pub fn meetup_feed_url(
    ctx: &Ctx,
    meetup: &meetup::Model,
    group: &working_group::Model,
    viewer_membership: Option<&membership::Model>,
) -> Option<String> {
    feed_url(ctx, group, viewer_membership, &meetup_feed_path(meetup))
}

/// `actor`'s membership of a private group, read by the rule every domain uses
/// (`groups::access_to`); none for a public group, whose feed is the same for everyone.
async fn private_membership(
    ctx: &Ctx,
    actor: Option<&Actor>,
    group: &working_group::Model,
) -> AppResult<Option<membership::Model>> {
    if access::open_inside(group) {
        return Ok(None);
    }
    Ok(access::access_to(&ctx.db, actor, group.clone())
        .await?
        .membership)
}

/// The group's calendar URL for `actor`: the plain feed URL of a public group for everyone;
/// a private group's secret URL for its ACTIVE members, and null for everyone else. Reads
/// the viewer's membership (one statement) unless the group is public.
pub async fn group_calendar_url(
    ctx: &Ctx,
    actor: Option<&Actor>,
    group: &working_group::Model,
) -> AppResult<Option<String>> {
    let membership = private_membership(ctx, actor, group).await?;
    Ok(group_feed_url(ctx, group, membership.as_ref()))
}

/// The meet-up's calendar URL for `actor`, by the same rule as [`group_calendar_url`].
pub async fn meetup_calendar_url(
    ctx: &Ctx,
    actor: Option<&Actor>,
    meetup: &meetup::Model,
    group: &working_group::Model,
) -> AppResult<Option<String>> {
    let membership = private_membership(ctx, actor, group).await?;
    Ok(meetup_feed_url(ctx, meetup, group, membership.as_ref()))
}

/// Retires `actor`'s secret calendar URL for the group and returns the new one. Only an
/// ACTIVE member of a private group has one: anyone else is refused.
pub async fn rotate(ctx: &Ctx, actor: &Actor, group_id: Uuid) -> AppResult<String> {
    let tx = begin_write(&ctx.db).await?;
    let group = access::group_access(&tx, Some(actor), group_id)
        .await?
        .group;
    if access::open_inside(&group) {
        return Err(AppError::bad_input(
            "workingGroupId",
            "a public group's calendar URL is not secret, so there is nothing to rotate",
        ));
    }
    let found = membership::Entity::find()
        .filter(membership::Column::WorkingGroupId.eq(group.id))
        .filter(membership::Column::UserId.eq(actor.id))
        .lock_exclusive()
        .one(&tx)
        .await?
        .filter(|m| access::active_in(m, group.id))
        .ok_or_else(|| {
            AppError::Forbidden("only the group's members have a calendar URL".to_string())
        })?;
    let version = found.calendar_key_version.saturating_add(1);
    let mut m = found.into_active_model();
    m.calendar_key_version = Set(version);
    m.updated_at = Set(now());
    let updated = m.update(&tx).await?;
    tx.commit().await?;
    group_feed_url(ctx, &group, Some(&updated))
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("an active member has no calendar URL")))
}

/// A feed that may be served, with the reader it was served to.
pub struct Feed {
    /// The iCalendar text.
    pub body: String,
    /// Whether it holds what only members may see (so no shared cache may keep it).
    pub private: bool,
}

/// How the reader of a feed stands to its group: through the access token of the request if
/// any, else through the secret `token` of the URL. `None` when they may not read it.
async fn reader(
    ctx: &Ctx,
    actor: Option<&Actor>,
    group: working_group::Model,
    token: Option<&str>,
) -> AppResult<Option<Access>> {
    let by_session = access::access_to(&ctx.db, actor, group).await?;
    if by_session.can_see_inside() {
        return Ok(Some(by_session));
    }
    let Some(membership) = member_of_token(ctx, token, by_session.group.id).await? else {
        return Ok(None);
    };
    // The token speaks for its member alone, never with an administrator's reach.
    let by_token = access::with_membership(None, by_session.group, Some(membership));
    Ok(by_token.can_see_inside().then_some(by_token))
}

/// The ACTIVE membership of `group_id` that `token` is the current secret of.
async fn member_of_token(
    ctx: &Ctx,
    token: Option<&str>,
    group_id: Uuid,
) -> AppResult<Option<membership::Model>> {
    let Some((id, mac)) = token.and_then(|t| t.split_once('.')) else {
        return Ok(None);
    };
    let Ok(id) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    let Some(m) = membership::Entity::find_by_id(id).one(&ctx.db).await? else {
        return Ok(None);
    };
    let valid = access::active_in(&m, group_id)
        && ctx.tokens.verify_url_mac(PURPOSE, &mac_message(&m), mac);
    Ok(valid.then_some(m))
}

/// `meetups` as `access`'s reader may see them: the online link only for those GOING and
/// the group's organisers. Reads the reader's RSVPs (one statement) when a link is there
/// to show.
async fn for_reader(
    ctx: &Ctx,
    access: &Access,
    mut meetups: Vec<meetup::Model>,
) -> AppResult<Vec<meetup::Model>> {
    if access.can_organise() {
        return Ok(meetups);
    }
    let with_link: Vec<Uuid> = meetups
        .iter()
        .filter(|m| m.online_url.is_some())
        .map(|m| m.id)
        .collect();
    let going: Vec<Uuid> = match &access.membership {
        Some(member) if !with_link.is_empty() => {
            rsvp::Entity::find()
                .select_only()
                .column(rsvp::Column::MeetupId)
                .filter(rsvp::Column::UserId.eq(member.user_id))
                .filter(rsvp::Column::MeetupId.is_in(with_link))
                .filter(rsvp::Column::Status.eq(RsvpStatus::Going))
                .into_tuple()
                .all(&ctx.db)
                .await?
        }
        _ => Vec::new(),
    };
    for m in &mut meetups {
        if !going.contains(&m.id) {
            m.online_url = None;
        }
    }
    Ok(meetups)
}

/// The feed of the group `slug`: its upcoming meet-ups and those of the last
/// `FEED_PAST_DAYS` days, cancelled ones included (as cancelled). `None` when there is no
/// such group or the reader may not see inside it, so that a private group's feed does not
/// show it exists.
pub async fn group_feed(
    ctx: &Ctx,
    actor: Option<&Actor>,
    slug: &str,
    token: Option<&str>,
) -> AppResult<Option<Feed>> {
    let Some(group) = working_group::Entity::find()
        .filter(working_group::Column::Slug.eq(slug))
        .one(&ctx.db)
        .await?
    else {
        return Ok(None);
    };
    let Some(access) = reader(ctx, actor, group, token).await? else {
        return Ok(None);
    };
    let since = now() - Duration::days(FEED_PAST_DAYS);
    let meetups = meetup::Entity::find()
        .filter(meetup::Column::WorkingGroupId.eq(access.group.id))
        .filter(meetup::Column::StartsAt.gte(since))
        .order_by_asc(meetup::Column::StartsAt)
        .order_by_asc(meetup::Column::Id)
        .limit(FEED_LIMIT)
        .all(&ctx.db)
        .await?;
    let meetups = for_reader(ctx, &access, meetups).await?;
    let group = &access.group;
    Ok(Some(Feed {
        body: calendar::feed(
            &group.name,
            &meetups,
            group,
            Method::Publish,
            &ctx.settings.public.base_url,
        ),
        private: !access::open_inside(group),
    }))
}

/// The feed of one meet-up; `None` as for [`group_feed`].
pub async fn meetup_feed(
    ctx: &Ctx,
    actor: Option<&Actor>,
    id: Uuid,
    token: Option<&str>,
) -> AppResult<Option<Feed>> {
    let Some(found) = meetup::Entity::find_by_id(id).one(&ctx.db).await? else {
        return Ok(None);
    };
    let Some(group) = working_group::Entity::find_by_id(found.working_group_id)
        .one(&ctx.db)
        .await?
    else {
        return Ok(None);
    };
    let Some(access) = reader(ctx, actor, group, token).await? else {
        return Ok(None);
    };
    let meetups = for_reader(ctx, &access, vec![found]).await?;
    let group = &access.group;
    Ok(Some(Feed {
        body: calendar::feed(
            &group.name,
            &meetups,
            group,
            Method::Publish,
            &ctx.settings.public.base_url,
        ),
        private: !access::open_inside(group),
    }))
}
