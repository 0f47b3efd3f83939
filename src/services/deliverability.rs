//! Whether mail reaches a person's address. The outbox worker counts permanent SMTP
//! failures (5xx) per account; past `mail.undeliverable_after` the address is marked
//! undeliverable and gets security mail only, until the person verifies it again.

use std::collections::HashSet;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::entities::email_deliverability;

/// Those of `people` whose address is marked undeliverable, read in chunks.
pub async fn undeliverable_among<C: ConnectionTrait>(
    conn: &C,
    people: &[Uuid],
) -> Result<HashSet<Uuid>, sea_orm::DbErr> {
    let mut out = HashSet::new();
    for chunk in people.chunks(crate::services::notifications::CHUNK) {
        let rows: Vec<Uuid> = email_deliverability::Entity::find()
            .select_only()
            .column(email_deliverability::Column::UserId)
            .filter(email_deliverability::Column::UserId.is_in(chunk.iter().copied()))
            .filter(email_deliverability::Column::UndeliverableSince.is_not_null())
            .into_tuple()
            .all(conn)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}
