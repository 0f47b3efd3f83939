use sea_orm::entity::prelude::*;

/// A commitment a working group works on.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "working_group_commitments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub working_group_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub commitment_id: Uuid,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
