//! GraphQL subscriptions over WebSocket at `/graphql/ws`, protocol `graphql-transport-ws`
//! (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>).
//!
//! Written here rather than taken from async-graphql's `GraphQLWebSocket` because a public
//! socket needs what that one leaves out: the same access-token rules as HTTP in
//! `connection_init` (a bad token closes the socket, 4403; never anonymous), the query
//! limits gate on every document, a cap on subscriptions per socket and on open sockets,
//! a `connection_init` timeout (4408), server pings that close sockets gone silent, and a
//! bounded queue towards each client: a client that does not read is disconnected rather
//! than letting its updates pile up in memory.
//!
//! Each socket is one task reading the client, one task writing to it (fed by the bounded
//! queue), and one task per subscription (the schema's stream, sending into the queue).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::parser::types::OperationType;
use async_graphql::{Response as GqlResponse, ServerError, Value};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::graphql::{operation_type, with_codes};
use super::viewer::{actor_for_token, client_ip, TokenRefusal};
use crate::auth::Viewer;
use crate::graphql::ConveneSchema;
use crate::startup::AppState;

/// The one protocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// Bytes read from a socket at a time.
const READ_BUFFER: usize = 4096;

/// Close codes of `graphql-transport-ws`, and the WebSocket ones used besides.
mod code {
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const SUBPROTOCOL_NOT_ACCEPTABLE: u16 = 4406;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    pub const TOO_MANY_INITS: u16 = 4429;
    pub const INTERNAL: u16 = 4500;
    /// The client went silent (no answer to a ping).
    pub const GOING_AWAY: u16 = 1001;
    /// The client does not read what it is sent.
    pub const POLICY: u16 = 1008;
    /// A message over `websocket.max_message_bytes`.
    pub const TOO_BIG: u16 = 1009;
}

/// What the sockets of one instance share: the WebSocket schema (fresh loaders per pushed
/// event, see `graphql::live`) and the count of open sockets.
pub struct Sockets {
    schema: ConveneSchema,
    open: AtomicUsize,
    /// Open sockets per client address.
    per_address: Mutex<HashMap<String, usize>>,
    /// Cancelled when the server stops: every socket closes with 1001 so that clients
    /// reconnect (to another instance).
    closing: CancellationToken,
    /// Signed-in sockets by account: their session, and a token cancelled when that
    /// session ends (`Event::SessionsEnded`), so a suspended or logged-out account's
    /// sockets close at once, not when the access token they signed in with expires.
    signed_in: Mutex<HashMap<Uuid, Vec<SignedIn>>>,
    /// Numbers the signed-in sockets, to find each one's entry again.
    next_socket: AtomicU64,
    /// Set once the task that hears ended sessions runs.
    watching: std::sync::OnceLock<()>,
}

struct SignedIn {
    socket: u64,
    session: Uuid,
    ended: CancellationToken,
}

impl Sockets {
    pub fn new(schema: ConveneSchema) -> Self {
        Sockets {
            schema,
            open: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
            closing: CancellationToken::new(),
            signed_in: Mutex::new(HashMap::new()),
            next_socket: AtomicU64::new(0),
            watching: std::sync::OnceLock::new(),
        }
    }

    /// Watches a signed-in socket's session: the token is cancelled when it ends. Called
    /// before the session is checked in the database, so an end committed after the check
    /// is heard. The first call starts the one task per instance that hears them.
    fn watch(self: &Arc<Self>, events: &crate::events::Events, user: Uuid, session: Uuid) -> Watch {
        self.watching.get_or_init(|| {
            let rx = events.subscribe();
            tokio::spawn(hear_ended_sessions(
                Arc::downgrade(self),
                rx,
                self.closing.clone(),
            ));
        });
        let socket = self.next_socket.fetch_add(1, Ordering::Relaxed);
        let ended = CancellationToken::new();
        self.signed_in
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(user)
            .or_default()
            .push(SignedIn {
                socket,
                session,
                ended: ended.clone(),
            });
        Watch {
            sockets: self.clone(),
            user,
            socket,
            ended,
        }
    }

