//! Small builders the migrations share: cascading foreign keys and named indexes.

use sea_orm_migration::prelude::*;

/// A foreign key that deletes the row with its parent.
pub fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

pub async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<IndexColumn>,
) -> Result<(), DbErr> {
    let mut stmt = Index::create().name(name).table(table).to_owned();
    for c in cols {
        stmt.col(c);
    }
    manager.create_index(stmt).await
}

pub fn asc(c: impl IntoIden) -> IndexColumn {
    IndexColumn::from((c.into_iden(), IndexOrder::Asc))
}

pub fn desc(c: impl IntoIden) -> IndexColumn {
    IndexColumn::from((c.into_iden(), IndexOrder::Desc))
}
