//! Benchmark: Convene's own cost per request, on PostgreSQL with 100,000 suggestions and
//! 1,000,000 supports. Runs the `convene` binary and a bare axum handler each in a process of
//! its own, drives a table of requests from `GET /healthz` to the pages the site shows, and
//! reports throughput, latency, the serving process's CPU per request and Convene's memory.
//!
//! Run: `cargo bench --bench suggestions`
//!
//! - `CONVENE_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`): a
//!   PostgreSQL server where this role may create databases. The benchmark drops and recreates
//!   the database `convene_bench` there, and leaves it in place afterwards for inspection.
//! - `CONVENE_BENCH_SECONDS` (default 10): measured seconds per row, after a 2 s warm-up.
//! - `CONVENE_BENCH_CLIENTS` (default 64): concurrent clients, each one request at a time.
//! - `CONVENE_BENCH_REUSE=1`: keep an already loaded `convene_bench` instead of rebuilding it.
//! - `CONVENE_BENCH_BINARY=/path/to/convene`: measure that build instead of this one's, e.g.
//!   an older commit's, with the same data, requests and checks.
//! - `CONVENE_BENCH_ONLY=<row>`: drive only that row (`top`, `new`, `bare-top`, …; the keys
//!   are in `ROWS`), with no plans and no memory section: for profiling.
//! - `CONVENE_BENCH_URL=http://127.0.0.1:8080` (with `CONVENE_BENCH_PID=<pid>` for CPU and
//!   memory): drive a Convene that is already running on the `convene_bench` database
//!   instead of starting one.
//! - `CONVENE_BENCH_PID_FILE=<path>`: once the server of the measured row answers, write its
//!   PID there (docs/perf/flamegraph.sh attaches `perf` to it).
//! - `CONVENE_BENCH_SETTLE_SECONDS` (default 60): how long Convene's memory is watched after
//!   the large responses.
//! - `CONVENE_BENCH_ROUNDS` (default 3): how many times the goal pages and their bare twins
//!   are driven; rounds after the first alternate which of the pair runs first. The goals
//!   are judged on the median over rounds, as one row after another on a shared machine
//!   can drift by more than the margin being measured.
//!
//! Steps: load the data set; print the plans of the statements `services::suggestions::list`
//! runs; start Convene (configured through `CONVENE__*` variables) and the bare handler (this
//! executable again, with `--bare-server`), check that both write the same pages; warm up
//! and read Convene's idle RSS; drive each row in turn; send the largest responses the cost
//! limit allows and watch RSS settle; stop both; print a Markdown summary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use convene::config::{MailTransportKind, Settings};
use convene::entities::{commitment, suggestion, user};
use convene::graphql::limits::{check_document, check_text, Limits, SchemaShape};
use convene::services::columns::ColumnSet;
use convene::services::moderation::HIDDEN_TITLE;
use convene::services::page::{Cursor, PageRequest};
use convene::services::suggestions::{self as service, Filter, Order};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::sea_query::{PostgresQueryBuilder, QueryBuilder};
use sea_orm::sqlx::{self, postgres::PgPool, AssertSqlSafe};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryTrait, Select, Statement, TransactionTrait, Value,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
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

const DEFAULT_CLIENTS: usize = 64;
const PAGE: u64 = 20;
/// The row a deep cursor points at, to show what paging far into a list costs.
const DEEP_ROW: u64 = 500;
/// Connections in each server's pool.
const POOL: u32 = 20;
const WARMUP: Duration = Duration::from_secs(2);
/// Per Convene row, before the idle RSS is read: enough for every statement to be prepared
/// on the pooled connections.
const IDLE_WARMUP: Duration = Duration::from_secs(1);
const SIGNING_KEY: &str = "bench-signing-key-0123456789abcdef0123456789";
/// The hidden argument that makes this executable the bare server.
const BARE_FLAG: &str = "--bare-server";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// RSS is sampled this often while a row runs, for the peak under load.
const RSS_EVERY: Duration = Duration::from_millis(100);
/// And this often while it settles after the large responses.
const SETTLE_EVERY: Duration = Duration::from_secs(10);
/// Large responses sent at once, each the largest document the cost limit accepts.
const LARGE_REQUESTS: usize = 4;
const LARGE_FIRST: u64 = 100;

const GOAL_RATIO: f64 = 0.85;
const GOAL_CPU_US: f64 = 350.0;
const GOAL_RSS_DELTA_MIB: f64 = 50.0;

const Q_TYPENAME: &str = "{ __typename }";
const Q_COMMITMENT: &str = "query($r: String!) { commitment(reference: $r) { id title } }";
const Q_FIRST1: &str = "{ suggestions(first: 1) { nodes { id } } }";
const Q_FIRST20: &str = "{ suggestions(first: 20) { nodes { id title supportCount } } }";
const Q_AUTHOR: &str =
    "{ suggestions(first: 20) { nodes { id title supportCount author { displayName } } } }";
const Q_TOP: &str = "{ suggestions(orderBy: TOP, first: 20) { nodes { id title supportCount author { displayName } commitment { reference } } } }";
const Q_NEW: &str = "query($c: ID!) { suggestions(filter: {commitmentId: $c}, orderBy: NEW, first: 20) { nodes { id title supportCount author { displayName } commitment { reference } } } }";

// ---------------------------------------------------------------------------------------------
// The rows

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Serving {
    Convene,
    Bare,
}

