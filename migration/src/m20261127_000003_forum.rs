//! Commitments, milestones, suggestions with revisions, supports, follows, official
//! responses and the public outcome log.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261127_000001_accounts::Users;
use crate::schema_helpers::{asc, desc, fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Commitments {
    Table,
    Id,
    Reference,
    Title,
    Description,
    ActionPlan,
    LeadInstitution,
    PolicyArea,
    Status,
    FollowerCount,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Milestones {
    Table,
    Id,
    CommitmentId,
    Position,
    Title,
    Description,
    DueOn,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CommitmentFollows {
    Table,
    CommitmentId,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Suggestions {
    Table,
    Id,
    CommitmentId,
    AuthorId,
    Title,
    Body,
    BodyHtml,
    Status,
    SupportCount,
    FollowerCount,
    TrendingScore,
    AwaitingResponse,
    RespondedAt,
    DuplicateOfId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SuggestionRevisions {
    Table,
    Id,
    SuggestionId,
    Title,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Supports {
    Table,
    SuggestionId,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SuggestionFollows {
    Table,
    SuggestionId,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OfficialResponses {
    Table,
    Id,
    SuggestionId,
    CommitmentId,
    AuthorId,
    Body,
    BodyHtml,
    PreviousStatus,
    NewStatus,
    DuplicateOfId,
    PublishedAt,
}

#[derive(DeriveIden)]
enum Outcomes {
    Table,
    Id,
    Kind,
    ResponseId,
    CommitmentId,
    PublishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Commitments::Table)
                    .col(pk_uuid(Commitments::Id))
                    .col(string_len_uniq(Commitments::Reference, 40))
                    .col(string_len(Commitments::Title, 300))
                    .col(text(Commitments::Description))
                    .col(string_len(Commitments::ActionPlan, 300))
                    .col(string_len(Commitments::LeadInstitution, 300))
                    .col(string_len(Commitments::PolicyArea, 200).default(""))
                    .col(string_len(Commitments::Status, 20))
                    .col(integer(Commitments::FollowerCount).default(0))
                    .col(timestamp_with_time_zone(Commitments::CreatedAt))
                    .col(timestamp_with_time_zone(Commitments::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_commitments_status",
            Commitments::Table,
            vec![asc(Commitments::Status), asc(Commitments::Reference)],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Milestones::Table)
                    .col(pk_uuid(Milestones::Id))
                    .col(uuid(Milestones::CommitmentId))
                    .col(integer(Milestones::Position))
                    .col(string_len(Milestones::Title, 1000))
                    .col(text(Milestones::Description))
                    .col(date_null(Milestones::DueOn))
                    .col(string_len(Milestones::Status, 20))
                    .col(timestamp_with_time_zone(Milestones::CreatedAt))
                    .col(timestamp_with_time_zone(Milestones::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_milestones_commitment",
                        (Milestones::Table, Milestones::CommitmentId),
                        (Commitments::Table, Commitments::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_milestones_commitment",
            Milestones::Table,
            vec![asc(Milestones::CommitmentId), asc(Milestones::Position)],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(CommitmentFollows::Table)
                    .col(uuid(CommitmentFollows::CommitmentId))
                    .col(uuid(CommitmentFollows::UserId))
                    .col(timestamp_with_time_zone(CommitmentFollows::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(CommitmentFollows::CommitmentId)
                            .col(CommitmentFollows::UserId),
                    )
                    .foreign_key(&mut fk(
                        "fk_commitment_follows_commitment",
                        (CommitmentFollows::Table, CommitmentFollows::CommitmentId),
                        (Commitments::Table, Commitments::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_commitment_follows_user",
                        (CommitmentFollows::Table, CommitmentFollows::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_commitment_follows_user",
            CommitmentFollows::Table,
            vec![asc(CommitmentFollows::UserId)],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Suggestions::Table)
                    .col(pk_uuid(Suggestions::Id))
                    .col(uuid(Suggestions::CommitmentId))
                    .col(uuid(Suggestions::AuthorId))
                    .col(string_len(Suggestions::Title, 200))
                    .col(text(Suggestions::Body))
                    .col(text(Suggestions::BodyHtml))
                    .col(string_len(Suggestions::Status, 20))
                    .col(integer(Suggestions::SupportCount).default(0))
                    .col(integer(Suggestions::FollowerCount).default(0))
                    .col(integer(Suggestions::TrendingScore).default(0))
                    .col(boolean(Suggestions::AwaitingResponse))
                    .col(timestamp_with_time_zone_null(Suggestions::RespondedAt))
                    .col(uuid_null(Suggestions::DuplicateOfId))
                    .col(timestamp_with_time_zone(Suggestions::CreatedAt))
                    .col(timestamp_with_time_zone(Suggestions::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_suggestions_commitment",
                        (Suggestions::Table, Suggestions::CommitmentId),
                        (Commitments::Table, Commitments::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_suggestions_author",
                        (Suggestions::Table, Suggestions::AuthorId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_suggestions_duplicate_of")
                            .from(Suggestions::Table, Suggestions::DuplicateOfId)
                            .to(Suggestions::Table, Suggestions::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // One index per ordering, with and without the commitment filter, so every page is
        // an index scan (see README, "Benchmarks").
        use Suggestions as S;
        index(
            manager,
            "idx_suggestions_commitment_new",
            S::Table,
            vec![asc(S::CommitmentId), desc(S::Id)],
        )
        .await?;
        index(
            manager,
            "idx_suggestions_commitment_top",
            S::Table,
            vec![asc(S::CommitmentId), desc(S::SupportCount), desc(S::Id)],
        )
        .await?;
        index(
            manager,
            "idx_suggestions_commitment_trending",
            S::Table,
            vec![asc(S::CommitmentId), desc(S::TrendingScore), desc(S::Id)],
        )
        .await?;
        index(
            manager,
            "idx_suggestions_commitment_waiting",
            S::Table,
            vec![asc(S::CommitmentId), asc(S::AwaitingResponse), asc(S::Id)],
        )
        .await?;
        index(
            manager,
            "idx_suggestions_top",
            S::Table,
            vec![desc(S::SupportCount), desc(S::Id)],
        )
        .await?;
        index(
            manager,
            "idx_suggestions_trending",
            S::Table,
            vec![desc(S::TrendingScore), desc(S::Id)],
        )
        .await?;
        index(
            manager,
            "idx_suggestions_waiting",
            S::Table,
            vec![asc(S::AwaitingResponse), asc(S::Id)],
        )
        .await?;
        index(
            manager,
            "idx_suggestions_author",
            S::Table,
            vec![asc(S::AuthorId), desc(S::Id)],
        )
        .await?;
        index(
            manager,
            "idx_suggestions_status",
            S::Table,
            vec![asc(S::Status), desc(S::Id)],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SuggestionRevisions::Table)
                    .col(pk_uuid(SuggestionRevisions::Id))
                    .col(uuid(SuggestionRevisions::SuggestionId))
                    .col(string_len(SuggestionRevisions::Title, 200))
                    .col(text(SuggestionRevisions::Body))
                    .col(timestamp_with_time_zone(SuggestionRevisions::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_revisions_suggestion",
                        (
                            SuggestionRevisions::Table,
                            SuggestionRevisions::SuggestionId,
                        ),
                        (Suggestions::Table, Suggestions::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_revisions_suggestion",
            SuggestionRevisions::Table,
            vec![
                asc(SuggestionRevisions::SuggestionId),
                asc(SuggestionRevisions::Id),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Supports::Table)
                    .col(uuid(Supports::SuggestionId))
                    .col(uuid(Supports::UserId))
                    .col(timestamp_with_time_zone(Supports::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Supports::SuggestionId)
                            .col(Supports::UserId),
                    )
                    .foreign_key(&mut fk(
                        "fk_supports_suggestion",
                        (Supports::Table, Supports::SuggestionId),
                        (Suggestions::Table, Suggestions::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_supports_user",
                        (Supports::Table, Supports::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_supports_user",
            Supports::Table,
            vec![asc(Supports::UserId), asc(Supports::SuggestionId)],
        )
        .await?;
        index(
            manager,
            "idx_supports_recent",
            Supports::Table,
            vec![asc(Supports::SuggestionId), asc(Supports::CreatedAt)],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SuggestionFollows::Table)
                    .col(uuid(SuggestionFollows::SuggestionId))
                    .col(uuid(SuggestionFollows::UserId))
                    .col(timestamp_with_time_zone(SuggestionFollows::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(SuggestionFollows::SuggestionId)
                            .col(SuggestionFollows::UserId),
                    )
                    .foreign_key(&mut fk(
                        "fk_suggestion_follows_suggestion",
                        (SuggestionFollows::Table, SuggestionFollows::SuggestionId),
                        (Suggestions::Table, Suggestions::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_suggestion_follows_user",
                        (SuggestionFollows::Table, SuggestionFollows::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_suggestion_follows_user",
            SuggestionFollows::Table,
            vec![
                asc(SuggestionFollows::UserId),
                asc(SuggestionFollows::SuggestionId),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(OfficialResponses::Table)
                    .col(pk_uuid(OfficialResponses::Id))
                    .col(uuid_null(OfficialResponses::SuggestionId))
                    .col(uuid_null(OfficialResponses::CommitmentId))
                    .col(uuid(OfficialResponses::AuthorId))
                    .col(text(OfficialResponses::Body))
                    .col(text(OfficialResponses::BodyHtml))
                    .col(string_len_null(OfficialResponses::PreviousStatus, 20))
                    .col(string_len_null(OfficialResponses::NewStatus, 20))
                    .col(uuid_null(OfficialResponses::DuplicateOfId))
                    .col(timestamp_with_time_zone(OfficialResponses::PublishedAt))
                    .foreign_key(&mut fk(
                        "fk_responses_suggestion",
                        (OfficialResponses::Table, OfficialResponses::SuggestionId),
                        (Suggestions::Table, Suggestions::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_responses_author",
                        (OfficialResponses::Table, OfficialResponses::AuthorId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_responses_suggestion",
            OfficialResponses::Table,
            vec![
                asc(OfficialResponses::SuggestionId),
                asc(OfficialResponses::Id),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outcomes::Table)
                    .col(pk_uuid(Outcomes::Id))
                    .col(string_len(Outcomes::Kind, 30))
                    .col(uuid_null(Outcomes::ResponseId))
                    .col(uuid_null(Outcomes::CommitmentId))
                    .col(timestamp_with_time_zone(Outcomes::PublishedAt))
                    .foreign_key(&mut fk(
                        "fk_outcomes_response",
                        (Outcomes::Table, Outcomes::ResponseId),
                        (OfficialResponses::Table, OfficialResponses::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_outcomes_commitment",
            Outcomes::Table,
            vec![asc(Outcomes::CommitmentId), desc(Outcomes::Id)],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Outcomes::Table.into_iden(),
            OfficialResponses::Table.into_iden(),
            SuggestionFollows::Table.into_iden(),
            Supports::Table.into_iden(),
            SuggestionRevisions::Table.into_iden(),
            Suggestions::Table.into_iden(),
            CommitmentFollows::Table.into_iden(),
            Milestones::Table.into_iden(),
            Commitments::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
