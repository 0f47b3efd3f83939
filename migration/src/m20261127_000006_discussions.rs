//! Discussions: threads on commitments, in working groups, under every suggestion and every
//! official update; posts nested in conversation order with reactions and their edit history;
//! official updates; reports and the append-only moderation log.

use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};
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
}

#[derive(DeriveIden)]
enum Suggestions {
    Table,
    Id,
    InReplyToUpdateId,
    Hidden,
}

#[derive(DeriveIden)]
enum OfficialResponses {
    Table,
    ThreadId,
}

#[derive(DeriveIden)]
enum CommitmentUpdates {
    Table,
    Id,
    CommitmentId,
    AuthorId,
    Title,
    Body,
    BodyHtml,
    MilestoneId,
    MilestoneStatus,
    SuggestionCount,
    Hidden,
    PublishedAt,
}

#[derive(DeriveIden)]
enum Threads {
    Table,
    Id,
    Context,
    CommitmentId,
    WorkingGroupId,
    SuggestionId,
    UpdateId,
    AuthorId,
    Title,
    Locked,
    LockReason,
    Pinned,
    Hidden,
    PostCount,
    NextPostSeq,
    OfficialResponseCount,
    LastActivityAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Posts {
    Table,
    Id,
    ThreadId,
    ParentId,
    AuthorId,
    Depth,
    SortKey,
    Body,
    BodyHtml,
    Hidden,
    DeletedAt,
    EditedAt,
    ThumbsUpCount,
    HeartCount,
    LightbulbCount,
    QuestionCount,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PostRevisions {
    Table,
    Id,
    PostId,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PostReactions {
    Table,
    PostId,
    UserId,
    Reaction,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Reports {
    Table,
    Id,
    ReporterId,
    SubjectType,
    SubjectId,
    WorkingGroupId,
    Reason,
    Details,
    Status,
    Resolution,
    ResolutionNote,
    ResolvedBy,
    ResolvedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ModerationActions {
    Table,
    Id,
    ActorId,
    Action,
    SubjectType,
    SubjectId,
    WorkingGroupId,
    Reason,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CommitmentUpdates::Table)
                    .col(pk_uuid(CommitmentUpdates::Id))
                    .col(uuid(CommitmentUpdates::CommitmentId))
                    .col(uuid(CommitmentUpdates::AuthorId))
                    .col(string_len(CommitmentUpdates::Title, 300))
                    .col(text(CommitmentUpdates::Body))
                    .col(text(CommitmentUpdates::BodyHtml))
                    .col(uuid_null(CommitmentUpdates::MilestoneId))
                    .col(string_len_null(CommitmentUpdates::MilestoneStatus, 20))
                    .col(integer(CommitmentUpdates::SuggestionCount).default(0))
                    .col(boolean(CommitmentUpdates::Hidden).default(false))
                    .col(timestamp_with_time_zone(CommitmentUpdates::PublishedAt))
                    .foreign_key(&mut fk(
                        "fk_commitment_updates_commitment",
                        (CommitmentUpdates::Table, CommitmentUpdates::CommitmentId),
                        (Commitments::Table, Commitments::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_commitment_updates_author",
                        (CommitmentUpdates::Table, CommitmentUpdates::AuthorId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_commitment_updates_commitment",
            CommitmentUpdates::Table,
            vec![
                asc(CommitmentUpdates::CommitmentId),
                asc(CommitmentUpdates::PublishedAt),
                asc(CommitmentUpdates::Id),
            ],
        )
        .await?;

        // A suggestion may answer an official update; moderators may hide it.
        manager
            .alter_table(
                Table::alter()
                    .table(Suggestions::Table)
                    .add_column(uuid_null(Suggestions::InReplyToUpdateId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Suggestions::Table)
                    .add_column(boolean(Suggestions::Hidden).default(false))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_suggestions_update",
            Suggestions::Table,
            vec![asc(Suggestions::InReplyToUpdateId), asc(Suggestions::Id)],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Threads::Table)
                    .col(pk_uuid(Threads::Id))
                    .col(string_len(Threads::Context, 20))
                    .col(uuid_null(Threads::CommitmentId))
                    .col(uuid_null(Threads::WorkingGroupId))
                    .col(uuid_null(Threads::SuggestionId).unique_key())
                    .col(uuid_null(Threads::UpdateId).unique_key())
                    .col(uuid(Threads::AuthorId))
                    .col(string_len(Threads::Title, 300))
                    .col(boolean(Threads::Locked).default(false))
                    .col(text_null(Threads::LockReason))
                    .col(boolean(Threads::Pinned).default(false))
                    .col(boolean(Threads::Hidden).default(false))
                    .col(integer(Threads::PostCount).default(0))
                    .col(big_integer(Threads::NextPostSeq).default(1))
                    .col(integer(Threads::OfficialResponseCount).default(0))
                    .col(timestamp_with_time_zone(Threads::LastActivityAt))
                    .col(timestamp_with_time_zone(Threads::CreatedAt))
                    .col(timestamp_with_time_zone(Threads::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_threads_commitment",
                        (Threads::Table, Threads::CommitmentId),
                        (Commitments::Table, Commitments::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_threads_group",
                        (Threads::Table, Threads::WorkingGroupId),
                        (WorkingGroups::Table, WorkingGroups::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_threads_suggestion",
                        (Threads::Table, Threads::SuggestionId),
                        (Suggestions::Table, Suggestions::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_threads_update",
                        (Threads::Table, Threads::UpdateId),
                        (CommitmentUpdates::Table, CommitmentUpdates::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_threads_author",
                        (Threads::Table, Threads::AuthorId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // Lists: pinned first, then the most recently active.
        for (name, col) in [
            ("idx_threads_commitment", Threads::CommitmentId),
            ("idx_threads_group", Threads::WorkingGroupId),
        ] {
            index(
                manager,
                name,
                Threads::Table,
                vec![
                    asc(col),
                    asc(Threads::Context),
                    asc(Threads::Pinned),
                    asc(Threads::LastActivityAt),
                    asc(Threads::Id),
                ],
            )
            .await?;
        }
        index(
            manager,
            "idx_threads_activity",
            Threads::Table,
            vec![asc(Threads::LastActivityAt), asc(Threads::Id)],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Posts::Table)
                    .col(pk_uuid(Posts::Id))
                    .col(uuid(Posts::ThreadId))
                    .col(uuid_null(Posts::ParentId))
                    .col(uuid(Posts::AuthorId))
                    .col(integer(Posts::Depth))
                    .col(string_len(Posts::SortKey, 120))
                    .col(text(Posts::Body))
                    .col(text(Posts::BodyHtml))
                    .col(boolean(Posts::Hidden).default(false))
                    .col(timestamp_with_time_zone_null(Posts::DeletedAt))
                    .col(timestamp_with_time_zone_null(Posts::EditedAt))
                    .col(integer(Posts::ThumbsUpCount).default(0))
                    .col(integer(Posts::HeartCount).default(0))
                    .col(integer(Posts::LightbulbCount).default(0))
                    .col(integer(Posts::QuestionCount).default(0))
                    .col(timestamp_with_time_zone(Posts::CreatedAt))
                    .col(timestamp_with_time_zone(Posts::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_posts_thread",
                        (Posts::Table, Posts::ThreadId),
                        (Threads::Table, Threads::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_posts_author",
                        (Posts::Table, Posts::AuthorId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // Conversation order is the sort key's order within a thread.
        manager
            .create_index(
                Index::create()
                    .name("uq_posts_thread_sort_key")
                    .table(Posts::Table)
                    .col(Posts::ThreadId)
                    .col(Posts::SortKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_posts_author",
            Posts::Table,
            vec![asc(Posts::AuthorId), asc(Posts::CreatedAt)],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PostRevisions::Table)
                    .col(pk_uuid(PostRevisions::Id))
                    .col(uuid(PostRevisions::PostId))
                    .col(text(PostRevisions::Body))
                    .col(timestamp_with_time_zone(PostRevisions::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_post_revisions_post",
                        (PostRevisions::Table, PostRevisions::PostId),
                        (Posts::Table, Posts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_post_revisions_post",
            PostRevisions::Table,
            vec![asc(PostRevisions::PostId), asc(PostRevisions::CreatedAt)],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PostReactions::Table)
                    .col(uuid(PostReactions::PostId))
                    .col(uuid(PostReactions::UserId))
                    .col(string_len(PostReactions::Reaction, 20))
                    .col(timestamp_with_time_zone(PostReactions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(PostReactions::PostId)
                            .col(PostReactions::UserId)
                            .col(PostReactions::Reaction),
                    )
                    .foreign_key(&mut fk(
                        "fk_post_reactions_post",
                        (PostReactions::Table, PostReactions::PostId),
                        (Posts::Table, Posts::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_post_reactions_user",
                        (PostReactions::Table, PostReactions::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_post_reactions_user",
            PostReactions::Table,
            vec![asc(PostReactions::UserId), asc(PostReactions::PostId)],
        )
        .await?;

        // An official response may answer a thread instead of a suggestion.
        manager
            .alter_table(
                Table::alter()
                    .table(OfficialResponses::Table)
                    .add_column(uuid_null(OfficialResponses::ThreadId))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_official_responses_thread",
            OfficialResponses::Table,
            vec![asc(OfficialResponses::ThreadId)],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Reports::Table)
                    .col(pk_uuid(Reports::Id))
                    .col(uuid(Reports::ReporterId))
                    .col(string_len(Reports::SubjectType, 20))
                    .col(uuid(Reports::SubjectId))
                    .col(uuid_null(Reports::WorkingGroupId))
                    .col(string_len(Reports::Reason, 20))
                    .col(text(Reports::Details))
                    .col(string_len(Reports::Status, 20))
                    .col(string_len_null(Reports::Resolution, 20))
                    .col(text_null(Reports::ResolutionNote))
                    .col(uuid_null(Reports::ResolvedBy))
                    .col(timestamp_with_time_zone_null(Reports::ResolvedAt))
                    .col(timestamp_with_time_zone(Reports::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_reports_reporter",
                        (Reports::Table, Reports::ReporterId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_reports_status",
            Reports::Table,
            vec![
                asc(Reports::Status),
                asc(Reports::CreatedAt),
                asc(Reports::Id),
            ],
        )
        .await?;
        index(
            manager,
            "idx_reports_group_status",
            Reports::Table,
            vec![
                asc(Reports::WorkingGroupId),
                asc(Reports::Status),
                asc(Reports::CreatedAt),
            ],
        )
        .await?;
        index(
            manager,
            "idx_reports_subject",
            Reports::Table,
            vec![asc(Reports::SubjectType), asc(Reports::SubjectId)],
        )
        .await?;
        // At most one open report per account and item: a partial unique index, which both
        // SQLite and PostgreSQL understand in this spelling.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_reports_open_per_reporter \
                 ON reports (reporter_id, subject_type, subject_id) WHERE status = 'OPEN'",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ModerationActions::Table)
                    .col(pk_uuid(ModerationActions::Id))
                    .col(uuid(ModerationActions::ActorId))
                    .col(string_len(ModerationActions::Action, 30))
                    .col(string_len(ModerationActions::SubjectType, 20))
                    .col(uuid(ModerationActions::SubjectId))
                    .col(uuid_null(ModerationActions::WorkingGroupId))
                    .col(text_null(ModerationActions::Reason))
                    .col(timestamp_with_time_zone(ModerationActions::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_moderation_actions_created",
            ModerationActions::Table,
            vec![
                asc(ModerationActions::CreatedAt),
                asc(ModerationActions::Id),
            ],
        )
        .await?;

        suggestion_threads(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_official_responses_thread")
                    .table(OfficialResponses::Table)
                    .to_owned(),
            )
            .await?;
        // Responses to threads leave the record with the threads.
        let conn = manager.get_connection();
        conn.execute_unprepared(
            "DELETE FROM outcomes WHERE response_id IN \
             (SELECT id FROM official_responses WHERE thread_id IS NOT NULL)",
        )
        .await?;
        conn.execute_unprepared("DELETE FROM official_responses WHERE thread_id IS NOT NULL")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OfficialResponses::Table)
                    .drop_column(OfficialResponses::ThreadId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_suggestions_update")
                    .table(Suggestions::Table)
                    .to_owned(),
            )
            .await?;
        for table in [
            ModerationActions::Table.into_iden(),
            Reports::Table.into_iden(),
            PostReactions::Table.into_iden(),
            PostRevisions::Table.into_iden(),
            Posts::Table.into_iden(),
            Threads::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for column in [Suggestions::Hidden, Suggestions::InReplyToUpdateId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Suggestions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(CommitmentUpdates::Table).to_owned())
            .await
    }
}

/// Every suggestion has its own thread. Those written before threads existed get theirs
/// here, in batches, titled and authored as the suggestion.
async fn suggestion_threads(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let conn = manager.get_connection();
    let backend = manager.get_database_backend();
    loop {
        let rows = conn
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT s.id, s.commitment_id, s.author_id, s.title, s.created_at \
                 FROM suggestions s LEFT JOIN threads t ON t.suggestion_id = s.id \
                 WHERE t.id IS NULL ORDER BY s.id LIMIT 500",
            ))
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = Query::insert()
            .into_table(Threads::Table)
            .columns([
                Threads::Id,
                Threads::Context,
                Threads::CommitmentId,
                Threads::SuggestionId,
                Threads::AuthorId,
                Threads::Title,
                Threads::LastActivityAt,
                Threads::CreatedAt,
                Threads::UpdatedAt,
            ])
            .to_owned();
        for row in rows {
            let id: sea_orm_migration::sea_orm::prelude::Uuid = row.try_get("", "id")?;
            let commitment: sea_orm_migration::sea_orm::prelude::Uuid =
                row.try_get("", "commitment_id")?;
            let author: sea_orm_migration::sea_orm::prelude::Uuid = row.try_get("", "author_id")?;
            let title: String = row.try_get("", "title")?;
            let created: sea_orm_migration::sea_orm::prelude::DateTimeUtc =
                row.try_get("", "created_at")?;
            insert
                .values([
                    uuid::Uuid::now_v7().into(),
                    "SUGGESTION".into(),
                    commitment.into(),
                    id.into(),
                    author.into(),
                    title.into(),
                    created.into(),
                    created.into(),
                    created.into(),
                ])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        manager.exec_stmt(insert).await?;
    }
}
