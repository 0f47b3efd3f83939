//! Login throttling kept in the database, so every instance sees the same counters.
//! A key (`ip:…` or `account:…`) that fails `max` times inside the window is locked out for
//! the lock-out period; while locked, even a correct password is refused.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QuerySelect,
};

use crate::entities::throttle_bucket::{self, Entity as Bucket};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_failures: i32,
    pub window: Duration,
    pub lockout: Duration,
}

/// Refuses with `RATE_LIMITED` when any of `keys` is locked at `now`.
pub async fn check<C: ConnectionTrait>(
    conn: &C,
    keys: &[String],
    now: DateTime<Utc>,
) -> AppResult<()> {
    let buckets = Bucket::find()
        .filter(throttle_bucket::Column::Key.is_in(keys.iter().cloned()))
        .all(conn)
        .await?;
    let retry = buckets
        .iter()
        .filter_map(|b| b.locked_until)
        .filter(|until| *until > now)
        .map(|until| (until - now).num_milliseconds())
        .max();
    match retry {
        Some(ms) => Err(AppError::RateLimited {
            retry_after_seconds: (ms + 999) / 1000,
        }),
        None => Ok(()),
    }
}

/// Counts one failure against `key`; call inside a write transaction.
pub async fn record_failure<C: ConnectionTrait>(
    conn: &C,
    key: &str,
    policy: Policy,
    now: DateTime<Utc>,
) -> AppResult<()> {
    // Make sure the row exists, then lock it, so concurrent failures on several instances
    // all count.
    Bucket::insert(throttle_bucket::ActiveModel {
        key: Set(key.to_string()),
        failures: Set(0),
        window_started_at: Set(now),
        locked_until: Set(None),
    })
    .on_conflict_do_nothing_on([throttle_bucket::Column::Key])
    .exec_without_returning(conn)
    .await?;
    let Some(bucket) = Bucket::find_by_id(key.to_string())
        .lock_exclusive()
        .one(conn)
        .await?
    else {
        return Err(AppError::internal(anyhow::anyhow!(
            "throttle bucket vanished"
        )));
    };
    let (mut failures, mut window_start) = (bucket.failures, bucket.window_started_at);
    if window_start + policy.window < now {
        failures = 0;
        window_start = now;
    }
    failures += 1;
    let mut locked_until = bucket.locked_until.filter(|u| *u > now);
    if failures >= policy.max_failures {
        locked_until = Some(now + policy.lockout);
        failures = 0;
        window_start = now;
    }
    let mut active = bucket.into_active_model();
    active.failures = Set(failures);
    active.window_started_at = Set(window_start);
    active.locked_until = Set(locked_until);
    active.update(conn).await?;
    Ok(())
}

/// Forgets the failures of `key` (after a successful login).
pub async fn clear<C: ConnectionTrait>(conn: &C, key: &str) -> AppResult<()> {
    Bucket::delete_by_id(key.to_string()).exec(conn).await?;
    Ok(())
}
