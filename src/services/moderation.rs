//! Moderation: reports on posts, threads, suggestions and official updates; hiding and
//! unhiding content; and the rule for who sees hidden content. Every decision is written to
//! the append-only moderation log (`moderation_log`) in the same transaction.
//!
//! Who moderates: ADMIN accounts anywhere, and a working group's ACTIVE organisers for the
//! content inside their group (its threads and their posts). Nobody moderates their own
//! content or decides reports about it, and a hide by a site moderator (an OFFICIAL or
//! ADMIN account, even acting as a group's organiser) is undone only at site level, by an
//! ADMIN: a group's organisers cannot overrule it.
//!
//! Reporting needs a verified address and has an hourly budget (`limits.reports_per_hour`):
//! every report reaches the moderators.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
    SqlErr,
};
use uuid::Uuid;

use super::account_limits::{self, Action as Budget};
use super::moderation_log::{self, Entry};
use super::page::{Cursor, Page, PageRequest};
use super::{groups, Ctx};
use crate::auth::Actor;
use crate::db::{begin_write, now};
use crate::entities::membership;
use crate::entities::moderation_action::{self, Action as LogAction};
use crate::entities::report::{self, Reason, Resolution, Status, SubjectType};
use crate::entities::user::{self, Role};
use crate::entities::{commitment_update, post, suggestion, thread};
use crate::error::{AppError, AppResult};
use crate::outbox::event::OutboxEvent;
use crate::outbox::write as outbox;

pub const DETAILS_MAX: usize = 2_000;
pub const NOTE_MAX: usize = 2_000;

/// What hidden content shows to those who may not see it.
pub const HIDDEN_TITLE: &str = "[hidden by a moderator]";
pub const HIDDEN_BODY: &str = "*This content was hidden by a moderator.*";
pub const HIDDEN_BODY_HTML: &str = "<p><em>This content was hidden by a moderator.</em></p>\n";

/// Whether `viewer` sees the real text of hidden content written by `author_id`: its author
/// and moderators do (site ADMINs always; a group's organisers for content inside their
/// group, which the caller says with `organises_group`); everyone else sees the marker. The
/// one rule for every kind of hidden content.
pub fn sees_hidden(viewer: Option<&Actor>, author_id: Uuid, organises_group: bool) -> bool {
    viewer.is_some_and(|a| a.id == author_id || a.is_admin() || organises_group)
}

/// The text `viewer` is shown: `text` itself, or `marker` when it is hidden from them.
pub fn shown<'a>(
    viewer: Option<&Actor>,
    hidden: bool,
    author_id: Uuid,
    organises_group: bool,
    text: &'a str,
    marker: &'a str,
) -> &'a str {
    if hidden && !sees_hidden(viewer, author_id, organises_group) {
        marker
    } else {
        text
    }
}

/// An item someone reports or a moderator hides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubjectRef {
    pub kind: SubjectType,
    pub id: Uuid,
}

/// An item as moderation sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub kind: SubjectType,
    pub id: Uuid,
    pub author_id: Uuid,
    /// The group it is inside (a group thread, or a post in one).
    pub working_group_id: Option<Uuid>,
    pub hidden: bool,
}

async fn load_subject<C: ConnectionTrait>(conn: &C, r: SubjectRef) -> AppResult<Subject> {
    let subject = |author_id, working_group_id, hidden| Subject {
        kind: r.kind,
        id: r.id,
        author_id,
        working_group_id,
        hidden,
    };
    match r.kind {
        SubjectType::Post => {
            let p = post::Entity::find_by_id(r.id)
                .one(conn)
                .await?
                .ok_or(AppError::NotFound("post"))?;
            let t = thread::Entity::find_by_id(p.thread_id)
                .one(conn)
                .await?
                .ok_or(AppError::NotFound("thread"))?;
            Ok(subject(p.author_id, t.working_group_id, p.hidden))
        }
        SubjectType::Thread => {
            let t = thread::Entity::find_by_id(r.id)
                .one(conn)
                .await?
                .ok_or(AppError::NotFound("thread"))?;
            Ok(subject(t.author_id, t.working_group_id, t.hidden))
        }
        SubjectType::Suggestion => {
            let s = suggestion::Entity::find_by_id(r.id)
                .one(conn)
                .await?
                .ok_or(AppError::NotFound("suggestion"))?;
            Ok(subject(s.author_id, None, s.hidden))
        }
        SubjectType::Update => {
            let u = commitment_update::Entity::find_by_id(r.id)
                .one(conn)
                .await?
                .ok_or(AppError::NotFound("update"))?;
            Ok(subject(u.author_id, None, u.hidden))
        }
        SubjectType::User => Err(AppError::bad_input(
            "input",
            "accounts are not reported or hidden here",
        )),
    }
}

