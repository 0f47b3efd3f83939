//! Suspending accounts and ending their sessions (ADMIN only).

use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::accounts::User;
use super::ctx;
use super::scalars::parse_id;
use crate::services::suspension;

/// Whom to suspend, until when, and why.
#[derive(InputObject)]
pub struct SuspendUserInput {
    /// The account.
    pub user_id: ID,
    /// When the suspension ends by itself; must be in the future.
    pub until: DateTime<Utc>,
    /// Why, for the moderation log (1–500 characters).
    pub reason: String,
}

/// The answer to `suspendUser`.
#[derive(SimpleObject)]
pub struct SuspendUserPayload {
    /// The suspended account.
    pub user: User,
}

/// The answer to `unsuspendUser`.
#[derive(SimpleObject)]
pub struct UnsuspendUserPayload {
    /// The account, no longer suspended.
    pub user: User,
}

/// The answer to `endSessionsOf`.
#[derive(SimpleObject)]
pub struct EndSessionsOfPayload {
    /// How many sessions were still open and have now ended.
    pub ended: i32,
}

#[derive(Default)]
pub struct SuspensionMutation;

#[Object]
impl SuspensionMutation {
    /// Suspends an account until a given time (ADMIN only; written to the moderation log).
    /// Its sessions end and its open sockets close at once; until the time passes it cannot
    /// log in (FORBIDDEN, saying until when) and every request with its tokens is refused.
    /// What it wrote stays. An admin cannot suspend their own account.
    async fn suspend_user(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Whom, until when, and why.")] input: SuspendUserInput,
    ) -> async_graphql::Result<SuspendUserPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("userId", &input.user_id)?;
        let user = suspension::suspend(services, actor, id, input.until, &input.reason).await?;
        Ok(SuspendUserPayload { user: user.into() })
    }

    /// Lifts an account's suspension (ADMIN only; written to the moderation log). The
    /// account may log in again; the sessions that ended stay ended.
    async fn unsuspend_user(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The account.")] user_id: ID,
    ) -> async_graphql::Result<UnsuspendUserPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("userId", &user_id)?;
        let user = suspension::unsuspend(services, actor, id).await?;
        Ok(UnsuspendUserPayload { user: user.into() })
    }

    /// Ends every session of another account (ADMIN only): its refresh tokens stop working,
    /// its access tokens are refused on their next request, and its open sockets close.
    async fn end_sessions_of(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The account.")] user_id: ID,
    ) -> async_graphql::Result<EndSessionsOfPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("userId", &user_id)?;
        let ended = suspension::end_sessions_of(services, actor, id).await?;
        Ok(EndSessionsOfPayload {
            ended: i32::try_from(ended).unwrap_or(i32::MAX),
        })
    }
}
