use sea_orm::entity::prelude::*;

/// A working group, steering group or network: members, meet-ups and linked commitments.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "working_groups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub description_html: String,
    pub kind: Kind,
    pub visibility: Visibility,
    pub join_policy: JoinPolicy,
    /// Whether meet-up outcomes are public by default (always true for a public group).
    pub outcomes_public: bool,
    /// ACTIVE memberships.
    pub member_count: i32,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum Kind {
    #[sea_orm(string_value = "WORKING_GROUP")]
    WorkingGroup,
    #[sea_orm(string_value = "STEERING_GROUP")]
    SteeringGroup,
    #[sea_orm(string_value = "NETWORK")]
    Network,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(10))")]
pub enum Visibility {
    #[sea_orm(string_value = "PUBLIC")]
    Public,
    #[sea_orm(string_value = "PRIVATE")]
    Private,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(10))")]
pub enum JoinPolicy {
    #[sea_orm(string_value = "OPEN")]
    Open,
    #[sea_orm(string_value = "REQUEST")]
    Request,
    #[sea_orm(string_value = "INVITE")]
    Invite,
}
