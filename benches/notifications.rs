//! Benchmarks of notification delivery, in parts chosen by name:
//! `cargo bench --bench notifications -- digest` (every part when none is named).
//!
//! - `digest`: the daily digest run. Accounts are bulk-inserted straight into the database
//!   (each with one old, already-mailed notification), and 1,000 of them get three
//!   notifications waiting for the digest (two about suggestions, one about their account).
//!   Then `jobs::digest::run_once` runs at 07:59 (nobody due yet), at 08:00 (everyone due:
//!   1,000 digests queued) and at 08:05 (nothing left), each timed, with its SQL statements
//!   counted through the connection's metric callback; finally the outbox worker renders
//!   and "sends" the 1,000 mails to the memory transport. It runs once with 50,000 accounts
//!   and once with 5,000: the statements depend on the people due, not on the accounts.
//!
//! Settings (environment):
//! - `CONVENE_BENCH_PG_URL=postgres://…/postgres`: run on PostgreSQL (each size recreates
//!   the database `convene_bench_notify` there) instead of a SQLite file in a temporary
//!   directory.
//! - `CONVENE_BENCH_DIGEST_ACCOUNTS` (default `50000,5000`): account counts, one run each.
//! - `CONVENE_BENCH_DIGEST_PENDING` (default 1000): accounts with something pending.
//! - `CONVENE_BENCH_VERBOSE=1`: list the statements of the 07:59 and 08:00 runs, with their times.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{DateTime, TimeZone, Utc};
use convene::config::Settings;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait};
use secrecy::SecretString;
use uuid::Uuid;

use common::number;

const SIGNING_KEY: &str = "bench-signing-key-0123456789abcdef0123456789";
/// Rows per INSERT while loading.
const LOAD_CHUNK: usize = 1_000;
/// The parts, in the order they run.
const PARTS: &[&str] = &["digest"];

