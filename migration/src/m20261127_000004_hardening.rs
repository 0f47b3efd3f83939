//! Hardening against concurrent writers: one milestone per (commitment, position), and a
//! per-claim lease token on outbox rows.

use sea_orm_migration::{prelude::*, schema::*};

use crate::schema_helpers::{asc, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Milestones {
    Table,
    CommitmentId,
    Position,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    LeaseToken,
}

const OLD_INDEX: &str = "idx_milestones_commitment";
const UNIQUE_POSITION: &str = "uq_milestones_commitment_position";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Before this constraint two concurrent addMilestone calls could take the same
        // position; number each commitment's milestones 1..n again (keeping their order, the
        // older first on a tie) so that the unique index can be built on existing data.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE milestones AS m SET position = r.rn \
                 FROM (SELECT id, ROW_NUMBER() OVER \
                         (PARTITION BY commitment_id ORDER BY position, id) AS rn \
                       FROM milestones) AS r \
                 WHERE m.id = r.id AND m.position <> r.rn",
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(OLD_INDEX)
                    .table(Milestones::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(UNIQUE_POSITION)
                    .table(Milestones::Table)
                    .col(Milestones::CommitmentId)
                    .col(Milestones::Position)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(uuid_null(Outbox::LeaseToken))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::LeaseToken)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(UNIQUE_POSITION)
                    .table(Milestones::Table)
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            OLD_INDEX,
            Milestones::Table,
            vec![asc(Milestones::CommitmentId), asc(Milestones::Position)],
        )
        .await
    }
}
