//! Benchmark: one page of TOP suggestions through Convene's GraphQL API, against a bare axum
//! handler running the SQL that page needs, on PostgreSQL with 100,000 suggestions and
//! 1,000,000 supports.
//!
//! Run: `cargo bench --bench suggestions`
//!
//! - `CONVENE_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`): a
//!   PostgreSQL server where this role may create databases. The benchmark drops and recreates
//!   the database `convene_bench` there, and leaves it in place afterwards for inspection.
//! - `CONVENE_BENCH_SECONDS` (default 10): measured seconds per target, after a 2 s warm-up.
//! - `CONVENE_BENCH_REUSE=1`: keep an already loaded `convene_bench` instead of rebuilding it.
//!
//! Steps: load the data set; print the plans of the statements `services::suggestions::list`
//! runs for each ordering; start Convene and the bare handler on 127.0.0.1:0; drive each in
//! turn with 64 concurrent clients; print a Markdown summary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use convene::config::{MailTransportKind, Settings};
use convene::entities::{suggestion, user};
use convene::services::page::{Cursor, PageRequest};
use convene::services::suggestions::{self as service, Filter, Order};
use convene::Application;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::sea_query::{PostgresQueryBuilder, QueryBuilder};
use sea_orm::sqlx::{self, postgres::PgPool, AssertSqlSafe};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryTrait, Select, Statement, TransactionTrait, Value,
};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value as JsonValue};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DB_NAME: &str = "convene_bench";

const USERS: usize = 1_000;
const COMMITMENTS: usize = 100;
const PER_COMMITMENT: usize = 1_000;
const SUGGESTIONS: usize = COMMITMENTS * PER_COMMITMENT;
/// Supports per suggestion run from 0 to this; they come in pairs (r, MAX - r), so the mean
/// is exactly MAX / 2 and the total exactly SUGGESTIONS * MAX / 2.
const MAX_SUPPORTS: usize = 20;
/// Supporters of a suggestion are users start, start + STRIDE, start + 2 STRIDE, … (mod
/// USERS): distinct for up to USERS / gcd(STRIDE, USERS) = 1,000 of them, and never the
/// author, who sits at start + USERS / 2 (37 k ≠ 500 for k ≤ 20).
const STRIDE: usize = 37;
const AWAITING_SHARE: f64 = 0.9;
/// Suggestions per INSERT statement (their supports, about ten times as many rows, go in one
/// statement too).
const BATCH: usize = 10_000;

