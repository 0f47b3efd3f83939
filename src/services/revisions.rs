//! Earlier versions of posts and suggestions: how many an item keeps, and reading the kept
//! ones a bounded number at a time.
//!
//! An edit writes a revision, so an item's history grows with every edit. It is capped at
//! `limits.max_revisions` (the oldest go, in the edit's own transaction) so that neither the
//! table nor any query of one item's history grows without bound.

use sea_orm::sea_query::{Asterisk, Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, IdenStatic, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::page::{Cursor, Page, PageRequest};

/// Deletes `parent`'s revisions (rows of `E` whose `parent_col` is `parent`) beyond the
/// newest `keep`, newest by `id_col` (UUIDv7, so by time). Returns how many went.
pub async fn keep_newest<E, C>(
    conn: &C,
    parent_col: E::Column,
    id_col: E::Column,
    parent: Uuid,
    keep: u64,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    // At most one edit's worth is over the cap, so this reads a row or two.
    let stale: Vec<Uuid> = E::find()
        .select_only()
        .column(id_col)
        .filter(parent_col.eq(parent))
        .order_by_desc(id_col)
        .offset(keep)
        .limit(u64::try_from(i64::MAX).unwrap_or(u64::MAX))
        .into_tuple()
        .all(conn)
        .await?;
    if stale.is_empty() {
        return Ok(0);
    }
    Ok(E::delete_many()
        .filter(id_col.is_in(stale))
        .exec(conn)
        .await?
        .rows_affected)
}

/// The newest `keep` revisions of each of `parents`, oldest first, in one statement (a row
/// number per parent): a page of items loads a bounded history whatever the table holds.
pub async fn newest_of<E, C>(
    conn: &C,
    parent_col: E::Column,
    parents: Vec<Uuid>,
    keep: u64,
) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: FromQueryResult,
    C: ConnectionTrait,
{
    let inner = E::find()
        .filter(parent_col.is_in(parents))
        .expr_as(
            Expr::cust(format!(
                r#"ROW_NUMBER() OVER (PARTITION BY "{}" ORDER BY "id" DESC)"#,
                parent_col.as_str()
            )),
            "revision_rank",
        )
        .into_query();
    let outer = Query::select()
        .column(Asterisk)
        .from_subquery(inner, "ranked")
        .and_where(Expr::col("revision_rank").lte(i64::try_from(keep).unwrap_or(i64::MAX)))
        .order_by("id", sea_orm::Order::Asc)
        .to_owned();
    E::Model::find_by_statement(conn.get_database_backend().build(&outer))
        .all(conn)
        .await
}

/// A page of one item's loaded revisions (oldest first), after `page.after`.
pub fn page_of<T>(rows: Vec<T>, page: &PageRequest, id: impl Fn(&T) -> Uuid) -> Page<T> {
    let after = page.after.as_ref().map(|c| c.id);
    let rows: Vec<T> = rows
        .into_iter()
        .filter(|r| after.is_none_or(|a| id(r) > a))
        .take(usize::try_from(page.first + 1).unwrap_or(usize::MAX))
        .collect();
    Page::from_rows(rows, page.first, |r| Cursor { k: None, id: id(r) })
}
