use sea_orm::entity::prelude::*;

/// A meet-up of a working group.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "meetups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub working_group_id: Uuid,
    pub title: String,
    pub agenda: String,
    pub agenda_html: String,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    /// IANA time zone name the meet-up is held in.
    pub time_zone: String,
    pub venue: Option<String>,
    pub address: Option<String>,
    pub online_url: Option<String>,
    pub capacity: Option<i32>,
    pub going_count: i32,
    pub waitlist_count: i32,
    /// The next waitlist ticket: taken under the meet-up's row lock, so the waitlist has one
    /// strict order however many RSVPs arrive at once.
    pub next_waitlist_seq: i64,
    pub status: Status,
    pub cancel_reason: Option<String>,
    /// The iCalendar SEQUENCE: bumped on every change attendees should see.
    pub sequence: i32,
    pub reminded_at: Option<DateTimeUtc>,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum Status {
    #[sea_orm(string_value = "SCHEDULED")]
    Scheduled,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
    #[sea_orm(string_value = "HELD")]
    Held,
}
