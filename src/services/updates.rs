//! Official updates on a commitment (the plan's blog posts): published by officials, each
//! with its own discussion thread, optionally moving a milestone on, and answered with
//! suggestions.

use std::collections::HashMap;

use sea_orm::sea_query::{Asterisk, Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, FromQueryResult, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::discussions::{insert_thread, NewThread};
use super::page::{Cursor, Page, PageRequest};
use super::{field, toggle, Ctx};
use crate::auth::Actor;
use crate::db::{begin_write, now};
use crate::domain::Title;
use crate::entities::commitment::Status as MilestoneStatus;
use crate::entities::user::Role;
use crate::entities::{commitment, commitment_update, milestone, thread};
use crate::error::{AppError, AppResult};
use crate::outbox::event::OutboxEvent;
use crate::outbox::write as outbox;

pub const TITLE_MAX: usize = 300;
pub const BODY_MAX: usize = 20_000;

/// An update to publish.
pub struct NewUpdate {
    pub commitment_id: Uuid,
    pub title: String,
    pub body: String,
    /// A milestone of the same commitment the update is about.
    pub milestone_id: Option<Uuid>,
    /// The milestone's new status; needs `milestone_id`.
    pub milestone_status: Option<MilestoneStatus>,
}

/// A published update and the thread opened for it.
pub struct Published {
    pub update: commitment_update::Model,
    pub thread: thread::Model,
}

/// Publishes an update (OFFICIAL and ADMIN, verified): the update, its thread, the
/// milestone's new status and the followers' notification event, in one transaction.
pub async fn publish(ctx: &Ctx, actor: &Actor, input: NewUpdate) -> AppResult<Published> {
    actor.require_role(&[Role::Official, Role::Admin])?;
    actor.require_verified()?;
    let title = field("title", Title::parse(&input.title, 1, TITLE_MAX))?;
    let body = field("body", ctx.markdown.body(&input.body, 1, BODY_MAX))?;
    if input.milestone_status.is_some() && input.milestone_id.is_none() {
        return Err(AppError::bad_input(
            "milestoneStatus",
            "a new milestone status needs milestoneId",
        ));
    }
    let tx = begin_write(&ctx.db).await?;
    let c = commitment::Entity::find_by_id(input.commitment_id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("commitment"))?;
    if let Some(milestone_id) = input.milestone_id {
        let m = milestone::Entity::find_by_id(milestone_id)
            .lock_exclusive()
            .one(&tx)
            .await?
            .filter(|m| m.commitment_id == c.id)
            .ok_or_else(|| {
                AppError::bad_input("milestoneId", "not a milestone of this commitment")
            })?;
        if let Some(status) = input.milestone_status {
            let mut a = m.into_active_model();
            a.status = Set(status);
            a.updated_at = Set(now());
            a.update(&tx).await?;
        }
    }
    let update = commitment_update::ActiveModel {
        id: Set(Uuid::now_v7()),
        commitment_id: Set(c.id),
        author_id: Set(actor.id),
        title: Set(title.as_str().to_string()),
        body: Set(body.source().to_string()),
        body_html: Set(body.html().to_string()),
        milestone_id: Set(input.milestone_id),
        milestone_status: Set(input.milestone_status),
        suggestion_count: Set(0),
        hidden: Set(false),
        published_at: Set(now()),
    }
    .insert(&tx)
    .await?;
    let thread = insert_thread(
        &tx,
        NewThread {
            context: thread::Context::Update,
            commitment_id: Some(c.id),
            working_group_id: None,
            suggestion_id: None,
            update_id: Some(update.id),
            author_id: actor.id,
            title: update.title.clone(),
        },
    )
    .await?;
    // One row whatever the audience: the notification worker fans it out to the
    // commitment's followers.
    outbox::enqueue_event(
        &tx,
        &OutboxEvent::UpdatePublished {
            update_id: update.id,
            commitment_id: c.id,
            author_id: Some(actor.id),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Published { update, thread })
}

pub async fn find(ctx: &Ctx, id: Uuid) -> AppResult<Option<commitment_update::Model>> {
    Ok(commitment_update::Entity::find_by_id(id)
        .one(&ctx.db)
        .await?)
}

/// Checks that a new suggestion on `commitment_id` may answer `update_id`, and counts it
/// on the update; in the suggestion's transaction.
pub async fn answered_by_suggestion(
    tx: &DatabaseTransaction,
    update_id: Uuid,
    commitment_id: Uuid,
) -> AppResult<()> {
    let found = commitment_update::Entity::find_by_id(update_id)
        .one(tx)
        .await?;
    if found.is_none_or(|u| u.commitment_id != commitment_id) {
        return Err(AppError::bad_input(
            "inReplyToUpdateId",
            "not an update of this commitment",
        ));
    }
    toggle::bump::<commitment_update::Entity, _, _>(
        tx,
        commitment_update::Column::Id,
        update_id,
        commitment_update::Column::SuggestionCount,
        1,
    )
    .await
}

fn cursor(u: &commitment_update::Model) -> Cursor {
    Cursor { k: None, id: u.id }
}

/// A commitment's updates, newest first (IDs are UUID v7: their order is publication order).
pub async fn list(
    ctx: &Ctx,
    commitment_id: Uuid,
    page: &PageRequest,
) -> AppResult<Page<commitment_update::Model>> {
    let mut q = commitment_update::Entity::find()
        .filter(commitment_update::Column::CommitmentId.eq(commitment_id));
    if let Some(after) = &page.after {
        q = q.filter(commitment_update::Column::Id.lt(after.id));
    }
    let rows = q
        .order_by_desc(commitment_update::Column::Id)
        .limit(page.first + 1)
        .all(&ctx.db)
        .await?;
    Ok(Page::from_rows(rows, page.first, cursor))
}

/// The first page of `list` for each of `commitments`, `n` rows each, in one statement (a
/// row number per commitment), for a page of commitments that shows their updates.
pub async fn first_of_commitments<C: ConnectionTrait>(
    conn: &C,
    commitments: &[Uuid],
    n: u64,
) -> Result<Vec<commitment_update::Model>, sea_orm::DbErr> {
    let inner = commitment_update::Entity::find()
        .filter(commitment_update::Column::CommitmentId.is_in(commitments.to_vec()))
        .expr_as(
            Expr::cust(r#"ROW_NUMBER() OVER (PARTITION BY "commitment_id" ORDER BY "id" DESC)"#),
            "update_rank",
        )
        .into_query();
    let outer = Query::select()
        .column(Asterisk)
        .from_subquery(inner, "ranked")
        .and_where(Expr::col("update_rank").lte(i64::try_from(n).unwrap_or(i64::MAX)))
        .order_by("commitment_id", sea_orm::Order::Asc)
        .order_by("update_rank", sea_orm::Order::Asc)
        .to_owned();
    commitment_update::Model::find_by_statement(conn.get_database_backend().build(&outer))
        .all(conn)
        .await
}

/// Builds a page from `first_of_commitments`' rows of one commitment.
pub fn page_of(rows: Vec<commitment_update::Model>, first: u64) -> Page<commitment_update::Model> {
    Page::from_rows(rows, first, cursor)
}

pub async fn count(ctx: &Ctx, commitment_id: Uuid) -> AppResult<u64> {
    Ok(commitment_update::Entity::find()
        .filter(commitment_update::Column::CommitmentId.eq(commitment_id))
        .count(&ctx.db)
        .await?)
}

/// The discussion thread of an update.
pub async fn thread_of_update<C: ConnectionTrait>(
    conn: &C,
    update_id: Uuid,
) -> AppResult<Option<thread::Model>> {
    Ok(thread::Entity::find()
        .filter(thread::Column::UpdateId.eq(update_id))
        .one(conn)
        .await?)
}

/// The threads of many updates in one statement, by update ID (for a loader).
pub async fn threads_of_updates<C: ConnectionTrait>(
    conn: &C,
    update_ids: &[Uuid],
) -> Result<HashMap<Uuid, thread::Model>, sea_orm::DbErr> {
    let rows = thread::Entity::find()
        .filter(thread::Column::UpdateId.is_in(update_ids.to_vec()))
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|t| t.update_id.map(|u| (u, t)))
        .collect())
}
