//! Keyset pagination: a cursor names the last row seen by its sort key and ID, so paging
//! on while rows are inserted never repeats or skips a row that was already there.

use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

pub const DEFAULT_PAGE: u64 = 20;
pub const MAX_PAGE: u64 = 100;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cursor {
    /// The sort key of the row (a count, or a string such as a reference), if the order has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<serde_json::Value>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(raw: &str) -> AppResult<Cursor> {
        let bad = || AppError::bad_input("after", "not a cursor from this list");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw.trim())
            .map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }

    pub fn key_i64(&self) -> AppResult<i64> {
        self.k
            .as_ref()
            .and_then(serde_json::Value::as_i64)
            .ok_or_else(|| AppError::bad_input("after", "not a cursor from this list"))
    }

    pub fn key_str(&self) -> AppResult<String> {
        self.k
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| AppError::bad_input("after", "not a cursor from this list"))
    }
}

/// `first` and `after` as a client sent them, checked.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub first: u64,
    pub after: Option<Cursor>,
}

impl PageRequest {
    pub fn parse(first: Option<i32>, after: Option<&str>) -> AppResult<Self> {
        let first = match first {
            None => DEFAULT_PAGE,
            Some(n) if n >= 1 && i64::from(n) <= MAX_PAGE as i64 => n as u64,
            Some(_) => {
                return Err(AppError::bad_input(
                    "first",
                    format!("first must be between 1 and {MAX_PAGE}"),
                ))
            }
        };
        let after = after.map(Cursor::decode).transpose()?;
        Ok(PageRequest { first, after })
    }
}

/// One page of rows, each with its cursor.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<(Cursor, T)>,
    pub has_next_page: bool,
}

impl<T> Page<T> {
    /// Builds a page from up to `first + 1` fetched rows.
    pub fn from_rows(mut rows: Vec<T>, first: u64, cursor: impl Fn(&T) -> Cursor) -> Self {
        let has_next_page = rows.len() as u64 > first;
        rows.truncate(first as usize);
        Page {
            items: rows.into_iter().map(|r| (cursor(&r), r)).collect(),
            has_next_page,
        }
    }

    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(|(c, t)| (c, f(t))).collect(),
            has_next_page: self.has_next_page,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = Cursor {
            k: Some(serde_json::json!(42)),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("nonsense").is_err());
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(101), None).is_err());
        assert_eq!(PageRequest::parse(None, None).unwrap().first, 20);
        assert_eq!(PageRequest::parse(Some(100), None).unwrap().first, 100);
    }
}
