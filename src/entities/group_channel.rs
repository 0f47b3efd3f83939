//! A working group's chat channel: a Slack-compatible incoming webhook. The URL is a secret:
//! it is never logged, never shown in full (the API gives its host), and never copied into
//! the outbox (the worker reads it here when it posts). No row: not connected.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_channels")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub working_group_id: Uuid,
    pub webhook_url: String,
    pub connected_at: DateTimeUtc,
    pub connected_by: Option<Uuid>,
}

/// Without the URL, so that logging a row can't leak it.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupChannel")
            .field("working_group_id", &self.working_group_id)
            .field("webhook_url", &"[redacted]")
            .field("connected_at", &self.connected_at)
            .field("connected_by", &self.connected_by)
            .finish()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::working_group::Entity",
        from = "Column::WorkingGroupId",
        to = "super::working_group::Column::Id"
    )]
    WorkingGroup,
}

impl Related<super::working_group::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::WorkingGroup.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
