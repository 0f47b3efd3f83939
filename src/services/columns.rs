//! Reading only the columns a page shows.
//!
//! A list statement names its columns from a `ColumnSet` (what the query's selection
//! reaches, worked out in the GraphQL layer from `ctx.look_ahead()`), and reads each row
//! back by position with the reader `positional!` makes from the same list, so the SELECT
//! and the reader cannot drift apart. A column left out reads as its field's default: the
//! reader of such a partial row must be the page that asked for it, never a loader's cache
//! that another part of the query shares.

use std::marker::PhantomData;
use std::sync::Arc;

use sea_orm::{DbErr, QueryResult};
use uuid::Uuid;

/// A table's column, as a bit of a `ColumnSet`: its position in the entity's `Column` enum.
pub trait ColumnBit: Copy {
    fn bit(self) -> u64;
}

macro_rules! column_bits {
    ($($column:path),+ $(,)?) => {
        $(impl ColumnBit for $column {
            fn bit(self) -> u64 {
                // A fieldless enum's discriminant: its place in the declaration, under 64.
                1u64 << (self as u32)
            }
        })+
    };
}

column_bits!(
    crate::entities::suggestion::Column,
    crate::entities::user::Column,
    crate::entities::commitment::Column,
);

/// Some columns of one table.
pub struct ColumnSet<C> {
    bits: u64,
    table: PhantomData<fn() -> C>,
}

impl<C> Clone for ColumnSet<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for ColumnSet<C> {}
impl<C> PartialEq for ColumnSet<C> {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}
impl<C> Eq for ColumnSet<C> {}
impl<C> std::hash::Hash for ColumnSet<C> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bits.hash(state);
    }
}
impl<C> std::fmt::Debug for ColumnSet<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ColumnSet({:#b})", self.bits)
    }
}
impl<C> Default for ColumnSet<C> {
    fn default() -> Self {
        Self::NONE
    }
}

impl<C> ColumnSet<C> {
    pub const NONE: Self = ColumnSet {
        bits: 0,
        table: PhantomData,
    };
    /// Every column a list may read of the table.
    pub const ALL: Self = ColumnSet {
        bits: u64::MAX,
        table: PhantomData,
    };

    pub fn union(self, other: Self) -> Self {
        ColumnSet {
            bits: self.bits | other.bits,
            table: PhantomData,
        }
    }
}

impl<C: ColumnBit> ColumnSet<C> {
    pub fn of(columns: &[C]) -> Self {
        columns.iter().fold(Self::NONE, |s, c| s.with(*c))
    }

    pub fn with(self, column: C) -> Self {
        ColumnSet {
            bits: self.bits | column.bit(),
            table: PhantomData,
        }
    }

    pub fn without(self, column: C) -> Self {
        ColumnSet {
            bits: self.bits & !column.bit(),
            table: PhantomData,
        }
    }

    pub fn has(self, column: C) -> bool {
        self.bits & column.bit() != 0
    }

    /// The columns of `listed` (a table's readable columns, in reading order) in this set.
    pub fn pick(self, listed: &'static [C]) -> impl Iterator<Item = C> {
        listed.iter().copied().filter(move |c| self.has(*c))
    }
}

/// Reads a row's columns by position, from left to right. By name, each column costs a
/// lookup in the row's name table, and each prefixed alias of a join a formatted string.
pub struct Columns<'a> {
    row: &'a QueryResult,
    at: usize,
}

impl<'a> Columns<'a> {
    pub fn new(row: &'a QueryResult) -> Self {
        Columns { row, at: 0 }
    }

    pub fn read<T: ColumnValue>(&mut self) -> Result<T, DbErr> {
        let value = T::read(self.row, self.at)?;
        self.at += 1;
        Ok(value)
    }

    /// Passes over `n` columns without decoding them.
    pub fn skip(&mut self, n: usize) {
        self.at += n;
    }
}

