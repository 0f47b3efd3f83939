//! Suggestions, supports, follows, official responses and the outcome log.

use std::borrow::Cow;
use std::sync::Arc;

use async_graphql::{
    Context, Enum, InputObject, Object, SelectionField, SimpleObject, Subscription, Union, ID,
};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};

use super::accounts::User;
use super::commitments::Commitment;
use super::connection::connection;
use super::live::{self, Heard};
use super::loaders::{
    CommitmentKey, ResponseKey, ResponsesOf, RevisionsOf, SuggestionKey, UpdateKey, UserKey,
    ViewerFollowsSuggestion, ViewerSupports,
};
use super::plain::{self, Plain};
use super::scalars::{parse_id, to_id};
use super::updates::CommitmentUpdate;
use super::{ctx, loader};
use crate::auth::Viewer;
use crate::entities::suggestion::Column as SuggestionColumn;
use crate::entities::suggestion::{self, Status as DbStatus};
use crate::entities::{commitment, official_response, outcome, suggestion_revision, user};
use crate::error::AppError;
use crate::events::Event;
use crate::services::columns::{ColumnBit, ColumnSet};
use crate::services::moderation;
use crate::services::page::PageRequest;
use crate::services::revisions;
use crate::services::suggestions::{self as service, Filter, NewResponse, Order};

/// Where a suggestion stands in the official workflow.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbStatus")]
pub enum SuggestionStatus {
    /// Posted, waiting for officials.
    Submitted,
    /// Officials are looking at it.
    UnderReview,
    /// Officials will act on it.
    Accepted,
    /// Officials will not act on it (the response says why).
    Declined,
    /// Done.
    Implemented,
    /// Merged into another suggestion (`duplicateOf`).
    Duplicate,
    /// Withdrawn by its author; kept on the record.
    Withdrawn,
}

/// How to order suggestions.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
#[graphql(remote = "Order")]
pub enum SuggestionOrder {
    /// Most supported first.
    #[default]
    Top,
    /// Newest first.
    New,
    /// Most supported in the last 7 days first.
    Trending,
    /// Oldest still waiting for an official answer first (only those waiting).
    LongestWaiting,
}

pub struct Suggestion(pub suggestion::Model, pub(crate) Joined);

/// What a list joined to one of its suggestions, with only the columns that list's
/// selection reaches: answered from here, never put in the request's loader, which other
/// parts of the query share.
#[derive(Default)]
pub(crate) struct Joined {
    author: Option<Arc<user::Profile>>,
    commitment: Option<Arc<commitment::Model>>,
}

impl From<suggestion::Model> for Suggestion {
    fn from(m: suggestion::Model) -> Self {
        Suggestion(m, Joined::default())
    }
}

impl Suggestion {
    /// The row with its bodies: lists leave them unread unless the query selects them
    /// (`services::suggestions::Include`), and a body reached some other way is loaded
    /// then, batched with the rest of the page.
    async fn with_bodies(
        &self,
        c: &Context<'_>,
    ) -> async_graphql::Result<Cow<'_, suggestion::Model>> {
        if !self.0.body.is_empty() {
            return Ok(Cow::Borrowed(&self.0));
        }
        Ok(loader(c)?
            .load_one(SuggestionKey(self.0.id))
            .await?
            .map_or(Cow::Borrowed(&self.0), Cow::Owned))
    }

    /// Whether the viewer sees its real text (it is not hidden, or they may see it anyway).
    fn reveals(&self, c: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = ctx(c)?.1.actor.as_ref();
        Ok(!self.0.hidden || moderation::sees_hidden(viewer, self.0.author_id, false))
    }

    fn shown<'a>(
        &'a self,
        c: &Context<'_>,
        text: &'a str,
        marker: &'a str,
    ) -> async_graphql::Result<&'a str> {
        let viewer = ctx(c)?.1.actor.as_ref();
        Ok(moderation::shown(
            viewer,
            self.0.hidden,
            self.0.author_id,
            false,
            text,
            marker,
        ))
    }
}