const CLIENTS: usize = 64;
const PAGE: u64 = 20;
/// The row a deep cursor points at, to show what paging far into a list costs.
const DEEP_ROW: u64 = 500;
const POOL: u32 = 20;
const WARMUP: Duration = Duration::from_secs(2);
const SIGNING_KEY: &str = "bench-signing-key-0123456789abcdef0123456789";
const QUERY: &str = "query($c: ID!) { suggestions(filter: {commitmentId: $c}, orderBy: TOP, first: 20) { nodes { title supportCount author { displayName } } } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = env_or("CONVENE_BENCH_DATABASE_URL", DEFAULT_ADMIN_URL);
    let seconds: u64 = env_or("CONVENE_BENCH_SECONDS", "10")
        .trim()
        .parse()
        .context("CONVENE_BENCH_SECONDS must be a whole number of seconds")?;
    let measure = Duration::from_secs(seconds.max(1));
    let reuse = std::env::var("CONVENE_BENCH_REUSE").is_ok_and(|v| v.trim() == "1");
    let url = with_database(&admin_url, DB_NAME);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    println!("== Convene suggestions benchmark ==");
    println!("database {DB_NAME} (from CONVENE_BENCH_DATABASE_URL), {cores} cores, {CLIENTS} clients, {seconds} s measured after {} s warm-up", WARMUP.as_secs());

    let (db, load_time) = prepare_database(&admin_url, &url, reuse).await?;
    let pool = db.get_postgres_connection_pool().clone();
    check_data(&pool).await?;
    let commitments: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM commitments ORDER BY reference")
            .fetch_all(&pool)
            .await?;
    if commitments.len() != COMMITMENTS {
        bail!(
            "expected {COMMITMENTS} commitments, found {}",
            commitments.len()
        );
    }

    let settings = bench_settings(&url)?;
    let ctx = convene::startup::services(std::sync::Arc::new(settings.clone()), db.clone())?;
    let plans = explain_all(&db, &ctx, commitments[0]).await?;

    // Convene, the real thing.
    let app = Application::build(settings)
        .await
        .context("starting Convene")?;
    let convene_addr = app.local_addr()?;
    let convene_stop = CancellationToken::new();
    let convene_task = tokio::spawn(app.run(convene_stop.clone()));
    // The baseline.
    let bare_stop = CancellationToken::new();
    let (bare_addr, bare_task) = start_bare(&url, bare_stop.clone()).await?;
    println!("\nConvene on http://{convene_addr}/graphql, bare handler on http://{bare_addr}/bare");

    let convene = drive(
        Target::Convene(format!("http://{convene_addr}/graphql")),
        &commitments,
        measure,
    )
    .await?;
    print_run("Convene GraphQL", &convene);
    let bare = drive(
        Target::Bare(format!("http://{bare_addr}/bare")),
        &commitments,
        measure,
    )
    .await?;
    print_run("bare axum + sqlx", &bare);

    convene_stop.cancel();
    bare_stop.cancel();
    match tokio::time::timeout(Duration::from_secs(15), convene_task).await {
        Ok(joined) => joined?.context("Convene stopped with an error")?,
        Err(_) => println!("warning: Convene did not stop within 15 s"),
    }
    match tokio::time::timeout(Duration::from_secs(15), bare_task).await {
        Ok(joined) => joined?.context("the bare server stopped with an error")?,
        Err(_) => println!("warning: the bare server did not stop within 15 s"),
    }

    print_summary(
        &Setup {
            cores,
            seconds,
            load_time,
        },
        &plans,
        &convene,
        &bare,
    );
    db.close().await?;
    println!(
        "\nThe database {DB_NAME} is left in place for inspection; the next run recreates it."
    );
    Ok(())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let prefix = match base.rfind('/') {
        Some(i) if i > base.find("//").map(|j| j + 1).unwrap_or(0) => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

fn bench_settings(url: &str) -> anyhow::Result<Settings> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut s = Settings::load_for(&dir, "test", false).context("loading config/test.toml")?;
    s.database.url = SecretString::from(url.to_string());
    s.database.pool_size = POOL;
    s.jobs.enabled = false;
    s.mail.transport = MailTransportKind::Memory;
    s.auth.signing_key = SecretString::from(SIGNING_KEY);
    s.server.address = "127.0.0.1:0".into();
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// Data

/// Recreates and loads the database (or reuses it when asked and it looks complete).
async fn prepare_database(
    admin_url: &str,
    url: &str,
    reuse: bool,
) -> anyhow::Result<(DatabaseConnection, Option<Duration>)> {
    if reuse {
        if let Ok(db) = convene::db::connect_url(url, 4).await {
            let found: Option<i64> = sqlx::query_scalar("SELECT count(*) FROM suggestions")
                .fetch_one(db.get_postgres_connection_pool())
                .await
                .ok();
            if found == Some(SUGGESTIONS as i64) {
                convene::db::migrate(&db).await?;
                println!("\nreusing the loaded database {DB_NAME} (CONVENE_BENCH_REUSE=1)");
                return Ok((db, None));
            }
            db.close().await?;
        }
    }
    let admin = convene::db::connect_url(admin_url, 1)
        .await
        .context("connecting to PostgreSQL (CONVENE_BENCH_DATABASE_URL)")?;
    admin
        .execute_unprepared(&format!(
            "DROP DATABASE IF EXISTS \"{DB_NAME}\" WITH (FORCE)"
        ))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{DB_NAME}\""))
        .await?;
    admin.close().await?;

    let db = convene::db::connect_url(url, 4).await?;
    convene::db::migrate(&db).await.context("migrating")?;
    println!("\n-- loading data --");
    let started = Instant::now();
    load_data(db.get_postgres_connection_pool()).await?;
    let loaded = started.elapsed();
    println!("data loaded in {:.1} s", loaded.as_secs_f64());
    let started = Instant::now();
    db.execute_unprepared("VACUUM ANALYZE").await?;
    println!(
        "VACUUM ANALYZE took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok((db, Some(loaded)))
}

