//! Working groups and their members: creating and editing groups, joining, leaving, requests,
//! invitations, roles and removal. Who may see inside a group is `services::access`'s rule.

use sea_orm::sea_query::{Asterisk, Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseTransaction, EntityTrait, FromQueryResult, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
};
use serde_json::json;
use uuid::Uuid;

use super::page::{Cursor, Page, PageRequest};
use super::{access, field, toggle, Ctx};
use crate::auth::Actor;
use crate::db::{begin_write, now};
use crate::domain::{Slug, Title};
use crate::entities::membership::{self, Role as MemberRole, Status as MemberStatus};
use crate::entities::user::Role;
use crate::entities::working_group::{self, JoinPolicy, Kind, Visibility};
use crate::entities::{commitment, user, working_group_commitment};
use crate::error::{AppError, AppResult};
use crate::outbox::event::OutboxEvent;
use crate::outbox::write as outbox;

// How a viewer stands to a group is the access policy's answer; re-exported because every
// domain that works with groups asks it.
pub use super::access::{access_to, group_access as access, Access};

/// The group with this slug.
pub async fn find_by_slug(ctx: &Ctx, slug: &str) -> AppResult<Option<working_group::Model>> {
    Ok(working_group::Entity::find()
        .filter(working_group::Column::Slug.eq(slug.trim().to_lowercase()))
        .one(&ctx.db)
        .await?)
}

// ---------------------------------------------------------------------------------------
// Creating and running groups; joining, leaving, deciding, inviting, roles.
// ---------------------------------------------------------------------------------------

pub const NAME_MIN: usize = 3;
pub const NAME_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 20_000;

/// Accounts that may create groups.
const CREATORS: &[Role] = &[Role::Organiser, Role::Official, Role::Admin];

pub struct NewGroup {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub kind: Option<Kind>,
    pub visibility: Option<Visibility>,
    pub join_policy: Option<JoinPolicy>,
    pub commitment_ids: Vec<Uuid>,
    pub outcomes_public: Option<bool>,
}

#[derive(Default)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub kind: Option<Kind>,
    pub visibility: Option<Visibility>,
    pub join_policy: Option<JoinPolicy>,
    pub commitment_ids: Option<Vec<Uuid>>,
    pub outcomes_public: Option<bool>,
}

#[derive(Debug, Default, Clone)]
pub struct GroupFilter {
    pub search: Option<String>,
    pub commitment_id: Option<Uuid>,
    pub member_id: Option<Uuid>,
}

/// Reads a group and holds its row until the transaction ends. Every membership write
/// starts here, so two writers of one group's memberships queue behind each other and the
/// "at least one organiser" check sees what the one before committed.
async fn lock_group(tx: &DatabaseTransaction, id: Uuid) -> AppResult<working_group::Model> {
    working_group::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or(AppError::NotFound("working group"))
}

async fn reload_group(tx: &DatabaseTransaction, id: Uuid) -> AppResult<working_group::Model> {
    working_group::Entity::find_by_id(id)
        .one(tx)
        .await?
        .ok_or(AppError::NotFound("working group"))
}

async fn bump_members(tx: &DatabaseTransaction, group_id: Uuid, delta: i32) -> AppResult<()> {
    toggle::bump::<working_group::Entity, _, _>(
        tx,
        working_group::Column::Id,
        group_id,
        working_group::Column::MemberCount,
        delta,
    )
    .await
}

/// The number of ACTIVE organisers of a group, read under the group's lock.
async fn active_organisers(tx: &DatabaseTransaction, group_id: Uuid) -> AppResult<u64> {
    Ok(membership::Entity::find()
        .filter(membership::Column::WorkingGroupId.eq(group_id))
        .filter(membership::Column::Status.eq(MemberStatus::Active))
        .filter(membership::Column::Role.eq(MemberRole::Organiser))
        .count(tx)
        .await?)
}

/// The join policy of a group whose creator named none: a private group admits on REQUEST,
/// so that its inside is never open to anyone by default (a PRIVATE group joined OPENly is
/// made only when asked for by name); a public one is OPEN.
fn default_join_policy(visibility: Visibility) -> JoinPolicy {
    match visibility {
        Visibility::Public => JoinPolicy::Open,
        Visibility::Private => JoinPolicy::Request,
    }
}

fn outcomes_default(kind: Kind, visibility: Visibility) -> bool {
    kind == Kind::SteeringGroup || visibility == Visibility::Public
}

