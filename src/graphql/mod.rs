//! The GraphQL API: thin resolvers that parse input, look at the viewer, call a service and
//! map its errors. One module per domain, merged into the roots in `schema.rs`.

pub mod accounts;
pub mod batch;
// Calendar URLs (issue 8).
pub mod calendar;
pub mod commitments;
pub mod connection;
// Threads, posts and their live updates (issue 9).
pub mod discussions;
pub mod groups;
pub mod limits;
// Subscriptions: live events and fresh loaders per push.
pub mod live;
pub mod loaders;
pub mod meetups;
pub mod moderation;
// In-app notifications (issue 10).
pub mod notifications;
// Email preferences for notifications.
pub mod notification_prefs;
// Answering a list's objects without a future per field.
pub mod plain;
pub mod scalars;
pub mod schema;
pub mod suggestions;
// Suspending accounts, ending their sessions.
pub mod suspension;
pub mod updates;

pub use schema::{build_schema, build_trusted_schema, build_ws_schema, ConveneSchema};

use async_graphql::Context;

use crate::auth::Viewer;
use crate::error::AppError;
use crate::services::Ctx;

/// The services context and the request's viewer, as resolvers see them.
pub(crate) fn ctx<'a>(c: &Context<'a>) -> async_graphql::Result<(&'a Ctx, &'a Viewer)> {
    let services = c
        .data::<Ctx>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("services missing from context")))?;
    let viewer = c
        .data::<Viewer>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("viewer missing from context")))?;
    Ok((services, viewer))
}

/// The request's DataLoader.
pub(crate) fn loader<'a>(c: &Context<'a>) -> async_graphql::Result<&'a loaders::RequestLoader> {
    c.data::<loaders::RequestLoader>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("loaders missing from context")).into())
}