async fn load_data(pool: &PgPool) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(20_261_127);
    let now = convene::db::now();
    let hash = convene::auth::password::hash_with_params("x", 8, 1, 1)
        .map_err(|e| anyhow!("hashing the shared password: {e:?}"))?;
    let mut tx = pool.begin().await?;

    let t = Instant::now();
    let user_ids: Vec<Uuid> = (0..USERS).map(|_| Uuid::now_v7()).collect();
    let emails: Vec<String> = (0..USERS)
        .map(|i| format!("bench.user{i:04}@example.org"))
        .collect();
    let names: Vec<String> = (0..USERS).map(|i| format!("Bench User {i:04}")).collect();
    sqlx::query(
        "INSERT INTO users (id, email, email_normalized, password_hash, display_name, bio, \
         organisation, sector, role, email_verified_at, created_at, updated_at) \
         SELECT t.id, t.email, t.email, $4, t.name, '', '', 'INDIVIDUAL', 'MEMBER', $5, $5, $5 \
         FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(id, email, name)",
    )
    .bind(&user_ids)
    .bind(&emails)
    .bind(&names)
    .bind(&hash)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("inserting users")?;

    let commitment_ids: Vec<Uuid> = (0..COMMITMENTS).map(|_| Uuid::now_v7()).collect();
    let references: Vec<String> = (0..COMMITMENTS).map(|i| format!("BENCH-{i:03}")).collect();
    let titles: Vec<String> = (0..COMMITMENTS)
        .map(|i| format!("Benchmark commitment {i:03}: publish procurement data openly"))
        .collect();
    sqlx::query(
        "INSERT INTO commitments (id, reference, title, description, action_plan, \
         lead_institution, policy_area, status, follower_count, created_at, updated_at) \
         SELECT t.id, t.reference, t.title, 'A commitment made up for the benchmark.', \
         'Benchmark action plan 2026', 'Benchmark institution', 'Open data', 'NOT_STARTED', 0, \
         $4, $4 FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(id, reference, title)",
    )
    .bind(&commitment_ids)
    .bind(&references)
    .bind(&titles)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("inserting commitments")?;
    println!(
        "{USERS} users and {COMMITMENTS} commitments in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    let (mut suggestion_time, mut support_time) = (Duration::ZERO, Duration::ZERO);
    let mut supports_total = 0usize;
    let mut pending: Option<usize> = None;
    for first in (0..SUGGESTIONS).step_by(BATCH) {
        let n = BATCH.min(SUGGESTIONS - first);
        let mut ids = Vec::with_capacity(n);
        let mut commitment = Vec::with_capacity(n);
        let mut author = Vec::with_capacity(n);
        let mut title = Vec::with_capacity(n);
        let mut body = Vec::with_capacity(n);
        let mut status = Vec::with_capacity(n);
        let mut count = Vec::with_capacity(n);
        let mut awaiting = Vec::with_capacity(n);
        let mut responded: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut s_suggestion = Vec::with_capacity(n * MAX_SUPPORTS / 2 + MAX_SUPPORTS);
        let mut s_user = Vec::with_capacity(n * MAX_SUPPORTS / 2 + MAX_SUPPORTS);
        let mut s_at: Vec<DateTime<Utc>> = Vec::with_capacity(n * MAX_SUPPORTS / 2 + MAX_SUPPORTS);
        for i in first..first + n {
            let id = Uuid::now_v7();
            let c = i % COMMITMENTS;
            let start = rng.random_range(0..USERS);
            let supports = match pending.take() {
                Some(r) => MAX_SUPPORTS - r,
                None => {
                    let r = rng.random_range(0..=MAX_SUPPORTS);
                    pending = Some(r);
                    r
                }
            };
            for k in 0..supports {
                s_suggestion.push(id);
                s_user.push(user_ids[(start + k * STRIDE) % USERS]);
                // All within the last six days, so every support counts towards TRENDING.
                s_at.push(now - chrono::Duration::seconds(rng.random_range(60..6 * 86_400)));
            }
            supports_total += supports;
            let waiting = rng.random_bool(AWAITING_SHARE);
            ids.push(id);
            commitment.push(commitment_ids[c]);
            author.push(user_ids[(start + USERS / 2) % USERS]);
            title.push(format!(
                "Suggestion {i:06} on {}: publish the contract register as CSV",
                references[c]
            ));
            body.push(format!(
                "Please publish the data behind {} as a CSV file with a data dictionary, \
                 updated every month, so that journalists and researchers can compare \
                 contracts over time. Today the figures only exist in PDF reports, which \
                 makes them hard to reuse. A stable URL per release would also help \
                 (suggestion {i}).",
                references[c]
            ));
            status.push(if waiting { "SUBMITTED" } else { "ACCEPTED" });
            count.push(supports as i32);
            awaiting.push(waiting);
            responded.push((!waiting).then_some(now));
        }
        let t = Instant::now();
        sqlx::query(
            "INSERT INTO suggestions (id, commitment_id, author_id, title, body, body_html, \
             status, support_count, follower_count, trending_score, awaiting_response, \
             responded_at, duplicate_of_id, created_at, updated_at) \
             SELECT t.id, t.commitment_id, t.author_id, t.title, t.body, \
             '<p>' || t.body || '</p>', t.status, t.support_count, 0, t.support_count, \
             t.awaiting, t.responded_at, NULL, $10, $10 \
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], \
             $6::text[], $7::int4[], $8::bool[], $9::timestamptz[]) \
             AS t(id, commitment_id, author_id, title, body, status, support_count, awaiting, \
             responded_at)",
        )
        .bind(&ids)
        .bind(&commitment)
        .bind(&author)
        .bind(&title)
        .bind(&body)
        .bind(&status)
        .bind(&count)
        .bind(&awaiting)
        .bind(&responded)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("inserting suggestions")?;
        suggestion_time += t.elapsed();
        let t = Instant::now();
        sqlx::query(
            "INSERT INTO supports (suggestion_id, user_id, created_at) \
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[])",
        )
        .bind(&s_suggestion)
        .bind(&s_user)
        .bind(&s_at)
        .execute(&mut *tx)
        .await
        .context("inserting supports")?;
        support_time += t.elapsed();
    }
    let t = Instant::now();
    tx.commit().await?;
    println!(
        "{SUGGESTIONS} suggestions in {:.1} s, {supports_total} supports in {:.1} s ({} suggestions per statement), commit {:.1} s",
        suggestion_time.as_secs_f64(),
        support_time.as_secs_f64(),
        BATCH,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Checks the counters against the rows.
async fn check_data(pool: &PgPool) -> anyhow::Result<()> {
    let supports: i64 = sqlx::query_scalar("SELECT count(*) FROM supports")
        .fetch_one(pool)
        .await?;
    let wrong: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM suggestions s LEFT JOIN \
         (SELECT suggestion_id, count(*) AS n FROM supports GROUP BY suggestion_id) x \
         ON x.suggestion_id = s.id \
         WHERE s.support_count <> coalesce(x.n, 0) OR s.trending_score <> coalesce(x.n, 0)",
    )
    .fetch_one(pool)
    .await?;
    let waiting: i64 =
        sqlx::query_scalar("SELECT count(*) FROM suggestions WHERE awaiting_response")
            .fetch_one(pool)
            .await?;
    println!("supports: {supports} rows; suggestions whose counters disagree with their rows: {wrong}; awaiting a response: {waiting}");
    if wrong != 0 {
        bail!("{wrong} suggestions have counters that disagree with the supports table");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Plans

/// The statement `services::suggestions::list` runs for a commitment filter, built by the
/// service itself (`services::suggestions::list_query`).
fn list_query(
    commitment: Uuid,
    order: Order,
    after: Option<&Cursor>,
    first: u64,
) -> anyhow::Result<Select<suggestion::Entity>> {
    let filter = Filter {
        commitment_id: Some(commitment),
        ..Default::default()
    };
    let page = PageRequest {
        first,
        after: after.cloned(),
    };
    service::list_query(&filter, order, &page)
        .map_err(|e| anyhow!("services::suggestions::list_query: {e:?}"))
}

struct Plan {
    name: String,
    /// The SQL with its parameters written in.
    sql: String,
    /// `EXPLAIN` with the parameters bound, as the server sends them.
    custom: Vec<String>,
    /// `EXPLAIN EXECUTE` of a prepared statement under `plan_cache_mode = force_generic_plan`:
    /// the plan a long-lived pooled connection may settle on after five executions.
    generic: Vec<String>,
    analyze: Vec<String>,
    /// Whether the plan must return rows in index order (no Sort, no Seq Scan).
    ordered: bool,
}

async fn explain_all(
    db: &DatabaseConnection,
    ctx: &convene::services::Ctx,
    commitment: Uuid,
) -> anyhow::Result<Vec<Plan>> {
    println!("\n-- plans (commitment {commitment}, first = {PAGE}) --");
    let filter = Filter {
        commitment_id: Some(commitment),
        ..Filter::default()
    };
    let top_page = service::list(
        ctx,
        &filter,
        Order::Top,
        &PageRequest {
            first: PAGE,
            after: None,
        },
    )
    .await
    .map_err(|e| anyhow!("services::suggestions::list: {e:?}"))?;
    let cursor = top_page
        .items
        .last()
        .map(|(c, _)| c.clone())
        .ok_or_else(|| anyhow!("no suggestions on the commitment"))?;
    // A cursor deep in the list: where the 500th row of the TOP order stands.
    let deep = DEEP_ROW;
    let row = list_query(commitment, Order::Top, None, deep - 1)?
        .all(db)
        .await?
        .into_iter()
        .nth(deep as usize - 1)
        .ok_or_else(|| anyhow!("fewer than {deep} suggestions on the commitment"))?;
    let deep_cursor = Cursor {
        k: Some(json!(row.support_count)),
        id: row.id,
    };
    let key = |c: &Cursor| c.k.as_ref().map_or("null".into(), ToString::to_string);
    let cases = [
        ("TOP".to_string(), Order::Top, None),
        ("NEW".to_string(), Order::New, None),
        ("TRENDING".to_string(), Order::Trending, None),
        ("LONGEST_WAITING".to_string(), Order::LongestWaiting, None),
        (
            format!("TOP, after row {PAGE} (cursor k = {})", key(&cursor)),
            Order::Top,
            Some(cursor),
        ),
        (
            format!("TOP, after row {deep} (cursor k = {})", key(&deep_cursor)),
            Order::Top,
            Some(deep_cursor),
        ),
    ];
    let mut plans = Vec::new();
    let mut authors = Vec::new();
    for (name, order, after) in cases {
        // The service's page and the statement explained must agree, row for row.
        let page = service::list(
            ctx,
            &filter,
            order,
            &PageRequest {
                first: PAGE,
                after: after.clone(),
            },
        )
        .await
        .map_err(|e| anyhow!("services::suggestions::list: {e:?}"))?;
        let service_ids: Vec<Uuid> = page.items.iter().map(|(_, s)| s.id).collect();
        let q = list_query(commitment, order, after.as_ref(), PAGE)?;
        let rows = q.clone().all(db).await?;
        let ids: Vec<Uuid> = rows.iter().take(PAGE as usize).map(|s| s.id).collect();
        if ids != service_ids || ids.len() != PAGE as usize {
            bail!(
                "{name}: the explained statement returns other rows than services::suggestions::list"
            );
        }
        if order == Order::Top && after.is_none() {
            authors = rows
                .iter()
                .take(PAGE as usize)
                .map(|s| s.author_id)
                .collect();
        }
        plans.push(plan(db, name, q.build(DbBackend::Postgres), true).await?);
    }
    // The DataLoader's batched author query for the TOP page (`Loader<UserKey>`).
    let mut keys = authors;
    keys.sort();
    keys.dedup();
    let q = user::Entity::find().filter(user::Column::Id.is_in(keys));
    plans.push(
        plan(
            db,
            "authors of the TOP page (DataLoader)".into(),
            q.build(DbBackend::Postgres),
            false,
        )
        .await?,
    );
    println!("(each statement explained returned the same rows as services::suggestions::list)");
    Ok(plans)
}

async fn plan(
    db: &DatabaseConnection,
    name: String,
    stmt: Statement,
    ordered: bool,
) -> anyhow::Result<Plan> {
    let values: Vec<Value> = stmt.values.clone().map(|v| v.0).unwrap_or_default();
    let custom = explain(db, "EXPLAIN", &stmt.sql, &values).await?;
    let analyze = explain(db, "EXPLAIN (ANALYZE, BUFFERS)", &stmt.sql, &values).await?;
    let generic = explain_generic(db, &stmt.sql, &values).await?;
    let p = Plan {
        name,
        sql: stmt.to_string(),
        custom,
        generic,
        analyze,
        ordered,
    };
    println!("\n### {}\n{}\n", p.name, p.sql);
    println!("EXPLAIN:");
    for l in &p.custom {
        println!("  {l}");
    }
    println!("EXPLAIN (generic plan):");
    for l in &p.generic {
        println!("  {l}");
    }
    println!("EXPLAIN (ANALYZE, BUFFERS):");
    for l in &p.analyze {
        println!("  {l}");
    }
    let verdict = Verdict::of(&p.custom, p.ordered);
    let generic = Verdict::of(&p.generic, p.ordered);
    println!(
        "=> {}: {}; generic plan {}: {}",
        if verdict.ok {
            "OK"
        } else {
            "NOT AN INDEX SCAN"
        },
        verdict.node,
        if generic.ok {
            "OK"
        } else {
            "NOT AN INDEX SCAN"
        },
        generic.node
    );
    Ok(p)
}

async fn explain(
    db: &DatabaseConnection,
    prefix: &str,
    sql: &str,
    values: &[Value],
) -> anyhow::Result<Vec<String>> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("{prefix} {sql}"),
            values.to_vec(),
        ))
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String>("", "QUERY PLAN").map_err(Into::into))
        .collect()
}