/// The columns each of the suggestion's own fields reads; `None` for a field not listed
/// here, which then reads every column. Keep it beside the resolvers below: a field that
/// starts reading another column must say so here (the test
/// `columns::every_field_reads_the_same_through_a_narrowed_page` compares each field
/// read through a page with the same field read whole).
fn suggestion_columns(field: &str) -> Option<&'static [SuggestionColumn]> {
    use SuggestionColumn as C;
    Some(match field {
        // Always read: id, hidden (who sees the text), the order's key.
        "__typename" | "id" | "hidden" | "viewerHasSupported" | "viewerIsFollowing"
        | "responses" | "revisions" | "thread" => &[],
        // Joined: `include_for` reads what their own selection reaches, and the foreign key
        // when that needs their id. The author's id is also read for every signed-in
        // viewer, who may see a hidden text of theirs.
        "author" | "commitment" => &[],
        "title" => &[C::Title],
        // Both or neither: `with_bodies` takes an empty body for one not read.
        "body" | "bodyHtml" => &[C::Body, C::BodyHtml],
        "inReplyToUpdate" => &[C::InReplyToUpdateId],
        "status" => &[C::Status],
        "supportCount" => &[C::SupportCount],
        "followerCount" => &[C::FollowerCount],
        "createdAt" => &[C::CreatedAt],
        "updatedAt" => &[C::UpdatedAt],
        "respondedAt" => &[C::RespondedAt],
        "awaitingResponseSince" => &[C::AwaitingResponse, C::CreatedAt],
        "duplicateOf" => &[C::DuplicateOfId],
        _ => return None,
    })
}

/// The columns a selection set reaches, by the table's map of fields to columns.
fn reached<C: ColumnBit>(
    field: SelectionField<'_>,
    columns_for: fn(&str) -> Option<&'static [C]>,
) -> ColumnSet<C> {
    field.selection_set().fold(ColumnSet::NONE, |set, f| {
        set.union(columns_for(f.name()).map_or(ColumnSet::ALL, ColumnSet::of))
    })
}

/// What a connection's selection reaches of each suggestion (under `nodes` and
/// `edges.node`, through fragments, every alias), so the list reads just that in its own
/// statement: its columns, and the author and commitment joined with theirs.
fn include_for(c: &Context<'_>) -> async_graphql::Result<service::Include> {
    let la = c.look_ahead();
    let mut include = service::Include {
        // Whether a hidden text is shown to a signed-in viewer depends on whose it is.
        suggestion: match ctx(c)?.1.actor {
            Some(_) => ColumnSet::of(&[SuggestionColumn::AuthorId]),
            None => ColumnSet::NONE,
        },
        author: None,
        commitment: None,
    };
    for nodes in [la.field("nodes"), la.field("edges").field("node")] {
        for node in nodes.selection_fields() {
            for f in node.selection_set() {
                match f.name() {
                    "author" => {
                        let columns = reached(f, User::columns_for);
                        include.author = Some(include.author.unwrap_or_default().union(columns));
                    }
                    "commitment" => {
                        let columns = reached(f, Commitment::columns_for);
                        include.commitment =
                            Some(include.commitment.unwrap_or_default().union(columns));
                    }
                    name => {
                        let columns =
                            suggestion_columns(name).map_or(ColumnSet::ALL, ColumnSet::of);
                        include.suggestion = include.suggestion.union(columns);
                    }
                }
            }
        }
    }
    Ok(include)
}

impl Plain for Suggestion {
    const ANSWERS: bool = true;

    /// What the resolvers below give, without a future each; the author and commitment
    /// too when the list joined them and their own selection is plain.
    fn plain<'a>(&'a self, c: &Context<'_>, name: &str) -> plain::Answer<'a> {
        let m = &self.0;
        match name {
            "id" => plain::id(m.id),
            "title" => Some(
                self.shown(c, &m.title, moderation::HIDDEN_TITLE)
                    .map(plain::Given::Str),
            ),
            "hidden" => plain::scalar(&m.hidden),
            "status" => plain::enumeration(SuggestionStatus::from(m.status)),
            "supportCount" => plain::scalar(&m.support_count),
            "followerCount" => plain::scalar(&m.follower_count),
            "createdAt" => plain::scalar(&m.created_at),
            "updatedAt" => plain::scalar(&m.updated_at),
            "author" => plain::object("User", self.1.author.as_deref()?),
            "commitment" => plain::object("Commitment", self.1.commitment.as_deref()?),
            _ => None,
        }
    }
}