fn pg_url() -> Option<String> {
    std::env::var("CONVENE_BENCH_PG_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

fn settings() -> anyhow::Result<Settings> {
    let mut s = Settings::load_for(Path::new("config"), "test", false)?;
    s.auth.signing_key = SecretString::from(SIGNING_KEY);
    s.mail.transport = convene::config::MailTransportKind::Memory;
    Ok(s)
}

/// Inserts `n` verified accounts, `LOAD_CHUNK` per statement; returns their ids.
async fn insert_accounts(db: &DatabaseConnection, n: usize) -> anyhow::Result<Vec<Uuid>> {
    use convene::entities::user;
    let at = Utc::now();
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    for (c, chunk) in ids.chunks(LOAD_CHUNK).enumerate() {
        let rows = chunk.iter().enumerate().map(|(i, id)| {
            let k = c * LOAD_CHUNK + i;
            let email = format!("bench.user{k:06}@example.org");
            user::ActiveModel::from(user::Model {
                id: *id,
                email: email.clone(),
                email_normalized: email,
                password_hash: "not-a-hash".into(),
                display_name: format!("Bench User {k:06}"),
                bio: String::new(),
                organisation: String::new(),
                sector: user::Sector::Individual,
                role: user::Role::Member,
                email_verified_at: Some(at),
                created_at: at,
                updated_at: at,
                suspended_until: None,
            })
        });
        user::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await
            .context("inserting accounts")?;
    }
    Ok(ids)
}

fn main() -> anyhow::Result<()> {
    // Cargo passes `--bench`; anything else not starting with `-` names a part.
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for n in &named {
        if !PARTS.contains(&n.as_str()) {
            bail!("no part {n:?}; the parts are {PARTS:?}");
        }
    }
    let wanted = |p: &str| named.is_empty() || named.iter().any(|n| n == p);
    let runtime = tokio::runtime::Runtime::new()?;
    if wanted("digest") {
        runtime.block_on(digest::run())?;
    }
    Ok(())
}

mod digest {
    use super::*;
    use convene::entities::notification::{self, Kind, SubjectType};
    use convene::entities::{commitment, suggestion};
    use convene::jobs::digest::run_once;
    use convene::mail::{Mailer, MemoryTransport, Templates};
    use convene::outbox::OutboxWorker;

    const COMMITMENTS: usize = 20;
    const SUGGESTIONS: usize = 200;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 14, h, m, 0).unwrap()
    }

    /// Commitments and suggestions for the notifications to be about; returns the
    /// suggestions' ids.
    async fn insert_subjects(db: &DatabaseConnection, author: Uuid) -> anyhow::Result<Vec<Uuid>> {
        let now = Utc::now();
        let commitments: Vec<Uuid> = (0..COMMITMENTS).map(|_| Uuid::now_v7()).collect();
        commitment::Entity::insert_many(commitments.iter().enumerate().map(|(i, id)| {
            commitment::ActiveModel::from(commitment::Model {
                id: *id,
                reference: format!("BENCH{i:03}"),
                title: format!("Benchmark commitment {i}: publish procurement data"),
                description: String::new(),
                action_plan: "Bench plan".into(),
                lead_institution: "Bench office".into(),
                policy_area: "Open data".into(),
                status: commitment::Status::NotStarted,
                follower_count: 0,
                created_at: now,
                updated_at: now,
            })
        }))
        .exec_without_returning(db)
        .await?;
        let suggestions: Vec<Uuid> = (0..SUGGESTIONS).map(|_| Uuid::now_v7()).collect();
        suggestion::Entity::insert_many(suggestions.iter().enumerate().map(|(i, id)| {
            suggestion::ActiveModel::from(suggestion::Model {
                id: *id,
                commitment_id: commitments[i % COMMITMENTS],
                author_id: author,
                title: format!("Bench suggestion {i}"),
                body: "Body".into(),
                body_html: "<p>Body</p>".into(),
                status: suggestion::Status::Submitted,
                support_count: 0,
                follower_count: 0,
                trending_score: 0,
                awaiting_response: true,
                responded_at: None,
                duplicate_of_id: None,
                created_at: now,
                updated_at: now,
                in_reply_to_update_id: None,
                hidden: false,
            })
        }))
        .exec_without_returning(db)
        .await?;
        Ok(suggestions)
    }

    fn row(
        recipient: Uuid,
        kind: Kind,
        subject: (SubjectType, Uuid),
        text: String,
        created_at: DateTime<Utc>,
        pending: bool,
    ) -> notification::ActiveModel {
        let id = Uuid::now_v7();
        notification::ActiveModel::from(notification::Model {
            id,
            recipient_id: recipient,
            event_key: format!("bench:{id}"),
            kind,
            actor_id: None,
            subject_type: subject.0,
            subject_id: subject.1,
            text,
            created_at,
            read_at: None,
            digest_pending: pending,
        })
    }

    async fn insert_notifications(
        db: &DatabaseConnection,
        rows: Vec<notification::ActiveModel>,
    ) -> anyhow::Result<()> {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<_> = rows.by_ref().take(LOAD_CHUNK).collect();
            notification::Entity::insert_many(chunk)
                .exec_without_returning(db)
                .await?;
        }
        Ok(())
    }

    struct Measured {
        considered: usize,
        due: usize,
        queued: usize,
        millis: f64,
        statements: usize,
    }

    pub async fn run() -> anyhow::Result<()> {
        let sizes: Vec<usize> = std::env::var("CONVENE_BENCH_DIGEST_ACCOUNTS")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "50000,5000".into())
            .split(',')
            .map(|s| {
                s.trim()
                    .parse::<usize>()
                    .context("CONVENE_BENCH_DIGEST_ACCOUNTS")
            })
            .collect::<anyhow::Result<_>>()?;
        let pending = number("CONVENE_BENCH_DIGEST_PENDING", 1000)?;
        let verbose = std::env::var("CONVENE_BENCH_VERBOSE").is_ok_and(|v| v == "1");
        let dir = tempfile::tempdir()?;
        for accounts in sizes {
            size(dir.path(), accounts, pending.min(accounts), verbose).await?;
        }
        Ok(())
    }

    async fn size(
        dir: &Path,
        accounts: usize,
        pending: usize,
        verbose: bool,
    ) -> anyhow::Result<()> {
        let (url, backend) =
            common::fresh_database(pg_url().as_deref(), "convene_bench_notify", dir).await?;
        let mut db = convene::db::connect_url(&url, 5).await?;
        let statements = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        {
            let statements = statements.clone();
            let log = log.clone();
            db.set_metric_callback(move |info| {
                statements.fetch_add(1, Ordering::SeqCst);
                if verbose {
                    log.lock().unwrap().push(format!(
                        "{:>7.1} ms  {}",
                        info.elapsed.as_secs_f64() * 1000.0,
                        info.statement.sql.chars().take(90).collect::<String>()
                    ));
                }
            });
        }
        let loading = Instant::now();
        let ids = insert_accounts(&db, accounts).await?;
        let suggestions = insert_subjects(&db, ids[0]).await?;
        // Everyone has an old notification, mailed long ago: not a candidate.
        let old = ids
            .iter()
            .map(|id| {
                row(
                    *id,
                    Kind::RoleChanged,
                    (SubjectType::User, *id),
                    "Old news".into(),
                    at(0, 0) - chrono::Duration::days(30),
                    false,
                )
            })
            .collect();
        insert_notifications(&db, old).await?;
        // `pending` people, spread over the accounts, with three items each.
        let step = (accounts / pending.max(1)).max(1);
        let mut fresh = Vec::new();
        for (k, id) in ids.iter().step_by(step).take(pending).enumerate() {
            let s = suggestions[k % suggestions.len()];
            let t = suggestions[(k * 7 + 3) % suggestions.len()];
            fresh.push(row(
                *id,
                Kind::SuggestionCreated,
                (SubjectType::Suggestion, s),
                format!("New suggestion on BENCH: “Bench suggestion {k}”"),
                at(6, 0),
                true,
            ));
            fresh.push(row(
                *id,
                Kind::ResponsePublished,
                (SubjectType::Suggestion, t),
                format!("Official response to “Bench suggestion {k}”: now ACCEPTED"),
                at(6, 30),
                true,
            ));
            fresh.push(row(
                *id,
                Kind::RoleChanged,
                (SubjectType::User, *id),
                "Your role on Convene is now organiser".into(),
                at(7, 0),
                true,
            ));
        }
        insert_notifications(&db, fresh).await?;
        if backend == "PostgreSQL" {
            db.execute_unprepared("ANALYZE").await?;
        }
        let loaded = loading.elapsed();

        let settings = settings()?;
        let ctx = convene::startup::services(Arc::new(settings.clone()), db.clone())?;
        println!(
            "digest on {backend}: {accounts} accounts, {pending} with 3 pending items each (loaded in {:.1} s)",
            loaded.as_secs_f64()
        );
        for label in ["07:59", "08:00", "08:05"] {
            let now = match label {
                "07:59" => at(7, 59),
                "08:00" => at(8, 0),
                _ => at(8, 5),
            };
            statements.store(0, Ordering::SeqCst);
            log.lock().unwrap().clear();
            let start = Instant::now();
            let r = run_once(&db, &settings, &ctx.tokens, now).await?;
            let m = Measured {
                considered: r.considered,
                due: r.due,
                queued: r.queued,
                millis: start.elapsed().as_secs_f64() * 1000.0,
                statements: statements.load(Ordering::SeqCst),
            };
            println!(
                "  run at {label}: considered {:>5}, due {:>5}, queued {:>5}: {:>8.1} ms, {:>3} SQL statements",
                m.considered, m.due, m.queued, m.millis, m.statements
            );
            if verbose && label != "08:05" {
                for s in log.lock().unwrap().iter() {
                    println!("    {s}");
                }
            }
            if label == "08:00" && m.queued != pending {
                bail!("expected {pending} digests, queued {}", m.queued);
            }
        }
        // Rendering and handing the mails to the (memory) transport.
        let memory = MemoryTransport::default();
        let mailer = Mailer::new(
            Templates::load()?,
            Arc::new(memory.clone()),
            &settings.mail.from,
            &settings.public.base_url,
        );
        let worker = OutboxWorker::new(db.clone(), mailer, settings.jobs.clone());
        let start = Instant::now();
        while worker.run_once().await? > 0 {}
        let sent = memory
            .messages()
            .iter()
            .filter(|m| m.template == "digest")
            .count();
        println!(
            "  outbox worker: {sent} digests rendered and sent to the memory transport in {:.1} s",
            start.elapsed().as_secs_f64()
        );
        db.close().await?;
        Ok(())
    }
}
