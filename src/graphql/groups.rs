//! Working groups, steering groups and networks, and their members.

use async_graphql::{Context, Enum, Object, ID};
use chrono::{DateTime, Utc};

use super::scalars::{parse_id, to_id};
use super::{ctx, loader};
use crate::entities::working_group::Visibility as DbVisibility;
use crate::entities::working_group::{self, JoinPolicy as DbJoinPolicy, Kind as DbKind};
use crate::services::groups as service;

/// What kind of body a group is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbKind")]
pub enum WorkingGroupKind {
    /// A group working on a topic.
    WorkingGroup,
    /// A standing body of government and civil society that steers the work; publishes
    /// its minutes by default.
    SteeringGroup,
    /// A network of people across organisations.
    Network,
}

/// Who can see what is inside a group.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbVisibility")]
pub enum WorkingGroupVisibility {
    /// Everyone sees the group, its meet-ups and its members.
    Public,
    /// Everyone sees the group's name, kind and description; its meet-ups, threads and
    /// member list are visible to its members only.
    Private,
}

/// How people join a group.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbJoinPolicy")]
pub enum JoinPolicy {
    /// Joining makes a member at once.
    Open,
    /// Joining asks the organisers, who approve or reject.
    Request,
    /// Only people the organisers invited can join.
    Invite,
}

pub struct WorkingGroup(pub working_group::Model);

/// A working group, steering group or network: members who meet and publish what they
/// decided.
#[Object]
impl WorkingGroup {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Unique short name used in URLs, such as `data-steering-group`.
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Description, in Markdown.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Description rendered to sanitised HTML.
    async fn description_html(&self) -> &str {
        &self.0.description_html
    }
    /// What kind of body it is.
    async fn kind(&self) -> WorkingGroupKind {
        self.0.kind.into()
    }
    /// Who can see what is inside.
    async fn visibility(&self) -> WorkingGroupVisibility {
        self.0.visibility.into()
    }
    /// How people join.
    async fn join_policy(&self) -> JoinPolicy {
        self.0.join_policy.into()
    }
    /// How many members it has (organisers included).
    async fn member_count(&self) -> i32 {
        self.0.member_count
    }
    /// When the group was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The group's meet-ups; null for those who cannot see inside a private group.
    async fn meetups(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
        #[graphql(
            desc = "true: only those not yet ended, soonest first; otherwise all, newest start first."
        )]
        upcoming: Option<bool>,
    ) -> async_graphql::Result<Option<super::meetups::MeetupConnection>> {
        super::meetups::group_meetups(c, &self.0, first, after, upcoming).await
    }
}

#[derive(Default)]
pub struct GroupQuery;

#[Object]
impl GroupQuery {
    /// One group, by ID or by slug. Every group shows its name, kind and description, even
    /// a private one.
    async fn working_group(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The group's ID.")] id: Option<ID>,
        #[graphql(desc = "The group's slug.")] slug: Option<String>,
    ) -> async_graphql::Result<Option<WorkingGroup>> {
        let (services, _) = ctx(c)?;
        let found = match (id, slug) {
            (Some(id), _) => {
                let id = parse_id("id", &id)?;
                loader(c)?.load_one(super::loaders::GroupKey(id)).await?
            }
            (None, Some(slug)) => service::find_by_slug(services, &slug).await?,
            (None, None) => None,
        };
        Ok(found.map(WorkingGroup))
    }
}