/// A data user's proposal for improving a commitment.
#[Object(serial)]
impl Suggestion {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// The commitment it is about.
    async fn commitment(&self, c: &Context<'_>) -> async_graphql::Result<Option<Commitment>> {
        if let Some(joined) = &self.1.commitment {
            return Ok(Some(Commitment(joined.as_ref().clone())));
        }
        Ok(loader(c)?
            .load_one(CommitmentKey(self.0.commitment_id))
            .await?
            .map(Commitment))
    }
    /// Who posted it.
    async fn author(&self, c: &Context<'_>) -> async_graphql::Result<Option<User>> {
        if let Some(joined) = &self.1.author {
            return Ok(Some(User(joined.as_ref().clone())));
        }
        Ok(loader(c)?
            .load_one(UserKey(self.0.author_id))
            .await?
            .map(User))
    }
    /// Title; a marker when a moderator hid it (its author and moderators still see it).
    async fn title(&self, c: &Context<'_>) -> async_graphql::Result<&str> {
        self.shown(c, &self.0.title, moderation::HIDDEN_TITLE)
    }
    /// Body, in Markdown; a marker when hidden, as for `title`.
    async fn body(&self, c: &Context<'_>) -> async_graphql::Result<String> {
        if !self.reveals(c)? {
            return Ok(moderation::HIDDEN_BODY.to_string());
        }
        Ok(self.with_bodies(c).await?.body.clone())
    }
    /// Body rendered to sanitised HTML; a marker when hidden, as for `title`.
    async fn body_html(&self, c: &Context<'_>) -> async_graphql::Result<String> {
        if !self.reveals(c)? {
            return Ok(moderation::HIDDEN_BODY_HTML.to_string());
        }
        Ok(self.with_bodies(c).await?.body_html.clone())
    }
    /// Whether a moderator hid it. Everyone but its author and moderators then sees a
    /// marker instead of its title and body.
    async fn hidden(&self) -> bool {
        self.0.hidden
    }
    /// The official update it answers, if any.
    async fn in_reply_to_update(
        &self,
        c: &Context<'_>,
    ) -> async_graphql::Result<Option<CommitmentUpdate>> {
        let Some(id) = self.0.in_reply_to_update_id else {
            return Ok(None);
        };
        Ok(loader(c)?
            .load_one(UpdateKey(id))
            .await?
            .map(CommitmentUpdate))
    }
    /// Where it stands in the workflow.
    async fn status(&self) -> SuggestionStatus {
        self.0.status.into()
    }
    /// How many accounts support it.
    async fn support_count(&self) -> i32 {
        self.0.support_count
    }
    /// Whether the viewer supports it (false when anonymous).
    async fn viewer_has_supported(&self, c: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(loader(c)?
            .load_one(ViewerSupports(self.0.id))
            .await?
            .unwrap_or(false))
    }
    /// How many accounts follow it.
    async fn follower_count(&self) -> i32 {
        self.0.follower_count
    }
    /// Whether the viewer follows it (false when anonymous).
    async fn viewer_is_following(&self, c: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(loader(c)?
            .load_one(ViewerFollowsSuggestion(self.0.id))
            .await?
            .unwrap_or(false))
    }
    /// Official responses, oldest first.
    async fn responses(&self, c: &Context<'_>) -> async_graphql::Result<Vec<OfficialResponse>> {
        let found = loader(c)?
            .load_one(ResponsesOf(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(found.into_iter().map(OfficialResponse).collect())
    }
    /// Earlier versions, oldest first, kept when the author edited it, a page at a time
    /// (`first` at most 100; none shown while it is hidden from the viewer). At most
    /// `limits.max_revisions` (50) are kept; older ones are dropped. A connection rather
    /// than a list since edits became writes with a budget: a list let one query pull an
    /// item's whole history.
    async fn revisions(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
    ) -> async_graphql::Result<SuggestionRevisionConnection> {
        let page = PageRequest::parse(first, after.as_deref())?;
        let found = if self.reveals(c)? {
            loader(c)?
                .load_one(RevisionsOf(self.0.id))
                .await?
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let total = found.len() as u64;
        Ok(SuggestionRevisionConnection::new(
            revisions::page_of(found, &page, |r| r.id),
            SuggestionRevision,
            Box::new(move || Box::pin(async move { Ok(total) })),
        ))
    }
    /// When it was posted.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When officials first answered it; null while unanswered.
    async fn responded_at(&self) -> Option<DateTime<Utc>> {
        self.0.responded_at
    }
    /// Since when it has been waiting for an official answer; null when not waiting.
    async fn awaiting_response_since(&self) -> Option<DateTime<Utc>> {
        self.0.awaiting_response.then_some(self.0.created_at)
    }
    /// Its discussion thread, created with it.
    async fn thread(
        &self,
        c: &Context<'_>,
    ) -> async_graphql::Result<Option<super::discussions::Thread>> {
        Ok(loader(c)?
            .load_one(super::loaders::ThreadOfSuggestion(self.0.id))
            .await?
            .map(super::discussions::Thread))
    }
    /// The suggestion this one was merged into, when DUPLICATE.
    async fn duplicate_of(&self, c: &Context<'_>) -> async_graphql::Result<Option<Suggestion>> {
        let Some(id) = self.0.duplicate_of_id else {
            return Ok(None);
        };
        Ok(loader(c)?
            .load_one(SuggestionKey(id))
            .await?
            .map(Suggestion::from))
    }
}

pub struct SuggestionRevision(pub suggestion_revision::Model);

/// An earlier version of a suggestion.
#[Object]
impl SuggestionRevision {
    /// The title then.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The body then, in Markdown.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// When this version was written.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct OfficialResponse(pub official_response::Model);

/// An official's published answer. Immutable: a correction is a new response.
#[Object]
impl OfficialResponse {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// The official who published it.
    async fn author(&self, c: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(loader(c)?
            .load_one(UserKey(self.0.author_id))
            .await?
            .map(User))
    }
    /// The answer, in Markdown (may be empty when only the status changed).
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// The answer rendered to sanitised HTML.
    async fn body_html(&self) -> &str {
        &self.0.body_html
    }
    /// The status the suggestion had before.
    async fn previous_status(&self) -> Option<SuggestionStatus> {
        self.0.previous_status.map(Into::into)
    }
    /// The status the response gave the suggestion, if it changed it.
    async fn new_status(&self) -> Option<SuggestionStatus> {
        self.0.new_status.map(Into::into)
    }
    /// The suggestion answered.
    async fn suggestion(&self, c: &Context<'_>) -> async_graphql::Result<Option<Suggestion>> {
        let Some(id) = self.0.suggestion_id else {
            return Ok(None);
        };
        Ok(loader(c)?
            .load_one(SuggestionKey(id))
            .await?
            .map(Suggestion::from))
    }
    /// The discussion thread answered, when it answers a thread.
    async fn thread(
        &self,
        c: &Context<'_>,
    ) -> async_graphql::Result<Option<super::discussions::Thread>> {
        let Some(id) = self.0.thread_id else {
            return Ok(None);
        };
        let Some(t) = loader(c)?.load_one(super::loaders::ThreadKey(id)).await? else {
            return Ok(None);
        };
        // A private group's thread stays out of sight of those outside it.
        if let Some(g) = t.working_group_id {
            let Some(group) = loader(c)?.load_one(super::loaders::GroupKey(g)).await? else {
                return Ok(None);
            };
            if !super::groups::viewer_access_to(c, group)
                .await?
                .can_see_inside()
            {
                return Ok(None);
            }
        }
        Ok(Some(super::discussions::Thread(t)))
    }
    /// The commitment concerned.
    async fn commitment(&self, c: &Context<'_>) -> async_graphql::Result<Option<Commitment>> {
        let Some(id) = self.0.commitment_id else {
            return Ok(None);
        };
        Ok(loader(c)?
            .load_one(CommitmentKey(id))
            .await?
            .map(Commitment))
    }
    /// When it was published.
    async fn published_at(&self) -> DateTime<Utc> {
        self.0.published_at
    }
}

/// An entry of the public record: what officials answered and what meet-ups decided.
#[derive(Union)]
pub enum Outcome {
    /// An official response.
    OfficialResponse(OfficialResponse),
    /// What a meet-up decided.
    MeetupOutcome(super::meetups::MeetupOutcome),
}

connection!(
    SuggestionConnection,
    SuggestionEdge,
    Suggestion,
    "A page of suggestions.",
    "A suggestion in a list."
);
connection!(
    SuggestionRevisionConnection,
    SuggestionRevisionEdge,
    SuggestionRevision,
    "A page of a suggestion's earlier versions, oldest first.",
    "An earlier version of a suggestion."
);
// Its fields go through its resolvers (`graphql::plain`).
impl super::plain::Plain for SuggestionRevision {}
connection!(
    OutcomeConnection,
    OutcomeEdge,
    Outcome,
    "A page of the outcome record, newest first.",
    "An outcome in the record."
);
// Its fields go through its resolvers (`graphql::plain`).
impl super::plain::Plain for Outcome {}

/// Narrows the list of suggestions.
#[derive(InputObject, Default)]
pub struct SuggestionFilter {
    /// Only suggestions on this commitment.
    pub commitment_id: Option<ID>,
    /// Only suggestions with this status.
    pub status: Option<SuggestionStatus>,
    /// Only suggestions by this account.
    pub author_id: Option<ID>,
    /// true: only those waiting for an official answer; false: only those answered or closed.
    pub awaiting_response: Option<bool>,
}

/// Narrows the outcome record.
#[derive(InputObject, Default)]
pub struct OutcomeFilter {
    /// Only outcomes about this commitment.
    pub commitment_id: Option<ID>,
}

pub(crate) async fn suggestion_connection(
    c: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: SuggestionFilter,
    order_by: Option<SuggestionOrder>,
) -> async_graphql::Result<SuggestionConnection> {
    let page = PageRequest::parse(first, after.as_deref())?;
    let filter = Filter {
        commitment_id: filter
            .commitment_id
            .as_ref()
            .map(|i| parse_id("filter.commitmentId", i))
            .transpose()?,
        status: filter.status.map(Into::into),
        author_id: filter
            .author_id
            .as_ref()
            .map(|i| parse_id("filter.authorId", i))
            .transpose()?,
        awaiting_response: filter.awaiting_response,
        in_reply_to_update_id: None,
    };
    suggestion_page(c, page, filter, order_by.unwrap_or_default().into()).await
}

/// A page of suggestions matching `filter`, with what the selection reaches joined into
/// the list's one statement.
pub(crate) async fn suggestion_page(
    c: &Context<'_>,
    page: PageRequest,
    filter: Filter,
    order: Order,
) -> async_graphql::Result<SuggestionConnection> {
    let (services, _) = ctx(c)?;
    let found = service::list_with(services, &filter, order, &page, include_for(c)?).await?;
    let (s, f) = (services.clone(), filter.clone());
    Ok(SuggestionConnection::new(
        found,
        |l| {
            Suggestion(
                l.suggestion,
                Joined {
                    author: l.author,
                    commitment: l.commitment,
                },
            )
        },
        Box::new(move || {
            let (s, f) = (s.clone(), f.clone());
            Box::pin(async move { service::count(&s, &f, order).await })
        }),
    ))
}

/// A new suggestion.
#[derive(InputObject)]
pub struct CreateSuggestionInput {
    /// The commitment it is about.
    pub commitment_id: ID,
    /// Title, 5–200 characters.
    pub title: String,
    /// Body in Markdown, 1–20,000 characters.
    pub body: String,
    /// The official update (of the same commitment) this suggestion answers.
    pub in_reply_to_update_id: Option<ID>,
}

/// Changes by the author while the suggestion is SUBMITTED.
#[derive(InputObject)]
pub struct UpdateSuggestionInput {
    /// The suggestion.
    pub id: ID,
    /// New title.
    pub title: Option<String>,
    /// New body.
    pub body: Option<String>,
}

/// An official response to publish.
#[derive(InputObject)]
pub struct PublishResponseInput {
    /// The suggestion answered (or give `threadId`).
    pub suggestion_id: Option<ID>,
    /// The discussion thread answered (or give `suggestionId`): a body, no status.
    pub thread_id: Option<ID>,
    /// The answer in Markdown; required when declining or answering a thread.
    pub body: Option<String>,
    /// The suggestion's new status, if the response changes it.
    pub new_status: Option<SuggestionStatus>,
    /// With DUPLICATE: the suggestion (on the same commitment) this one duplicates.
    pub duplicate_of_id: Option<ID>,
}

macro_rules! suggestion_payload {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(SimpleObject)]
        pub struct $name {
            /// The suggestion as it is now.
            pub suggestion: Suggestion,
        }
    };
}

suggestion_payload!(CreateSuggestionPayload, "The answer to `createSuggestion`.");
suggestion_payload!(UpdateSuggestionPayload, "The answer to `updateSuggestion`.");
suggestion_payload!(
    WithdrawSuggestionPayload,
    "The answer to `withdrawSuggestion`."
);
suggestion_payload!(
    SupportSuggestionPayload,
    "The answer to `supportSuggestion`."
);
suggestion_payload!(WithdrawSupportPayload, "The answer to `withdrawSupport`.");
suggestion_payload!(FollowSuggestionPayload, "The answer to `followSuggestion`.");
suggestion_payload!(
    UnfollowSuggestionPayload,
    "The answer to `unfollowSuggestion`."
);

/// The answer to `publishResponse`.
#[derive(SimpleObject)]
pub struct PublishResponsePayload {
    /// The published response.
    pub response: OfficialResponse,
    /// The suggestion as it is now (null when a thread was answered).
    pub suggestion: Option<Suggestion>,
    /// The thread as it is now (null when a suggestion was answered).
    pub thread: Option<super::discussions::Thread>,
    /// With DUPLICATE: how many supports moved to the original (accounts already supporting it are not counted twice).
    pub moved_support_count: i32,
    /// With DUPLICATE: how many followers moved to the original.
    pub moved_follower_count: i32,
}

#[derive(Default)]
pub struct SuggestionQuery;

#[Object]
impl SuggestionQuery {
    /// Suggestions, filtered and ordered.
    async fn suggestions(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
        #[graphql(desc = "Narrows the list.")] filter: Option<SuggestionFilter>,
        #[graphql(desc = "The order; TOP when left out.")] order_by: Option<SuggestionOrder>,
    ) -> async_graphql::Result<SuggestionConnection> {
        suggestion_connection(c, first, after, filter.unwrap_or_default(), order_by).await
    }

    /// One suggestion.
    async fn suggestion(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: ID,
    ) -> async_graphql::Result<Option<Suggestion>> {
        let (services, viewer) = ctx(c)?;
        Ok(find_visible(services, viewer, parse_id("id", &id)?)
            .await?
            .map(Suggestion::from))
    }

    /// The public record of official responses (and meet-up outcomes), newest first.
    async fn outcomes(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
        #[graphql(desc = "Narrows the list.")] filter: Option<OutcomeFilter>,
    ) -> async_graphql::Result<OutcomeConnection> {
        let (services, _) = ctx(c)?;
        let page = PageRequest::parse(first, after.as_deref())?;
        let commitment_id = filter
            .unwrap_or_default()
            .commitment_id
            .as_ref()
            .map(|i| parse_id("filter.commitmentId", i))
            .transpose()?;
        let found = service::outcomes(services, commitment_id, &page).await?;
        let ids: Vec<ResponseKey> = found
            .items
            .iter()
            .filter_map(|(_, o)| o.response_id.map(ResponseKey))
            .collect();
        let responses = loader(c)?.load_many(ids).await?;
        let meetup_ids: Vec<super::loaders::MeetupOutcomeKey> = found
            .items
            .iter()
            .filter_map(|(_, o)| o.meetup_outcome_id.map(super::loaders::MeetupOutcomeKey))
            .collect();
        let meetup_outcomes = loader(c)?.load_many(meetup_ids).await?;
        let mut items = Vec::with_capacity(found.items.len());
        for (cursor, o) in found.items {
            let entry: outcome::Model = o;
            if let Some(m) = entry
                .meetup_outcome_id
                .and_then(|id| meetup_outcomes.get(&super::loaders::MeetupOutcomeKey(id)))
            {
                items.push((
                    cursor,
                    Outcome::MeetupOutcome(super::meetups::MeetupOutcome(m.clone())),
                ));
                continue;
            }
            let Some(r) = entry
                .response_id
                .and_then(|id| responses.get(&ResponseKey(id)).cloned())
            else {
                return Err(AppError::internal(anyhow::anyhow!(
                    "outcome {} has no record",
                    entry.id
                ))
                .into());
            };
            items.push((cursor, Outcome::OfficialResponse(OfficialResponse(r))));
        }
        let page = crate::services::page::Page {
            items,
            has_next_page: found.has_next_page,
        };
        let s = services.clone();
        Ok(OutcomeConnection::new(
            page,
            |o| o,
            Box::new(move || {
                let s = s.clone();
                Box::pin(async move { service::count_outcomes(&s, commitment_id).await })
            }),
        ))
    }
}

#[derive(Default)]
pub struct SuggestionMutation;

#[Object]
impl SuggestionMutation {
    /// Posts a suggestion on a commitment (verified accounts); the author follows it.
    async fn create_suggestion(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CreateSuggestionInput,
    ) -> async_graphql::Result<CreateSuggestionPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("commitmentId", &input.commitment_id)?;
        let update_id = input
            .in_reply_to_update_id
            .as_ref()
            .map(|i| parse_id("inReplyToUpdateId", i))
            .transpose()?;
        let created =
            service::create(services, actor, id, &input.title, &input.body, update_id).await?;
        Ok(CreateSuggestionPayload {
            suggestion: Suggestion::from(created),
        })
    }

    /// Edits one's own suggestion while it is SUBMITTED; the earlier version is kept.
    async fn update_suggestion(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: UpdateSuggestionInput,
    ) -> async_graphql::Result<UpdateSuggestionPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("id", &input.id)?;
        let updated = service::update(
            services,
            actor,
            id,
            input.title.as_deref(),
            input.body.as_deref(),
        )
        .await?;
        Ok(UpdateSuggestionPayload {
            suggestion: Suggestion::from(updated),
        })
    }

