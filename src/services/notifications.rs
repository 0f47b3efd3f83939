//! In-app notifications, the reading side: a person's list, the unread count, marking
//! read; and the chunked reads the outbox's fan-out and the digest share. The outbox
//! worker writes notifications (`outbox::notify`); their texts are rendered when read
//! (`outbox::render`).

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::auth::Actor;
use crate::db::{begin_write, now};
use crate::entities::notification;
use crate::entities::{suggestion_follow, support};
use crate::error::{AppError, AppResult};
use crate::services::page::{Cursor, Page, PageRequest};
use crate::services::Ctx;

/// Rows per INSERT statement of a fan-out: well under both databases' bound-parameter
/// limits, and large enough that 10,000 recipients take ten statements.
pub const CHUNK: usize = crate::outbox::CHUNK;

/// `query` over `ids`, `CHUNK` ids per statement: the batched reads of a fan-out and of
/// the digest, which must cost statements by the thousand people, not one per person.
pub async fn in_chunks<C, T, F>(conn: &C, ids: &[Uuid], query: F) -> Result<Vec<T>, sea_orm::DbErr>
where
    C: ConnectionTrait,
    T: sea_orm::TryGetableMany,
    F: Fn(&[Uuid]) -> sea_orm::Selector<sea_orm::SelectGetableTuple<T>>,
{
    let mut out = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        out.extend(query(chunk).all(conn).await?);
    }
    Ok(out)
}

/// The ids in column `col` of the rows `select` finds.
pub async fn users_of<C: ConnectionTrait, E: EntityTrait>(
    conn: &C,
    select: sea_orm::Select<E>,
    col: impl sea_orm::ColumnTrait,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    select
        .select_only()
        .column(col)
        .into_tuple::<Uuid>()
        .all(conn)
        .await
}

/// The people who hear of a suggestion's news: its followers and its supporters (a person
/// in both is listed twice; the fan-out keeps one).
pub async fn suggestion_audience<C: ConnectionTrait>(
    conn: &C,
    suggestion_id: Uuid,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    let mut people = users_of(
        conn,
        suggestion_follow::Entity::find()
            .filter(suggestion_follow::Column::SuggestionId.eq(suggestion_id)),
        suggestion_follow::Column::UserId,
    )
    .await?;
    people.extend(
        users_of(
            conn,
            support::Entity::find().filter(support::Column::SuggestionId.eq(suggestion_id)),
            support::Column::UserId,
        )
        .await?,
    );
    Ok(people)
}

/// A page of the viewer's notifications, newest first (ids are UUID v7).
pub async fn list(
    ctx: &Ctx,
    actor: &Actor,
    page: &PageRequest,
    unread_only: bool,
) -> AppResult<Page<notification::Model>> {
    let mut q = notification::Entity::find()
        .filter(notification::Column::RecipientId.eq(actor.id))
        .order_by_desc(notification::Column::Id)
        .limit(page.first + 1);
    if unread_only {
        q = q.filter(notification::Column::ReadAt.is_null());
    }
    if let Some(after) = &page.after {
        q = q.filter(notification::Column::Id.lt(after.id));
    }
    let rows = q.all(&ctx.db).await?;
    Ok(Page::from_rows(rows, page.first, |n| Cursor {
        k: None,
        id: n.id,
    }))
}

/// How many notifications the list would hold in all.
pub async fn count(ctx: &Ctx, actor_id: Uuid, unread_only: bool) -> AppResult<u64> {
    let mut q = notification::Entity::find().filter(notification::Column::RecipientId.eq(actor_id));
    if unread_only {
        q = q.filter(notification::Column::ReadAt.is_null());
    }
    Ok(q.count(&ctx.db).await?)
}

/// One of the viewer's own notifications; someone else's is not found.
pub async fn find_own(
    ctx: &Ctx,
    actor_id: Uuid,
    id: Uuid,
) -> AppResult<Option<notification::Model>> {
    Ok(notification::Entity::find_by_id(id)
        .filter(notification::Column::RecipientId.eq(actor_id))
        .one(&ctx.db)
        .await?)
}

/// What to mark read.
pub enum Mark {
    Ids(Vec<Uuid>),
    All,
}

/// Marks the viewer's own notifications read (others' IDs are ignored: they are not the
/// viewer's to mark); ones already read keep their first `read_at`. Returns the unread
/// count after.
pub async fn mark_read(ctx: &Ctx, actor: &Actor, mark: Mark) -> AppResult<u64> {
    let tx = begin_write(&ctx.db).await?;
    let mut q = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(now()))
        .filter(notification::Column::RecipientId.eq(actor.id))
        .filter(notification::Column::ReadAt.is_null());
    if let Mark::Ids(ids) = mark {
        if ids.len() > 100 {
            return Err(AppError::bad_input("ids", "at most 100 IDs at a time"));
        }
        q = q.filter(notification::Column::Id.is_in(ids));
    }
    q.exec(&tx).await?;
    let unread = notification::Entity::find()
        .filter(notification::Column::RecipientId.eq(actor.id))
        .filter(notification::Column::ReadAt.is_null())
        .count(&tx)
        .await?;
    tx.commit().await?;
    Ok(unread)
}
