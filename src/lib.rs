//! Convene: a GraphQL backend for public engagement on open data.
//!
//! HTTP → resolver (`graphql`) → service (`services`) → entity (`entities`) → database, with
//! the outbox (`jobs`, `mail`) beside the database.

pub mod auth;
pub mod calendar;
pub mod config;
pub mod db;
pub mod domain;
pub mod entities;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod outbox;
pub mod services;
pub mod startup;
pub mod telemetry;

pub use startup::Application;
