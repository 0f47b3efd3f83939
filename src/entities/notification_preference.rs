//! A person's email preferences for notifications. No row means the defaults
//! (`services::notification_prefs::Prefs::default_for`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_preferences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub my_suggestions: EmailPreference,
    pub followed_commitments: EmailPreference,
    pub discussions: EmailPreference,
    pub meetups: EmailPreference,
    pub moderation: EmailPreference,
    /// The local hour (0–23) of the daily digest; none: the site's `notifications.digest_hour`.
    pub digest_hour: Option<i32>,
    /// IANA time zone name the digest hour is read in.
    pub time_zone: String,
    /// The local date (YYYY-MM-DD) of the last digest sent.
    pub last_digest_on: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// How mail about one group of events reaches a person.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum EmailPreference {
    /// One mail per event, as it happens.
    #[sea_orm(string_value = "IMMEDIATE")]
    Immediate,
    /// Gathered into one mail a day.
    #[sea_orm(string_value = "DAILY_DIGEST")]
    DailyDigest,
    /// No mail (the in-app notification stays).
    #[sea_orm(string_value = "OFF")]
    Off,
}
