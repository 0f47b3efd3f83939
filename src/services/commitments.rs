//! Commitments and their milestones: written by officials and admins, read by everyone,
//! followed by anyone with a verified account.

use chrono::NaiveDate;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use super::page::{Cursor, Page, PageRequest};
use super::{field, toggle, Ctx};
use crate::auth::Actor;
use crate::db::{begin_write, now};
use crate::domain::{Reference, Title};
use crate::entities::commitment::{self, Status};
use crate::entities::user::Role;
use crate::entities::{commitment_follow, milestone};
use crate::error::{AppError, AppResult};

const WRITERS: &[Role] = &[Role::Official, Role::Admin];

pub struct NewCommitment {
    pub reference: String,
    pub title: String,
    pub description: String,
    pub action_plan: Option<String>,
    pub lead_institution: Option<String>,
    pub policy_area: Option<String>,
    pub status: Option<Status>,
}

#[derive(Default)]
pub struct CommitmentChanges {
    pub reference: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub action_plan: Option<String>,
    pub lead_institution: Option<String>,
    pub policy_area: Option<String>,
    pub status: Option<Status>,
}

#[derive(Default, Clone)]
pub struct CommitmentFilter {
    pub status: Option<Status>,
    pub search: Option<String>,
}

pub struct NewMilestone {
    pub commitment_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub due_on: Option<NaiveDate>,
    pub status: Option<Status>,
}

#[derive(Default)]
pub struct MilestoneChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub due_on: Option<Option<NaiveDate>>,
    pub status: Option<Status>,
    pub position: Option<i32>,
}

fn short_text(name: &str, raw: &str, max: usize) -> AppResult<String> {
    let s = raw.trim().to_string();
    if s.chars().count() > max {
        return Err(AppError::bad_input(
            name,
            format!("at most {max} characters"),
        ));
    }
    Ok(s)
}

fn writer(actor: &Actor) -> AppResult<()> {
    actor.require_role(WRITERS)?;
    actor.require_verified()
}

fn unique_reference(e: sea_orm::DbErr) -> AppError {
    if matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    ) {
        AppError::Conflict("a commitment with this reference already exists".into())
    } else {
        e.into()
    }
}