/// A public group's outcomes are always public; a private group's are public if asked.
fn outcomes_public(
    kind: Kind,
    visibility: Visibility,
    asked: Option<bool>,
    current: Option<bool>,
) -> AppResult<bool> {
    if visibility == Visibility::Public {
        if asked == Some(false) {
            return Err(AppError::bad_input(
                "outcomesPublic",
                "a public group's meet-up outcomes are always public",
            ));
        }
        return Ok(true);
    }
    Ok(asked
        .or(current)
        .unwrap_or_else(|| outcomes_default(kind, visibility)))
}

fn taken_slug(e: sea_orm::DbErr) -> AppError {
    if matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    ) {
        slug_conflict()
    } else {
        e.into()
    }
}

fn slug_conflict() -> AppError {
    AppError::ConflictOn {
        field: "slug".into(),
        message: "another group already uses this slug".into(),
    }
}

async fn check_slug_free(
    tx: &DatabaseTransaction,
    slug: &Slug,
    except: Option<Uuid>,
) -> AppResult<()> {
    let mut q = working_group::Entity::find().filter(working_group::Column::Slug.eq(slug.as_str()));
    if let Some(id) = except {
        q = q.filter(working_group::Column::Id.ne(id));
    }
    if q.count(tx).await? > 0 {
        return Err(slug_conflict());
    }
    Ok(())
}

/// The commitment IDs, without repeats, once every one exists.
async fn existing_commitments(tx: &DatabaseTransaction, ids: &[Uuid]) -> AppResult<Vec<Uuid>> {
    let mut unique: Vec<Uuid> = ids.to_vec();
    unique.sort();
    unique.dedup();
    if unique.is_empty() {
        return Ok(unique);
    }
    let found = commitment::Entity::find()
        .filter(commitment::Column::Id.is_in(unique.clone()))
        .count(tx)
        .await?;
    if found != unique.len() as u64 {
        return Err(AppError::bad_input(
            "commitmentIds",
            "no commitment has one of these IDs",
        ));
    }
    Ok(unique)
}

async fn link_commitments(tx: &DatabaseTransaction, group_id: Uuid, ids: &[Uuid]) -> AppResult<()> {
    working_group_commitment::Entity::delete_many()
        .filter(working_group_commitment::Column::WorkingGroupId.eq(group_id))
        .exec(tx)
        .await?;
    if ids.is_empty() {
        return Ok(());
    }
    working_group_commitment::Entity::insert_many(ids.iter().map(|c| {
        working_group_commitment::ActiveModel {
            working_group_id: Set(group_id),
            commitment_id: Set(*c),
        }
    }))
    .exec_without_returning(tx)
    .await?;
    Ok(())
}

