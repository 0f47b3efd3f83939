//! An official update on a commitment (the plan's blog posts), answered with suggestions.

use sea_orm::entity::prelude::*;

use super::commitment::Status as MilestoneStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "commitment_updates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub commitment_id: Uuid,
    pub author_id: Uuid,
    pub title: String,
    pub body: String,
    pub body_html: String,
    /// The milestone whose status this update changed, if any.
    pub milestone_id: Option<Uuid>,
    pub milestone_status: Option<MilestoneStatus>,
    /// Suggestions written in reply to this update.
    pub suggestion_count: i32,
    pub hidden: bool,
    pub published_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
