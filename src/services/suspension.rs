//! Suspending accounts and ending their sessions (admins only). A suspension ends every
//! session of the account and closes its sockets at once; until it is over the account can
//! neither log in nor act (`accounts::authenticate` refuses its tokens). Its content stays.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
use uuid::Uuid;

use super::accounts::{revoke_all_sessions, sessions_ended};
use super::moderation_log::{self, Entry};
use super::Ctx;
use crate::auth::Actor;
use crate::db::{begin_write, now};
use crate::entities::moderation_action::Action;
use crate::entities::report::SubjectType;
use crate::entities::user;
use crate::error::{AppError, AppResult};

/// The longest reason kept in the moderation log.
const REASON_MAX: usize = 500;

fn require_admin(actor: &Actor, what: &str) -> AppResult<()> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!("only an admin {what}")))
    }
}

async fn target<C: sea_orm::ConnectionTrait>(conn: &C, user_id: Uuid) -> AppResult<user::Model> {
    user::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .ok_or(AppError::NotFound("user"))
}

/// Suspends `user_id` until `until`, with a reason for the moderation log. Suspending again
/// moves the end. An admin cannot suspend their own account (nobody could lift it).
pub async fn suspend(
    ctx: &Ctx,
    actor: &Actor,
    user_id: Uuid,
    until: DateTime<Utc>,
    reason: &str,
) -> AppResult<user::Model> {
    require_admin(actor, "suspends accounts")?;
    if user_id == actor.id {
        return Err(AppError::bad_input(
            "userId",
            "you cannot suspend your own account",
        ));
    }
    let at = now();
    if until <= at {
        return Err(AppError::bad_input("until", "give a time in the future"));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_MAX {
        return Err(AppError::bad_input(
            "reason",
            format!("give a reason of 1–{REASON_MAX} characters"),
        ));
    }
    let tx = begin_write(&ctx.db).await?;
    let mut active = target(&tx, user_id).await?.into_active_model();
    active.suspended_until = Set(Some(until));
    active.updated_at = Set(at);
    let user = active.update(&tx).await?;
    revoke_all_sessions(&tx, user.id, None).await?;
    let logged = format!(
        "until {}: {reason}",
        until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    moderation_log::record(
        &tx,
        Entry {
            actor_id: actor.id,
            action: Action::Suspend,
            subject_type: SubjectType::User,
            subject_id: user.id,
            working_group_id: None,
            reason: Some(&logged),
        },
    )
    .await?;
    tx.commit().await?;
    sessions_ended(ctx, user.id, None, None);
    Ok(user)
}

/// Lifts a suspension (logged). Lifting one that is not there changes nothing and logs
/// nothing. The account logs in again; its ended sessions stay ended.
pub async fn unsuspend(ctx: &Ctx, actor: &Actor, user_id: Uuid) -> AppResult<user::Model> {
    require_admin(actor, "lifts suspensions")?;
    let tx = begin_write(&ctx.db).await?;
    let found = target(&tx, user_id).await?;
    if found.suspended_until.is_none() {
        return Ok(found);
    }
    let mut active = found.into_active_model();
    active.suspended_until = Set(None);
    active.updated_at = Set(now());
    let user = active.update(&tx).await?;
    moderation_log::record(
        &tx,
        Entry {
            actor_id: actor.id,
            action: Action::Unsuspend,
            subject_type: SubjectType::User,
            subject_id: user.id,
            working_group_id: None,
            reason: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Ends every session of another account (a stolen device, a shared password): its tokens
/// stop working on their next request and its sockets close. How many sessions ended.
pub async fn end_sessions_of(ctx: &Ctx, actor: &Actor, user_id: Uuid) -> AppResult<u64> {
    require_admin(actor, "ends another person's sessions")?;
    let tx = begin_write(&ctx.db).await?;
    target(&tx, user_id).await?;
    let ended = revoke_all_sessions(&tx, user_id, None).await?;
    tx.commit().await?;
    sessions_ended(ctx, user_id, None, None);
    Ok(ended)
}

/// When an account's suspension ends, if it is suspended now.
pub async fn suspended_until(ctx: &Ctx, user_id: Uuid) -> AppResult<Option<DateTime<Utc>>> {
    let found = target(&ctx.db, user_id).await?;
    Ok(found.suspended_until.filter(|_| found.is_suspended(now())))
}
