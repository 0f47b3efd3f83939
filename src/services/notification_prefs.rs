//! Email preferences for notifications: per event group, `IMMEDIATE`, `DAILY_DIGEST` or
//! `OFF`, and the local hour and time zone of the daily digest. A person who never changed
//! anything has no row and the defaults: meet-up news right away, the rest in the digest.
//! Security mail (verification, reset, changes to one's email or password) is not governed
//! by these: it is always sent.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::config::NotificationSettings;
use crate::entities::notification::EventGroup;
use crate::entities::notification_preference::{self, EmailPreference};

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
            time_zone: row.time_zone,
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
