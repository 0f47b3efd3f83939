//! Writing to the outbox: the one way anything leaves Convene. Rows are written in the
//! caller's transaction, so a message exists exactly when the change that caused it does.
//! Events go in as `OutboxEvent`s; `enqueue_mail` is for mail addressed as it is written
//! (account mail, a person's own RSVP).

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect,
};
use uuid::Uuid;

use super::event::{ChannelMessage, OutboxEvent};
use crate::db::now;
use crate::entities::group_channel;
use crate::entities::outbox::{self, Status};
use crate::error::AppResult;

pub const KIND_EMAIL: &str = "email";

/// Rows per multi-row INSERT: well under both databases' bound-parameter limits.
pub const CHUNK: usize = 1_000;

/// Payload keys that carry a credential: a one-time token, or a link with one inside, or a
/// meet-up's calendar attachment (`ics`, which may hold the meet-up's online link), or a
/// notification mail's unsubscribe token (it never expires). A row
/// keeps them only while it may still be sent; once delivered or given up they are removed.
pub const SECRET_KEYS: &[&str] = &[
    "token",
    "link",
    "ics",
    "ics_waitlisted",
    "unsubscribe_token",
];

/// `payload` without its `SECRET_KEYS`. A payload that is not a JSON object cannot be
/// checked, so nothing of it is kept.
pub fn redact_secrets(payload: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(mut fields)) => {
            for key in SECRET_KEYS {
                fields.remove(*key);
            }
            serde_json::Value::Object(fields).to_string()
        }
        _ => "{}".to_string(),
    }
}

/// At most this many mails of one kind go to one address per hour, however often someone
/// asks for them (requests beyond get the same answer, and no mail).
pub const MAILS_PER_HOUR: u64 = 3;

/// True when `recipient` already got `MAILS_PER_HOUR` mails made from `template` in the
/// last hour.
pub async fn mailbox_is_busy<C: ConnectionTrait>(
    conn: &C,
    recipient: &str,
    template: &str,
) -> AppResult<bool> {
    let since = now() - chrono::Duration::hours(1);
    let recent = outbox::Entity::find()
        .filter(outbox::Column::Kind.eq(KIND_EMAIL))
        .filter(outbox::Column::Recipient.eq(recipient))
        .filter(outbox::Column::Template.eq(template))
        .filter(outbox::Column::CreatedAt.gt(since))
        .count(conn)
        .await?;
    Ok(recent >= MAILS_PER_HOUR)
}

/// Queues an email. The idempotency key names the event, the recipient and the kind of
/// mail; queuing the same key twice keeps the first row, so one event never mails one
/// person twice. Returns whether a new row was written.
/// One email outbox row of a bulk write.
pub struct NewMail {
    pub idempotency_key: String,
    pub recipient: String,
    pub template: String,
    pub payload: serde_json::Value,
}

/// Writes `mails` as pending email rows, `notifications::CHUNK` per multi-row INSERT; a key
/// already there is skipped. Returns the keys written now.
pub async fn enqueue_mails<C: ConnectionTrait>(
    conn: &C,
    mails: Vec<NewMail>,
) -> Result<std::collections::HashSet<String>, sea_orm::DbErr> {
    use sea_orm::sea_query::{Expr, OnConflict, Query};
    let at = now();
    let status: sea_orm::Value = sea_orm::ActiveEnum::to_value(&Status::Pending).into();
    let backend = conn.get_database_backend();
    let mut written = std::collections::HashSet::new();
    for chunk in mails.chunks(CHUNK) {
        let mut q = Query::insert();
        q.into_table(outbox::Entity)
            .columns([
                outbox::Column::Id,
                outbox::Column::IdempotencyKey,
                outbox::Column::Kind,
                outbox::Column::Recipient,
                outbox::Column::Template,
                outbox::Column::Payload,
                outbox::Column::Status,
                outbox::Column::Attempts,
                outbox::Column::NextAttemptAt,
                outbox::Column::CreatedAt,
            ])
            .on_conflict(
                OnConflict::column(outbox::Column::IdempotencyKey)
                    .do_nothing()
                    .to_owned(),
            )
            .returning(Query::returning().column(outbox::Column::IdempotencyKey));
        for m in chunk {
            q.values_panic([
                Uuid::now_v7().into(),
                m.idempotency_key.clone().into(),
                KIND_EMAIL.into(),
                m.recipient.clone().into(),
                m.template.clone().into(),
                m.payload.to_string().into(),
                Expr::val(status.clone()),
                0i32.into(),
                at.into(),
                at.into(),
            ]);
        }
        for row in conn.query_all_raw(backend.build(&q)).await? {
            written.insert(row.try_get_by_index::<String>(0)?);
        }
    }
    Ok(written)
}

