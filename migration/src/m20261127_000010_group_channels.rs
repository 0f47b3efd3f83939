//! Working groups' chat channels: one Slack-compatible incoming webhook per group, to which
//! new meet-ups, their outcomes, new threads and official responses on linked commitments
//! are posted. The webhook URL is a secret (it alone lets anyone post to the channel).

use sea_orm_migration::{prelude::*, schema::*};

use crate::schema_helpers::fk;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum WorkingGroups {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum GroupChannels {
    Table,
    WorkingGroupId,
    WebhookUrl,
    ConnectedAt,
    ConnectedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per connected group; disconnecting deletes it.
        manager
            .create_table(
                Table::create()
                    .table(GroupChannels::Table)
                    .col(pk_uuid(GroupChannels::WorkingGroupId))
                    .col(string_len(GroupChannels::WebhookUrl, 2048))
                    .col(timestamp_with_time_zone(GroupChannels::ConnectedAt))
                    // Null once the organiser who connected it is gone.
                    .col(uuid_null(GroupChannels::ConnectedBy))
                    .foreign_key(&mut fk(
                        "fk_group_channels_group",
                        (GroupChannels::Table, GroupChannels::WorkingGroupId),
                        (WorkingGroups::Table, WorkingGroups::Id),
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_group_channels_connected_by")
                            .from(GroupChannels::Table, GroupChannels::ConnectedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GroupChannels::Table).to_owned())
            .await
    }
}
