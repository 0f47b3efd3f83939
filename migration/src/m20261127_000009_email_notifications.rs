//! Email for notifications: each person's preferences (per event group: immediate, daily
//! digest or off; the digest's hour and time zone), the notifications still waiting for a
//! digest, and the deliverability of each address (permanent SMTP failures counted, the
//! address marked undeliverable after too many).

use sea_orm_migration::{prelude::*, schema::*};

use crate::schema_helpers::{asc, fk, index};

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
    RecipientId,
    DigestPending,
    CreatedAt,
}

#[derive(DeriveIden)]
enum NotificationPreferences {
    Table,
    UserId,
    MySuggestions,
    FollowedCommitments,
    Discussions,
    Meetups,
    Moderation,
    DigestHour,
    TimeZone,
    LastDigestOn,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum EmailDeliverability {
    Table,
    UserId,
    PermanentFailures,
    LastError,
    LastFailureAt,
    UndeliverableSince,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per person who changed anything; a person without a row has the defaults.
        manager
            .create_table(
                Table::create()
                    .table(NotificationPreferences::Table)
                    .col(pk_uuid(NotificationPreferences::UserId))
                    .col(string_len(NotificationPreferences::MySuggestions, 20))
                    .col(string_len(NotificationPreferences::FollowedCommitments, 20))
                    .col(string_len(NotificationPreferences::Discussions, 20))
                    .col(string_len(NotificationPreferences::Meetups, 20))
                    .col(string_len(NotificationPreferences::Moderation, 20))
                    // Null: the site's `notifications.digest_hour`.
                    .col(integer_null(NotificationPreferences::DigestHour))
                    .col(string_len(NotificationPreferences::TimeZone, 64))
                    // The local date (YYYY-MM-DD) of the last digest sent.
                    .col(string_len_null(NotificationPreferences::LastDigestOn, 10))
                    .col(timestamp_with_time_zone(NotificationPreferences::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_notification_preferences_user",
                        (
                            NotificationPreferences::Table,
                            NotificationPreferences::UserId,
                        ),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // A notification whose email waits for the recipient's daily digest.
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .add_column(boolean(Notifications::DigestPending).default(false))
                    .to_owned(),
            )
            .await?;
        // The digest run reads only the people with something pending.
        index(
            manager,
            "idx_notifications_digest_pending",
            Notifications::Table,
            vec![
                asc(Notifications::DigestPending),
                asc(Notifications::RecipientId),
                asc(Notifications::CreatedAt),
            ],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(EmailDeliverability::Table)
                    .col(pk_uuid(EmailDeliverability::UserId))
                    .col(integer(EmailDeliverability::PermanentFailures).default(0))
                    .col(string_len_null(EmailDeliverability::LastError, 500))
                    .col(timestamp_with_time_zone_null(
                        EmailDeliverability::LastFailureAt,
                    ))
                    .col(timestamp_with_time_zone_null(
                        EmailDeliverability::UndeliverableSince,
                    ))
                    .foreign_key(&mut fk(
                        "fk_email_deliverability_user",
                        (EmailDeliverability::Table, EmailDeliverability::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EmailDeliverability::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_notifications_digest_pending")
                    .table(Notifications::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .drop_column(Notifications::DigestPending)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(NotificationPreferences::Table)
                    .to_owned(),
            )
            .await
    }
}
