//! Writing a plan's in-app notifications: one row per person and event, in chunks of
//! `CHUNK` rows. `(event_key, recipient_id)` is unique and every insert is `ON CONFLICT DO
//! NOTHING`, so a fan-out that is interrupted, or run by two workers, ends with each
//! person notified exactly once.

use std::collections::HashSet;

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::plan::{recipients, Plan};
use super::render::clip;
use super::write::CHUNK;
use crate::db::now;
use crate::entities::notification;

/// One notification about to be written.
pub struct NewRow {
    pub id: Uuid,
    pub recipient_id: Uuid,
}

/// Writes the notifications of `plan` for event `event_key` in chunks of `CHUNK` rows,
/// skipping any (event, recipient) already written; returns the rows that are new.
pub async fn insert_planned<C: ConnectionTrait>(
    conn: &C,
    event_key: &str,
    plan: &Plan,
) -> anyhow::Result<Vec<NewRow>> {
    insert_planned_marking(conn, event_key, plan, &HashSet::new()).await
}

/// As [`insert_planned`], with the notifications of the people in `digest` marked
/// `digest_pending` (their mail waits for the daily digest).
pub async fn insert_planned_marking<C: ConnectionTrait>(
    conn: &C,
    event_key: &str,
    plan: &Plan,
    digest: &HashSet<Uuid>,
) -> anyhow::Result<Vec<NewRow>> {
    let at = now();
    let backend = conn.get_database_backend();
    let mut written = Vec::new();
    for chunk in recipients(plan).chunks(CHUNK) {
        let mut q = Query::insert();
        q.into_table(notification::Entity)
            .columns([
                notification::Column::Id,
                notification::Column::RecipientId,
                notification::Column::EventKey,
                notification::Column::Kind,
                notification::Column::ActorId,
                notification::Column::SubjectType,
                notification::Column::SubjectId,
                notification::Column::Text,
                notification::Column::CreatedAt,
                notification::Column::DigestPending,
            ])
            .on_conflict(
                OnConflict::columns([
                    notification::Column::EventKey,
                    notification::Column::RecipientId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .returning(
                Query::returning()
                    .columns([notification::Column::Id, notification::Column::RecipientId]),
            );
        for &(person, audience) in chunk {
            let a = &plan.audiences[audience];
            let kind: sea_orm::Value = sea_orm::ActiveEnum::to_value(&a.kind).into();
            let subject: sea_orm::Value = sea_orm::ActiveEnum::to_value(&plan.subject_type).into();
            q.values_panic([
                Uuid::now_v7().into(),
                person.into(),
                event_key.into(),
                Expr::val(kind),
                plan.actor_id.into(),
                Expr::val(subject),
                plan.subject_id.into(),
                clip(a.text.clone()).into(),
                at.into(),
                digest.contains(&person).into(),
            ]);
        }
        let rows = conn.query_all_raw(backend.build(&q)).await?;
        for r in rows {
            written.push(NewRow {
                id: r.try_get_by_index(0)?,
                recipient_id: r.try_get_by_index(1)?,
            });
        }
    }
    Ok(written)
}
