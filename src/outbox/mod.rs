//! The outbox: the one way anything leaves Convene (mail, in-app notifications, chat
//! channel posts). Producers write typed events (`event`) in their own transaction
//! (`write`); the worker (`worker`) claims due rows, works out each event's audience and
//! mail (`plan`), and renders every text from the database as it is at that moment
//! (`render`), so nothing hidden or made private since the event reaches anyone.

pub mod event;
pub mod mail;
pub mod notify;
pub mod plan;
pub mod render;
pub mod worker;
pub mod write;

pub use event::{ChannelMessage, MeetupMail, OutboxEvent, KIND_CHANNEL, KIND_NOTIFICATION};
pub use worker::OutboxWorker;
pub use write::*;
