//! Working groups, steering groups and networks, and their members.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::accounts::User;
use super::commitments::Commitment;
use super::connection::connection;
use super::loaders::{CommitmentsOfGroup, GroupKey, MembersOf, UserKey, ViewerMembership};
use super::scalars::{parse_id, to_id};
use super::{ctx, loader};
use crate::entities::membership::{self, Role as DbMemberRole, Status as DbMemberStatus};
use crate::entities::working_group::Visibility as DbVisibility;
use crate::entities::working_group::{self, JoinPolicy as DbJoinPolicy, Kind as DbKind};
use crate::services::groups::{self as service, GroupChanges, GroupFilter, NewGroup};
use crate::services::page::{Page, PageRequest};
use crate::services::{access, calendar_feeds, channels};

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
    /// A private group's meet-ups, threads and member list are visible to its members only.
    /// To everyone else a private group shows its name, kind and description.
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

/// A member's part in a group.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbMemberRole")]
pub enum MemberRole {
    /// Runs the group: edits it, decides requests, invites, sets roles, schedules meet-ups.
    /// A group always keeps at least one ACTIVE organiser.
    Organiser,
    /// Takes part.
    Member,
}

/// Where a membership stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbMemberStatus")]
pub enum MembershipStatus {
    /// A member (or organiser) of the group.
    Active,
    /// Asked to join a REQUEST group; waiting for an organiser's decision.
    Pending,
    /// Invited by an organiser; joining the group accepts, leaving it declines.
    Invited,
    /// A request the organisers turned down; asking again makes it PENDING again.
    Rejected,
}

pub struct WorkingGroup(pub working_group::Model);

/// How the viewer stands to `group`, its membership read through the request loader
/// (batched with the rest of the page; no statement for an anonymous viewer). The rules
/// themselves are `services::groups::Access`'s.
pub(crate) async fn viewer_access_to(
    c: &Context<'_>,
    group: working_group::Model,
) -> async_graphql::Result<service::Access> {
    let (_, viewer) = ctx(c)?;
    let membership = match viewer.actor {
        Some(_) => loader(c)?.load_one(ViewerMembership(group.id)).await?,
        None => None,
    };
    Ok(access::with_membership(
        viewer.actor.as_ref(),
        group,
        membership,
    ))
}

impl WorkingGroup {
    /// Whether the viewer may see what a private group keeps to its members.
    pub async fn viewer_can_see_inside(&self, c: &Context<'_>) -> async_graphql::Result<bool> {
        if access::open_inside(&self.0) {
            return Ok(true);
        }
        Ok(viewer_access_to(c, self.0.clone()).await?.can_see_inside())
    }
}

