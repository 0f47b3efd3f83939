//! Starting threads and writing in them: replies in conversation order, edits that keep
//! earlier versions (up to `limits.max_revisions`), deletions that leave the replies in place.
//!
//! A locked thread takes no new writing from anyone but its moderators: no replies, and no
//! edits of the posts already in it (`FORBIDDEN`, as for replying: the author is not
//! allowed, whatever the state of the post). Its authors may still delete their own posts.

use crate::outbox::event::{ChannelMessage, OutboxEvent};
use crate::outbox::write as outbox;
use sea_orm::sea_query::{Asterisk, Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, FromQueryResult, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::visibility::{access_for, may_moderate};
use super::{insert_thread, NewThread};
use crate::auth::Actor;
use crate::db::{begin_write, now};
use crate::domain::{MarkdownBody, Title};
use crate::entities::thread::{self, Context};
use crate::entities::{commitment, post, post_revision, user};
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::services::account_limits::{self, Action};
use crate::services::groups::{self, Access};
use crate::services::page::{Cursor, Page, PageRequest};
use crate::services::{field, Ctx};

pub const TITLE_MIN: usize = 5;
pub const TITLE_MAX: usize = 200;
pub const BODY_MAX: usize = 20_000;
/// Replies nest at most this deep; a reply to a post this deep becomes its sibling.
pub const MAX_DEPTH: i32 = 5;
/// Digits of each sequence number in a sort key: fixed, so that the keys' text order is
/// conversation order (each post right after its parent, before the parent's later
/// siblings), whatever the database's collation does with the dots.
const SEQ_DIGITS: usize = 10;

/// Where a new thread goes: exactly one of a working group or a commitment.
pub enum Place {
    WorkingGroup(Uuid),
    Commitment(Uuid),
}

fn parse_body(ctx: &Ctx, raw: &str) -> AppResult<MarkdownBody> {
    field("body", ctx.markdown.body(raw, 1, BODY_MAX))
}

/// `FORBIDDEN` unless the actor may write in the thread: a group's threads take posts from
/// its active members only (a private group's are not even found by others), and a locked
/// thread takes none except from its moderators.
fn require_may_post(actor: &Actor, t: &thread::Model, access: Option<&Access>) -> AppResult<()> {
    if let Some(a) = access {
        if !a.is_member() && !a.admin {
            return Err(AppError::Forbidden(
                "only the group's members write in its threads".into(),
            ));
        }
    }
    require_unlocked(actor, t, access)
}

/// `FORBIDDEN` when `t` is locked, unless the actor moderates it.
fn require_unlocked(actor: &Actor, t: &thread::Model, access: Option<&Access>) -> AppResult<()> {
    if t.locked && !may_moderate(Some(actor), access) {
        return Err(AppError::Forbidden(match &t.lock_reason {
            Some(r) => format!("this thread is locked: {r}"),
            None => "this thread is locked".into(),
        }));
    }
    Ok(())
}

/// Writes a post in `t`, whose row the caller holds locked, as a reply to `parent` (or to
/// the thread): takes the thread's next sequence number, and moves its post count and last
/// activity in the same statement.
async fn insert_post(
    tx: &DatabaseTransaction,
    t: &thread::Model,
    parent: Option<&post::Model>,
    author_id: Uuid,
    body: &MarkdownBody,
) -> AppResult<post::Model> {
    let seq = t.next_post_seq;
    let own = format!("{seq:0width$}", width = SEQ_DIGITS);
    // Deeper than allowed: a sibling of the deepest post, under its parent.
    let (parent_id, depth, prefix) = match parent {
        None => (None, 1, None),
        Some(p) if p.depth < MAX_DEPTH => (Some(p.id), p.depth + 1, Some(p.sort_key.clone())),
        Some(p) => (
            p.parent_id,
            p.depth,
            p.sort_key
                .rsplit_once('.')
                .map(|(head, _)| head.to_string()),
        ),
    };
    let sort_key = match prefix {
        Some(head) => format!("{head}.{own}"),
        None => own,
    };
    let at = now();
    let created = post::ActiveModel {
        id: Set(Uuid::now_v7()),
        thread_id: Set(t.id),
        parent_id: Set(parent_id),
        author_id: Set(author_id),
        depth: Set(depth),
        sort_key: Set(sort_key),
        body: Set(body.source().to_string()),
        body_html: Set(body.html().to_string()),
        hidden: Set(false),
        deleted_at: Set(None),
        edited_at: Set(None),
        thumbs_up_count: Set(0),
        heart_count: Set(0),
        lightbulb_count: Set(0),
        question_count: Set(0),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(tx)
    .await?;
    thread::Entity::update_many()
        .col_expr(
            thread::Column::PostCount,
            Expr::col(thread::Column::PostCount).add(1),
        )
        .col_expr(
            thread::Column::NextPostSeq,
            Expr::col(thread::Column::NextPostSeq).add(1),
        )
        .col_expr(thread::Column::LastActivityAt, Expr::value(at))
        .col_expr(thread::Column::UpdatedAt, Expr::value(at))
        .filter(thread::Column::Id.eq(t.id))
        .exec(tx)
        .await?;
    Ok(created)
}

/// Starts a thread on a commitment, or in a working group the actor is an active member
/// of (verified accounts); the body is its first post. Returns the thread and that post.
pub async fn start_thread(
    ctx: &Ctx,
    actor: &Actor,
    place: Place,
    title: &str,
    body: &str,
) -> AppResult<(thread::Model, post::Model)> {
    actor.require_verified()?;
    let title = field("title", Title::parse(title, TITLE_MIN, TITLE_MAX))?;
    let body = parse_body(ctx, body)?;
    let tx = begin_write(&ctx.db).await?;
    account_limits::check(ctx, &tx, actor, Action::Thread).await?;
    let new = match place {
        Place::WorkingGroup(g) => {
            let access = groups::access(&tx, Some(actor), g).await?;
            if !access.can_see_inside() {
                return Err(AppError::NotFound("working group"));
            }
            if !access.is_member() {
                return Err(AppError::Forbidden(
                    "only the group's active members start threads in it".into(),
                ));
            }
            NewThread {
                context: Context::WorkingGroup,
                commitment_id: None,
                working_group_id: Some(g),
                suggestion_id: None,
                update_id: None,
                author_id: actor.id,
                title: title.as_str().to_string(),
            }
        }
        Place::Commitment(c) => {
            commitment::Entity::find_by_id(c)
                .one(&tx)
                .await?
                .ok_or(AppError::NotFound("commitment"))?;
            NewThread {
                context: Context::Commitment,
                commitment_id: Some(c),
                working_group_id: None,
                suggestion_id: None,
                update_id: None,
                author_id: actor.id,
                title: title.as_str().to_string(),
            }
        }
    };
    let t = insert_thread(&tx, new).await?;
    let first = insert_post(&tx, &t, None, actor.id, &body).await?;
    // A group thread is announced in its group's own channel.
    if let Some(g) = t.working_group_id {
        outbox::post_to_channels(&tx, &[g], ChannelMessage::ThreadStarted { thread_id: t.id })
            .await?;
    }
    let t = thread::Entity::find_by_id(t.id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("thread"))?;
    tx.commit().await?;
    ctx.events.publish(Event::PostAdded {
        thread_id: t.id,
        post_id: first.id,
    });
    Ok((t, first))
}

/// Replies to a thread, or to one of its posts (verified accounts who may write there).
pub async fn reply(
    ctx: &Ctx,
    actor: &Actor,
    thread_id: Uuid,
    parent_post_id: Option<Uuid>,
    body: &str,
) -> AppResult<post::Model> {
    actor.require_verified()?;
    let body = parse_body(ctx, body)?;
    let tx = begin_write(&ctx.db).await?;
    // The thread's row lock orders every writer of the thread: sequence numbers, the post
    // count and the last activity move one writer at a time.
    let t = thread::Entity::find_by_id(thread_id)
        .lock_exclusive()
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("thread"))?;
    let (t, access) = access_for(&tx, Some(actor), t).await?;
    require_may_post(actor, &t, access.as_ref())?;
    let parent = match parent_post_id {
        None => None,
        Some(p) => {
            let found = post::Entity::find_by_id(p)
                .one(&tx)
                .await?
                .filter(|p| p.thread_id == t.id)
                .ok_or_else(|| {
                    AppError::bad_input("parentPostId", "no such post in this thread")
                })?;
            Some(found)
        }
    };
    account_limits::check(ctx, &tx, actor, Action::Post).await?;
    let created = insert_post(&tx, &t, parent.as_ref(), actor.id, &body).await?;
    // One row: the notification worker tells the author replied to and the thread's
    // other writers.
    outbox::enqueue_event(
        &tx,
        &OutboxEvent::PostAdded {
            thread_id: t.id,
            post_id: created.id,
            parent_post_id: parent.as_ref().map(|p| p.id),
            actor_id: Some(actor.id),
        },
    )
    .await?;
    tx.commit().await?;
    ctx.events.publish(Event::PostAdded {
        thread_id: t.id,
        post_id: created.id,
    });
    Ok(created)
}

/// The actor's own post, locked, with its thread and the actor's access to the thread's
/// group (if any).
async fn own_post_locked(
    tx: &DatabaseTransaction,
    actor: &Actor,
    id: Uuid,
    verb: &str,
) -> AppResult<(post::Model, thread::Model, Option<Access>)> {
    let p = post::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or(AppError::NotFound("post"))?;
    // Reading it needs access to its thread; a private group's post is not found.
    let (t, access) = access_for(
        tx,
        Some(actor),
        thread::Entity::find_by_id(p.thread_id)
            .one(tx)
            .await?
            .ok_or(AppError::NotFound("post"))?,
    )
    .await
    .map_err(|e| match e {
        AppError::NotFound(_) => AppError::NotFound("post"),
        other => other,
    })?;
    if p.author_id != actor.id {
        return Err(AppError::Forbidden(format!(
            "only the author {verb} a post"
        )));
    }
    Ok((p, t, access))
}

/// The author edits a post; the version replaced is kept, and `edited_at` is set.
pub async fn edit(ctx: &Ctx, actor: &Actor, id: Uuid, body: &str) -> AppResult<post::Model> {
    actor.require_verified()?;
    let body = parse_body(ctx, body)?;
    let tx = begin_write(&ctx.db).await?;
    let (p, t, access) = own_post_locked(&tx, actor, id, "edits").await?;
    if p.deleted_at.is_some() {
        return Err(AppError::Conflict("a deleted post cannot be edited".into()));
    }
    require_unlocked(actor, &t, access.as_ref())?;
    if p.body == body.source() {
        return Ok(p);
    }
    // An edit is a write: it has a budget, and the history it adds to is capped.
    account_limits::check(ctx, &tx, actor, Action::Edit).await?;
    let at = now();
    post_revision::ActiveModel {
        id: Set(Uuid::now_v7()),
        post_id: Set(p.id),
        body: Set(p.body.clone()),
        created_at: Set(at),
    }
    .insert(&tx)
    .await?;
    crate::services::revisions::keep_newest::<post_revision::Entity, _>(
        &tx,
        post_revision::Column::PostId,
        post_revision::Column::Id,
        p.id,
        ctx.settings.limits.max_revisions,
    )
    .await?;
    let mut m = p.into_active_model();
    m.body = Set(body.source().to_string());
    m.body_html = Set(body.html().to_string());
    m.edited_at = Set(Some(at));
    m.updated_at = Set(at);
    let updated = m.update(&tx).await?;
    tx.commit().await?;
    Ok(updated)
}

/// The author deletes a post: its text and earlier versions go, its place in the
/// conversation and its replies stay. Deleting it again changes nothing.
pub async fn delete(ctx: &Ctx, actor: &Actor, id: Uuid) -> AppResult<post::Model> {
    let tx = begin_write(&ctx.db).await?;
    let (p, _, _) = own_post_locked(&tx, actor, id, "deletes").await?;
    if p.deleted_at.is_some() {
        return Ok(p);
    }
    post_revision::Entity::delete_many()
        .filter(post_revision::Column::PostId.eq(p.id))
        .exec(&tx)
        .await?;
    let at = now();
    let mut m = p.into_active_model();
    m.body = Set(String::new());
    m.body_html = Set(String::new());
    m.deleted_at = Set(Some(at));
    m.updated_at = Set(at);
    let updated = m.update(&tx).await?;
    tx.commit().await?;
    Ok(updated)
}

/// The public profiles of `ids` (authors of a page), in one statement.
pub async fn profiles(ctx: &Ctx, ids: Vec<Uuid>) -> AppResult<Vec<user::Profile>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .into_partial_model::<user::Profile>()
        .all(&ctx.db)
        .await?)
}

