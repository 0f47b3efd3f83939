//! Benchmark: 10,000 idle GraphQL subscriptions on one Convene instance. Reports the
//! server's resident memory per subscription and how long one event takes to reach all of
//! them.
//!
//! Run: `cargo bench --bench subscriptions`
//!
//! - `CONVENE_BENCH_SUBSCRIPTIONS` (default 10000): how many subscriptions to hold.
//! - `CONVENE_BENCH_PER_SOCKET` (default 1): subscriptions per WebSocket (a browser tab
//!   holds one socket with a few subscriptions; 1 is the costliest case per subscription).
//! - `CONVENE_BENCH_EVENTS` (default 3): events sent one after the other, each timed.
//! - `CONVENE_BENCH_PG_URL=postgres://…` : run on PostgreSQL (the benchmark recreates the
//!   database `convene_bench_ws` there) instead of a SQLite file in a temporary directory.
//! - `CONVENE_BENCH_BINARY=/path/to/convene`: measure that build instead of this one's.
//!
//! Steps: raise the open-file limit to its hard limit (server and clients each hold one
//! descriptor per socket); start the release `convene` binary in a process of its own,
//! configured through `CONVENE__*` variables; sign up two accounts through the API (marked
//! verified in the database), post a suggestion; open one warm-up socket and read the
//! server's `VmRSS`; open the sockets (spread over the source addresses 127.0.0.1–.8 so
//! that no address runs out of ports), each `connection_init` → `connection_ack` →
//! `subscribe suggestionUpdated(id)` → `ping` → `pong` (the pong proves the subscription is
//! listening); read `VmRSS` again; then support/withdraw the suggestion over HTTP and time
//! how long until every socket has its `next` message (first, median, 99th percentile,
//! last). Every push is checked to carry the new support count.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use common::{account, fresh_database, gql, number, spawn_convene, Profile};

const SUBSCRIPTION: &str =
    "subscription($id: ID!) { suggestionUpdated(id: $id) { id supportCount status } }";
/// Sockets being opened at once.
const OPENING: usize = 256;
/// Source addresses the client sockets are spread over.
const SOURCES: u8 = 8;

struct Options {
    subscriptions: usize,
    per_socket: usize,
    events: usize,
    pg_url: Option<String>,
    binary: PathBuf,
}

fn options() -> anyhow::Result<Options> {
    Ok(Options {
        subscriptions: number("CONVENE_BENCH_SUBSCRIPTIONS", 10_000)?.max(1),
        per_socket: number("CONVENE_BENCH_PER_SOCKET", 1)?.max(1),
        events: number("CONVENE_BENCH_EVENTS", 3)?.max(1),
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

/// Raises the soft open-file limit to the hard one.
fn raise_open_files() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 0,
    }
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

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn text(ws: &mut Ws) -> anyhow::Result<Value> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
            Some(Ok(Message::Close(f))) => bail!("closed: {f:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("socket ended"),
        }
    }
}

/// Opens one socket from `source` with `count` live subscriptions.
async fn open_socket(
    source: Ipv4Addr,
    server: SocketAddr,
    id: &str,
    count: usize,
) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    let stream = socket.connect(server).await?;
    let mut request = format!("ws://{server}/graphql/ws").into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    // The clients live in this process: keep their buffers small too.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(json!({ "type": "connection_init", "payload": {} })))
        .await?;
    let ack = text(&mut ws).await?;
    if ack["type"] != "connection_ack" {
        bail!("expected connection_ack: {ack}");
    }
    for i in 0..count {
        ws.send(send(json!({ "id": format!("s{i}"), "type": "subscribe", "payload": { "query": SUBSCRIPTION, "variables": { "id": id } } })))
            .await?;
    }
    ws.send(send(json!({ "type": "ping" }))).await?;
    let pong = text(&mut ws).await?;
    if pong["type"] != "pong" {
        bail!("expected pong: {pong}");
    }
    Ok(ws)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

