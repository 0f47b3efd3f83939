//! A row that an account toggles on a subject (a support, a follow; later memberships,
//! RSVPs and reactions), and the counter the subject keeps of those rows.
//!
//! The row's primary key is (subject, account), so the database decides whether a row
//! really appeared or disappeared, and only then does the counter move: concurrent toggles
//! from many accounts, or the same one twice, leave the counter equal to the rows. Call both
//! inside the same write transaction, after locking the subject row.

use sea_orm::sea_query::{Expr, ExprTrait, IntoIden};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Iterable, PrimaryKeyToColumn, PrimaryKeyTrait,
    QueryFilter, TryInsertResult,
};

use crate::error::AppResult;

/// Inserts `row` unless it exists; true when it was inserted.
pub async fn add_row<E, C>(conn: &C, row: E::ActiveModel) -> AppResult<bool>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let r = E::insert(row)
        .on_conflict_do_nothing_on(E::PrimaryKey::iter().map(|k| k.into_column()))
        .exec_without_returning(conn)
        .await?;
    Ok(matches!(r, TryInsertResult::Inserted(n) if n > 0))
}

/// Deletes the row with primary key `key`; true when a row was deleted.
pub async fn remove_row<E, C>(
    conn: &C,
    key: <E::PrimaryKey as PrimaryKeyTrait>::ValueType,
) -> AppResult<bool>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    Ok(E::delete_by_id(key).exec(conn).await?.rows_affected > 0)
}

/// Adds or removes the row, as `on` says; true when the row really changed.
pub async fn set_row<E, C>(
    conn: &C,
    on: bool,
    row: E::ActiveModel,
    key: <E::PrimaryKey as PrimaryKeyTrait>::ValueType,
) -> AppResult<bool>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    if on {
        add_row::<E, C>(conn, row).await
    } else {
        remove_row::<E, C>(conn, key).await
    }
}

/// Moves the counter `counter` of the subject whose `id_column` is `id` by `delta`, in one
/// statement (`counter = counter + delta`), so concurrent moves never overwrite each other.
pub async fn bump<E, C, V>(
    conn: &C,
    id_column: E::Column,
    id: V,
    counter: E::Column,
    delta: i32,
) -> AppResult<()>
where
    E: EntityTrait,
    C: ConnectionTrait,
    V: Into<sea_orm::Value>,
{
    E::update_many()
        .col_expr(counter, Expr::col(counter.into_iden()).add(delta))
        .filter(id_column.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}