/// Sets the item's `hidden` flag in one statement.
async fn set_hidden<C: ConnectionTrait>(conn: &C, s: &Subject, hidden: bool) -> AppResult<()> {
    match s.kind {
        SubjectType::Post => {
            post::Entity::update_many()
                .col_expr(post::Column::Hidden, Expr::value(hidden))
                .filter(post::Column::Id.eq(s.id))
                .exec(conn)
                .await?;
        }
        SubjectType::Thread => {
            thread::Entity::update_many()
                .col_expr(thread::Column::Hidden, Expr::value(hidden))
                .filter(thread::Column::Id.eq(s.id))
                .exec(conn)
                .await?;
        }
        SubjectType::Suggestion => {
            suggestion::Entity::update_many()
                .col_expr(suggestion::Column::Hidden, Expr::value(hidden))
                .filter(suggestion::Column::Id.eq(s.id))
                .exec(conn)
                .await?;
        }
        SubjectType::Update => {
            commitment_update::Entity::update_many()
                .col_expr(commitment_update::Column::Hidden, Expr::value(hidden))
                .filter(commitment_update::Column::Id.eq(s.id))
                .exec(conn)
                .await?;
        }
        SubjectType::User => {}
    }
    Ok(())
}

/// Whether `actor` moderates content inside `working_group_id` (or outside any group).
pub async fn may_moderate<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    working_group_id: Option<Uuid>,
) -> AppResult<bool> {
    if actor.is_admin() {
        return Ok(true);
    }
    match working_group_id {
        Some(g) => Ok(groups::access(conn, Some(actor), g).await?.is_organiser()),
        None => Ok(false),
    }
}

async fn require_moderator<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    working_group_id: Option<Uuid>,
) -> AppResult<()> {
    if may_moderate(conn, actor, working_group_id).await? {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only moderators (administrators, and a group's organisers for its content) may do this"
                .into(),
        ))
    }
}

/// `FORBIDDEN` when `actor` wrote `subject`: nobody judges their own content, not even an
/// administrator.
fn require_not_author(actor: &Actor, subject: &Subject) -> AppResult<()> {
    if subject.author_id == actor.id {
        return Err(AppError::Forbidden(
            "nobody moderates their own content or decides reports about it".into(),
        ));
    }
    Ok(())
}

/// Whether the hide in force on `subject` (its latest HIDE in the log) was made by a site
/// moderator: an account whose site role is OFFICIAL or ADMIN, whatever else it is.
async fn hidden_at_site_level<C: ConnectionTrait>(conn: &C, subject: &Subject) -> AppResult<bool> {
    let Some(hider) = moderation_action::Entity::find()
        .select_only()
        .column(moderation_action::Column::ActorId)
        .filter(moderation_action::Column::SubjectType.eq(subject.kind))
        .filter(moderation_action::Column::SubjectId.eq(subject.id))
        .filter(moderation_action::Column::Action.eq(LogAction::Hide))
        .order_by_desc(moderation_action::Column::Id)
        .into_tuple::<Uuid>()
        .one(conn)
        .await?
    else {
        return Ok(false);
    };
    let role: Option<Role> = user::Entity::find_by_id(hider)
        .select_only()
        .column(user::Column::Role)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(matches!(role, Some(Role::Official | Role::Admin)))
}

fn text(name: &str, raw: Option<&str>, max: usize) -> AppResult<Option<String>> {
    let Some(t) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if t.chars().count() > max {
        return Err(AppError::bad_input(
            name,
            format!("at most {max} characters"),
        ));
    }
    Ok(Some(t.to_string()))
}

/// A report to file.
pub struct NewReport<'a> {
    pub subject: SubjectRef,
    pub reason: Reason,
    pub details: Option<&'a str>,
}