fn pg_type(v: &Value) -> Option<&'static str> {
    Some(match v {
        Value::Uuid(_) => "uuid",
        Value::BigInt(_) | Value::BigUnsigned(_) => "int8",
        Value::Int(_) => "int4",
        Value::Bool(_) => "bool",
        Value::String(_) => "text",
        _ => return None,
    })
}

async fn explain_generic(
    db: &DatabaseConnection,
    sql: &str,
    values: &[Value],
) -> anyhow::Result<Vec<String>> {
    let name = format!("convene_bench_{}", Uuid::new_v4().simple());
    let types: Option<Vec<&str>> = values.iter().map(pg_type).collect();
    let literals: Vec<String> = values
        .iter()
        .map(|v| PostgresQueryBuilder.value_to_string(v))
        .collect();
    let prepare = match types {
        Some(t) if !t.is_empty() => format!("PREPARE {name} ({}) AS {sql}", t.join(", ")),
        _ => format!("PREPARE {name} AS {sql}"),
    };
    let tx = db.begin().await?;
    tx.execute_unprepared("SET LOCAL plan_cache_mode = force_generic_plan")
        .await?;
    tx.execute_unprepared(&prepare).await?;
    let rows = tx
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("EXPLAIN EXECUTE {name} ({})", literals.join(", ")),
        ))
        .await?;
    tx.execute_unprepared(&format!("DEALLOCATE {name}")).await?;
    tx.rollback().await?;
    rows.iter()
        .map(|r| r.try_get::<String>("", "QUERY PLAN").map_err(Into::into))
        .collect()
}

