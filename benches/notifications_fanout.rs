//! Benchmark: one event to 10,000 followers. An official publishes a response on a
//! suggestion with 10,000 followers, over real HTTP against a running Convene with its
//! background jobs on and mail going to a local SMTP sink. Reports:
//!
//! - the publishing mutation's latency, next to the same mutation on a suggestion with one
//!   follower (the fan-out runs in the worker, so the two should match);
//! - the time until all 10,000 in-app notifications exist (polled by count);
//! - the time until the immediate mails have reached the SMTP sink (every follower has
//!   `mySuggestions = IMMEDIATE` and a verified address). The bench waits at most
//!   `CONVENE_BENCH_MAIL_TIMEOUT_SECS` (default 120) and reports how many arrived, so a
//!   build without immediate notification mail reports 0 rather than hanging.
//!
//! Run: `cargo bench --bench notifications_fanout`
//!
//! - `CONVENE_BENCH_PG_URL=postgres://…/postgres`: run on PostgreSQL (the bench recreates
//!   the database `convene_bench_fanout` there) instead of a SQLite file.
//! - `CONVENE_BENCH_FOLLOWERS` (default 10000): followers of the big suggestion.
//! - `CONVENE_BENCH_BINARY=/path/to/convene`: measure that build instead of this one's.
//!
//! Followers, their follows, preferences and verified addresses are written with bulk SQL
//! (they are set-up, not measured); everything measured goes through the API and the worker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../tests/api/smtp_server.rs"]
#[allow(dead_code)]
mod smtp_server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use convene::entities::notification_preference::{self, EmailPreference};
use convene::entities::{notification, suggestion, suggestion_follow, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
};
use serde_json::json;
use uuid::Uuid;

use common::{account, fresh_database, gql, number, spawn_convene, Profile};
use smtp_server::SmtpServer;

const RESPOND: &str =
    "mutation($i: PublishResponseInput!) { publishResponse(input: $i) { response { id } } }";
/// Rows per bulk INSERT in the set-up.
const CHUNK: usize = 1_000;
/// Responses timed on the one-follower suggestion (the median is reported).
const SMALL_ROUNDS: usize = 5;

struct Options {
    followers: usize,
    mail_timeout: Duration,
    pg_url: Option<String>,
    binary: PathBuf,
}

fn options() -> anyhow::Result<Options> {
    Ok(Options {
        followers: number("CONVENE_BENCH_FOLLOWERS", 10_000)?.max(1),
        mail_timeout: Duration::from_secs(
            number("CONVENE_BENCH_MAIL_TIMEOUT_SECS", 120)?.try_into()?,
        ),
        pg_url: std::env::var("CONVENE_BENCH_PG_URL")
            .ok()
            .filter(|u| !u.trim().is_empty()),
        binary: std::env::var_os("CONVENE_BENCH_BINARY")
            .filter(|b| !b.is_empty())
            .map_or_else(
                || PathBuf::from(env!("CARGO_BIN_EXE_convene")),
                PathBuf::from,
            ),
    })
}

