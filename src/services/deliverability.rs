//! Whether mail reaches a person's address. The outbox worker counts permanent SMTP
//! failures (5xx) per account; past `mail.undeliverable_after` the address is marked
//! undeliverable and gets security mail only, until the person verifies it again.

use std::collections::HashSet;

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect,
};
use uuid::Uuid;

use crate::db::now;
use crate::entities::{email_deliverability, user};
use crate::services::notifications::in_chunks;

/// Those of `people` whose address is marked undeliverable, read in chunks.
pub async fn undeliverable_among<C: ConnectionTrait>(
    conn: &C,
    people: &[Uuid],
) -> Result<HashSet<Uuid>, sea_orm::DbErr> {
    let rows: Vec<Uuid> = in_chunks(conn, people, |chunk| {
        email_deliverability::Entity::find()
            .select_only()
            .column(email_deliverability::Column::UserId)
            .filter(email_deliverability::Column::UserId.is_in(chunk.iter().copied()))
            .filter(email_deliverability::Column::UndeliverableSince.is_not_null())
            .into_tuple()
    })
    .await?;
    Ok(rows.into_iter().collect())
}

/// The accounts whose address is `address` (compared as accounts store it, case-folded).
fn account_with_address(address: &str) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(user::Column::Id)
        .from(user::Entity)
        .and_where(user::Column::EmailNormalized.eq(address.trim().to_lowercase()))
        .to_owned()
}

/// Whether the account that has `address` is marked undeliverable (false when no account
/// has it).
pub async fn address_is_undeliverable<C: ConnectionTrait>(
    conn: &C,
    address: &str,
) -> Result<bool, sea_orm::DbErr> {
    Ok(email_deliverability::Entity::find()
        .filter(email_deliverability::Column::UserId.in_subquery(account_with_address(address)))
        .filter(email_deliverability::Column::UndeliverableSince.is_not_null())
        .count(conn)
        .await?
        > 0)
}

/// Whether mail reaches `user_id`'s address: not marked undeliverable.
pub async fn is_deliverable<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
) -> Result<bool, sea_orm::DbErr> {
    Ok(undeliverable_among(conn, &[user_id]).await?.is_empty())
}

/// Counts a permanent failure (5xx) of mail to `address` against the account that has it;
/// the `after`-th one in a row marks the address undeliverable. Mail to an address no
/// account has counts against nobody.
pub async fn record_permanent_failure<C: ConnectionTrait>(
    conn: &C,
    address: &str,
    error: &str,
    after: i32,
) -> Result<(), sea_orm::DbErr> {
    let Some(user_id) = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::EmailNormalized.eq(address.trim().to_lowercase()))
        .into_tuple::<Uuid>()
        .one(conn)
        .await?
    else {
        return Ok(());
    };
    let at = now();
    // The row first (a no-op when it exists), then one UPDATE: its right-hand sides read the
    // row as it was, so concurrent failures each count.
    email_deliverability::Entity::insert(email_deliverability::ActiveModel {
        user_id: Set(user_id),
        permanent_failures: Set(0),
        last_error: Set(None),
        last_failure_at: Set(None),
        undeliverable_since: Set(None),
    })
    .on_conflict_do_nothing_on([email_deliverability::Column::UserId])
    .exec_without_returning(conn)
    .await?;
    let failures = email_deliverability::Column::PermanentFailures;
    let since = email_deliverability::Column::UndeliverableSince;
    email_deliverability::Entity::update_many()
        .col_expr(failures, Expr::col(failures).add(1))
        .col_expr(
            email_deliverability::Column::LastError,
            Expr::value(error.chars().take(2000).collect::<String>()),
        )
        .col_expr(email_deliverability::Column::LastFailureAt, Expr::value(at))
        .col_expr(
            since,
            Expr::case(
                Expr::col(since)
                    .is_null()
                    .and(Expr::col(failures).add(1).gte(std::cmp::max(after, 1))),
                Expr::value(at),
            )
            .finally(Expr::col(since))
            .into(),
        )
        .filter(email_deliverability::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Mail to `address` was delivered: the count of permanent failures starts again (the mark,
/// if any, stays until the address is verified again).
pub async fn record_delivered<C: ConnectionTrait>(
    conn: &C,
    address: &str,
) -> Result<(), sea_orm::DbErr> {
    email_deliverability::Entity::update_many()
        .col_expr(
            email_deliverability::Column::PermanentFailures,
            Expr::value(0),
        )
        .filter(email_deliverability::Column::UserId.in_subquery(account_with_address(address)))
        .filter(email_deliverability::Column::PermanentFailures.gt(0))
        .exec(conn)
        .await?;
    Ok(())
}

/// The person verified their address: whatever was counted against it is forgotten.
pub async fn clear<C: ConnectionTrait>(conn: &C, user_id: Uuid) -> Result<(), sea_orm::DbErr> {
    email_deliverability::Entity::delete_by_id(user_id)
        .exec(conn)
        .await?;
    Ok(())
}
