//! Email preferences for notifications: per event group, `IMMEDIATE`, `DAILY_DIGEST` or
//! `OFF`, and the local hour and time zone of the daily digest. A person who never changed
//! anything has no row and the defaults: meet-up news right away, the rest in the digest.
//! Security mail (verification, reset, changes to one's email or password) is not governed
//! by these: it is always sent.

use std::collections::HashMap;
use std::str::FromStr;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::auth::Actor;
use crate::config::NotificationSettings;
use crate::db::{begin_write, now};
use crate::entities::notification::EventGroup;
use crate::entities::notification_preference::{self, EmailPreference};
use crate::entities::user;
use crate::error::{AppError, AppResult};
use crate::services::unsubscribe::{self, Scope};
use crate::services::Ctx;

/// One person's preferences, defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefs {
    pub my_suggestions: EmailPreference,
    pub followed_commitments: EmailPreference,
    pub discussions: EmailPreference,
    pub meetups: EmailPreference,
    pub moderation: EmailPreference,
    /// The local hour of the digest (0–23).
    pub digest_hour: u32,
    /// Whether the hour is the person's own choice (false: the site's default).
    pub digest_hour_chosen: bool,
    pub time_zone: String,
    /// Whether the zone is the person's own choice (false: the site's default, stored as
    /// an empty `time_zone`, so that a new default reaches them).
    pub time_zone_chosen: bool,
    /// The local date (YYYY-MM-DD) of the last digest sent.
    pub last_digest_on: Option<String>,
}

impl Prefs {
    /// What a person who never chose anything gets.
    pub fn defaults(settings: &NotificationSettings) -> Prefs {
        Prefs {
            my_suggestions: EmailPreference::DailyDigest,
            followed_commitments: EmailPreference::DailyDigest,
            discussions: EmailPreference::DailyDigest,
            meetups: EmailPreference::Immediate,
            moderation: EmailPreference::DailyDigest,
            digest_hour: settings.digest_hour.min(23),
            digest_hour_chosen: false,
            time_zone: settings.default_time_zone.clone(),
            time_zone_chosen: false,
            last_digest_on: None,
        }
    }

    pub fn from_row(row: notification_preference::Model, settings: &NotificationSettings) -> Prefs {
        Prefs {
            my_suggestions: row.my_suggestions,
            followed_commitments: row.followed_commitments,
            discussions: row.discussions,
            meetups: row.meetups,
            moderation: row.moderation,
            digest_hour: row
                .digest_hour
                .and_then(|h| u32::try_from(h).ok())
                .filter(|h| *h < 24)
                .unwrap_or(settings.digest_hour.min(23)),
            digest_hour_chosen: row.digest_hour.is_some(),
            time_zone_chosen: !row.time_zone.is_empty(),
            time_zone: if row.time_zone.is_empty() {
                settings.default_time_zone.clone()
            } else {
                row.time_zone
            },
            last_digest_on: row.last_digest_on,
        }
    }

    /// The preference for one group of events.
    pub fn for_group(&self, group: EventGroup) -> EmailPreference {
        match group {
            EventGroup::MySuggestions => self.my_suggestions,
            EventGroup::FollowedCommitments => self.followed_commitments,
            EventGroup::Discussions => self.discussions,
            EventGroup::Meetups => self.meetups,
            EventGroup::Moderation => self.moderation,
        }
    }

    pub fn set_group(&mut self, group: EventGroup, value: EmailPreference) {
        match group {
            EventGroup::MySuggestions => self.my_suggestions = value,
            EventGroup::FollowedCommitments => self.followed_commitments = value,
            EventGroup::Discussions => self.discussions = value,
            EventGroup::Meetups => self.meetups = value,
            EventGroup::Moderation => self.moderation = value,
        }
    }
}

