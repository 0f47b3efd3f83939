//! Commitments and milestones.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, NaiveDate, Utc};

use super::connection::connection;
use super::groups::WorkingGroup;
use super::loaders::{GroupsOfCommitment, MilestonesOf, ViewerFollowsCommitment};
use super::plain::{self, Plain};
use super::scalars::{parse_id, to_id};
use super::suggestions::{
    suggestion_connection, SuggestionConnection, SuggestionFilter, SuggestionOrder,
};
use super::{ctx, loader};
use crate::entities::commitment::{self, Status as DbStatus};
use crate::entities::milestone;
use crate::error::AppError;
use crate::services::commitments::{
    self as service, CommitmentChanges, CommitmentFilter as Filter, MilestoneChanges,
    NewCommitment, NewMilestone,
};
use crate::services::page::PageRequest;

/// How far a commitment (or a milestone) has been implemented.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbStatus")]
pub enum CommitmentStatus {
    /// Work has not started.
    NotStarted,
    /// Some progress.
    Limited,
    /// Most of the work is done.
    Substantial,
    /// Done.
    Complete,
    /// Abandoned.
    Withdrawn,
}

pub struct Commitment(pub commitment::Model);

impl Commitment {
    /// The columns each field reads, for lists that join commitments and read only what
    /// their selection shows (`services::columns`); `None` for a field not listed, which
    /// then reads every column. Keep it beside the resolvers below.
    pub(crate) fn columns_for(field: &str) -> Option<&'static [commitment::Column]> {
        use commitment::Column as C;
        Some(match field {
            "__typename" => &[],
            // Fields that need which commitment it is.
            "id" | "milestones" | "suggestions" | "updates" | "threads" | "viewerIsFollowing"
            | "workingGroups" => &[C::Id],
            "reference" => &[C::Reference],
            "title" => &[C::Title],
            "description" | "descriptionHtml" => &[C::Description],
            "actionPlan" => &[C::ActionPlan],
            "leadInstitution" => &[C::LeadInstitution],
            "policyArea" => &[C::PolicyArea],
            "status" => &[C::Status],
            "followerCount" => &[C::FollowerCount],
            "createdAt" => &[C::CreatedAt],
            "updatedAt" => &[C::UpdatedAt],
            _ => return None,
        })
    }

    /// The fields a commitment answers at once (`graphql::plain`), from its row alone: what
    /// the resolvers below give, without a future each.
    pub(crate) fn answer<'a>(m: &'a commitment::Model, name: &str) -> plain::Answer<'a> {
        match name {
            "id" => plain::id(m.id),
            "reference" => plain::string(&m.reference),
            "title" => plain::string(&m.title),
            "description" => plain::string(&m.description),
            "actionPlan" => plain::string(&m.action_plan),
            "leadInstitution" => plain::string(&m.lead_institution),
            "policyArea" => plain::string(&m.policy_area),
            "status" => plain::enumeration(CommitmentStatus::from(m.status)),
            "followerCount" => plain::scalar(&m.follower_count),
            "createdAt" => plain::scalar(&m.created_at),
            "updatedAt" => plain::scalar(&m.updated_at),
            _ => None,
        }
    }
}

/// What a commitment joined into another object's row answers at once.
impl plain::Answers for commitment::Model {
    fn answer(&self, name: &str) -> plain::Answer<'_> {
        Commitment::answer(self, name)
    }
}

impl Plain for Commitment {
    const ANSWERS: bool = true;

    fn plain<'a>(&'a self, _c: &Context<'_>, name: &str) -> plain::Answer<'a> {
        Commitment::answer(&self.0, name)
    }
}