    /// Withdraws one's own open suggestion; it stays on the record.
    async fn withdraw_suggestion(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: ID,
    ) -> async_graphql::Result<WithdrawSuggestionPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let updated = service::withdraw(services, actor, parse_id("id", &id)?).await?;
        Ok(WithdrawSuggestionPayload {
            suggestion: Suggestion::from(updated),
        })
    }

    /// Supports someone else's suggestion (once per account; repeating is harmless).
    async fn support_suggestion(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: ID,
    ) -> async_graphql::Result<SupportSuggestionPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let updated = service::set_support(services, actor, parse_id("id", &id)?, true).await?;
        Ok(SupportSuggestionPayload {
            suggestion: Suggestion::from(updated),
        })
    }

    /// Takes one's support back.
    async fn withdraw_support(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: ID,
    ) -> async_graphql::Result<WithdrawSupportPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let updated = service::set_support(services, actor, parse_id("id", &id)?, false).await?;
        Ok(WithdrawSupportPayload {
            suggestion: Suggestion::from(updated),
        })
    }

    /// Follows a suggestion, to hear about responses.
    async fn follow_suggestion(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: ID,
    ) -> async_graphql::Result<FollowSuggestionPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let updated = service::set_following(services, actor, parse_id("id", &id)?, true).await?;
        Ok(FollowSuggestionPayload {
            suggestion: Suggestion::from(updated),
        })
    }

    /// Stops following a suggestion.
    async fn unfollow_suggestion(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: ID,
    ) -> async_graphql::Result<UnfollowSuggestionPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let updated = service::set_following(services, actor, parse_id("id", &id)?, false).await?;
        Ok(UnfollowSuggestionPayload {
            suggestion: Suggestion::from(updated),
        })
    }

    /// Publishes an official response (OFFICIAL or ADMIN), optionally moving the suggestion
    /// on: SUBMITTED → UNDER_REVIEW | ACCEPTED | DECLINED | DUPLICATE; UNDER_REVIEW →
    /// ACCEPTED | DECLINED | DUPLICATE; ACCEPTED → IMPLEMENTED | DECLINED.
    async fn publish_response(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: PublishResponseInput,
    ) -> async_graphql::Result<PublishResponsePayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let suggestion_id = match (&input.suggestion_id, &input.thread_id) {
            (Some(s), None) => parse_id("suggestionId", s)?,
            (None, Some(t)) => {
                if input.new_status.is_some() || input.duplicate_of_id.is_some() {
                    return Err(AppError::bad_input(
                        "newStatus",
                        "a response to a thread has a body and no status",
                    )
                    .into());
                }
                let (response, thread) = service::publish_thread_response(
                    services,
                    actor,
                    service::NewThreadResponse {
                        thread_id: parse_id("threadId", t)?,
                        body: input.body,
                    },
                )
                .await?;
                return Ok(PublishResponsePayload {
                    response: OfficialResponse(response),
                    suggestion: None,
                    thread: Some(super::discussions::Thread(thread)),
                    moved_support_count: 0,
                    moved_follower_count: 0,
                });
            }
            _ => {
                return Err(AppError::bad_input(
                    "suggestionId",
                    "give exactly one of suggestionId and threadId",
                )
                .into())
            }
        };
        let published = service::publish_response(
            services,
            actor,
            NewResponse {
                suggestion_id,
                body: input.body,
                new_status: input.new_status.map(Into::into),
                duplicate_of_id: input
                    .duplicate_of_id
                    .as_ref()
                    .map(|i| parse_id("duplicateOfId", i))
                    .transpose()?,
            },
        )
        .await?;
        Ok(PublishResponsePayload {
            response: OfficialResponse(published.response),
            suggestion: Some(Suggestion::from(published.suggestion)),
            thread: None,
            moved_support_count: i32::try_from(published.moved_support_count).unwrap_or(i32::MAX),
            moved_follower_count: i32::try_from(published.moved_follower_count).unwrap_or(i32::MAX),
        })
    }
}

