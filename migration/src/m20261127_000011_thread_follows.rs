//! Following a discussion: a person hears of new posts in a thread they follow, as they do
//! in one they posted in. Threads count their followers.

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
enum Threads {
    Table,
    Id,
    FollowerCount,
}

#[derive(DeriveIden)]
enum ThreadFollows {
    Table,
    ThreadId,
    UserId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ThreadFollows::Table)
                    .col(uuid(ThreadFollows::ThreadId))
                    .col(uuid(ThreadFollows::UserId))
                    .col(timestamp_with_time_zone(ThreadFollows::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ThreadFollows::ThreadId)
                            .col(ThreadFollows::UserId),
                    )
                    .foreign_key(&mut fk(
                        "fk_thread_follows_thread",
                        (ThreadFollows::Table, ThreadFollows::ThreadId),
                        (Threads::Table, Threads::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_thread_follows_user",
                        (ThreadFollows::Table, ThreadFollows::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // The threads a person follows (an account's own list, deleting an account).
        index(
            manager,
            "idx_thread_follows_user",
            ThreadFollows::Table,
            vec![asc(ThreadFollows::UserId)],
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Threads::Table)
                    .add_column(integer(Threads::FollowerCount).default(0))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Threads::Table)
                    .drop_column(Threads::FollowerCount)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(ThreadFollows::Table).to_owned())
            .await
    }
}
