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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_started_together_migrate_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = empty_database_url(dir.path()).await;
    let build = || {
        let mut settings = test_settings();
        settings.database.url = secrecy::SecretString::from(url.clone());
        settings.mail.file_dir = dir.path().join("mail");
        convene::Application::build(settings)
    };
    let (a, b, c) = futures::join!(build(), build(), build());
    let apps = [
        a.expect("first instance"),
        b.expect("second instance"),
        c.expect("third instance"),
    ];
    let db = apps[0].db();
    assert_eq!(pending(&db).await, 0);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM seaql_migrations").await,
        Migrator::migrations().len() as i64,
        "each migration recorded once"
    );
    for app in &apps {
        assert!(convene::db::ready(&app.db()).await);
    }
}

#[tokio::test]
async fn the_hardening_migration_renumbers_clashing_milestones_and_keeps_them_unique() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = empty_database_url(dir.path()).await;
    let db = convene::db::connect_url(&url, 2).await.expect("connect");
    let before_hardening = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261127_000004_hardening")
        .expect("the hardening migration") as u32;
    Migrator::up(&db, Some(before_hardening))
        .await
        .expect("up to the forum");
    exec(
        &db,
        "INSERT INTO commitments (id, reference, title, description, action_plan, \
         lead_institution, policy_area, status, follower_count, created_at, updated_at) \
         VALUES ('00000000-0000-7000-8000-000000000001', 'UK0072', 'Involving data users', \
         '', '', '', '', 'NOT_STARTED', 0, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
    )
    .await;
    // Two concurrent addMilestone calls used to take position 2 both.
    for (n, position) in [(1, 1), (2, 2), (3, 2), (4, 3)] {
        exec(
            &db,
            &format!(
                "INSERT INTO milestones (id, commitment_id, position, title, description, \
                 status, created_at, updated_at) VALUES ('00000000-0000-7000-8000-00000000010{n}', \
                 '00000000-0000-7000-8000-000000000001', {position}, 'Step {n}', '', \
                 'NOT_STARTED', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
            ),
        )
        .await;
    }

    Migrator::up(&db, None).await.expect("up");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT title, position FROM milestones ORDER BY position".to_string(),
        ))
        .await
        .expect("read milestones");
    let order: Vec<(String, i32)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "title").expect("title"),
                r.try_get::<i32>("", "position").expect("position"),
            )
        })
        .collect();
    assert_eq!(
        order,
        [("Step 1", 1), ("Step 2", 2), ("Step 3", 3), ("Step 4", 4)]
            .map(|(t, p)| (t.to_string(), p))
    );
    let clash = "INSERT INTO milestones (id, commitment_id, position, title, description, \
         status, created_at, updated_at) VALUES ('00000000-0000-7000-8000-000000000199', \
         '00000000-0000-7000-8000-000000000001', 4, 'Clash', '', 'NOT_STARTED', \
         '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')";
    let refused = db
        .execute_unprepared(clash)
        .await
        .expect_err("a second position 4");
    assert!(
        matches!(
            refused.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ),
        "{refused}"
    );

    // Down lets the old shape back, and up again works on what it left.
    let after_hardening = Migrator::migrations().len() as u32 - before_hardening - 1;
    Migrator::down(&db, Some(after_hardening + 1))
        .await
        .expect("down to the forum");
    exec(&db, clash).await;
    exec(&db, "DELETE FROM milestones WHERE title = 'Clash'").await;
    Migrator::up(&db, None).await.expect("up again");
    assert_eq!(pending(&db).await, 0);
    db.close().await.expect("close");
}

#[tokio::test]
async fn the_discussions_migration_gives_every_existing_suggestion_its_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = empty_database_url(dir.path()).await;
    let db = convene::db::connect_url(&url, 2).await.expect("connect");
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261127_000006_discussions")
        .expect("the discussions migration") as u32;
    Migrator::up(&db, Some(before))
        .await
        .expect("up to the groups");
    // UUIDs as each backend stores them: text on PostgreSQL, 16 bytes on SQLite.
    let id = |hex: &str| {
        if is_postgres() {
            format!("'{}'", uuid::Uuid::parse_str(hex).expect("uuid"))
        } else {
            format!("X'{hex}'")
        }
    };
    let ann = id("00000000000070008000000000000002");
    let commitment = id("00000000000070008000000000000001");
    exec(
        &db,
        &format!(
            "INSERT INTO users (id, email, email_normalized, password_hash, display_name, bio, \
         organisation, sector, role, email_verified_at, created_at, updated_at) VALUES \
         ({ann}, 'ann@example.org', 'ann@example.org', 'x', \
         'Ann', '', '', 'INDIVIDUAL', 'MEMBER', '2026-01-01T00:00:00Z', \
         '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
        ),
    )
    .await;
    exec(
        &db,
        &format!(
            "INSERT INTO commitments (id, reference, title, description, action_plan, \
         lead_institution, policy_area, status, follower_count, created_at, updated_at) \
         VALUES ({commitment}, 'UK0072', 'Involving data users', \
         '', '', '', '', 'NOT_STARTED', 0, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
        ),
    )
    .await;
    for n in 1..=3 {
        exec(
            &db,
            &format!(
                "INSERT INTO suggestions (id, commitment_id, author_id, title, body, body_html, \
                 status, support_count, follower_count, trending_score, awaiting_response, \
                 created_at, updated_at) VALUES ({}, {commitment}, {ann}, \
                 'Older suggestion {n}', 'b', '<p>b</p>', 'SUBMITTED', 0, 1, 0, true, \
                 '2026-01-0{n}T00:00:00Z', '2026-01-0{n}T00:00:00Z')",
                id(&format!("000000000000700080000000000003{n:02}"))
            ),
        )
        .await;
    }

    Migrator::up(&db, None).await.expect("up");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(DISTINCT suggestion_id) FROM threads WHERE context = 'SUGGESTION' \
             AND title LIKE 'Older suggestion %' AND author_id IS NOT NULL \
             AND commitment_id IS NOT NULL AND post_count = 0"
        )
        .await,
        3,
        "each older suggestion has its own thread"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM threads").await, 3);
    db.close().await.expect("close");
}
