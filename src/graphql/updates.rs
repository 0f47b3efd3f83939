//! Official updates on commitments (the plan's blog posts), answered with suggestions.

use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::accounts::User;
use super::commitments::{Commitment, CommitmentStatus, Milestone};
use super::connection::connection;
use super::discussions::Thread;
use super::loaders::{CommitmentKey, MilestoneKey, ThreadOfUpdate, UpdatesOf, UserKey};
use super::scalars::{parse_id, to_id};
use super::suggestions::{suggestion_page, SuggestionConnection, SuggestionOrder};
use super::{ctx, loader};
use crate::entities::commitment_update;
use crate::services::moderation;
use crate::services::page::{Page, PageRequest};
use crate::services::suggestions::Filter;
use crate::services::updates::{self as service, NewUpdate};

pub struct CommitmentUpdate(pub commitment_update::Model);

impl CommitmentUpdate {
    /// The text the viewer is shown: the real one, or the marker when a moderator hid it
    /// from them.
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

/// An official update on a commitment: what happened, in the officials' words. Readers
/// discuss it in its thread and answer it with suggestions.
#[Object]
impl CommitmentUpdate {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// The commitment it is about.
    async fn commitment(&self, c: &Context<'_>) -> async_graphql::Result<Option<Commitment>> {
        Ok(loader(c)?
            .load_one(CommitmentKey(self.0.commitment_id))
            .await?
            .map(Commitment))
    }
    /// The official who published it.
    async fn author(&self, c: &Context<'_>) -> async_graphql::Result<Option<User>> {
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
    async fn body(&self, c: &Context<'_>) -> async_graphql::Result<&str> {
        self.shown(c, &self.0.body, moderation::HIDDEN_BODY)
    }
    /// Body rendered to sanitised HTML; a marker when hidden, as for `title`.
    async fn body_html(&self, c: &Context<'_>) -> async_graphql::Result<&str> {
        self.shown(c, &self.0.body_html, moderation::HIDDEN_BODY_HTML)
    }
    /// The milestone the update is about, if any.
    async fn milestone(&self, c: &Context<'_>) -> async_graphql::Result<Option<Milestone>> {
        let Some(id) = self.0.milestone_id else {
            return Ok(None);
        };
        Ok(loader(c)?.load_one(MilestoneKey(id)).await?.map(Milestone))
    }
    /// The status the update gave its milestone, if it changed it.
    async fn milestone_status(&self) -> Option<CommitmentStatus> {
        self.0.milestone_status.map(Into::into)
    }
    /// Whether a moderator hid it. Everyone but its author and moderators then sees a
    /// marker instead of its title and body.
    async fn hidden(&self) -> bool {
        self.0.hidden
    }
    /// How many suggestions answer it.
    async fn suggestion_count(&self) -> i32 {
        self.0.suggestion_count
    }
    /// The suggestions written in reply to it.
    async fn suggestions(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
        #[graphql(desc = "The order; TOP when left out.")] order_by: Option<SuggestionOrder>,
    ) -> async_graphql::Result<SuggestionConnection> {
        let page = PageRequest::parse(first, after.as_deref())?;
        let filter = Filter {
            in_reply_to_update_id: Some(self.0.id),
            ..Filter::default()
        };
        suggestion_page(c, page, filter, order_by.unwrap_or_default().into()).await
    }
    /// When it was published.
    async fn published_at(&self) -> DateTime<Utc> {
        self.0.published_at
    }
    /// The discussion under this update, opened with it.
    async fn thread(&self, c: &Context<'_>) -> async_graphql::Result<Option<Thread>> {
        Ok(loader(c)?
            .load_one(ThreadOfUpdate(self.0.id))
            .await?
            .map(Thread))
    }
}

connection!(
    CommitmentUpdateConnection,
    CommitmentUpdateEdge,
    CommitmentUpdate,
    "A page of official updates, newest first.",
    "An official update in a list."
);
// Its fields go through its resolvers (`graphql::plain`).
impl super::plain::Plain for CommitmentUpdate {}

/// `Commitment.updates`: the first page of many commitments comes through the loader, in
/// one statement.
pub(crate) async fn updates_of(
    c: &Context<'_>,
    commitment: &crate::entities::commitment::Model,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<CommitmentUpdateConnection> {
    let (services, _) = ctx(c)?;
    let page = PageRequest::parse(first, after.as_deref())?;
    let found: Page<commitment_update::Model> = match &page.after {
        None => {
            let rows = loader(c)?
                .load_one(UpdatesOf {
                    commitment: commitment.id,
                    first: page.first,
                })
                .await?
                .unwrap_or_default();
            service::page_of(rows, page.first)
        }
        Some(_) => service::list(services, commitment.id, &page).await?,
    };
    let (s, id) = (services.clone(), commitment.id);
    Ok(CommitmentUpdateConnection::new(
        found,
        CommitmentUpdate,
        Box::new(move || {
            let s = s.clone();
            Box::pin(async move { service::count(&s, id).await })
        }),
    ))
}

/// An official update to publish.
#[derive(InputObject)]
pub struct PublishCommitmentUpdateInput {
    /// The commitment it is about.
    pub commitment_id: ID,
    /// Title, 1–300 characters.
    pub title: String,
    /// Body in Markdown, 1–20,000 characters.
    pub body: String,
    /// A milestone of the same commitment the update is about.
    pub milestone_id: Option<ID>,
    /// The milestone's new status, if the update changes it (needs `milestoneId`).
    pub milestone_status: Option<CommitmentStatus>,
}

/// The answer to `publishCommitmentUpdate`.
#[derive(SimpleObject)]
pub struct PublishCommitmentUpdatePayload {
    /// The published update.
    pub update: CommitmentUpdate,
}

#[derive(Default)]
pub struct UpdateQuery;

#[Object]
impl UpdateQuery {
    /// One official update.
    async fn commitment_update(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: ID,
    ) -> async_graphql::Result<Option<CommitmentUpdate>> {
        let (services, _) = ctx(c)?;
        Ok(service::find(services, parse_id("id", &id)?)
            .await?
            .map(CommitmentUpdate))
    }
}

#[derive(Default)]
pub struct UpdateMutation;

#[Object]
impl UpdateMutation {
    /// Publishes an official update on a commitment (verified OFFICIAL or ADMIN), with its
    /// discussion thread; optionally moves one of the commitment's milestones to a new
    /// status. The commitment's followers are notified.
    async fn publish_commitment_update(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: PublishCommitmentUpdateInput,
    ) -> async_graphql::Result<PublishCommitmentUpdatePayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let published = service::publish(
            services,
            actor,
            NewUpdate {
                commitment_id: parse_id("commitmentId", &input.commitment_id)?,
                title: input.title,
                body: input.body,
                milestone_id: input
                    .milestone_id
                    .as_ref()
                    .map(|i| parse_id("milestoneId", i))
                    .transpose()?,
                milestone_status: input.milestone_status.map(Into::into),
            },
        )
        .await?;
        Ok(PublishCommitmentUpdatePayload {
            update: CommitmentUpdate(published.update),
        })
    }
}
