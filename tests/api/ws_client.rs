//! A `graphql-transport-ws` client over a real WebSocket, for subscription tests:
//! `WsClient::connect(&app, Some(token))`, `subscribe(query, variables)`, `next_data(&id)`.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::TestApp;

/// How long any single wait for the server lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Messages read while waiting for another subscription's, kept for their turn.
    held: std::collections::VecDeque<Value>,
}

/// How the server ended the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl WsClient {
    /// Opens the socket (protocol `graphql-transport-ws`) without sending anything.
    pub async fn open(app: &TestApp) -> WsClient {
        Self::open_with_protocol(app, Some("graphql-transport-ws")).await
    }

    /// Opens the socket, or the HTTP status the upgrade was refused with.
    pub async fn try_open(app: &TestApp) -> Result<WsClient, u16> {
        Self::try_open_with(app, &[]).await
    }

    /// [`WsClient::try_open`] with extra request headers (`Origin`, `X-Forwarded-For`).
    pub async fn try_open_with(app: &TestApp, headers: &[(&str, &str)]) -> Result<WsClient, u16> {
        let url = app.address.replacen("http://", "ws://", 1) + "/graphql/ws";
        let mut request = url.into_client_request().expect("ws request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        for (name, value) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect in time")
        {
            Ok((ws, _)) => Ok(WsClient {
                ws,
                next_id: 0,
                held: Default::default(),
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(e) => panic!("websocket handshake: {e}"),
        }
    }

    /// Closes the socket from the client's side and waits for the server's close frame.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.ws.next()).await {}
    }

    pub async fn open_with_protocol(app: &TestApp, protocol: Option<&str>) -> WsClient {
        let url = app.address.replacen("http://", "ws://", 1) + "/graphql/ws";
        let mut request = url.into_client_request().expect("ws request");
        if let Some(p) = protocol {
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(p).expect("header"),
            );
        }
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect in time")
            .expect("websocket handshake");
        WsClient {
            ws,
            next_id: 0,
            held: Default::default(),
        }
    }

    /// Opens and signs in (`None`: anonymous); panics unless the server acknowledges.
    pub async fn connect(app: &TestApp, token: Option<&str>) -> WsClient {
        match Self::try_connect(app, token).await {
            Ok(c) => c,
            Err(closed) => panic!("connection_init refused: {closed:?}"),
        }
    }

    /// Opens and sends `connection_init`; the close frame if the server refuses.
    pub async fn try_connect(app: &TestApp, token: Option<&str>) -> Result<WsClient, Closed> {
        let payload = match token {
            Some(t) => json!({ "authorization": format!("Bearer {t}") }),
            None => json!({}),
        };
        Self::try_connect_with(app, payload).await
    }

    pub async fn try_connect_with(app: &TestApp, payload: Value) -> Result<WsClient, Closed> {
        let mut c = Self::open(app).await;
        c.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        match c.recv().await {
            Ok(m) if m["type"] == "connection_ack" => Ok(c),
            Ok(m) => panic!("expected connection_ack, got {m}"),
            Err(closed) => Err(closed),
        }
    }

    pub async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .expect("send");
    }

    /// Starts a subscription and returns its id.
    pub async fn subscribe(&mut self, query: &str, variables: Value) -> String {
        self.next_id += 1;
        let id = format!("s{}", self.next_id);
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }))
            .await;
        id
    }

    /// Starts operation `name` of a document of several, and returns its id.
    pub async fn subscribe_named(&mut self, query: &str, name: &str, variables: Value) -> String {
        self.next_id += 1;
        let id = format!("s{}", self.next_id);
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "operationName": name, "variables": variables } }))
            .await;
        id
    }

    /// Ends a subscription.
    pub async fn complete(&mut self, id: &str) {
        self.send(json!({ "id": id, "type": "complete" })).await;
    }

    /// The next protocol message (pings answered by the library are skipped), or how the
    /// server closed the socket. Fails the test after [`WAIT`].
    pub async fn recv(&mut self) -> Result<Value, Closed> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message from the server in time");
            match frame {
                Some(Ok(Message::Text(t))) => {
                    return Ok(serde_json::from_str(t.as_str()).expect("JSON message"))
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame.map_or(
                        Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                        |f| Closed {
                            code: u16::from(f.code),
                            reason: f.reason.as_str().to_string(),
                        },
                    ))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    return Err(Closed {
                        code: 1006,
                        reason: e.to_string(),
                    })
                }
                None => {
                    return Err(Closed {
                        code: 1006,
                        reason: "stream ended".into(),
                    })
                }
            }
        }
    }

    /// The next message, which must not be a close.
    pub async fn next(&mut self) -> Value {
        self.recv().await.expect("socket open")
    }

    /// The next message for subscription `id`; other subscriptions' messages read
    /// meanwhile are kept for their own `next_for`.
    pub async fn next_for(&mut self, id: &str) -> Value {
        if let Some(i) = self.held.iter().position(|m| m["id"] == id) {
            if let Some(m) = self.held.remove(i) {
                return m;
            }
        }
        loop {
            let m = self.next().await;
            if m["id"] == id {
                return m;
            }
            self.held.push_back(m);
        }
    }

    /// The next message for `id` if one comes within `wait` (for retries).
    pub async fn try_next_for(&mut self, id: &str, wait: Duration) -> Option<Value> {
        if let Some(i) = self.held.iter().position(|m| m["id"] == id) {
            return self.held.remove(i);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match frame {
                Some(Ok(Message::Text(t))) => {
                    let m: Value = serde_json::from_str(t.as_str()).expect("JSON message");
                    if m["id"] == id {
                        return Some(m);
                    }
                    self.held.push_back(m);
                }
                Some(Ok(Message::Close(f))) => panic!("socket closed: {f:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("socket failed: {e}"),
                None => panic!("socket ended"),
            }
        }
    }

    /// The `data` of the next `next` message for `id`; panics on anything else.
    pub async fn next_data(&mut self, id: &str) -> Value {
        let m = self.next_for(id).await;
        assert_eq!(m["type"], "next", "{m}");
        assert!(m["payload"]["errors"].is_null(), "{m}");
        m["payload"]["data"].clone()
    }

    /// The `error` message for `id`: its list of GraphQL errors.
    pub async fn error_for(&mut self, id: &str) -> Value {
        let m = self.next_for(id).await;
        assert_eq!(m["type"], "error", "{m}");
        m["payload"].clone()
    }

    /// Waits for the server to close the socket, skipping anything before.
    pub async fn closed(&mut self) -> Closed {
        loop {
            if let Err(c) = self.recv().await {
                return c;
            }
        }
    }

    /// Subscribes and proves the subscription is live: the server answers a protocol ping
    /// only after handling the messages before it, and the subscription starts listening
    /// while it is handled.
    pub async fn subscribe_live(&mut self, query: &str, variables: Value) -> String {
        let id = self.subscribe(query, variables).await;
        self.send(json!({ "type": "ping" })).await;
        loop {
            let m = self.next().await;
            if m["type"] == "pong" {
                return id;
            }
            assert!(
                m["id"] != id.as_str(),
                "subscription {id} answered before any event: {m}"
            );
        }
    }
}
