//! Per-account limits on writing posts, threads, suggestions, edits and reports, per minute
//! and per hour,
//! kept in the database so that every instance counts against the same budget; tighter for
//! accounts younger than a day. Beyond them: `RATE_LIMITED` with `retryAfterSeconds`.
//!
//! The counters are `throttle_buckets` rows (one per account, action and window), taken
//! under a row lock inside the writer's own transaction: concurrent writes by one account
//! queue on the row instead of all passing a count, and a write that fails for any other
//! reason gives its attempt back by rolling back.

use chrono::Duration;
use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect};

use crate::auth::viewer::Actor;
use crate::config::LimitSettings;
use crate::db::now;
use crate::entities::user;
use crate::error::{AppError, AppResult};
use crate::services::throttle::{self, Limit};
use crate::services::Ctx;

/// The kinds of writing that are limited, each with its own budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Post,
    Thread,
    Suggestion,
    /// Editing a post or a suggestion: each edit writes a revision and may notify.
    Edit,
    /// Filing a report: each one reaches the moderators.
    Report,
}

impl Action {
    fn scope(self) -> &'static str {
        match self {
            Action::Post => "write-post",
            Action::Thread => "write-thread",
            Action::Suggestion => "write-suggestion",
            Action::Edit => "write-edit",
            Action::Report => "write-report",
        }
    }

    /// (per minute, per hour) as configured.
    fn budgets(self, s: &LimitSettings) -> (i32, i32) {
        match self {
            Action::Post => (s.posts_per_minute, s.posts_per_hour),
            Action::Thread => (s.threads_per_minute, s.threads_per_hour),
            Action::Suggestion => (s.suggestions_per_minute, s.suggestions_per_hour),
            Action::Edit => (s.edits_per_minute, s.edits_per_hour),
            // Reports have an hourly budget only: the minute's is the hour's.
            Action::Report => (s.reports_per_hour, s.reports_per_hour),
        }
    }
}

/// A new account's share of a budget: rounded down, never below one.
fn scaled(budget: i32, factor: f64) -> i32 {
    let factor = factor.clamp(0.0, 1.0);
    // Budgets are small integers: the product is exact enough, and fits back in an i32.
    #[allow(clippy::cast_possible_truncation)]
    let scaled = (f64::from(budget) * factor).floor() as i32;
    scaled.max(1)
}

/// The two limits (per minute, per hour) that one `action` by `account` goes against.
pub fn limits_for(
    settings: &LimitSettings,
    account: uuid::Uuid,
    new_account: bool,
    action: Action,
) -> [Limit; 2] {
    let (mut minute, mut hour) = action.budgets(settings);
    if new_account {
        minute = scaled(minute, settings.new_account_factor);
        hour = scaled(hour, settings.new_account_factor);
    }
    [
        throttle::per_account(
            &format!("{}-minute", action.scope()),
            account,
            minute,
            Duration::minutes(1),
        ),
        throttle::per_account(
            &format!("{}-hour", action.scope()),
            account,
            hour,
            Duration::hours(1),
        ),
    ]
}

/// Counts one `action` by `actor` inside the caller's write transaction, or refuses it.
/// The count is part of the transaction: a write that fails for another reason is not
/// counted.
pub async fn check(
    ctx: &Ctx,
    conn: &impl ConnectionTrait,
    actor: &Actor,
    action: Action,
) -> AppResult<()> {
    let settings = &ctx.settings.limits;
    let created_at: Option<chrono::DateTime<chrono::Utc>> = user::Entity::find_by_id(actor.id)
        .select_only()
        .column(user::Column::CreatedAt)
        .into_tuple()
        .one(conn)
        .await?;
    let created_at = created_at.ok_or_else(|| {
        AppError::Unauthenticated("this account no longer exists; log in again".into())
    })?;
    let new_account = created_at > now() - Duration::seconds(settings.new_account_secs);
    let [minute, hour] = limits_for(settings, actor.id, new_account, action);
    throttle::reserve_in(conn, &[&minute, &hour]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_accounts_get_a_share_of_each_budget_and_never_nothing() {
        assert_eq!(scaled(20, 0.25), 5);
        assert_eq!(scaled(3, 0.25), 1);
        assert_eq!(scaled(1, 0.0), 1);
        assert_eq!(scaled(10, 1.5), 10);
    }
}
