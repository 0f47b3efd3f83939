//! The append-only moderation log: every hide, unhide, lock, pin, role change and report
//! decision, with who, what, when and why. Nothing in Convene updates or deletes its rows.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait};
use uuid::Uuid;

use crate::db::now;
use crate::entities::moderation_action::{self, Action};
use crate::entities::report::SubjectType;
use crate::error::AppResult;

/// One entry to record.
pub struct Entry<'a> {
    pub actor_id: Uuid,
    pub action: Action,
    pub subject_type: SubjectType,
    pub subject_id: Uuid,
    /// The group the item belongs to, when it is inside one.
    pub working_group_id: Option<Uuid>,
    pub reason: Option<&'a str>,
}

/// Appends `entry` in the caller's transaction, so an action and its record commit together.
pub async fn record<C: ConnectionTrait>(conn: &C, entry: Entry<'_>) -> AppResult<()> {
    moderation_action::ActiveModel {
        id: Set(Uuid::now_v7()),
        actor_id: Set(entry.actor_id),
        action: Set(entry.action),
        subject_type: Set(entry.subject_type),
        subject_id: Set(entry.subject_id),
        working_group_id: Set(entry.working_group_id),
        reason: Set(entry.reason.map(str::to_string)),
        created_at: Set(now()),
    }
    .insert(conn)
    .await?;
    Ok(())
}
