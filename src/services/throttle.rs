//! Attempt counters kept in the database, so every instance sees the same ones: password
//! guesses per (account, address) pair, per address and per account, and sign-ups and mail
//! requests per address. An attempt is counted before the work it asks for is done, so
//! parallel requests cannot all slip in under the limit.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
};
use sha2::{Digest, Sha256};

use crate::config::LimitSettings;
use crate::db::{begin_write, now};
use crate::entities::throttle_bucket::{self, Entity as Bucket};
use crate::error::{AppError, AppResult};

/// How many attempts a key allows within a window, and how long it stays shut once they are
/// used up: until the window ends, or for `lockout` if that is later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_attempts: i32,
    pub window: Duration,
    pub lockout: Duration,
}

/// One counter and its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub key: String,
    pub policy: Policy,
}

/// A key of bounded length, whatever the client sent: the scope names the counter, the
/// client-supplied parts (addresses, emails) are SHA-256 hashed.
fn key(scope: &str, parts: &[&str]) -> String {
    let mut key = scope.to_string();
    for part in parts {
        key.push(':');
        key.push_str(&hex::encode(Sha256::digest(part.as_bytes())));
    }
    key
}

/// The address a counter is kept for. An IPv6 client usually holds a whole /64, so that is
/// what is counted; otherwise rotating through it would mean a fresh limit per request.
/// Every per-address limit (throttles, the subscription socket's cap) keys on this.
pub fn address(ip: Option<&str>) -> String {
    match ip.map(|s| s.parse::<IpAddr>().map(|a| a.to_canonical())) {
        Some(Ok(IpAddr::V6(v6))) => {
            let network = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(network))
        }
        Some(Ok(v4)) => v4.to_string(),
        Some(Err(_)) => ip.unwrap_or_default().to_string(),
        None => "unknown".to_string(),
    }
}

const PAIR: &str = "login-pair";

/// The three counters a password guess goes against.
pub struct LoginLimits {
    /// This account from this address: the lock-out a guesser meets, without locking the
    /// owner out from elsewhere.
    pub pair: Limit,
    /// This address, whatever the account.
    pub address: Limit,
    /// This account from anywhere: a much higher bar against guessing spread over many
    /// addresses.
    pub account: Limit,
}

impl LoginLimits {
    pub fn new(settings: &LimitSettings, email_normalized: &str, ip: Option<&str>) -> Self {
        let address = address(ip);
        let policy = |max_attempts| Policy {
            max_attempts,
            window: Duration::seconds(settings.login_window_secs),
            lockout: Duration::seconds(settings.login_lockout_secs),
        };
        LoginLimits {
            pair: Limit {
                key: key(PAIR, &[email_normalized, &address]),
                policy: policy(settings.login_pair_max_failures),
            },
            address: Limit {
                key: key("login-address", &[&address]),
                policy: policy(settings.login_ip_max_failures),
            },
            account: Limit {
                key: account_key(email_normalized),
                policy: policy(settings.login_account_max_failures),
            },
        }
    }

    pub fn all(&self) -> [&Limit; 3] {
        [&self.pair, &self.address, &self.account]
    }
}

fn account_key(email_normalized: &str) -> String {
    key("login-account", &[email_normalized])
}

fn per_hour(scope: &str, max_attempts: i32, ip: Option<&str>) -> Limit {
    Limit {
        key: key(scope, &[&address(ip)]),
        policy: Policy {
            max_attempts,
            window: Duration::hours(1),
            lockout: Duration::zero(),
        },
    }
}

/// Sign-ups from one address per hour.
pub fn sign_up(settings: &LimitSettings, ip: Option<&str>) -> Limit {
    per_hour("signup-address", settings.signup_per_hour_per_address, ip)
}

/// Requests that send mail (password resets, verification links) from one address per hour.
pub fn mail_requests(settings: &LimitSettings, ip: Option<&str>) -> Limit {
    per_hour(
        "mail-address",
        settings.mail_requests_per_hour_per_address,
        ip,
    )
}

/// A counter as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Count {
    attempts: i32,
    window_started_at: DateTime<Utc>,
    locked_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Counted(Count),
    Refused { next: Count, until: DateTime<Utc> },
}

/// Takes one attempt from a counter, or says until when it is shut.
fn take(count: Count, policy: Policy, now: DateTime<Utc>) -> Decision {
    if let Some(until) = count.locked_until.filter(|u| *u > now) {
        return Decision::Refused { next: count, until };
    }
    let mut count = Count {
        locked_until: None,
        ..count
    };
    if count.window_started_at + policy.window <= now {
        count.attempts = 0;
        count.window_started_at = now;
    }
    if count.attempts >= policy.max_attempts {
        let until = (count.window_started_at + policy.window).max(now + policy.lockout);
        // The next window starts when the lock ends, with nothing used.
        let next = Count {
            attempts: 0,
            window_started_at: until,
            locked_until: Some(until),
        };
        return Decision::Refused { next, until };
    }
    count.attempts += 1;
    Decision::Counted(count)
}

