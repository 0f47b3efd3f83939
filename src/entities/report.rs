//! A flag raised on content for moderators. At most one OPEN report per account and item.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub reporter_id: Uuid,
    pub subject_type: SubjectType,
    pub subject_id: Uuid,
    /// The group whose organisers may resolve it (content inside a working group).
    pub working_group_id: Option<Uuid>,
    pub reason: Reason,
    pub details: String,
    pub status: Status,
    pub resolution: Option<Resolution>,
    pub resolution_note: Option<String>,
    pub resolved_by: Option<Uuid>,
    pub resolved_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// What a report or a moderation action is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum SubjectType {
    #[sea_orm(string_value = "POST")]
    Post,
    #[sea_orm(string_value = "THREAD")]
    Thread,
    #[sea_orm(string_value = "SUGGESTION")]
    Suggestion,
    #[sea_orm(string_value = "UPDATE")]
    Update,
    #[sea_orm(string_value = "USER")]
    User,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum Reason {
    #[sea_orm(string_value = "SPAM")]
    Spam,
    #[sea_orm(string_value = "ABUSE")]
    Abuse,
    #[sea_orm(string_value = "OFF_TOPIC")]
    OffTopic,
    #[sea_orm(string_value = "PERSONAL_DATA")]
    PersonalData,
    #[sea_orm(string_value = "OTHER")]
    Other,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum Status {
    #[sea_orm(string_value = "OPEN")]
    Open,
    #[sea_orm(string_value = "RESOLVED")]
    Resolved,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum Resolution {
    #[sea_orm(string_value = "HIDE")]
    Hide,
    #[sea_orm(string_value = "DISMISS")]
    Dismiss,
}
