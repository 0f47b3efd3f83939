//! Discussions: threads and their posts, reactions, locking and pinning, and the live
//! `postAdded` subscription.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, Subscription, Union, ID};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};

use super::accounts::User;
use super::commitments::Commitment;
use super::connection::connection;
use super::groups::{viewer_access_to, WorkingGroup};
use super::live::{self, Heard};
use super::loaders::{
    CommitmentKey, GroupKey, PostKey, PostRevisionsOf, PostsOf, SuggestionKey, ThreadKey,
    ThreadResponsesOf, ThreadsOf, UpdateKey, UserKey, ViewerFollowsThread, ViewerMembership,
    ViewerReactions,
};
use super::scalars::{parse_id, to_id};
use super::suggestions::{OfficialResponse, Suggestion};
use super::updates::CommitmentUpdate;
use super::{ctx, loader};
use crate::entities::post_reaction::Reaction as DbReaction;
use crate::entities::thread::Context as DbContext;
use crate::entities::{post, post_revision, thread, working_group};
use crate::error::AppError;
use crate::events::Event;
use crate::services::discussions::visibility::{DELETED_MARKER, HIDDEN_MARKER};
use crate::services::discussions::{self as service, posts, reactions, threads};
use crate::services::groups::Access;
use crate::services::page::{Page, PageRequest};
use crate::services::revisions;

/// A reaction to a post; each account gives each kind at most once per post.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbReaction")]
pub enum Reaction {
    /// Agreement.
    ThumbsUp,
    /// Appreciation.
    Heart,
    /// A useful idea.
    Lightbulb,
    /// Something is unclear.
    Question,
}

const REACTIONS: [DbReaction; 4] = [
    DbReaction::ThumbsUp,
    DbReaction::Heart,
    DbReaction::Lightbulb,
    DbReaction::Question,
];

/// How the viewer stands to the thread's group, if it is in one; read through the loaders
/// (primed by a thread's page, so its posts' checks cost no statement).
async fn thread_access(
    c: &Context<'_>,
    t: &thread::Model,
) -> async_graphql::Result<Option<Access>> {
    let Some(g) = t.working_group_id else {
        return Ok(None);
    };
    match loader(c)?.load_one(GroupKey(g)).await? {
        Some(group) => Ok(Some(viewer_access_to(c, group).await?)),
        None => Ok(None),
    }
}

/// Hands a thread, its group and the viewer's membership to the loader, so the items of a
/// page inside it find them without a statement or a round.
fn prime_thread(
    c: &Context<'_>,
    t: &thread::Model,
    access: Option<&Access>,
) -> async_graphql::Result<()> {
    let l = loader(c)?;
    l.prime([(ThreadKey(t.id), t.clone())]);
    if let Some(a) = access {
        l.prime([(GroupKey(a.group.id), a.group.clone())]);
        if let Some(m) = &a.membership {
            l.prime([(ViewerMembership(a.group.id), m.clone())]);
        }
    }
    Ok(())
}

/// Whether the viewer sees hidden content by `author_id` in thread `t` as written.
async fn sees_hidden(
    c: &Context<'_>,
    t: &thread::Model,
    author_id: uuid::Uuid,
) -> async_graphql::Result<bool> {
    let (_, viewer) = ctx(c)?;
    let access = thread_access(c, t).await?;
    Ok(service::may_see_hidden(
        viewer.actor.as_ref(),
        author_id,
        access.as_ref(),
    ))
}

/// What a thread is about.
#[derive(Union)]
pub enum ThreadContext {
    /// A discussion started on a commitment.
    Commitment(Commitment),
    /// A discussion inside a working group.
    WorkingGroup(WorkingGroup),
    /// The discussion under a suggestion.
    Suggestion(Suggestion),
    /// The discussion under an official update.
    CommitmentUpdate(CommitmentUpdate),
}

pub struct Thread(pub thread::Model);