/// The preferences of each of `people` (defaults for those without a row), read in chunks
/// of `notifications::CHUNK` ids per statement.
pub async fn for_people<C: ConnectionTrait>(
    conn: &C,
    settings: &NotificationSettings,
    people: &[Uuid],
) -> Result<HashMap<Uuid, Prefs>, sea_orm::DbErr> {
    let mut out: HashMap<Uuid, Prefs> = people
        .iter()
        .map(|id| (*id, Prefs::defaults(settings)))
        .collect();
    for chunk in people.chunks(crate::services::notifications::CHUNK) {
        let rows = notification_preference::Entity::find()
            .filter(notification_preference::Column::UserId.is_in(chunk.iter().copied()))
            .all(conn)
            .await?;
        for row in rows {
            out.insert(row.user_id, Prefs::from_row(row, settings));
        }
    }
    Ok(out)
}

/// One person's preferences (the defaults when they never chose any).
pub async fn of<C: ConnectionTrait>(
    conn: &C,
    settings: &NotificationSettings,
    user_id: Uuid,
) -> Result<Prefs, sea_orm::DbErr> {
    Ok(notification_preference::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .map(|row| Prefs::from_row(row, settings))
        .unwrap_or_else(|| Prefs::defaults(settings)))
}

/// The viewer's own preferences.
pub async fn mine(ctx: &Ctx, actor: &Actor) -> AppResult<Prefs> {
    Ok(of(&ctx.db, &ctx.settings.notifications, actor.id).await?)
}

/// What `update` changes; whatever is `None` stays as it is.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub my_suggestions: Option<EmailPreference>,
    pub followed_commitments: Option<EmailPreference>,
    pub discussions: Option<EmailPreference>,
    pub meetups: Option<EmailPreference>,
    pub moderation: Option<EmailPreference>,
    pub digest_hour: Option<i32>,
    pub time_zone: Option<String>,
}

/// The IANA name of `raw` as chrono-tz spells it.
fn parse_time_zone(raw: &str) -> AppResult<String> {
    let raw = raw.trim();
    chrono_tz::Tz::from_str(raw)
        .map(|tz| tz.name().to_string())
        .map_err(|_| {
            AppError::bad_input("timeZone", format!("{raw:?} is not an IANA time zone name"))
        })
}

/// Changes the viewer's preferences: a partial update, written (row created if need be) in
/// one transaction.
pub async fn update(ctx: &Ctx, actor: &Actor, changes: Changes) -> AppResult<Prefs> {
    let hour = match changes.digest_hour {
        Some(h) if !(0..=23).contains(&h) => {
            return Err(AppError::bad_input(
                "digestHour",
                "the digest hour is a local hour from 0 to 23",
            ))
        }
        Some(h) => Some(u32::try_from(h).unwrap_or(0)),
        None => None,
    };
    let zone = changes
        .time_zone
        .as_deref()
        .map(parse_time_zone)
        .transpose()?;
    let settings = &ctx.settings.notifications;
    let tx = begin_write(&ctx.db).await?;
    let mut prefs = of(&tx, settings, actor.id).await?;
    for (group, value) in [
        (EventGroup::MySuggestions, changes.my_suggestions),
        (
            EventGroup::FollowedCommitments,
            changes.followed_commitments,
        ),
        (EventGroup::Discussions, changes.discussions),
        (EventGroup::Meetups, changes.meetups),
        (EventGroup::Moderation, changes.moderation),
    ] {
        if let Some(v) = value {
            prefs.set_group(group, v);
        }
    }
    if let Some(h) = hour {
        prefs.digest_hour = h;
        prefs.digest_hour_chosen = true;
    }
    if let Some(z) = zone {
        prefs.time_zone = z;
        prefs.time_zone_chosen = true;
    }
    save(&tx, actor.id, &prefs).await?;
    tx.commit().await?;
    Ok(prefs)
}

