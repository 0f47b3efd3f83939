//! Whether mail to a person's address gets through: permanent SMTP failures (5xx) are
//! counted, and past `mail.undeliverable_after` the address is marked undeliverable and gets
//! security mail only. Verifying the address again deletes the row. No row: deliverable.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_deliverability")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub permanent_failures: i32,
    pub last_error: Option<String>,
    pub last_failure_at: Option<DateTimeUtc>,
    pub undeliverable_since: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