/// A discussion: on a commitment, inside a working group, or under a suggestion or an
/// official update. A private group's threads are visible to its members only.
#[Object]
impl Thread {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Title; replaced by a marker when a moderator hid the thread, except for its author
    /// and moderators.
    async fn title(&self, c: &Context<'_>) -> async_graphql::Result<String> {
        if self.0.hidden && !sees_hidden(c, &self.0, self.0.author_id).await? {
            return Ok(HIDDEN_MARKER.to_string());
        }
        // A suggestion's or an update's thread carries its subject's title, so it is masked
        // whenever the subject is hidden.
        let l = loader(c)?;
        let subject_hidden = match (self.0.suggestion_id, self.0.update_id) {
            (Some(id), _) => l
                .load_one(SuggestionKey(id))
                .await?
                .is_some_and(|m| m.hidden),
            (_, Some(id)) => l.load_one(UpdateKey(id)).await?.is_some_and(|m| m.hidden),
            _ => false,
        };
        if subject_hidden && !sees_hidden(c, &self.0, self.0.author_id).await? {
            return Ok(HIDDEN_MARKER.to_string());
        }
        Ok(self.0.title.clone())
    }
    /// What it is about: a commitment, a working group, a suggestion or an official update.
    async fn context(&self, c: &Context<'_>) -> async_graphql::Result<Option<ThreadContext>> {
        let l = loader(c)?;
        Ok(match self.0.context {
            DbContext::Commitment => match self.0.commitment_id {
                Some(id) => l
                    .load_one(CommitmentKey(id))
                    .await?
                    .map(|m| ThreadContext::Commitment(Commitment(m))),
                None => None,
            },
            DbContext::WorkingGroup => match self.0.working_group_id {
                Some(id) => l
                    .load_one(GroupKey(id))
                    .await?
                    .map(|m| ThreadContext::WorkingGroup(WorkingGroup(m))),
                None => None,
            },
            DbContext::Suggestion => match self.0.suggestion_id {
                Some(id) => l
                    .load_one(SuggestionKey(id))
                    .await?
                    .map(|m| ThreadContext::Suggestion(Suggestion::from(m))),
                None => None,
            },
            DbContext::Update => match self.0.update_id {
                Some(id) => l
                    .load_one(UpdateKey(id))
                    .await?
                    .map(|m| ThreadContext::CommitmentUpdate(CommitmentUpdate(m))),
                None => None,
            },
        })
    }
    /// Who started it (for a suggestion's thread, the suggestion's author).
    async fn author(&self, c: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(loader(c)?
            .load_one(UserKey(self.0.author_id))
            .await?
            .map(User))
    }
    /// Its posts in conversation order: each post followed by its replies.
    async fn posts(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
    ) -> async_graphql::Result<PostConnection> {
        let (services, viewer) = ctx(c)?;
        let page = PageRequest::parse(first, after.as_deref())?;
        let access = thread_access(c, &self.0).await?;
        prime_thread(c, &self.0, access.as_ref())?;
        let found = match &page.after {
            // The first page comes through the loader, so a page of threads reads all
            // their first pages in one statement.
            None => {
                let rows = loader(c)?
                    .load_one(PostsOf {
                        thread: self.0.id,
                        first: page.first,
                    })
                    .await?
                    .unwrap_or_default();
                Page::from_rows(rows, page.first, posts::cursor)
            }
            Some(_) => posts::list(services, viewer.actor.as_ref(), self.0.id, &page).await?,
        };
        // The page's posts are the parents of most of its replies: those are then map
        // lookups. Their authors load in one round for the whole page (or page of threads).
        let l = loader(c)?;
        l.prime(found.items.iter().map(|(_, p)| (PostKey(p.id), p.clone())));
        let total = u64::try_from(self.0.post_count).unwrap_or(0);
        Ok(PostConnection::new(
            found,
            Post,
            Box::new(move || Box::pin(async move { Ok(total) })),
        ))
    }
    /// How many posts it holds, deleted ones included (their place stays).
    async fn post_count(&self) -> i32 {
        self.0.post_count
    }
    /// How many accounts follow it (`followThread`).
    async fn follower_count(&self) -> i32 {
        self.0.follower_count
    }
    /// Whether the viewer follows it, hearing of each new post (false when anonymous).
    async fn viewer_is_following(&self, c: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(loader(c)?
            .load_one(ViewerFollowsThread(self.0.id))
            .await?
            .unwrap_or(false))
    }
    /// When it was started or last written in.
    async fn last_activity_at(&self) -> DateTime<Utc> {
        self.0.last_activity_at
    }
    /// Whether it is locked: no new posts.
    async fn locked(&self) -> bool {
        self.0.locked
    }
    /// Why it was locked, when the moderator said.
    async fn lock_reason(&self) -> Option<&str> {
        self.0.lock_reason.as_deref()
    }
    /// Whether it is pinned to the top of its list.
    async fn pinned(&self) -> bool {
        self.0.pinned
    }
    /// Whether a moderator hid it.
    async fn hidden(&self) -> bool {
        self.0.hidden
    }
    /// Official responses to it, oldest first.
    async fn official_responses(
        &self,
        c: &Context<'_>,
    ) -> async_graphql::Result<Vec<OfficialResponse>> {
        let found = loader(c)?
            .load_one(ThreadResponsesOf(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(found.into_iter().map(OfficialResponse).collect())
    }
    /// How many official responses it has had.
    async fn official_response_count(&self) -> i32 {
        self.0.official_response_count
    }
    /// When it was started.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// One kind of reaction to a post.
#[derive(SimpleObject)]
pub struct ReactionCount {
    /// The kind.
    pub reaction: Reaction,
    /// How many accounts gave it.
    pub count: i32,
    /// Whether the viewer gave it (false when anonymous).
    pub viewer_reacted: bool,
}

pub struct PostRevision(pub post_revision::Model);

/// An earlier version of a post.
#[Object]
impl PostRevision {
    /// The body then, in Markdown.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// When this version was replaced.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct Post(pub post::Model);

impl Post {
    async fn thread_row(&self, c: &Context<'_>) -> async_graphql::Result<Option<thread::Model>> {
        Ok(loader(c)?.load_one(ThreadKey(self.0.thread_id)).await?)
    }

    /// Whether the viewer reads the body as written: not hidden, or the viewer is its
    /// author or a moderator.
    async fn shows_original(&self, c: &Context<'_>) -> async_graphql::Result<bool> {
        if !self.0.hidden {
            return Ok(true);
        }
        match self.thread_row(c).await? {
            Some(t) => sees_hidden(c, &t, self.0.author_id).await,
            None => Ok(false),
        }
    }
}

/// A post in a thread: a reply to the thread or to another post, nested at most five deep.
#[Object]
impl Post {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// The thread it is in.
    async fn thread(&self, c: &Context<'_>) -> async_graphql::Result<Option<Thread>> {
        Ok(self.thread_row(c).await?.map(Thread))
    }
    /// Who wrote it.
    async fn author(&self, c: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(loader(c)?
            .load_one(UserKey(self.0.author_id))
            .await?
            .map(User))
    }
    /// The post it replies to; null for a reply to the thread.
    async fn parent(&self, c: &Context<'_>) -> async_graphql::Result<Option<Post>> {
        let Some(id) = self.0.parent_id else {
            return Ok(None);
        };
        Ok(loader(c)?.load_one(PostKey(id)).await?.map(Post))
    }
    /// Body in Markdown; a marker once deleted, or when hidden from the viewer.
    async fn body(&self, c: &Context<'_>) -> async_graphql::Result<String> {
        if self.0.deleted_at.is_some() {
            return Ok(DELETED_MARKER.to_string());
        }
        if !self.shows_original(c).await? {
            return Ok(HIDDEN_MARKER.to_string());
        }
        Ok(self.0.body.clone())
    }
    /// Body rendered to sanitised HTML; a marker once deleted, or when hidden from the
    /// viewer.
    async fn body_html(&self, c: &Context<'_>) -> async_graphql::Result<String> {
        if self.0.deleted_at.is_some() {
            return Ok(format!("<p><em>{DELETED_MARKER}</em></p>"));
        }
        if !self.shows_original(c).await? {
            return Ok(format!("<p><em>{HIDDEN_MARKER}</em></p>"));
        }
        Ok(self.0.body_html.clone())
    }
    /// Each kind of reaction with its count, always all four in the same order.
    async fn reactions(&self, c: &Context<'_>) -> async_graphql::Result<Vec<ReactionCount>> {
        let mine = loader(c)?
            .load_one(ViewerReactions(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(REACTIONS
            .into_iter()
            .map(|r| ReactionCount {
                reaction: r.into(),
                count: reactions::count_of(&self.0, r),
                viewer_reacted: mine.contains(&r),
            })
            .collect())
    }
    /// When its author last edited it; null if never.
    async fn edited_at(&self) -> Option<DateTime<Utc>> {
        self.0.edited_at
    }
    /// Earlier versions, oldest first, a page at a time (`first` at most 100): none once
    /// deleted, or while hidden from the viewer. At most `limits.max_revisions` (50) are
    /// kept; older ones are dropped. A connection rather than a list since edits became
    /// writes with a budget: a list let one query pull an item's whole history.
    async fn revisions(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
    ) -> async_graphql::Result<PostRevisionConnection> {
        let page = PageRequest::parse(first, after.as_deref())?;
        let found = if self.0.deleted_at.is_some() || !self.shows_original(c).await? {
            Vec::new()
        } else {
            loader(c)?
                .load_one(PostRevisionsOf(self.0.id))
                .await?
                .unwrap_or_default()
        };
        let total = found.len() as u64;
        Ok(PostRevisionConnection::new(
            revisions::page_of(found, &page, |r| r.id),
            PostRevision,
            Box::new(move || Box::pin(async move { Ok(total) })),
        ))
    }
    /// Whether a moderator hid it.
    async fn hidden(&self) -> bool {
        self.0.hidden
    }
    /// Whether its author deleted it (its replies stay).
    async fn deleted(&self) -> bool {
        self.0.deleted_at.is_some()
    }
    /// When it was written.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// How deep it is: 1 for a reply to the thread, at most 5.
    async fn depth(&self) -> i32 {
        self.0.depth
    }
}

connection!(
    ThreadConnection,
    ThreadEdge,
    Thread,
    "A page of threads: pinned first, then the most recently active.",
    "A thread in a list."
);
// Its fields go through its resolvers (`graphql::plain`).
impl super::plain::Plain for Thread {}
connection!(
    PostRevisionConnection,
    PostRevisionEdge,
    PostRevision,
    "A page of a post's earlier versions, oldest first.",
    "An earlier version of a post."
);
// Its fields go through its resolvers (`graphql::plain`).
impl super::plain::Plain for PostRevision {}
connection!(
    PostConnection,
    PostEdge,
    Post,
    "A page of posts in conversation order.",
    "A post in a list."
);
// Its fields go through its resolvers (`graphql::plain`).
impl super::plain::Plain for Post {}

/// Narrows the list of threads. With none of these, the list holds the discussions started
/// on commitments and in groups the viewer may see.
#[derive(InputObject, Default)]
pub struct ThreadFilter {
    /// Only the threads of this working group.
    pub working_group_id: Option<ID>,
    /// Only the threads started on this commitment (not its suggestions' threads).
    pub commitment_id: Option<ID>,
    /// Only this suggestion's thread.
    pub suggestion_id: Option<ID>,
}

/// A page of the threads the viewer may see.
pub(crate) async fn thread_connection(
    c: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: threads::Filter,
) -> async_graphql::Result<ThreadConnection> {
    let (services, viewer) = ctx(c)?;
    let page = PageRequest::parse(first, after.as_deref())?;
    let actor = viewer.actor.clone();
    let found = threads::list(services, actor.as_ref(), &filter, &page).await?;
    let (s, f) = (services.clone(), filter.clone());
    Ok(ThreadConnection::new(
        found,
        Thread,
        Box::new(move || {
            let (s, f, a) = (s.clone(), f.clone(), actor.clone());
            Box::pin(async move { threads::count(&s, a.as_ref(), &f).await })
        }),
    ))
}

/// The threads of a commitment or group: the first page through the loader (one statement
/// for a whole page of parents), later pages from the list.
async fn parent_threads(
    c: &Context<'_>,
    parent: threads::Parent,
    id: uuid::Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<ThreadConnection> {
    let page = PageRequest::parse(first, after.as_deref())?;
    let filter = threads::Filter {
        commitment_id: (parent == threads::Parent::Commitment).then_some(id),
        working_group_id: (parent == threads::Parent::WorkingGroup).then_some(id),
        ..Default::default()
    };
    if page.after.is_some() {
        return thread_connection(c, first, after, filter).await;
    }
    let (services, viewer) = ctx(c)?;
    let rows = loader(c)?
        .load_one(ThreadsOf {
            parent,
            id,
            first: page.first,
        })
        .await?
        .unwrap_or_default();
    let found = Page::from_rows(rows, page.first, threads::cursor);
    let (s, actor) = (services.clone(), viewer.actor.clone());
    Ok(ThreadConnection::new(
        found,
        Thread,
        Box::new(move || {
            let (s, f, a) = (s.clone(), filter.clone(), actor.clone());
            Box::pin(async move { threads::count(&s, a.as_ref(), &f).await })
        }),
    ))
}

/// A group's threads, for `WorkingGroup.threads`: null for viewers who cannot see inside a
/// private group.
pub(crate) async fn group_threads(
    c: &Context<'_>,
    group: &working_group::Model,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<Option<ThreadConnection>> {
    let access = viewer_access_to(c, group.clone()).await?;
    if !access.can_see_inside() {
        return Ok(None);
    }
    let l = loader(c)?;
    l.prime([(GroupKey(group.id), group.clone())]);
    if let Some(m) = access.membership {
        l.prime([(ViewerMembership(group.id), m)]);
    }
    Ok(Some(
        parent_threads(c, threads::Parent::WorkingGroup, group.id, first, after).await?,
    ))
}

/// A commitment's threads, for `Commitment.threads`.
pub(crate) async fn commitment_threads(
    c: &Context<'_>,
    commitment_id: uuid::Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<ThreadConnection> {
    parent_threads(c, threads::Parent::Commitment, commitment_id, first, after).await
}

#[derive(Default)]
pub struct DiscussionQuery;

#[Object]
impl DiscussionQuery {
    /// Threads the viewer may see, pinned first, then the most recently active.
    async fn threads(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
        #[graphql(desc = "Narrows the list.")] filter: Option<ThreadFilter>,
    ) -> async_graphql::Result<ThreadConnection> {
        let filter = filter.unwrap_or_default();
        let parse =
            |name: &str, id: &Option<ID>| id.as_ref().map(|i| parse_id(name, i)).transpose();
        let filter = threads::Filter {
            working_group_id: parse("filter.workingGroupId", &filter.working_group_id)?,
            commitment_id: parse("filter.commitmentId", &filter.commitment_id)?,
            suggestion_id: parse("filter.suggestionId", &filter.suggestion_id)?,
        };
        if let Some(g) = filter.working_group_id {
            // A private group's threads are not found by those outside it.
            let group = loader(c)?
                .load_one(GroupKey(g))
                .await?
                .ok_or(AppError::NotFound("working group"))?;
            if !viewer_access_to(c, group).await?.can_see_inside() {
                return Err(AppError::NotFound("working group").into());
            }
        }
        thread_connection(c, first, after, filter).await
    }

    /// One thread; NOT_FOUND when there is none or it is in a private group the viewer is
    /// not a member of.
    async fn thread(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: ID,
    ) -> async_graphql::Result<Option<Thread>> {
        let (services, viewer) = ctx(c)?;
        let found = threads::find(services, viewer.actor.as_ref(), parse_id("id", &id)?).await?;
        match found {
            Some((t, access)) => {
                prime_thread(c, &t, access.as_ref())?;
                let l = loader(c)?;
                l.prime(
                    posts::profiles(services, vec![t.author_id])
                        .await?
                        .into_iter()
                        .map(|u| (UserKey(u.id), u)),
                );
                Ok(Some(Thread(t)))
            }
            None => Err(AppError::NotFound("thread").into()),
        }
    }
}

/// A new thread, on a commitment or in a working group (exactly one).
#[derive(InputObject)]
pub struct StartThreadInput {
    /// The working group it is in (its active members start threads).
    pub working_group_id: Option<ID>,
    /// The commitment it is about.
    pub commitment_id: Option<ID>,
    /// Title, 5–200 characters.
    pub title: String,
    /// The first post, in Markdown, 1–20,000 characters.
    pub body: String,
}

/// A reply to a thread or to one of its posts.
#[derive(InputObject)]
pub struct ReplyToThreadInput {
    /// The thread.
    pub thread_id: ID,
    /// The post replied to; left out, the reply is to the thread. A reply to a post five
    /// deep becomes that post's sibling.
    pub parent_post_id: Option<ID>,
    /// In Markdown, 1–20,000 characters.
    pub body: String,
}

/// A new version of one's post.
#[derive(InputObject)]
pub struct EditPostInput {
    /// The post.
    pub id: ID,
    /// The new body in Markdown, 1–20,000 characters.
    pub body: String,
}

/// A reaction given or taken back.
#[derive(InputObject)]
pub struct ReactInput {
    /// The post.
    pub post_id: ID,
    /// The kind of reaction.
    pub reaction: Reaction,
    /// true gives it, false takes it back; repeating either changes nothing.
    pub on: bool,
}

/// The answer to `startThread`.
#[derive(SimpleObject)]
pub struct StartThreadPayload {
    /// The new thread.
    pub thread: Thread,
    /// Its first post.
    pub post: Post,
}

macro_rules! post_payload {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(SimpleObject)]
        pub struct $name {
            /// The post as it is now.
            pub post: Post,
        }
    };
}
post_payload!(ReplyToThreadPayload, "The answer to `replyToThread`.");
post_payload!(EditPostPayload, "The answer to `editPost`.");
post_payload!(DeletePostPayload, "The answer to `deletePost`.");
post_payload!(ReactPayload, "The answer to `react`.");

macro_rules! thread_payload {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(SimpleObject)]
        pub struct $name {
            /// The thread as it is now.
            pub thread: Thread,
        }
    };
}
thread_payload!(LockThreadPayload, "The answer to `lockThread`.");
thread_payload!(UnlockThreadPayload, "The answer to `unlockThread`.");
thread_payload!(PinThreadPayload, "The answer to `pinThread`.");
thread_payload!(UnpinThreadPayload, "The answer to `unpinThread`.");
thread_payload!(FollowThreadPayload, "The answer to `followThread`.");
thread_payload!(UnfollowThreadPayload, "The answer to `unfollowThread`.");

async fn set_following(c: &Context<'_>, id: &ID, follow: bool) -> async_graphql::Result<Thread> {
    let (services, viewer) = ctx(c)?;
    let actor = viewer.require()?;
    Ok(Thread(
        threads::set_following(services, actor, parse_id("id", id)?, follow).await?,
    ))
}

async fn moderate(
    c: &Context<'_>,
    id: &ID,
    change: threads::Change,
) -> async_graphql::Result<Thread> {
    let (services, viewer) = ctx(c)?;
    let actor = viewer.require()?;
    Ok(Thread(
        threads::moderate(services, actor, parse_id("id", id)?, change).await?,
    ))
}

#[derive(Default)]
pub struct DiscussionMutation;

#[Object]
impl DiscussionMutation {
    /// Starts a thread on a commitment, or in a working group one is an active member of
    /// (verified accounts); the body is its first post.
    async fn start_thread(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: StartThreadInput,
    ) -> async_graphql::Result<StartThreadPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let place = match (&input.working_group_id, &input.commitment_id) {
            (Some(g), None) => posts::Place::WorkingGroup(parse_id("workingGroupId", g)?),
            (None, Some(cm)) => posts::Place::Commitment(parse_id("commitmentId", cm)?),
            _ => {
                return Err(AppError::bad_input(
                    "workingGroupId",
                    "give exactly one of workingGroupId and commitmentId",
                )
                .into())
            }
        };
        let (t, p) = posts::start_thread(services, actor, place, &input.title, &input.body).await?;
        Ok(StartThreadPayload {
            thread: Thread(t),
            post: Post(p),
        })
    }

    /// Replies to a thread or to one of its posts. FORBIDDEN in a locked thread (the message
    /// gives the reason) and, in a group's thread, for those not in the group.
    async fn reply_to_thread(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: ReplyToThreadInput,
    ) -> async_graphql::Result<ReplyToThreadPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let parent = input
            .parent_post_id
            .as_ref()
            .map(|p| parse_id("parentPostId", p))
            .transpose()?;
        let p = posts::reply(
            services,
            actor,
            parse_id("threadId", &input.thread_id)?,
            parent,
            &input.body,
        )
        .await?;
        Ok(ReplyToThreadPayload { post: Post(p) })
    }

    /// Edits one's own post; the earlier version is kept in `revisions`.
    async fn edit_post(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: EditPostInput,
    ) -> async_graphql::Result<EditPostPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let p = posts::edit(services, actor, parse_id("id", &input.id)?, &input.body).await?;
        Ok(EditPostPayload { post: Post(p) })
    }

    /// Deletes one's own post: its text goes, its replies stay in place.
    async fn delete_post(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The post's ID.")] id: ID,
    ) -> async_graphql::Result<DeletePostPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let p = posts::delete(services, actor, parse_id("id", &id)?).await?;
        Ok(DeletePostPayload { post: Post(p) })
    }

    /// Gives or takes back a reaction to someone else's post.
    async fn react(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: ReactInput,
    ) -> async_graphql::Result<ReactPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let p = reactions::react(
            services,
            actor,
            parse_id("postId", &input.post_id)?,
            input.reaction.into(),
            input.on,
        )
        .await?;
        Ok(ReactPayload { post: Post(p) })
    }