/// A working group, steering group or network: members who meet and publish what they
/// decided. A private group's meet-ups, threads and member list are visible to its members
/// only; to everyone else a private group shows its name, kind and description.
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
    /// How many ACTIVE members it has (organisers included).
    async fn member_count(&self) -> i32 {
        self.0.member_count
    }
    /// Whether the outcomes of its meet-ups are public. Always true for a public group; for
    /// a private group the organisers choose (true by default for a steering group).
    async fn outcomes_public(&self) -> bool {
        self.0.outcomes_public
    }
    /// The commitments the group works on, by reference.
    async fn commitments(&self, c: &Context<'_>) -> async_graphql::Result<Vec<Commitment>> {
        let found = loader(c)?
            .load_one(CommitmentsOfGroup(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(found.into_iter().map(Commitment).collect())
    }
    /// The ACTIVE members, organisers first, then by when they joined. A private group's
    /// member list is visible to its members only: null for anyone else.
    async fn members(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
    ) -> async_graphql::Result<Option<MembershipConnection>> {
        let page = PageRequest::parse(first, after.as_deref())?;
        if !self.viewer_can_see_inside(c).await? {
            return Ok(None);
        }
        let found = match &page.after {
            // The first page comes through the loader, so a page of groups reads all
            // their first pages in one statement.
            None => {
                let rows = loader(c)?
                    .load_one(MembersOf {
                        group: self.0.id,
                        first: page.first,
                    })
                    .await?
                    .unwrap_or_default();
                Page::from_rows(rows, page.first, service::member_cursor)
            }
            Some(_) => {
                let (services, viewer) = ctx(c)?;
                service::members(services, viewer.actor.as_ref(), self.0.id, &page).await?
            }
        };
        let total = u64::try_from(self.0.member_count).unwrap_or(0);
        Ok(Some(MembershipConnection::new(
            found,
            Membership,
            Box::new(move || Box::pin(async move { Ok(total) })),
        )))
    }
    /// The viewer's own membership, whatever its status (pending, invited, rejected too);
    /// null when the viewer has none or is anonymous.
    async fn viewer_membership(
        &self,
        c: &Context<'_>,
    ) -> async_graphql::Result<Option<Membership>> {
        Ok(loader(c)?
            .load_one(ViewerMembership(self.0.id))
            .await?
            .map(Membership))
    }
    /// The viewer's calendar feed of the group's meet-ups (`text/calendar`). A public
    /// group's feed is one URL for everyone; a private group's is a secret URL per member,
    /// null for anyone else, and `rotateCalendarUrl` replaces it.
    async fn calendar_url(&self, c: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let (services, _) = ctx(c)?;
        let membership = match access::open_inside(&self.0) {
            true => None,
            false => loader(c)?.load_one(ViewerMembership(self.0.id)).await?,
        };
        Ok(calendar_feeds::group_feed_url(
            services,
            &self.0,
            membership.as_ref(),
        ))
    }
    /// The group's chat channel, for its organisers and administrators; null for anyone
    /// else. The webhook URL itself is never shown, only its host.
    async fn channel(&self, c: &Context<'_>) -> async_graphql::Result<Option<GroupChannel>> {
        let (services, viewer) = ctx(c)?;
        if viewer.actor.is_none() {
            return Ok(None);
        }
        let access = viewer_access_to(c, self.0.clone()).await?;
        Ok(channels::view(services, &access)
            .await?
            .map(GroupChannel::from))
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
    /// The group's discussions, pinned first, then the most recently active; null for
    /// those who cannot see inside a private group.
    async fn threads(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
    ) -> async_graphql::Result<Option<super::discussions::ThreadConnection>> {
        super::discussions::group_threads(c, &self.0, first, after).await
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
                loader(c)?.load_one(GroupKey(id)).await?
            }
            (None, Some(slug)) => service::find_by_slug(services, &slug).await?,
            (None, None) => None,
        };
        Ok(found.map(WorkingGroup))
    }

    /// Groups by name. Every group is listed, private ones too (their name, kind and
    /// description are public); `filter.memberId` finds a private group only for viewers who
    /// may see its member list.
    async fn working_groups(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "How many items to return: 1–100, 20 when left out.")] first: Option<i32>,
        #[graphql(desc = "Return the items after this cursor (a `pageInfo.endCursor`).")]
        after: Option<String>,
        #[graphql(desc = "Narrows the list.")] filter: Option<WorkingGroupFilter>,
    ) -> async_graphql::Result<WorkingGroupConnection> {
        let (services, viewer) = ctx(c)?;
        let page = PageRequest::parse(first, after.as_deref())?;
        let f = filter.unwrap_or_default();
        let filter = GroupFilter {
            search: f.search,
            commitment_id: f
                .commitment_id
                .as_ref()
                .map(|i| parse_id("filter.commitmentId", i))
                .transpose()?,
            member_id: f
                .member_id
                .as_ref()
                .map(|i| parse_id("filter.memberId", i))
                .transpose()?,
        };
        let actor = viewer.actor.clone();
        let found = service::list(services, actor.as_ref(), &filter, &page).await?;
        let s = services.clone();
        Ok(WorkingGroupConnection::new(
            found,
            WorkingGroup,
            Box::new(move || {
                let (s, f, a) = (s.clone(), filter.clone(), actor.clone());
                Box::pin(async move { service::count(&s, a.as_ref(), &f).await })
            }),
        ))
    }
}

pub struct Membership(pub membership::Model);