struct Verdict {
    ok: bool,
    /// The scan node, e.g. "Index Scan using idx_… on suggestions".
    node: String,
    sort: bool,
}

impl Verdict {
    fn of(lines: &[String], ordered: bool) -> Verdict {
        let node = lines
            .iter()
            .map(|l| l.trim_start_matches([' ', '-', '>']))
            .find(|l| l.contains("Scan"))
            .map(|l| l.split("  (").next().unwrap_or(l).trim().to_string())
            .unwrap_or_else(|| "?".into());
        let sort = lines
            .iter()
            .any(|l| l.trim_start_matches([' ', '-', '>']).starts_with("Sort"));
        let seq = lines.iter().any(|l| l.contains("Seq Scan"));
        let index = if ordered {
            node.starts_with("Index Scan") || node.starts_with("Index Only Scan")
        } else {
            node.contains("Index")
        };
        Verdict {
            ok: index && !seq && !(ordered && sort),
            node,
            sort,
        }
    }
}

fn plan_line<'a>(lines: &'a [String], prefix: &str) -> Option<&'a str> {
    lines
        .iter()
        .map(|l| l.trim())
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
}

// ---------------------------------------------------------------------------------------------
// The bare handler: the same SQL the GraphQL path needs, nothing else.

#[derive(Deserialize)]
struct BareParams {
    commitment: Uuid,
}

