//! DataLoaders for every relation a list can reach, so a page costs a fixed number of SQL
//! statements whatever its size. One `Loaders` per request: the viewer flags depend on who
//! is asking.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::batch::Batcher;
use crate::entities::{
    commitment, commitment_follow, milestone, official_response, suggestion, suggestion_follow,
    suggestion_revision, support, user, working_group,
};
use crate::entities::{
    commitment_update, meetup, meetup_outcome, membership, working_group_commitment,
};
use crate::entities::{post, post_reaction, post_revision, report, thread, thread_follow};
use crate::error::AppError;
use crate::services::Ctx;

pub struct Loaders {
    ctx: Ctx,
    viewer: Option<Uuid>,
}

/// The request's loader: batches each key type's loads into one statement per round.
pub type RequestLoader = Batcher<Loaders>;

pub fn request_loader(ctx: Ctx, viewer: Option<Uuid>) -> RequestLoader {
    Batcher::new(Loaders { ctx, viewer })
}

#[derive(Clone)]
pub struct LoadError(Arc<sea_orm::DbErr>);

impl From<LoadError> for async_graphql::Error {
    fn from(e: LoadError) -> Self {
        AppError::internal(anyhow::anyhow!("loading failed: {}", e.0)).into()
    }
}

fn err(e: sea_orm::DbErr) -> LoadError {
    LoadError(Arc::new(e))
}

macro_rules! key {
    ($name:ident) => {
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
        pub struct $name(pub Uuid);
    };
}

key!(UserKey);
key!(CommitmentKey);
key!(SuggestionKey);
key!(MilestonesOf);
key!(ResponsesOf);
key!(RevisionsOf);
key!(ResponseKey);
key!(ViewerSupports);
key!(ViewerFollowsSuggestion);
key!(ViewerFollowsCommitment);
key!(ViewerFollowsThread);
// Working groups and meet-ups.
key!(GroupKey);
key!(CommitmentsOfGroup);
key!(GroupsOfCommitment);
key!(ViewerMembership);
/// The first `first` ACTIVE members of a group (the first page of `WorkingGroup.members`),
/// one more than shown so the page knows whether another follows.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct MembersOf {
    pub group: Uuid,
    pub first: u64,
}

fn ids<K: Copy>(keys: &[K], f: impl Fn(K) -> Uuid) -> Vec<Uuid> {
    keys.iter().map(|k| f(*k)).collect()
}

/// One row per key, looked up by primary key.
macro_rules! by_id {
    ($key:ident, $entity:ident) => {
        impl Loader<$key> for Loaders {
            type Value = $entity::Model;
            type Error = LoadError;
            async fn load(
                &self,
                keys: &[$key],
            ) -> Result<HashMap<$key, $entity::Model>, LoadError> {
                let rows = $entity::Entity::find()
                    .filter($entity::Column::Id.is_in(ids(keys, |k| k.0)))
                    .all(&self.ctx.db)
                    .await
                    .map_err(err)?;
                Ok(rows.into_iter().map(|r| ($key(r.id), r)).collect())
            }
        }
    };
}

impl Loader<UserKey> for Loaders {
    type Value = user::Profile;
    type Error = LoadError;
    async fn load(&self, keys: &[UserKey]) -> Result<HashMap<UserKey, user::Profile>, LoadError> {
        let rows = user::Entity::find()
            .filter(user::Column::Id.is_in(ids(keys, |k| k.0)))
            .into_partial_model::<user::Profile>()
            .all(&self.ctx.db)
            .await
            .map_err(err)?;
        Ok(rows.into_iter().map(|r| (UserKey(r.id), r)).collect())
    }
}
by_id!(CommitmentKey, commitment);
by_id!(SuggestionKey, suggestion);
by_id!(ResponseKey, official_response);
by_id!(GroupKey, working_group);

