use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub email: String,
    #[sea_orm(unique)]
    pub email_normalized: String,
    pub password_hash: String,
    pub display_name: String,
    pub bio: String,
    pub organisation: String,
    pub sector: Sector,
    pub role: Role,
    pub email_verified_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Suspended until then: no log-in, no session, no writing. Null when not suspended.
    pub suspended_until: Option<DateTimeUtc>,
}

impl Model {
    /// Whether the account is suspended at `at`.
    pub fn is_suspended(&self, at: DateTimeUtc) -> bool {
        self.suspended_until.is_some_and(|until| until > at)
    }
}

/// An account as it is shown: every column but the password hash, which only the
/// password checks read.
#[derive(Clone, Debug, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "Entity")]
pub struct Profile {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub bio: String,
    pub organisation: String,
    pub sector: Sector,
    pub role: Role,
    pub email_verified_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

impl From<Model> for Profile {
    fn from(m: Model) -> Self {
        Profile {
            id: m.id,
            email: m.email,
            display_name: m.display_name,
            bio: m.bio,
            organisation: m.organisation,
            sector: m.sector,
            role: m.role,
            email_verified_at: m.email_verified_at,
            created_at: m.created_at,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, DeriveRelation, EnumIter)]
pub enum Relation {
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// Platform role.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum Role {
    #[sea_orm(string_value = "MEMBER")]
    Member,
    #[sea_orm(string_value = "ORGANISER")]
    Organiser,
    #[sea_orm(string_value = "OFFICIAL")]
    Official,
    #[sea_orm(string_value = "ADMIN")]
    Admin,
}

/// The sector an account speaks for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum Sector {
    #[sea_orm(string_value = "PUBLIC")]
    Public,
    #[sea_orm(string_value = "PRIVATE")]
    Private,
    #[sea_orm(string_value = "CIVIL_SOCIETY")]
    CivilSociety,
    #[sea_orm(string_value = "ACADEMIC")]
    Academic,
    #[sea_orm(string_value = "INDIVIDUAL")]
    Individual,
}