type BareError = (StatusCode, String);

fn internal(e: impl std::fmt::Display) -> BareError {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// `GET /bare?commitment=<uuid>`: the TOP page (20 rows, fetched as 21 like the service does
/// to know whether a next page exists), then the authors' names in one batched query.
async fn bare_page(
    State(db): State<DatabaseConnection>,
    Query(p): Query<BareParams>,
) -> Result<Json<JsonValue>, BareError> {
    let pool = db.get_postgres_connection_pool();
    let mut rows: Vec<(Uuid, String, i32, Uuid)> = sqlx::query_as(
        "SELECT id, title, support_count, author_id FROM suggestions WHERE commitment_id = $1 \
         ORDER BY support_count DESC, id DESC LIMIT 21",
    )
    .bind(p.commitment)
    .fetch_all(pool)
    .await
    .map_err(internal)?;
    rows.truncate(PAGE as usize);
    let mut authors: Vec<Uuid> = rows.iter().map(|r| r.3).collect();
    authors.sort();
    authors.dedup();
    let mut names: HashMap<Uuid, String> = HashMap::new();
    if !authors.is_empty() {
        let placeholders: Vec<String> = (1..=authors.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, display_name FROM users WHERE id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_as::<_, (Uuid, String)>(AssertSqlSafe(sql));
        for a in &authors {
            q = q.bind(*a);
        }
        names = q
            .fetch_all(pool)
            .await
            .map_err(internal)?
            .into_iter()
            .collect();
    }
    let nodes: Vec<JsonValue> = rows
        .into_iter()
        .map(|(_, title, support_count, author)| {
            json!({
                "title": title,
                "supportCount": support_count,
                "author": names.get(&author).map(|n| json!({ "displayName": n })),
            })
        })
        .collect();
    Ok(Json(json!({ "nodes": nodes })))
}

async fn start_bare(
    url: &str,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    let db = convene::db::connect_url(url, POOL).await?;
    let app = Router::new().route("/bare", get(bare_page)).with_state(db);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    Ok((addr, task))
}

// ---------------------------------------------------------------------------------------------
// Load

#[derive(Clone)]
enum Target {
    Convene(String),
    Bare(String),
}

async fn one_request(
    client: &reqwest::Client,
    target: &Target,
    commitment: Uuid,
) -> Result<(), String> {
    let (response, nodes_at): (_, &[&str]) = match target {
        Target::Convene(url) => (
            client
                .post(url)
                .json(&json!({ "query": QUERY, "variables": { "c": commitment } }))
                .send()
                .await,
            &["data", "suggestions", "nodes"],
        ),
        Target::Bare(url) => (
            client
                .get(format!("{url}?commitment={commitment}"))
                .send()
                .await,
            &["nodes"],
        ),
    };
    let response = response.map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| format!("reading: {e}"))?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {status}: {body}"));
    }
    let value: JsonValue = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if value.get("errors").is_some() {
        return Err(format!("GraphQL errors: {body}"));
    }
    let nodes = nodes_at
        .iter()
        .fold(&value, |v, k| &v[*k])
        .as_array()
        .ok_or_else(|| format!("no nodes: {body}"))?;
    if nodes.len() != PAGE as usize {
        return Err(format!("{} nodes instead of {PAGE}", nodes.len()));
    }
    if nodes
        .iter()
        .any(|n| n["author"]["displayName"].as_str().is_none() || n["title"].as_str().is_none())
    {
        return Err(format!("a node without title or author name: {body}"));
    }
    Ok(())
}

