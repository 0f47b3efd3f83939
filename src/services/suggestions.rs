//! Suggestions on commitments, their supports and followers, and the official responses that
//! move them through the workflow, recorded in the public outcome log.

use std::sync::Arc;

use chrono::Duration;
use sea_orm::sea_query::{
    Expr, ExprTrait, OnConflict, Query, QueryStatementBuilder, SelectStatement,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseTransaction, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Select,
};
use serde_json::json;
use uuid::Uuid;

use super::columns::{decoded_once, positional, ColumnSet, Columns};
use super::page::{Cursor, Page, PageRequest};
use super::{account_limits, field, toggle, Ctx};
use crate::auth::Actor;
use crate::db::{begin_write, now};
use crate::domain::Title;
use crate::entities::suggestion::{self, Status};
use crate::entities::user::Role;
use crate::entities::{
    commitment, official_response, outcome, suggestion_follow, suggestion_revision, support,
    thread, user,
};
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::outbox::event::{ChannelMessage, OutboxEvent};
use crate::outbox::write as outbox;

pub const TITLE_MIN: usize = 5;
pub const TITLE_MAX: usize = 200;
pub const BODY_MAX: usize = 20_000;
/// How far back TRENDING counts supports.
pub const TRENDING_DAYS: i64 = 7;
pub const OUTCOME_RESPONSE: &str = "OFFICIAL_RESPONSE";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    Top,
    New,
    Trending,
    LongestWaiting,
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub commitment_id: Option<Uuid>,
    pub status: Option<Status>,
    pub author_id: Option<Uuid>,
    pub awaiting_response: Option<bool>,
    /// Only those written in reply to this official update.
    pub in_reply_to_update_id: Option<Uuid>,
}

pub struct NewResponse {
    pub suggestion_id: Uuid,
    pub body: Option<String>,
    pub new_status: Option<Status>,
    pub duplicate_of_id: Option<Uuid>,
}

pub struct Published {
    pub response: official_response::Model,
    pub suggestion: suggestion::Model,
    pub moved_support_count: u64,
    pub moved_follower_count: u64,
}

async fn load<C: ConnectionTrait>(conn: &C, id: Uuid) -> AppResult<suggestion::Model> {
    suggestion::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or(AppError::NotFound("suggestion"))
}

/// Reads a suggestion and holds its row until the transaction ends (`FOR UPDATE`; SQLite's
/// `BEGIN IMMEDIATE` already serialises writers). Every write that checks the status or moves
/// a counter starts here, so on PostgreSQL's READ COMMITTED the check and the write see the
/// same row, and a writer that waited sees what the one before it committed.
async fn load_locked(tx: &DatabaseTransaction, id: Uuid) -> AppResult<suggestion::Model> {
    suggestion::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or(AppError::NotFound("suggestion"))
}

/// Locks two suggestions in ascending id order, the one order every transaction uses, so
/// that "A duplicates B" and "B duplicates A" queue behind each other instead of deadlocking.
async fn lock_pair(
    tx: &DatabaseTransaction,
    id: Uuid,
    other: Uuid,
) -> AppResult<(Option<suggestion::Model>, Option<suggestion::Model>)> {
    let lock = |id| suggestion::Entity::find_by_id(id).lock_exclusive().one(tx);
    if id < other {
        let first = lock(id).await?;
        Ok((first, lock(other).await?))
    } else {
        let first = lock(other).await?;
        Ok((lock(id).await?, first))
    }
}

pub async fn find(ctx: &Ctx, id: Uuid) -> AppResult<Option<suggestion::Model>> {
    Ok(suggestion::Entity::find_by_id(id).one(&ctx.db).await?)
}

async fn add_follow(
    tx: &DatabaseTransaction,
    suggestion_id: Uuid,
    user_id: Uuid,
) -> AppResult<bool> {
    toggle::add_row::<suggestion_follow::Entity, _>(
        tx,
        suggestion_follow::ActiveModel {
            suggestion_id: Set(suggestion_id),
            user_id: Set(user_id),
            created_at: Set(now()),
        },
    )
    .await
}

async fn bump(
    tx: &DatabaseTransaction,
    id: Uuid,
    col: suggestion::Column,
    delta: i32,
) -> AppResult<()> {
    toggle::bump::<suggestion::Entity, _, _>(tx, suggestion::Column::Id, id, col, delta).await
}