/// A page of a thread's posts in conversation order. The cursor is the sort key, which a
/// new post never takes from an existing one: paging on while posts arrive neither
/// repeats nor skips a post that was already there. Only posts `viewer` may read are listed
/// (none of a private group's thread from outside it).
pub async fn list(
    ctx: &Ctx,
    viewer: Option<&Actor>,
    thread_id: Uuid,
    page: &PageRequest,
) -> AppResult<Page<post::Model>> {
    let mut q = post::Entity::find()
        .filter(post::Column::ThreadId.eq(thread_id))
        .filter(crate::services::access::readable_posts(viewer));
    if let Some(after) = &page.after {
        q = q.filter(post::Column::SortKey.gt(after.key_str()?));
    }
    let rows = q
        .order_by_asc(post::Column::SortKey)
        .limit(page.first + 1)
        .all(&ctx.db)
        .await?;
    Ok(Page::from_rows(rows, page.first, cursor))
}

/// A post's place in conversation order, as a page cursor.
pub fn cursor(p: &post::Model) -> Cursor {
    Cursor {
        k: Some(json!(p.sort_key)),
        id: p.id,
    }
}

/// The first `n` posts of each of `threads` in conversation order, in one statement (a
/// row number per thread), for a page of threads that shows their first posts.
pub async fn first_posts<C: ConnectionTrait>(
    conn: &C,
    threads: &[Uuid],
    n: u64,
) -> Result<Vec<post::Model>, sea_orm::DbErr> {
    let inner = post::Entity::find()
        .filter(post::Column::ThreadId.is_in(threads.to_vec()))
        .expr_as(
            Expr::cust(r#"ROW_NUMBER() OVER (PARTITION BY "thread_id" ORDER BY "sort_key" ASC)"#),
            "post_rank",
        )
        .into_query();
    let outer = Query::select()
        .column(Asterisk)
        .from_subquery(inner, "ranked")
        .and_where(Expr::col("post_rank").lte(i64::try_from(n).unwrap_or(i64::MAX)))
        .order_by("thread_id", sea_orm::Order::Asc)
        .order_by("post_rank", sea_orm::Order::Asc)
        .to_owned();
    post::Model::find_by_statement(conn.get_database_backend().build(&outer))
        .all(conn)
        .await
}
