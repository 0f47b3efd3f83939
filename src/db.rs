//! Connecting to SQLite or PostgreSQL, migrating, and starting write transactions.

use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, QueryResult, RuntimeErr, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;

pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    connect_url(settings.url.expose_secret(), settings.pool_size).await
}

/// How long a pooled connection may sit idle before it is pinged on its way out of the pool.
pub const POOL_PING_AFTER_IDLE: Duration = Duration::from_secs(10);

pub async fn connect_url(url: &str, pool_size: u32) -> Result<DatabaseConnection, DbErr> {
    connect_url_pinging_after(url, pool_size, POOL_PING_AFTER_IDLE).await
}

/// [`connect_url`], pinging a connection taken from the pool once it has been idle for
/// `ping_after_idle` (tests shorten it).
pub async fn connect_url_pinging_after(
    url: &str,
    pool_size: u32,
    ping_after_idle: Duration,
) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(pool_size.max(1))
        .min_connections(0)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        // A connection taken from the pool is pinged first only when it has been idle a
        // while (when a server restart, a proxy or a firewall may have dropped it), not on
        // every request: under load that ping was a third of each page's round trips to
        // PostgreSQL. sqlx still checks every connection when it comes back.
        .test_before_acquire_if_idle_for(ping_after_idle)
        .sqlx_logging(false);
    // WAL lets readers proceed beside the one writer; foreign keys are off by default in
    // SQLite; the busy timeout makes a second writer wait instead of failing.
    opts.map_sqlx_sqlite_opts(|o| {
        o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .foreign_keys(true)
            .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
    });
    // Turning a new SQLite file to WAL takes its lock without waiting on the busy timeout:
    // instances started together on a fresh file can find it taken. The mode is then set
    // by whoever got there first, so trying again shortly succeeds.
    let mut attempt = 0u64;
    loop {
        match Database::connect(opts.clone()).await {
            Err(e) if attempt < 20 && is_sqlite_busy(&e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(25 * attempt)).await;
            }
            done => return done,
        }
    }
}

/// SQLite's "database is locked" (`SQLITE_BUSY`).
fn is_sqlite_busy(e: &DbErr) -> bool {
    let text = e.to_string();
    text.contains("database is locked") || text.contains("(code: 5)")
}

/// The PostgreSQL advisory lock key every Convene instance takes while migrating ("convene"
/// in ASCII); any fixed number would do, as long as all instances agree on it.
pub const MIGRATION_LOCK_KEY: i64 = 0x63_6f_6e_76_65_6e_65;

/// What to do to the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationStep {
    /// Apply every pending migration.
    Up,
    /// Roll back this many of the applied migrations, newest first.
    Down(u32),
    /// Drop everything and migrate from scratch.
    Fresh,
}

/// Applies every pending migration (see [`run_migrations`]).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    run_migrations(db, MigrationStep::Up).await
}

/// Changes the schema with one instance at a time. Several instances started together on a
/// fresh PostgreSQL database would otherwise all create the same tables and types, and all
/// but one fail (`duplicate key value violates unique constraint "pg_type_typname_nsp_index"`).
/// On PostgreSQL the whole run is one transaction holding an advisory lock: the next instance
/// waits for it, then finds nothing pending; the lock ends with the transaction, even when a
/// migration fails, so a crashed instance cannot leave it held. On SQLite a `BEGIN IMMEDIATE`
/// transaction takes the database's one write lock, which does the same.
pub async fn run_migrations(db: &DatabaseConnection, step: MigrationStep) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    // `PRAGMA foreign_keys = OFF`, which dropping every SQLite table needs, does nothing
    // inside a transaction.
    if backend == DbBackend::Sqlite && step == MigrationStep::Fresh {
        return Migrator::fresh(db).await;
    }
    let tx = begin_write(db).await?;
    if backend == DbBackend::Postgres {
        tx.execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT pg_advisory_xact_lock($1)",
            [MIGRATION_LOCK_KEY.into()],
        ))
        .await?;
    }
    match step {
        MigrationStep::Up => Migrator::up(&tx, None).await?,
        MigrationStep::Down(steps) => Migrator::down(&tx, Some(steps)).await?,
        MigrationStep::Fresh => Migrator::fresh(&tx).await?,
    }
    tx.commit().await
}

/// True when the database answers and no migration is pending. Reads only: a health check
/// must not create the migrator's table behind a running migration's back.
pub async fn ready(db: &DatabaseConnection) -> bool {
    if db.ping().await.is_err() {
        return false;
    }
    matches!(Migrator::get_pending_migrations_read_only(db).await, Ok(p) if p.is_empty())
}

/// Starts a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of one failing
/// when it upgrades from reading to writing.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    if db.get_database_backend() == DbBackend::Sqlite {
        db.begin_with_options(TransactionOptions {
            isolation_level: None,
            access_mode: None,
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        })
        .await
    } else {
        db.begin().await
    }
}

/// Now, at the microsecond precision both databases keep.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DurationRound::duration_trunc(now, chrono::Duration::microseconds(1)).unwrap_or(now)
}

/// Sees each statement [`query_all`] runs. sea-orm's metric callback sees the statements
/// run through sea-orm, but not these, so whoever counts statements (the tests' statement
/// budgets) sets both.
#[derive(Clone, Default)]
pub struct StatementHook(Option<Arc<SeeStatement>>);

type SeeStatement = dyn Fn(&Statement) + Send + Sync;

impl StatementHook {
    pub fn new(hook: impl Fn(&Statement) + Send + Sync + 'static) -> Self {
        StatementHook(Some(Arc::new(hook)))
    }
}

/// A read statement's rows, run on sqlx's pool directly rather than through sea-orm's
/// `query_all_raw`. The result is the same; the way there is not: sea-orm's future holds
/// every backend's query future at once and is moved, by value, three times a statement
/// (about 45 KB of copies a page, measured with callgrind), and a page runs one statement,
/// so that is a good part of its own cost. Only for statements whose text is built by
/// sea-query (the values are bound as sea-orm binds them).
pub async fn query_all(
    db: &DatabaseConnection,
    hook: &StatementHook,
    stmt: Statement,
) -> Result<Vec<QueryResult>, DbErr> {
    if let Some(hook) = &hook.0 {
        hook(&stmt);
    }
    let values = sea_query_sqlx::SqlxValues(
        stmt.values
            .unwrap_or_else(|| sea_orm::sea_query::Values(Vec::new())),
    );
    let query = sea_orm::sqlx::AssertSqlSafe(stmt.sql);
    let failed = |e| DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)));
    // Boxed once, so the caller's future holds a pointer rather than the query's state.
    // The connection's own backend picks the pool (its getters panic on the other one).
    match db.get_database_backend() {
        DbBackend::Postgres => Box::pin(
            sea_orm::sqlx::query_with(query, values).fetch_all(db.get_postgres_connection_pool()),
        )
        .await
        .map(|rows| rows.into_iter().map(QueryResult::from).collect())
        .map_err(failed),
        DbBackend::Sqlite => Box::pin(
            sea_orm::sqlx::query_with(query, values).fetch_all(db.get_sqlite_connection_pool()),
        )
        .await
        .map(|rows| rows.into_iter().map(QueryResult::from).collect())
        .map_err(failed),
        other => Err(DbErr::Custom(format!(
            "{other:?} is not a database Convene runs on"
        ))),
    }
}
