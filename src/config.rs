//! Typed settings, layered: built-in defaults → `config/default.toml` →
//! `config/{CONVENE_ENV}.toml` → `CONVENE__SECTION__KEY` environment variables.
//! Secrets are `SecretString`s so they never reach a log line or `Debug` output.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The shortest access-token signing key accepted, in any environment.
pub const MIN_SIGNING_KEY_LEN: usize = 32;

const BUILT_IN_DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(default = "default_env")]
    pub environment: String,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub mail: MailSettings,
    pub public: PublicSettings,
    pub graphql: GraphqlSettings,
    pub jobs: JobSettings,
    pub limits: LimitSettings,
    pub markdown: MarkdownSettings,
    /// GraphQL subscriptions over WebSocket (`/graphql/ws`).
    #[serde(default)]
    pub websocket: WebsocketSettings,
    /// Notification email: the daily digest's hour and time zone.
    #[serde(default)]
    pub notifications: NotificationSettings,
    /// Working groups' chat channels (incoming webhooks).
    #[serde(default)]
    pub channels: ChannelSettings,
}

fn default_env() -> String {
    "development".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub address: String,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    pub cors_origins: Vec<String>,
    /// How many proxies in front of Convene append to X-Forwarded-For (0: none, use the peer).
    pub trusted_proxies: usize,
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub pool_size: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub signing_key: SecretString,
    pub issuer: String,
    pub audience: String,
    pub access_token_minutes: i64,
    pub refresh_token_days: i64,
    pub verification_token_hours: i64,
    pub reset_token_minutes: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    File,
    Smtp,
    Memory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MailSettings {
    pub transport: MailTransportKind,
    pub from: String,
    pub file_dir: PathBuf,
    pub smtp: SmtpSettings,
    /// Permanent SMTP failures (5xx) after which an address is marked undeliverable and
    /// gets security mail only, until it is verified again.
    #[serde(default = "default_undeliverable_after")]
    pub undeliverable_after: i32,
}

fn default_undeliverable_after() -> i32 {
    3
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    pub password: SecretString,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PublicSettings {
    pub base_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GraphqlSettings {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_recursive_depth: usize,
    pub max_directives: usize,
    pub max_aliases: usize,
    pub max_cost: u64,
    pub max_document_bytes: usize,
    pub max_fragment_spreads: usize,
    pub max_introspection_depth: usize,
    pub document_cache_size: usize,
    pub introspection: bool,
    pub graphiql: bool,
}

/// Limits of the subscription socket. Every document sent over it also passes the
/// `graphql.*` limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebsocketSettings {
    /// Open sockets per instance; further upgrades are answered 503.
    pub max_connections: usize,
    /// Open sockets per client address (as `server.trusted_proxies` determines it).
    pub max_connections_per_address: usize,
    /// Subscriptions running at once on one socket.
    pub max_subscriptions_per_connection: usize,
    /// Largest message (and frame) a client may send, in bytes.
    pub max_message_bytes: usize,
    /// How long a socket may stay open without a `connection_init`.
    pub connection_init_timeout_ms: u64,
    /// How often the server pings; a socket that answers nothing (no pong, no message)
    /// within `ping_timeout_ms` of a ping is closed.
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    /// Messages queued for a client that does not read; one more closes its socket.
    pub send_queue_messages: usize,
    /// Bytes queued for a client that does not read; a message past them closes its socket.
    pub send_queue_bytes: usize,
}

impl Default for WebsocketSettings {
    fn default() -> Self {
        WebsocketSettings {
            max_connections: 10_000,
            max_connections_per_address: 200,
            max_subscriptions_per_connection: 100,
            max_message_bytes: 65_536,
            connection_init_timeout_ms: 10_000,
            ping_interval_ms: 30_000,
            ping_timeout_ms: 10_000,
            send_queue_messages: 64,
            send_queue_bytes: 1 << 20,
        }
    }
}

/// Notification email.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct NotificationSettings {
    /// The local hour (0–23) the daily digest goes out at, for people who chose none.
    pub digest_hour: u32,
    /// The time zone of people who chose none (IANA name).
    pub default_time_zone: String,
    /// How often each instance looks for digests that are due.
    pub digest_interval_secs: u64,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            digest_hour: 8,
            default_time_zone: "Europe/London".into(),
            digest_interval_secs: 60,
        }
    }
}

