//! The moderation log is append-only in the database too: a trigger refuses every UPDATE
//! and DELETE of `moderation_actions`, whoever connects, so the record of who did what
//! cannot be rewritten by a bug or by hand without first dropping the trigger.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const MESSAGE: &str = "the moderation log is append-only";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                conn.execute_unprepared(&format!(
                    "CREATE FUNCTION moderation_actions_append_only() RETURNS trigger AS $$ \
                     BEGIN RAISE EXCEPTION '{MESSAGE}'; END; $$ LANGUAGE plpgsql"
                ))
                .await?;
                conn.execute_unprepared(
                    "CREATE TRIGGER moderation_actions_append_only \
                     BEFORE UPDATE OR DELETE ON moderation_actions \
                     FOR EACH ROW EXECUTE FUNCTION moderation_actions_append_only()",
                )
                .await?;
            }
            _ => {
                for (name, event) in [
                    ("moderation_actions_no_update", "UPDATE"),
                    ("moderation_actions_no_delete", "DELETE"),
                ] {
                    conn.execute_unprepared(&format!(
                        "CREATE TRIGGER {name} BEFORE {event} ON moderation_actions \
                         BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                conn.execute_unprepared(
                    "DROP TRIGGER IF EXISTS moderation_actions_append_only ON moderation_actions",
                )
                .await?;
                conn.execute_unprepared("DROP FUNCTION IF EXISTS moderation_actions_append_only()")
                    .await?;
            }
            _ => {
                conn.execute_unprepared("DROP TRIGGER IF EXISTS moderation_actions_no_update")
                    .await?;
                conn.execute_unprepared("DROP TRIGGER IF EXISTS moderation_actions_no_delete")
                    .await?;
            }
        }
        Ok(())
    }
}