/// Writes a person's choices, creating the row if need be. The digest's own bookkeeping
/// (`last_digest_on`) is left as it is.
async fn save<C: ConnectionTrait>(conn: &C, user_id: Uuid, prefs: &Prefs) -> AppResult<()> {
    let row = notification_preference::ActiveModel {
        user_id: Set(user_id),
        my_suggestions: Set(prefs.my_suggestions),
        followed_commitments: Set(prefs.followed_commitments),
        discussions: Set(prefs.discussions),
        meetups: Set(prefs.meetups),
        moderation: Set(prefs.moderation),
        digest_hour: Set(prefs
            .digest_hour_chosen
            .then(|| i32::try_from(prefs.digest_hour).unwrap_or(0))),
        time_zone: Set(if prefs.time_zone_chosen {
            prefs.time_zone.clone()
        } else {
            String::new()
        }),
        last_digest_on: Set(None),
        updated_at: Set(now()),
    };
    use notification_preference::Column as C;
    notification_preference::Entity::insert(row)
        .on_conflict(
            OnConflict::column(C::UserId)
                .update_columns([
                    C::MySuggestions,
                    C::FollowedCommitments,
                    C::Discussions,
                    C::Meetups,
                    C::Moderation,
                    C::DigestHour,
                    C::TimeZone,
                    C::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// What an unsubscribe link would stop, if its token holds and its account exists.
pub async fn unsubscribe_scope(ctx: &Ctx, token: &str) -> AppResult<Option<(Uuid, Scope)>> {
    let Some((user_id, scope)) = unsubscribe::verify(&ctx.tokens, token) else {
        return Ok(None);
    };
    let exists = user::Entity::find_by_id(user_id)
        .one(&ctx.db)
        .await?
        .is_some();
    Ok(exists.then_some((user_id, scope)))
}

/// Applies an unsubscribe link, without logging in: its group is set to `OFF`, or for the
/// digest every group now sent by digest. Applying it again changes nothing more. `None`
/// when the token is forged or its account is gone (nothing changes).
pub async fn unsubscribe(ctx: &Ctx, token: &str) -> AppResult<Option<Scope>> {
    let Some((user_id, scope)) = unsubscribe::verify(&ctx.tokens, token) else {
        return Ok(None);
    };
    let tx = begin_write(&ctx.db).await?;
    if user::Entity::find_by_id(user_id).one(&tx).await?.is_none() {
        return Ok(None);
    }
    let mut prefs = of(&tx, &ctx.settings.notifications, user_id).await?;
    match scope {
        Scope::Group(g) => prefs.set_group(g, EmailPreference::Off),
        Scope::Digest => {
            for g in <EventGroup as sea_orm::Iterable>::iter() {
                if prefs.for_group(g) == EmailPreference::DailyDigest {
                    prefs.set_group(g, EmailPreference::Off);
                }
            }
        }
    }
    save(&tx, user_id, &prefs).await?;
    tx.commit().await?;
    tracing::info!(user = %user_id, scope = scope.as_str(), "unsubscribed");
    Ok(Some(scope))
}

#[cfg(test)]
mod default_zone_tests {
    use super::*;

    fn row(time_zone: &str) -> notification_preference::Model {
        notification_preference::Model {
            user_id: Uuid::nil(),
            my_suggestions: EmailPreference::Off,
            followed_commitments: EmailPreference::DailyDigest,
            discussions: EmailPreference::DailyDigest,
            meetups: EmailPreference::Immediate,
            moderation: EmailPreference::DailyDigest,
            digest_hour: None,
            time_zone: time_zone.into(),
            last_digest_on: Some("2026-11-27".into()),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_row_without_a_chosen_zone_follows_the_sites_default_as_it_is_now() {
        let settings = NotificationSettings {
            default_time_zone: "Europe/Paris".into(),
            digest_hour: 7,
            ..Default::default()
        };
        let p = Prefs::from_row(row(""), &settings);
        assert_eq!(p.time_zone, "Europe/Paris");
        assert!(!p.time_zone_chosen);
        assert_eq!(p.digest_hour, 7);
        assert!(!p.digest_hour_chosen);
        assert_eq!(p.my_suggestions, EmailPreference::Off);
        // A chosen zone stays the person's own.
        let p = Prefs::from_row(row("America/New_York"), &settings);
        assert_eq!(p.time_zone, "America/New_York");
        assert!(p.time_zone_chosen);
    }
}
