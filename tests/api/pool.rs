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

/// Only a server database drops connections; on SQLite there is nothing to drop. Waits for
/// the termination (`pg_terminate_backend` with a timeout), so the statement after it cannot
/// run first.
#[tokio::test]
async fn a_connection_dropped_while_idle_is_replaced_and_a_busy_one_is_not_pinged() {
    if !is_postgres() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database_url(dir.path()).await;
    let idle = Duration::from_millis(500);
    // One connection, so every statement runs on the same one until it is replaced.
    let db = convene::db::connect_url_pinging_after(&url, 1, idle)
        .await
        .expect("connect");
    let admin = convene::db::connect_url(&url, 1).await.expect("connect");
    let terminate = |pid: i32| {
        let admin = &admin;
        async move {
            admin
                .execute_raw(Statement::from_string(
                    admin.get_database_backend(),
                    format!("SELECT pg_terminate_backend({pid}, 5000)"),
                ))
                .await
                .expect("terminate");
        }
    };

    // Dropped by the server, then idle past the threshold: pinged, found dead, replaced.
    let first = backend_pid(&db).await.expect("first statement");
    terminate(first).await;
    tokio::time::sleep(idle * 3).await;
    let second = backend_pid(&db)
        .await
        .expect("an idle dead connection is replaced before use");
    assert_ne!(first, second);

    // Dropped and taken again at once: no ping on the way out, so the statement itself is
    // what finds the connection dead (the price of not pinging every busy connection).
    terminate(second).await;
    assert!(
        backend_pid(&db).await.is_err(),
        "a connection taken straight back is not pinged first"
    );
    // And the pool has let the dead one go: the next statement gets a fresh connection.
    let third = backend_pid(&db).await.expect("a fresh connection");
    assert_ne!(third, second);
}
