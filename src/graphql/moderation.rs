//! Reports, hiding and unhiding content, and the moderation log.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::accounts::User;
use super::connection::connection;
use super::loaders::{SuggestionKey, UpdateKey, UserKey};
use super::scalars::{parse_id, to_id};
use super::suggestions::Suggestion;
use super::updates::CommitmentUpdate;
use super::{ctx, loader};
use crate::entities::moderation_action::{self, Action as DbAction};
use crate::entities::report::{
    self, Reason as DbReason, Resolution as DbResolution, Status as DbStatus,
    SubjectType as DbSubjectType,
};
use crate::error::AppError;
use crate::services::moderation::{self as service, NewReport, Subject, SubjectRef};
use crate::services::page::PageRequest;

/// What kind of item a report or a moderation action is about.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbSubjectType")]
pub enum ModerationSubjectType {
    /// A post in a thread.
    Post,
    /// A discussion thread.
    Thread,
    /// A suggestion.
    Suggestion,
    /// An official update.
    Update,
    /// An account (role changes).
    User,
}

/// Why something was reported.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbReason")]
pub enum ReportReason {
    /// Advertising or mass posting.
    Spam,
    /// Harassment, insults or hate.
    Abuse,
    /// Not about the commitment, group or thread it is in.
    OffTopic,
    /// Reveals someone's personal data.
    PersonalData,
    /// Something else (the details say what).
    Other,
}

/// Where a report stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbStatus")]
pub enum ReportStatus {
    /// Waiting for a moderator.
    Open,
    /// Decided.
    Resolved,
}

/// A moderator's decision on a report.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbResolution")]
pub enum ReportResolution {
    /// The report is upheld: the item is hidden, and every open report on it resolved.
    Hide,
    /// The report is dismissed; the item stays as it is.
    Dismiss,
}

/// What a moderator (or an administrator changing a role) did.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbAction")]
pub enum ModerationActionKind {
    /// Hid an item.
    Hide,
    /// Made a hidden item visible again.
    Unhide,
    /// Locked a thread.
    Lock,
    /// Unlocked a thread.
    Unlock,
    /// Pinned a thread.
    Pin,
    /// Unpinned a thread.
    Unpin,
    /// Changed an account's role (the reason says from what to what).
    RoleChange,
    /// Dismissed a report.
    ReportDismissed,
    /// Upheld a report (and hid the item).
    ReportUpheld,
    /// Suspended an account (the reason says until when and why).
    Suspend,
    /// Lifted an account's suspension.
    Unsuspend,
    /// Removed someone from a working group (the subject is the account; the reason is the
    /// organiser's).
    MemberRemoved,
}

pub struct Report(pub report::Model);

/// A flag raised on an item for moderators.
#[Object]
impl Report {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Why it was reported.
    async fn reason(&self) -> ReportReason {
        self.0.reason.into()
    }
    /// What the reporter added (may be empty).
    async fn details(&self) -> &str {
        &self.0.details
    }
    /// OPEN until a moderator decides.
    async fn status(&self) -> ReportStatus {
        self.0.status.into()
    }
    /// The decision, once resolved.
    async fn resolution(&self) -> Option<ReportResolution> {
        self.0.resolution.map(Into::into)
    }
    /// The moderator's note on the decision.
    async fn resolution_note(&self) -> Option<&str> {
        self.0.resolution_note.as_deref()
    }
    /// Who reported it.
    async fn reporter(&self, c: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(loader(c)?
            .load_one(UserKey(self.0.reporter_id))
            .await?
            .map(User))
    }
    /// The moderator who resolved it.
    async fn resolved_by(&self, c: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.resolved_by else {
            return Ok(None);
        };
        Ok(loader(c)?.load_one(UserKey(id)).await?.map(User))
    }
    /// What kind of item is reported.
    async fn subject_type(&self) -> ModerationSubjectType {
        self.0.subject_type.into()
    }
    /// The reported item's ID.
    async fn subject_id(&self) -> ID {
        to_id(self.0.subject_id)
    }
    /// The reported suggestion, when the item is one.
    async fn suggestion(&self, c: &Context<'_>) -> async_graphql::Result<Option<Suggestion>> {
        if self.0.subject_type != DbSubjectType::Suggestion {
            return Ok(None);
        }
        Ok(loader(c)?
            .load_one(SuggestionKey(self.0.subject_id))
            .await?
            .map(Suggestion::from))
    }
    /// The reported official update, when the item is one.
    async fn update(&self, c: &Context<'_>) -> async_graphql::Result<Option<CommitmentUpdate>> {
        if self.0.subject_type != DbSubjectType::Update {
            return Ok(None);
        }
        Ok(loader(c)?
            .load_one(UpdateKey(self.0.subject_id))
            .await?
            .map(CommitmentUpdate))
    }
    /// The working group the item is in, if any (its organisers may resolve the report).
    async fn working_group_id(&self) -> Option<ID> {
        self.0.working_group_id.map(to_id)
    }
    /// When it was filed.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it was resolved.
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }
}

