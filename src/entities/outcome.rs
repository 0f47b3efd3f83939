use sea_orm::entity::prelude::*;

/// One entry of the public record of outcomes, in publication order.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outcomes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: String,
    pub response_id: Option<Uuid>,
    pub commitment_id: Option<Uuid>,
    /// Set for a meet-up's outcome (then `commitment_id` is null: the group's links say
    /// which commitments it concerns).
    pub meetup_outcome_id: Option<Uuid>,
    /// False for a private group's minutes its organisers have not made public.
    pub public: bool,
    pub published_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