/// Whether the viewer has a row (support or follow) for each key; anonymous viewers have none.
macro_rules! viewer_flag {
    ($key:ident, $entity:ident, $column:ident, $field:ident) => {
        impl Loader<$key> for Loaders {
            type Value = bool;
            type Error = LoadError;
            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, bool>, LoadError> {
                let mut out: HashMap<$key, bool> = keys.iter().map(|k| (*k, false)).collect();
                let Some(viewer) = self.viewer else {
                    return Ok(out);
                };
                let rows = $entity::Entity::find()
                    .filter($entity::Column::UserId.eq(viewer))
                    .filter($entity::Column::$column.is_in(ids(keys, |k| k.0)))
                    .all(&self.ctx.db)
                    .await
                    .map_err(err)?;
                for r in rows {
                    out.insert($key(r.$field), true);
                }
                Ok(out)
            }
        }
    };
}

viewer_flag!(ViewerSupports, support, SuggestionId, suggestion_id);
viewer_flag!(
    ViewerFollowsSuggestion,
    suggestion_follow,
    SuggestionId,
    suggestion_id
);
viewer_flag!(
    ViewerFollowsCommitment,
    commitment_follow,
    CommitmentId,
    commitment_id
);
viewer_flag!(ViewerFollowsThread, thread_follow, ThreadId, thread_id);

impl Loader<MilestonesOf> for Loaders {
    type Value = Vec<milestone::Model>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[MilestonesOf],
    ) -> Result<HashMap<MilestonesOf, Vec<milestone::Model>>, LoadError> {
        let rows = milestone::Entity::find()
            .filter(milestone::Column::CommitmentId.is_in(ids(keys, |k| k.0)))
            .order_by_asc(milestone::Column::Position)
            .all(&self.ctx.db)
            .await
            .map_err(err)?;
        let mut out: HashMap<MilestonesOf, Vec<milestone::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for r in rows {
            out.entry(MilestonesOf(r.commitment_id))
                .or_default()
                .push(r);
        }
        Ok(out)
    }
}

impl Loader<ResponsesOf> for Loaders {
    type Value = Vec<official_response::Model>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[ResponsesOf],
    ) -> Result<HashMap<ResponsesOf, Vec<official_response::Model>>, LoadError> {
        let rows = official_response::Entity::find()
            .filter(official_response::Column::SuggestionId.is_in(ids(keys, |k| k.0)))
            .order_by_asc(official_response::Column::Id)
            .all(&self.ctx.db)
            .await
            .map_err(err)?;
        let mut out: HashMap<ResponsesOf, Vec<official_response::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for r in rows {
            if let Some(s) = r.suggestion_id {
                out.entry(ResponsesOf(s)).or_default().push(r);
            }
        }
        Ok(out)
    }
}

impl Loader<RevisionsOf> for Loaders {
    type Value = Vec<suggestion_revision::Model>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[RevisionsOf],
    ) -> Result<HashMap<RevisionsOf, Vec<suggestion_revision::Model>>, LoadError> {
        let rows = crate::services::revisions::newest_of::<suggestion_revision::Entity, _>(
            &self.ctx.db,
            suggestion_revision::Column::SuggestionId,
            ids(keys, |k| k.0),
            self.ctx.settings.limits.max_revisions,
        )
        .await
        .map_err(err)?;
        let mut out: HashMap<RevisionsOf, Vec<suggestion_revision::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for r in rows {
            out.entry(RevisionsOf(r.suggestion_id)).or_default().push(r);
        }
        Ok(out)
    }
}

// ---- Working groups: linked commitments, the viewer's membership, first pages of members.

impl Loader<CommitmentsOfGroup> for Loaders {
    type Value = Vec<commitment::Model>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[CommitmentsOfGroup],
    ) -> Result<HashMap<CommitmentsOfGroup, Vec<commitment::Model>>, LoadError> {
        let rows = working_group_commitment::Entity::find()
            .filter(working_group_commitment::Column::WorkingGroupId.is_in(ids(keys, |k| k.0)))
            .find_also_related(commitment::Entity)
            .order_by_asc(commitment::Column::Reference)
            .all(&self.ctx.db)
            .await
            .map_err(err)?;
        let mut out: HashMap<CommitmentsOfGroup, Vec<commitment::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for (link, c) in rows {
            if let Some(c) = c {
                out.entry(CommitmentsOfGroup(link.working_group_id))
                    .or_default()
                    .push(c);
            }
        }
        Ok(out)
    }
}

