//! Who may read a thread, who may moderate it, and who sees hidden content as written.
//! Queries, mutations and subscriptions all ask here; whether the thread's group may be seen
//! inside is `services::access`'s rule.

use sea_orm::{ConnectionTrait, EntityTrait};
use uuid::Uuid;

use crate::auth::Actor;
use crate::entities::user::Role;
use crate::entities::{post, thread};
use crate::error::{AppError, AppResult};
use crate::services::access::{self, Access};

/// What everyone but the author and moderators reads in place of hidden content: the same
/// marker as hidden suggestions' and updates' titles.
pub const HIDDEN_MARKER: &str = crate::services::moderation::HIDDEN_TITLE;
/// What a deleted post's body reads.
pub const DELETED_MARKER: &str = "[deleted]";

/// Whether a viewer with `group` access (the thread's group, if it is in one) may read the
/// thread: the access policy's rule.
pub use crate::services::access::may_read_thread as may_read;

/// Whether `actor` sees hidden content written by `author_id` as it was written: the one
/// rule of `moderation::sees_hidden`, with the thread's group deciding who organises it.
pub fn may_see_hidden(actor: Option<&Actor>, author_id: Uuid, group: Option<&Access>) -> bool {
    crate::services::moderation::sees_hidden(
        actor,
        author_id,
        group.is_some_and(Access::can_organise),
    )
}

/// Whether `actor` may lock, pin or post in a locked thread: OFFICIAL and ADMIN accounts
/// anywhere, and a group's organisers in its threads.
pub fn may_moderate(actor: Option<&Actor>, group: Option<&Access>) -> bool {
    let Some(a) = actor else {
        return false;
    };
    matches!(a.role, Role::Official | Role::Admin) || group.is_some_and(Access::can_organise)
}

/// Reads the thread and how `actor` stands to its group, on `conn` (the caller's
/// transaction when it writes). `NotFound` when there is no such thread or the viewer may
/// not read it: the two look the same.
pub async fn readable<C: ConnectionTrait>(
    conn: &C,
    actor: Option<&Actor>,
    thread_id: Uuid,
) -> AppResult<(thread::Model, Option<Access>)> {
    let t = thread::Entity::find_by_id(thread_id)
        .one(conn)
        .await?
        .ok_or(AppError::NotFound("thread"))?;
    access_for(conn, actor, t).await
}

/// `readable` for a thread already read (under a lock, say).
pub async fn access_for<C: ConnectionTrait>(
    conn: &C,
    actor: Option<&Actor>,
    t: thread::Model,
) -> AppResult<(thread::Model, Option<Access>)> {
    let access = match t.working_group_id {
        Some(g) => Some(access::group_access(conn, actor, g).await?),
        None => None,
    };
    if !may_read(&t, access.as_ref()) {
        return Err(AppError::NotFound("thread"));
    }
    Ok((t, access))
}

/// The post as `actor` may see it pushed live: `None` when the thread is out of the
/// viewer's reach or the post is hidden from them.
pub async fn visible_post<C: ConnectionTrait>(
    conn: &C,
    actor: Option<&Actor>,
    post_id: Uuid,
) -> AppResult<Option<post::Model>> {
    let Some(p) = post::Entity::find_by_id(post_id).one(conn).await? else {
        return Ok(None);
    };
    let (_, access) = match readable(conn, actor, p.thread_id).await {
        Ok(found) => found,
        Err(AppError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if p.hidden && !may_see_hidden(actor, p.author_id, access.as_ref()) {
        return Ok(None);
    }
    Ok(Some(p))
}
