//! Builds the application: database, schema, router with its middleware, the outbox worker;
//! binds the listener (port 0 in tests) and serves until told to stop, letting in-flight
//! requests finish.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use chrono::Duration as ChronoDuration;
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::auth::tokens::{random_token, TokenKeys};
use crate::config::Settings;
use crate::domain::Markdown;
use crate::graphql::limits::QueryGate;
use crate::graphql::{build_schema, ConveneSchema};
use crate::mail::{Mailer, MemoryTransport};
use crate::outbox::OutboxWorker;
use crate::services::Ctx;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub services: Ctx,
    pub schema: ConveneSchema,
    /// The schema for documents `schema` has already validated (`limits::Admission`).
    pub trusted_schema: ConveneSchema,
    pub gate: Arc<QueryGate>,
    pub settings: Arc<Settings>,
    /// The subscription sockets: their schema and how many are open.
    pub sockets: Arc<crate::http::ws::Sockets>,
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    mailer: Mailer,
    memory_mail: Option<MemoryTransport>,
}

/// The access-token secret: the configured one, or in development a key generated once and
/// kept beside the database.
pub fn resolve_signing_key(settings: &Settings) -> anyhow::Result<SecretString> {
    if !settings.auth.signing_key.expose_secret().is_empty() {
        return Ok(settings.auth.signing_key.clone());
    }
    anyhow::ensure!(
        !settings.is_production(),
        "auth.signing_key must be set in production"
    );
    let path = settings.dev_key_path();
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if existing.trim().len() >= crate::config::MIN_SIGNING_KEY_LEN {
            return Ok(SecretString::from(existing.trim().to_string()));
        }
    }
    let key = random_token();
    write_private(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "no auth.signing_key configured: generated a DEVELOPMENT signing key; set CONVENE__AUTH__SIGNING_KEY in production"
    );
    Ok(SecretString::from(key))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, contents)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

pub fn services(settings: Arc<Settings>, db: DatabaseConnection) -> anyhow::Result<Ctx> {
    let key = resolve_signing_key(&settings)?;
    let tokens = TokenKeys::new(
        &key,
        &settings.auth.issuer,
        &settings.auth.audience,
        ChronoDuration::minutes(settings.auth.access_token_minutes),
    );
    let markdown = Markdown::new(&settings.markdown.image_hosts);
    // In-process on SQLite, LISTEN/NOTIFY across instances on PostgreSQL.
    let events = crate::events::Events::for_database(&db);
    Ok(Ctx {
        db,
        settings,
        tokens: Arc::new(tokens),
        markdown,
        events,
        statements: crate::db::StatementHook::default(),
    })
}

