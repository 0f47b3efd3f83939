use sea_orm::entity::prelude::*;

use super::suggestion::Status;

/// An official's published answer; immutable once written.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "official_responses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub suggestion_id: Option<Uuid>,
    pub commitment_id: Option<Uuid>,
    pub author_id: Uuid,
    pub body: String,
    pub body_html: String,
    pub previous_status: Option<Status>,
    pub new_status: Option<Status>,
    pub duplicate_of_id: Option<Uuid>,
    pub published_at: DateTimeUtc,
    /// Set when the response answers a discussion thread rather than a suggestion.
    pub thread_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
