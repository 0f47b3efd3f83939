//! The migrations run up, down and up again on an empty database of either backend.

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::helpers::*;

const TABLES: [&str; 6] = [
    "users",
    "sessions",
    "refresh_tokens",
    "email_tokens",
    "throttle_buckets",
    "outbox",
];

/// The tables in the database, besides the migrator's own bookkeeping.
async fn tables(db: &DatabaseConnection) -> Vec<String> {
    let sql = if is_postgres() {
        "SELECT table_name::text AS name FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    };
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_string(),
        ))
        .await
        .expect("list tables");
    let mut names: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "name").expect("name"))
        .filter(|n| n != "seaql_migrations")
        .collect();
    names.sort();
    names
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut t: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    t.sort();
    t
}

async fn pending(db: &DatabaseConnection) -> usize {
    Migrator::get_pending_migrations(db)
        .await
        .expect("pending migrations")
        .len()
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = empty_database_url(dir.path()).await;
    let db = convene::db::connect_url(&url, 2).await.expect("connect");
    let all = Migrator::migrations().len();

    assert!(tables(&db).await.is_empty(), "the database is not empty");
    assert_eq!(pending(&db).await, all);

    Migrator::up(&db, None).await.expect("up");
    let created = tables(&db).await;
    for table in TABLES {
        assert!(
            created.iter().any(|t| t == table),
            "{table} was not created: {created:?}"
        );
    }
    assert_eq!(pending(&db).await, 0);

    // The schema is usable: a row goes in, and goes away with its table.
    exec(
        &db,
        "INSERT INTO throttle_buckets (key, failures, window_started_at) \
         VALUES ('k', 1, '2026-01-01T00:00:00Z')",
    )
    .await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM throttle_buckets").await, 1);

    Migrator::down(&db, None).await.expect("down");
    assert_eq!(tables(&db).await, Vec::<String>::new(), "down left tables");
    assert_eq!(pending(&db).await, all);

    Migrator::up(&db, None).await.expect("up again");
    assert_eq!(tables(&db).await, created, "up again made other tables");
    assert_eq!(pending(&db).await, 0);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM throttle_buckets").await,
        0,
        "down must have dropped the data with the tables"
    );
    db.close().await.expect("close");
}

#[tokio::test]
async fn migrations_roll_back_one_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = empty_database_url(dir.path()).await;
    let db = convene::db::connect_url(&url, 2).await.expect("connect");
    let all = Migrator::migrations().len();
    Migrator::up(&db, None).await.expect("up");
    let created = tables(&db).await;

    for step in 1..all {
        Migrator::down(&db, Some(1)).await.expect("down one");
        assert_eq!(pending(&db).await, step);
    }
    // Only the first migration is left: the accounts tables, and nothing else.
    assert_eq!(
        tables(&db).await,
        sorted(&[
            "users",
            "sessions",
            "refresh_tokens",
            "email_tokens",
            "throttle_buckets"
        ])
    );

    Migrator::up(&db, None).await.expect("up");
    assert_eq!(tables(&db).await, created);
    assert_eq!(pending(&db).await, 0);
    db.close().await.expect("close");
}
