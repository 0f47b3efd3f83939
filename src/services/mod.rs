//! Business rules, one module per domain. A service takes plain inputs and the acting
//! account, checks permissions, runs in one transaction, and returns domain values or an
//! `AppError`. Nothing here knows about GraphQL or HTTP.

pub mod access;
pub mod account_limits;
pub mod accounts;
// Calendar feeds and secret calendar URLs (issue 8).
pub mod calendar_feeds;
// Working groups' chat channels (incoming webhooks).
pub mod channels;
pub mod columns;
pub mod commitments;
pub mod deliverability;
pub mod discussions;
pub mod groups;
pub mod meetups;
pub mod moderation;
pub mod moderation_log;
pub mod notification_prefs;
pub mod notifications;
pub mod page;
pub mod revisions;
pub mod seed;
pub mod suggestions;
// Suspending accounts, ending their sessions.
pub mod suspension;
pub mod throttle;
pub mod toggle;
pub mod unsubscribe;
pub mod updates;

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::tokens::TokenKeys;
use crate::config::Settings;
use crate::domain::{DomainError, Markdown};
use crate::error::{AppError, AppResult};

/// What every service needs: the database, the settings, the token keys and the Markdown
/// renderer.
#[derive(Clone)]
pub struct Ctx {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    /// Shared: the keys and their validation rules are cloned with the context, per request.
    pub tokens: Arc<TokenKeys>,
    pub markdown: Markdown,
    /// Live events for subscriptions, published after a write commits.
    pub events: crate::events::Events,
    /// Sees the statements `db::query_all` runs (set by tests that count statements).
    pub statements: crate::db::StatementHook,
}

impl Ctx {
    pub fn link(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.settings.public.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }
}

/// A domain parse result, with any error reported against the input field `name`.
pub(crate) fn field<T>(name: &str, r: Result<T, DomainError>) -> AppResult<T> {
    r.map_err(|e| AppError::bad_input(name, e.0))
}