/// An account's place in a group: an ACTIVE member or organiser, a PENDING request, an
/// INVITED account that has not joined yet, or a REJECTED request.
#[Object]
impl Membership {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// The group.
    async fn working_group(&self, c: &Context<'_>) -> async_graphql::Result<Option<WorkingGroup>> {
        Ok(loader(c)?
            .load_one(GroupKey(self.0.working_group_id))
            .await?
            .map(WorkingGroup))
    }
    /// The account.
    async fn user(&self, c: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(loader(c)?
            .load_one(UserKey(self.0.user_id))
            .await?
            .map(User))
    }
    /// Organiser or member.
    async fn role(&self) -> MemberRole {
        self.0.role.into()
    }
    /// Where the membership stands.
    async fn status(&self) -> MembershipStatus {
        self.0.status.into()
    }
    /// When the account became an ACTIVE member; null until then.
    async fn joined_at(&self) -> Option<DateTime<Utc>> {
        self.0.joined_at
    }
    /// When the request, invitation or membership was first made.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(
    WorkingGroupConnection,
    WorkingGroupEdge,
    WorkingGroup,
    "A page of working groups.",
    "A working group in a list."
);
// Its fields go through its resolvers (`graphql::plain`).
impl super::plain::Plain for WorkingGroup {}
connection!(
    MembershipConnection,
    MembershipEdge,
    Membership,
    "A page of a group's members.",
    "A member in a list."
);
// Its fields go through its resolvers (`graphql::plain`).
impl super::plain::Plain for Membership {}

/// Narrows the list of working groups.
#[derive(InputObject, Default)]
pub struct WorkingGroupFilter {
    /// Words to find in the name, slug or description (case-insensitive).
    pub search: Option<String>,
    /// Only groups linked to this commitment.
    pub commitment_id: Option<ID>,
    /// Only groups this account is an ACTIVE member of. A private group appears only when
    /// the viewer may see its member list (the account itself, a fellow member, an
    /// administrator).
    pub member_id: Option<ID>,
}

/// A new group.
#[derive(InputObject)]
pub struct CreateWorkingGroupInput {
    /// Name, 3–200 characters.
    pub name: String,
    /// Unique short name for URLs: 3–80 lowercase letters, digits and hyphens.
    pub slug: String,
    /// Description in Markdown, at most 20,000 characters; sanitised like suggestions.
    pub description: Option<String>,
    /// What kind of body it is; WORKING_GROUP when left out.
    pub kind: Option<WorkingGroupKind>,
    /// Who sees inside; PUBLIC when left out.
    pub visibility: Option<WorkingGroupVisibility>,
    /// How people join. When left out: REQUEST for a PRIVATE group, OPEN for a PUBLIC one
    /// (a PRIVATE group joined OPENly is made only when OPEN is given here).
    pub join_policy: Option<JoinPolicy>,
    /// The commitments the group works on.
    pub commitment_ids: Option<Vec<ID>>,
    /// Whether meet-up outcomes are public. A public group's always are (false is refused);
    /// for a private group, true by default for a steering group and false otherwise.
    pub outcomes_public: Option<bool>,
}

/// Changes to a group; fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateWorkingGroupInput {
    /// The group.
    pub id: ID,
    /// New name, 3–200 characters.
    pub name: Option<String>,
    /// New unique slug.
    pub slug: Option<String>,
    /// New description in Markdown.
    pub description: Option<String>,
    /// New kind.
    pub kind: Option<WorkingGroupKind>,
    /// New visibility; making a group PUBLIC makes its outcomes public.
    pub visibility: Option<WorkingGroupVisibility>,
    /// New join policy (existing requests and invitations stay). Left out when an OPEN group
    /// is made PRIVATE, the group becomes REQUEST.
    pub join_policy: Option<JoinPolicy>,
    /// The linked commitments, replacing the current ones.
    pub commitment_ids: Option<Vec<ID>>,
    /// Whether meet-up outcomes are public (a private group's choice).
    pub outcomes_public: Option<bool>,
}

/// An organiser's decision on a PENDING request.
#[derive(InputObject)]
pub struct DecideMembershipInput {
    /// The PENDING membership.
    pub membership_id: ID,
    /// true admits the requester (ACTIVE); false rejects the request (REJECTED).
    pub approve: bool,
}

/// An invitation to a group.
#[derive(InputObject)]
pub struct InviteToWorkingGroupInput {
    /// The group.
    pub working_group_id: ID,
    /// The account invited.
    pub user_id: ID,
}

/// A member's new role.
#[derive(InputObject)]
pub struct SetMemberRoleInput {
    /// The ACTIVE membership.
    pub membership_id: ID,
    /// The new role.
    pub role: MemberRole,
}