    /// Locks a thread: no new posts (OFFICIAL and ADMIN accounts; a group's organisers in
    /// its threads). Recorded on the moderation log.
    async fn lock_thread(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The thread's ID.")] id: ID,
        #[graphql(desc = "Why, shown to those who try to post (up to 500 characters).")]
        reason: Option<String>,
    ) -> async_graphql::Result<LockThreadPayload> {
        Ok(LockThreadPayload {
            thread: moderate(c, &id, threads::Change::Lock { reason }).await?,
        })
    }

    /// Unlocks a thread. Recorded on the moderation log.
    async fn unlock_thread(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The thread's ID.")] id: ID,
    ) -> async_graphql::Result<UnlockThreadPayload> {
        Ok(UnlockThreadPayload {
            thread: moderate(c, &id, threads::Change::Unlock).await?,
        })
    }

    /// Pins a thread to the top of its lists. Recorded on the moderation log.
    async fn pin_thread(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The thread's ID.")] id: ID,
    ) -> async_graphql::Result<PinThreadPayload> {
        Ok(PinThreadPayload {
            thread: moderate(c, &id, threads::Change::Pin).await?,
        })
    }

    /// Unpins a thread. Recorded on the moderation log.
    async fn unpin_thread(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The thread's ID.")] id: ID,
    ) -> async_graphql::Result<UnpinThreadPayload> {
        Ok(UnpinThreadPayload {
            thread: moderate(c, &id, threads::Change::Unpin).await?,
        })
    }

