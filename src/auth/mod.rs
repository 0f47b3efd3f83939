//! Password hashing, tokens, and who is asking.

pub mod password;
pub mod tokens;
pub mod viewer;

pub use viewer::{Actor, Viewer};
