use sea_orm_migration::{prelude::*, schema::*};

use crate::schema_helpers::{asc, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    IdempotencyKey,
    Kind,
    Recipient,
    Template,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LastError,
    CreatedAt,
    SentAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(pk_uuid(Outbox::Id))
                    .col(string_len_uniq(Outbox::IdempotencyKey, 400))
                    .col(string_len(Outbox::Kind, 20))
                    .col(string_len(Outbox::Recipient, 320))
                    .col(string_len(Outbox::Template, 60))
                    .col(text(Outbox::Payload))
                    .col(string_len(Outbox::Status, 10))
                    .col(integer(Outbox::Attempts))
                    .col(timestamp_with_time_zone(Outbox::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Outbox::LockedUntil))
                    .col(text_null(Outbox::LastError))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::SentAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_outbox_due",
            Outbox::Table,
            vec![
                asc(Outbox::Status),
                asc(Outbox::Kind),
                asc(Outbox::NextAttemptAt),
            ],
        )
        .await?;
        // For "how many mails did this address get lately" (the per-mailbox cap).
        index(
            manager,
            "idx_outbox_recipient",
            Outbox::Table,
            vec![
                asc(Outbox::Recipient),
                asc(Outbox::Template),
                asc(Outbox::CreatedAt),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await
    }
}
