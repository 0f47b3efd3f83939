//! The `convene` binary: help, schema export, production checks, migrations and the
//! admin bootstrap.

use std::path::Path;
use std::process::{Command, Output};

use migration::{Migrator, MigratorTrait};
use secrecy::SecretString;

use crate::helpers::*;

/// The real binary, run in `dir` with the project's configuration and none of the caller's
/// CONVENE settings.
fn convene(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_convene"));
    cmd.current_dir(dir)
        .env(
            "CONVENE_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        )
        .env("RUST_LOG", "warn");
    for (key, _) in std::env::vars_os() {
        let is_ours = key.to_str().is_some_and(|k| {
            k.starts_with("CONVENE_")
                && k != "CONVENE_CONFIG_DIR"
                && k != "CONVENE_TEST_DATABASE_URL"
        });
        if is_ours {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run convene")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn migration_names() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect()
}

/// The status printed for each migration by `migrate`.
fn statuses(out: &Output) -> Vec<(String, String)> {
    let stdout = text(&out.stdout);
    migration_names()
        .into_iter()
        .map(|name| {
            let status = stdout
                .lines()
                .find_map(|l| {
                    let mut parts = l.split_whitespace();
                    (parts.next() == Some(name.as_str())).then(|| parts.next().unwrap_or(""))
                })
                .unwrap_or("<missing>")
                .to_string();
            (name, status)
        })
        .collect()
}

#[test]
fn help_lists_the_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(convene(dir.path()).arg("--help"));
    assert!(out.status.success(), "{}", describe(&out));
    let help = text(&out.stdout);
    for command in ["serve", "worker", "migrate", "export-schema", "user"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "--help does not list {command}:\n{help}"
        );
    }
}

#[test]
fn export_schema_writes_the_sdl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("out.graphql");
    let out = run(convene(dir.path())
        .args(["export-schema", "--output"])
        .arg(&target));
    assert!(out.status.success(), "{}", describe(&out));
    let written = std::fs::read_to_string(&target).expect("the schema file");
    assert_eq!(written, convene::graphql::schema::sdl());
}

#[test]
fn production_refuses_to_start_without_its_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(convene(dir.path())
        .env("CONVENE_ENV", "production")
        .arg("serve"));
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = text(&out.stderr);
    for setting in ["auth.signing_key", "database.url", "mail.smtp.host"] {
        assert!(stderr.contains(setting), "{setting} not named:\n{stderr}");
    }
    // It did not get as far as listening.
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[test]
fn a_short_signing_key_is_refused_in_development_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(convene(dir.path())
        .env("CONVENE_ENV", "development")
        .env("CONVENE__AUTH__SIGNING_KEY", "short-dev-key")
        .arg("serve"));
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("auth.signing_key"), "{stderr}");
    assert!(stderr.contains("at least 32 characters"), "{stderr}");
    assert!(!stderr.contains("short-dev-key"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[test]
fn production_errors_do_not_print_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let short_key = "too-short-secret-key-7f3a";
    let smtp_password = "smtp-password-5d1e-do-not-print";
    let db_password = "db-password-9c2b-do-not-print";
    let out = run(convene(dir.path())
        .env("CONVENE_ENV", "production")
        .env("CONVENE__AUTH__SIGNING_KEY", short_key)
        .env("CONVENE__MAIL__SMTP__PASSWORD", smtp_password)
        .env(
            "CONVENE__DATABASE__URL",
            format!("postgres://convene:{db_password}@127.0.0.1:1/convene"),
        )
        .arg("serve"));
    assert!(!out.status.success(), "{}", describe(&out));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("auth.signing_key"), "{}", describe(&out));
    for secret in [short_key, smtp_password, db_password] {
        assert!(!all.contains(secret), "printed a secret:\n{all}");
    }
}

#[tokio::test]
async fn migrate_applies_lists_and_rolls_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = empty_database_url(dir.path()).await;
    let names = migration_names();
    let migrate = |action: &str| {
        run(convene(dir.path())
            .env("CONVENE__DATABASE__URL", &url)
            .args(["migrate", action]))
    };

    let out = migrate("status");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        statuses(&out).iter().all(|(_, s)| s == "Pending"),
        "{}",
        describe(&out)
    );

    let out = migrate("up");
    assert!(out.status.success(), "{}", describe(&out));
    let out = migrate("status");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        statuses(&out).iter().all(|(_, s)| s == "Applied"),
        "{}",
        describe(&out)
    );

    let out = migrate("down");
    assert!(out.status.success(), "{}", describe(&out));
    let out = migrate("status");
    assert!(out.status.success(), "{}", describe(&out));
    let after = statuses(&out);
    let last = names.last().expect("a migration").clone();
    for (name, status) in &after {
        let want = if *name == last { "Pending" } else { "Applied" };
        assert_eq!(status, want, "{name}: {}", describe(&out));
    }
}

#[tokio::test]
async fn user_set_role_promotes_an_existing_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let url = fresh_database_url(dir.path()).await;
    let app = spawn_app_on(dir, url.clone(), |_| {}).await;
    let email = "Rosa.Parks@Example.org";
    let r = app.sign_up(email, "Rosa Parks").await;
    assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");
    let role_sql = "SELECT role FROM users WHERE email_normalized = 'rosa.parks@example.org'";
    let role = |db: sea_orm::DatabaseConnection| async move {
        use sea_orm::{ConnectionTrait, Statement};
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                role_sql.to_string(),
            ))
            .await
            .expect("query")
            .expect("the account");
        row.try_get::<String>("", "role").expect("role")
    };
    assert_eq!(role(app.db.clone()).await, "MEMBER");

    // The command runs off the test's one runtime thread: waiting for it there would
    // freeze the server in this process, and a write it had under way (its outbox worker
    // sending the sign-up mail, say) would hold SQLite's lock until the command gave up waiting
    // ("database is locked", about one run in fifty on a loaded machine).
    let set_role = |email: &str| {
        let mut cmd = convene(work.path());
        cmd.env("CONVENE__DATABASE__URL", &url)
            .args(["user", "set-role", "--email", email, "--role", "ADMIN"]);
        async move {
            tokio::task::spawn_blocking(move || run(&mut cmd))
                .await
                .expect("the command's thread")
        }
    };
    let out = set_role(email).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(role(app.db.clone()).await, "ADMIN");

    // The running server sees it too.
    let login = app.log_in(email, PASSWORD).await;
    assert_eq!(login["data"]["logIn"]["user"]["role"], "ADMIN", "{login}");

    let out = set_role("nobody@example.org").await;
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("not found"),
        "{}",
        describe(&out)
    );
}

#[test]
fn settings_debug_output_hides_secrets() {
    let signing_key = "signing-key-that-must-stay-hidden-0123456789";
    let smtp_password = "smtp-password-that-must-stay-hidden";
    let db_password = "db-password-that-must-stay-hidden";
    let mut settings = test_settings();
    settings.auth.signing_key = SecretString::from(signing_key);
    settings.mail.smtp.password = SecretString::from(smtp_password);
    settings.database.url = SecretString::from(format!(
        "postgres://convene:{db_password}@db.internal/convene"
    ));
    for shown in [format!("{settings:?}"), format!("{settings:#?}")] {
        assert!(shown.contains("smtp"), "Debug shows the settings: {shown}");
        for secret in [signing_key, smtp_password, db_password] {
            assert!(!shown.contains(secret), "Debug shows a secret: {shown}");
        }
    }
}