/// The value a page already decoded for `id` (passing over its `width` columns), or the one
/// `read` decodes now, kept for the rows after: rows of one author or one commitment share
/// one value. A page holds at most 100 rows, so a scan beats hashing. Without an id (the
/// page did not read it), each row decodes its own.
pub fn decoded_once<T>(
    decoded: &mut Vec<(Uuid, Arc<T>)>,
    id: Option<Uuid>,
    at: &mut Columns<'_>,
    width: usize,
    read: impl FnOnce(&mut Columns<'_>) -> Result<T, DbErr>,
) -> Result<Arc<T>, DbErr> {
    let Some(id) = id else {
        return Ok(Arc::new(read(at)?));
    };
    if let Some((_, known)) = decoded.iter().find(|(k, _)| *k == id) {
        at.skip(width);
        return Ok(known.clone());
    }
    let value = Arc::new(read(at)?);
    decoded.push((id, value.clone()));
    Ok(value)
}

/// A value a list reads by position.
pub trait ColumnValue: Sized {
    fn read(row: &QueryResult, at: usize) -> Result<Self, DbErr>;
}

/// Types sqlx decodes itself. On PostgreSQL they skip sqlx's per-value type check (a few
/// hundred instructions a string, a formatted message for every NULL through sea-orm): the
/// list names its own columns, so their types are the schema's, and a value of the wrong
/// width still fails to decode rather than reading wrong.
macro_rules! via_sqlx {
    ($($t:ty),+ $(,)?) => {
        $(impl ColumnValue for $t {
            fn read(row: &QueryResult, at: usize) -> Result<Self, DbErr> {
                match row.try_as_pg_row() {
                    Some(pg) => sea_orm::sqlx::Row::try_get_unchecked::<$t, _>(pg, at)
                        .map_err(|e| DbErr::Type(e.to_string())),
                    None => row.try_get_by_index(at),
                }
            }
        })+
    };
}
via_sqlx!(
    String,
    Option<String>,
    bool,
    i32,
    uuid::Uuid,
    Option<uuid::Uuid>,
    chrono::DateTime<chrono::Utc>,
    Option<chrono::DateTime<chrono::Utc>>,
);

/// Types only sea-orm knows how to read (its enums).
macro_rules! via_sea_orm {
    ($($t:ty),+ $(,)?) => {
        $(impl ColumnValue for $t {
            fn read(row: &QueryResult, at: usize) -> Result<Self, DbErr> {
                row.try_get_by_index(at)
            }
        })+
    };
}
via_sea_orm!(
    crate::entities::suggestion::Status,
    crate::entities::commitment::Status,
    crate::entities::user::Role,
    crate::entities::user::Sector,
);

/// The columns a list may read of a table, and a reader of them: one list makes both.
/// `positional!(LISTED, read, Model, Column, [field: Col, field: Col = default, …])` defines
/// `LISTED` (the columns in reading order) and
/// `read(&mut Columns, ColumnSet) -> Result<Model, DbErr>`, which reads the set's columns
/// in that order and gives every other field its default (`= value`, else
/// `Default::default()`).
macro_rules! positional {
    (
        $columns:ident, $read:ident, $($model:ident)::+, $column:ident,
        [$($field:ident: $col:ident $(= $default:expr)?),+ $(,)?]
    ) => {
        const $columns: &[$column] = &[$($column::$col),+];

        fn $read(
            at: &mut $crate::services::columns::Columns<'_>,
            set: $crate::services::columns::ColumnSet<$column>,
        ) -> Result<$($model)::+, sea_orm::DbErr> {
            // A struct expression evaluates its fields in the order written.
            Ok($($model)::+ {
                $($field: if set.has($column::$col) {
                    at.read()?
                } else {
                    $crate::services::columns::positional!(@default $($default)?)
                },)+
            })
        }
    };
    (@default) => { Default::default() };
    (@default $default:expr) => { $default };
}
pub(crate) use positional;