fn retry_after_seconds(until: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    ((until - now).num_milliseconds() + 999)
        .div_euclid(1000)
        .max(1)
}

/// Counts one attempt against every limit, or none if any of them is used up: then the
/// answer is `RATE_LIMITED` with the longest wait. Runs in its own short transaction,
/// committed before the caller does the work, with each row locked in key order (so
/// concurrent reservations queue instead of deadlocking).
pub async fn reserve(db: &DatabaseConnection, limits: &[&Limit]) -> AppResult<()> {
    let tx = begin_write(db).await?;
    let result = reserve_in(&tx, limits).await;
    if matches!(result, Ok(()) | Err(AppError::RateLimited { .. })) {
        // A refusal keeps the locks it set.
        tx.commit().await?;
    }
    result
}

/// `reserve` inside the caller's transaction: the attempt counts only if that transaction
/// commits (a write refused for another reason, or by a limit, costs nothing).
pub async fn reserve_in<C: ConnectionTrait>(conn: &C, limits: &[&Limit]) -> AppResult<()> {
    let mut limits = limits.to_vec();
    limits.sort_by(|a, b| a.key.cmp(&b.key));
    limits.dedup_by(|a, b| a.key == b.key);
    let at = now();
    let mut counted = Vec::new();
    let mut refused: Option<DateTime<Utc>> = None;
    for limit in limits {
        Bucket::insert(throttle_bucket::ActiveModel {
            key: Set(limit.key.clone()),
            failures: Set(0),
            window_started_at: Set(at),
            locked_until: Set(None),
        })
        .on_conflict_do_nothing_on([throttle_bucket::Column::Key])
        .exec_without_returning(conn)
        .await?;
        let bucket = Bucket::find_by_id(limit.key.clone())
            .lock_exclusive()
            .one(conn)
            .await?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("throttle bucket vanished")))?;
        let count = Count {
            attempts: bucket.failures,
            window_started_at: bucket.window_started_at,
            locked_until: bucket.locked_until,
        };
        match take(count, limit.policy, at) {
            Decision::Counted(next) => counted.push((bucket, next)),
            Decision::Refused { next, until } => {
                if next != count {
                    store(conn, bucket, next).await?;
                }
                refused = Some(refused.map_or(until, |u| u.max(until)));
            }
        }
    }
    if let Some(until) = refused {
        // Count nothing against the other limits.
        return Err(AppError::RateLimited {
            retry_after_seconds: retry_after_seconds(until, at),
        });
    }
    for (bucket, next) in counted {
        store(conn, bucket, next).await?;
    }
    Ok(())
}

/// A budget of `max_attempts` per `window` for one account and one kind of action (posts,
/// threads, suggestions), shut only until the window ends.
pub fn per_account(scope: &str, account: uuid::Uuid, max_attempts: i32, window: Duration) -> Limit {
    Limit {
        key: format!("{scope}:{account}"),
        policy: Policy {
            max_attempts,
            window,
            lockout: Duration::zero(),
        },
    }
}

async fn store<C: ConnectionTrait>(
    conn: &C,
    bucket: throttle_bucket::Model,
    next: Count,
) -> AppResult<()> {
    let mut active = bucket.into_active_model();
    active.failures = Set(next.attempts);
    active.window_started_at = Set(next.window_started_at);
    active.locked_until = Set(next.locked_until);
    active.update(conn).await?;
    Ok(())
}

/// After a correct password: forgets the pair's guesses, and gives back the attempt this
/// login reserved on the address and the account (earlier failures there still count).
/// Rows are touched in key order, as `reserve` does.
pub async fn password_accepted<C: ConnectionTrait>(
    conn: &C,
    limits: &LoginLimits,
) -> AppResult<()> {
    // Imported here only: its blanket `max` would shadow `Ord::max` in the module.
    use sea_orm::sea_query::ExprTrait as _;
    let mut rows = limits.all().map(|l| l.key.as_str());
    rows.sort_unstable();
    for key in rows {
        if key == limits.pair.key {
            Bucket::delete_by_id(key.to_string()).exec(conn).await?;
        } else {
            Bucket::update_many()
                .col_expr(
                    throttle_bucket::Column::Failures,
                    Expr::col(throttle_bucket::Column::Failures).sub(1),
                )
                .filter(throttle_bucket::Column::Key.eq(key))
                .filter(throttle_bucket::Column::Failures.gt(0))
                .exec(conn)
                .await?;
        }
    }
    Ok(())
}

