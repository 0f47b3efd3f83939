//! The schema's roots, its limits, and the checks that run before any resolver.

use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

use super::accounts::{AccountMutation, AccountQuery};
use super::calendar::CalendarMutation;
use super::commitments::{CommitmentMutation, CommitmentQuery};
use super::discussions::{DiscussionMutation, DiscussionQuery, DiscussionSubscription};
use super::groups::{GroupMutation, GroupQuery};
use super::meetups::{MeetupMutation, MeetupQuery};
use super::moderation::{ModerationMutation, ModerationQuery};
use super::notification_prefs::{NotificationPrefsMutation, NotificationPrefsQuery};
use super::notifications::{NotificationMutation, NotificationQuery, NotificationSubscription};
use super::suggestions::{SuggestionMutation, SuggestionQuery, SuggestionSubscription};
use super::suspension::SuspensionMutation;
use super::updates::{UpdateMutation, UpdateQuery};
use crate::config::GraphqlSettings;

/// Every query field, merged from the domain modules.
#[derive(MergedObject, Default)]
pub struct Query(
    AccountQuery,
    CommitmentQuery,
    SuggestionQuery,
    // Working groups and meet-ups.
    GroupQuery,
    MeetupQuery,
    // Official updates, reports and the moderation log.
    UpdateQuery,
    ModerationQuery,
    // Threads and posts.
    DiscussionQuery,
    // The viewer's notifications.
    NotificationQuery,
    NotificationPrefsQuery,
);

/// Every mutation, merged from the domain modules.
#[derive(MergedObject, Default)]
pub struct Mutation(
    AccountMutation,
    CommitmentMutation,
    SuggestionMutation,
    // Working groups, meet-ups and their calendars.
    GroupMutation,
    MeetupMutation,
    CalendarMutation,
    // Official updates, reports and the moderation log.
    UpdateMutation,
    ModerationMutation,
    // Threads and posts.
    DiscussionMutation,
    // The viewer's notifications.
    NotificationMutation,
    NotificationPrefsMutation,
    // Suspending accounts, ending their sessions.
    SuspensionMutation,
);

/// Every subscription, merged from the domain modules (served over WebSocket at
/// `/graphql/ws`).
#[derive(MergedSubscription, Default)]
pub struct Subscription(
    SuggestionSubscription,
    DiscussionSubscription,
    NotificationSubscription,
);

pub type ConveneSchema = Schema<Query, Mutation, Subscription>;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
}

/// Builds the schema with the configured limits. Request data (services, viewer) is added
/// per request by the HTTP layer.
pub fn build_schema(settings: &GraphqlSettings) -> ConveneSchema {
    configured(builder(), settings).finish()
}

/// The same schema without async-graphql's full validation, for documents it has already
/// passed (`limits::Admission::Trusted`): that validation walks the whole document with
/// twenty-odd rules on every request, a tenth of a small page's cost.
pub fn build_trusted_schema(settings: &GraphqlSettings) -> ConveneSchema {
    configured(builder(), settings)
        .validation_mode(async_graphql::ValidationMode::Fast)
        .finish()
}

/// The same schema for WebSocket subscriptions: each pushed event gets loaders of its own
/// (`live::FreshLoaders`). Kept apart so that HTTP requests run with no extension.
pub fn build_ws_schema(settings: &GraphqlSettings) -> ConveneSchema {
    configured(builder(), settings)
        .extension(super::live::FreshLoaders)
        .finish()
}

fn configured(
    b: SchemaBuilder<Query, Mutation, Subscription>,
    settings: &GraphqlSettings,
) -> SchemaBuilder<Query, Mutation, Subscription> {
    // Every limit is checked by `limits::QueryGate` before async-graphql sees the document. The
    // library's own recursion and directive checks stay as a backstop: they run only on
    // documents that passed ours, with the same numbers, so they never answer first.
    let mut b = b
        .limit_recursive_depth(settings.max_recursive_depth)
        .limit_directives(settings.max_directives);
    if !settings.introspection {
        b = b.disable_introspection();
    }
    b
}

/// The SDL written to `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}
