//! Live events for GraphQL subscriptions. An event carries ids only: each subscriber re-reads
//! the row through the normal visibility rules, so nothing private rides along and payloads
//! stay small. Services publish after their transaction commits.
//!
//! Two modes, chosen by the database (`Events::for_database`):
//! - **In-process** (SQLite, one process): a tokio broadcast channel.
//! - **PostgreSQL** (any number of instances): `publish` broadcasts locally at once and hands
//!   the event to a background task that sends `pg_notify('convene_events', <ids>)`; one
//!   listener task per instance `LISTEN`s on a dedicated connection and re-broadcasts what
//!   other instances sent (its own notifications are skipped: they were delivered locally
//!   already). The listener reconnects when its connection drops; events sent while it was
//!   away are lost, which live updates tolerate (a subscriber told it lagged re-reads).
//!
//! Publishing never blocks and never fails the request that publishes: the notify queue is
//! bounded and an event that does not fit is dropped with a warning.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sea_orm::{DatabaseConnection, DbBackend};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

/// Something subscribers may want to hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A post was written in a thread.
    PostAdded { thread_id: Uuid, post_id: Uuid },
    /// A suggestion's status, responses or support count changed.
    SuggestionUpdated { id: Uuid },
    /// A notification was written for a person.
    NotificationAdded { user_id: Uuid, id: Uuid },
    /// Sessions of an account ended: all of them, only `only`, or all but `except`. Their
    /// open sockets close at once rather than when their access tokens expire.
    SessionsEnded {
        user_id: Uuid,
        only: Option<Uuid>,
        except: Option<Uuid>,
    },
}

/// The PostgreSQL channel every instance notifies and listens on.
pub const CHANNEL: &str = "convene_events";

/// Events a subscriber may fall behind by before it is told it lagged.
const BUFFER: usize = 1024;
/// Events waiting to be sent to PostgreSQL before new ones are dropped.
const NOTIFY_QUEUE: usize = 4096;
/// How many queued events one round of the notifier sends in one statement.
const NOTIFY_BATCH: usize = 64;

/// What travels through `pg_notify`: the sending instance and the event's ids.
#[derive(Serialize, Deserialize)]
struct Wire {
    from: Uuid,
    #[serde(flatten)]
    event: Event,
}

/// The publishing and subscribing end, cloned into every request's context.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    local: broadcast::Sender<Event>,
    postgres: Option<Postgres>,
}

/// The PostgreSQL side: started lazily, stopped when the last `Events` clone goes.
struct Postgres {
    pool: PgPool,
    instance: Uuid,
    notify: OnceLock<Option<mpsc::Sender<Event>>>,
    listening: OnceLock<()>,
    /// True while the listener holds a LISTENing connection.
    live: watch::Sender<bool>,
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    /// In-process only.
    pub fn new() -> Self {
        let (local, _) = broadcast::channel(BUFFER);
        Events {
            inner: Arc::new(Inner {
                local,
                postgres: None,
            }),
        }
    }

    /// In-process on SQLite; across instances through LISTEN/NOTIFY on PostgreSQL. Nothing
    /// connects until the first publish or subscription.
    pub fn for_database(db: &DatabaseConnection) -> Self {
        if db.get_database_backend() != DbBackend::Postgres {
            return Self::new();
        }
        let pool = db.get_postgres_connection_pool().clone();
        let (local, _) = broadcast::channel(BUFFER);
        let stop = CancellationToken::new();
        Events {
            inner: Arc::new(Inner {
                local,
                postgres: Some(Postgres {
                    pool,
                    instance: Uuid::now_v7(),
                    notify: OnceLock::new(),
                    listening: OnceLock::new(),
                    live: watch::Sender::new(false),
                    _stop_on_drop: stop.clone().drop_guard(),
                    stop,
                }),
            }),
        }
    }

    /// Whether events travel between instances (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.inner.postgres.is_some()
    }

    /// Publishes an event to every subscriber, on this instance and (PostgreSQL) the others.
    /// Never blocks and never fails: live updates are best-effort (the data itself is
    /// already committed).
    pub fn publish(&self, event: Event) {
        // An error only means nobody here is listening.
        let _ = self.inner.local.send(event);
        if let Some(pg) = &self.inner.postgres {
            pg.notify(event);
        }
    }

    /// Publishes many events from background work (a notification fan-out), waiting for
    /// room in the queue to other instances rather than dropping what does not fit: a
    /// fan-out to 10,000 people would otherwise overflow it and leave most of them unheard
    /// on other instances. Requests use `publish`, which never waits.
    pub async fn publish_all(&self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            let _ = self.inner.local.send(event);
            if let Some(pg) = &self.inner.postgres {
                pg.notify_waiting(event).await;
            }
        }
    }

    /// A receiver of every event from now on. On PostgreSQL the first call starts this
    /// instance's listener.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        if let Some(pg) = &self.inner.postgres {
            pg.listen(self.inner.local.clone());
        }
        self.inner.local.subscribe()
    }

    /// Resolves once events from other instances reach this one: at once in-process; on
    /// PostgreSQL when the listener (started here if need be) is LISTENing. A socket
    /// acknowledges its `connection_init` after this, so that what is published after the
    /// acknowledgement reaches its subscriptions.
    pub async fn ready(&self) {
        let Some(pg) = &self.inner.postgres else {
            return;
        };
        pg.listen(self.inner.local.clone());
        let mut live = pg.live.subscribe();
        let _ = live.wait_for(|up| *up).await;
    }

    /// How many receivers are open on this instance (for tests and metrics).
    pub fn receiver_count(&self) -> usize {
        self.inner.local.receiver_count()
    }
}