pub async fn enqueue_mail<C: ConnectionTrait>(
    conn: &C,
    idempotency_key: &str,
    recipient: &str,
    template: &str,
    payload: serde_json::Value,
) -> AppResult<bool> {
    enqueue(
        conn,
        idempotency_key,
        KIND_EMAIL,
        recipient,
        template,
        payload,
    )
    .await
}

async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    idempotency_key: &str,
    kind: &str,
    recipient: &str,
    template: &str,
    payload: serde_json::Value,
) -> AppResult<bool> {
    let at = now();
    let row = outbox::ActiveModel {
        id: Set(Uuid::now_v7()),
        idempotency_key: Set(idempotency_key.to_string()),
        kind: Set(kind.to_string()),
        recipient: Set(recipient.to_string()),
        template: Set(template.to_string()),
        payload: Set(payload.to_string()),
        status: Set(Status::Pending),
        attempts: Set(0),
        next_attempt_at: Set(at),
        locked_until: Set(None),
        lease_token: Set(None),
        last_error: Set(None),
        created_at: Set(at),
        sent_at: Set(None),
    };
    let inserted = outbox::Entity::insert(row)
        .on_conflict_do_nothing_on([outbox::Column::IdempotencyKey])
        .exec_without_returning(conn)
        .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0))
}

/// Queues `event` in the caller's transaction, as the row its kind, recipient and
/// idempotency key say. An event whose key is already queued is not written again.
/// Returns whether a new row was written.
pub async fn enqueue_event<C: ConnectionTrait>(conn: &C, event: &OutboxEvent) -> AppResult<bool> {
    enqueue(
        conn,
        &event.idempotency_key(),
        event.kind(),
        &event.recipient(),
        event.name(),
        event.to_payload(),
    )
    .await
}

/// Queues `message` for the channels of those of `group_ids` that have one, in the
/// caller's transaction: one row per group, keyed by the event and the group, so an event
/// is posted to a channel once. The row names the group, never the webhook URL (a secret):
/// the worker reads that when it posts, so a channel disconnected meanwhile gets nothing.
/// Returns how many were queued.
pub async fn post_to_channels<C: ConnectionTrait>(
    conn: &C,
    group_ids: &[Uuid],
    message: ChannelMessage,
) -> AppResult<usize> {
    if group_ids.is_empty() {
        return Ok(0);
    }
    let connected: Vec<Uuid> = group_channel::Entity::find()
        .select_only()
        .column(group_channel::Column::WorkingGroupId)
        .filter(group_channel::Column::WorkingGroupId.is_in(group_ids.iter().copied()))
        .into_tuple()
        .all(conn)
        .await?;
    let mut queued = 0;
    for working_group_id in connected {
        let event = OutboxEvent::ChannelPost {
            working_group_id,
            message: message.clone(),
        };
        if enqueue_event(conn, &event).await? {
            queued += 1;
        }
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_tokens_and_links_and_keeps_the_rest() {
        let payload = serde_json::json!({
            "display_name": "Ann",
            "token": "s3cret",
            "link": "https://convene.example/verify-email?token=s3cret",
            "hours": 48,
            "ics": "BEGIN:VCALENDAR\r\nLOCATION:https://meet.example/s3cret\r\nEND:VCALENDAR",
            "ics_method": "REQUEST",
        })
        .to_string();
        let redacted = redact_secrets(&payload);
        assert!(!redacted.contains("s3cret"), "{redacted}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&redacted).unwrap(),
            serde_json::json!({ "display_name": "Ann", "hours": 48, "ics_method": "REQUEST" })
        );
        assert_eq!(redact_secrets("not json, token=s3cret"), "{}");
    }
}