    /// Ends the sockets of `user`'s sessions that ended.
    fn sessions_ended(&self, user: Uuid, only: Option<Uuid>, except: Option<Uuid>) {
        let signed_in = self
            .signed_in
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for s in signed_in.get(&user).into_iter().flatten() {
            if only.is_none_or(|o| o == s.session) && except != Some(s.session) {
                s.ended.cancel();
            }
        }
    }

    /// Closes every socket, and refuses new ones, as the server stops.
    pub fn close_all(&self) {
        self.closing.cancel();
    }

    /// Sockets open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// Hears ended sessions for as long as the instance's sockets live.
async fn hear_ended_sessions(
    sockets: std::sync::Weak<Sockets>,
    mut rx: tokio::sync::broadcast::Receiver<crate::events::Event>,
    closing: CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = tokio::select! {
            () = closing.cancelled() => return,
            e = rx.recv() => e,
        };
        match event {
            Ok(crate::events::Event::SessionsEnded {
                user_id,
                only,
                except,
            }) => match sockets.upgrade() {
                Some(s) => s.sessions_ended(user_id, only, except),
                None => return,
            },
            Ok(_) => {}
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "the socket sessions watcher fell behind the live events"
                );
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// A signed-in socket's place in [`Sockets::signed_in`], given back when the socket ends.
struct Watch {
    sockets: Arc<Sockets>,
    user: Uuid,
    socket: u64,
    ended: CancellationToken,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut signed_in = self
            .sockets
            .signed_in
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(list) = signed_in.get_mut(&self.user) {
            list.retain(|s| s.socket != self.socket);
            if list.is_empty() {
                signed_in.remove(&self.user);
            }
        }
    }
}

/// Counts a socket as open, in all and for its address, while it lives.
struct OpenSocket {
    sockets: Arc<Sockets>,
    address: String,
}

impl OpenSocket {
    /// Counts one more socket, unless its address or the instance is at its limit.
    fn take(
        sockets: Arc<Sockets>,
        address: String,
        settings: &crate::config::WebsocketSettings,
    ) -> Option<Self> {
        if sockets.closing.is_cancelled() {
            return None;
        }
        {
            let mut per = sockets
                .per_address
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = per.entry(address.clone()).or_insert(0);
            if *n >= settings.max_connections_per_address {
                return None;
            }
            *n += 1;
        }
        // From here on the guard gives back what it took.
        let guard = OpenSocket { sockets, address };
        let opened = guard.sockets.open.fetch_add(1, Ordering::Relaxed);
        (opened < settings.max_connections).then_some(guard)
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.sockets.open.fetch_sub(1, Ordering::Relaxed);
        let mut per = self
            .sockets
            .per_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = per.get_mut(&self.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per.remove(&self.address);
            }
        }
    }
}

/// `GET /graphql/ws`: upgrades to a WebSocket speaking `graphql-transport-ws`.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    ws: WebSocketUpgrade,
) -> Response {
    let settings = &state.settings.websocket;
    if !origin_allowed(&state.settings, &headers) {
        return (
            StatusCode::FORBIDDEN,
            "this origin may not open subscription sockets (server.cors_origins)",
        )
            .into_response();
    }
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let ip = client_ip(&state, &headers, peer);
    // Counted per address as the throttles count (an IPv6 client by its /64), so a client
    // cannot rotate through its own network for a fresh cap per socket.
    let key = crate::services::throttle::address(Some(&ip));
    let Some(guard) = OpenSocket::take(state.sockets.clone(), key, settings) else {
        let mut r = (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open subscription sockets; try again later",
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        return r;
    };
    let viewer = Viewer {
        actor: None,
        ip: Some(ip),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    let max = settings.max_message_bytes.max(1024);
    ws.protocols([PROTOCOL])
        // tungstenite zero-fills its whole read buffer on the first read: at the default
        // 128 KiB that is 128 KiB of resident memory per idle socket. Client messages are
        // small; a larger one grows the buffer as it arrives.
        .read_buffer_size(READ_BUFFER)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            let _guard = guard;
            Connection::new(state, viewer).run(socket).await;
        })
}

