//! Reading and listing threads; locking and pinning them, each on the moderation log.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Asterisk, Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
};
use serde_json::json;
use uuid::Uuid;

use super::visibility::{access_for, may_moderate, readable};
use crate::auth::Actor;
use crate::db::{begin_write, now};
use crate::entities::moderation_action::Action;
use crate::entities::report::SubjectType;
use crate::entities::thread::{self, Context};
use crate::entities::thread_follow;
use crate::error::{AppError, AppResult};
use crate::services::access::{self, Access};
use crate::services::moderation_log::{self, Entry};
use crate::services::page::{Cursor, Page, PageRequest};
use crate::services::{toggle, Ctx};

/// Longest lock reason kept.
pub const REASON_MAX: usize = 500;

/// Narrows a list of threads. With no filter the list holds the discussions people
/// started (on commitments and in groups); a suggestion's or an update's thread is
/// reached through it.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub working_group_id: Option<Uuid>,
    /// Threads started on the commitment (not those of its suggestions or updates).
    pub commitment_id: Option<Uuid>,
    pub suggestion_id: Option<Uuid>,
}

/// The thread if the viewer may read it, with the viewer's access to its group.
pub async fn find(
    ctx: &Ctx,
    actor: Option<&Actor>,
    id: Uuid,
) -> AppResult<Option<(thread::Model, Option<Access>)>> {
    match readable(&ctx.db, actor, id).await {
        Ok(found) => Ok(Some(found)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn filtered(actor: Option<&Actor>, filter: &Filter) -> Select<thread::Entity> {
    let mut q = thread::Entity::find().filter(access::readable_threads(actor));
    if let Some(g) = filter.working_group_id {
        q = q
            .filter(thread::Column::WorkingGroupId.eq(g))
            .filter(thread::Column::Context.eq(Context::WorkingGroup));
    }
    if let Some(c) = filter.commitment_id {
        q = q
            .filter(thread::Column::CommitmentId.eq(c))
            .filter(thread::Column::Context.eq(Context::Commitment));
    }
    if let Some(s) = filter.suggestion_id {
        q = q.filter(thread::Column::SuggestionId.eq(s));
    }
    if filter.working_group_id.is_none()
        && filter.commitment_id.is_none()
        && filter.suggestion_id.is_none()
    {
        q = q.filter(thread::Column::Context.is_in([Context::Commitment, Context::WorkingGroup]));
    }
    q
}

/// Whose threads a first page lists: several commitments' or several groups'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parent {
    Commitment,
    WorkingGroup,
}

/// The first `n` threads of each of `parents` in list order (pinned first, then the most
/// recently active), in one statement (a row number per parent), for a page of
/// commitments or groups that shows their threads. A group's threads are returned
/// whatever the group's visibility: the caller checks it per group.
pub async fn first_threads<C: ConnectionTrait>(
    conn: &C,
    parent: Parent,
    parents: &[Uuid],
    n: u64,
) -> Result<Vec<thread::Model>, sea_orm::DbErr> {
    let (column, context, partition) = match parent {
        Parent::Commitment => (
            thread::Column::CommitmentId,
            Context::Commitment,
            "commitment_id",
        ),
        Parent::WorkingGroup => (
            thread::Column::WorkingGroupId,
            Context::WorkingGroup,
            "working_group_id",
        ),
    };
    let inner = thread::Entity::find()
        .filter(column.is_in(parents.to_vec()))
        .filter(thread::Column::Context.eq(context))
        .expr_as(
            Expr::cust(format!(
                r#"ROW_NUMBER() OVER (PARTITION BY "{partition}" ORDER BY "pinned" DESC, "last_activity_at" DESC, "id" DESC)"#
            )),
            "thread_rank",
        )
        .into_query();
    let outer = Query::select()
        .column(Asterisk)
        .from_subquery(inner, "ranked")
        .and_where(Expr::col("thread_rank").lte(i64::try_from(n).unwrap_or(i64::MAX)))
        .order_by(partition, sea_orm::Order::Asc)
        .order_by("thread_rank", sea_orm::Order::Asc)
        .to_owned();
    thread::Model::find_by_statement(conn.get_database_backend().build(&outer))
        .all(conn)
        .await
}

/// A thread's place in its list, as a page cursor.
pub fn cursor(t: &thread::Model) -> Cursor {
    Cursor {
        k: Some(json!([t.pinned, t.last_activity_at.to_rfc3339()])),
        id: t.id,
    }
}

fn decode(after: &Cursor) -> AppResult<(bool, DateTime<Utc>)> {
    let bad = || AppError::bad_input("after", "not a cursor from this list");
    let k = after
        .k
        .as_ref()
        .and_then(|k| k.as_array())
        .ok_or_else(bad)?;
    let pinned = k.first().and_then(|p| p.as_bool()).ok_or_else(bad)?;
    let at = k
        .get(1)
        .and_then(|t| t.as_str())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .ok_or_else(bad)?
        .with_timezone(&Utc);
    Ok((pinned, at))
}

/// A page of the threads the viewer may see: pinned first, then the most recently active.
pub async fn list(
    ctx: &Ctx,
    actor: Option<&Actor>,
    filter: &Filter,
    page: &PageRequest,
) -> AppResult<Page<thread::Model>> {
    let mut q = filtered(actor, filter);
    if let Some(after) = &page.after {
        let (pinned, at) = decode(after)?;
        q = q.filter(
            Expr::tuple([
                Expr::col((thread::Entity, thread::Column::Pinned)),
                Expr::col((thread::Entity, thread::Column::LastActivityAt)),
                Expr::col((thread::Entity, thread::Column::Id)),
            ])
            .lt(Expr::tuple([
                Expr::value(pinned),
                Expr::value(at),
                Expr::value(after.id),
            ])),
        );
    }
    let rows = q
        .order_by_desc(thread::Column::Pinned)
        .order_by_desc(thread::Column::LastActivityAt)
        .order_by_desc(thread::Column::Id)
        .limit(page.first + 1)
        .all(&ctx.db)
        .await?;
    Ok(Page::from_rows(rows, page.first, cursor))
}

pub async fn count(ctx: &Ctx, actor: Option<&Actor>, filter: &Filter) -> AppResult<u64> {
    Ok(filtered(actor, filter).count(&ctx.db).await?)
}

/// A moderator's change to a thread.
#[derive(Debug, Clone)]
pub enum Change {
    Lock { reason: Option<String> },
    Unlock,
    Pin,
    Unpin,
}

/// Locks, unlocks, pins or unpins a thread (OFFICIAL and ADMIN accounts anywhere, a group's
/// organisers in its threads), and records it on the moderation log in the same
/// transaction. Asking for the state a thread is already in changes and records nothing.
pub async fn moderate(
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    change: Change,
) -> AppResult<thread::Model> {
    actor.require_verified()?;
    let reason = match &change {
        Change::Lock { reason: Some(r) } => {
            let r = r.split_whitespace().collect::<Vec<_>>().join(" ");
            if r.chars().count() > REASON_MAX {
                return Err(AppError::bad_input(
                    "reason",
                    format!("a reason is at most {REASON_MAX} characters"),
                ));
            }
            (!r.is_empty()).then_some(r)
        }
        _ => None,
    };
    let tx = begin_write(&ctx.db).await?;
    let t = thread::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("thread"))?;
    let (t, access) = access_for(&tx, Some(actor), t).await?;
    if !may_moderate(Some(actor), access.as_ref()) {
        return Err(AppError::Forbidden(
            "only officials, administrators and the group's organisers moderate threads".into(),
        ));
    }
    let (action, changed) = match change {
        Change::Lock { .. } => (Action::Lock, !t.locked || t.lock_reason != reason),
        Change::Unlock => (Action::Unlock, t.locked),
        Change::Pin => (Action::Pin, !t.pinned),
        Change::Unpin => (Action::Unpin, t.pinned),
    };
    if !changed {
        return Ok(t);
    }
    let group = t.working_group_id;
    let mut m = t.into_active_model();
    match action {
        Action::Lock => {
            m.locked = Set(true);
            m.lock_reason = Set(reason.clone());
        }
        Action::Unlock => {
            m.locked = Set(false);
            m.lock_reason = Set(None);
        }
        Action::Pin => m.pinned = Set(true),
        _ => m.pinned = Set(false),
    }
    m.updated_at = Set(now());
    let updated = m.update(&tx).await?;
    moderation_log::record(
        &tx,
        Entry {
            actor_id: actor.id,
            action,
            subject_type: SubjectType::Thread,
            subject_id: id,
            working_group_id: group,
            reason: reason.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Follows (or unfollows) a thread, to hear of its new posts; only someone who may read the
/// thread may follow it (`NOT_FOUND` otherwise, as for reading). Idempotent: the counter
/// moves only when the row really appears or disappears.
pub async fn set_following(
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    follow: bool,
) -> AppResult<thread::Model> {
    actor.require_verified()?;
    let tx = begin_write(&ctx.db).await?;
    let t = thread::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("thread"))?;
    access_for(&tx, Some(actor), t).await?;
    let row = thread_follow::ActiveModel {
        thread_id: Set(id),
        user_id: Set(actor.id),
        created_at: Set(now()),
    };
    if toggle::set_row::<thread_follow::Entity, _>(&tx, follow, row, (id, actor.id)).await? {
        toggle::bump::<thread::Entity, _, _>(
            &tx,
            thread::Column::Id,
            id,
            thread::Column::FollowerCount,
            if follow { 1 } else { -1 },
        )
        .await?;
    }
    let updated = thread::Entity::find_by_id(id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("thread"))?;
    tx.commit().await?;
    Ok(updated)
}
