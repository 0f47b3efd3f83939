//! Working groups, their members and linked commitments; meet-ups, RSVPs with an ordered
//! waitlist, and the outcomes a meet-up publishes, which join the public record.

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
enum Commitments {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum WorkingGroups {
    Table,
    Id,
    Slug,
    Name,
    Description,
    DescriptionHtml,
    Kind,
    Visibility,
    JoinPolicy,
    OutcomesPublic,
    MemberCount,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WorkingGroupCommitments {
    Table,
    WorkingGroupId,
    CommitmentId,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
    WorkingGroupId,
    UserId,
    Role,
    Status,
    InvitedBy,
    CalendarKeyVersion,
    JoinedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Meetups {
    Table,
    Id,
    WorkingGroupId,
    Title,
    Agenda,
    AgendaHtml,
    StartsAt,
    EndsAt,
    TimeZone,
    Venue,
    Address,
    OnlineUrl,
    Capacity,
    GoingCount,
    WaitlistCount,
    NextWaitlistSeq,
    Status,
    CancelReason,
    Sequence,
    RemindedAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Rsvps {
    Table,
    MeetupId,
    UserId,
    Status,
    WaitlistSeq,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MeetupOutcomes {
    Table,
    Id,
    MeetupId,
    WorkingGroupId,
    Summary,
    SummaryHtml,
    Decisions,
    Public,
    PublishedBy,
    PublishedAt,
}

#[derive(DeriveIden)]
enum Outcomes {
    Table,
    MeetupOutcomeId,
    Public,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WorkingGroups::Table)
                    .col(pk_uuid(WorkingGroups::Id))
                    .col(string_len_uniq(WorkingGroups::Slug, 80))
                    .col(string_len(WorkingGroups::Name, 200))
                    .col(text(WorkingGroups::Description))
                    .col(text(WorkingGroups::DescriptionHtml))
                    .col(string_len(WorkingGroups::Kind, 20))
                    .col(string_len(WorkingGroups::Visibility, 10))
                    .col(string_len(WorkingGroups::JoinPolicy, 10))
                    .col(boolean(WorkingGroups::OutcomesPublic))
                    .col(integer(WorkingGroups::MemberCount).default(0))
                    .col(uuid(WorkingGroups::CreatedBy))
                    .col(timestamp_with_time_zone(WorkingGroups::CreatedAt))
                    .col(timestamp_with_time_zone(WorkingGroups::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_working_groups_creator",
                        (WorkingGroups::Table, WorkingGroups::CreatedBy),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WorkingGroupCommitments::Table)
                    .col(uuid(WorkingGroupCommitments::WorkingGroupId))
                    .col(uuid(WorkingGroupCommitments::CommitmentId))
                    .primary_key(
                        Index::create()
                            .col(WorkingGroupCommitments::WorkingGroupId)
                            .col(WorkingGroupCommitments::CommitmentId),
                    )
                    .foreign_key(&mut fk(
                        "fk_wgc_group",
                        (
                            WorkingGroupCommitments::Table,
                            WorkingGroupCommitments::WorkingGroupId,
                        ),
                        (WorkingGroups::Table, WorkingGroups::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_wgc_commitment",
                        (
                            WorkingGroupCommitments::Table,
                            WorkingGroupCommitments::CommitmentId,
                        ),
                        (Commitments::Table, Commitments::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_wgc_commitment",
            WorkingGroupCommitments::Table,
            vec![
                asc(WorkingGroupCommitments::CommitmentId),
                asc(WorkingGroupCommitments::WorkingGroupId),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(pk_uuid(Memberships::Id))
                    .col(uuid(Memberships::WorkingGroupId))
                    .col(uuid(Memberships::UserId))
                    .col(string_len(Memberships::Role, 20))
                    .col(string_len(Memberships::Status, 20))
                    .col(uuid_null(Memberships::InvitedBy))
                    .col(integer(Memberships::CalendarKeyVersion).default(0))
                    .col(timestamp_with_time_zone_null(Memberships::JoinedAt))
                    .col(timestamp_with_time_zone(Memberships::CreatedAt))
                    .col(timestamp_with_time_zone(Memberships::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_memberships_group",
                        (Memberships::Table, Memberships::WorkingGroupId),
                        (WorkingGroups::Table, WorkingGroups::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_memberships_user",
                        (Memberships::Table, Memberships::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_memberships_group_user")
                    .table(Memberships::Table)
                    .col(Memberships::WorkingGroupId)
                    .col(Memberships::UserId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_memberships_user",
            Memberships::Table,
            vec![asc(Memberships::UserId), asc(Memberships::WorkingGroupId)],
        )
        .await?;
        index(
            manager,
            "idx_memberships_group_status",
            Memberships::Table,
            vec![
                asc(Memberships::WorkingGroupId),
                asc(Memberships::Status),
                asc(Memberships::Id),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Meetups::Table)
                    .col(pk_uuid(Meetups::Id))
                    .col(uuid(Meetups::WorkingGroupId))
                    .col(string_len(Meetups::Title, 300))
                    .col(text(Meetups::Agenda))
                    .col(text(Meetups::AgendaHtml))
                    .col(timestamp_with_time_zone(Meetups::StartsAt))
                    .col(timestamp_with_time_zone(Meetups::EndsAt))
                    .col(string_len(Meetups::TimeZone, 64))
                    .col(string_len_null(Meetups::Venue, 300))
                    .col(string_len_null(Meetups::Address, 500))
                    .col(text_null(Meetups::OnlineUrl))
                    .col(integer_null(Meetups::Capacity))
                    .col(integer(Meetups::GoingCount).default(0))
                    .col(integer(Meetups::WaitlistCount).default(0))
                    .col(big_integer(Meetups::NextWaitlistSeq).default(1))
                    .col(string_len(Meetups::Status, 20))
                    .col(text_null(Meetups::CancelReason))
                    .col(integer(Meetups::Sequence).default(0))
                    .col(timestamp_with_time_zone_null(Meetups::RemindedAt))
                    .col(uuid(Meetups::CreatedBy))
                    .col(timestamp_with_time_zone(Meetups::CreatedAt))
                    .col(timestamp_with_time_zone(Meetups::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_meetups_group",
                        (Meetups::Table, Meetups::WorkingGroupId),
                        (WorkingGroups::Table, WorkingGroups::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_meetups_creator",
                        (Meetups::Table, Meetups::CreatedBy),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_meetups_group_start",
            Meetups::Table,
            vec![
                asc(Meetups::WorkingGroupId),
                asc(Meetups::StartsAt),
                asc(Meetups::Id),
            ],
        )
        .await?;
        index(
            manager,
            "idx_meetups_start",
            Meetups::Table,
            vec![asc(Meetups::StartsAt), asc(Meetups::Id)],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Rsvps::Table)
                    .col(uuid(Rsvps::MeetupId))
                    .col(uuid(Rsvps::UserId))
                    .col(string_len(Rsvps::Status, 20))
                    .col(big_integer_null(Rsvps::WaitlistSeq))
                    .col(timestamp_with_time_zone(Rsvps::CreatedAt))
                    .col(timestamp_with_time_zone(Rsvps::UpdatedAt))
                    .primary_key(Index::create().col(Rsvps::MeetupId).col(Rsvps::UserId))
                    .foreign_key(&mut fk(
                        "fk_rsvps_meetup",
                        (Rsvps::Table, Rsvps::MeetupId),
                        (Meetups::Table, Meetups::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_rsvps_user",
                        (Rsvps::Table, Rsvps::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_rsvps_waitlist",
            Rsvps::Table,
            vec![
                asc(Rsvps::MeetupId),
                asc(Rsvps::Status),
                asc(Rsvps::WaitlistSeq),
            ],
        )
        .await?;
        index(
            manager,
            "idx_rsvps_user",
            Rsvps::Table,
            vec![asc(Rsvps::UserId), asc(Rsvps::MeetupId)],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(MeetupOutcomes::Table)
                    .col(pk_uuid(MeetupOutcomes::Id))
                    .col(uuid_uniq(MeetupOutcomes::MeetupId))
                    .col(uuid(MeetupOutcomes::WorkingGroupId))
                    .col(text(MeetupOutcomes::Summary))
                    .col(text(MeetupOutcomes::SummaryHtml))
                    .col(text(MeetupOutcomes::Decisions))
                    .col(boolean(MeetupOutcomes::Public))
                    .col(uuid(MeetupOutcomes::PublishedBy))
                    .col(timestamp_with_time_zone(MeetupOutcomes::PublishedAt))
                    .foreign_key(&mut fk(
                        "fk_meetup_outcomes_meetup",
                        (MeetupOutcomes::Table, MeetupOutcomes::MeetupId),
                        (Meetups::Table, Meetups::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_meetup_outcomes_group",
                        (MeetupOutcomes::Table, MeetupOutcomes::WorkingGroupId),
                        (WorkingGroups::Table, WorkingGroups::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        // A meet-up's outcome enters the public record beside official responses. It is one
        // row whatever the number of linked commitments (commitment_id stays null); filtering
        // by commitment reaches it through the group's links. `public` is false for a private
        // group's minutes that the organisers have not published.
        manager
            .alter_table(
                Table::alter()
                    .table(Outcomes::Table)
                    .add_column(uuid_null(Outcomes::MeetupOutcomeId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outcomes::Table)
                    .add_column(boolean(Outcomes::Public).default(true))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_outcomes_meetup_outcome",
            Outcomes::Table,
            vec![asc(Outcomes::MeetupOutcomeId)],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_outcomes_meetup_outcome")
                    .table(Outcomes::Table)
                    .to_owned(),
            )
            .await?;
        // Meet-up outcomes leave the record with their table.
        manager
            .get_connection()
            .execute_unprepared("DELETE FROM outcomes WHERE meetup_outcome_id IS NOT NULL")
            .await?;
        for column in [Outcomes::Public, Outcomes::MeetupOutcomeId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Outcomes::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for table in [
            MeetupOutcomes::Table.into_iden(),
            Rsvps::Table.into_iden(),
            Meetups::Table.into_iden(),
            Memberships::Table.into_iden(),
            WorkingGroupCommitments::Table.into_iden(),
            WorkingGroups::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
