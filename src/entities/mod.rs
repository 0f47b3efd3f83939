//! sea-orm entities mirroring the migrations, one file per table. They never leave the
//! services layer: the GraphQL layer has its own types.

pub mod email_token;
pub mod outbox;
pub mod refresh_token;
pub mod session;
pub mod throttle_bucket;
pub mod user;