pub struct ModerationAction(pub moderation_action::Model);

/// An entry of the append-only moderation log.
#[Object]
impl ModerationAction {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Who acted.
    async fn actor(&self, c: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(loader(c)?
            .load_one(UserKey(self.0.actor_id))
            .await?
            .map(User))
    }
    /// What they did.
    async fn action(&self) -> ModerationActionKind {
        self.0.action.into()
    }
    /// What kind of item they did it to.
    async fn subject_type(&self) -> ModerationSubjectType {
        self.0.subject_type.into()
    }
    /// The item's ID.
    async fn subject_id(&self) -> ID {
        to_id(self.0.subject_id)
    }
    /// Why: the moderator's note (for a role change, the old and new role).
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// When.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(
    ReportConnection,
    ReportEdge,
    Report,
    "A page of reports, newest first.",
    "A report in a list."
);
// Its fields go through its resolvers (`graphql::plain`).
impl super::plain::Plain for Report {}
connection!(
    ModerationActionConnection,
    ModerationActionEdge,
    ModerationAction,
    "A page of the moderation log, newest first.",
    "An entry of the moderation log."
);
// Its fields go through its resolvers (`graphql::plain`).
impl super::plain::Plain for ModerationAction {}

/// Narrows the list of reports.
#[derive(InputObject, Default)]
pub struct ReportFilter {
    /// true: only those waiting for a moderator; false: only those resolved.
    pub open: Option<bool>,
}

/// Names one item: give exactly one of its IDs.
fn subject_of(
    post_id: Option<&ID>,
    thread_id: Option<&ID>,
    suggestion_id: Option<&ID>,
    update_id: Option<&ID>,
) -> Result<SubjectRef, AppError> {
    let given: Vec<(DbSubjectType, &str, &ID)> = [
        (DbSubjectType::Post, "postId", post_id),
        (DbSubjectType::Thread, "threadId", thread_id),
        (DbSubjectType::Suggestion, "suggestionId", suggestion_id),
        (DbSubjectType::Update, "updateId", update_id),
    ]
    .into_iter()
    .filter_map(|(k, f, id)| id.map(|id| (k, f, id)))
    .collect();
    match given.as_slice() {
        [(kind, field, id)] => Ok(SubjectRef {
            kind: *kind,
            id: parse_id(field, id)?,
        }),
        _ => Err(AppError::bad_input(
            "input",
            "give exactly one of postId, threadId, suggestionId and updateId",
        )),
    }
}

/// An item to report.
#[derive(InputObject)]
pub struct ReportContentInput {
    /// A post.
    pub post_id: Option<ID>,
    /// A thread.
    pub thread_id: Option<ID>,
    /// A suggestion.
    pub suggestion_id: Option<ID>,
    /// An official update.
    pub update_id: Option<ID>,
    /// Why.
    pub reason: ReportReason,
    /// More about it, up to 2,000 characters.
    pub details: Option<String>,
}

/// A decision on a report.
#[derive(InputObject)]
pub struct ResolveReportInput {
    /// The report.
    pub report_id: ID,
    /// HIDE upholds it and hides the item; DISMISS dismisses it.
    pub action: ReportResolution,
    /// Why, up to 2,000 characters; kept on the report and in the moderation log.
    pub note: Option<String>,
}

/// An item to hide or unhide: exactly one of its IDs.
#[derive(InputObject)]
pub struct ModerateContentInput {
    /// A post.
    pub post_id: Option<ID>,
    /// A thread.
    pub thread_id: Option<ID>,
    /// A suggestion.
    pub suggestion_id: Option<ID>,
    /// An official update.
    pub update_id: Option<ID>,
    /// Why, up to 2,000 characters; kept in the moderation log.
    pub note: Option<String>,
}

/// The answer to `reportContent`.
#[derive(SimpleObject)]
pub struct ReportContentPayload {
    /// The report filed.
    pub report: Report,
}

/// The answer to `resolveReport`.
#[derive(SimpleObject)]
pub struct ResolveReportPayload {
    /// The report as it now is.
    pub report: Report,
}

/// The item hidden or unhidden.
pub struct ModeratedContent(Subject);

