use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "commitments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub reference: String,
    pub title: String,
    pub description: String,
    pub action_plan: String,
    pub lead_institution: String,
    pub policy_area: String,
    pub status: Status,
    pub follower_count: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Implementation status of a commitment.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum Status {
    #[sea_orm(string_value = "NOT_STARTED")]
    NotStarted,
    #[sea_orm(string_value = "LIMITED")]
    Limited,
    #[sea_orm(string_value = "SUBSTANTIAL")]
    Substantial,
    #[sea_orm(string_value = "COMPLETE")]
    Complete,
    #[sea_orm(string_value = "WITHDRAWN")]
    Withdrawn,
}
