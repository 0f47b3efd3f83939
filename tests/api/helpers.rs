//! `spawn_app` and the tools tests use to talk to it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use convene::config::{MailTransportKind, Settings};
use convene::db::StatementHook;
use convene::mail::{MemoryTransport, OutgoingMail};
use convene::Application;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "violet tractor on a quiet harbour 1987";
pub const SIGNING_KEY: &str = "test-signing-key-0123456789abcdef0123456789";

pub struct TestApp {
    pub address: String,
    pub db: DatabaseConnection,
    pub database_url: String,
    pub mail: MemoryTransport,
    pub client: reqwest::Client,
    pub settings: Settings,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn test_settings() -> Settings {
    let mut s = Settings::load_for(Path::new("config"), "test", false).expect("test settings load");
    s.auth.signing_key = SecretString::from(SIGNING_KEY);
    s.mail.transport = MailTransportKind::Memory;
    s.server.address = "127.0.0.1:0".into();
    s
}

pub fn pg_url() -> Option<String> {
    std::env::var("CONVENE_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

pub fn is_postgres() -> bool {
    pg_url().is_some()
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let prefix = match base.rfind('/') {
        Some(i) if i > base.find("//").map(|j| j + 1).unwrap_or(0) => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

async fn admin_execute(url: &str, sql: &str) -> Result<(), sea_orm::DbErr> {
    let db = convene::db::connect_url(url, 1).await?;
    let result = db.execute_unprepared(sql).await.map(|_| ());
    db.close().await?;
    result
}

static PG_TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// `{prefix}_{unix time}_{random}`: the time lets later runs clean up only old leftovers.
fn test_database_name(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        chrono::Utc::now().timestamp(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Migrates a template database once per run; each test gets a copy (fast, and the
/// migrations are the real ones).
async fn pg_template(base: &str) -> String {
    PG_TEMPLATE
        .get_or_init(|| async {
            // Leftovers of earlier runs, by the creation time in their names. Only those older
            // than two hours go, so runs sharing this server never drop each other's.
            let admin = convene::db::connect_url(base, 1)
                .await
                .expect("connect to PostgreSQL");
            let rows = admin
                .query_all_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT datname FROM pg_database WHERE datname LIKE 'convene_t%'".to_string(),
                ))
                .await
                .expect("list databases");
            let cutoff = chrono::Utc::now().timestamp() - 2 * 3600;
            for row in rows {
                let name: String = row.try_get("", "datname").expect("datname");
                let created = name.split('_').nth(2).and_then(|t| t.parse::<i64>().ok());
                if created.is_some_and(|t| t > cutoff) {
                    continue;
                }
                let _ = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                    .await;
            }
            admin.close().await.expect("close");
            let name = test_database_name("convene_tpl");
            admin_execute(base, &format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create template");
            let db = convene::db::connect_url(&with_database(base, &name), 2)
                .await
                .expect("connect template");
            convene::db::migrate(&db).await.expect("migrate template");
            db.close().await.expect("close template");
            name
        })
        .await
        .clone()
}

/// A fresh, migrated database URL for one test.
pub async fn fresh_database_url(dir: &Path) -> String {
    match pg_url() {
        Some(base) => {
            let template = pg_template(&base).await;
            let name = test_database_name("convene_t");
            let mut tries = 0;
            loop {
                match admin_execute(
                    &base,
                    &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
                )
                .await
                {
                    Ok(()) => break,
                    // Another test may be copying the template at this very moment.
                    Err(e) if tries < 20 => {
                        tries += 1;
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100 * tries)).await;
                    }
                    Err(e) => panic!("creating a test database: {e}"),
                }
            }
            with_database(&base, &name)
        }
        None => format!("sqlite://{}?mode=rwc", dir.join("convene.db").display()),
    }
}

/// An empty (unmigrated) database URL, for migration tests.
pub async fn empty_database_url(dir: &Path) -> String {
    match pg_url() {
        Some(base) => {
            let name = test_database_name("convene_t");
            admin_execute(&base, &format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create empty database");
            with_database(&base, &name)
        }
        None => format!("sqlite://{}?mode=rwc", dir.join("empty.db").display()),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database_url(dir.path()).await;
    spawn_app_on(dir, url, configure).await
}

/// Starts an app on an existing database (several instances can share one).
pub async fn spawn_app_on(
    dir: tempfile::TempDir,
    url: String,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let db = convene::db::connect_url(&url, 10).await.expect("connect");
    spawn_app_with_db(db, url, dir, configure).await
}

pub fn tempdir_path(app: &TestApp) -> PathBuf {
    app._dir.path().to_path_buf()
}

impl TestApp {
    /// Follows a verification link's token and asserts the address is now verified.
    pub async fn verify_email(&self, token: &str) {
        let v = self
            .gql(
                None,
                "mutation($t: String!) { verifyEmail(token: $t) { user { emailVerified } } }",
                json!({ "t": token }),
            )
            .await;
        assert_eq!(
            v["data"]["verifyEmail"]["user"]["emailVerified"], true,
            "{v}"
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Stops the server and waits until it has finished.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.handle.take() {
            Some(h) => h.await?,
            None => Ok(()),
        }
    }

    /// POSTs a GraphQL operation and returns the JSON response.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.gql_from(token, None, query, variables).await
    }

    /// POSTs a GraphQL operation and returns the response body as it came, so that two
    /// answers can be compared byte for byte (key order included).
    pub async fn gql_text(&self, token: Option<&str>, query: &str, variables: Value) -> String {
        let resp = self.post_gql(token, None, query, variables).await;
        resp.text().await.expect("text body")
    }

    /// The same, from a given client address (X-Forwarded-For is trusted in tests).
    pub async fn gql_from(
        &self,
        token: Option<&str>,
        ip: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Value {
        let resp = self.post_gql(token, ip, query, variables).await;
        resp.json().await.expect("json body")
    }

    async fn post_gql(
        &self,
        token: Option<&str>,
        ip: Option<&str>,
        query: &str,
        variables: Value,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(ip) = ip {
            req = req.header("x-forwarded-for", ip);
        }
        req.send().await.expect("request")
    }

    /// Waits (up to 10 s) for a mail to `to` made from `template`.
    pub async fn wait_for_mail(&self, to: &str, template: &str) -> OutgoingMail {
        for _ in 0..200 {
            if let Some(m) = self
                .mail
                .messages()
                .into_iter()
                .find(|m| m.to.eq_ignore_ascii_case(to) && m.template == template)
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no {template} mail to {to}; sent: {:?}",
            self.mail
                .messages()
                .iter()
                .map(|m| (&m.to, &m.template))
                .collect::<Vec<_>>()
        );
    }

    pub fn mails_to(&self, to: &str) -> Vec<OutgoingMail> {
        self.mail
            .messages()
            .into_iter()
            .filter(|m| m.to.eq_ignore_ascii_case(to))
            .collect()
    }

    /// Waits (up to 10 s) until the background worker has fanned out every notification
    /// event, so that a statement count taken next measures the request alone.
    pub async fn notifications_settled(&self) {
        for _ in 0..200 {
            if count(
                &self.db,
                "SELECT COUNT(*) FROM outbox WHERE kind = 'notification' AND status = 'PENDING'",
            )
            .await
                == 0
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("notification events still pending after 10 s");
    }

    /// Lets the outbox worker run a few rounds (for asserting that nothing more is sent).
    pub async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    pub async fn sign_up(&self, email: &str, display_name: &str) -> Value {
        self.gql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { accepted } }",
            json!({ "i": { "email": email, "password": PASSWORD, "displayName": display_name, "organisation": "Open Data Co-op", "sector": "CIVIL_SOCIETY" } }),
        )
        .await
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Value {
        self.gql(
            None,
            "mutation($i: LogInInput!) { logIn(input: $i) { accessToken accessTokenExpiresAt refreshToken user { id displayName email role emailVerified } } }",
            json!({ "i": { "email": email, "password": password } }),
        )
        .await
    }

    /// Signs up and verifies an account, logs in, and returns (access token, user id,
    /// refresh token). Logs in after verifying, since verification ends earlier sessions.
    pub async fn verified_user(&self, email: &str, display_name: &str) -> Session {
        let r = self.sign_up(email, display_name).await;
        assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");
        let token = token_from_mail(&self.wait_for_mail(email, "verify_email").await);
        self.verify_email(&token).await;
        self.logged_in(email).await
    }

    /// Signs up without verifying, logs in.
    pub async fn unverified_user(&self, email: &str, display_name: &str) -> Session {
        let r = self.sign_up(email, display_name).await;
        assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");
        self.logged_in(email).await
    }

    /// Logs in with the test password.
    pub async fn logged_in(&self, email: &str) -> Session {
        let login = self.log_in(email, PASSWORD).await;
        let l = &login["data"]["logIn"];
        assert!(l["accessToken"].is_string(), "{login}");
        Session {
            access: l["accessToken"].as_str().unwrap_or_default().to_string(),
            refresh: l["refreshToken"].as_str().unwrap_or_default().to_string(),
            user_id: l["user"]["id"].as_str().unwrap_or_default().to_string(),
        }
    }

    /// Makes an account ADMIN the way an operator would bootstrap one.
    pub async fn make_role(&self, email: &str, role: convene::entities::user::Role) {
        let ctx =
            convene::startup::services(std::sync::Arc::new(self.settings.clone()), self.db.clone())
                .expect("services");
        convene::services::accounts::set_role_by_email(&ctx, email, role)
            .await
            .expect("set role");
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
}

/// The token carried by a verification or reset mail's link.
pub fn token_from_mail(mail: &OutgoingMail) -> String {
    let start = mail.text.find("token=").expect("mail has a token link") + "token=".len();
    mail.text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The `extensions.code` of the first error.
pub fn error_code(resp: &Value) -> &str {
    resp["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

pub fn error_field(resp: &Value) -> &str {
    resp["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("<none>")
}

pub async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_string(),
        ))
        .await
        .expect("count query")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

pub async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql).await.expect("statement");
}

/// Starts an app on a database connection prepared by the test (e.g. one that counts
/// statements).
pub async fn spawn_app_with_db(
    db: DatabaseConnection,
    url: String,
    dir: tempfile::TempDir,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_observed(db, url, dir, configure, StatementHook::default()).await
}

/// `spawn_app_with_db`, with `hook` seeing the statements Convene runs on sqlx directly.
async fn spawn_app_observed(
    db: DatabaseConnection,
    url: String,
    dir: tempfile::TempDir,
    configure: impl FnOnce(&mut Settings),
    hook: StatementHook,
) -> TestApp {
    let mut settings = test_settings();
    settings.database.url = SecretString::from(url.clone());
    settings.mail.file_dir = dir.path().join("mail");
    configure(&mut settings);
    convene::db::migrate(&db).await.expect("migrate");
    let mut app = Application::build_with_db(settings.clone(), db)
        .await
        .expect("build app");
    app.observe_statements(hook);
    let address = format!("http://{}", app.local_addr().expect("addr"));
    let db = app.db();
    let mail = app.memory_mail().unwrap_or_default();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run(shutdown.clone()));
    TestApp {
        address,
        db,
        database_url: url,
        mail,
        client: reqwest::Client::new(),
        settings,
        shutdown,
        handle: Some(handle),
        _dir: dir,
    }
}

/// A verified account with a role, logged in.
pub async fn user_with_role(
    app: &TestApp,
    email: &str,
    name: &str,
    role: convene::entities::user::Role,
) -> Session {
    let s = app.verified_user(email, name).await;
    app.make_role(email, role).await;
    s
}

/// Creates a commitment as an official and returns its ID.
pub async fn create_commitment(
    app: &TestApp,
    official: &Session,
    reference: &str,
    title: &str,
) -> String {
    let r = app
        .gql(
            Some(&official.access),
            "mutation($i: CreateCommitmentInput!) { createCommitment(input: $i) { commitment { id } } }",
            json!({"i": {"reference": reference, "title": title, "description": format!("About {title}."), "actionPlan": "Test plan", "leadInstitution": "Cabinet Office", "status": "LIMITED"}}),
        )
        .await;
    r["data"]["createCommitment"]["commitment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createCommitment failed: {r}"))
        .to_string()
}

/// Posts a suggestion and returns its ID.
pub async fn create_suggestion(
    app: &TestApp,
    author: &Session,
    commitment_id: &str,
    title: &str,
) -> String {
    let r = app
        .gql(
            Some(&author.access),
            "mutation($i: CreateSuggestionInput!) { createSuggestion(input: $i) { suggestion { id } } }",
            json!({"i": {"commitmentId": commitment_id, "title": title, "body": format!("Please consider: {title}")}}),
        )
        .await;
    r["data"]["createSuggestion"]["suggestion"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createSuggestion failed: {r}"))
        .to_string()
}

impl TestApp {
    /// A verified account named after `i`, logged in; for tests that need many.
    pub async fn verified_user_quick(&self, i: &i32) -> Session {
        self.verified_user(&format!("crowd{i}@example.org"), &format!("Crowd {i}"))
            .await
    }
}

/// An app whose background jobs are off, so that a test delivers the outbox itself
/// (`deliver`) and knows what exists before and after. Its worker is built as the
/// application builds one: live events on `ctx`'s bus, notification mail by preference,
/// channel posts, the undeliverable-address threshold; mail goes to the app's memory.
pub struct Harness {
    pub app: TestApp,
    pub ctx: convene::services::Ctx,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(configure: impl FnOnce(&mut Settings)) -> Self {
        let app = spawn_app_with(|s| {
            s.jobs.enabled = false;
            configure(s);
        })
        .await;
        let ctx =
            convene::startup::services(std::sync::Arc::new(app.settings.clone()), app.db.clone())
                .expect("services");
        Harness { app, ctx }
    }

    pub fn worker(&self) -> convene::outbox::OutboxWorker {
        let s = &self.app.settings;
        let mailer = convene::mail::Mailer::new(
            convene::mail::Templates::load().expect("templates"),
            std::sync::Arc::new(self.app.mail.clone()),
            &s.mail.from,
            &s.public.base_url,
        );
        convene::outbox::OutboxWorker::new(self.app.db.clone(), mailer, s.jobs.clone())
            .with_events(self.ctx.events.clone())
            .with_tokens(self.ctx.tokens.clone(), s.notifications.clone())
            .with_channels(convene::services::channels::Poster::new(s))
            .with_undeliverable_after(s.mail.undeliverable_after)
    }

    /// Runs the worker until nothing is due.
    pub async fn deliver(&self) {
        let w = self.worker();
        while w.run_once().await.expect("a worker round") > 0 {}
    }

    /// A verified, logged-in account.
    pub async fn user(&self, email: &str, name: &str) -> Session {
        let r = self.app.sign_up(email, name).await;
        assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");
        self.deliver().await;
        let token = token_from_mail(&self.app.wait_for_mail(email, "verify_email").await);
        self.app.verify_email(&token).await;
        self.app.logged_in(email).await
    }

    pub async fn with_role(
        &self,
        email: &str,
        name: &str,
        role: convene::entities::user::Role,
    ) -> Session {
        let s = self.user(email, name).await;
        self.app.make_role(email, role).await;
        s
    }

    /// A request as `who` that must succeed.
    pub async fn gql(&self, who: &Session, query: &str, vars: Value) -> Value {
        let r = self.app.gql(Some(&who.access), query, vars).await;
        assert!(r["errors"].is_null(), "{query}: {r}");
        r
    }

    /// Every notification row as (recipient id, kind) → how many.
    pub async fn all(&self) -> std::collections::BTreeMap<(String, String), i64> {
        use sea_orm::EntityTrait;
        let rows = convene::entities::notification::Entity::find()
            .all(&self.app.db)
            .await
            .expect("notifications");
        let mut out = std::collections::BTreeMap::new();
        for r in rows {
            let kind = sea_orm::ActiveEnum::to_value(&r.kind);
            *out.entry((r.recipient_id.to_string(), kind)).or_insert(0) += 1;
        }
        out
    }

    /// Delivers, then returns only the notifications that delivery wrote.
    pub async fn delivered(&self) -> std::collections::BTreeMap<(String, String), i64> {
        let before = self.all().await;
        self.deliver().await;
        let mut after = self.all().await;
        for (k, n) in before {
            let left = after.get(&k).copied().unwrap_or(0) - n;
            if left == 0 {
                after.remove(&k);
            } else {
                after.insert(k, left);
            }
        }
        after
    }
}

/// The SQL a test app's database runs, in order, but for the outbox worker's, which polls
/// beside the requests a test measures.
#[derive(Clone, Default)]
pub struct Statements(Arc<std::sync::Mutex<Vec<String>>>);

impl Statements {
    pub fn clear(&self) {
        self.0.lock().expect("statements").clear();
    }

    pub fn count(&self) -> usize {
        self.0.lock().expect("statements").len()
    }

    /// The statements run since the last `clear`.
    pub fn taken(&self) -> Vec<String> {
        self.0.lock().expect("statements").clone()
    }
}

/// An app on a fresh database whose statements are recorded (see `Statements`).
pub async fn spawn_app_recording_statements(
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, Statements) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database_url(dir.path()).await;
    let mut db = convene::db::connect_url(&url, 5).await.expect("connect");
    let statements = Statements::default();
    let record = statements.0.clone();
    let push = move |stmt: &sea_orm::Statement| {
        if !stmt.sql.contains("outbox") {
            record.lock().expect("statements").push(stmt.sql.clone());
        }
    };
    let through_sea_orm = push.clone();
    db.set_metric_callback(move |info| through_sea_orm(info.statement));
    // Pages run their statement on sqlx directly (`db::query_all`): counted the same.
    let hook = StatementHook::new(push);
    (
        spawn_app_observed(db, url, dir, configure, hook).await,
        statements,
    )
}