async fn run(o: Options) -> anyhow::Result<()> {
    let nofile = raise_open_files();
    let sockets = o.subscriptions.div_ceil(o.per_socket);
    println!(
        "subscriptions: {} on {sockets} sockets; open-file limit {nofile}",
        o.subscriptions
    );
    if nofile != 0 && (sockets as u64) + 256 > nofile {
        bail!("the open-file limit ({nofile}) is too low for {sockets} sockets; raise the hard limit (ulimit -Hn)");
    }
    let dir = tempfile::tempdir()?;
    let (url, backend) =
        fresh_database(o.pg_url.as_deref(), "convene_bench_ws", dir.path()).await?;
    let db = convene::db::connect_url(&url, 2).await?;
    let server = spawn_convene(
        &o.binary,
        &url,
        &[
            ("CONVENE__MAIL__TRANSPORT", "memory".into()),
            ("CONVENE__JOBS__ENABLED", "false".into()),
            (
                "CONVENE__WEBSOCKET__MAX_CONNECTIONS",
                (sockets + 16).to_string(),
            ),
            (
                "CONVENE__WEBSOCKET__MAX_CONNECTIONS_PER_ADDRESS",
                (sockets + 16).to_string(),
            ),
            ("RUST_LOG", "warn".into()),
        ],
    )?;
    let pid = server.child.id();
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

    use convene::entities::user::Role;
    let official = account(
        &http,
        &server.base,
        &db,
        "official@bench.example",
        Role::Official,
        Profile("official@bench.example", "Bench", "CIVIL_SOCIETY"),
    )
    .await?;
    let supporter = account(
        &http,
        &server.base,
        &db,
        "supporter@bench.example",
        Role::Member,
        Profile("supporter@bench.example", "Bench", "CIVIL_SOCIETY"),
    )
    .await?;
    let d = gql(&http, &server.base, Some(&official), "mutation($i: CreateCommitmentInput!) { createCommitment(input: $i) { commitment { id } } }",
        json!({"i": {"reference": "UK0001", "title": "Live updates", "description": "About live updates.", "actionPlan": "Bench plan", "leadInstitution": "Cabinet Office", "status": "LIMITED"}})).await?;
    let commitment = d["createCommitment"]["commitment"]["id"]
        .as_str()
        .context("commitment")?
        .to_string();
    let d = gql(&http, &server.base, Some(&official), "mutation($i: CreateSuggestionInput!) { createSuggestion(input: $i) { suggestion { id } } }",
        json!({"i": {"commitmentId": commitment, "title": "Publish the register weekly", "body": "As CSV, please."}})).await?;
    let suggestion = d["createSuggestion"]["suggestion"]["id"]
        .as_str()
        .context("suggestion")?
        .to_string();

    let addr = SocketAddr::from(([127, 0, 0, 1], server.port));
    // Warm-up: one socket through a whole event, so the baseline includes the code paths.
    let mut warm = open_socket(Ipv4Addr::LOCALHOST, addr, &suggestion, 1).await?;
    gql(
        &http,
        &server.base,
        Some(&supporter),
        "mutation($id: ID!) { supportSuggestion(id: $id) { suggestion { id } } }",
        json!({ "id": suggestion }),
    )
    .await?;
    let _ = text(&mut warm).await?;
    drop(warm);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kb(pid).context("reading the server's VmRSS")?;

    // Open the sockets.
    let opening = Instant::now();
    let gate = Arc::new(Semaphore::new(OPENING));
    let mut handles = Vec::with_capacity(sockets);
    let mut left = o.subscriptions;
    for i in 0..sockets {
        let count = left.min(o.per_socket);
        left -= count;
        let source = Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(SOURCES)) as u8);
        let gate = gate.clone();
        let suggestion = suggestion.clone();
        handles.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            open_socket(source, addr, &suggestion, count).await
        }));
    }
    let mut opened = Vec::with_capacity(sockets);
    for h in handles {
        opened.push(h.await??);
    }
    let open_time = opening.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kb(pid).context("reading the server's VmRSS")?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / o.subscriptions as f64;
    println!(
        "opened {} subscriptions in {:.1} s; VmRSS {before} kB → {after} kB: {:.1} KiB per subscription",
        o.subscriptions,
        open_time.as_secs_f64(),
        per / 1024.0
    );

    // Readers: each socket reports when each of its pushes arrives.
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Instant, i64)>();
    let mut readers = Vec::with_capacity(opened.len());
    for mut ws in opened {
        let tx = tx.clone();
        readers.push(tokio::spawn(async move {
            let mut seq = 0usize;
            while let Ok(m) = text(&mut ws).await {
                if m["type"] == "next" {
                    let count = m["payload"]["data"]["suggestionUpdated"]["supportCount"]
                        .as_i64()
                        .unwrap_or(-1);
                    seq += 1;
                    if tx.send((seq, Instant::now(), count)).is_err() {
                        break;
                    }
                }
            }
        }));
    }
    drop(tx);

    let mut rows = Vec::new();
    for e in 0..o.events {
        // The warm-up supported it: withdraw, support, withdraw, …
        let (mutation, expected) = if e % 2 == 0 {
            (
                "mutation($id: ID!) { withdrawSupport(id: $id) { suggestion { id } } }",
                0,
            )
        } else {
            (
                "mutation($id: ID!) { supportSuggestion(id: $id) { suggestion { id } } }",
                1,
            )
        };
        let t0 = Instant::now();
        gql(
            &http,
            &server.base,
            Some(&supporter),
            mutation,
            json!({ "id": suggestion }),
        )
        .await?;
        let answered = t0.elapsed();
        let mut arrivals = Vec::with_capacity(o.subscriptions);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while arrivals.len() < o.subscriptions {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((seq, at, count))) => {
                    if seq != e + 1 || count != expected {
                        bail!("push {seq} carried supportCount {count}, expected event {} with {expected}", e + 1);
                    }
                    arrivals.push(at.duration_since(t0));
                }
                Ok(None) => bail!("the sockets ended"),
                Err(_) => bail!(
                    "only {} of {} subscriptions heard event {} within 300 s",
                    arrivals.len(),
                    o.subscriptions,
                    e + 1
                ),
            }
        }
        arrivals.sort();
        println!(
            "event {}: mutation answered in {} ms; first push {} ms, median {} ms, p99 {} ms, all {} in {} ms",
            e + 1,
            ms(answered),
            ms(arrivals[0]),
            ms(percentile(&arrivals, 0.5)),
            ms(percentile(&arrivals, 0.99)),
            o.subscriptions,
            ms(*arrivals.last().unwrap_or(&Duration::ZERO))
        );
        rows.push((answered, arrivals));
    }
    let peak = rss_kb(pid).unwrap_or(0);
    for r in readers {
        r.abort();
    }

    println!();
    let build = if cfg!(debug_assertions) {
        "debug build"
    } else {
        "release build"
    };
    println!("## Subscriptions benchmark ({backend}, {build})");
    println!();
    println!(
        "{} idle `suggestionUpdated` subscriptions, {} per socket ({sockets} sockets), one Convene process.",
        o.subscriptions, o.per_socket
    );
    println!();
    println!("| measure | value |");
    println!("|---|---:|");
    println!("| VmRSS before the sockets | {before} kB |");
    println!("| VmRSS with all subscriptions idle | {after} kB |");
    println!(
        "| resident memory per subscription | {:.1} KiB |",
        per / 1024.0
    );
    println!("| VmRSS after the events | {peak} kB |");
    println!(
        "| time to open all sockets and subscriptions | {:.1} s |",
        open_time.as_secs_f64()
    );
    for (i, (answered, arrivals)) in rows.iter().enumerate() {
        println!(
            "| event {}: mutation answered / first / median / p99 / all reached | {} / {} / {} / {} / {} ms |",
            i + 1,
            ms(*answered),
            ms(arrivals[0]),
            ms(percentile(arrivals, 0.5)),
            ms(percentile(arrivals, 0.99)),
            ms(*arrivals.last().unwrap_or(&Duration::ZERO))
        );
    }
    drop(server);
    db.close().await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let o = options()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(o))
}