/// Files a report (any signed-in account) and queues a notification event for the
/// moderators concerned, in one transaction. One OPEN report per account and item: a second
/// is `CONFLICT`.
pub async fn file_report(
    ctx: &Ctx,
    actor: &Actor,
    input: NewReport<'_>,
) -> AppResult<report::Model> {
    actor.require_verified()?;
    let details = text("details", input.details, DETAILS_MAX)?.unwrap_or_default();
    let tx = begin_write(&ctx.db).await?;
    let subject = load_subject(&tx, input.subject).await?;
    if let Some(g) = subject.working_group_id {
        // Content of a private group does not exist for those who may not see it.
        if !groups::access(&tx, Some(actor), g).await?.can_see_inside() {
            return Err(AppError::NotFound("item"));
        }
    }
    if subject.author_id == actor.id {
        return Err(AppError::Forbidden(
            "you cannot report your own content".into(),
        ));
    }
    // Counted in this transaction: a refused or duplicate report gives its count back.
    account_limits::check(ctx, &tx, actor, Budget::Report).await?;
    let created = report::ActiveModel {
        id: Set(Uuid::now_v7()),
        reporter_id: Set(actor.id),
        subject_type: Set(subject.kind),
        subject_id: Set(subject.id),
        working_group_id: Set(subject.working_group_id),
        reason: Set(input.reason),
        details: Set(details),
        status: Set(Status::Open),
        resolution: Set(None),
        resolution_note: Set(None),
        resolved_by: Set(None),
        resolved_at: Set(None),
        created_at: Set(now()),
    }
    .insert(&tx)
    .await
    .map_err(|e| match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            AppError::Conflict("you have already reported this; a moderator will look at it".into())
        }
        _ => e.into(),
    })?;
    // One row: the notification worker fans it out to the site's administrators and, for
    // content inside a group, to the group's organisers.
    // The moderators hear of an item once while it waits for them: only the report that
    // opens its case (no other report of it open) tells them; further reports are listed
    // for them, and mail nobody.
    let open = report::Entity::find()
        .filter(report::Column::SubjectType.eq(created.subject_type))
        .filter(report::Column::SubjectId.eq(created.subject_id))
        .filter(report::Column::Status.eq(Status::Open))
        .count(&tx)
        .await?;
    if open == 1 {
        outbox::enqueue_event(
            &tx,
            &OutboxEvent::ReportFiled {
                report_id: created.id,
                actor_id: Some(actor.id),
                working_group_id: subject.working_group_id,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(created)
}

pub fn subject_type_str(kind: SubjectType) -> &'static str {
    match kind {
        SubjectType::Post => "POST",
        SubjectType::Thread => "THREAD",
        SubjectType::Suggestion => "SUGGESTION",
        SubjectType::Update => "UPDATE",
        SubjectType::User => "USER",
    }
}

pub fn reason_str(reason: Reason) -> &'static str {
    match reason {
        Reason::Spam => "SPAM",
        Reason::Abuse => "ABUSE",
        Reason::OffTopic => "OFF_TOPIC",
        Reason::PersonalData => "PERSONAL_DATA",
        Reason::Other => "OTHER",
    }
}

/// The reports `actor` may see: every report for an ADMIN; the reports on their groups'
/// content for a group's organisers; `FORBIDDEN` for anyone else.
async fn reports_visible_to(ctx: &Ctx, actor: &Actor) -> AppResult<Select<report::Entity>> {
    let q = report::Entity::find();
    if actor.is_admin() {
        return Ok(q);
    }
    let organised: Vec<Uuid> = membership::Entity::find()
        .select_only()
        .column(membership::Column::WorkingGroupId)
        .filter(super::access::organises(actor))
        .into_tuple()
        .all(&ctx.db)
        .await?;
    if organised.is_empty() {
        return Err(AppError::Forbidden("only moderators see reports".into()));
    }
    Ok(q.filter(report::Column::WorkingGroupId.is_in(organised)))
}

fn with_open(q: Select<report::Entity>, open: Option<bool>) -> Select<report::Entity> {
    match open {
        Some(true) => q.filter(report::Column::Status.eq(Status::Open)),
        Some(false) => q.filter(report::Column::Status.eq(Status::Resolved)),
        None => q,
    }
}

