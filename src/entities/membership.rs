use sea_orm::entity::prelude::*;

/// An account's place in a working group: a member or organiser, a pending request, an
/// invitation not yet accepted, or a refused request. One per (group, account).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "memberships")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub working_group_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub status: Status,
    pub invited_by: Option<Uuid>,
    /// Bumped to rotate the member's secret calendar URL (the URL's token is derived from
    /// the membership and this version, so nothing secret is stored).
    pub calendar_key_version: i32,
    pub joined_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum Role {
    #[sea_orm(string_value = "ORGANISER")]
    Organiser,
    #[sea_orm(string_value = "MEMBER")]
    Member,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum Status {
    /// A member (or organiser) of the group.
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    /// Asked to join a REQUEST group; waiting for an organiser.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// Invited by an organiser; becomes ACTIVE when the invitee joins.
    #[sea_orm(string_value = "INVITED")]
    Invited,
    /// A request an organiser turned down; asking again makes it PENDING again.
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
}
