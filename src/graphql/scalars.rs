//! Helpers for IDs: opaque strings on the wire, UUIDs inside.

use async_graphql::ID;
use uuid::Uuid;

use crate::error::AppError;

pub fn parse_id(field: &str, id: &ID) -> Result<Uuid, AppError> {
    Uuid::parse_str(id.as_str()).map_err(|_| AppError::bad_input(field, "not a valid ID"))
}

/// An ID's text: the UUID, hyphenated, in lower case.
pub fn to_id(id: Uuid) -> ID {
    ID(id
        .hyphenated()
        .encode_lower(&mut Uuid::encode_buffer())
        .to_owned())
}