impl Loader<GroupsOfCommitment> for Loaders {
    type Value = Vec<working_group::Model>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[GroupsOfCommitment],
    ) -> Result<HashMap<GroupsOfCommitment, Vec<working_group::Model>>, LoadError> {
        let rows = working_group_commitment::Entity::find()
            .filter(working_group_commitment::Column::CommitmentId.is_in(ids(keys, |k| k.0)))
            .find_also_related(working_group::Entity)
            .order_by_asc(working_group::Column::Name)
            .order_by_asc(working_group::Column::Id)
            .all(&self.ctx.db)
            .await
            .map_err(err)?;
        let mut out: HashMap<GroupsOfCommitment, Vec<working_group::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for (link, g) in rows {
            if let Some(g) = g {
                out.entry(GroupsOfCommitment(link.commitment_id))
                    .or_default()
                    .push(g);
            }
        }
        Ok(out)
    }
}

// ---- Meet-ups -------------------------------------------------------------------------
key!(MeetupKey);
// The viewer's RSVP to a meet-up, with the waitlist position.
key!(ViewerRsvp);
// A meet-up's published outcome, by meet-up id.
key!(OutcomeOf);
key!(MeetupOutcomeKey);

by_id!(MeetupKey, meetup);
by_id!(MeetupOutcomeKey, meetup_outcome);

impl Loader<ViewerRsvp> for Loaders {
    type Value = crate::services::meetups::RsvpView;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[ViewerRsvp],
    ) -> Result<HashMap<ViewerRsvp, crate::services::meetups::RsvpView>, LoadError> {
        let Some(viewer) = self.viewer else {
            return Ok(HashMap::new());
        };
        let found =
            crate::services::meetups::viewer_rsvps(&self.ctx.db, viewer, &ids(keys, |k| k.0))
                .await
                .map_err(|e| match e {
                    AppError::Internal(e) => err(sea_orm::DbErr::Custom(format!("{e:#}"))),
                    other => err(sea_orm::DbErr::Custom(other.message())),
                })?;
        Ok(found
            .into_iter()
            .map(|r| (ViewerRsvp(r.row.meetup_id), r))
            .collect())
    }
}

impl Loader<OutcomeOf> for Loaders {
    type Value = meetup_outcome::Model;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[OutcomeOf],
    ) -> Result<HashMap<OutcomeOf, meetup_outcome::Model>, LoadError> {
        let rows = meetup_outcome::Entity::find()
            .filter(meetup_outcome::Column::MeetupId.is_in(ids(keys, |k| k.0)))
            .all(&self.ctx.db)
            .await
            .map_err(err)?;
        Ok(rows
            .into_iter()
            .map(|r| (OutcomeOf(r.meetup_id), r))
            .collect())
    }
}

/// The viewer's membership of each group, whatever its status; none when anonymous (and
/// then no statement).
impl Loader<ViewerMembership> for Loaders {
    type Value = membership::Model;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[ViewerMembership],
    ) -> Result<HashMap<ViewerMembership, membership::Model>, LoadError> {
        let Some(viewer) = self.viewer else {
            return Ok(HashMap::new());
        };
        let rows = membership::Entity::find()
            .filter(membership::Column::UserId.eq(viewer))
            .filter(membership::Column::WorkingGroupId.is_in(ids(keys, |k| k.0)))
            .all(&self.ctx.db)
            .await
            .map_err(err)?;
        Ok(rows
            .into_iter()
            .map(|r| (ViewerMembership(r.working_group_id), r))
            .collect())
    }
}

/// First pages of members, one statement per page size asked for in the round (a page of
/// groups asks for one size).
impl Loader<MembersOf> for Loaders {
    type Value = Vec<membership::Model>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[MembersOf],
    ) -> Result<HashMap<MembersOf, Vec<membership::Model>>, LoadError> {
        let mut sizes: std::collections::BTreeMap<u64, Vec<Uuid>> = Default::default();
        for k in keys {
            sizes.entry(k.first).or_default().push(k.group);
        }
        let mut out: HashMap<MembersOf, Vec<membership::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for (first, groups) in sizes {
            let rows = crate::services::groups::first_members(&self.ctx.db, &groups, first + 1)
                .await
                .map_err(err)?;
            for r in rows {
                out.entry(MembersOf {
                    group: r.working_group_id,
                    first,
                })
                .or_default()
                .push(r);
            }
        }
        Ok(out)
    }
}

