//! Helpers for IDs: opaque strings on the wire, UUIDs inside.

use async_graphql::ID;
use uuid::Uuid;

use crate::error::AppError;

pub fn parse_id(field: &str, id: &ID) -> Result<Uuid, AppError> {
    Uuid::parse_str(id.as_str()).map_err(|_| AppError::bad_input(field, "not a valid ID"))
}

/// An ID's text: the UUID, hyphenated, in lower case (written into `buf`, such as
/// `Uuid::encode_buffer()`, without going through `Display`).
pub fn id_text(id: Uuid, buf: &mut [u8]) -> &str {
    id.hyphenated().encode_lower(buf)
}

/// An ID, as the API gives it (see [`id_text`]).
pub fn to_id(id: Uuid) -> ID {
    ID(id_text(id, &mut Uuid::encode_buffer()).to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn an_id_is_the_uuid_as_display_writes_it_and_reads_back() {
        for id in [Uuid::nil(), Uuid::max(), Uuid::new_v4(), Uuid::now_v7()] {
            assert_eq!(to_id(id).as_str(), id.to_string());
            assert_eq!(parse_id("id", &to_id(id)).unwrap(), id);
        }
    }
}