/// Working groups' chat channels: Slack-compatible incoming webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ChannelSettings {
    /// Lets webhook URLs point at loopback, private and link-local addresses (tests, and
    /// a chat server inside the same network). Off in production.
    pub allow_private_targets: bool,
    /// How long one delivery attempt may take.
    pub timeout_secs: u64,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        ChannelSettings {
            allow_private_targets: false,
            timeout_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct MarkdownSettings {
    /// Hosts whose images render as images; any other image becomes a link.
    pub image_hosts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JobSettings {
    pub enabled: bool,
    pub poll_interval_ms: u64,
    pub batch_size: u64,
    /// Mails of one batch in flight at once (channel posts go one by one, in order).
    #[serde(default = "default_concurrency")]
    pub concurrency: u64,
    pub max_attempts: i32,
    pub backoff_base_secs: u64,
    pub backoff_max_secs: u64,
    pub lease_secs: i64,
    pub trending_refresh_secs: u64,
    /// How often each instance looks for meet-ups to remind people of.
    #[serde(default = "default_reminder_interval")]
    pub reminder_interval_secs: u64,
    /// How long before a meet-up starts its reminder goes out.
    #[serde(default = "default_reminder_hours")]
    pub reminder_hours: i64,
}

fn default_concurrency() -> u64 {
    10
}

fn default_reminder_interval() -> u64 {
    60
}

fn default_reminder_hours() -> i64 {
    24
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    /// Wrong passwords for one account from one address before that pair is locked out.
    pub login_pair_max_failures: i32,
    /// Wrong passwords for one account from anywhere before the account is locked out.
    pub login_account_max_failures: i32,
    /// Wrong passwords from one address, whatever the account, before it is locked out.
    pub login_ip_max_failures: i32,
    pub login_window_secs: i64,
    pub login_lockout_secs: i64,
    pub signup_per_hour_per_address: i32,
    /// `requestPasswordReset` and `resendVerificationEmail` together.
    pub mail_requests_per_hour_per_address: i32,
    /// What one account may write, per minute and per hour (`services::account_limits`).
    pub posts_per_minute: i32,
    pub posts_per_hour: i32,
    pub threads_per_minute: i32,
    pub threads_per_hour: i32,
    pub suggestions_per_minute: i32,
    pub suggestions_per_hour: i32,
    /// Edits of posts and suggestions together.
    pub edits_per_minute: i32,
    pub edits_per_hour: i32,
    /// Reports filed (`reportContent`).
    pub reports_per_hour: i32,
    /// Earlier versions kept per post or suggestion; the oldest go first.
    pub max_revisions: u64,
    /// Between 0 and 1: the share of each writing budget an account younger than
    /// `new_account_secs` gets (rounded down, at least 1).
    pub new_account_factor: f64,
    pub new_account_secs: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("could not read the configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("the {environment} configuration is incomplete:\n{}", missing.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Missing {
        environment: String,
        missing: Vec<String>,
    },
}

impl Settings {
    /// Loads the settings for `CONVENE_ENV` (default `development`) from `config_dir`.
    pub fn load(config_dir: &Path) -> Result<Self, SettingsError> {
        let environment = std::env::var("CONVENE_ENV").unwrap_or_else(|_| default_env());
        Self::load_for(config_dir, &environment, true)
    }

    /// Loads the layered settings for one environment; `with_env_vars` lets tests ignore the
    /// caller's environment.
    pub fn load_for(
        config_dir: &Path,
        environment: &str,
        with_env_vars: bool,
    ) -> Result<Self, SettingsError> {
        let mut builder = Config::builder()
            .add_source(File::from_str(BUILT_IN_DEFAULTS, FileFormat::Toml))
            .add_source(File::from(config_dir.join("default.toml")).required(false))
            .add_source(File::from(config_dir.join(format!("{environment}.toml"))).required(false))
            .set_override("environment", environment)?;
        if with_env_vars {
            builder = builder.add_source(
                Environment::with_prefix("CONVENE")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("server.cors_origins")
                    .with_list_parse_key("markdown.image_hosts")
                    .try_parsing(true),
            );
        }
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.check()?;
        Ok(settings)
    }

    pub fn is_production(&self) -> bool {
        self.environment == "production"
    }

    /// Production refuses to start on development fallbacks; every missing setting is named.
    /// A signing key that is set but short is refused in every environment.
    fn check(&self) -> Result<(), SettingsError> {
        let mut missing = Vec::new();
        // A short key is refused everywhere; an empty one only outside production, where a
        // development key is generated instead.
        let key_len = self.auth.signing_key.expose_secret().len();
        if key_len < MIN_SIGNING_KEY_LEN && (key_len > 0 || self.is_production()) {
            missing.push(format!(
                "auth.signing_key (CONVENE__AUTH__SIGNING_KEY): a secret of at least {MIN_SIGNING_KEY_LEN} characters"
            ));
        }
        if self.is_production() {
            self.missing_in_production(&mut missing);
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(SettingsError::Missing {
                environment: self.environment.clone(),
                missing,
            })
        }
    }

    fn missing_in_production(&self, missing: &mut Vec<String>) {
        if self.database.url.expose_secret().trim().is_empty() {
            missing.push("database.url (CONVENE__DATABASE__URL)".to_string());
        }
        if self.mail.transport != MailTransportKind::Smtp {
            missing.push("mail.transport (CONVENE__MAIL__TRANSPORT) must be \"smtp\"".to_string());
        }
        if self.mail.smtp.host.trim().is_empty() {
            missing.push("mail.smtp.host (CONVENE__MAIL__SMTP__HOST)".to_string());
        }
        if self.mail.from.trim().is_empty() || self.mail.from.contains("@localhost") {
            missing.push("mail.from (CONVENE__MAIL__FROM): a real sender address".to_string());
        }
    }

    pub fn listen_address(&self) -> anyhow::Result<SocketAddr> {
        self.server
            .address
            .parse()
            .map_err(|e| anyhow::anyhow!("server.address {:?}: {e}", self.server.address))
    }

    /// Where a generated development signing key is kept: beside the SQLite file, or in the
    /// working directory for other databases.
    pub fn dev_key_path(&self) -> PathBuf {
        let url = self.database.url.expose_secret();
        if let Some(rest) = url.strip_prefix("sqlite://") {
            let file = rest.split('?').next().unwrap_or("convene.db");
            if !file.is_empty() && file != ":memory:" {
                return PathBuf::from(format!("{file}.signing-key"));
            }
        }
        PathBuf::from("convene.signing-key")
    }
}