pub async fn create(
    ctx: &Ctx,
    actor: &Actor,
    commitment_id: Uuid,
    title: &str,
    body: &str,
    in_reply_to_update_id: Option<Uuid>,
) -> AppResult<suggestion::Model> {
    actor.require_verified()?;
    let title = field("title", Title::parse(title, TITLE_MIN, TITLE_MAX))?;
    let body = field("body", ctx.markdown.body(body, 1, BODY_MAX))?;
    let tx = begin_write(&ctx.db).await?;
    let c = commitment::Entity::find_by_id(commitment_id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("commitment"))?;
    if c.status == commitment::Status::Withdrawn {
        return Err(AppError::Conflict(
            "this commitment was withdrawn and takes no new suggestions".into(),
        ));
    }
    if let Some(update_id) = in_reply_to_update_id {
        super::updates::answered_by_suggestion(&tx, update_id, commitment_id).await?;
    }
    account_limits::check(ctx, &tx, actor, account_limits::Action::Suggestion).await?;
    let at = now();
    let created = suggestion::ActiveModel {
        id: Set(Uuid::now_v7()),
        commitment_id: Set(commitment_id),
        author_id: Set(actor.id),
        title: Set(title.as_str().to_string()),
        body: Set(body.source().to_string()),
        body_html: Set(body.html().to_string()),
        status: Set(Status::Submitted),
        support_count: Set(0),
        follower_count: Set(1),
        trending_score: Set(0),
        awaiting_response: Set(true),
        responded_at: Set(None),
        duplicate_of_id: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
        in_reply_to_update_id: Set(in_reply_to_update_id),
        hidden: Set(false),
    }
    .insert(&tx)
    .await?;
    add_follow(&tx, created.id, actor.id).await?;
    // Every suggestion has its own discussion, created with it.
    super::discussions::insert_thread(
        &tx,
        super::discussions::NewThread {
            context: crate::entities::thread::Context::Suggestion,
            commitment_id: Some(commitment_id),
            working_group_id: None,
            suggestion_id: Some(created.id),
            update_id: None,
            author_id: actor.id,
            title: created.title.clone(),
        },
    )
    .await?;
    // One row: the notification worker fans it out to the commitment's followers.
    outbox::enqueue_event(
        &tx,
        &OutboxEvent::SuggestionCreated {
            suggestion_id: created.id,
            commitment_id,
            actor_id: Some(actor.id),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// The author edits while the suggestion is still SUBMITTED; the version replaced is kept.
pub async fn update(
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    title: Option<&str>,
    body: Option<&str>,
) -> AppResult<suggestion::Model> {
    actor.require_verified()?;
    let title = title
        .map(|t| field("title", Title::parse(t, TITLE_MIN, TITLE_MAX)))
        .transpose()?;
    let body = body
        .map(|b| field("body", ctx.markdown.body(b, 1, BODY_MAX)))
        .transpose()?;
    let tx = begin_write(&ctx.db).await?;
    let s = load_locked(&tx, id).await?;
    if s.author_id != actor.id {
        return Err(AppError::Forbidden(
            "only the author edits a suggestion".into(),
        ));
    }
    if s.status != Status::Submitted {
        return Err(AppError::Conflict(format!(
            "a suggestion can be edited only while SUBMITTED; this one is {}",
            s.status.as_str()
        )));
    }
    if title.is_none() && body.is_none() {
        return Ok(s);
    }
    // An edit is a write: it has a budget, and the history it adds to is capped.
    account_limits::check(ctx, &tx, actor, account_limits::Action::Edit).await?;
    let renamed = title.is_some();
    suggestion_revision::ActiveModel {
        id: Set(Uuid::now_v7()),
        suggestion_id: Set(s.id),
        title: Set(s.title.clone()),
        body: Set(s.body.clone()),
        created_at: Set(s.updated_at),
    }
    .insert(&tx)
    .await?;
    super::revisions::keep_newest::<suggestion_revision::Entity, _>(
        &tx,
        suggestion_revision::Column::SuggestionId,
        suggestion_revision::Column::Id,
        s.id,
        ctx.settings.limits.max_revisions,
    )
    .await?;
    let mut m = s.into_active_model();
    if let Some(t) = title {
        m.title = Set(t.as_str().to_string());
    }
    if let Some(b) = body {
        m.body = Set(b.source().to_string());
        m.body_html = Set(b.html().to_string());
    }
    m.updated_at = Set(now());
    let updated = m.update(&tx).await?;
    // The suggestion's thread carries its title.
    if renamed {
        thread::Entity::update_many()
            .col_expr(thread::Column::Title, Expr::value(updated.title.clone()))
            .filter(thread::Column::SuggestionId.eq(updated.id))
            .exec(&tx)
            .await?;
    }
    tx.commit().await?;
    ctx.events
        .publish(Event::SuggestionUpdated { id: updated.id });
    Ok(updated)
}

/// The author withdraws an open suggestion; it stays on the record as WITHDRAWN.
pub async fn withdraw(ctx: &Ctx, actor: &Actor, id: Uuid) -> AppResult<suggestion::Model> {
    actor.require_verified()?;
    let tx = begin_write(&ctx.db).await?;
    let s = load_locked(&tx, id).await?;
    if s.author_id != actor.id {
        return Err(AppError::Forbidden(
            "only the author withdraws a suggestion".into(),
        ));
    }
    if !s.status.is_open() {
        return Err(AppError::Conflict(format!(
            "a {} suggestion cannot be withdrawn",
            s.status.as_str()
        )));
    }
    let mut m = s.into_active_model();
    m.status = Set(Status::Withdrawn);
    m.awaiting_response = Set(false);
    m.updated_at = Set(now());
    let updated = m.update(&tx).await?;
    tx.commit().await?;
    ctx.events
        .publish(Event::SuggestionUpdated { id: updated.id });
    Ok(updated)
}

/// Adds or removes the actor's support. The unique (suggestion, account) key makes it exact
/// under concurrency: the counter moves only when the row really appears or disappears.
pub async fn set_support(
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    on: bool,
) -> AppResult<suggestion::Model> {
    actor.require_verified()?;
    let tx = begin_write(&ctx.db).await?;
    // Locked: a merge moving this suggestion's supports away waits for us, or we for it and
    // then see DUPLICATE.
    let s = load_locked(&tx, id).await?;
    let mut changed = false;
    if on {
        if s.author_id == actor.id {
            return Err(AppError::Forbidden(
                "you cannot support your own suggestion".into(),
            ));
        }
        if matches!(s.status, Status::Withdrawn | Status::Duplicate) {
            return Err(AppError::Conflict(format!(
                "a {} suggestion takes no support",
                s.status.as_str()
            )));
        }
        let row = support::ActiveModel {
            suggestion_id: Set(id),
            user_id: Set(actor.id),
            created_at: Set(now()),
        };
        if toggle::add_row::<support::Entity, _>(&tx, row).await? {
            changed = true;
            bump(&tx, id, suggestion::Column::SupportCount, 1).await?;
            bump(&tx, id, suggestion::Column::TrendingScore, 1).await?;
        }
    } else {
        let existing = support::Entity::find_by_id((id, actor.id)).one(&tx).await?;
        if let Some(existing) = existing {
            if toggle::remove_row::<support::Entity, _>(&tx, (id, actor.id)).await? {
                changed = true;
                bump(&tx, id, suggestion::Column::SupportCount, -1).await?;
                if existing.created_at > now() - Duration::days(TRENDING_DAYS) {
                    bump(&tx, id, suggestion::Column::TrendingScore, -1).await?;
                }
            }
        }
    }
    let updated = load(&tx, id).await?;
    tx.commit().await?;
    if changed {
        ctx.events.publish(Event::SuggestionUpdated { id });
    }
    Ok(updated)
}

pub async fn set_following(
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    follow: bool,
) -> AppResult<suggestion::Model> {
    actor.require_verified()?;
    let tx = begin_write(&ctx.db).await?;
    load_locked(&tx, id).await?;
    if follow {
        if add_follow(&tx, id, actor.id).await? {
            bump(&tx, id, suggestion::Column::FollowerCount, 1).await?;
        }
    } else if toggle::remove_row::<suggestion_follow::Entity, _>(&tx, (id, actor.id)).await? {
        bump(&tx, id, suggestion::Column::FollowerCount, -1).await?;
    }
    let updated = load(&tx, id).await?;
    tx.commit().await?;
    Ok(updated)
}

fn filtered(filter: &Filter) -> Select<suggestion::Entity> {
    let mut q = suggestion::Entity::find();
    if let Some(c) = filter.commitment_id {
        q = q.filter(suggestion::Column::CommitmentId.eq(c));
    }
    if let Some(s) = filter.status {
        q = q.filter(suggestion::Column::Status.eq(s));
    }
    if let Some(a) = filter.author_id {
        q = q.filter(suggestion::Column::AuthorId.eq(a));
    }
    if let Some(w) = filter.awaiting_response {
        q = q.filter(suggestion::Column::AwaitingResponse.eq(w));
    }
    if let Some(u) = filter.in_reply_to_update_id {
        q = q.filter(suggestion::Column::InReplyToUpdateId.eq(u));
    }
    q
}

/// Rows after `cursor` in "key DESC, id DESC" order.
/// Written as a row-value comparison, `(key, id) < ($key, $id)`, which both databases
/// can answer from the (…, key DESC, id DESC) index instead of filtering row by row.
fn after_desc(col: suggestion::Column, key: i64, id: Uuid) -> Condition {
    let key = cursor_key(key);
    Condition::all().add(
        Expr::tuple([
            Expr::col((suggestion::Entity, col)),
            Expr::col((suggestion::Entity, suggestion::Column::Id)),
        ])
        .lt(Expr::tuple([Expr::value(key), Expr::value(id)])),
    )
}

/// A TOP or TRENDING cursor's key as the column holds it (out-of-range keys clamp).
fn cursor_key(key: i64) -> i32 {
    i32::try_from(key).unwrap_or(if key < 0 { i32::MIN } else { i32::MAX })
}

fn cursor_for(order: Order, s: &suggestion::Model) -> Cursor {
    let k = match order {
        Order::Top => Some(json!(s.support_count)),
        Order::Trending => Some(json!(s.trending_score)),
        Order::New | Order::LongestWaiting => None,
    };
    Cursor { k, id: s.id }
}

/// The statement behind `list`; public so the benchmark can `EXPLAIN` exactly what runs.
pub fn list_query(
    filter: &Filter,
    order: Order,
    page: &PageRequest,
) -> AppResult<Select<suggestion::Entity>> {
    let mut q = filtered(filter);
    match order {
        Order::Top | Order::Trending => {
            let col = if order == Order::Top {
                suggestion::Column::SupportCount
            } else {
                suggestion::Column::TrendingScore
            };
            if let Some(after) = &page.after {
                q = q.filter(after_desc(col, after.key_i64()?, after.id));
            }
            q = q.order_by_desc(col).order_by_desc(suggestion::Column::Id);
        }
        Order::New => {
            // IDs are UUID v7: their order is creation order.
            if let Some(after) = &page.after {
                q = q.filter(suggestion::Column::Id.lt(after.id));
            }
            q = q.order_by_desc(suggestion::Column::Id);
        }
        Order::LongestWaiting => {
            q = q.filter(suggestion::Column::AwaitingResponse.eq(true));
            if let Some(after) = &page.after {
                q = q.filter(suggestion::Column::Id.gt(after.id));
            }
            q = q.order_by_asc(suggestion::Column::Id);
        }
    }
    Ok(q.limit(page.first + 1))
}

/// What a list reads: the suggestions' columns a page shows, and each suggestion's author
/// and commitment, joined in the same statement, with the columns of theirs it shows.
///
/// Whatever the sets say, a listed suggestion always carries its id, its `hidden` flag
/// (what deciding who sees its text needs) and its order's key (the cursor). A joined
/// author's or commitment's id is the suggestion's foreign key: it is read (once, as the
/// suggestion's column) when their set names their `Id`, or the suggestion's set names the
/// key. Every other column left out reads as its field's default (a nil id, too): such a
/// row is the page's alone. A viewer who may see hidden text needs the author's id to
/// know it, so the GraphQL layer names `AuthorId` for every signed-in viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Include {
    pub suggestion: ColumnSet<suggestion::Column>,
    /// The author's columns (never the password hash); `None`: not joined.
    pub author: Option<ColumnSet<user::Column>>,
    /// The commitment's columns; `None`: not joined.
    pub commitment: Option<ColumnSet<commitment::Column>>,
}

impl Include {
    /// Whole suggestions (bodies included), nothing joined.
    pub const WHOLE: Include = Include {
        suggestion: ColumnSet::ALL,
        author: None,
        commitment: None,
    };
}

/// A suggestion of a list, with what the list joined to it. Rows of one author (or one
/// commitment) share one decoded value.
#[derive(Debug, Clone)]
pub struct Listed {
    pub suggestion: suggestion::Model,
    pub author: Option<Arc<user::Profile>>,
    pub commitment: Option<Arc<commitment::Model>>,
}

use suggestion::Column as SuggestionColumn;
positional!(
    SUGGESTION_COLUMNS,
    read_suggestion,
    suggestion::Model,
    SuggestionColumn,
    [
        id: Id,
        commitment_id: CommitmentId,
        author_id: AuthorId,
        title: Title,
        body: Body,
        body_html: BodyHtml,
        status: Status = Status::Submitted,
        support_count: SupportCount,
        follower_count: FollowerCount,
        trending_score: TrendingScore,
        awaiting_response: AwaitingResponse,
        responded_at: RespondedAt,
        duplicate_of_id: DuplicateOfId,
        created_at: CreatedAt,
        updated_at: UpdatedAt,
        in_reply_to_update_id: InReplyToUpdateId,
        hidden: Hidden,
    ]
);

use user::Column as UserColumn;
positional!(
    PROFILE_COLUMNS,
    read_profile,
    user::Profile,
    UserColumn,
    [
        id: Id,
        email: Email,
        display_name: DisplayName,
        bio: Bio,
        organisation: Organisation,
        sector: Sector = user::Sector::Individual,
        role: Role = Role::Member,
        email_verified_at: EmailVerifiedAt,
        created_at: CreatedAt,
    ]
);

use commitment::Column as CommitmentColumn;
positional!(
    COMMITMENT_COLUMNS,
    read_commitment,
    commitment::Model,
    CommitmentColumn,
    [
        id: Id,
        reference: Reference,
        title: Title,
        description: Description,
        action_plan: ActionPlan,
        lead_institution: LeadInstitution,
        policy_area: PolicyArea,
        status: Status = commitment::Status::NotStarted,
        follower_count: FollowerCount,
        created_at: CreatedAt,
        updated_at: UpdatedAt,
    ]
);

/// A page of whole suggestions, bodies included.
pub async fn list(
    ctx: &Ctx,
    filter: &Filter,
    order: Order,
    page: &PageRequest,
) -> AppResult<Page<suggestion::Model>> {
    Ok(list_with(ctx, filter, order, page, Include::WHOLE)
        .await?
        .map(|l| l.suggestion))
}

/// The columns `include` reads, with those every listed row needs.
fn needed(order: Order, include: Include) -> Include {
    let key = match order {
        Order::Top => Some(SuggestionColumn::SupportCount),
        Order::Trending => Some(SuggestionColumn::TrendingScore),
        Order::New | Order::LongestWaiting => None,
    };
    let mut suggestion = include
        .suggestion
        .with(SuggestionColumn::Id)
        .with(SuggestionColumn::Hidden);
    if let Some(key) = key {
        suggestion = suggestion.with(key);
    }
    // A joined row's id is the suggestion's foreign key: read there, and not twice.
    if include.author.is_some_and(|a| a.has(UserColumn::Id)) {
        suggestion = suggestion.with(SuggestionColumn::AuthorId);
    }
    if include
        .commitment
        .is_some_and(|c| c.has(CommitmentColumn::Id))
    {
        suggestion = suggestion.with(SuggestionColumn::CommitmentId);
    }
    Include {
        suggestion,
        author: include.author.map(|a| a.without(UserColumn::Id)),
        commitment: include.commitment.map(|c| c.without(CommitmentColumn::Id)),
    }
}

/// The statement behind `list_with`; public so the benchmark can `EXPLAIN` it. The joins
/// are primary-key lookups beside the list's own index scan. Its columns are, in order:
/// the suggestion's, the author's (never the password hash), the commitment's, each in
/// its `positional!` order and only those `include` (with what every row needs) names.
pub fn list_with_query(
    filter: &Filter,
    order: Order,
    page: &PageRequest,
    include: Include,
) -> AppResult<SelectStatement> {
    statement(filter, order, page, needed(order, include))
}

/// `list_with_query` for an `include` that already holds what every row needs.
fn statement(
    filter: &Filter,
    order: Order,
    page: &PageRequest,
    include: Include,
) -> AppResult<SelectStatement> {
    // Columns named on the statement itself, as for the joins: sea-orm's `columns` would
    // build each through its select-expression machinery, for plain columns as these are.
    let mut stmt = list_query(filter, order, page)?.select_only().into_query();
    stmt.columns(
        include
            .suggestion
            .pick(SUGGESTION_COLUMNS)
            .map(|c| (suggestion::Entity, c)),
    );
    if let Some(columns) = include.author {
        stmt.inner_join(
            user::Entity,
            Expr::col((user::Entity, UserColumn::Id))
                .equals((suggestion::Entity, SuggestionColumn::AuthorId)),
        );
        stmt.columns(columns.pick(PROFILE_COLUMNS).map(|c| (user::Entity, c)));
    }
    if let Some(columns) = include.commitment {
        stmt.inner_join(
            commitment::Entity,
            Expr::col((commitment::Entity, CommitmentColumn::Id))
                .equals((suggestion::Entity, SuggestionColumn::CommitmentId)),
        );
        stmt.columns(
            columns
                .pick(COMMITMENT_COLUMNS)
                .map(|c| (commitment::Entity, c)),
        );
    }
    Ok(stmt)
}

/// `list_with`'s statement without building it every time. Its SQL text depends only on
/// the request's shape (which filters are set, the order, whether a cursor is given, the
/// columns read), and building it through sea-query is a good part of a page's own cost;
/// so each shape's text is kept, and a request binds its values to it in the order the
/// built statement would. That order is checked, not assumed: the first request of each
/// shape builds the statement as before and compares its values with [`values`]; a shape
/// where they differ is never served from here.
mod list_sql {
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, RwLock};

    use sea_orm::sea_query::Values;
    use sea_orm::{ActiveEnum, DbBackend, Statement, Value};

    use super::{cursor_key, statement as build, Filter, Include, Order, PageRequest};
    use crate::error::AppResult;

    /// What a statement's text depends on.
    #[derive(Clone, Copy, PartialEq, Eq, Hash)]
    struct Shape {
        backend: u8,
        /// Which of the filter's five conditions are set, one bit each.
        filters: u8,
        order: Order,
        after: bool,
        include: Include,
    }

    /// The most shapes kept. Shapes are few in practice (a site asks for a handful of
    /// selections), but the columns read follow the client's selection, so the count is
    /// capped: past it, new shapes are built every time, as before.
    const MAX_SHAPES: usize = 512;

    /// Each shape's SQL text; `None` for a shape whose values did not match.
    type Known = HashMap<Shape, Option<Arc<str>>>;
    static KNOWN: LazyLock<RwLock<Known>> = LazyLock::new(|| RwLock::new(HashMap::new()));

    fn shape(
        backend: DbBackend,
        filter: &Filter,
        order: Order,
        page: &PageRequest,
        include: Include,
    ) -> Shape {
        let backend = match backend {
            DbBackend::Postgres => 0,
            DbBackend::Sqlite => 1,
            _ => 2,
        };
        let filters = u8::from(filter.commitment_id.is_some())
            | u8::from(filter.status.is_some()) << 1
            | u8::from(filter.author_id.is_some()) << 2
            | u8::from(filter.awaiting_response.is_some()) << 3
            | u8::from(filter.in_reply_to_update_id.is_some()) << 4;
        Shape {
            backend,
            filters,
            order,
            after: page.after.is_some(),
            include,
        }
    }

    /// The statement's values, in the order `statement` binds them: the filter's conditions
    /// as `filtered` adds them, the order's own condition and cursor as `list_query` adds
    /// them, then the limit.
    pub(super) fn values(filter: &Filter, order: Order, page: &PageRequest) -> AppResult<Values> {
        let mut v: Vec<Value> = Vec::with_capacity(6);
        if let Some(c) = filter.commitment_id {
            v.push(c.into());
        }
        if let Some(s) = filter.status {
            v.push(s.to_value().into());
        }
        if let Some(a) = filter.author_id {
            v.push(a.into());
        }
        if let Some(w) = filter.awaiting_response {
            v.push(w.into());
        }
        if let Some(u) = filter.in_reply_to_update_id {
            v.push(u.into());
        }
        match (order, &page.after) {
            (Order::Top | Order::Trending, Some(after)) => {
                v.push(cursor_key(after.key_i64()?).into());
                v.push(after.id.into());
            }
            (Order::New, Some(after)) => v.push(after.id.into()),
            (Order::LongestWaiting, after) => {
                v.push(true.into());
                if let Some(after) = after {
                    v.push(after.id.into());
                }
            }
            (Order::Top | Order::Trending | Order::New, None) => {}
        }
        v.push((page.first + 1).into());
        Ok(Values(v))
    }

    /// `list_with`'s statement for this request (`include` already holds what every row
    /// needs).
    pub(super) fn statement(
        backend: DbBackend,
        filter: &Filter,
        order: Order,
        page: &PageRequest,
        include: Include,
    ) -> AppResult<Statement> {
        let key = shape(backend, filter, order, page, include);
        let known = KNOWN.read().ok().and_then(|k| k.get(&key).cloned());
        match known {
            Some(Some(sql)) => {
                let values = values(filter, order, page)?;
                Ok(Statement::from_sql_and_values(backend, &*sql, values.0))
            }
            Some(None) => Ok(backend.build(&build(filter, order, page, include)?)),
            None => {
                let built = backend.build(&build(filter, order, page, include)?);
                let same = built.values.as_ref() == Some(&values(filter, order, page)?);
                if let Ok(mut k) = KNOWN.write() {
                    if k.len() < MAX_SHAPES {
                        k.insert(key, same.then(|| Arc::from(built.sql.as_str())));
                    }
                }
                Ok(built)
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use sea_orm::DbBackend;
        use serde_json::json;
        use uuid::Uuid;

        use super::super::{needed, statement as build, Filter, Include, Order};
        use super::{statement, values};
        use crate::entities::suggestion::{Column, Status};
        use crate::entities::user;
        use crate::services::columns::ColumnSet;
        use crate::services::page::{Cursor, PageRequest};

        /// For every shape (each set of filters, order and cursor, on both backends) the
        /// values bound to a kept text are the built statement's, in its order, and the
        /// statement served the first and the second time is the built one.
        #[test]
        fn kept_text_binds_what_the_built_statement_binds() {
            let (c, a, u, id) = (
                Uuid::now_v7(),
                Uuid::now_v7(),
                Uuid::now_v7(),
                Uuid::now_v7(),
            );
            let orders = [
                Order::Top,
                Order::New,
                Order::Trending,
                Order::LongestWaiting,
            ];
            // A key beyond the column's range clamps, as the built statement does.
            let cursors = [None, Some(json!(7)), Some(json!(1_i64 << 40))];
            let mut shapes = 0;
            for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
                for f in 0..32u8 {
                    let filter = Filter {
                        commitment_id: (f & 1 != 0).then_some(c),
                        status: (f & 2 != 0).then_some(Status::UnderReview),
                        author_id: (f & 4 != 0).then_some(a),
                        awaiting_response: (f & 8 != 0).then_some(f & 16 == 0),
                        in_reply_to_update_id: (f & 16 != 0).then_some(u),
                    };
                    for order in orders {
                        for k in &cursors {
                            let after = k.clone().map(|k| Cursor {
                                k: matches!(order, Order::Top | Order::Trending).then_some(k),
                                id,
                            });
                            let page = PageRequest { first: 20, after };
                            let include = needed(
                                order,
                                Include {
                                    suggestion: ColumnSet::of(&[Column::Title]),
                                    author: Some(ColumnSet::of(&[user::Column::DisplayName])),
                                    commitment: None,
                                },
                            );
                            let built =
                                backend.build(&build(&filter, order, &page, include).unwrap());
                            assert_eq!(
                                built.values,
                                Some(values(&filter, order, &page).unwrap()),
                                "{backend:?}, filters {f:#b}, {order:?}, cursor {k:?}"
                            );
                            for _ in 0..2 {
                                let served =
                                    statement(backend, &filter, order, &page, include).unwrap();
                                assert_eq!(served.sql, built.sql);
                                assert_eq!(served.values, built.values);
                            }
                            shapes += 1;
                        }
                    }
                }
            }
            assert_eq!(shapes, 2 * 32 * 4 * 3);
        }
    }
}

/// `list`, reading what `include` asks for: one statement whatever the page's size.
pub async fn list_with(
    ctx: &Ctx,
    filter: &Filter,
    order: Order,
    page: &PageRequest,
    include: Include,
) -> AppResult<Page<Listed>> {
    let include = needed(order, include);
    let stmt = list_sql::statement(ctx.db.get_database_backend(), filter, order, page, include)?;
    let author_width = include
        .author
        .map_or(0, |a| a.pick(PROFILE_COLUMNS).count());
    let mut rows = crate::db::query_all(&ctx.db, &ctx.statements, stmt).await?;
    // The extra row only tells whether a next page exists: it is not decoded. Each author
    // and each commitment is decoded once, at its first row (a commitment's page repeats
    // one commitment twenty times), when its id is read; each row's own otherwise.
    let author_ids = include.suggestion.has(SuggestionColumn::AuthorId);
    let commitment_ids = include.suggestion.has(SuggestionColumn::CommitmentId);
    let has_next_page = rows.len() as u64 > page.first;
    rows.truncate(usize::try_from(page.first).unwrap_or(usize::MAX));
    let mut authors = Vec::new();
    let mut commitments = Vec::new();
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut at = Columns::new(row);
        let suggestion = read_suggestion(&mut at, include.suggestion)?;
        let author = include
            .author
            .map(|columns| {
                decoded_once(
                    &mut authors,
                    author_ids.then_some(suggestion.author_id),
                    &mut at,
                    author_width,
                    |at| {
                        let mut profile = read_profile(at, columns)?;
                        profile.id = suggestion.author_id;
                        Ok(profile)
                    },
                )
            })
            .transpose()?;
        let commitment = include
            .commitment
            .map(|columns| {
                decoded_once(
                    &mut commitments,
                    commitment_ids.then_some(suggestion.commitment_id),
                    &mut at,
                    0,
                    |at| {
                        let mut commitment = read_commitment(at, columns)?;
                        commitment.id = suggestion.commitment_id;
                        Ok(commitment)
                    },
                )
            })
            .transpose()?;
        items.push((
            cursor_for(order, &suggestion),
            Listed {
                suggestion,
                author,
                commitment,
            },
        ));
    }
    Ok(Page {
        items,
        has_next_page,
    })
}

pub async fn count(ctx: &Ctx, filter: &Filter, order: Order) -> AppResult<u64> {
    let mut q = filtered(filter);
    if order == Order::LongestWaiting {
        q = q.filter(suggestion::Column::AwaitingResponse.eq(true));
    }
    Ok(q.count(&ctx.db).await?)
}

/// Publishes an official response, moving the suggestion through the workflow, recording it
/// in the outcome log, and queuing a notification for each follower, all in one transaction.
pub async fn publish_response(
    ctx: &Ctx,
    actor: &Actor,
    input: NewResponse,
) -> AppResult<Published> {
    actor.require_role(&[Role::Official, Role::Admin])?;
    actor.require_verified()?;
    let body = match input
        .body
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        Some(b) => Some(field("body", ctx.markdown.body(b, 1, BODY_MAX))?),
        None => None,
    };
    if body.is_none() && input.new_status.is_none() {
        return Err(AppError::bad_input(
            "body",
            "a response needs a body, a new status, or both",
        ));
    }
    if input.new_status == Some(Status::Declined)
        && body
            .as_ref()
            .is_none_or(|b| b.source().chars().count() < 10)
    {
        return Err(AppError::bad_input(
            "body",
            "declining a suggestion needs a body that explains why",
        ));
    }
    if input.duplicate_of_id.is_some() && input.new_status != Some(Status::Duplicate) {
        return Err(AppError::bad_input(
            "duplicateOfId",
            "duplicateOfId goes with newStatus DUPLICATE",
        ));
    }

    let target_id = match input.new_status {
        Some(Status::Duplicate) => {
            let target_id = input.duplicate_of_id.ok_or_else(|| {
                AppError::bad_input("duplicateOfId", "marking a duplicate needs duplicateOfId")
            })?;
            if target_id == input.suggestion_id {
                return Err(AppError::bad_input(
                    "duplicateOfId",
                    "a suggestion cannot duplicate itself",
                ));
            }
            Some(target_id)
        }
        _ => None,
    };

    let tx = begin_write(&ctx.db).await?;
    // Both rows are locked before anything is checked, so the checks below hold until commit.
    let (s, target) = match target_id {
        Some(t) => lock_pair(&tx, input.suggestion_id, t).await?,
        None => (Some(load_locked(&tx, input.suggestion_id).await?), None),
    };
    let s = s.ok_or(AppError::NotFound("suggestion"))?;
    let previous = s.status;
    if let Some(next) = input.new_status {
        if !previous.can_become(next) {
            return Err(AppError::bad_input(
                "newStatus",
                format!(
                    "a suggestion cannot go from {} to {}",
                    previous.as_str(),
                    next.as_str()
                ),
            ));
        }
    }
    let mut moved = (0, 0);
    let mut duplicate_of = None;
    let mut merged_audience: Option<Vec<Uuid>> = None;
    if target_id.is_some() {
        let target =
            target.ok_or_else(|| AppError::bad_input("duplicateOfId", "no such suggestion"))?;
        if target.commitment_id != s.commitment_id {
            return Err(AppError::bad_input(
                "duplicateOfId",
                "the original must be on the same commitment",
            ));
        }
        if matches!(target.status, Status::Duplicate | Status::Withdrawn) {
            return Err(AppError::bad_input(
                "duplicateOfId",
                format!("the original is itself {}", target.status.as_str()),
            ));
        }
        // Its people move to the original now; they still hear of the merge.
        merged_audience =
            Some(crate::services::notifications::suggestion_audience(&tx, s.id).await?);
        moved = merge_into(&tx, &s, &target).await?;
        duplicate_of = Some(target.id);
    }

    let at = now();
    let response = official_response::ActiveModel {
        id: Set(Uuid::now_v7()),
        suggestion_id: Set(Some(s.id)),
        commitment_id: Set(Some(s.commitment_id)),
        author_id: Set(actor.id),
        body: Set(body
            .as_ref()
            .map(|b| b.source().to_string())
            .unwrap_or_default()),
        body_html: Set(body
            .as_ref()
            .map(|b| b.html().to_string())
            .unwrap_or_default()),
        previous_status: Set(Some(previous)),
        new_status: Set(input.new_status),
        duplicate_of_id: Set(duplicate_of),
        published_at: Set(at),
        thread_id: Set(None),
    }
    .insert(&tx)
    .await?;
    outcome::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(OUTCOME_RESPONSE.to_string()),
        response_id: Set(Some(response.id)),
        commitment_id: Set(Some(s.commitment_id)),
        meetup_outcome_id: Set(None),
        public: Set(true),
        published_at: Set(at),
    }
    .insert(&tx)
    .await?;

    let suggestion_id = s.id;
    let first_response = s.responded_at.is_none();
    let mut m = s.into_active_model();
    if let Some(next) = input.new_status {
        m.status = Set(next);
    }
    if first_response {
        m.responded_at = Set(Some(at));
    }
    // Answered: no longer in the "waiting for an answer" queue.
    m.awaiting_response = Set(false);
    if let Some(original) = duplicate_of {
        m.duplicate_of_id = Set(Some(original));
    }
    m.updated_at = Set(at);
    let updated = m.update(&tx).await?;

    // One row whatever the audience: the notification worker fans it out to the
    // suggestion's followers and supporters.
    outbox::enqueue_event(
        &tx,
        &OutboxEvent::ResponsePublished {
            suggestion_id,
            response_id: response.id,
            actor_id: Some(actor.id),
            new_status: input.new_status.map(|s| s.as_str().to_string()),
            duplicate_of_id: duplicate_of,
            audience_ids: merged_audience,
        },
    )
    .await?;
    // Official responses are public: every group working on the commitment hears of it.
    outbox::post_to_channels(
        &tx,
        &super::channels::linked_groups(&tx, updated.commitment_id).await?,
        ChannelMessage::SuggestionResponse {
            suggestion_id,
            response_id: response.id,
            new_status: input.new_status.map(|s| s.as_str().to_string()),
        },
    )
    .await?;
    tx.commit().await?;
    ctx.events
        .publish(Event::SuggestionUpdated { id: suggestion_id });
    // Merged: the original's support count changed too.
    if let Some(original) = duplicate_of {
        ctx.events
            .publish(Event::SuggestionUpdated { id: original });
    }
    Ok(Published {
        response,
        suggestion: updated,
        moved_support_count: moved.0,
        moved_follower_count: moved.1,
    })
}