// ---- Official updates -----------------------------------------------------------------
key!(UpdateKey);
key!(MilestoneKey);
by_id!(UpdateKey, commitment_update);
by_id!(MilestoneKey, milestone);

/// The first `first` updates of a commitment, newest first (the first page of
/// `Commitment.updates`), one more than shown so the page knows whether another follows.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct UpdatesOf {
    pub commitment: Uuid,
    pub first: u64,
}

/// First pages of updates, one statement per page size asked for in the round.
impl Loader<UpdatesOf> for Loaders {
    type Value = Vec<commitment_update::Model>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[UpdatesOf],
    ) -> Result<HashMap<UpdatesOf, Vec<commitment_update::Model>>, LoadError> {
        let mut sizes: std::collections::BTreeMap<u64, Vec<Uuid>> = Default::default();
        for k in keys {
            sizes.entry(k.first).or_default().push(k.commitment);
        }
        let mut out: HashMap<UpdatesOf, Vec<commitment_update::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for (first, commitments) in sizes {
            let rows = crate::services::updates::first_of_commitments(
                &self.ctx.db,
                &commitments,
                first + 1,
            )
            .await
            .map_err(err)?;
            for r in rows {
                out.entry(UpdatesOf {
                    commitment: r.commitment_id,
                    first,
                })
                .or_default()
                .push(r);
            }
        }
        Ok(out)
    }
}

// The discussion thread of an official update, by update id.
key!(ThreadOfUpdate);

impl Loader<ThreadOfUpdate> for Loaders {
    type Value = crate::entities::thread::Model;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[ThreadOfUpdate],
    ) -> Result<HashMap<ThreadOfUpdate, crate::entities::thread::Model>, LoadError> {
        let found = crate::services::updates::threads_of_updates(&self.ctx.db, &ids(keys, |k| k.0))
            .await
            .map_err(err)?;
        Ok(found
            .into_iter()
            .map(|(u, t)| (ThreadOfUpdate(u), t))
            .collect())
    }
}

// ---- Discussions ------------------------------------------------------------------------
key!(ThreadKey);
key!(PostKey);
// A suggestion's own thread, by suggestion id.
key!(ThreadOfSuggestion);
// The kinds of reaction the viewer gave a post.
key!(ViewerReactions);
// A post's earlier versions, oldest first.
key!(PostRevisionsOf);
// Official responses to a thread, oldest first.
key!(ThreadResponsesOf);

by_id!(ThreadKey, thread);
by_id!(PostKey, post);

// Notifications (issue 10).
key!(ReportKey);
by_id!(ReportKey, report);

impl Loader<ThreadOfSuggestion> for Loaders {
    type Value = thread::Model;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[ThreadOfSuggestion],
    ) -> Result<HashMap<ThreadOfSuggestion, thread::Model>, LoadError> {
        let rows = thread::Entity::find()
            .filter(thread::Column::SuggestionId.is_in(ids(keys, |k| k.0)))
            .all(&self.ctx.db)
            .await
            .map_err(err)?;
        Ok(rows
            .into_iter()
            .filter_map(|t| t.suggestion_id.map(|s| (ThreadOfSuggestion(s), t)))
            .collect())
    }
}

/// The viewer's reactions to each post; an anonymous viewer has none and costs no statement.
impl Loader<ViewerReactions> for Loaders {
    type Value = Vec<post_reaction::Reaction>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[ViewerReactions],
    ) -> Result<HashMap<ViewerReactions, Vec<post_reaction::Reaction>>, LoadError> {
        let mut out: HashMap<ViewerReactions, Vec<post_reaction::Reaction>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        let Some(viewer) = self.viewer else {
            return Ok(out);
        };
        let rows = post_reaction::Entity::find()
            .filter(post_reaction::Column::UserId.eq(viewer))
            .filter(post_reaction::Column::PostId.is_in(ids(keys, |k| k.0)))
            .all(&self.ctx.db)
            .await
            .map_err(err)?;
        for r in rows {
            out.entry(ViewerReactions(r.post_id))
                .or_default()
                .push(r.reaction);
        }
        Ok(out)
    }
}