#[derive(Clone, Copy)]
enum Req {
    Get(&'static str),
    Graphql(&'static str),
}

/// What varies per request: nothing, or a random commitment (by ID or by reference).
#[derive(Clone, Copy)]
enum Param {
    None,
    Commitment,
    Reference,
}

/// What a good response holds; anything else counts as an error.
#[derive(Clone, Copy)]
enum Expect {
    /// The body `ok`.
    Ok,
    Typename,
    Commitment,
    Nodes {
        count: usize,
        /// id only, or id, title and supportCount.
        full: bool,
        author: bool,
        commitment: bool,
    },
}

struct RowSpec {
    /// For `CONVENE_BENCH_ONLY`.
    key: &'static str,
    label: &'static str,
    serving: Serving,
    req: Req,
    param: Param,
    expect: Expect,
    /// The bare row that does the same work, for the ratio.
    bare: Option<&'static str>,
}

const PAGE_NODES: Expect = Expect::Nodes {
    count: PAGE as usize,
    full: true,
    author: true,
    commitment: true,
};

/// In the order they run: each goal page right before its bare twin, so both see the same
/// machine.
const ROWS: &[RowSpec] = &[
    RowSpec {
        key: "healthz",
        label: "`GET /healthz`",
        serving: Serving::Convene,
        req: Req::Get("/healthz"),
        param: Param::None,
        expect: Expect::Ok,
        bare: Some("bare-healthz"),
    },
    RowSpec {
        key: "bare-healthz",
        label: "bare: `GET /healthz`",
        serving: Serving::Bare,
        req: Req::Get("/healthz"),
        param: Param::None,
        expect: Expect::Ok,
        bare: None,
    },
    RowSpec {
        key: "typename",
        label: "`{ __typename }`",
        serving: Serving::Convene,
        req: Req::Graphql(Q_TYPENAME),
        param: Param::None,
        expect: Expect::Typename,
        bare: None,
    },
    RowSpec {
        key: "commitment",
        label: "`commitment(reference:) { id title }`",
        serving: Serving::Convene,
        req: Req::Graphql(Q_COMMITMENT),
        param: Param::Reference,
        expect: Expect::Commitment,
        bare: None,
    },
    RowSpec {
        key: "first1",
        label: "`suggestions(first: 1) { nodes { id } }`",
        serving: Serving::Convene,
        req: Req::Graphql(Q_FIRST1),
        param: Param::None,
        expect: Expect::Nodes {
            count: 1,
            full: false,
            author: false,
            commitment: false,
        },
        bare: None,
    },
    RowSpec {
        key: "first20",
        label: "`suggestions(first: 20) { nodes { id title supportCount } }`",
        serving: Serving::Convene,
        req: Req::Graphql(Q_FIRST20),
        param: Param::None,
        expect: Expect::Nodes {
            count: PAGE as usize,
            full: true,
            author: false,
            commitment: false,
        },
        bare: None,
    },
    RowSpec {
        key: "author",
        label: "the same + `author { displayName }`",
        serving: Serving::Convene,
        req: Req::Graphql(Q_AUTHOR),
        param: Param::None,
        expect: Expect::Nodes {
            count: PAGE as usize,
            full: true,
            author: true,
            commitment: false,
        },
        bare: None,
    },
    RowSpec {
        key: "top",
        label: "the same + `commitment { reference }` (goal: top page, `orderBy: TOP`)",
        serving: Serving::Convene,
        req: Req::Graphql(Q_TOP),
        param: Param::None,
        expect: PAGE_NODES,
        bare: Some("bare-top"),
    },
    RowSpec {
        key: "bare-top",
        label: "bare: top page, same SQL",
        serving: Serving::Bare,
        req: Req::Get("/bare/top"),
        param: Param::None,
        expect: PAGE_NODES,
        bare: None,
    },
    RowSpec {
        key: "new",
        label: "goal: a commitment's newest (`filter: {commitmentId}, orderBy: NEW`, first 20, same fields)",
        serving: Serving::Convene,
        req: Req::Graphql(Q_NEW),
        param: Param::Commitment,
        expect: PAGE_NODES,
        bare: Some("bare-new"),
    },
    RowSpec {
        key: "bare-new",
        label: "bare: a commitment's newest, same SQL",
        serving: Serving::Bare,
        req: Req::Get("/bare/new"),
        param: Param::Commitment,
        expect: PAGE_NODES,
        bare: None,
    },
];

/// The goal pages: Convene's row, its bare twin, and a name.
const GOALS: &[(&str, &str, &str)] = &[
    ("top", "bare-top", "Top page (author + commitment)"),
    (
        "new",
        "bare-new",
        "A commitment's NEW page (author + commitment)",
    ),
];

fn row(key: &str) -> Option<&'static RowSpec> {
    ROWS.iter().find(|r| r.key == key)
}

// ---------------------------------------------------------------------------------------------
// Options and main

struct Options {
    admin_url: String,
    seconds: u64,
    clients: usize,
    reuse: bool,
    binary: PathBuf,
    only: Option<&'static RowSpec>,
    /// A Convene already running: its base URL and PID.
    external: Option<(String, Option<u32>)>,
    pid_file: Option<PathBuf>,
    settle: Duration,
    /// How many times the goal pages and their bare twins are driven (the first time with
    /// the other rows): the goals are judged on the median.
    rounds: u64,
}

fn options() -> anyhow::Result<Options> {
    let number = |name: &str, default: &str| -> anyhow::Result<u64> {
        env_or(name, default)
            .trim()
            .parse::<u64>()
            .with_context(|| format!("{name} must be a whole number"))
    };
    let only = match std::env::var("CONVENE_BENCH_ONLY") {
        Ok(k) if !k.trim().is_empty() => Some(row(k.trim()).ok_or_else(|| {
            anyhow!(
                "CONVENE_BENCH_ONLY={k}: no such row; the rows are {}",
                ROWS.iter().map(|r| r.key).collect::<Vec<_>>().join(", ")
            )
        })?),
        _ => None,
    };
    let external = match std::env::var("CONVENE_BENCH_URL") {
        Ok(u) if !u.trim().is_empty() => {
            let pid = match std::env::var("CONVENE_BENCH_PID") {
                Ok(p) if !p.trim().is_empty() => Some(
                    p.trim()
                        .parse::<u32>()
                        .context("CONVENE_BENCH_PID must be a process ID")?,
                ),
                _ => None,
            };
            Some((u.trim().trim_end_matches('/').to_string(), pid))
        }
        _ => None,
    };
    Ok(Options {
        admin_url: env_or("CONVENE_BENCH_DATABASE_URL", DEFAULT_ADMIN_URL),
        seconds: number("CONVENE_BENCH_SECONDS", "10")?.max(1),
        clients: usize::try_from(number(
            "CONVENE_BENCH_CLIENTS",
            &DEFAULT_CLIENTS.to_string(),
        )?)?
        .max(1),
        reuse: std::env::var("CONVENE_BENCH_REUSE").is_ok_and(|v| v.trim() == "1"),
        binary: PathBuf::from(env_or(
            "CONVENE_BENCH_BINARY",
            env!("CARGO_BIN_EXE_convene"),
        )),
        only,
        external,
        pid_file: std::env::var_os("CONVENE_BENCH_PID_FILE")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
        settle: Duration::from_secs(number("CONVENE_BENCH_SETTLE_SECONDS", "60")?),
        rounds: number("CONVENE_BENCH_ROUNDS", "3")?.max(1),
    })
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    // `cargo bench` passes `--bench`; the bare server is this executable with BARE_FLAG.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == BARE_FLAG) {
        let (Some(url), Some(port)) = (args.get(i + 1), args.get(i + 2)) else {
            bail!("usage: {BARE_FLAG} <database url> <port>");
        };
        return runtime.block_on(bare_server(url, port));
    }
    runtime.block_on(bench(options()?))
}