/// Whether a WebSocket upgrade may come from the page that asks. A browser sends `Origin`
/// with every upgrade, and no CORS preflight guards a WebSocket, so a page on any site
/// could otherwise open sockets with its visitors' cookies or from their addresses.
/// Clients that are not browsers send no `Origin`: they are let in. Allowed are the
/// origins of `server.cors_origins` (`*`: any) and Convene's own (`public.base_url`).
fn origin_allowed(settings: &crate::config::Settings, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let same = |allowed: &str| {
        allowed == "*" || allowed.trim_end_matches('/').eq_ignore_ascii_case(origin)
    };
    settings.server.cors_origins.iter().any(|o| same(o))
        || url::Url::parse(&settings.public.base_url)
            .is_ok_and(|base| same(&base.origin().ascii_serialization()))
}

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<serde_json::Value>,
    },
    Ping {},
    Pong {},
    Subscribe {
        id: String,
        payload: Box<async_graphql::Request>,
    },
    Complete {
        id: String,
    },
}

/// Why the socket ends.
struct Close(u16, String);

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        // A close frame's reason holds at most 123 bytes.
        if reason.len() > 123 {
            let mut end = 120;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Close(code, reason)
    }
}

/// The queue towards the client, bounded in messages and in bytes. A full queue means the
/// client does not read: the socket is closed instead of waiting. The byte bound matters
/// because a message may be large (a subscription selecting long bodies): 64 messages of
/// 64 KiB each would be 4 MiB held for one client.
#[derive(Clone)]
struct Outbox {
    tx: mpsc::Sender<Message>,
    overflow: CancellationToken,
    /// Bytes queued and not yet handed to the socket.
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// What a message weighs in the queue.
fn weight(msg: &Message) -> usize {
    match msg {
        Message::Text(t) => t.len(),
        Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
        Message::Close(_) => 0,
    }
}

impl Outbox {
    fn send(&self, msg: Message) -> bool {
        let bytes = weight(&msg);
        let before = self.queued.fetch_add(bytes, Ordering::AcqRel);
        // An empty queue takes one message however large, so a client that reads gets
        // every push; a close frame weighs nothing, so the reason for closing gets through.
        if before > 0 && before + bytes > self.max_bytes {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            self.overflow.cancel();
            return false;
        }
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(e) => {
                self.queued.fetch_sub(bytes, Ordering::AcqRel);
                if matches!(e, mpsc::error::TrySendError::Full(_)) {
                    self.overflow.cancel();
                }
                false
            }
        }
    }

    fn json(&self, value: &serde_json::Value) -> bool {
        self.send(Message::text(value.to_string()))
    }
}

struct Connection {
    state: AppState,
    viewer: Viewer,
    /// When the access token given in `connection_init` expires.
    expires: Option<Instant>,
    acked: bool,
    subscriptions: HashMap<String, JoinHandle<()>>,
    /// The signed-in session's watch: its token is cancelled when the session ends.
    watch: Option<Watch>,
}

fn error_payload(errors: &[ServerError]) -> serde_json::Value {
    serde_json::to_value(errors).unwrap_or_else(|_| json!([{ "message": "internal error" }]))
}

fn refused(message: impl Into<String>, code: &str) -> Vec<ServerError> {
    let mut e = ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    e.extensions = Some(ext);
    vec![e]
}