struct Run {
    /// Latency of every request started in the measured window, successful or not, in µs.
    latencies: Vec<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
}

impl Run {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1] as f64 / 1000.0
    }
}

struct ClientResult {
    latencies: Vec<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    last_done: Instant,
}

/// 64 clients, each sending one request at a time to a random commitment, for the warm-up
/// and then the measured window. Requests started in the window count, including the last
/// ones finishing just after it; the rate divides by the time until the last one finished.
async fn drive(target: Target, commitments: &[Uuid], measure: Duration) -> anyhow::Result<Run> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .timeout(Duration::from_secs(30))
        .build()?;
    let commitments = std::sync::Arc::new(commitments.to_vec());
    let begin = Instant::now();
    let measure_from = begin + WARMUP;
    let until = measure_from + measure;
    let mut tasks = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let (client, target, commitments) = (client.clone(), target.clone(), commitments.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(i as u64);
            let mut r = ClientResult {
                latencies: Vec::new(),
                ok: 0,
                errors: 0,
                first_error: None,
                last_done: measure_from,
            };
            loop {
                let started = Instant::now();
                if started >= until {
                    break;
                }
                let c = commitments[rng.random_range(0..commitments.len())];
                let outcome = one_request(&client, &target, c).await;
                let done = Instant::now();
                if started < measure_from {
                    continue;
                }
                r.latencies
                    .push(u64::try_from((done - started).as_micros()).unwrap_or(u64::MAX));
                r.last_done = r.last_done.max(done);
                match outcome {
                    Ok(()) => r.ok += 1,
                    Err(e) => {
                        r.errors += 1;
                        r.first_error.get_or_insert(e);
                    }
                }
            }
            r
        }));
    }
    let mut run = Run {
        latencies: Vec::new(),
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: measure,
    };
    let mut last_done = measure_from;
    for t in tasks {
        let r = t.await?;
        run.latencies.extend(r.latencies);
        run.ok += r.ok;
        run.errors += r.errors;
        if run.first_error.is_none() {
            run.first_error = r.first_error;
        }
        last_done = last_done.max(r.last_done);
    }
    run.latencies.sort_unstable();
    run.elapsed = (last_done - measure_from).max(Duration::from_millis(1));
    Ok(run)
}