/// A government promise that data users engage on.
#[Object(serial)]
impl Commitment {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Reference code, such as `UK0072`.
    async fn reference(&self) -> &str {
        &self.0.reference
    }
    /// Title.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// Description, in Markdown.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Description rendered to sanitised HTML.
    async fn description_html(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(super::ctx(ctx)?.0.markdown.render(&self.0.description))
    }
    /// The action plan the commitment belongs to.
    async fn action_plan(&self) -> &str {
        &self.0.action_plan
    }
    /// The institution leading the work.
    async fn lead_institution(&self) -> &str {
        &self.0.lead_institution
    }
    /// Policy area, such as "Capacity Building".
    async fn policy_area(&self) -> &str {
        &self.0.policy_area
    }
    /// Implementation status.
    async fn status(&self) -> CommitmentStatus {
        self.0.status.into()
    }
    /// Milestones, in order.
    async fn milestones(&self, c: &Context<'_>) -> async_graphql::Result<Vec<Milestone>> {
        let found = loader(c)?
            .load_one(MilestonesOf(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(found.into_iter().map(Milestone).collect())
    }
    /// Suggestions on this commitment.
    async fn suggestions(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
        #[graphql(desc = "Narrows the list.")] filter: Option<SuggestionFilter>,
        #[graphql(desc = "The order; TOP when left out.")] order_by: Option<SuggestionOrder>,
    ) -> async_graphql::Result<SuggestionConnection> {
        let mut filter = filter.unwrap_or_default();
        filter.commitment_id = Some(to_id(self.0.id));
        // Boxed, here and below: a field's future is as large as the largest of its type's
        // fields, and every field of a commitment on a page would carry a list's statement.
        Box::pin(suggestion_connection(c, first, after, filter, order_by)).await
    }
    /// Official updates on this commitment, newest first.
    async fn updates(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
    ) -> async_graphql::Result<super::updates::CommitmentUpdateConnection> {
        Box::pin(super::updates::updates_of(c, &self.0, first, after)).await
    }
    /// Discussions started on this commitment, pinned first, then the most recently active.
    async fn threads(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
    ) -> async_graphql::Result<super::discussions::ThreadConnection> {
        Box::pin(super::discussions::commitment_threads(
            c, self.0.id, first, after,
        ))
        .await
    }
    /// How many accounts follow this commitment.
    async fn follower_count(&self) -> i32 {
        self.0.follower_count
    }
    /// Whether the viewer follows this commitment (false when anonymous).
    async fn viewer_is_following(&self, c: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(loader(c)?
            .load_one(ViewerFollowsCommitment(self.0.id))
            .await?
            .unwrap_or(false))
    }
    /// The working groups linked to this commitment, by name (private groups too: their
    /// name, kind and description are public).
    async fn working_groups(&self, c: &Context<'_>) -> async_graphql::Result<Vec<WorkingGroup>> {
        let found = loader(c)?
            .load_one(GroupsOfCommitment(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(found.into_iter().map(WorkingGroup).collect())
    }
    /// When the commitment was added.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct Milestone(pub milestone::Model);

/// A step of a commitment, with its own status.
#[Object]
impl Milestone {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Place in the commitment's list, from 1.
    async fn position(&self) -> i32 {
        self.0.position
    }
    /// What the milestone promises.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// More detail, in Markdown.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// The detail rendered to sanitised HTML.
    async fn description_html(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(super::ctx(ctx)?.0.markdown.render(&self.0.description))
    }
    /// When it is due, if a date was set.
    async fn due_on(&self) -> Option<NaiveDate> {
        self.0.due_on
    }
    /// Implementation status.
    async fn status(&self) -> CommitmentStatus {
        self.0.status.into()
    }
}

connection!(
    CommitmentConnection,
    CommitmentEdge,
    Commitment,
    "A page of commitments.",
    "A commitment in a list."
);

/// Narrows the list of commitments.
#[derive(InputObject, Default)]
pub struct CommitmentFilter {
    /// Only commitments with this status.
    pub status: Option<CommitmentStatus>,
    /// Words to find in the reference, title or description (case-insensitive).
    pub search: Option<String>,
}

/// A new commitment.
#[derive(InputObject)]
pub struct CreateCommitmentInput {
    /// Unique reference code, such as `UK0072`.
    pub reference: String,
    /// Title, 3–300 characters.
    pub title: String,
    /// Description in Markdown.
    pub description: String,
    /// The action plan it belongs to.
    pub action_plan: Option<String>,
    /// The institution leading the work.
    pub lead_institution: Option<String>,
    /// Policy area.
    pub policy_area: Option<String>,
    /// Status; NOT_STARTED when left out.
    pub status: Option<CommitmentStatus>,
}

/// Changes to a commitment; fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateCommitmentInput {
    /// The commitment.
    pub id: ID,
    /// New reference code.
    pub reference: Option<String>,
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New action plan.
    pub action_plan: Option<String>,
    /// New lead institution.
    pub lead_institution: Option<String>,
    /// New policy area.
    pub policy_area: Option<String>,
    /// New status.
    pub status: Option<CommitmentStatus>,
}

/// A new milestone, added at the end of the commitment's list.
#[derive(InputObject)]
pub struct AddMilestoneInput {
    /// The commitment.
    pub commitment_id: ID,
    /// What the milestone promises.
    pub title: String,
    /// More detail, in Markdown.
    pub description: Option<String>,
    /// When it is due.
    pub due_on: Option<NaiveDate>,
    /// Status; NOT_STARTED when left out.
    pub status: Option<CommitmentStatus>,
}

/// Changes to a milestone; fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateMilestoneInput {
    /// The milestone.
    pub id: ID,
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New due date.
    pub due_on: Option<NaiveDate>,
    /// Set true to remove the due date.
    pub clear_due_on: Option<bool>,
    /// New status.
    pub status: Option<CommitmentStatus>,
    /// New place in the list (from 1); the others shift to make room.
    pub position: Option<i32>,
}

/// The answer to `createCommitment`.
#[derive(SimpleObject)]
pub struct CreateCommitmentPayload {
    /// The new commitment.
    pub commitment: Commitment,
}

/// The answer to `updateCommitment`.
#[derive(SimpleObject)]
pub struct UpdateCommitmentPayload {
    /// The updated commitment.
    pub commitment: Commitment,
}

/// The answer to `addMilestone`.
#[derive(SimpleObject)]
pub struct AddMilestonePayload {
    /// The new milestone.
    pub milestone: Milestone,
}

/// The answer to `updateMilestone`.
#[derive(SimpleObject)]
pub struct UpdateMilestonePayload {
    /// The updated milestone.
    pub milestone: Milestone,
}

/// The answer to `followCommitment`.
#[derive(SimpleObject)]
pub struct FollowCommitmentPayload {
    /// The commitment, now followed.
    pub commitment: Commitment,
}

/// The answer to `unfollowCommitment`.
#[derive(SimpleObject)]
pub struct UnfollowCommitmentPayload {
    /// The commitment, no longer followed.
    pub commitment: Commitment,
}

#[derive(Default)]
pub struct CommitmentQuery;

#[Object]
impl CommitmentQuery {
    /// Commitments in reference order.
    async fn commitments(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
        #[graphql(desc = "Narrows the list.")] filter: Option<CommitmentFilter>,
    ) -> async_graphql::Result<CommitmentConnection> {
        let (services, _) = ctx(c)?;
        let page = PageRequest::parse(first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = Filter {
            status: filter.status.map(Into::into),
            search: filter.search,
        };
        let found = service::list(services, &filter, &page).await?;
        let (s, f) = (services.clone(), filter.clone());
        Ok(CommitmentConnection::new(
            found,
            Commitment,
            Box::new(move || {
                let (s, f) = (s.clone(), f.clone());
                Box::pin(async move { service::count(&s, &f).await })
            }),
        ))
    }

    /// One commitment, by ID or by reference.
    async fn commitment(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: Option<ID>,
        #[graphql(desc = "Its reference code, such as `UK0072` (case-insensitive).")]
        reference: Option<String>,
    ) -> async_graphql::Result<Option<Commitment>> {
        let (services, _) = ctx(c)?;
        let found = match (id, reference) {
            (Some(id), _) => service::find(services, parse_id("id", &id)?).await?,
            (None, Some(r)) => service::find_by_reference(services, &r).await?,
            (None, None) => {
                return Err(AppError::bad_input("id", "give an id or a reference").into())
            }
        };
        Ok(found.map(Commitment))
    }
}

#[derive(Default)]
pub struct CommitmentMutation;

#[Object]
impl CommitmentMutation {
    /// Adds a commitment (OFFICIAL or ADMIN).
    async fn create_commitment(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CreateCommitmentInput,
    ) -> async_graphql::Result<CreateCommitmentPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let created = service::create(
            services,
            actor,
            NewCommitment {
                reference: input.reference,
                title: input.title,
                description: input.description,
                action_plan: input.action_plan,
                lead_institution: input.lead_institution,
                policy_area: input.policy_area,
                status: input.status.map(Into::into),
            },
        )
        .await?;
        Ok(CreateCommitmentPayload {
            commitment: Commitment(created),
        })
    }

    /// Changes a commitment (OFFICIAL or ADMIN).
    async fn update_commitment(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: UpdateCommitmentInput,
    ) -> async_graphql::Result<UpdateCommitmentPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("id", &input.id)?;
        let updated = service::update(
            services,
            actor,
            id,
            CommitmentChanges {
                reference: input.reference,
                title: input.title,
                description: input.description,
                action_plan: input.action_plan,
                lead_institution: input.lead_institution,
                policy_area: input.policy_area,
                status: input.status.map(Into::into),
            },
        )
        .await?;
        Ok(UpdateCommitmentPayload {
            commitment: Commitment(updated),
        })
    }

    /// Adds a milestone at the end of a commitment's list (OFFICIAL or ADMIN).
    async fn add_milestone(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: AddMilestoneInput,
    ) -> async_graphql::Result<AddMilestonePayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let created = service::add_milestone(
            services,
            actor,
            NewMilestone {
                commitment_id: parse_id("commitmentId", &input.commitment_id)?,
                title: input.title,
                description: input.description,
                due_on: input.due_on,
                status: input.status.map(Into::into),
            },
        )
        .await?;
        Ok(AddMilestonePayload {
            milestone: Milestone(created),
        })
    }

    /// Changes a milestone (OFFICIAL or ADMIN).
    async fn update_milestone(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: UpdateMilestoneInput,
    ) -> async_graphql::Result<UpdateMilestonePayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("id", &input.id)?;
        let due_on = if input.clear_due_on == Some(true) {
            Some(None)
        } else {
            input.due_on.map(Some)
        };
        let updated = service::update_milestone(
            services,
            actor,
            id,
            MilestoneChanges {
                title: input.title,
                description: input.description,
                due_on,
                status: input.status.map(Into::into),
                position: input.position,
            },
        )
        .await?;
        Ok(UpdateMilestonePayload {
            milestone: Milestone(updated),
        })
    }

    /// Follows a commitment, to hear about its activity.
    async fn follow_commitment(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: ID,
    ) -> async_graphql::Result<FollowCommitmentPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let updated = service::set_following(services, actor, parse_id("id", &id)?, true).await?;
        Ok(FollowCommitmentPayload {
            commitment: Commitment(updated),
        })
    }

    /// Stops following a commitment.
    async fn unfollow_commitment(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: ID,
    ) -> async_graphql::Result<UnfollowCommitmentPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let updated = service::set_following(services, actor, parse_id("id", &id)?, false).await?;
        Ok(UnfollowCommitmentPayload {
            commitment: Commitment(updated),
        })
    }
}
