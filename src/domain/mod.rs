//! Newtypes that parse raw input at the edge. No database or GraphQL here: a value of one of
//! these types is valid by construction, and a bad one is a `DomainError` naming the problem.

mod email;
mod markdown;
mod slug;
mod text;

pub use email::Email;
pub use markdown::{Markdown, MarkdownBody, Reference, Title};
pub use slug::Slug;
pub use text::{Bio, DisplayName, Organisation, Password};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DomainError(pub String);