/// Creates a group (ORGANISER, OFFICIAL and ADMIN accounts with a verified email); the
/// creator is its first ACTIVE organiser.
pub async fn create(ctx: &Ctx, actor: &Actor, input: NewGroup) -> AppResult<working_group::Model> {
    actor.require_role(CREATORS)?;
    actor.require_verified()?;
    let name = field("name", Title::parse(&input.name, NAME_MIN, NAME_MAX))?;
    let slug = field("slug", Slug::parse(&input.slug))?;
    let description = field(
        "description",
        ctx.markdown.body(
            input.description.as_deref().unwrap_or(""),
            0,
            DESCRIPTION_MAX,
        ),
    )?;
    let kind = input.kind.unwrap_or(Kind::WorkingGroup);
    let visibility = input.visibility.unwrap_or(Visibility::Public);
    let outcomes = outcomes_public(kind, visibility, input.outcomes_public, None)?;
    let tx = begin_write(&ctx.db).await?;
    check_slug_free(&tx, &slug, None).await?;
    let commitments = existing_commitments(&tx, &input.commitment_ids).await?;
    let at = now();
    let group = working_group::ActiveModel {
        id: Set(Uuid::now_v7()),
        slug: Set(slug.as_str().to_string()),
        name: Set(name.as_str().to_string()),
        description: Set(description.source().to_string()),
        description_html: Set(description.html().to_string()),
        kind: Set(kind),
        visibility: Set(visibility),
        join_policy: Set(input
            .join_policy
            .unwrap_or_else(|| default_join_policy(visibility))),
        outcomes_public: Set(outcomes),
        member_count: Set(1),
        created_by: Set(actor.id),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(&tx)
    .await
    .map_err(taken_slug)?;
    membership::ActiveModel {
        id: Set(Uuid::now_v7()),
        working_group_id: Set(group.id),
        user_id: Set(actor.id),
        role: Set(MemberRole::Organiser),
        status: Set(MemberStatus::Active),
        invited_by: Set(None),
        calendar_key_version: Set(0),
        joined_at: Set(Some(at)),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(&tx)
    .await?;
    link_commitments(&tx, group.id, &commitments).await?;
    tx.commit().await?;
    Ok(group)
}

/// Edits a group (its organisers and administrators); fields left out stay as they are.
/// `commitment_ids` replaces the linked commitments.
pub async fn update(
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    c: GroupChanges,
) -> AppResult<working_group::Model> {
    actor.require_verified()?;
    let name = c
        .name
        .as_deref()
        .map(|n| field("name", Title::parse(n, NAME_MIN, NAME_MAX)))
        .transpose()?;
    let slug = c
        .slug
        .as_deref()
        .map(|s| field("slug", Slug::parse(s)))
        .transpose()?;
    let description = c
        .description
        .as_deref()
        .map(|d| field("description", ctx.markdown.body(d, 0, DESCRIPTION_MAX)))
        .transpose()?;
    let tx = begin_write(&ctx.db).await?;
    let group = lock_group(&tx, id).await?;
    access_to(&tx, Some(actor), group.clone())
        .await?
        .require_organiser()?;
    if let Some(s) = &slug {
        check_slug_free(&tx, s, Some(id)).await?;
    }
    if let Some(ids) = &c.commitment_ids {
        let ids = existing_commitments(&tx, ids).await?;
        link_commitments(&tx, id, &ids).await?;
    }
    let kind = c.kind.unwrap_or(group.kind);
    let visibility = c.visibility.unwrap_or(group.visibility);
    let outcomes = outcomes_public(
        kind,
        visibility,
        c.outcomes_public,
        Some(group.outcomes_public),
    )?;
    let (was_visible, was_policy) = (group.visibility, group.join_policy);
    let mut m = group.into_active_model();
    if let Some(n) = name {
        m.name = Set(n.as_str().to_string());
    }
    if let Some(s) = slug {
        m.slug = Set(s.as_str().to_string());
    }
    if let Some(d) = description {
        m.description = Set(d.source().to_string());
        m.description_html = Set(d.html().to_string());
    }
    match c.join_policy {
        Some(p) => m.join_policy = Set(p),
        // Made private without naming a policy: an OPEN group stops admitting anyone who
        // asks, by the same default as a new private group.
        None if visibility != was_visible && was_policy == JoinPolicy::Open => {
            m.join_policy = Set(default_join_policy(visibility));
        }
        None => {}
    }
    m.kind = Set(kind);
    m.visibility = Set(visibility);
    m.outcomes_public = Set(outcomes);
    m.updated_at = Set(now());
    let updated = m.update(&tx).await.map_err(taken_slug)?;
    tx.commit().await?;
    Ok(updated)
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

/// The filtered groups as `viewer` may list them. Every group is listed (its name, kind and
/// description are public), but `member_id` finds a private group only when the viewer may
/// see inside it: the member themself, a fellow member or an administrator.
fn filtered(filter: &GroupFilter, viewer: Option<&Actor>) -> Select<working_group::Entity> {
    let mut q = working_group::Entity::find();
    if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
        let pattern = like_pattern(search);
        let like = |col: working_group::Column| {
            Expr::expr(Func::lower(Expr::col((working_group::Entity, col))))
                .like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        q = q.filter(
            Condition::any()
                .add(like(working_group::Column::Name))
                .add(like(working_group::Column::Slug))
                .add(like(working_group::Column::Description)),
        );
    }
    if let Some(c) = filter.commitment_id {
        q = q.filter(
            working_group::Column::Id.in_subquery(
                Query::select()
                    .column(working_group_commitment::Column::WorkingGroupId)
                    .from(working_group_commitment::Entity)
                    .and_where(working_group_commitment::Column::CommitmentId.eq(c))
                    .to_owned(),
            ),
        );
    }
    if let Some(member) = filter.member_id {
        // The member's groups, among those the viewer may see inside (which holds all of
        // them when the viewer is the member).
        let of_member = Query::select()
            .column(membership::Column::WorkingGroupId)
            .from(membership::Entity)
            .cond_where(access::readable_members(viewer))
            .and_where(membership::Column::UserId.eq(member))
            .to_owned();
        q = q.filter(working_group::Column::Id.in_subquery(of_member));
    }
    q
}

/// Groups by name, then ID.
pub async fn list(
    ctx: &Ctx,
    viewer: Option<&Actor>,
    filter: &GroupFilter,
    page: &PageRequest,
) -> AppResult<Page<working_group::Model>> {
    let mut q = filtered(filter, viewer);
    if let Some(after) = &page.after {
        q = q.filter(
            Expr::tuple([
                Expr::col((working_group::Entity, working_group::Column::Name)),
                Expr::col((working_group::Entity, working_group::Column::Id)),
            ])
            .gt(Expr::tuple([
                Expr::value(after.key_str()?),
                Expr::value(after.id),
            ])),
        );
    }
    let rows = q
        .order_by_asc(working_group::Column::Name)
        .order_by_asc(working_group::Column::Id)
        .limit(page.first + 1)
        .all(&ctx.db)
        .await?;
    Ok(Page::from_rows(rows, page.first, |g| Cursor {
        k: Some(serde_json::Value::String(g.name.clone())),
        id: g.id,
    }))
}

pub async fn count(ctx: &Ctx, viewer: Option<&Actor>, filter: &GroupFilter) -> AppResult<u64> {
    Ok(filtered(filter, viewer).count(&ctx.db).await?)
}

/// Where a member stands in the member list: organisers first, then by join time.
fn member_rank(role: MemberRole) -> i64 {
    match role {
        MemberRole::Organiser => 0,
        MemberRole::Member => 1,
    }
}

pub fn member_cursor(m: &membership::Model) -> Cursor {
    Cursor {
        k: Some(json!([
            member_rank(m.role),
            m.joined_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        ])),
        id: m.id,
    }
}

fn member_after(after: &Cursor) -> AppResult<Condition> {
    let bad = || AppError::bad_input("after", "not a cursor from this list");
    let k = after
        .k
        .as_ref()
        .and_then(|k| k.as_array())
        .ok_or_else(bad)?;
    let rank = k
        .first()
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(bad)?;
    let joined = k
        .get(1)
        .and_then(serde_json::Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok_or_else(bad)?;
    let later_same_role = |role: MemberRole| {
        Condition::all().add(membership::Column::Role.eq(role)).add(
            Expr::tuple([
                Expr::col((membership::Entity, membership::Column::JoinedAt)),
                Expr::col((membership::Entity, membership::Column::Id)),
            ])
            .gt(Expr::tuple([Expr::value(joined), Expr::value(after.id)])),
        )
    };
    Ok(match rank {
        0 => Condition::any()
            .add(membership::Column::Role.eq(MemberRole::Member))
            .add(later_same_role(MemberRole::Organiser)),
        _ => later_same_role(MemberRole::Member),
    })
}

/// A page of a group's ACTIVE members as `viewer` may list them (none from outside a
/// private group): organisers first, then by join time.
pub async fn members(
    ctx: &Ctx,
    viewer: Option<&Actor>,
    group_id: Uuid,
    page: &PageRequest,
) -> AppResult<Page<membership::Model>> {
    let mut q = membership::Entity::find()
        .filter(membership::Column::WorkingGroupId.eq(group_id))
        .filter(access::readable_members(viewer));
    if let Some(after) = &page.after {
        q = q.filter(member_after(after)?);
    }
    let rows = q
        .order_by_desc(membership::Column::Role)
        .order_by_asc(membership::Column::JoinedAt)
        .order_by_asc(membership::Column::Id)
        .limit(page.first + 1)
        .all(&ctx.db)
        .await?;
    Ok(Page::from_rows(rows, page.first, member_cursor))
}

/// The first `n` ACTIVE members of each of `groups`, in member-list order, in one
/// statement (a row number per group), for a page of groups that shows their members.
pub async fn first_members<C: ConnectionTrait>(
    conn: &C,
    groups: &[Uuid],
    n: u64,
) -> Result<Vec<membership::Model>, sea_orm::DbErr> {
    let inner = membership::Entity::find()
        .filter(membership::Column::WorkingGroupId.is_in(groups.to_vec()))
        .filter(membership::Column::Status.eq(MemberStatus::Active))
        .expr_as(
            Expr::cust(
                r#"ROW_NUMBER() OVER (PARTITION BY "working_group_id" ORDER BY "role" DESC, "joined_at" ASC, "id" ASC)"#,
            ),
            "member_rank",
        )
        .into_query();
    let outer = Query::select()
        .column(Asterisk)
        .from_subquery(inner, "ranked")
        .and_where(Expr::col("member_rank").lte(i64::try_from(n).unwrap_or(i64::MAX)))
        .order_by("working_group_id", sea_orm::Order::Asc)
        .order_by("member_rank", sea_orm::Order::Asc)
        .to_owned();
    membership::Model::find_by_statement(conn.get_database_backend().build(&outer))
        .all(conn)
        .await
}

async fn set_status(
    tx: &DatabaseTransaction,
    m: membership::Model,
    status: MemberStatus,
) -> AppResult<membership::Model> {
    let at = now();
    let becomes_active = status == MemberStatus::Active && m.status != MemberStatus::Active;
    let group_id = m.working_group_id;
    let mut a = m.into_active_model();
    a.status = Set(status);
    if becomes_active {
        a.joined_at = Set(Some(at));
    }
    a.updated_at = Set(at);
    let updated = a.update(tx).await?;
    if becomes_active {
        bump_members(tx, group_id, 1).await?;
    }
    Ok(updated)
}

async fn request_event(
    tx: &DatabaseTransaction,
    group: &working_group::Model,
    m: &membership::Model,
) -> AppResult<()> {
    outbox::enqueue_event(
        tx,
        &OutboxEvent::MembershipRequested {
            working_group_id: group.id,
            user_id: m.user_id,
            membership_id: Some(m.id),
            day: Some(m.updated_at.date_naive()),
        },
    )
    .await?;
    Ok(())
}

/// Joins a group as its policy allows. OPEN: an ACTIVE member at once; REQUEST: a PENDING
/// request for the organisers (a REJECTED one may ask again); INVITE: only with an
/// invitation, which this accepts. An invitation admits under every policy. Joining again
/// changes nothing.
pub async fn join(ctx: &Ctx, actor: &Actor, group_id: Uuid) -> AppResult<membership::Model> {
    actor.require_verified()?;
    let tx = begin_write(&ctx.db).await?;
    let group = lock_group(&tx, group_id).await?;
    let existing = access_to(&tx, Some(actor), group.clone()).await?.membership;
    let result = match existing {
        Some(m) if m.status == MemberStatus::Active => m,
        Some(m) if m.status == MemberStatus::Invited => {
            set_status(&tx, m, MemberStatus::Active).await?
        }
        Some(m) => match group.join_policy {
            JoinPolicy::Open => set_status(&tx, m, MemberStatus::Active).await?,
            JoinPolicy::Request if m.status == MemberStatus::Pending => m,
            JoinPolicy::Request => {
                let m = set_status(&tx, m, MemberStatus::Pending).await?;
                request_event(&tx, &group, &m).await?;
                m
            }
            JoinPolicy::Invite => return Err(invite_only()),
        },
        None => {
            let status = match group.join_policy {
                JoinPolicy::Open => MemberStatus::Active,
                JoinPolicy::Request => MemberStatus::Pending,
                JoinPolicy::Invite => return Err(invite_only()),
            };
            let at = now();
            let m = membership::ActiveModel {
                id: Set(Uuid::now_v7()),
                working_group_id: Set(group.id),
                user_id: Set(actor.id),
                role: Set(MemberRole::Member),
                status: Set(status),
                invited_by: Set(None),
                calendar_key_version: Set(0),
                joined_at: Set((status == MemberStatus::Active).then_some(at)),
                created_at: Set(at),
                updated_at: Set(at),
            }
            .insert(&tx)
            .await?;
            if status == MemberStatus::Active {
                bump_members(&tx, group.id, 1).await?;
            } else {
                request_event(&tx, &group, &m).await?;
            }
            m
        }
    };
    tx.commit().await?;
    Ok(result)
}

fn invite_only() -> AppError {
    AppError::Forbidden("this group admits only the people its organisers invite".into())
}

fn last_organiser() -> AppError {
    AppError::Conflict("a group keeps at least one organiser; name another organiser first".into())
}

/// Leaves a group, withdraws a pending request or declines an invitation: the row goes.
/// The last ACTIVE organiser cannot leave. Leaving a group one is not in changes nothing.
/// A member who leaves gives up their RSVPs to the group's meet-ups still to come.
pub async fn leave(ctx: &Ctx, actor: &Actor, group_id: Uuid) -> AppResult<working_group::Model> {
    let tx = begin_write(&ctx.db).await?;
    let group = lock_group(&tx, group_id).await?;
    let Some(m) = access_to(&tx, Some(actor), group.clone()).await?.membership else {
        return reload_group(&tx, group_id).await;
    };
    end_membership(ctx, &tx, &group, &m).await?;
    let group = reload_group(&tx, group_id).await?;
    tx.commit().await?;
    Ok(group)
}

/// Ends membership `m` of the locked `group`: the row goes and, for an ACTIVE member, the
/// member count drops and their RSVPs to meet-ups still to come are given up (their seats
/// go to the waitlist). `CONFLICT` for the last ACTIVE organiser.
async fn end_membership(
    ctx: &Ctx,
    tx: &DatabaseTransaction,
    group: &working_group::Model,
    m: &membership::Model,
) -> AppResult<()> {
    let active = m.status == MemberStatus::Active;
    if active && m.role == MemberRole::Organiser && active_organisers(tx, group.id).await? <= 1 {
        return Err(last_organiser());
    }
    if toggle::remove_row::<membership::Entity, _>(tx, m.id).await? && active {
        bump_members(tx, group.id, -1).await?;
        super::meetups::give_up_rsvps(ctx, tx, group, m.user_id).await?;
    }
    Ok(())
}

/// Longest reason kept for removing a member.
pub const REMOVAL_REASON_MAX: usize = 1_000;

/// An organiser (or an administrator) removes someone from the group: an ACTIVE member, a
/// PENDING request, an INVITED or REJECTED person alike; the row goes, as when they leave,
/// and an ACTIVE member gives up their RSVPs to meet-ups still to come. Logged in the
/// moderation log with the reason. Nobody removes themself (`BAD_USER_INPUT`: leaving is
/// `leaveWorkingGroup`), and the last ACTIVE organiser cannot be removed (`CONFLICT`).
/// Returns the membership as it was.
pub async fn remove_member(
    ctx: &Ctx,
    actor: &Actor,
    membership_id: Uuid,
    reason: Option<&str>,
) -> AppResult<membership::Model> {
    actor.require_verified()?;
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > REMOVAL_REASON_MAX) {
        return Err(AppError::bad_input(
            "reason",
            format!("at most {REMOVAL_REASON_MAX} characters"),
        ));
    }
    let tx = begin_write(&ctx.db).await?;
    let (group, m) = organised_membership(&tx, actor, membership_id).await?;
    if m.user_id == actor.id {
        return Err(AppError::bad_input(
            "membershipId",
            "this is your own membership: leave the group instead",
        ));
    }
    end_membership(ctx, &tx, &group, &m).await?;
    super::moderation_log::record(
        &tx,
        super::moderation_log::Entry {
            actor_id: actor.id,
            action: crate::entities::moderation_action::Action::MemberRemoved,
            subject_type: crate::entities::report::SubjectType::User,
            subject_id: m.user_id,
            working_group_id: Some(group.id),
            reason,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(m)
}

/// A membership and its group, the group locked and the membership read under that lock,
/// for a write by the group's organisers.
async fn organised_membership(
    tx: &DatabaseTransaction,
    actor: &Actor,
    membership_id: Uuid,
) -> AppResult<(working_group::Model, membership::Model)> {
    let group_id = membership::Entity::find_by_id(membership_id)
        .one(tx)
        .await?
        .ok_or(AppError::NotFound("membership"))?
        .working_group_id;
    let group = lock_group(tx, group_id).await?;
    access_to(tx, Some(actor), group.clone())
        .await?
        .require_organiser()?;
    // Read again under the lock: a writer that went before may have changed or removed it.
    let m = membership::Entity::find_by_id(membership_id)
        .one(tx)
        .await?
        .ok_or(AppError::NotFound("membership"))?;
    Ok((group, m))
}

/// An organiser approves (ACTIVE) or rejects (REJECTED) a PENDING request; the requester is
/// told.
pub async fn decide(
    ctx: &Ctx,
    actor: &Actor,
    membership_id: Uuid,
    approve: bool,
) -> AppResult<membership::Model> {
    actor.require_verified()?;
    let tx = begin_write(&ctx.db).await?;
    let (group, m) = organised_membership(&tx, actor, membership_id).await?;
    if m.status != MemberStatus::Pending {
        return Err(AppError::Conflict(format!(
            "only a PENDING request can be decided; this membership is {}",
            m.status.to_value()
        )));
    }
    let status = if approve {
        MemberStatus::Active
    } else {
        MemberStatus::Rejected
    };
    let m = set_status(&tx, m, status).await?;
    outbox::enqueue_event(
        &tx,
        &OutboxEvent::MembershipDecided {
            working_group_id: group.id,
            membership_id: m.id,
            user_id: m.user_id,
            approved: approve,
            decided_by: Some(actor.id),
            at: m.updated_at.timestamp_micros(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(m)
}

/// An organiser invites an account: a new INVITED membership, or a PENDING or REJECTED one
/// turned INVITED. Inviting someone already invited changes nothing; an ACTIVE member is a
/// conflict.
pub async fn invite(
    ctx: &Ctx,
    actor: &Actor,
    group_id: Uuid,
    user_id: Uuid,
) -> AppResult<membership::Model> {
    actor.require_verified()?;
    let tx = begin_write(&ctx.db).await?;
    let group = lock_group(&tx, group_id).await?;
    access_to(&tx, Some(actor), group.clone())
        .await?
        .require_organiser()?;
    if user::Entity::find_by_id(user_id).count(&tx).await? == 0 {
        return Err(AppError::bad_input("userId", "no account has this ID"));
    }
    let existing = membership::Entity::find()
        .filter(membership::Column::WorkingGroupId.eq(group_id))
        .filter(membership::Column::UserId.eq(user_id))
        .one(&tx)
        .await?;
    let at = now();
    let invited = match existing {
        Some(m) if m.status == MemberStatus::Active => {
            return Err(AppError::Conflict(
                "this account is already a member of the group".into(),
            ))
        }
        Some(m) if m.status == MemberStatus::Invited => {
            tx.commit().await?;
            return Ok(m);
        }
        Some(m) => {
            let mut a = m.into_active_model();
            a.status = Set(MemberStatus::Invited);
            a.invited_by = Set(Some(actor.id));
            a.updated_at = Set(at);
            a.update(&tx).await?
        }
        None => {
            membership::ActiveModel {
                id: Set(Uuid::now_v7()),
                working_group_id: Set(group_id),
                user_id: Set(user_id),
                role: Set(MemberRole::Member),
                status: Set(MemberStatus::Invited),
                invited_by: Set(Some(actor.id)),
                calendar_key_version: Set(0),
                joined_at: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
            }
            .insert(&tx)
            .await?
        }
    };
    outbox::enqueue_event(
        &tx,
        &OutboxEvent::MembershipInvited {
            working_group_id: group.id,
            membership_id: invited.id,
            user_id,
            invited_by: Some(actor.id),
            at: invited.updated_at.timestamp_micros(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(invited)
}

/// An organiser promotes an ACTIVE member to organiser or demotes an organiser; demoting
/// the last ACTIVE organiser is a conflict.
pub async fn set_role(
    ctx: &Ctx,
    actor: &Actor,
    membership_id: Uuid,
    role: MemberRole,
) -> AppResult<membership::Model> {
    actor.require_verified()?;
    let tx = begin_write(&ctx.db).await?;
    let (group, m) = organised_membership(&tx, actor, membership_id).await?;
    if m.status != MemberStatus::Active {
        return Err(AppError::Conflict(format!(
            "only an ACTIVE member has a role; this membership is {}",
            m.status.to_value()
        )));
    }
    if m.role == role {
        tx.commit().await?;
        return Ok(m);
    }
    if m.role == MemberRole::Organiser && active_organisers(&tx, group.id).await? <= 1 {
        return Err(last_organiser());
    }
    let mut a = m.into_active_model();
    a.role = Set(role);
    a.updated_at = Set(now());
    let updated = a.update(&tx).await?;
    outbox::enqueue_event(
        &tx,
        &OutboxEvent::MemberRoleChanged {
            working_group_id: group.id,
            membership_id: updated.id,
            user_id: updated.user_id,
            role: updated.role.to_value(),
            actor_id: Some(actor.id),
            at: updated.updated_at.timestamp_micros(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}