async fn bench(opts: Options) -> anyhow::Result<()> {
    let url = with_database(&opts.admin_url, DB_NAME);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_before = load_average();

    println!("== Convene suggestions benchmark ==");
    println!(
        "database {DB_NAME} (from CONVENE_BENCH_DATABASE_URL), {cores} cores, {} clients, {} s measured per row after {} s warm-up, load average {load_before}",
        opts.clients,
        opts.seconds,
        WARMUP.as_secs()
    );
    match &opts.external {
        Some((u, pid)) => println!(
            "Convene: already running at {u}, PID {}",
            pid.map_or("unknown (no CPU or memory figures)".into(), |p| p
                .to_string())
        ),
        None => println!("Convene: {}", opts.binary.display()),
    }

    let (db, load_time) = prepare_database(&opts.admin_url, &url, opts.reuse).await?;
    let pool = db.get_postgres_connection_pool().clone();
    check_data(&pool).await?;
    let fixtures = Fixtures {
        commitments: sqlx::query_scalar("SELECT id FROM commitments ORDER BY reference")
            .fetch_all(&pool)
            .await?,
        references: sqlx::query_scalar("SELECT reference FROM commitments ORDER BY reference")
            .fetch_all(&pool)
            .await?,
    };
    if fixtures.commitments.len() != COMMITMENTS {
        bail!(
            "expected {COMMITMENTS} commitments, found {}",
            fixtures.commitments.len()
        );
    }

    let plans = if opts.only.is_none() {
        let settings = bench_settings(&url)?;
        let ctx = convene::startup::services(Arc::new(settings), db.clone())?;
        explain_all(&db, &ctx, fixtures.commitments[0]).await?
    } else {
        Vec::new()
    };
    db.close().await?;

    let rows: Vec<&'static RowSpec> = match opts.only {
        Some(r) => vec![r],
        None => ROWS.iter().collect(),
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.clients)
        .timeout(Duration::from_secs(30))
        .build()?;

    // Each server in its own process; both are killed when these go out of scope.
    let mut convene = None;
    let mut bare = None;
    if rows.iter().any(|r| r.serving == Serving::Convene) {
        let mut s = match &opts.external {
            Some((u, pid)) => Server::external(u, *pid),
            None => spawn_convene(&opts.binary, &url)?,
        };
        s.wait_ready(&client).await?;
        println!("\nConvene on {} (PID {})", s.base, pid_text(s.pid));
        convene = Some(s);
    }
    if rows.iter().any(|r| r.serving == Serving::Bare) {
        let mut s = spawn_bare(&url)?;
        s.wait_ready(&client).await?;
        println!("bare handler on {} (PID {})", s.base, pid_text(s.pid));
        bare = Some(s);
    }
    let server_of = |r: &RowSpec| match r.serving {
        Serving::Convene => convene.as_ref(),
        Serving::Bare => bare.as_ref(),
    };
    if let (Some(c), Some(b)) = (&convene, &bare) {
        same_pages(&client, c, b, &fixtures).await?;
    }
    if let (Some(path), Some(first)) = (&opts.pid_file, rows.first()) {
        let pid = server_of(first)
            .and_then(|s| s.pid)
            .ok_or_else(|| anyhow!("CONVENE_BENCH_PID_FILE: the server's PID is unknown"))?;
        std::fs::write(path, pid.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }

    let full = opts.only.is_none();
    let mut memory = Memory::default();
    if let (true, Some(c)) = (full, &convene) {
        println!(
            "\n-- warm-up: every Convene row for {} s --",
            IDLE_WARMUP.as_secs()
        );
        for r in ROWS.iter().filter(|r| r.serving == Serving::Convene) {
            let prepared = prepare(r, &c.base, &fixtures);
            drive(&client, c, r, prepared, opts.clients, IDLE_WARMUP, None).await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        memory.idle_kb = c.pid.and_then(rss_kb);
        println!("Convene idle RSS: {}", mib(memory.idle_kb));
    }

    // One measured row: warm-up, then the measured window, printed as it ends.
    let measure = |r: &'static RowSpec| {
        let (client, fixtures, opts) = (&client, &fixtures, &opts);
        let server = server_of(r);
        async move {
            let server = server.ok_or_else(|| anyhow!("no server for {}", r.key))?;
            let prepared = prepare(r, &server.base, fixtures);
            let measured = Some(Duration::from_secs(opts.seconds));
            let run = drive(client, server, r, prepared, opts.clients, WARMUP, measured).await?;
            print_run(r, &run);
            anyhow::Ok(run)
        }
    };
    let mut runs: Vec<(&'static RowSpec, Run)> = Vec::new();
    for r in rows.iter().copied() {
        let run = measure(r).await?;
        if r.serving == Serving::Convene {
            memory.load_max_kb = memory.load_max_kb.max(run.rss_max_kb);
        }
        runs.push((r, run));
    }

    // More rounds of the goal pairs, the bare twin first every other round.
    let mut rounds: Vec<Vec<(&'static str, Run)>> = Vec::new();
    if full {
        for round in 2..=opts.rounds {
            println!("\n-- goal pages, round {round} of {} --", opts.rounds);
            let mut this = Vec::new();
            for (c, b, _) in GOALS {
                let pair = if round % 2 == 0 { [*b, *c] } else { [*c, *b] };
                for key in pair {
                    let r = row(key).ok_or_else(|| anyhow!("no row {key}"))?;
                    this.push((key, measure(r).await?));
                }
            }
            rounds.push(this);
        }
    }

    if let (true, Some(c)) = (full, &convene) {
        memory.large = Some(large_responses(&client, c, opts.settle).await?);
    }
    let load_after = load_average();
    drop(convene);
    drop(bare);

    print_summary(
        &Setup {
            cores,
            seconds: opts.seconds,
            clients: opts.clients,
            load_time,
            binary: match &opts.external {
                Some((u, _)) => format!("already running at {u}"),
                None => opts.binary.display().to_string(),
            },
            load_before,
            load_after,
        },
        &plans,
        &runs,
        &rounds,
        full.then_some(&memory),
    );
    println!(
        "\nThe database {DB_NAME} is left in place for inspection; the next run recreates it."
    );
    Ok(())
}

struct Fixtures {
    commitments: Vec<Uuid>,
    references: Vec<String>,
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
    need: Need,
}

/// What a statement's plan must be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Rows in index order: an index scan, no Sort, no Seq Scan.
    Ordered,
    /// An index lookup, no Seq Scan.
    Index,
    /// Anything: the table is so small that reading it whole is the right plan.
    Any,
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
        plans.push(plan(db, name, q.build(DbBackend::Postgres), Need::Ordered).await?);
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
            Need::Index,
        )
        .await?,
    );
    // The top page the load test drives: TOP over every commitment.
    let everything = Filter::default();
    let first_page = PageRequest {
        first: PAGE,
        after: None,
    };
    let page = service::list(ctx, &everything, Order::Top, &first_page)
        .await
        .map_err(|e| anyhow!("services::suggestions::list: {e:?}"))?;
    let q = service::list_query(&everything, Order::Top, &first_page)
        .map_err(|e| anyhow!("services::suggestions::list_query: {e:?}"))?;
    let rows = q.clone().all(db).await?;
    let ids: Vec<Uuid> = rows.iter().take(PAGE as usize).map(|s| s.id).collect();
    let service_ids: Vec<Uuid> = page.items.iter().map(|(_, s)| s.id).collect();
    if ids != service_ids || ids.len() != PAGE as usize {
        bail!("TOP without a filter: the explained statement returns other rows than services::suggestions::list");
    }
    plans.push(
        plan(
            db,
            "TOP, no filter (the top page)".into(),
            q.build(DbBackend::Postgres),
            Need::Ordered,
        )
        .await?,
    );
    // What Convene runs for the goal pages: the page with its authors and commitments
    // joined (`services::suggestions::list_with`), reading the columns the page shows.
    let include = goal_page_include();
    let joined = service::list_with_query(&everything, Order::Top, &first_page, include)
        .map_err(|e| anyhow!("services::suggestions::list_with_query: {e:?}"))?;
    plans.push(
        plan(
            db,
            "TOP page with authors and commitments joined (what Convene runs; the 100-row commitments table may be read whole)".into(),
            DbBackend::Postgres.build(&joined),
            Need::Any,
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
    need: Need,
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
        need,
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
    let verdict = Verdict::of(&p.custom, p.need);
    let generic = Verdict::of(&p.generic, p.need);
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
    fn of(lines: &[String], need: Need) -> Verdict {
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
        let index = match need {
            Need::Ordered => node.starts_with("Index Scan") || node.starts_with("Index Only Scan"),
            Need::Index => node.contains("Index"),
            Need::Any => true,
        };
        Verdict {
            ok: need == Need::Any || (index && !seq && !(need == Need::Ordered && sort)),
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
// The processes measured

/// A server the benchmark drives, in a process of its own; a started one is killed on drop.
struct Server {
    name: &'static str,
    /// `http://127.0.0.1:<port>`.
    base: String,
    pid: Option<u32>,
    child: Option<Child>,
}

impl Server {
    fn external(base: &str, pid: Option<u32>) -> Server {
        Server {
            name: "Convene",
            base: base.to_string(),
            pid,
            child: None,
        }
    }

    /// Waits until `GET /healthz` answers 200, or fails if the process exits first.
    async fn wait_ready(&mut self, client: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/healthz", self.base);
        loop {
            if let Some(child) = &mut self.child {
                if let Some(status) = child.try_wait()? {
                    bail!("{} exited ({status}) before answering {url}", self.name);
                }
            }
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer {url} within {} s",
                    self.name,
                    READY_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nobody listens on now, for a child to bind.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts the `convene` binary configured through the environment, as it runs in production.
fn spawn_convene(binary: &Path, url: &str) -> anyhow::Result<Server> {
    let port = free_port()?;
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let child = Command::new(binary)
        .env("CONVENE_CONFIG_DIR", &config_dir)
        .env("CONVENE__DATABASE__URL", url)
        .env("CONVENE__DATABASE__POOL_SIZE", POOL.to_string())
        .env("CONVENE__SERVER__ADDRESS", format!("127.0.0.1:{port}"))
        .env("CONVENE__AUTH__SIGNING_KEY", SIGNING_KEY)
        .env("CONVENE__MAIL__TRANSPORT", "memory")
        .env("CONVENE__JOBS__ENABLED", "false")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    Ok(Server {
        name: "Convene",
        base: format!("http://127.0.0.1:{port}"),
        pid: Some(child.id()),
        child: Some(child),
    })
}

/// Starts this executable again as the bare server. It stops when its stdin closes, so it
/// does not outlive the benchmark even if this process is killed.
fn spawn_bare(url: &str) -> anyhow::Result<Server> {
    let port = free_port()?;
    let child = Command::new(std::env::current_exe()?)
        .arg(BARE_FLAG)
        .arg(url)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .spawn()
        .context("starting the bare server")?;
    Ok(Server {
        name: "the bare server",
        base: format!("http://127.0.0.1:{port}"),
        pid: Some(child.id()),
        child: Some(child),
    })
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; field 3 follows.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// Resident memory of a process, in KiB (`VmRSS`).
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map_or("unknown".into(), |p| p.to_string())
}

fn mib(kb: Option<u64>) -> String {
    kb.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

/// Samples a process's RSS until stopped, keeping the largest.
struct RssPeak {
    stop: CancellationToken,
    task: JoinHandle<Option<u64>>,
}

impl RssPeak {
    fn start(pid: Option<u32>) -> RssPeak {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let pid = pid?;
            let mut peak = rss_kb(pid);
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(RSS_EVERY) => {}
                }
                peak = peak.max(rss_kb(pid));
            }
            peak.max(rss_kb(pid))
        });
        RssPeak { stop, task }
    }

    async fn finish(self) -> Option<u64> {
        self.stop.cancel();
        self.task.await.ok().flatten()
    }
}

// ---------------------------------------------------------------------------------------------
// The bare handler: the SQL the goal pages need, nothing else. It exists only here.

#[derive(Deserialize)]
struct BareParams {
    commitment: Uuid,
}

type BareError = (StatusCode, String);

fn internal(e: impl std::fmt::Display) -> BareError {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// The response shape of the GraphQL pages, so the same checks apply.
#[derive(Serialize)]
struct BareResponse {
    data: BareData,
}

#[derive(Serialize)]
struct BareData {
    suggestions: BareNodes,
}

#[derive(Serialize)]
struct BareNodes {
    nodes: Vec<BareNode>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BareNode {
    id: Uuid,
    title: String,
    support_count: i32,
    author: Option<BareAuthor>,
    commitment: Option<BareCommitment>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BareAuthor {
    display_name: String,
}

#[derive(Serialize)]
struct BareCommitment {
    reference: String,
}

/// id, title, support_count, hidden, the author's display name, the commitment's reference:
/// the columns of the goal pages' statement.
type BareRow = (Uuid, String, i32, bool, String, String);

/// What Convene's look-ahead makes of the goal pages' selection (`nodes { id title
/// supportCount author { displayName } commitment { reference } }`) for an anonymous
/// viewer: the list adds what every row needs (the id, `hidden`, the order's key).
fn goal_page_include() -> service::Include {
    service::Include {
        suggestion: ColumnSet::of(&[suggestion::Column::Title, suggestion::Column::SupportCount]),
        author: Some(ColumnSet::of(&[user::Column::DisplayName])),
        commitment: Some(ColumnSet::of(&[commitment::Column::Reference])),
    }
}

/// The goal pages' statements: the SQL text Convene runs for them
/// (`services::suggestions::list_with_query`, the author and commitment joined), so the
/// bare handler runs the same SQL and binds its values in the same order.
struct BareSql {
    /// TOP without a filter; binds the limit (21 rows, to know whether a next page exists).
    top: Arc<str>,
    /// NEW of one commitment; binds the commitment's id, then the limit.
    new: Arc<str>,
}

fn bare_sql() -> anyhow::Result<BareSql> {
    let page = PageRequest {
        first: PAGE,
        after: None,
    };
    let built = |filter: &Filter, order| -> anyhow::Result<(String, Vec<Value>)> {
        let stmt = service::list_with_query(filter, order, &page, goal_page_include())
            .map_err(|e| anyhow!("services::suggestions::list_with_query: {e:?}"))?;
        let (sql, values) = stmt.build(PostgresQueryBuilder);
        Ok((sql, values.0))
    };
    let limit = Value::from(PAGE + 1);
    let (top, values) = built(&Filter::default(), Order::Top)?;
    if values != [limit.clone()] {
        bail!("the TOP statement binds {values:?}, not the limit alone");
    }
    let probe = Uuid::now_v7();
    let filter = Filter {
        commitment_id: Some(probe),
        ..Filter::default()
    };
    let (new, values) = built(&filter, Order::New)?;
    if values != [Value::from(probe), limit] {
        bail!("the NEW statement binds {values:?}, not the commitment and the limit");
    }
    Ok(BareSql {
        top: top.into(),
        new: new.into(),
    })
}

type BareState = State<(PgPool, Arc<BareSql>)>;

/// `GET /bare/top`: the top page.
async fn bare_top(State((pool, sql)): BareState) -> Result<Json<BareResponse>, BareError> {
    let rows: Vec<BareRow> = sqlx::query_as(AssertSqlSafe(sql.top.clone()))
        .bind(PAGE as i64 + 1)
        .fetch_all(&pool)
        .await
        .map_err(internal)?;
    Ok(bare_page(rows))
}

/// `GET /bare/new?commitment=<uuid>`: a commitment's page of newest suggestions.
async fn bare_new(
    State((pool, sql)): BareState,
    Query(p): Query<BareParams>,
) -> Result<Json<BareResponse>, BareError> {
    let rows: Vec<BareRow> = sqlx::query_as(AssertSqlSafe(sql.new.clone()))
        .bind(p.commitment)
        .bind(PAGE as i64 + 1)
        .fetch_all(&pool)
        .await
        .map_err(internal)?;
    Ok(bare_page(rows))
}

/// The page's JSON, as Convene writes it.
fn bare_page(mut rows: Vec<BareRow>) -> Json<BareResponse> {
    rows.truncate(PAGE as usize);
    let nodes = rows
        .into_iter()
        .map(
            |(id, title, support_count, hidden, display_name, reference)| BareNode {
                id,
                // What a moderator hid shows as the marker, as Convene shows it to anyone
                // but its author and the admins.
                title: if hidden {
                    HIDDEN_TITLE.to_string()
                } else {
                    title
                },
                support_count,
                author: Some(BareAuthor { display_name }),
                commitment: Some(BareCommitment { reference }),
            },
        )
        .collect();
    Json(BareResponse {
        data: BareData {
            suggestions: BareNodes { nodes },
        },
    })
}

/// The bare server's process: serves until killed or until its stdin closes.
async fn bare_server(url: &str, port: &str) -> anyhow::Result<()> {
    let port: u16 = port.parse().context("the bare server's port")?;
    let db = convene::db::connect_url(url, POOL).await?;
    let pool = db.get_postgres_connection_pool().clone();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/bare/top", get(bare_top))
        .route("/bare/new", get(bare_new))
        .with_state((pool, Arc::new(bare_sql()?)));
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let parent_gone = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while let Ok(n) = tokio::io::AsyncReadExt::read(&mut stdin, &mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(parent_gone)
        .await?;
    Ok(())
}

/// Convene and the bare handler must write the same goal pages, or the ratio means nothing.
async fn same_pages(
    client: &reqwest::Client,
    convene: &Server,
    bare: &Server,
    fixtures: &Fixtures,
) -> anyhow::Result<()> {
    let graphql = |query: &str, variables: JsonValue| {
        let body = json!({ "query": query, "variables": variables });
        let url = format!("{}/graphql", convene.base);
        async move {
            let v: JsonValue = client
                .post(url)
                .json(&body)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            anyhow::Ok(v)
        }
    };
    let get = |path: String| async move {
        let v: JsonValue = client
            .get(path)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        anyhow::Ok(v)
    };
    let mut pairs = vec![(
        "top page".to_string(),
        graphql(Q_TOP, json!({})).await?,
        get(format!("{}/bare/top", bare.base)).await?,
    )];
    for c in fixtures.commitments.iter().step_by(COMMITMENTS / 4) {
        pairs.push((
            format!("NEW page of commitment {c}"),
            graphql(Q_NEW, json!({ "c": c })).await?,
            get(format!("{}/bare/new?commitment={c}", bare.base)).await?,
        ));
    }
    for (name, from_convene, from_bare) in pairs {
        check(PAGE_NODES, from_convene.to_string().as_bytes())
            .map_err(|e| anyhow!("Convene's {name}: {e}"))?;
        if from_convene != from_bare {
            bail!("the bare handler's {name} differs from Convene's:\n{from_bare}\n{from_convene}");
        }
    }
    println!("(the bare handler writes the same goal pages as Convene, checked on 5 of them)");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Load

/// One request, ready to send.
struct Prepared {
    url: String,
    /// A GraphQL request's JSON body; none for a GET.
    body: Option<String>,
}

/// The requests of a row: one, or one per commitment when the row takes one.
fn prepare(r: &RowSpec, base: &str, fixtures: &Fixtures) -> Arc<Vec<Prepared>> {
    let params: Vec<Option<(&str, String)>> = match r.param {
        Param::None => vec![None],
        Param::Commitment => fixtures
            .commitments
            .iter()
            .map(|c| Some(("c", c.to_string())))
            .collect(),
        Param::Reference => fixtures
            .references
            .iter()
            .map(|x| Some(("r", x.clone())))
            .collect(),
    };
    let prepared = params
        .into_iter()
        .map(|p| match r.req {
            Req::Get(path) => Prepared {
                url: match p {
                    None => format!("{base}{path}"),
                    Some((_, v)) => format!(
                        "{base}{path}?{}={v}",
                        if matches!(r.param, Param::Reference) {
                            "reference"
                        } else {
                            "commitment"
                        }
                    ),
                },
                body: None,
            },
            Req::Graphql(query) => {
                let mut variables = serde_json::Map::new();
                if let Some((name, v)) = p {
                    variables.insert(name.to_string(), JsonValue::String(v));
                }
                Prepared {
                    url: format!("{base}/graphql"),
                    body: Some(json!({ "query": query, "variables": variables }).to_string()),
                }
            }
        })
        .collect();
    Arc::new(prepared)
}

async fn one_request(
    client: &reqwest::Client,
    p: &Prepared,
    expect: Expect,
) -> Result<usize, String> {
    let request = match &p.body {
        Some(body) => client
            .post(&p.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone()),
        None => client.get(&p.url),
    };
    let body = send(request).await?;
    check(expect, &body)?;
    Ok(body.len())
}

/// Sends a request and returns its body, or what went wrong (a non-2xx status included).
async fn send(request: reqwest::RequestBuilder) -> Result<axum::body::Bytes, String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading: {e}"))?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", short(&body)));
    }
    Ok(body)
}

fn short(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(500).collect()
}

/// Whether a response is what the row expects. GraphQL reports errors with HTTP 200, so
/// every JSON body is parsed and must have no `errors`.
fn check(expect: Expect, body: &[u8]) -> Result<(), String> {
    if let Expect::Ok = expect {
        return if body == b"ok" {
            Ok(())
        } else {
            Err(format!("expected `ok`: {}", short(body)))
        };
    }
    let value: JsonValue =
        serde_json::from_slice(body).map_err(|e| format!("{e}: {}", short(body)))?;
    if value.get("errors").is_some() {
        return Err(format!("GraphQL errors: {}", short(body)));
    }
    let data = &value["data"];
    let good = match expect {
        Expect::Ok => true,
        Expect::Typename => data["__typename"] == "Query",
        Expect::Commitment => {
            data["commitment"]["id"].is_string() && data["commitment"]["title"].is_string()
        }
        Expect::Nodes {
            count,
            full,
            author,
            commitment,
        } => data["suggestions"]["nodes"]
            .as_array()
            .is_some_and(|nodes| {
                nodes.len() == count
                    && nodes.iter().all(|n| {
                        n["id"].is_string()
                            && (!full || (n["title"].is_string() && n["supportCount"].is_i64()))
                            && (!author || n["author"]["displayName"].is_string())
                            && (!commitment || n["commitment"]["reference"].is_string())
                    })
            }),
    };
    if good {
        Ok(())
    } else {
        Err(format!("not the expected data: {}", short(body)))
    }
}

struct Run {
    /// Latency of every request started in the measured window, successful or not, in µs.
    latencies: Vec<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    /// CPU time of the serving process over the measured window.
    cpu: Option<Duration>,
    rss_max_kb: Option<u64>,
    /// Body bytes of the last good response.
    bytes: usize,
}

impl Run {
    fn requests(&self) -> u64 {
        self.ok + self.errors
    }

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

    fn cpu_per_request_us(&self) -> Option<f64> {
        let requests = self.requests();
        (requests > 0).then_some(())?;
        Some(self.cpu?.as_secs_f64() * 1e6 / requests as f64)
    }
}

struct ClientResult {
    latencies: Vec<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    last_done: Instant,
    bytes: usize,
}

/// `clients` clients, each sending one request at a time (a random one of the row's), for
/// the warm-up and then the measured window (none: warm-up only). Requests started in the
/// window count, including the last ones finishing just after it; the rate divides by the
/// time until the last one finished, and so does the serving process's CPU, read from
/// /proc before the window and after the last request.
async fn drive(
    client: &reqwest::Client,
    server: &Server,
    r: &RowSpec,
    prepared: Arc<Vec<Prepared>>,
    clients: usize,
    warmup: Duration,
    measure: Option<Duration>,
) -> anyhow::Result<Run> {
    let begin = Instant::now();
    let measure_from = begin + warmup;
    let until = measure_from + measure.unwrap_or(Duration::ZERO);
    let expect = r.expect;
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let (client, prepared) = (client.clone(), prepared.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(i as u64);
            let mut r = ClientResult {
                latencies: Vec::new(),
                ok: 0,
                errors: 0,
                first_error: None,
                last_done: measure_from,
                bytes: 0,
            };
            loop {
                let started = Instant::now();
                if started >= until {
                    break;
                }
                let p = &prepared[rng.random_range(0..prepared.len())];
                let outcome = one_request(&client, p, expect).await;
                let done = Instant::now();
                if started < measure_from {
                    continue;
                }
                r.latencies
                    .push(u64::try_from((done - started).as_micros()).unwrap_or(u64::MAX));
                r.last_done = r.last_done.max(done);
                match outcome {
                    Ok(bytes) => {
                        r.ok += 1;
                        r.bytes = bytes;
                    }
                    Err(e) => {
                        r.errors += 1;
                        r.first_error.get_or_insert(e);
                    }
                }
            }
            r
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = server.pid.and_then(cpu_ticks);
    let peak = RssPeak::start(server.pid.filter(|_| measure.is_some()));
    let mut run = Run {
        latencies: Vec::new(),
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        cpu: None,
        rss_max_kb: None,
        bytes: 0,
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
        run.bytes = run.bytes.max(r.bytes);
        last_done = last_done.max(r.last_done);
    }
    let cpu_after = server.pid.and_then(cpu_ticks);
    run.rss_max_kb = peak.finish().await;
    run.latencies.sort_unstable();
    run.elapsed = (last_done - measure_from).max(Duration::from_millis(1));
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        let ticks = b.saturating_sub(a);
        run.cpu = Some(Duration::from_secs_f64(
            ticks as f64 / clock_ticks_per_second() as f64,
        ));
    }
    Ok(run)
}

fn print_run(r: &RowSpec, run: &Run) {
    println!(
        "\n[{}] {}: {} ok, {} errors in {:.2} s: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, CPU {} µs/request, RSS peak {}, {} bytes per response",
        r.key,
        r.label,
        run.ok,
        run.errors,
        run.elapsed.as_secs_f64(),
        run.rps(),
        run.percentile_ms(50.0),
        run.percentile_ms(99.0),
        run.percentile_ms(100.0),
        run.cpu_per_request_us().map_or("?".into(), |c| format!("{c:.0}")),
        mib(run.rss_max_kb),
        run.bytes,
    );
    if let Some(e) = &run.first_error {
        println!("  first error: {}", short(e.as_bytes()));
    }
}

// ---------------------------------------------------------------------------------------------
// Memory

#[derive(Default)]
struct Memory {
    idle_kb: Option<u64>,
    load_max_kb: Option<u64>,
    large: Option<Large>,
}

struct Large {
    aliases: usize,
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    bytes: usize,
    peak_kb: Option<u64>,
    /// Seconds after the responses, and RSS then.
    settle: Vec<(u64, Option<u64>)>,
}

/// The largest document the default limits accept: as many aliased pages of LARGE_FIRST
/// suggestions with their longest fields as `graphql.max_cost` and `max_aliases` allow,
/// decided by Convene's own cost check so an older build gets the same document.
fn large_query() -> anyhow::Result<(String, usize)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let settings = Settings::load_for(&dir, "development", false)?;
    let limits = Limits::from(&settings.graphql);
    let shape = SchemaShape::from_sdl(&convene::graphql::schema::sdl())?;
    for n in (1..=settings.graphql.max_aliases).rev() {
        let mut q = String::from("{");
        for i in 0..n {
            let _ = write!(
                q,
                " p{i}: suggestions(first: {LARGE_FIRST}) {{ nodes {{ title body bodyHtml }} }}"
            );
        }
        q.push_str(" }");
        if check_text(&limits, &q).is_err() {
            continue;
        }
        let doc = async_graphql::parser::parse_query(&q)?;
        if check_document(&limits, &shape, &doc, &async_graphql::Variables::default()).is_ok() {
            return Ok((q, n));
        }
    }
    bail!("not even one page of {LARGE_FIRST} suggestions fits the default limits")
}

/// Sends LARGE_REQUESTS of the largest responses at once, then reads Convene's RSS every
/// SETTLE_EVERY until `settle` has passed.
async fn large_responses(
    client: &reqwest::Client,
    convene: &Server,
    settle: Duration,
) -> anyhow::Result<Large> {
    let (query, aliases) = large_query()?;
    println!(
        "\n-- large responses: {LARGE_REQUESTS} at once of {aliases} aliased suggestions(first: {LARGE_FIRST}) {{ nodes {{ title body bodyHtml }} }} --"
    );
    let body = json!({ "query": query }).to_string();
    let url = format!("{}/graphql", convene.base);
    let peak = RssPeak::start(convene.pid);
    let outcomes = futures::future::join_all((0..LARGE_REQUESTS).map(|_| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move {
            let bytes = send(
                client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body),
            )
            .await?;
            let value: JsonValue =
                serde_json::from_slice(&bytes).map_err(|e| format!("{e}: {}", short(&bytes)))?;
            if value.get("errors").is_some() {
                return Err(format!("GraphQL errors: {}", short(&bytes)));
            }
            let pages = value["data"].as_object().map_or(0, |d| d.len());
            if pages != aliases {
                return Err(format!("{pages} pages instead of {aliases}"));
            }
            Ok(bytes.len())
        }
    }))
    .await;
    let mut large = Large {
        aliases,
        ok: 0,
        errors: 0,
        first_error: None,
        bytes: 0,
        peak_kb: None,
        settle: Vec::new(),
    };
    for o in outcomes {
        match o {
            Ok(b) => {
                large.ok += 1;
                large.bytes = large.bytes.max(b);
            }
            Err(e) => {
                large.errors += 1;
                large.first_error.get_or_insert(e);
            }
        }
    }
    large.peak_kb = peak.finish().await;
    println!(
        "{} ok ({} bytes each), {} errors; RSS peak {}",
        large.ok,
        large.bytes,
        large.errors,
        mib(large.peak_kb)
    );
    if let Some(e) = &large.first_error {
        println!("  first error: {}", short(e.as_bytes()));
    }
    let start = Instant::now();
    let mut at = Duration::ZERO;
    while at < settle {
        at = (at + SETTLE_EVERY).min(settle);
        tokio::time::sleep_until((start + at).into()).await;
        let kb = convene.pid.and_then(rss_kb);
        println!("  after {:>2} s: RSS {}", at.as_secs(), mib(kb));
        large.settle.push((at.as_secs(), kb));
    }
    Ok(large)
}

// ---------------------------------------------------------------------------------------------
// Summary

struct Setup {
    cores: usize,
    seconds: u64,
    clients: usize,
    load_time: Option<Duration>,
    binary: String,
    load_before: String,
    load_after: String,
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**not met**"
    }
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(xs: &[f64]) -> Option<f64> {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

fn print_summary(
    setup: &Setup,
    plans: &[Plan],
    runs: &[(&'static RowSpec, Run)],
    rounds: &[Vec<(&'static str, Run)>],
    memory: Option<&Memory>,
) {
    let find = |key: &str| runs.iter().find(|(r, _)| r.key == key).map(|(_, run)| run);
    // A row's run in every round: the first with the other rows, then the goal rounds.
    let every = |key: &str| -> Vec<&Run> {
        find(key)
            .into_iter()
            .chain(
                rounds
                    .iter()
                    .filter_map(|round| round.iter().find(|(k, _)| *k == key).map(|(_, r)| r)),
            )
            .collect()
    };
    println!("\n== Summary (Markdown) ==\n");
    println!(
        "Data: {USERS} users, {COMMITMENTS} commitments, {SUGGESTIONS} suggestions ({PER_COMMITMENT} per commitment), {} supports (0–{MAX_SUPPORTS} per suggestion). Load: {}.",
        SUGGESTIONS * MAX_SUPPORTS / 2,
        setup.load_time.map_or("reused an existing database".to_string(), |d| format!("{:.1} s", d.as_secs_f64()))
    );
    println!(
        "Load test: {} concurrent clients, each one request at a time (a random commitment where the row takes one); {} s warm-up then {} s per row, one row after the other; then the goal pages and their bare twins again, {} rounds in all (each later round alternating which of a pair runs first), the goals judged on the median. Convene (`{}`) and the bare axum + sqlx handler run each in a process of its own with a pool of {POOL} connections; the clients run in a third, on the same {}-core machine (load average {} before, {} after). CPU is utime + stime of the serving process (`/proc/PID/stat`) over the measured window, per request. Every response is checked: 2xx, and for JSON no `errors` and the expected data.\n",
        setup.clients,
        WARMUP.as_secs(),
        setup.seconds,
        rounds.len() + 1,
        setup.binary,
        setup.cores,
        setup.load_before,
        setup.load_after,
    );
    println!("| Request | Requests/s | p50 (ms) | p99 (ms) | CPU per request (µs) | / bare | Requests | Errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (r, run) in runs {
        let ratio = r.bare.and_then(find).map_or("".to_string(), |b| {
            format!("{:.2}", run.rps() / b.rps().max(f64::EPSILON))
        });
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} |",
            r.label,
            run.rps(),
            run.percentile_ms(50.0),
            run.percentile_ms(99.0),
            run.cpu_per_request_us()
                .map_or("?".into(), |c| format!("{c:.0}")),
            ratio,
            run.requests(),
            run.errors
        );
    }
    let goals: Vec<_> = GOALS
        .iter()
        .filter_map(|&(ck, bk, name)| Some((ck, bk, find(ck)?, find(bk)?, name)))
        .collect();
    if !goals.is_empty() {
        println!();
    }
    let us = |x: Option<f64>| x.map_or("?".to_string(), |x| format!("{x:.0}"));
    let list = |xs: &[f64], digits: usize| {
        xs.iter()
            .map(|x| format!("{x:.digits$}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    for &(ck, bk, c, b, name) in &goals {
        let (cs, bs) = (every(ck), every(bk));
        let ratios: Vec<f64> = cs
            .iter()
            .zip(&bs)
            .map(|(c, b)| c.rps() / b.rps().max(f64::EPSILON))
            .collect();
        let ratio = median(&ratios).unwrap_or(0.0);
        let cpu = |runs: &[&Run]| {
            median(
                &runs
                    .iter()
                    .filter_map(|r| r.cpu_per_request_us())
                    .collect::<Vec<_>>(),
            )
        };
        println!(
            "- {name}: Convene / bare throughput **{ratio:.2}**, the median of {} rounds ({}) (goal ≥ {GOAL_RATIO}: {}); CPU per request (median) {} µs against the bare handler's {} µs (first round: {} against {}).",
            ratios.len(),
            list(&ratios, 2),
            met(ratio >= GOAL_RATIO),
            us(cpu(&cs)),
            us(cpu(&bs)),
            us(c.cpu_per_request_us()),
            us(b.cpu_per_request_us()),
        );
    }
    let top_cpu: Vec<f64> = every("top")
        .iter()
        .filter_map(|r| r.cpu_per_request_us())
        .collect();
    if let Some(cpu) = median(&top_cpu) {
        println!(
            "- Convene CPU per request on the top page with author and commitment: **{cpu:.0} µs**, the median of {} rounds ({}) (goal ≤ {GOAL_CPU_US:.0} µs: {}).",
            top_cpu.len(),
            list(&top_cpu, 0),
            met(cpu <= GOAL_CPU_US)
        );
    }
    if let Some(m) = memory {
        print!(
            "- Convene RSS: idle {}, under load up to {}",
            mib(m.idle_kb),
            mib(m.load_max_kb)
        );
        match &m.large {
            Some(l) => {
                let last = l.settle.last().and_then(|(_, kb)| *kb);
                let secs = l.settle.last().map_or(0, |(s, _)| *s);
                let delta = last
                    .zip(m.idle_kb)
                    .map(|(a, i)| (a as f64 - i as f64) / 1024.0);
                println!(
                    "; {} large responses at once ({} aliased `suggestions(first: {LARGE_FIRST})` with title, body and bodyHtml, {} bytes each, {} errors) peak at {}, and {secs} s later RSS is {}: **{} above idle** (goal ≤ {GOAL_RSS_DELTA_MIB:.0} MiB within a minute: {}). Every {} s: {}.",
                    l.ok + l.errors,
                    l.aliases,
                    l.bytes,
                    l.errors,
                    mib(l.peak_kb),
                    mib(last),
                    delta.map_or("?".into(), |d| format!("{d:.1} MiB")),
                    met(l.errors == 0 && secs >= 60 && delta.is_some_and(|d| d <= GOAL_RSS_DELTA_MIB)),
                    SETTLE_EVERY.as_secs(),
                    l.settle
                        .iter()
                        .map(|(_, kb)| mib(*kb))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            None => println!("."),
        }
    }
    if plans.is_empty() {
        return;
    }
    println!();
    println!("| Query (commitment filter unless said, first 20) | Plan | Generic plan | Sort | Filter (not Index Cond) | Rows removed by filter | Execution (ms) | Index scan |");
    println!("|---|---|---|---|---|---|---|---|");
    for p in plans {
        let v = Verdict::of(&p.custom, p.need);
        let g = Verdict::of(&p.generic, p.need);
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
            match (p.need, v.ok && g.ok) {
                (Need::Any, _) => "not needed",
                (_, true) => "yes",
                (_, false) => "**no**",
            }
        );
    }
}