/// Removes someone from a group.
#[derive(InputObject)]
pub struct RemoveMemberInput {
    /// The membership to end: an ACTIVE member's, or a PENDING request, or an invitation.
    pub membership_id: ID,
    /// Why, for the moderation log; at most 1,000 characters.
    pub reason: Option<String>,
}

/// The answer to `removeMember`.
#[derive(SimpleObject)]
pub struct RemoveMemberPayload {
    /// The membership as it was when it was ended (it no longer exists).
    pub membership: Membership,
}

macro_rules! group_payload {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(SimpleObject)]
        pub struct $name {
            /// The group as it is now.
            pub working_group: WorkingGroup,
        }
    };
}

macro_rules! membership_payload {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(SimpleObject)]
        pub struct $name {
            /// The membership as it is now.
            pub membership: Membership,
        }
    };
}

group_payload!(
    CreateWorkingGroupPayload,
    "The answer to `createWorkingGroup`."
);
group_payload!(
    UpdateWorkingGroupPayload,
    "The answer to `updateWorkingGroup`."
);
group_payload!(
    LeaveWorkingGroupPayload,
    "The answer to `leaveWorkingGroup`."
);
membership_payload!(JoinWorkingGroupPayload, "The answer to `joinWorkingGroup`.");
membership_payload!(DecideMembershipPayload, "The answer to `decideMembership`.");
membership_payload!(
    InviteToWorkingGroupPayload,
    "The answer to `inviteToWorkingGroup`."
);
membership_payload!(SetMemberRolePayload, "The answer to `setMemberRole`.");

