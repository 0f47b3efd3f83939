//! The viewer's email preferences for notifications: per group of events, immediate mail,
//! the daily digest or none, and when the digest goes out. Security mail (verification,
//! reset, changes to one's email or password) is always sent and is not listed here.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};

use super::ctx;
use crate::entities::notification_preference::EmailPreference as DbPreference;
use crate::services::notification_prefs::{self as service, Changes, Prefs};

/// How mail about one group of events reaches the viewer.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbPreference")]
pub enum EmailPreference {
    /// One mail per event, as it happens.
    Immediate,
    /// Gathered into one mail a day, at the digest hour.
    DailyDigest,
    /// No mail (the in-app notification stays).
    Off,
}

/// The viewer's email preferences; defaults for anything never chosen (meet-up news right
/// away, the rest in the daily digest).
#[derive(SimpleObject)]
pub struct NotificationPreferences {
    /// News of suggestions the viewer follows or supports: responses, status changes, merges.
    pub my_suggestions: EmailPreference,
    /// New suggestions and official updates on commitments the viewer follows.
    pub followed_commitments: EmailPreference,
    /// Replies to the viewer and new posts in threads they posted in or follow.
    pub discussions: EmailPreference,
    /// The viewer's working groups and meet-ups: scheduled, changed, cancelled, waitlist
    /// promotions, reminders, membership decisions and invitations.
    pub meetups: EmailPreference,
    /// Reports to moderate, requests to join a group the viewer organises, their role.
    pub moderation: EmailPreference,
    /// The local hour (0–23) the daily digest goes out at: the viewer's choice or the
    /// site's default.
    pub digest_hour: i32,
    /// The IANA time zone the digest hour is read in.
    pub time_zone: String,
}

impl From<Prefs> for NotificationPreferences {
    fn from(p: Prefs) -> Self {
        NotificationPreferences {
            my_suggestions: p.my_suggestions.into(),
            followed_commitments: p.followed_commitments.into(),
            discussions: p.discussions.into(),
            meetups: p.meetups.into(),
            moderation: p.moderation.into(),
            digest_hour: i32::try_from(p.digest_hour).unwrap_or(0),
            time_zone: p.time_zone,
        }
    }
}

/// What `updateNotificationPreferences` changes; fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateNotificationPreferencesInput {
    /// News of suggestions the viewer follows or supports.
    pub my_suggestions: Option<EmailPreference>,
    /// News of commitments the viewer follows.
    pub followed_commitments: Option<EmailPreference>,
    /// Replies and discussions.
    pub discussions: Option<EmailPreference>,
    /// Meet-ups and working groups.
    pub meetups: Option<EmailPreference>,
    /// Moderation and the viewer's role.
    pub moderation: Option<EmailPreference>,
    /// The local hour of the daily digest, 0–23 (BAD_USER_INPUT otherwise).
    pub digest_hour: Option<i32>,
    /// An IANA time zone name such as `Europe/London` (BAD_USER_INPUT otherwise).
    pub time_zone: Option<String>,
}

/// The answer to `updateNotificationPreferences`.
#[derive(SimpleObject)]
pub struct UpdateNotificationPreferencesPayload {
    /// The viewer's preferences after the change.
    pub notification_preferences: NotificationPreferences,
}

#[derive(Default)]
pub struct NotificationPrefsQuery;

#[Object]
impl NotificationPrefsQuery {
    /// The viewer's email preferences. UNAUTHENTICATED when anonymous.
    async fn notification_preferences(
        &self,
        c: &Context<'_>,
    ) -> async_graphql::Result<NotificationPreferences> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        Ok(service::mine(services, actor).await?.into())
    }
}

#[derive(Default)]
pub struct NotificationPrefsMutation;

#[Object]
impl NotificationPrefsMutation {
    /// Changes the viewer's email preferences (only the fields given). UNAUTHENTICATED when
    /// anonymous.
    async fn update_notification_preferences(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The preferences to change.")] input: UpdateNotificationPreferencesInput,
    ) -> async_graphql::Result<UpdateNotificationPreferencesPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let changes = Changes {
            my_suggestions: input.my_suggestions.map(Into::into),
            followed_commitments: input.followed_commitments.map(Into::into),
            discussions: input.discussions.map(Into::into),
            meetups: input.meetups.map(Into::into),
            moderation: input.moderation.map(Into::into),
            digest_hour: input.digest_hour,
            time_zone: input.time_zone,
        };
        let prefs = service::update(services, actor, changes).await?;
        Ok(UpdateNotificationPreferencesPayload {
            notification_preferences: prefs.into(),
        })
    }
}