/// An official response to a discussion thread: a body, no status.
pub struct NewThreadResponse {
    pub thread_id: Uuid,
    pub body: Option<String>,
}

/// Publishes an official answer to a thread (OFFICIAL or ADMIN): marked on the thread, and
/// entered in the outcome record, public unless the thread is in a private group.
pub async fn publish_thread_response(
    ctx: &Ctx,
    actor: &Actor,
    input: NewThreadResponse,
) -> AppResult<(official_response::Model, thread::Model)> {
    actor.require_role(&[Role::Official, Role::Admin])?;
    actor.require_verified()?;
    let body = field(
        "body",
        ctx.markdown
            .body(input.body.as_deref().unwrap_or_default(), 1, BODY_MAX),
    )?;
    let tx = begin_write(&ctx.db).await?;
    let t = thread::Entity::find_by_id(input.thread_id)
        .lock_exclusive()
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("thread"))?;
    let (t, access) = super::discussions::visibility::access_for(&tx, Some(actor), t).await?;
    let public = access
        .as_ref()
        .is_none_or(|a| super::access::open_inside(&a.group));
    let at = now();
    let response = official_response::ActiveModel {
        id: Set(Uuid::now_v7()),
        suggestion_id: Set(None),
        commitment_id: Set(t.commitment_id),
        author_id: Set(actor.id),
        body: Set(body.source().to_string()),
        body_html: Set(body.html().to_string()),
        previous_status: Set(None),
        new_status: Set(None),
        duplicate_of_id: Set(None),
        published_at: Set(at),
        thread_id: Set(Some(t.id)),
    }
    .insert(&tx)
    .await?;
    outcome::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(OUTCOME_RESPONSE.to_string()),
        response_id: Set(Some(response.id)),
        commitment_id: Set(t.commitment_id),
        meetup_outcome_id: Set(None),
        public: Set(public),
        published_at: Set(at),
    }
    .insert(&tx)
    .await?;
    toggle::bump::<thread::Entity, _, _>(
        &tx,
        thread::Column::Id,
        t.id,
        thread::Column::OfficialResponseCount,
        1,
    )
    .await?;
    let updated = thread::Entity::find_by_id(t.id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("thread"))?;
    // A group thread's answer goes to that group's channel (a private group's stays in
    // it); a thread on a commitment is public, and every group working on it hears.
    let channel_groups = match (updated.working_group_id, updated.commitment_id) {
        (Some(g), _) => vec![g],
        (None, Some(c)) => super::channels::linked_groups(&tx, c).await?,
        (None, None) => Vec::new(),
    };
    outbox::post_to_channels(
        &tx,
        &channel_groups,
        ChannelMessage::ThreadResponse {
            thread_id: updated.id,
            response_id: response.id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((response, updated))
}

/// Moves supports and followers of `dup` to `target`, skipping accounts already there (and
/// the target's author, who cannot support their own). Returns how many of each moved.
/// Both rows are locked by the caller, so no support or follow of either can arrive while
/// this runs; `ON CONFLICT DO NOTHING` keeps the unique keys the judge of "already there".
async fn merge_into(
    tx: &DatabaseTransaction,
    dup: &suggestion::Model,
    target: &suggestion::Model,
) -> AppResult<(u64, u64)> {
    let supports = Query::select()
        .expr(Expr::value(target.id))
        .column(support::Column::UserId)
        .column(support::Column::CreatedAt)
        .from(support::Entity)
        .and_where(support::Column::SuggestionId.eq(dup.id))
        .and_where(support::Column::UserId.ne(target.author_id))
        .to_owned();
    let moved_supports = tx
        .execute(
            Query::insert()
                .into_table(support::Entity)
                .columns([
                    support::Column::SuggestionId,
                    support::Column::UserId,
                    support::Column::CreatedAt,
                ])
                .select_from(supports)
                .map_err(AppError::internal)?
                .on_conflict(
                    OnConflict::columns([support::Column::SuggestionId, support::Column::UserId])
                        .do_nothing()
                        .to_owned(),
                ),
        )
        .await?
        .rows_affected();
    support::Entity::delete_many()
        .filter(support::Column::SuggestionId.eq(dup.id))
        .exec(tx)
        .await?;

    let follows = Query::select()
        .expr(Expr::value(target.id))
        .column(suggestion_follow::Column::UserId)
        .expr(Expr::value(now()))
        .from(suggestion_follow::Entity)
        .and_where(suggestion_follow::Column::SuggestionId.eq(dup.id))
        .to_owned();
    let moved_followers = tx
        .execute(
            Query::insert()
                .into_table(suggestion_follow::Entity)
                .columns([
                    suggestion_follow::Column::SuggestionId,
                    suggestion_follow::Column::UserId,
                    suggestion_follow::Column::CreatedAt,
                ])
                .select_from(follows)
                .map_err(AppError::internal)?
                .on_conflict(
                    OnConflict::columns([
                        suggestion_follow::Column::SuggestionId,
                        suggestion_follow::Column::UserId,
                    ])
                    .do_nothing()
                    .to_owned(),
                ),
        )
        .await?
        .rows_affected();
    recount(tx, dup.id).await?;
    recount(tx, target.id).await?;
    Ok((moved_supports, moved_followers))
}

/// Sets a suggestion's counters from its rows.
async fn recount(tx: &DatabaseTransaction, id: Uuid) -> AppResult<()> {
    let since = now() - Duration::days(TRENDING_DAYS);
    let supports = support::Entity::find()
        .filter(support::Column::SuggestionId.eq(id))
        .count(tx)
        .await?;
    let recent = support::Entity::find()
        .filter(support::Column::SuggestionId.eq(id))
        .filter(support::Column::CreatedAt.gt(since))
        .count(tx)
        .await?;
    let followers = suggestion_follow::Entity::find()
        .filter(suggestion_follow::Column::SuggestionId.eq(id))
        .count(tx)
        .await?;
    suggestion::Entity::update_many()
        .col_expr(
            suggestion::Column::SupportCount,
            Expr::value(i32::try_from(supports).unwrap_or(i32::MAX)),
        )
        .col_expr(
            suggestion::Column::TrendingScore,
            Expr::value(i32::try_from(recent).unwrap_or(i32::MAX)),
        )
        .col_expr(
            suggestion::Column::FollowerCount,
            Expr::value(i32::try_from(followers).unwrap_or(i32::MAX)),
        )
        .filter(suggestion::Column::Id.eq(id))
        .exec(tx)
        .await?;
    Ok(())
}

/// Lets supports older than the trending window stop counting; run periodically.
pub async fn refresh_trending<C: ConnectionTrait>(conn: &C) -> AppResult<u64> {
    let since = now() - Duration::days(TRENDING_DAYS);
    let recent = Query::select()
        .expr(Expr::col((support::Entity, support::Column::SuggestionId)).count())
        .from(support::Entity)
        .and_where(
            Expr::col((support::Entity, support::Column::SuggestionId))
                .equals((suggestion::Entity, suggestion::Column::Id)),
        )
        .and_where(Expr::col((support::Entity, support::Column::CreatedAt)).gt(since))
        .to_owned();
    let r = suggestion::Entity::update_many()
        .col_expr(
            suggestion::Column::TrendingScore,
            Expr::SubQuery(None, Box::new(recent.into_sub_query_statement())),
        )
        .filter(suggestion::Column::TrendingScore.gt(0))
        .exec(conn)
        .await?;
    Ok(r.rows_affected)
}

/// The public record, newest first.
pub async fn outcomes(
    ctx: &Ctx,
    commitment_id: Option<Uuid>,
    page: &PageRequest,
) -> AppResult<Page<outcome::Model>> {
    let mut q = outcome_filter(commitment_id);
    if let Some(after) = &page.after {
        q = q.filter(outcome::Column::Id.lt(after.id));
    }
    let rows = q
        .order_by_desc(outcome::Column::Id)
        .limit(page.first + 1)
        .all(&ctx.db)
        .await?;
    Ok(Page::from_rows(rows, page.first, |o| Cursor {
        k: None,
        id: o.id,
    }))
}

pub async fn count_outcomes(ctx: &Ctx, commitment_id: Option<Uuid>) -> AppResult<u64> {
    Ok(outcome_filter(commitment_id).count(&ctx.db).await?)
}

/// The public record, optionally about one commitment: its official responses, and the
/// meet-up outcomes of the groups linked to it. Outcomes a private group keeps to its
/// members never enter it, whoever reads (members read them on the meet-up).
fn outcome_filter(commitment_id: Option<Uuid>) -> Select<outcome::Entity> {
    let mut q = outcome::Entity::find().filter(outcome::Column::Public.eq(true));
    if let Some(c) = commitment_id {
        q = q.filter(
            Condition::any()
                .add(outcome::Column::CommitmentId.eq(c))
                .add(
                    outcome::Column::MeetupOutcomeId
                        .in_subquery(super::meetups::outcomes_of_commitment(c)),
                ),
        );
    }
    q
}
