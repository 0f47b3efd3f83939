//! The HTTP surface: GraphQL over HTTP, health checks, and (later) the feeds and exports.

// Calendar feeds (issue 8).
pub mod calendar;
pub mod client_ip;
pub mod graphiql;
pub mod graphql;
pub mod health;
// One-click unsubscribe from notification mail.
pub mod unsubscribe;
pub mod viewer;
// GraphQL subscriptions over WebSocket.
pub mod ws;