/// Reports, newest first, optionally only the open (or only the resolved) ones.
pub async fn reports(
    ctx: &Ctx,
    actor: &Actor,
    open: Option<bool>,
    page: &PageRequest,
) -> AppResult<Page<report::Model>> {
    let mut q = with_open(reports_visible_to(ctx, actor).await?, open);
    if let Some(after) = &page.after {
        q = q.filter(report::Column::Id.lt(after.id));
    }
    let rows = q
        .order_by_desc(report::Column::Id)
        .limit(page.first + 1)
        .all(&ctx.db)
        .await?;
    Ok(Page::from_rows(rows, page.first, |r| Cursor {
        k: None,
        id: r.id,
    }))
}

pub async fn count_reports(ctx: &Ctx, actor: &Actor, open: Option<bool>) -> AppResult<u64> {
    Ok(with_open(reports_visible_to(ctx, actor).await?, open)
        .count(&ctx.db)
        .await?)
}

/// Resolves every OPEN report on `subject` as `resolution`.
async fn resolve_open_reports(
    tx: &DatabaseTransaction,
    actor: &Actor,
    subject: &Subject,
    resolution: Resolution,
    note: Option<&str>,
) -> AppResult<u64> {
    let r = report::Entity::update_many()
        .col_expr(report::Column::Status, Expr::value(Status::Resolved))
        .col_expr(report::Column::Resolution, Expr::value(resolution))
        .col_expr(
            report::Column::ResolutionNote,
            Expr::value(note.map(str::to_string)),
        )
        .col_expr(report::Column::ResolvedBy, Expr::value(actor.id))
        .col_expr(report::Column::ResolvedAt, Expr::value(now()))
        .filter(report::Column::SubjectType.eq(subject.kind))
        .filter(report::Column::SubjectId.eq(subject.id))
        .filter(report::Column::Status.eq(Status::Open))
        .exec(tx)
        .await?;
    Ok(r.rows_affected)
}

/// Hides or unhides `subject` and logs it; nothing happens (and nothing is logged) when it
/// already is so. Returns whether it changed.
async fn change_visibility(
    tx: &DatabaseTransaction,
    actor: &Actor,
    subject: &Subject,
    hidden: bool,
    note: Option<&str>,
) -> AppResult<bool> {
    if subject.hidden == hidden {
        return Ok(false);
    }
    set_hidden(tx, subject, hidden).await?;
    log(
        tx,
        actor,
        subject,
        if hidden {
            LogAction::Hide
        } else {
            LogAction::Unhide
        },
        note,
    )
    .await?;
    Ok(true)
}

async fn log(
    tx: &DatabaseTransaction,
    actor: &Actor,
    subject: &Subject,
    action: LogAction,
    note: Option<&str>,
) -> AppResult<()> {
    moderation_log::record(
        tx,
        Entry {
            actor_id: actor.id,
            action,
            subject_type: subject.kind,
            subject_id: subject.id,
            working_group_id: subject.working_group_id,
            reason: note,
        },
    )
    .await
}

/// Decides an OPEN report. HIDE hides the item and resolves every open report on it
/// (logged as REPORT_UPHELD, and HIDE when the item was visible); DISMISS resolves this
/// report only (REPORT_DISMISSED). A resolved report is `CONFLICT`.
pub async fn resolve_report(
    ctx: &Ctx,
    actor: &Actor,
    report_id: Uuid,
    resolution: Resolution,
    note: Option<&str>,
) -> AppResult<report::Model> {
    let note = text("note", note, NOTE_MAX)?;
    let tx = begin_write(&ctx.db).await?;
    let r = report::Entity::find_by_id(report_id)
        .lock_exclusive()
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("report"))?;
    require_moderator(&tx, actor, r.working_group_id).await?;
    if r.status != Status::Open {
        return Err(AppError::Conflict(
            "this report has already been resolved".into(),
        ));
    }
    let subject = load_subject(
        &tx,
        SubjectRef {
            kind: r.subject_type,
            id: r.subject_id,
        },
    )
    .await?;
    require_not_author(actor, &subject)?;
    match resolution {
        Resolution::Hide => {
            change_visibility(&tx, actor, &subject, true, note.as_deref()).await?;
            resolve_open_reports(&tx, actor, &subject, Resolution::Hide, note.as_deref()).await?;
            log(
                &tx,
                actor,
                &subject,
                LogAction::ReportUpheld,
                note.as_deref(),
            )
            .await?;
        }
        Resolution::Dismiss => {
            let mut a = r.into_active_model();
            a.status = Set(Status::Resolved);
            a.resolution = Set(Some(Resolution::Dismiss));
            a.resolution_note = Set(note.clone());
            a.resolved_by = Set(Some(actor.id));
            a.resolved_at = Set(Some(now()));
            a.update(&tx).await?;
            log(
                &tx,
                actor,
                &subject,
                LogAction::ReportDismissed,
                note.as_deref(),
            )
            .await?;
        }
    }
    let resolved = report::Entity::find_by_id(report_id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("report"))?;
    tx.commit().await?;
    if resolution == Resolution::Hide {
        announce(ctx, &subject);
    }
    Ok(resolved)
}