pub async fn create(
    ctx: &Ctx,
    actor: &Actor,
    input: NewCommitment,
) -> AppResult<commitment::Model> {
    writer(actor)?;
    let reference = field("reference", Reference::parse(&input.reference))?;
    let title = field("title", Title::parse(&input.title, 3, 300))?;
    let description = field(
        "description",
        ctx.markdown.body(&input.description, 0, 50_000),
    )?;
    let at = now();
    let tx = begin_write(&ctx.db).await?;
    let created = commitment::ActiveModel {
        id: Set(Uuid::now_v7()),
        reference: Set(reference.as_str().to_string()),
        title: Set(title.as_str().to_string()),
        description: Set(description.source().to_string()),
        action_plan: Set(short_text(
            "actionPlan",
            input.action_plan.as_deref().unwrap_or(""),
            300,
        )?),
        lead_institution: Set(short_text(
            "leadInstitution",
            input.lead_institution.as_deref().unwrap_or(""),
            300,
        )?),
        policy_area: Set(short_text(
            "policyArea",
            input.policy_area.as_deref().unwrap_or(""),
            200,
        )?),
        status: Set(input.status.unwrap_or(Status::NotStarted)),
        follower_count: Set(0),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(&tx)
    .await
    .map_err(unique_reference)?;
    tx.commit().await?;
    Ok(created)
}

pub async fn update(
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    c: CommitmentChanges,
) -> AppResult<commitment::Model> {
    writer(actor)?;
    let tx = begin_write(&ctx.db).await?;
    let found = commitment::Entity::find_by_id(id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("commitment"))?;
    let mut m = found.into_active_model();
    if let Some(r) = c.reference {
        m.reference = Set(field("reference", Reference::parse(&r))?
            .as_str()
            .to_string());
    }
    if let Some(t) = c.title {
        m.title = Set(field("title", Title::parse(&t, 3, 300))?
            .as_str()
            .to_string());
    }
    if let Some(d) = c.description {
        m.description = Set(field("description", ctx.markdown.body(&d, 0, 50_000))?
            .source()
            .to_string());
    }
    if let Some(a) = c.action_plan {
        m.action_plan = Set(short_text("actionPlan", &a, 300)?);
    }
    if let Some(l) = c.lead_institution {
        m.lead_institution = Set(short_text("leadInstitution", &l, 300)?);
    }
    if let Some(p) = c.policy_area {
        m.policy_area = Set(short_text("policyArea", &p, 200)?);
    }
    if let Some(s) = c.status {
        m.status = Set(s);
    }
    m.updated_at = Set(now());
    let updated = m.update(&tx).await.map_err(unique_reference)?;
    tx.commit().await?;
    Ok(updated)
}

pub async fn find(ctx: &Ctx, id: Uuid) -> AppResult<Option<commitment::Model>> {
    Ok(commitment::Entity::find_by_id(id).one(&ctx.db).await?)
}

pub async fn find_by_reference(ctx: &Ctx, reference: &str) -> AppResult<Option<commitment::Model>> {
    Ok(commitment::Entity::find()
        .filter(commitment::Column::Reference.eq(reference.trim().to_uppercase()))
        .one(&ctx.db)
        .await?)
}

fn like_pattern(search: &str) -> String {
    let escaped = search
        .trim()
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

fn filtered(filter: &CommitmentFilter) -> Select<commitment::Entity> {
    let mut q = commitment::Entity::find();
    if let Some(s) = filter.status {
        q = q.filter(commitment::Column::Status.eq(s));
    }
    if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
        let pattern = like_pattern(search);
        let like = |col: commitment::Column| {
            Expr::expr(Func::lower(Expr::col(col)))
                .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\'))
        };
        q = q.filter(
            Condition::any()
                .add(like(commitment::Column::Reference))
                .add(like(commitment::Column::Title))
                .add(like(commitment::Column::Description)),
        );
    }
    q
}

/// Commitments in reference order.
pub async fn list(
    ctx: &Ctx,
    filter: &CommitmentFilter,
    page: &PageRequest,
) -> AppResult<Page<commitment::Model>> {
    let mut q = filtered(filter);
    if let Some(after) = &page.after {
        q = q.filter(commitment::Column::Reference.gt(after.key_str()?));
    }
    let rows = q
        .order_by_asc(commitment::Column::Reference)
        .limit(page.first + 1)
        .all(&ctx.db)
        .await?;
    Ok(Page::from_rows(rows, page.first, |c| Cursor {
        k: Some(serde_json::Value::String(c.reference.clone())),
        id: c.id,
    }))
}

pub async fn count(ctx: &Ctx, filter: &CommitmentFilter) -> AppResult<u64> {
    Ok(filtered(filter).count(&ctx.db).await?)
}

/// Holds a commitment's row until the transaction ends: writers of its milestone positions
/// queue here, so "the last position + 1" and a move's shift see every earlier writer's rows.
async fn lock_commitment(
    tx: &sea_orm::DatabaseTransaction,
    id: Uuid,
) -> AppResult<commitment::Model> {
    commitment::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or(AppError::NotFound("commitment"))
}

pub async fn add_milestone(
    ctx: &Ctx,
    actor: &Actor,
    input: NewMilestone,
) -> AppResult<milestone::Model> {
    writer(actor)?;
    let title = field("title", Title::parse(&input.title, 3, 1000))?;
    let description = field(
        "description",
        ctx.markdown
            .body(input.description.as_deref().unwrap_or(""), 0, 20_000),
    )?;
    let tx = begin_write(&ctx.db).await?;
    lock_commitment(&tx, input.commitment_id).await?;
    let last = milestone::Entity::find()
        .filter(milestone::Column::CommitmentId.eq(input.commitment_id))
        .order_by_desc(milestone::Column::Position)
        .one(&tx)
        .await?
        .map(|m| m.position)
        .unwrap_or(0);
    let at = now();
    let created = milestone::ActiveModel {
        id: Set(Uuid::now_v7()),
        commitment_id: Set(input.commitment_id),
        position: Set(last + 1),
        title: Set(title.as_str().to_string()),
        description: Set(description.source().to_string()),
        due_on: Set(input.due_on),
        status: Set(input.status.unwrap_or(Status::NotStarted)),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(&tx)
    .await?;
    tx.commit().await?;
    Ok(created)
}

pub async fn update_milestone(
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    c: MilestoneChanges,
) -> AppResult<milestone::Model> {
    writer(actor)?;
    let tx = begin_write(&ctx.db).await?;
    let commitment_id = milestone::Entity::find_by_id(id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("milestone"))?
        .commitment_id;
    lock_commitment(&tx, commitment_id).await?;
    // Read again under the lock: a move that ran meanwhile may have changed the position.
    let found = milestone::Entity::find_by_id(id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("milestone"))?;
    let old_position = found.position;
    let mut m = found.into_active_model();
    if let Some(t) = c.title {
        m.title = Set(field("title", Title::parse(&t, 3, 1000))?
            .as_str()
            .to_string());
    }
    if let Some(d) = c.description {
        m.description = Set(field("description", ctx.markdown.body(&d, 0, 20_000))?
            .source()
            .to_string());
    }
    if let Some(d) = c.due_on {
        m.due_on = Set(d);
    }
    if let Some(s) = c.status {
        m.status = Set(s);
    }
    if let Some(p) = c.position.filter(|p| *p != old_position) {
        let siblings = milestone::Entity::find()
            .filter(milestone::Column::CommitmentId.eq(commitment_id))
            .count(&tx)
            .await?;
        if p < 1 || i64::from(p) > siblings as i64 {
            return Err(AppError::bad_input(
                "position",
                format!("position must be between 1 and {siblings}"),
            ));
        }
        // Shift the milestones between the old and the new place by one. The unique
        // (commitment, position) index is checked row by row, so the moving milestone first
        // steps aside to 0, and the others go through negative positions.
        let (lo, hi, delta) = if p < old_position {
            (p, old_position - 1, 1)
        } else {
            (old_position + 1, p, -1)
        };
        let shift = |to: Expr, rows: Condition| {
            milestone::Entity::update_many()
                .col_expr(milestone::Column::Position, to)
                .filter(milestone::Column::CommitmentId.eq(commitment_id))
                .filter(rows)
                .exec(&tx)
        };
        shift(
            Expr::value(0),
            Condition::all().add(milestone::Column::Id.eq(id)),
        )
        .await?;
        shift(
            Expr::value(0).sub(Expr::col(milestone::Column::Position).add(delta)),
            Condition::all().add(milestone::Column::Position.between(lo, hi)),
        )
        .await?;
        shift(
            Expr::value(0).sub(Expr::col(milestone::Column::Position)),
            Condition::all().add(milestone::Column::Position.lt(0)),
        )
        .await?;
        m.position = Set(p);
    }
    m.updated_at = Set(now());
    let updated = m.update(&tx).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Follows (or unfollows) a commitment; idempotent, and the counter moves only when the row
/// really appears or disappears.
pub async fn set_following(
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    follow: bool,
) -> AppResult<commitment::Model> {
    actor.require_verified()?;
    let tx = begin_write(&ctx.db).await?;
    commitment::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("commitment"))?;
    let row = commitment_follow::ActiveModel {
        commitment_id: Set(id),
        user_id: Set(actor.id),
        created_at: Set(now()),
    };
    if toggle::set_row::<commitment_follow::Entity, _>(&tx, follow, row, (id, actor.id)).await? {
        let delta = if follow { 1 } else { -1 };
        toggle::bump::<commitment::Entity, _, _>(
            &tx,
            commitment::Column::Id,
            id,
            commitment::Column::FollowerCount,
            delta,
        )
        .await?;
    }
    let updated = commitment::Entity::find_by_id(id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("commitment"))?;
    tx.commit().await?;
    Ok(updated)
}