/// Forgets every password guess against an account (its owner has just proved they hold
/// the mailbox).
pub async fn clear_account<C: ConnectionTrait>(conn: &C, email_normalized: &str) -> AppResult<()> {
    Bucket::delete_by_id(account_key(email_normalized))
        .exec(conn)
        .await?;
    // Hex digests and a fixed scope: nothing in the pattern is a LIKE wildcard.
    Bucket::delete_many()
        .filter(
            throttle_bucket::Column::Key
                .starts_with(format!("{}:", key(PAIR, &[email_normalized]))),
        )
        .exec(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_000_000 + secs)
    }

    const LOGIN: Policy = Policy {
        max_attempts: 3,
        window: Duration::seconds(900),
        lockout: Duration::seconds(600),
    };

    fn fresh(at: DateTime<Utc>) -> Count {
        Count {
            attempts: 0,
            window_started_at: at,
            locked_until: None,
        }
    }

    fn counted(d: Decision) -> Count {
        match d {
            Decision::Counted(c) => c,
            other => panic!("refused: {other:?}"),
        }
    }

    #[test]
    fn attempts_count_up_to_the_limit_then_lock() {
        let mut c = fresh(t(0));
        for i in 1..=3 {
            c = counted(take(c, LOGIN, t(i)));
            assert_eq!(c.attempts, i as i32);
        }
        let Decision::Refused { next, until } = take(c, LOGIN, t(10)) else {
            panic!("the fourth attempt was counted");
        };
        // The window ends at 900; the lock-out from now (610) would end earlier.
        assert_eq!(until, t(900));
        assert_eq!(next.locked_until, Some(t(900)));
        assert_eq!(take(next, LOGIN, t(899)), Decision::Refused { next, until });
        // After the lock, a fresh window.
        assert_eq!(counted(take(next, LOGIN, t(900))).attempts, 1);
    }

    #[test]
    fn a_lock_out_longer_than_the_window_holds_for_its_length() {
        let policy = Policy {
            lockout: Duration::seconds(3000),
            ..LOGIN
        };
        let c = Count {
            attempts: 3,
            ..fresh(t(0))
        };
        let Decision::Refused { until, .. } = take(c, policy, t(100)) else {
            panic!("counted");
        };
        assert_eq!(until, t(3100));
    }

    #[test]
    fn an_old_window_starts_again() {
        let c = Count {
            attempts: 3,
            ..fresh(t(0))
        };
        let c = counted(take(c, LOGIN, t(900)));
        assert_eq!((c.attempts, c.window_started_at), (1, t(900)));
    }

    #[test]
    fn an_hourly_limit_reopens_when_its_hour_ends() {
        let policy = Policy {
            max_attempts: 2,
            window: Duration::hours(1),
            lockout: Duration::zero(),
        };
        let c = Count {
            attempts: 2,
            ..fresh(t(0))
        };
        let Decision::Refused { until, .. } = take(c, policy, t(1000)) else {
            panic!("counted");
        };
        assert_eq!(until, t(3600));
        assert_eq!(retry_after_seconds(until, t(1000)), 2600);
    }

    #[test]
    fn retry_after_is_rounded_up_and_never_zero() {
        let at = t(0);
        assert_eq!(retry_after_seconds(at + Duration::milliseconds(1), at), 1);
        assert_eq!(
            retry_after_seconds(at + Duration::milliseconds(1001), at),
            2
        );
        assert_eq!(retry_after_seconds(at, at), 1);
    }

    #[test]
    fn keys_stay_short_whatever_the_input() {
        let settings = LimitSettings {
            login_pair_max_failures: 5,
            login_account_max_failures: 100,
            login_ip_max_failures: 20,
            login_window_secs: 900,
            login_lockout_secs: 900,
            signup_per_hour_per_address: 20,
            mail_requests_per_hour_per_address: 20,
            posts_per_minute: 10,
            posts_per_hour: 120,
            threads_per_minute: 2,
            threads_per_hour: 20,
            suggestions_per_minute: 3,
            suggestions_per_hour: 20,
            edits_per_minute: 10,
            edits_per_hour: 60,
            reports_per_hour: 20,
            max_revisions: 50,
            new_account_factor: 0.25,
            new_account_secs: 86_400,
        };
        let huge = "x".repeat(100_000);
        let login = LoginLimits::new(&settings, &huge, Some(&huge));
        let mut keys: Vec<_> = login.all().iter().map(|l| l.key.clone()).collect();
        keys.push(sign_up(&settings, Some(&huge)).key);
        keys.push(mail_requests(&settings, Some(&huge)).key);
        keys.push(mail_requests(&settings, None).key);
        for k in &keys {
            // The column holds 400 characters.
            assert!(k.len() <= 160, "{k}");
        }
        let mut distinct = keys.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        assert_eq!(
            address(Some("2001:db8:1:2:aaaa::1")),
            address(Some("2001:db8:1:2:bbbb::7"))
        );
        assert_ne!(
            address(Some("2001:db8:1:2::1")),
            address(Some("2001:db8:1:3::1"))
        );
        assert_eq!(address(Some("203.0.113.9")), "203.0.113.9");
        assert_eq!(address(Some("::ffff:203.0.113.9")), "203.0.113.9");
    }
}