fn commitment_ids(ids: Option<Vec<ID>>) -> async_graphql::Result<Option<Vec<uuid::Uuid>>> {
    Ok(ids
        .map(|ids| {
            ids.iter()
                .map(|i| parse_id("commitmentIds", i))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?)
}

/// A working group's chat channel: a Slack-compatible incoming webhook (Slack, Mattermost,
/// Rocket.Chat) to which new meet-ups, their outcomes, new threads in the group and official
/// responses on the group's commitments are posted.
#[derive(SimpleObject)]
pub struct GroupChannel {
    /// Whether a channel is connected.
    pub connected: bool,
    /// The webhook's host (the URL is a secret and never shown); null when not connected.
    pub webhook_host: Option<String>,
    /// When the current webhook was set; null when not connected.
    pub connected_at: Option<DateTime<Utc>>,
}

impl From<channels::ChannelView> for GroupChannel {
    fn from(v: channels::ChannelView) -> Self {
        GroupChannel {
            connected: v.connected,
            webhook_host: v.webhook_host,
            connected_at: v.connected_at,
        }
    }
}

/// Connects or disconnects a group's chat channel.
#[derive(InputObject)]
pub struct SetGroupChannelInput {
    /// The group.
    pub working_group_id: ID,
    /// The channel's incoming-webhook URL; null disconnects. https in production, and not
    /// pointing at a loopback, private or link-local address.
    pub webhook_url: Option<String>,
}

group_payload!(SetGroupChannelPayload, "The answer to `setGroupChannel`.");

#[derive(Default)]
pub struct GroupMutation;

#[Object]
impl GroupMutation {
    /// Creates a group (ORGANISER, OFFICIAL and ADMIN accounts with a verified email); the
    /// creator becomes its first organiser.
    async fn create_working_group(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CreateWorkingGroupInput,
    ) -> async_graphql::Result<CreateWorkingGroupPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let created = service::create(
            services,
            actor,
            NewGroup {
                name: input.name,
                slug: input.slug,
                description: input.description,
                kind: input.kind.map(Into::into),
                visibility: input.visibility.map(Into::into),
                join_policy: input.join_policy.map(Into::into),
                commitment_ids: commitment_ids(input.commitment_ids)?.unwrap_or_default(),
                outcomes_public: input.outcomes_public,
            },
        )
        .await?;
        Ok(CreateWorkingGroupPayload {
            working_group: WorkingGroup(created),
        })
    }

    /// Edits a group (its organisers and administrators).
    async fn update_working_group(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: UpdateWorkingGroupInput,
    ) -> async_graphql::Result<UpdateWorkingGroupPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("id", &input.id)?;
        let updated = service::update(
            services,
            actor,
            id,
            GroupChanges {
                name: input.name,
                slug: input.slug,
                description: input.description,
                kind: input.kind.map(Into::into),
                visibility: input.visibility.map(Into::into),
                join_policy: input.join_policy.map(Into::into),
                commitment_ids: commitment_ids(input.commitment_ids)?,
                outcomes_public: input.outcomes_public,
            },
        )
        .await?;
        Ok(UpdateWorkingGroupPayload {
            working_group: WorkingGroup(updated),
        })
    }

    /// Joins a group (verified accounts). OPEN: an ACTIVE member at once; REQUEST: a
    /// PENDING request for the organisers (a REJECTED one may ask again); INVITE: only with
    /// an invitation, which this accepts (FORBIDDEN otherwise). Joining again changes
    /// nothing.
    async fn join_working_group(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The group's ID.")] id: ID,
    ) -> async_graphql::Result<JoinWorkingGroupPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let m = service::join(services, actor, parse_id("id", &id)?).await?;
        Ok(JoinWorkingGroupPayload {
            membership: Membership(m),
        })
    }

    /// Leaves a group; also withdraws a pending request or declines an invitation. The last
    /// ACTIVE organiser cannot leave (CONFLICT).
    async fn leave_working_group(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The group's ID.")] id: ID,
    ) -> async_graphql::Result<LeaveWorkingGroupPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let g = service::leave(services, actor, parse_id("id", &id)?).await?;
        Ok(LeaveWorkingGroupPayload {
            working_group: WorkingGroup(g),
        })
    }

    /// Approves or rejects a PENDING request (the group's organisers); the requester is
    /// notified.
    async fn decide_membership(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: DecideMembershipInput,
    ) -> async_graphql::Result<DecideMembershipPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("membershipId", &input.membership_id)?;
        let m = service::decide(services, actor, id, input.approve).await?;
        Ok(DecideMembershipPayload {
            membership: Membership(m),
        })
    }

    /// Invites an account (the group's organisers): it becomes INVITED and joins by calling
    /// `joinWorkingGroup`. A pending or rejected request turns into an invitation; an ACTIVE
    /// member is a CONFLICT. The invitee is notified.
    async fn invite_to_working_group(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: InviteToWorkingGroupInput,
    ) -> async_graphql::Result<InviteToWorkingGroupPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let group = parse_id("workingGroupId", &input.working_group_id)?;
        let user = parse_id("userId", &input.user_id)?;
        let m = service::invite(services, actor, group, user).await?;
        Ok(InviteToWorkingGroupPayload {
            membership: Membership(m),
        })
    }

    /// Connects the group's chat channel to an incoming webhook, or disconnects it with a
    /// null `webhookUrl` (the group's organisers and administrators; FORBIDDEN otherwise).
    /// An invalid URL, http in production, or a host resolving to a loopback, private or
    /// link-local address is BAD_USER_INPUT on `webhookUrl`.
    async fn set_group_channel(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: SetGroupChannelInput,
    ) -> async_graphql::Result<SetGroupChannelPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("workingGroupId", &input.working_group_id)?;
        let g = channels::set(services, actor, id, input.webhook_url.as_deref()).await?;
        Ok(SetGroupChannelPayload {
            working_group: WorkingGroup(g),
        })
    }

    /// Promotes an ACTIVE member to organiser or demotes an organiser (the group's
    /// organisers). Demoting the last ACTIVE organiser is a CONFLICT.
    async fn set_member_role(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: SetMemberRoleInput,
    ) -> async_graphql::Result<SetMemberRolePayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("membershipId", &input.membership_id)?;
        let m = service::set_role(services, actor, id, input.role.into()).await?;
        Ok(SetMemberRolePayload {
            membership: Membership(m),
        })
    }

    /// Removes someone from the group (its organisers and administrators; FORBIDDEN for
    /// anyone else), logged in the moderation log with the reason. An ACTIVE member gives up
    /// their RSVPs to the group's meet-ups still to come, and the waitlists move up.
    /// BAD_USER_INPUT (`membershipId`) for one's own membership (leave instead); CONFLICT
    /// for the group's last ACTIVE organiser.
    async fn remove_member(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Whom to remove, and why.")] input: RemoveMemberInput,
    ) -> async_graphql::Result<RemoveMemberPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("membershipId", &input.membership_id)?;
        let m = service::remove_member(services, actor, id, input.reason.as_deref()).await?;
        Ok(RemoveMemberPayload {
            membership: Membership(m),
        })
    }
}
