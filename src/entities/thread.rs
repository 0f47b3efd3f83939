//! A discussion: on a commitment, in a working group, under a suggestion or an official update.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "threads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub context: Context,
    /// The commitment discussed: set for COMMITMENT, SUGGESTION and UPDATE threads.
    pub commitment_id: Option<Uuid>,
    /// Set for WORKING_GROUP threads; the group's visibility decides who may read them.
    pub working_group_id: Option<Uuid>,
    pub suggestion_id: Option<Uuid>,
    pub update_id: Option<Uuid>,
    pub author_id: Uuid,
    pub title: String,
    pub locked: bool,
    pub lock_reason: Option<String>,
    pub pinned: bool,
    /// Hidden by a moderator.
    pub hidden: bool,
    /// Posts written, deleted ones included (their place in the conversation stays).
    pub post_count: i32,
    /// The next post's sequence number, taken under the thread's row lock.
    pub next_post_seq: i64,
    pub official_response_count: i32,
    /// Accounts following the thread (`thread_follows` rows).
    pub follower_count: i32,
    pub last_activity_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum Context {
    #[sea_orm(string_value = "COMMITMENT")]
    Commitment,
    #[sea_orm(string_value = "WORKING_GROUP")]
    WorkingGroup,
    #[sea_orm(string_value = "SUGGESTION")]
    Suggestion,
    #[sea_orm(string_value = "UPDATE")]
    Update,
}
