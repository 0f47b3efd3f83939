//! One entry of the append-only moderation log: who did what to which item, when and why.

use sea_orm::entity::prelude::*;

use super::report::SubjectType;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "moderation_actions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub actor_id: Uuid,
    pub action: Action,
    pub subject_type: SubjectType,
    pub subject_id: Uuid,
    pub working_group_id: Option<Uuid>,
    pub reason: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(30))")]
pub enum Action {
    #[sea_orm(string_value = "HIDE")]
    Hide,
    #[sea_orm(string_value = "UNHIDE")]
    Unhide,
    #[sea_orm(string_value = "LOCK")]
    Lock,
    #[sea_orm(string_value = "UNLOCK")]
    Unlock,
    #[sea_orm(string_value = "PIN")]
    Pin,
    #[sea_orm(string_value = "UNPIN")]
    Unpin,
    #[sea_orm(string_value = "ROLE_CHANGE")]
    RoleChange,
    #[sea_orm(string_value = "REPORT_DISMISSED")]
    ReportDismissed,
    #[sea_orm(string_value = "REPORT_UPHELD")]
    ReportUpheld,
    #[sea_orm(string_value = "SUSPEND")]
    Suspend,
    #[sea_orm(string_value = "UNSUSPEND")]
    Unsuspend,
    #[sea_orm(string_value = "MEMBER_REMOVED")]
    MemberRemoved,
}
