//! What every subscription resolver shares: the feed of live events it asked for, and fresh
//! loaders for each pushed object.
//!
//! A subscription lives as long as its socket, possibly for days. Its relation fields go
//! through the loaders like any field, but a loader kept for the whole subscription would
//! serve later pushes from what earlier ones primed (stale rows), and grow with every
//! distinct row pushed. So the WebSocket schema carries [`FreshLoaders`], an extension whose
//! `execute` hook runs once per pushed event and hands that execution a new
//! [`RequestLoader`](super::loaders::RequestLoader) as execution data, which the context
//! looks up before the request's own. Each event therefore costs what one HTTP request for
//! the same object costs, and nothing outlives it. The HTTP schema has no extension, so
//! queries keep async-graphql's fast path.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::{Context, Data, Response};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::Viewer;
use crate::events::Event;
use crate::services::Ctx;

/// What a subscription hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard<T> {
    /// An event it asked for.
    Event(T),
    /// It fell more than the event buffer behind and some events were dropped; whatever it
    /// watches may have changed meanwhile, so a resolver re-reads and pushes the current
    /// state (or skips it, if that makes no sense for its kind of event).
    Missed,
}

/// The events `pick` keeps, from the moment of the call on. Call it before the resolver's
/// first `.await` (before checking that the watched row exists or may be seen): the socket
/// polls a new subscription once before reading the client's next message, so a receiver
/// taken then hears everything published after the client's next message, and nothing
/// committed between the check and the first event is missed. A lagging receiver yields [`Heard::Missed`] once and carries on; nothing crashes.
pub fn events<T, F>(
    c: &Context<'_>,
    pick: F,
) -> async_graphql::Result<impl Stream<Item = Heard<T>> + Send + 'static>
where
    T: Send + 'static,
    F: FnMut(Event) -> Option<T> + Send + 'static,
{
    let (services, _) = super::ctx(c)?;
    let rx = services.events.subscribe();
    Ok(futures::stream::unfold(
        (rx, pick),
        |(mut rx, mut pick)| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        if let Some(t) = pick(e) {
                            return Some((Heard::Event(t), (rx, pick)));
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::debug!(missed = n, "a subscription lagged behind the live events");
                        return Some((Heard::Missed, (rx, pick)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    ))
}

/// Gives each execution (each pushed event of a subscription) loaders of its own. Only the
/// WebSocket schema registers it.
pub struct FreshLoaders;

impl ExtensionFactory for FreshLoaders {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FreshLoadersExtension)
    }
}

struct FreshLoadersExtension;

#[async_trait::async_trait]
impl Extension for FreshLoadersExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let Some(services) = ctx.data_opt::<Ctx>() else {
            return next.run(ctx, operation_name).await;
        };
        let viewer = ctx
            .data_opt::<Viewer>()
            .and_then(|v| v.actor.as_ref())
            .map(|a| a.id);
        let mut data = Data::default();
        data.insert(super::loaders::request_loader(services.clone(), viewer));
        next.run_with_data(ctx, operation_name, data).await
    }
}