/// A moderator hides (or unhides) an item directly. Hiding also resolves the item's open
/// reports as HIDE. Returns the item as it now is.
pub async fn set_visibility(
    ctx: &Ctx,
    actor: &Actor,
    target: SubjectRef,
    hidden: bool,
    note: Option<&str>,
) -> AppResult<Subject> {
    let note = text("note", note, NOTE_MAX)?;
    let tx = begin_write(&ctx.db).await?;
    let subject = load_subject(&tx, target).await?;
    require_moderator(&tx, actor, subject.working_group_id).await?;
    require_not_author(actor, &subject)?;
    if subject.hidden && !hidden && !actor.is_admin() && hidden_at_site_level(&tx, &subject).await?
    {
        return Err(AppError::Forbidden(
            "a site moderator hid this; only a site administrator can unhide it".into(),
        ));
    }
    change_visibility(&tx, actor, &subject, hidden, note.as_deref()).await?;
    if hidden {
        resolve_open_reports(&tx, actor, &subject, Resolution::Hide, note.as_deref()).await?;
    }
    tx.commit().await?;
    announce(ctx, &subject);
    Ok(Subject { hidden, ..subject })
}

/// Tells live views of a suggestion that it changed (they re-read it through the
/// visibility rule, so a hidden one reaches each subscriber as that subscriber may see it).
fn announce(ctx: &Ctx, subject: &Subject) {
    if subject.kind == SubjectType::Suggestion {
        ctx.events
            .publish(crate::events::Event::SuggestionUpdated { id: subject.id });
    }
}

fn require_admin(actor: &Actor) -> AppResult<()> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only administrators read the moderation log".into(),
        ))
    }
}

/// The moderation log, newest first (ADMIN only).
pub async fn log_page(
    ctx: &Ctx,
    actor: &Actor,
    page: &PageRequest,
) -> AppResult<Page<moderation_action::Model>> {
    require_admin(actor)?;
    let mut q = moderation_action::Entity::find();
    if let Some(after) = &page.after {
        q = q.filter(moderation_action::Column::Id.lt(after.id));
    }
    let rows = q
        .order_by_desc(moderation_action::Column::Id)
        .limit(page.first + 1)
        .all(&ctx.db)
        .await?;
    Ok(Page::from_rows(rows, page.first, |a| Cursor {
        k: None,
        id: a.id,
    }))
}

pub async fn count_log(ctx: &Ctx, actor: &Actor) -> AppResult<u64> {
    require_admin(actor)?;
    Ok(moderation_action::Entity::find().count(&ctx.db).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::user::Role;

    fn actor(role: Role) -> Actor {
        Actor {
            id: Uuid::now_v7(),
            session_id: Uuid::now_v7(),
            role,
            email_verified: true,
        }
    }

    #[test]
    fn hidden_text_shows_to_its_author_and_moderators_only() {
        let author = actor(Role::Member);
        let admin = actor(Role::Admin);
        let official = actor(Role::Official);
        let other = actor(Role::Member);
        let show = |viewer: Option<&Actor>, hidden, organises| {
            shown(viewer, hidden, author.id, organises, "text", "marker")
        };
        assert_eq!(show(Some(&author), true, false), "text");
        assert_eq!(show(Some(&admin), true, false), "text");
        assert_eq!(show(Some(&other), true, true), "text");
        assert_eq!(show(Some(&official), true, false), "marker");
        assert_eq!(show(Some(&other), true, false), "marker");
        assert_eq!(show(None, true, false), "marker");
        assert_eq!(show(None, false, false), "text");
    }
}
