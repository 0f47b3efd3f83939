//! An in-app notification: one event as one person hears of it. Written only by the outbox
//! worker's fan-out; `(event_key, recipient_id)` is unique, so delivery is exactly once.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub recipient_id: Uuid,
    /// The outbox event it came from (its idempotency key).
    pub event_key: String,
    pub kind: Kind,
    /// Who did it; none for events nobody in particular caused.
    pub actor_id: Option<Uuid>,
    pub subject_type: SubjectType,
    pub subject_id: Uuid,
    pub text: String,
    pub created_at: DateTimeUtc,
    pub read_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// What happened.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(40))")]
pub enum Kind {
    #[sea_orm(string_value = "RESPONSE_PUBLISHED")]
    ResponsePublished,
    #[sea_orm(string_value = "SUGGESTION_MERGED")]
    SuggestionMerged,
    #[sea_orm(string_value = "SUGGESTION_CREATED")]
    SuggestionCreated,
    #[sea_orm(string_value = "UPDATE_PUBLISHED")]
    UpdatePublished,
    #[sea_orm(string_value = "POST_REPLY")]
    PostReply,
    #[sea_orm(string_value = "THREAD_POST")]
    ThreadPost,
    #[sea_orm(string_value = "MEETUP_SCHEDULED")]
    MeetupScheduled,
    #[sea_orm(string_value = "MEETUP_CHANGED")]
    MeetupChanged,
    #[sea_orm(string_value = "MEETUP_CANCELLED")]
    MeetupCancelled,
    #[sea_orm(string_value = "MEETUP_PROMOTED")]
    MeetupPromoted,
    #[sea_orm(string_value = "MEMBERSHIP_REQUESTED")]
    MembershipRequested,
    #[sea_orm(string_value = "MEMBERSHIP_DECIDED")]
    MembershipDecided,
    #[sea_orm(string_value = "MEMBERSHIP_INVITED")]
    MembershipInvited,
    #[sea_orm(string_value = "REPORT_FILED")]
    ReportFiled,
    #[sea_orm(string_value = "ROLE_CHANGED")]
    RoleChanged,
    #[sea_orm(string_value = "MEMBER_ROLE_CHANGED")]
    MemberRoleChanged,
}

/// The kind of row a notification links to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(30))")]
pub enum SubjectType {
    #[sea_orm(string_value = "SUGGESTION")]
    Suggestion,
    #[sea_orm(string_value = "COMMITMENT_UPDATE")]
    CommitmentUpdate,
    #[sea_orm(string_value = "POST")]
    Post,
    #[sea_orm(string_value = "MEETUP")]
    Meetup,
    #[sea_orm(string_value = "WORKING_GROUP")]
    WorkingGroup,
    #[sea_orm(string_value = "REPORT")]
    Report,
    #[sea_orm(string_value = "USER")]
    User,
}