impl Loader<PostRevisionsOf> for Loaders {
    type Value = Vec<post_revision::Model>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[PostRevisionsOf],
    ) -> Result<HashMap<PostRevisionsOf, Vec<post_revision::Model>>, LoadError> {
        let rows = crate::services::revisions::newest_of::<post_revision::Entity, _>(
            &self.ctx.db,
            post_revision::Column::PostId,
            ids(keys, |k| k.0),
            self.ctx.settings.limits.max_revisions,
        )
        .await
        .map_err(err)?;
        let mut out: HashMap<PostRevisionsOf, Vec<post_revision::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for r in rows {
            out.entry(PostRevisionsOf(r.post_id)).or_default().push(r);
        }
        Ok(out)
    }
}

impl Loader<ThreadResponsesOf> for Loaders {
    type Value = Vec<official_response::Model>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[ThreadResponsesOf],
    ) -> Result<HashMap<ThreadResponsesOf, Vec<official_response::Model>>, LoadError> {
        let rows = official_response::Entity::find()
            .filter(official_response::Column::ThreadId.is_in(ids(keys, |k| k.0)))
            .order_by_asc(official_response::Column::Id)
            .all(&self.ctx.db)
            .await
            .map_err(err)?;
        let mut out: HashMap<ThreadResponsesOf, Vec<official_response::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for r in rows {
            if let Some(t) = r.thread_id {
                out.entry(ThreadResponsesOf(t)).or_default().push(r);
            }
        }
        Ok(out)
    }
}

/// The first page of threads of a commitment (or of a group), one more than shown so the
/// page knows whether another follows.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct ThreadsOf {
    pub parent: crate::services::discussions::threads::Parent,
    pub id: Uuid,
    pub first: u64,
}

/// The first page of posts of a thread, one more than shown.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct PostsOf {
    pub thread: Uuid,
    pub first: u64,
}

/// First pages of threads, one statement per parent kind and page size in the round.
impl Loader<ThreadsOf> for Loaders {
    type Value = Vec<thread::Model>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[ThreadsOf],
    ) -> Result<HashMap<ThreadsOf, Vec<thread::Model>>, LoadError> {
        use crate::services::discussions::threads::{first_threads, Parent};
        let mut rounds: HashMap<(Parent, u64), Vec<Uuid>> = HashMap::new();
        for k in keys {
            rounds.entry((k.parent, k.first)).or_default().push(k.id);
        }
        let mut out: HashMap<ThreadsOf, Vec<thread::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for ((parent, first), ids) in rounds {
            let rows = first_threads(&self.ctx.db, parent, &ids, first + 1)
                .await
                .map_err(err)?;
            for t in rows {
                let id = match parent {
                    Parent::Commitment => t.commitment_id,
                    Parent::WorkingGroup => t.working_group_id,
                };
                if let Some(id) = id {
                    out.entry(ThreadsOf { parent, id, first })
                        .or_default()
                        .push(t);
                }
            }
        }
        Ok(out)
    }
}

/// First pages of posts, one statement per page size in the round.
impl Loader<PostsOf> for Loaders {
    type Value = Vec<post::Model>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[PostsOf],
    ) -> Result<HashMap<PostsOf, Vec<post::Model>>, LoadError> {
        let mut sizes: std::collections::BTreeMap<u64, Vec<Uuid>> = Default::default();
        for k in keys {
            sizes.entry(k.first).or_default().push(k.thread);
        }
        let mut out: HashMap<PostsOf, Vec<post::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for (first, threads) in sizes {
            let rows =
                crate::services::discussions::posts::first_posts(&self.ctx.db, &threads, first + 1)
                    .await
                    .map_err(err)?;
            for p in rows {
                out.entry(PostsOf {
                    thread: p.thread_id,
                    first,
                })
                .or_default()
                .push(p);
            }
        }
        Ok(out)
    }
}
