//! Convene's database schema: the one source of truth for both SQLite and PostgreSQL.
//! Every migration has a real `down()`; the test-suite runs them up, down and up again.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_accounts;
mod m20261127_000002_outbox;
mod m20261127_000003_forum;
mod m20261127_000004_hardening;
mod m20261127_000005_groups;
mod m20261127_000006_discussions;
mod m20261127_000007_moderation_log_append_only;
mod m20261127_000008_notifications;
mod m20261127_000009_email_notifications;
mod m20261127_000010_group_channels;
mod m20261127_000011_thread_follows;
mod m20261204_000040_suspension;
mod schema_helpers;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_accounts::Migration),
            Box::new(m20261127_000002_outbox::Migration),
            Box::new(m20261127_000003_forum::Migration),
            Box::new(m20261127_000004_hardening::Migration),
            Box::new(m20261127_000005_groups::Migration),
            Box::new(m20261127_000006_discussions::Migration),
            Box::new(m20261127_000007_moderation_log_append_only::Migration),
            Box::new(m20261127_000008_notifications::Migration),
            Box::new(m20261127_000009_email_notifications::Migration),
            Box::new(m20261127_000010_group_channels::Migration),
            Box::new(m20261127_000011_thread_follows::Migration),
            Box::new(m20261204_000040_suspension::Migration),
        ]
    }
}
