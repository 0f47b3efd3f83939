//! Reactions to posts: one of each kind per account and post, toggled, with a counter per
//! kind on the post kept equal to the rows.

use sea_orm::{ActiveValue::Set, EntityTrait, QuerySelect};
use uuid::Uuid;

use super::visibility::access_for;
use crate::auth::Actor;
use crate::db::{begin_write, now};
use crate::entities::post_reaction::{self, Reaction};
use crate::entities::{post, thread};
use crate::error::{AppError, AppResult};
use crate::services::{toggle, Ctx};

/// The post's counter column for a kind of reaction.
pub fn counter(reaction: Reaction) -> post::Column {
    match reaction {
        Reaction::ThumbsUp => post::Column::ThumbsUpCount,
        Reaction::Heart => post::Column::HeartCount,
        Reaction::Lightbulb => post::Column::LightbulbCount,
        Reaction::Question => post::Column::QuestionCount,
    }
}

/// The post's count of a kind of reaction.
pub fn count_of(p: &post::Model, reaction: Reaction) -> i32 {
    match reaction {
        Reaction::ThumbsUp => p.thumbs_up_count,
        Reaction::Heart => p.heart_count,
        Reaction::Lightbulb => p.lightbulb_count,
        Reaction::Question => p.question_count,
    }
}

/// Adds (`on`) or takes back the actor's reaction of one kind to a post. Repeating either
/// changes nothing. Reacting needs what writing in the thread needs (a group's threads:
/// its members); nobody reacts to their own post or to a deleted one.
pub async fn react(
    ctx: &Ctx,
    actor: &Actor,
    post_id: Uuid,
    reaction: Reaction,
    on: bool,
) -> AppResult<post::Model> {
    actor.require_verified()?;
    let tx = begin_write(&ctx.db).await?;
    // The post's row lock: concurrent reactions to one post move its counters one at a time.
    let p = post::Entity::find_by_id(post_id)
        .lock_exclusive()
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("post"))?;
    let t = thread::Entity::find_by_id(p.thread_id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("post"))?;
    let (_, access) = match access_for(&tx, Some(actor), t).await {
        Err(AppError::NotFound(_)) => return Err(AppError::NotFound("post")),
        other => other?,
    };
    if on {
        if let Some(a) = &access {
            if !a.is_member() && !a.admin {
                return Err(AppError::Forbidden(
                    "only the group's members react in its threads".into(),
                ));
            }
        }
        if p.author_id == actor.id {
            return Err(AppError::Forbidden(
                "you cannot react to your own post".into(),
            ));
        }
        if p.deleted_at.is_some() {
            return Err(AppError::Conflict(
                "a deleted post takes no reactions".into(),
            ));
        }
    }
    let row = post_reaction::ActiveModel {
        post_id: Set(post_id),
        user_id: Set(actor.id),
        reaction: Set(reaction),
        created_at: Set(now()),
    };
    if toggle::set_row::<post_reaction::Entity, _>(&tx, on, row, (post_id, actor.id, reaction))
        .await?
    {
        toggle::bump::<post::Entity, _, _>(
            &tx,
            post::Column::Id,
            post_id,
            counter(reaction),
            if on { 1 } else { -1 },
        )
        .await?;
    }
    let updated = post::Entity::find_by_id(post_id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("post"))?;
    tx.commit().await?;
    Ok(updated)
}