impl Connection {
    fn new(state: AppState, viewer: Viewer) -> Self {
        Connection {
            state,
            viewer,
            expires: None,
            acked: false,
            subscriptions: HashMap::new(),
            watch: None,
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let settings = self.state.settings.websocket.clone();
        // axum names the protocol in the handshake only when the client offered it.
        let agreed = socket
            .protocol()
            .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(PROTOCOL.as_bytes()));
        let (mut sink, mut stream) = socket.split();
        let (tx, mut rx) = mpsc::channel::<Message>(settings.send_queue_messages.max(1));
        let queued = Arc::new(AtomicUsize::new(0));
        let outbox = Outbox {
            tx,
            overflow: CancellationToken::new(),
            queued: queued.clone(),
            max_bytes: settings.send_queue_bytes.max(1024),
        };
        let writer = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                let last = matches!(msg, Message::Close(_));
                let bytes = weight(&msg);
                let sent = sink.send(msg).await;
                // Handed to the socket: what the client does not read now waits in the
                // kernel's buffers, which are bounded on their own.
                queued.fetch_sub(bytes, Ordering::AcqRel);
                if sent.is_err() || last {
                    break;
                }
            }
        });

        let close = if agreed {
            self.serve(&mut stream, &outbox, &settings).await
        } else {
            Close::new(
                code::SUBPROTOCOL_NOT_ACCEPTABLE,
                "speak graphql-transport-ws (Sec-WebSocket-Protocol)",
            )
        };
        for (_, task) in self.subscriptions.drain() {
            task.abort();
        }
        if outbox.overflow.is_cancelled() {
            // The client does not read: nothing more can reach it; drop the connection.
            writer.abort();
            tracing::info!("closed a subscription socket whose client does not read");
            return;
        }
        let Close(code, reason) = close;
        tracing::debug!(code, %reason, "closing a subscription socket");
        outbox.send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        })));
        drop(outbox);
        // The close frame gets a moment to leave; a client that does not take it is dropped.
        let abort = writer.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .is_err()
        {
            abort.abort();
        }
    }

    /// Reads the client until the socket must close, and says why.
    async fn serve(
        &mut self,
        stream: &mut futures::stream::SplitStream<WebSocket>,
        outbox: &Outbox,
        settings: &crate::config::WebsocketSettings,
    ) -> Close {
        let init_deadline =
            Instant::now() + Duration::from_millis(settings.connection_init_timeout_ms);
        let ping_every = Duration::from_millis(settings.ping_interval_ms.max(1));
        let ping_timeout = Duration::from_millis(settings.ping_timeout_ms.max(1));
        let mut pinger = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        pinger.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Set when a ping is out; any frame from the client clears it.
        let mut answer_by: Option<Instant> = None;
        let far = || Instant::now() + Duration::from_secs(365 * 24 * 3600);
        loop {
            let init_by = if self.acked { far() } else { init_deadline };
            let silent_by = answer_by.unwrap_or_else(far);
            let expires = self.expires.unwrap_or_else(far);
            let ended = self.watch.as_ref().map(|w| w.ended.clone());
            let frame = tokio::select! {
                () = async { match &ended { Some(e) => e.cancelled().await, None => std::future::pending().await } } => {
                    return Close::new(
                        code::FORBIDDEN,
                        "FORBIDDEN: the session has ended; log in again",
                    );
                }
                () = self.state.sockets.closing.cancelled() => {
                    return Close::new(code::GOING_AWAY, "the server is stopping; reconnect");
                }
                () = outbox.overflow.cancelled() => {
                    return Close::new(code::POLICY, "the client does not read its messages");
                }
                () = sleep_until(init_by) => {
                    return Close::new(code::INIT_TIMEOUT, "Connection initialisation timeout");
                }
                () = sleep_until(silent_by) => {
                    return Close::new(code::GOING_AWAY, "no answer to ping");
                }
                () = sleep_until(expires) => {
                    return Close::new(
                        code::FORBIDDEN,
                        "the access token has expired; reconnect with a fresh one",
                    );
                }
                _ = pinger.tick() => {
                    if answer_by.is_none() {
                        answer_by = Some(Instant::now() + ping_timeout);
                        outbox.send(Message::Ping(Default::default()));
                    }
                    continue;
                }
                frame = stream.next() => frame,
            };
            answer_by = None;
            let text = match frame {
                None => return Close::new(1000, "closed"),
                Some(Err(e)) => {
                    let message = e.to_string();
                    if message.contains("Space limit exceeded") || message.contains("too long") {
                        return Close::new(code::TOO_BIG, "message too big");
                    }
                    return Close::new(code::BAD_REQUEST, "unreadable frame");
                }
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                    Ok(t) => Utf8Bytes::from(t),
                    Err(_) => return Close::new(code::BAD_REQUEST, "messages are JSON text"),
                },
                Some(Ok(Message::Close(_))) => return Close::new(1000, "closed"),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            };
            let message = match serde_json::from_str::<ClientMessage>(text.as_str()) {
                Ok(m) => m,
                Err(e) => {
                    return Close::new(code::BAD_REQUEST, format!("invalid message: {e}"));
                }
            };
            if let Err(close) = self.handle(message, outbox, settings).await {
                return close;
            }
        }
    }

    async fn handle(
        &mut self,
        message: ClientMessage,
        outbox: &Outbox,
        settings: &crate::config::WebsocketSettings,
    ) -> Result<(), Close> {
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.acked {
                    return Err(Close::new(
                        code::TOO_MANY_INITS,
                        "Too many initialisation requests",
                    ));
                }
                self.authenticate(payload).await?;
                // On PostgreSQL, events from other instances must be arriving before the
                // client is told it may subscribe. A listener that cannot connect delays
                // the acknowledgement by at most a few seconds; local events flow anyway.
                let events = self.state.services.events.clone();
                if tokio::time::timeout(Duration::from_secs(5), events.ready())
                    .await
                    .is_err()
                {
                    tracing::warn!("acknowledging a socket while the live-event listener is down");
                }
                self.acked = true;
                outbox.json(&json!({ "type": "connection_ack" }));
            }
            ClientMessage::Ping {} => {
                outbox.json(&json!({ "type": "pong" }));
            }
            ClientMessage::Pong {} => {}
            ClientMessage::Subscribe { id, payload } => {
                if !self.acked {
                    return Err(Close::new(code::UNAUTHORIZED, "Unauthorized"));
                }
                self.subscriptions.retain(|_, task| !task.is_finished());
                if self.subscriptions.contains_key(&id) {
                    return Err(Close::new(
                        code::SUBSCRIBER_EXISTS,
                        format!("Subscriber for {id} already exists"),
                    ));
                }
                if self.subscriptions.len() >= settings.max_subscriptions_per_connection {
                    let errors = refused(
                        format!(
                            "too many subscriptions on this connection (at most {}); complete one first",
                            settings.max_subscriptions_per_connection
                        ),
                        crate::graphql::limits::QUERY_TOO_COMPLEX,
                    );
                    outbox.json(
                        &json!({ "id": id, "type": "error", "payload": error_payload(&errors) }),
                    );
                    return Ok(());
                }
                match self.start(&id, *payload, outbox).await {
                    Ok(task) => {
                        self.subscriptions.insert(id, task);
                    }
                    Err(errors) => {
                        let errors = with_codes(GqlResponse::from_errors(errors)).errors;
                        outbox.json(&json!({ "id": id, "type": "error", "payload": error_payload(&errors) }));
                    }
                }
            }
            ClientMessage::Complete { id } => {
                if let Some(task) = self.subscriptions.remove(&id) {
                    task.abort();
                }
            }
        }
        Ok(())
    }

    /// `connection_init`: `{"authorization": "Bearer <accessToken>"}` signs in, as the
    /// `Authorization` header does on HTTP. No token is anonymous; a bad one closes 4403.
    async fn authenticate(&mut self, payload: Option<serde_json::Value>) -> Result<(), Close> {
        let forbidden = |m: &str| Close::new(code::FORBIDDEN, format!("UNAUTHENTICATED: {m}"));
        let authorization = match &payload {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Object(fields)) => fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v),
            Some(_) => {
                return Err(Close::new(
                    code::BAD_REQUEST,
                    "the connection_init payload is an object",
                ))
            }
        };
        let Some(authorization) = authorization else {
            return Ok(());
        };
        let token = authorization
            .as_str()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| forbidden("authorization must be `Bearer <accessToken>`"))?;
        // Watched before the database is asked, so an end committed after that is heard.
        let watch = self.state.services.tokens.verify(token).ok().map(|claims| {
            self.state
                .sockets
                .watch(&self.state.services.events, claims.sub, claims.sid)
        });
        match actor_for_token(&self.state, token).await {
            Ok((actor, exp)) => {
                self.watch = watch;
                let left = exp.saturating_sub(chrono::Utc::now().timestamp()).max(0);
                self.expires =
                    Some(Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0)));
                self.viewer.actor = Some(actor);
                Ok(())
            }
            Err(TokenRefusal::Unauthenticated(m)) => Err(forbidden(&m)),
            Err(TokenRefusal::Forbidden(m)) => {
                Err(Close::new(code::FORBIDDEN, format!("FORBIDDEN: {m}")))
            }
            Err(TokenRefusal::Internal) => Err(Close::new(code::INTERNAL, "internal error")),
        }
    }

    /// Admits a `subscribe` through the query limits and starts it.
    async fn start(
        &self,
        id: &str,
        mut request: async_graphql::Request,
        outbox: &Outbox,
    ) -> Result<JoinHandle<()>, Vec<ServerError>> {
        self.state.gate.admit(&mut request).map_err(|e| vec![e])?;
        match operation_type(&mut request) {
            Some(OperationType::Subscription) => {}
            Some(_) => {
                return Err(refused(
                    "only subscriptions run over the socket; send queries and mutations to POST /graphql",
                    "BAD_USER_INPUT",
                ))
            }
            None => return Err(refused("no such operation in the document", "BAD_USER_INPUT")),
        }
        let services = self.state.services.clone();
        // Loaders for the subscription's start (access checks); each pushed event gets its
        // own (`graphql::live::FreshLoaders`).
        let loaders = crate::graphql::loaders::request_loader(
            services.clone(),
            self.viewer.actor.as_ref().map(|a| a.id),
        );
        let request = request
            .data(services)
            .data(self.viewer.clone())
            .data(loaders);
        let mut responses = self.state.sockets.schema.execute_stream(request);
        // The first poll runs here, before the next client message is read: resolvers take
        // their live-event receiver before their first await (`graphql::live::events`), so
        // an event published after anything the client sends next reaches the
        // subscription, and a `ping` answered with `pong` proves it is listening.
        let early = match futures::poll!(responses.next()) {
            std::task::Poll::Ready(item) => Some(item),
            std::task::Poll::Pending => None,
        };
        let (id, outbox) = (id.to_string(), outbox.clone());
        Ok(tokio::spawn(async move {
            let mut first = true;
            let mut early = early;
            loop {
                let item = match early.take() {
                    Some(item) => item,
                    None => responses.next().await,
                };
                let Some(response) = item else { break };
                let response = with_codes(response);
                // Refused before anything was pushed (an unknown id, no access): `error`,
                // which ends the subscription without `complete`.
                if first && !response.errors.is_empty() && matches!(response.data, Value::Null) {
                    outbox.json(&json!({ "id": id, "type": "error", "payload": error_payload(&response.errors) }));
                    return;
                }
                first = false;
                let next = json!({ "id": id, "type": "next", "payload": response });
                if !outbox.json(&next) {
                    return;
                }
            }
            outbox.json(&json!({ "id": id, "type": "complete" }));
        }))
    }
}
