//! What the benchmarks that drive a running Convene share: the release binary started as in
//! production, a GraphQL client call, accounts, and numbers from the environment.
//! Included with `mod common;`; each benchmark uses only part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{json, Value};

pub const SIGNING_KEY: &str = "bench-signing-key-0123456789abcdef0123456789";
pub const PASSWORD: &str = "violet tractor on a quiet harbour 1987";

/// A whole number from the environment, or `default` when unset or empty.
pub fn number(key: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(key) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().with_context(|| key.to_string()),
        _ => Ok(default),
    }
}

/// A fresh, migrated database: `name` on the PostgreSQL server of `pg_admin` (an URL of any
/// database there), or a SQLite file in `dir`. Returns its URL and the backend's name.
pub async fn fresh_database(
    pg_admin: Option<&str>,
    name: &str,
    dir: &Path,
) -> anyhow::Result<(String, &'static str)> {
    let (url, backend) = match pg_admin {
        Some(admin) => {
            let admin_db = convene::db::connect_url(admin, 1).await?;
            admin_db
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            admin_db
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await?;
            admin_db.close().await?;
            let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
            (format!("{base}/{name}"), "PostgreSQL")
        }
        None => {
            let file = dir.join("convene.db");
            let _ = std::fs::remove_file(&file);
            (format!("sqlite://{}?mode=rwc", file.display()), "SQLite")
        }
    };
    let db = convene::db::connect_url(&url, 2).await?;
    convene::db::migrate(&db).await?;
    db.close().await?;
    Ok((url, backend))
}

/// A Convene process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary` on a free port against `url`, configured through `CONVENE__*` variables
/// as in production, with the benchmark's own settings in `env`.
pub fn spawn_convene(binary: &Path, url: &str, env: &[(&str, String)]) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let child = Command::new(binary)
        .env("CONVENE_CONFIG_DIR", &config_dir)
        .env("CONVENE__DATABASE__URL", url)
        .env("CONVENE__SERVER__ADDRESS", format!("127.0.0.1:{port}"))
        .env("CONVENE__AUTH__SIGNING_KEY", SIGNING_KEY)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    Ok(Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        port,
    })
}

/// One GraphQL request; its `data`, or an error carrying the response's `errors`.
pub async fn gql(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let mut req = http
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let v: Value = req.send().await?.json().await?;
    if !v["errors"].is_null() {
        bail!("{query}: {v}");
    }
    Ok(v["data"].clone())
}

/// Who signs up: display name, organisation, sector.
pub struct Profile<'a>(pub &'a str, pub &'a str, pub &'a str);

/// Signs up, marks the account verified and gives it `role` in the database, logs in:
/// the access token.
pub async fn account(
    http: &reqwest::Client,
    base: &str,
    db: &DatabaseConnection,
    email: &str,
    role: convene::entities::user::Role,
    Profile(display_name, organisation, sector): Profile<'_>,
) -> anyhow::Result<String> {
    use convene::entities::user;
    gql(
        http,
        base,
        None,
        "mutation($i: SignUpInput!) { signUp(input: $i) { accepted } }",
        json!({ "i": { "email": email, "password": PASSWORD, "displayName": display_name, "organisation": organisation, "sector": sector } }),
    )
    .await?;
    user::Entity::update_many()
        .col_expr(
            user::Column::EmailVerifiedAt,
            Expr::value(Some(chrono::Utc::now())),
        )
        .col_expr(user::Column::Role, Expr::value(role))
        .filter(user::Column::Email.eq(email))
        .exec(db)
        .await?;
    let d = gql(
        http,
        base,
        None,
        "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
        json!({ "i": { "email": email, "password": PASSWORD } }),
    )
    .await?;
    Ok(d["logIn"]["accessToken"]
        .as_str()
        .context("no access token")?
        .to_string())
}
