#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Convene's integration tests: one binary, the real server on port 0, a fresh database per
//! test (SQLite, or PostgreSQL when CONVENE_TEST_DATABASE_URL is set), captured mail.

mod helpers;
mod smtp_server;

mod accounts;
// The authorization policy as a tested table.
mod authorization;
// Calendars (issue 8).
mod calendar;
// Working groups' chat channels (issue 10).
mod channels;
mod cli;
// Pages read only the columns their selection shows (issue 7).
mod columns;
mod commitments;
// Undeliverable addresses (issue 10).
mod deliverability;
// Threads and posts (issue 9).
mod discussions;
// The daily digest (issue 10).
mod digest;
mod graphiql;
// Working groups and meet-ups.
mod groups;
mod hostile;
mod http;
mod mail;
mod meetups;
mod migrations;
// Reports, hiding, the moderation log and writing limits.
mod moderation;
// In-app notifications (issue 10).
mod notifications;
// Notification mail: preferences, immediate mail, unsubscribing.
mod notification_mail;
mod outbox;
mod outbox_events;
mod pool;
// A private group's inside, out of reach of everyone who may not see inside it.
mod private_groups;
mod races;
mod schema;
mod sessions;
// The subscription socket's own rules (issue 23).
mod sockets;
// GraphQL subscriptions over WebSocket.
mod subscriptions;
mod suggestions;
// Suspending accounts and ending sessions (issue 23).
mod suspension;
// Following threads (issue 10).
mod thread_follows;
mod throttling;
// Official updates.
mod updates;
mod ws_client;