/// An item as moderation left it.
#[Object]
impl ModeratedContent {
    /// What kind of item it is.
    async fn subject_type(&self) -> ModerationSubjectType {
        self.0.kind.into()
    }
    /// Its ID.
    async fn subject_id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Whether it is now hidden.
    async fn hidden(&self) -> bool {
        self.0.hidden
    }
    /// The suggestion, when the item is one.
    async fn suggestion(&self, c: &Context<'_>) -> async_graphql::Result<Option<Suggestion>> {
        if self.0.kind != DbSubjectType::Suggestion {
            return Ok(None);
        }
        Ok(loader(c)?
            .load_one(SuggestionKey(self.0.id))
            .await?
            .map(Suggestion::from))
    }
    /// The official update, when the item is one.
    async fn update(&self, c: &Context<'_>) -> async_graphql::Result<Option<CommitmentUpdate>> {
        if self.0.kind != DbSubjectType::Update {
            return Ok(None);
        }
        Ok(loader(c)?
            .load_one(UpdateKey(self.0.id))
            .await?
            .map(CommitmentUpdate))
    }
}

/// The answer to `hideContent` and `unhideContent`.
#[derive(SimpleObject)]
pub struct ModerateContentPayload {
    /// The item as it now is.
    pub content: ModeratedContent,
}

#[derive(Default)]
pub struct ModerationQuery;

#[Object]
impl ModerationQuery {
    /// Reports, newest first: all of them for administrators, those on their groups'
    /// content for a group's organisers; FORBIDDEN for anyone else.
    async fn reports(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
        #[graphql(desc = "Narrows the list.")] filter: Option<ReportFilter>,
    ) -> async_graphql::Result<ReportConnection> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let page = PageRequest::parse(first, after.as_deref())?;
        let open = filter.unwrap_or_default().open;
        let found = service::reports(services, actor, open, &page).await?;
        let (s, a) = (services.clone(), actor.clone());
        Ok(ReportConnection::new(
            found,
            Report,
            Box::new(move || {
                let (s, a) = (s.clone(), a.clone());
                Box::pin(async move { service::count_reports(&s, &a, open).await })
            }),
        ))
    }

    /// The append-only moderation log, newest first (ADMIN only): every hide, unhide,
    /// lock, pin, role change and report decision, with who, what, when and why.
    async fn moderation_log(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
    ) -> async_graphql::Result<ModerationActionConnection> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let page = PageRequest::parse(first, after.as_deref())?;
        let found = service::log_page(services, actor, &page).await?;
        let (s, a) = (services.clone(), actor.clone());
        Ok(ModerationActionConnection::new(
            found,
            ModerationAction,
            Box::new(move || {
                let (s, a) = (s.clone(), a.clone());
                Box::pin(async move { service::count_log(&s, &a).await })
            }),
        ))
    }
}

#[derive(Default)]
pub struct ModerationMutation;

#[Object]
impl ModerationMutation {
    /// Reports a post, thread, suggestion or official update to the moderators (any
    /// signed-in account; one open report per account and item, a second is CONFLICT).
    async fn report_content(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: ReportContentInput,
    ) -> async_graphql::Result<ReportContentPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let subject = subject_of(
            input.post_id.as_ref(),
            input.thread_id.as_ref(),
            input.suggestion_id.as_ref(),
            input.update_id.as_ref(),
        )?;
        let report = service::file_report(
            services,
            actor,
            NewReport {
                subject,
                reason: input.reason.into(),
                details: input.details.as_deref(),
            },
        )
        .await?;
        Ok(ReportContentPayload {
            report: Report(report),
        })
    }

    /// Decides an open report (administrators; a group's organisers for its content):
    /// HIDE hides the item and resolves every open report on it; DISMISS resolves this one.
    async fn resolve_report(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: ResolveReportInput,
    ) -> async_graphql::Result<ResolveReportPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let report = service::resolve_report(
            services,
            actor,
            parse_id("reportId", &input.report_id)?,
            input.action.into(),
            input.note.as_deref(),
        )
        .await?;
        Ok(ResolveReportPayload {
            report: Report(report),
        })
    }

    /// Hides an item (moderators): everyone but its author and moderators sees a marker
    /// instead. Its open reports are resolved as HIDE. Hiding hidden content changes nothing.
    async fn hide_content(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: ModerateContentInput,
    ) -> async_graphql::Result<ModerateContentPayload> {
        moderate(c, input, true).await
    }

    /// Makes a hidden item visible again (moderators).
    async fn unhide_content(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: ModerateContentInput,
    ) -> async_graphql::Result<ModerateContentPayload> {
        moderate(c, input, false).await
    }
}

async fn moderate(
    c: &Context<'_>,
    input: ModerateContentInput,
    hidden: bool,
) -> async_graphql::Result<ModerateContentPayload> {
    let (services, viewer) = ctx(c)?;
    let actor = viewer.require()?;
    let subject = subject_of(
        input.post_id.as_ref(),
        input.thread_id.as_ref(),
        input.suggestion_id.as_ref(),
        input.update_id.as_ref(),
    )?;
    let content =
        service::set_visibility(services, actor, subject, hidden, input.note.as_deref()).await?;
    Ok(ModerateContentPayload {
        content: ModeratedContent(content),
    })
}
