//! Discussions: threads on commitments, in working groups, under suggestions and official
//! updates, and their posts.
//!
//! - `threads`: reading and listing threads, locking and pinning them;
//! - `posts`: starting threads, replying in conversation order, editing and deleting;
//! - `reactions`: the four reactions, toggled with their counters;
//! - `visibility`: who may read a thread, and who sees hidden content as it was written.

pub mod posts;
pub mod reactions;
pub mod threads;
pub mod visibility;

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait};
use uuid::Uuid;

use crate::db::now;
use crate::entities::thread::{self, Context};
use crate::error::AppResult;

pub use visibility::{may_moderate, may_read, may_see_hidden, readable, visible_post};

/// What a new thread is about and who opens it.
pub struct NewThread {
    pub context: Context,
    pub commitment_id: Option<Uuid>,
    pub working_group_id: Option<Uuid>,
    pub suggestion_id: Option<Uuid>,
    pub update_id: Option<Uuid>,
    pub author_id: Uuid,
    pub title: String,
}

/// Writes a thread row; the one way a thread comes to exist, whatever opens it (a person,
/// a new suggestion, an official update). Runs in the caller's transaction.
pub async fn insert_thread<C: ConnectionTrait>(
    conn: &C,
    new: NewThread,
) -> AppResult<thread::Model> {
    let at = now();
    Ok(thread::ActiveModel {
        id: Set(Uuid::now_v7()),
        context: Set(new.context),
        commitment_id: Set(new.commitment_id),
        working_group_id: Set(new.working_group_id),
        suggestion_id: Set(new.suggestion_id),
        update_id: Set(new.update_id),
        author_id: Set(new.author_id),
        title: Set(new.title),
        locked: Set(false),
        lock_reason: Set(None),
        pinned: Set(false),
        hidden: Set(false),
        post_count: Set(0),
        next_post_seq: Set(1),
        official_response_count: Set(0),
        follower_count: Set(0),
        last_activity_at: Set(at),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(conn)
    .await?)
}
