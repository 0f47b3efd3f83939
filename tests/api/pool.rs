//! The database pool pings a connection on its way out only after it sat idle
//! (`db::connect_url`): a connection the server dropped while idle is replaced unseen, and
//! a busy one goes straight to its statement, without a round trip of its own.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::helpers::*;

async fn backend_pid(db: &DatabaseConnection) -> Result<i32, sea_orm::DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT pg_backend_pid() AS pid",
        ))
        .await?
        .expect("a row");
    row.try_get("", "pid")
}

/// Waits until the pool's one connection is back in it, idle: sqlx pings a connection when
/// it comes back, and a termination during that ping would close it there instead.
async fn back_in_pool(db: &DatabaseConnection) {
    let pool = db.get_postgres_connection_pool();
    for _ in 0..500 {
        if pool.num_idle() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the connection did not come back to the pool");
}

/// Terminates a backend and waits until it is gone (`pg_terminate_backend` with a
/// timeout), so the statement after it cannot run first.
async fn terminate(admin: &DatabaseConnection, pid: i32) {
    admin
        .execute_raw(Statement::from_string(
            admin.get_database_backend(),
            format!("SELECT pg_terminate_backend({pid}, 5000)"),
        ))
        .await
        .expect("terminate");
}

/// Only a server database drops connections; on SQLite there is nothing to drop. Each pool
/// holds one connection, so every statement runs on the same one until it is replaced.
#[tokio::test]
async fn a_connection_dropped_while_idle_is_replaced_and_a_busy_one_is_not_pinged() {
    if !is_postgres() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database_url(dir.path()).await;
    let admin = convene::db::connect_url(&url, 1).await.expect("connect");

    // Dropped by the server, then idle past the threshold: pinged, found dead, replaced.
    let idle = Duration::from_millis(200);
    let db = convene::db::connect_url_pinging_after(&url, 1, idle)
        .await
        .expect("connect");
    let first = backend_pid(&db).await.expect("first statement");
    back_in_pool(&db).await;
    terminate(&admin, first).await;
    tokio::time::sleep(idle * 5).await;
    let second = backend_pid(&db)
        .await
        .expect("an idle dead connection is replaced before use");
    assert_ne!(first, second);

    // Dropped and taken again well within the threshold: no ping on the way out, so the
    // statement itself is what finds the connection dead (the price of not pinging).
    let db = convene::db::connect_url_pinging_after(&url, 1, Duration::from_secs(3600))
        .await
        .expect("connect");
    let busy = backend_pid(&db).await.expect("first statement");
    back_in_pool(&db).await;
    terminate(&admin, busy).await;
    assert!(
        backend_pid(&db).await.is_err(),
        "a connection taken straight back is not pinged first"
    );
    // And the pool has let the dead one go: the next statement gets a fresh connection.
    let fresh = backend_pid(&db).await.expect("a fresh connection");
    assert_ne!(fresh, busy);
}
