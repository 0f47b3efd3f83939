//! Live events for GraphQL subscriptions. An event carries ids only: each subscriber re-reads
//! the row through the normal visibility rules, so nothing private rides along and payloads
//! stay small. Services publish after their transaction commits.
//!
//! One process: an in-process broadcast. Several instances on PostgreSQL: see `Events::new`.

use tokio::sync::broadcast;
use uuid::Uuid;

/// Something subscribers may want to hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A post was written in a thread.
    PostAdded { thread_id: Uuid, post_id: Uuid },
    /// A suggestion's status, responses or support count changed.
    SuggestionUpdated { id: Uuid },
    /// A notification was written for a person.
    NotificationAdded { user_id: Uuid, id: Uuid },
}

/// The publishing and subscribing end, cloned into every request's context.
#[derive(Clone)]
pub struct Events {
    local: broadcast::Sender<Event>,
}

/// Events a subscriber may fall behind by before it is told it lagged.
const BUFFER: usize = 1024;

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Self {
        let (local, _) = broadcast::channel(BUFFER);
        Events { local }
    }

    /// Publishes an event to every subscriber. Never fails: live updates are best-effort
    /// (the data itself is already committed).
    pub fn publish(&self, event: Event) {
        // An error only means nobody is listening.
        let _ = self.local.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.local.subscribe()
    }
}
