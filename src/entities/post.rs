//! One post in a thread: a reply to the thread or to another post, at most five deep.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "posts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub thread_id: Uuid,
    /// The post replied to; null for a reply to the thread itself.
    pub parent_id: Option<Uuid>,
    pub author_id: Uuid,
    /// 1 for a reply to the thread, up to 5.
    pub depth: i32,
    /// The post's place in conversation order: its ancestors' sequence numbers and its
    /// own, each zero-padded and dot-separated, so ordering by it lists every post right
    /// after its parent and before the parent's later siblings.
    pub sort_key: String,
    /// Empty once deleted.
    pub body: String,
    pub body_html: String,
    pub hidden: bool,
    pub deleted_at: Option<DateTimeUtc>,
    pub edited_at: Option<DateTimeUtc>,
    pub thumbs_up_count: i32,
    pub heart_count: i32,
    pub lightbulb_count: i32,
    pub question_count: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
