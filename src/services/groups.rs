//! Working groups and their members. This module answers the question every other domain
//! asks of a group ("who is this viewer to it?") through `access`, so that the rules for
//! private groups live in one place.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::Ctx;
use crate::auth::Actor;
use crate::entities::membership::{self, Role as MemberRole, Status as MemberStatus};
use crate::entities::working_group::{self, Visibility};
use crate::error::{AppError, AppResult};

/// A group as one viewer stands to it.
#[derive(Clone, Debug)]
pub struct Access {
    pub group: working_group::Model,
    /// The viewer's membership row, whatever its status (pending, invited, rejected too).
    pub membership: Option<membership::Model>,
    /// Site administrators see and run every group.
    pub admin: bool,
}

impl Access {
    /// An ACTIVE member (organisers included).
    pub fn is_member(&self) -> bool {
        self.membership
            .as_ref()
            .is_some_and(|m| m.status == MemberStatus::Active)
    }

    /// An ACTIVE organiser of the group.
    pub fn is_organiser(&self) -> bool {
        self.membership
            .as_ref()
            .is_some_and(|m| m.status == MemberStatus::Active && m.role == MemberRole::Organiser)
    }

    /// May run the group: its organisers and site administrators.
    pub fn can_organise(&self) -> bool {
        self.admin || self.is_organiser()
    }

    /// May see what a private group keeps to its members (meet-ups, threads, the member
    /// list): everyone for a public group; active members and administrators for a private one.
    pub fn can_see_inside(&self) -> bool {
        self.group.visibility == Visibility::Public || self.admin || self.is_member()
    }

    /// `FORBIDDEN` unless the viewer may run the group.
    pub fn require_organiser(&self) -> AppResult<()> {
        if self.can_organise() {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "only the group's organisers may do this".to_string(),
            ))
        }
    }
}

/// How `actor` (or an anonymous viewer) stands to the group `group_id`, read on `conn` (a
/// transaction when the caller will write). `NotFound` when there is no such group.
pub async fn access<C: ConnectionTrait>(
    conn: &C,
    actor: Option<&Actor>,
    group_id: Uuid,
) -> AppResult<Access> {
    let group = working_group::Entity::find_by_id(group_id)
        .one(conn)
        .await?
        .ok_or(AppError::NotFound("working group"))?;
    access_to(conn, actor, group).await
}

/// `access` for a group already read.
pub async fn access_to<C: ConnectionTrait>(
    conn: &C,
    actor: Option<&Actor>,
    group: working_group::Model,
) -> AppResult<Access> {
    let membership = match actor {
        Some(a) => {
            membership::Entity::find()
                .filter(membership::Column::WorkingGroupId.eq(group.id))
                .filter(membership::Column::UserId.eq(a.id))
                .one(conn)
                .await?
        }
        None => None,
    };
    Ok(Access {
        group,
        membership,
        admin: actor.is_some_and(Actor::is_admin),
    })
}

/// The group if `ctx`'s viewer may know it exists: every group shows its name, kind and
/// description, so this is every group; kept as the one door for reads by id.
pub async fn find(ctx: &Ctx, id: Uuid) -> AppResult<Option<working_group::Model>> {
    Ok(working_group::Entity::find_by_id(id).one(&ctx.db).await?)
}

/// The group with this slug.
pub async fn find_by_slug(ctx: &Ctx, slug: &str) -> AppResult<Option<working_group::Model>> {
    Ok(working_group::Entity::find()
        .filter(working_group::Column::Slug.eq(slug.trim().to_lowercase()))
        .one(&ctx.db)
        .await?)
}
