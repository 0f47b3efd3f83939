use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "suggestions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub commitment_id: Uuid,
    pub author_id: Uuid,
    pub title: String,
    pub body: String,
    pub body_html: String,
    pub status: Status,
    pub support_count: i32,
    pub follower_count: i32,
    pub trending_score: i32,
    pub awaiting_response: bool,
    pub responded_at: Option<DateTimeUtc>,
    pub duplicate_of_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The official update this suggestion answers, if any.
    pub in_reply_to_update_id: Option<Uuid>,
    /// Hidden by a moderator.
    pub hidden: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum Status {
    #[sea_orm(string_value = "SUBMITTED")]
    Submitted,
    #[sea_orm(string_value = "UNDER_REVIEW")]
    UnderReview,
    #[sea_orm(string_value = "ACCEPTED")]
    Accepted,
    #[sea_orm(string_value = "DECLINED")]
    Declined,
    #[sea_orm(string_value = "IMPLEMENTED")]
    Implemented,
    #[sea_orm(string_value = "DUPLICATE")]
    Duplicate,
    #[sea_orm(string_value = "WITHDRAWN")]
    Withdrawn,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "SUBMITTED",
            Status::UnderReview => "UNDER_REVIEW",
            Status::Accepted => "ACCEPTED",
            Status::Declined => "DECLINED",
            Status::Implemented => "IMPLEMENTED",
            Status::Duplicate => "DUPLICATE",
            Status::Withdrawn => "WITHDRAWN",
        }
    }

    /// The official workflow: which status may follow which.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Submitted, UnderReview | Accepted | Declined | Duplicate)
                | (UnderReview, Accepted | Declined | Duplicate)
                | (Accepted, Implemented | Declined)
        )
    }

    /// Still waiting for officials to decide.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Submitted | Status::UnderReview)
    }
}
