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
    /// Its email waits for the recipient's daily digest.
    pub digest_pending: bool,
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
    #[sea_orm(string_value = "MEETUP_REMINDER")]
    MeetupReminder,
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

impl Kind {
    /// The email preference that governs mail about this kind of event.
    pub fn group(self) -> EventGroup {
        match self {
            Kind::ResponsePublished | Kind::SuggestionMerged => EventGroup::MySuggestions,
            Kind::SuggestionCreated | Kind::UpdatePublished => EventGroup::FollowedCommitments,
            Kind::PostReply | Kind::ThreadPost => EventGroup::Discussions,
            Kind::MeetupScheduled
            | Kind::MeetupChanged
            | Kind::MeetupCancelled
            | Kind::MeetupPromoted
            | Kind::MeetupReminder
            | Kind::MembershipDecided
            | Kind::MembershipInvited
            | Kind::MemberRoleChanged => EventGroup::Meetups,
            Kind::MembershipRequested | Kind::ReportFiled | Kind::RoleChanged => {
                EventGroup::Moderation
            }
        }
    }
}

/// The groups of events a person sets one email preference for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter)]
pub enum EventGroup {
    /// News of suggestions I follow or support: responses, status changes, merges.
    MySuggestions,
    /// New suggestions and official updates on commitments I follow.
    FollowedCommitments,
    /// Replies to me and new posts in threads I posted in or follow.
    Discussions,
    /// My working groups and their meet-ups: scheduled, changed, cancelled, promotions,
    /// reminders, membership decisions and invitations.
    Meetups,
    /// Reports to moderate, requests to join a group I organise, my role on the site.
    Moderation,
}

impl EventGroup {
    /// Its name in URLs and tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            EventGroup::MySuggestions => "my_suggestions",
            EventGroup::FollowedCommitments => "followed_commitments",
            EventGroup::Discussions => "discussions",
            EventGroup::Meetups => "meetups",
            EventGroup::Moderation => "moderation",
        }
    }

    pub fn parse(s: &str) -> Option<EventGroup> {
        <EventGroup as sea_orm::Iterable>::iter().find(|g| g.as_str() == s)
    }

    /// How people read it ("meet-ups and working groups").
    pub fn label(self) -> &'static str {
        match self {
            EventGroup::MySuggestions => "news of suggestions you follow or support",
            EventGroup::FollowedCommitments => "news of commitments you follow",
            EventGroup::Discussions => "replies and discussions",
            EventGroup::Meetups => "meet-ups and working groups",
            EventGroup::Moderation => "moderation and your role",
        }
    }
}