/// One suggestion as the viewer may see it: what the `suggestion` query answers and what
/// `suggestionUpdated` pushes, so the two never disagree about visibility.
pub(crate) async fn find_visible(
    services: &crate::services::Ctx,
    _viewer: &Viewer,
    id: uuid::Uuid,
) -> Result<Option<suggestion::Model>, AppError> {
    service::find(services, id).await
}

/// Live updates of suggestions.
#[derive(Default)]
pub struct SuggestionSubscription;

#[Subscription]
impl SuggestionSubscription {
    /// The suggestion, pushed again each time its status, official responses or support
    /// count change (re-read through the same visibility rules as the `suggestion` query).
    /// An unknown id is `NOT_FOUND`.
    async fn suggestion_updated(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: ID,
    ) -> async_graphql::Result<impl Stream<Item = Suggestion>> {
        let id = parse_id("id", &id)?;
        // Listening starts before the check, so a change committed in between is not missed.
        let heard = live::events(c, move |e| match e {
            Event::SuggestionUpdated { id: changed } if changed == id => Some(()),
            _ => None,
        })?;
        let (services, viewer) = ctx(c)?;
        if find_visible(services, viewer, id).await?.is_none() {
            return Err(AppError::NotFound("suggestion").into());
        }
        let (services, viewer) = (services.clone(), viewer.clone());
        Ok(heard
            // A change, or missed events (`Heard::Missed`): either way, push what it is now.
            .then(move |_: Heard<()>| {
                let (services, viewer) = (services.clone(), viewer.clone());
                async move {
                    match find_visible(&services, &viewer, id).await {
                        Ok(found) => found,
                        Err(e) => {
                            tracing::warn!(error = ?e, %id, "re-reading a suggestion for its subscribers failed");
                            None
                        }
                    }
                }
            })
            // Gone from the viewer's sight (or unreadable this time): nothing to push.
            .filter_map(|found| async move { found.map(Suggestion::from) }))
    }
}