/// `n` verified accounts following `suggestion`, each wanting mail about it at once.
async fn followers(
    db: &DatabaseConnection,
    suggestion_id: Uuid,
    prefix: &str,
    n: usize,
) -> anyhow::Result<()> {
    let at = Utc::now();
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    for (c, chunk) in ids.chunks(CHUNK).enumerate() {
        let users = chunk.iter().enumerate().map(|(i, id)| {
            let email = format!("{prefix}{}@bench.example", c * CHUNK + i);
            user::ActiveModel {
                id: Set(*id),
                email_normalized: Set(email.clone()),
                email: Set(email),
                // Never logged in: any text will do.
                password_hash: Set("$argon2id$bench".into()),
                display_name: Set(format!("Follower {}", c * CHUNK + i)),
                bio: Set(String::new()),
                organisation: Set(String::new()),
                sector: Set(user::Sector::Individual),
                role: Set(user::Role::Member),
                email_verified_at: Set(Some(at)),
                created_at: Set(at),
                updated_at: Set(at),
                suspended_until: Set(None),
            }
        });
        user::Entity::insert_many(users)
            .exec_without_returning(db)
            .await?;
        let follows = chunk.iter().map(|id| suggestion_follow::ActiveModel {
            suggestion_id: Set(suggestion_id),
            user_id: Set(*id),
            created_at: Set(at),
        });
        suggestion_follow::Entity::insert_many(follows)
            .exec_without_returning(db)
            .await?;
        let prefs = chunk.iter().map(|id| notification_preference::ActiveModel {
            user_id: Set(*id),
            my_suggestions: Set(EmailPreference::Immediate),
            followed_commitments: Set(EmailPreference::DailyDigest),
            discussions: Set(EmailPreference::DailyDigest),
            meetups: Set(EmailPreference::Immediate),
            moderation: Set(EmailPreference::DailyDigest),
            digest_hour: Set(None),
            time_zone: Set("Europe/London".into()),
            last_digest_on: Set(None),
            updated_at: Set(at),
        });
        notification_preference::Entity::insert_many(prefs)
            .exec_without_returning(db)
            .await?;
    }
    suggestion::Entity::update_many()
        .col_expr(
            suggestion::Column::FollowerCount,
            sea_orm::sea_query::ExprTrait::add(
                Expr::col(suggestion::Column::FollowerCount),
                i32::try_from(n)?,
            ),
        )
        .filter(suggestion::Column::Id.eq(suggestion_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The notifications written about `subject`.
async fn notifications_of(db: &DatabaseConnection, subject: Uuid) -> anyhow::Result<i64> {
    Ok(i64::try_from(
        notification::Entity::find()
            .filter(notification::Column::SubjectId.eq(subject))
            .count(db)
            .await?,
    )?)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Publishes a response on `suggestion` and returns the mutation's latency.
async fn respond(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    suggestion: &str,
    body: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    gql(
        http,
        base,
        Some(token),
        RESPOND,
        json!({ "i": { "suggestionId": suggestion, "body": body } }),
    )
    .await?;
    Ok(started.elapsed())
}

/// Polls until `subject` has at least `want` notifications (or `timeout` passes); returns
/// the time taken and the last count.
async fn until_count(
    db: &DatabaseConnection,
    subject: Uuid,
    want: i64,
    timeout: Duration,
) -> anyhow::Result<(Duration, i64)> {
    let started = Instant::now();
    loop {
        let n = notifications_of(db, subject).await?;
        if n >= want || started.elapsed() > timeout {
            return Ok((started.elapsed(), n));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(o: Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (url, backend) =
        fresh_database(o.pg_url.as_deref(), "convene_bench_fanout", dir.path()).await?;
    let db = convene::db::connect_url(&url, 2).await?;
    let sink = SmtpServer::start().await;
    let server = spawn_convene(
        &o.binary,
        &url,
        &[
            ("CONVENE__MAIL__TRANSPORT", "smtp".into()),
            ("CONVENE__MAIL__SMTP__HOST", "127.0.0.1".into()),
            ("CONVENE__MAIL__SMTP__PORT", sink.port().to_string()),
            ("CONVENE__MAIL__SMTP__TLS", "none".into()),
            ("CONVENE__JOBS__ENABLED", "true".into()),
            ("CONVENE__JOBS__POLL_INTERVAL_MS", "50".into()),
            // The official is a new account posting two suggestions at once.
            ("CONVENE__LIMITS__SUGGESTIONS_PER_MINUTE", "1000".into()),
            ("CONVENE__LIMITS__SUGGESTIONS_PER_HOUR", "1000".into()),
            ("RUST_LOG", "error".into()),
        ],
    )?;
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("Convene did not start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let token = account(
        &http,
        &server.base,
        &db,
        "official@bench.example",
        user::Role::Official,
        Profile("Olu Official", "Cabinet Office", "PUBLIC"),
    )
    .await?;
    let d = gql(&http, &server.base, Some(&token), "mutation($i: CreateCommitmentInput!) { createCommitment(input: $i) { commitment { id } } }",
        json!({"i": {"reference": "UK0001", "title": "Notify data users", "description": "About notifications.", "actionPlan": "Bench plan", "leadInstitution": "Cabinet Office", "status": "LIMITED"}})).await?;
    let commitment = d["createCommitment"]["commitment"]["id"]
        .as_str()
        .context("commitment")?
        .to_string();
    let mut suggestions = Vec::new();
    for title in ["Publish the register weekly", "Publish spending monthly"] {
        let d = gql(&http, &server.base, Some(&token), "mutation($i: CreateSuggestionInput!) { createSuggestion(input: $i) { suggestion { id } } }",
            json!({"i": {"commitmentId": commitment, "title": title, "body": "As CSV, please."}})).await?;
        suggestions.push(
            d["createSuggestion"]["suggestion"]["id"]
                .as_str()
                .context("suggestion")?
                .to_string(),
        );
    }
    let (small, big) = (suggestions[0].clone(), suggestions[1].clone());
    let setup = Instant::now();
    followers(&db, small.parse()?, "one", 1).await?;
    followers(&db, big.parse()?, "many", o.followers).await?;
    println!(
        "{backend}: {} followers (and one for the small suggestion) written in {:.1} s",
        o.followers,
        setup.elapsed().as_secs_f64()
    );
    // Let the set-up's own mail (the official's verification) go first.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The one-follower suggestion: the mutation's latency, a few times.
    let mut small_times = Vec::new();
    for round in 0..SMALL_ROUNDS {
        small_times.push(
            respond(
                &http,
                &server.base,
                &token,
                &small,
                &format!("Thank you ({round})."),
            )
            .await?,
        );
    }
    small_times.sort();
    until_count(
        &db,
        small.parse()?,
        i64::try_from(SMALL_ROUNDS)?,
        Duration::from_secs(30),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mails_before = sink.received_count();

    // The big one: latency, then the fan-out.
    let want = i64::try_from(o.followers)?;
    let published = Instant::now();
    let big_time = respond(
        &http,
        &server.base,
        &token,
        &big,
        "We will publish it weekly.",
    )
    .await?;
    let (_, notified) = until_count(&db, big.parse()?, want, Duration::from_secs(300)).await?;
    let notifications_at = published.elapsed();
    let mail_started = Instant::now();
    let mut mailed = 0usize;
    while mail_started.elapsed() < o.mail_timeout {
        mailed = sink
            .received_count()
            .saturating_sub(mails_before)
            .min(o.followers);
        if mailed >= o.followers {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mails_at = published.elapsed();

    println!(
        "publishResponse latency: {} with 1 follower (median of {SMALL_ROUNDS}; min {}, max {}); {} with {} followers",
        ms(small_times[SMALL_ROUNDS / 2]),
        ms(small_times[0]),
        ms(small_times[SMALL_ROUNDS - 1]),
        ms(big_time),
        o.followers
    );
    println!(
        "in-app notifications: {notified} of {} exist {:.2} s after publishing",
        o.followers,
        notifications_at.as_secs_f64()
    );
    if mailed >= o.followers {
        println!(
            "immediate mails: all {mailed} reached the SMTP sink {:.2} s after publishing",
            mails_at.as_secs_f64()
        );
    } else {
        println!(
            "immediate mails: {mailed} of {} reached the SMTP sink within {:.2} s of publishing (gave up waiting)",
            o.followers,
            mails_at.as_secs_f64()
        );
    }
    drop(server);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let o = options()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(o))
}