impl Postgres {
    /// The queue to the notifier task, started on first use.
    fn sender(&self) -> Option<&mpsc::Sender<Event>> {
        self.notify
            .get_or_init(|| {
                let handle = tokio::runtime::Handle::try_current().ok()?;
                let (tx, rx) = mpsc::channel(NOTIFY_QUEUE);
                handle.spawn(notifier(
                    self.pool.clone(),
                    self.instance,
                    rx,
                    self.stop.clone(),
                ));
                Some(tx)
            })
            .as_ref()
    }

    fn notify(&self, event: Event) {
        let Some(sender) = self.sender() else {
            tracing::warn!(?event, "no runtime to notify other instances from");
            return;
        };
        if let Err(e) = sender.try_send(event) {
            tracing::warn!(?event, error = %e, "live event not sent to other instances");
        }
    }

    /// Like `notify`, but waits while the queue is full.
    async fn notify_waiting(&self, event: Event) {
        let Some(sender) = self.sender() else {
            tracing::warn!(?event, "no runtime to notify other instances from");
            return;
        };
        if let Err(e) = sender.send(event).await {
            tracing::warn!(?event, error = %e, "live event not sent to other instances");
        }
    }

    fn listen(&self, local: broadcast::Sender<Event>) {
        self.listening
            .get_or_init(|| match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(listener(
                        self.pool.clone(),
                        self.instance,
                        local,
                        self.live.clone(),
                        self.stop.clone(),
                    ));
                }
                Err(_) => tracing::warn!("no runtime to listen for other instances' events on"),
            });
    }
}

/// Sends queued events with `pg_notify`, several per statement, on the shared pool. A
/// failure is logged and the events dropped: the request that published is long done.
async fn notifier(
    pool: PgPool,
    instance: Uuid,
    mut rx: mpsc::Receiver<Event>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(NOTIFY_BATCH);
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => return,
            n = rx.recv_many(&mut batch, NOTIFY_BATCH) => n,
        };
        if received == 0 {
            return;
        }
        let payloads: Vec<String> = batch
            .drain(..)
            .filter_map(|event| {
                serde_json::to_string(&Wire {
                    from: instance,
                    event,
                })
                .ok()
            })
            .collect();
        let sent = sea_orm::sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
            .bind(CHANNEL)
            .bind(&payloads)
            .execute(&pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, events = payloads.len(), "pg_notify failed; live events dropped");
        }
    }
}

/// A pool of one connection with the application pool's options, for LISTEN: the listener
/// holds its connection for good, and must not take one from the requests.
fn dedicated(pool: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with((*pool.connect_options()).clone())
}

/// LISTENs on [`CHANNEL`] and re-broadcasts other instances' events locally, reconnecting
/// (with a growing pause, up to 10 s) whenever the connection is lost.
async fn listener(
    pool: PgPool,
    instance: Uuid,
    local: broadcast::Sender<Event>,
    live: watch::Sender<bool>,
    stop: CancellationToken,
) {
    let own = dedicated(&pool);
    let mut pause = Duration::from_millis(100);
    loop {
        let mut connected = false;
        let run = async {
            let mut l = PgListener::connect_with(&own).await?;
            l.listen(CHANNEL).await?;
            connected = true;
            live.send_replace(true);
            tracing::debug!("listening for live events on {CHANNEL}");
            loop {
                // `None`: the connection was lost (and re-established); keep going.
                if let Some(n) = l.try_recv().await? {
                    match serde_json::from_str::<Wire>(n.payload()) {
                        Ok(w) if w.from == instance => {}
                        Ok(w) => {
                            let _ = local.send(w.event);
                        }
                        Err(e) => tracing::warn!(error = %e, "unreadable live event"),
                    }
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), sea_orm::sqlx::Error>(())
        };
        tokio::select! {
            () = stop.cancelled() => {
                own.close().await;
                return;
            }
            r = run => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "live-event listener lost its connection; reconnecting");
                }
            }
        }
        live.send_replace(false);
        if connected {
            pause = Duration::from_millis(100);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_wire_carries_ids_only_and_reads_back() {
        let event = Event::PostAdded {
            thread_id: Uuid::now_v7(),
            post_id: Uuid::now_v7(),
        };
        let text = serde_json::to_string(&Wire {
            from: Uuid::nil(),
            event,
        })
        .unwrap();
        // Far below NOTIFY's 8,000-byte limit, whatever the event.
        assert!(text.len() < 200, "{text}");
        let back: Wire = serde_json::from_str(&text).unwrap();
        assert_eq!(back.event, event);
        assert_eq!(back.from, Uuid::nil());
    }

    #[tokio::test]
    async fn in_process_events_reach_every_receiver_and_lag_is_reported_not_fatal() {
        let events = Events::new();
        let mut a = events.subscribe();
        let mut b = events.subscribe();
        let e = Event::SuggestionUpdated { id: Uuid::now_v7() };
        events.publish(e);
        assert_eq!(a.recv().await.unwrap(), e);
        assert_eq!(b.recv().await.unwrap(), e);
        for _ in 0..BUFFER + 10 {
            events.publish(e);
        }
        assert!(matches!(
            a.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
        assert_eq!(a.recv().await.unwrap(), e);
        // Publishing with nobody listening is fine.
        drop((a, b));
        events.publish(e);
        events.ready().await;
    }
}