    /// Follows a thread, to be notified of each new post in it as if one had posted there
    /// (verified accounts; only a thread the viewer may read, NOT_FOUND otherwise).
    /// Following twice changes nothing.
    async fn follow_thread(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The thread's ID.")] id: ID,
    ) -> async_graphql::Result<FollowThreadPayload> {
        Ok(FollowThreadPayload {
            thread: set_following(c, &id, true).await?,
        })
    }

    /// Stops following a thread. Posting in a thread still brings its new posts.
    async fn unfollow_thread(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The thread's ID.")] id: ID,
    ) -> async_graphql::Result<UnfollowThreadPayload> {
        Ok(UnfollowThreadPayload {
            thread: set_following(c, &id, false).await?,
        })
    }
}

#[derive(Default)]
pub struct DiscussionSubscription;

#[Subscription]
impl DiscussionSubscription {
    /// Each new post of a thread, as it is written. NOT_FOUND for a thread the viewer may
    /// not read; a post hidden from the viewer is never pushed.
    async fn post_added(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The thread's ID.")] thread_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = Post>> {
        let id = parse_id("threadId", &thread_id)?;
        // Listening starts before the check, so nothing written after it is missed.
        let heard = live::events(c, move |e| match e {
            Event::PostAdded { thread_id, post_id } if thread_id == id => Some(post_id),
            _ => None,
        })?;
        let (services, viewer) = ctx(c)?;
        let actor = viewer.actor.clone();
        if threads::find(services, actor.as_ref(), id).await?.is_none() {
            return Err(AppError::NotFound("thread").into());
        }
        let services = services.clone();
        Ok(heard.filter_map(move |h| {
            let (services, actor) = (services.clone(), actor.clone());
            async move {
                // Fell behind: the missed posts are in the thread's page.
                let Heard::Event(post_id) = h else {
                    return None;
                };
                // Each post is read again through the visibility rules.
                match service::visible_post(&services.db, actor.as_ref(), post_id).await {
                    Ok(found) => found.map(Post),
                    Err(e) => {
                        tracing::warn!(error = %e.message(), "postAdded: reading a post failed");
                        None
                    }
                }
            }
        }))
    }
}
