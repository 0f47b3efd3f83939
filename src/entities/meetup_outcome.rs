use sea_orm::entity::prelude::*;

/// What a meet-up decided: the minutes and a list of decisions.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "meetup_outcomes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub meetup_id: Uuid,
    pub working_group_id: Uuid,
    pub summary: String,
    pub summary_html: String,
    /// A JSON array of strings.
    pub decisions: String,
    /// Whether anyone may read it (a private group's minutes are public only if marked so).
    pub public: bool,
    pub published_by: Uuid,
    pub published_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