fn print_run(name: &str, run: &Run) {
    println!(
        "\n{name}: {} ok, {} errors in {:.2} s: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        run.ok,
        run.errors,
        run.elapsed.as_secs_f64(),
        run.rps(),
        run.percentile_ms(50.0),
        run.percentile_ms(99.0),
        run.percentile_ms(100.0),
    );
    if let Some(e) = &run.first_error {
        let short: String = e.chars().take(500).collect();
        println!("  first error: {short}");
    }
}

// ---------------------------------------------------------------------------------------------
// Summary

struct Setup {
    cores: usize,
    seconds: u64,
    load_time: Option<Duration>,
}

fn print_summary(setup: &Setup, plans: &[Plan], convene: &Run, bare: &Run) {
    println!("\n== Summary (Markdown) ==\n");
    println!(
        "Data: {USERS} users, {COMMITMENTS} commitments, {SUGGESTIONS} suggestions ({PER_COMMITMENT} per commitment), {} supports (0–{MAX_SUPPORTS} per suggestion). Load: {}.",
        SUGGESTIONS * MAX_SUPPORTS / 2,
        setup.load_time.map_or("reused an existing database".to_string(), |d| format!("{:.1} s", d.as_secs_f64()))
    );
    println!(
        "Load test: {CLIENTS} concurrent clients, {} s warm-up then {} s per target, one target after the other, a random commitment per request, client and servers on the same {}-core machine; pools of {POOL} connections.\n",
        WARMUP.as_secs(),
        setup.seconds,
        setup.cores
    );
    println!("| Query (commitment filter, first 20) | Plan | Generic plan | Sort | Filter (not Index Cond) | Rows removed by filter | Execution (ms) | Index scan |");
    println!("|---|---|---|---|---|---|---|---|");
    for p in plans {
        let v = Verdict::of(&p.custom, p.ordered);
        let g = Verdict::of(&p.generic, p.ordered);
        let removed = plan_line(&p.analyze, "Rows Removed by Filter:").unwrap_or("0");
        let exec = plan_line(&p.analyze, "Execution Time:")
            .map(|s| s.trim_end_matches(" ms"))
            .unwrap_or("?");
        let filter =
            plan_line(&p.generic, "Filter:").map_or("—".to_string(), |f| format!("`{f}`"));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            p.name,
            v.node,
            g.node,
            if v.sort { "yes" } else { "no" },
            filter,
            removed,
            exec,
            if v.ok && g.ok { "yes" } else { "**no**" }
        );
    }
    println!();
    println!("| Target | Requests/s | p50 (ms) | p99 (ms) | Requests | Errors |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, run) in [
        (
            "Convene `POST /graphql` (suggestions TOP, first 20, author names)",
            convene,
        ),
        ("Bare axum + sqlx handler, same SQL", bare),
    ] {
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {} | {} |",
            run.rps(),
            run.percentile_ms(50.0),
            run.percentile_ms(99.0),
            run.ok + run.errors,
            run.errors
        );
    }
    println!(
        "\nConvene / bare throughput: **{:.2}**",
        convene.rps() / bare.rps().max(f64::EPSILON)
    );
}