impl Application {
    /// Connects to the configured database, applies pending migrations, and binds.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = crate::db::connect(&settings.database)
            .await
            .context("connecting to the database")?;
        crate::db::migrate(&db)
            .await
            .context("applying migrations")?;
        Self::build_with_db(settings, db).await
    }

    pub async fn build_with_db(settings: Settings, db: DatabaseConnection) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let (mailer, memory_mail) =
            Mailer::from_settings(&settings.mail, &settings.public.base_url)?;
        let services = services(settings.clone(), db)?;
        let schema = build_schema(&settings.graphql);
        let trusted_schema = crate::graphql::build_trusted_schema(&settings.graphql);
        let sockets = Arc::new(crate::http::ws::Sockets::new(
            crate::graphql::build_ws_schema(&settings.graphql),
        ));
        // The gate reads the schema's own SDL to know which fields are connections.
        let gate = Arc::new(QueryGate::new(&settings.graphql, &schema.sdl())?);
        let listener = TcpListener::bind(settings.listen_address()?)
            .await
            .with_context(|| format!("binding {}", settings.server.address))?;
        Ok(Application {
            listener,
            state: AppState {
                services,
                schema,
                trusted_schema,
                gate,
                settings,
                sockets,
            },
            mailer,
            memory_mail,
        })
    }

    /// Has `hook` see the statements Convene runs on sqlx directly (`db::query_all`), which
    /// sea-orm's metric callback does not see.
    pub fn observe_statements(&mut self, hook: crate::db::StatementHook) {
        self.state.services.statements = hook;
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn memory_mail(&self) -> Option<MemoryTransport> {
        self.memory_mail.clone()
    }

    pub fn db(&self) -> DatabaseConnection {
        self.state.services.db.clone()
    }

    pub fn services(&self) -> Ctx {
        self.state.services.clone()
    }

    pub fn outbox_worker(&self) -> OutboxWorker {
        OutboxWorker::new(
            self.state.services.db.clone(),
            self.mailer.clone(),
            self.state.settings.jobs.clone(),
        )
        .with_events(self.state.services.events.clone())
        .with_channels(crate::services::channels::Poster::new(&self.state.settings))
        .with_tokens(
            self.state.services.tokens.clone(),
            self.state.settings.notifications.clone(),
        )
        .with_undeliverable_after(self.state.settings.mail.undeliverable_after)
    }

    /// Starts the background jobs: the outbox worker and the trending refresh.
    pub fn spawn_jobs(&self, cancel: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        let every = Duration::from_secs(self.state.settings.jobs.trending_refresh_secs.max(1));
        vec![
            tokio::spawn(self.outbox_worker().run(cancel.child_token())),
            tokio::spawn(crate::jobs::trending::run(
                self.state.services.db.clone(),
                every,
                cancel.child_token(),
            )),
            // Meet-up reminders.
            tokio::spawn(crate::jobs::reminders::run(
                self.state.services.clone(),
                Duration::from_secs(self.state.settings.jobs.reminder_interval_secs.max(1)),
                self.state.settings.jobs.reminder_hours,
                cancel.child_token(),
            )),
            // Daily digests.
            tokio::spawn(crate::jobs::digest::run(
                self.state.services.clone(),
                Duration::from_secs(
                    self.state
                        .settings
                        .notifications
                        .digest_interval_secs
                        .max(1),
                ),
                cancel.child_token(),
            )),
        ]
    }

    /// Serves until `shutdown` is cancelled, then waits for in-flight requests (at most
    /// `server.shutdown_grace_secs`) and the jobs' current work.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let jobs = if self.state.settings.jobs.enabled {
            self.spawn_jobs(&shutdown)
        } else {
            Vec::new()
        };
        let grace = Duration::from_secs(self.state.settings.server.shutdown_grace_secs);
        // Subscription sockets outlive their HTTP upgrade: close them as the server stops.
        let sockets = self.state.sockets.clone();
        let stopping = shutdown.clone();
        tokio::spawn(async move {
            stopping.cancelled().await;
            sockets.close_all();
        });
        let router = router(self.state);
        tracing::info!(address = %self.listener.local_addr()?, "Convene listening; GraphQL at /graphql");
        let stop = shutdown.clone();
        let serve = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .into_future();
        // In-flight requests and the jobs' current work get the grace period to finish; past
        // it they are dropped with the process, so a stuck client cannot hold a stopping
        // server.
        let hard_stop = CancellationToken::new();
        let hard = hard_stop.clone();
        let signalled = shutdown.clone();
        tokio::spawn(async move {
            signalled.cancelled().await;
            tokio::time::sleep(grace).await;
            hard.cancel();
        });
        tokio::select! {
            served = serve => served?,
            () = hard_stop.cancelled() => tracing::warn!(
                grace_secs = grace.as_secs(),
                "shutdown grace period over; dropping the requests still in flight"
            ),
        }
        shutdown.cancel();
        tokio::select! {
            _ = futures::future::join_all(jobs) => {}
            () = hard_stop.cancelled() => tracing::warn!("shutdown grace period over; stopping the jobs mid-batch"),
        }
        tracing::info!("Convene stopped");
        Ok(())
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::from(Any)
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT])
            .expose_headers([header::HeaderName::from_static("x-request-id")])
            .max_age(Duration::from_secs(3600)),
    )
}

pub fn router(state: AppState) -> Router {
    let limit = state.settings.server.body_limit_bytes;
    let timeout = Duration::from_secs(state.settings.server.request_timeout_secs);
    let cors = cors(&state.settings.server.cors_origins);
    Router::new()
        .route(
            "/graphql",
            get(crate::http::graphql::get)
                .post(crate::http::graphql::post)
                .fallback(crate::http::graphql::other_method),
        )
        // Subscriptions: graphql-transport-ws.
        .route("/graphql/ws", get(crate::http::ws::upgrade))
        .route("/graphiql/{file}", get(crate::http::graphiql::asset))
        .route("/healthz", get(crate::http::health::healthz))
        .route("/readyz", get(crate::http::health::readyz))
        // Calendar feeds (issue 8).
        .route(
            "/calendar/meetups/{file}",
            get(crate::http::calendar::meetup),
        )
        .route("/calendar/groups/{file}", get(crate::http::calendar::group))
        // One-click unsubscribe from notification mail.
        .route(
            "/unsubscribe/{token}",
            get(crate::http::unsubscribe::show).post(crate::http::unsubscribe::apply),
        )
        .with_state(state)
        .layer(DefaultBodyLimit::max(limit))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                        let id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                    })
                    .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .option_layer(cors)
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
                .layer(RequestBodyLimitLayer::new(limit)),
        )
}
