//! In-app notifications: one row per (event, recipient), written by the outbox worker when
//! it fans out a `notification` outbox row. The unique key on (event_key, recipient_id) is
//! the idempotency key of delivery: a fan-out interrupted and run again inserts only the
//! rows still missing, so nobody hears of one event twice.

use sea_orm_migration::{prelude::*, schema::*};

use crate::schema_helpers::{asc, desc, fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    RecipientId,
    EventKey,
    Kind,
    ActorId,
    SubjectType,
    SubjectId,
    Text,
    CreatedAt,
    ReadAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(pk_uuid(Notifications::Id))
                    .col(uuid(Notifications::RecipientId))
                    .col(string_len(Notifications::EventKey, 300))
                    .col(string_len(Notifications::Kind, 40))
                    .col(uuid_null(Notifications::ActorId))
                    .col(string_len(Notifications::SubjectType, 30))
                    .col(uuid(Notifications::SubjectId))
                    .col(string_len(Notifications::Text, 500))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                    .foreign_key(&mut fk(
                        "fk_notifications_recipient",
                        (Notifications::Table, Notifications::RecipientId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // The idempotency key of delivery: one notification per event and person.
        manager
            .create_index(
                Index::create()
                    .name("uq_notifications_event_recipient")
                    .table(Notifications::Table)
                    .col(Notifications::EventKey)
                    .col(Notifications::RecipientId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A person's list, newest first (ids are UUID v7, so id order is creation order).
        index(
            manager,
            "idx_notifications_recipient_newest",
            Notifications::Table,
            vec![asc(Notifications::RecipientId), desc(Notifications::Id)],
        )
        .await?;
        // The unread count and the unread-only list: a person's rows not yet read.
        index(
            manager,
            "idx_notifications_recipient_unread",
            Notifications::Table,
            vec![
                asc(Notifications::RecipientId),
                asc(Notifications::ReadAt),
                desc(Notifications::Id),
            ],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Notifications::Table).to_owned())
            .await
    }
}
