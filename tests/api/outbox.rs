//! The outbox's lease and its secrets at rest: a worker records an outcome only while it
//! still holds the row, and delivered or dead rows keep no token or link.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use convene::config::{MailTransportKind, SmtpTls};
use convene::entities::outbox::{self, Status};
use convene::mail::{MailTransport, Mailer, OutgoingMail, Templates};
use convene::outbox::enqueue_mail;
use convene::outbox::OutboxWorker;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::helpers::*;
use crate::smtp_server::SmtpServer;

/// The outbox rows for `recipient` once every one of them passes `done` (at most 10 s).
async fn rows_when(
    db: &DatabaseConnection,
    recipient: &str,
    done: impl Fn(&outbox::Model) -> bool,
) -> Vec<outbox::Model> {
    let mut rows = Vec::new();
    for _ in 0..200 {
        rows = outbox::Entity::find()
            .filter(outbox::Column::Recipient.eq(recipient))
            .all(db)
            .await
            .expect("read the outbox");
        if !rows.is_empty() && rows.iter().all(&done) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("outbox rows for {recipient} never got there: {rows:?}");
}

/// Fails when the stored payload still holds `secret`, or any token or link at all.
fn assert_no_secret(row: &outbox::Model, secret: &str) {
    assert!(!row.payload.contains(secret), "{row:?}");
    let payload: Value = serde_json::from_str(&row.payload).expect("payload is JSON");
    assert!(payload.get("token").is_none(), "{row:?}");
    assert!(payload.get("link").is_none(), "{row:?}");
    // What is not a secret stays, for the record.
    assert!(payload["display_name"].is_string(), "{row:?}");
}

#[tokio::test]
async fn delivered_mail_leaves_no_token_or_link_in_the_outbox() {
    let app = spawn_app().await;
    let email = "ann@example.org";
    app.unverified_user(email, "Ann").await;
    let verify = app.wait_for_mail(email, "verify_email").await;
    let verify_token = token_from_mail(&verify);
    assert!(
        verify
            .text
            .contains(&format!("verify-email?token={verify_token}")),
        "the mail itself carries the link: {}",
        verify.text
    );
    let r = app
        .gql(
            None,
            "mutation($e: String!) { requestPasswordReset(email: $e) { accepted } }",
            json!({ "e": email }),
        )
        .await;
    assert_eq!(r["data"]["requestPasswordReset"]["accepted"], true, "{r}");
    let reset = app.wait_for_mail(email, "password_reset").await;
    let reset_token = token_from_mail(&reset);
    assert!(reset
        .text
        .contains(&format!("reset-password?token={reset_token}")));

    let rows = rows_when(&app.db, email, |r| r.status == Status::Sent).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_no_secret(row, &verify_token);
        assert_no_secret(row, &reset_token);
        assert_eq!(row.lease_token, None);
    }
    // The tokens still work: only the copies at rest are gone.
    app.verify_email(&verify_token).await;
}

#[tokio::test]
async fn a_dead_lettered_mail_keeps_no_token() {
    let smtp = SmtpServer::start_failing().await;
    let app = spawn_app_with(|s| {
        s.mail.transport = MailTransportKind::Smtp;
        s.mail.smtp.host = "127.0.0.1".into();
        s.mail.smtp.port = smtp.port();
        s.mail.smtp.tls = SmtpTls::None;
        s.mail.smtp.timeout_secs = 5;
        s.jobs.max_attempts = 1;
    })
    .await;
    let email = "unlucky@example.org";
    app.unverified_user(email, "Unlucky").await;
    let rows = rows_when(&app.db, email, |r| r.status == Status::Dead).await;
    assert_eq!(rows.len(), 1);
    assert!(smtp.refused() >= 1);
    let row = &rows[0];
    assert!(row.last_error.is_some(), "{row:?}");
    assert!(!row.payload.contains("token="), "{row:?}");
    assert_no_secret(row, "verify-email");
}

/// A transport that announces each send, waits to be released, then fails it.
struct Held {
    started: Notify,
    release: Notify,
}

#[async_trait]
impl MailTransport for Held {
    async fn send(&self, _mail: &OutgoingMail) -> anyhow::Result<()> {
        self.started.notify_one();
        self.release.notified().await;
        anyhow::bail!("connection reset by peer")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_was_taken_over_records_nothing() {
    let app = spawn_app_with(|s| {
        s.jobs.enabled = false;
        // So the slow worker's failure, were it recorded, would mark the row DEAD.
        s.jobs.max_attempts = 1;
    })
    .await;
    let to = "leased@example.org";
    enqueue_mail(
        &app.db,
        "lease-test",
        to,
        "password_changed",
        json!({ "display_name": "Lee", "reset_link": "https://convene.example/reset" }),
    )
    .await
    .expect("enqueue");

    // The slow worker claims the row and hangs in the middle of sending it.
    let held = Arc::new(Held {
        started: Notify::new(),
        release: Notify::new(),
    });
    let slow_mailer = Mailer::new(
        Templates::load().expect("templates"),
        held.clone(),
        &app.settings.mail.from,
        &app.settings.public.base_url,
    );
    let slow = OutboxWorker::new(app.db.clone(), slow_mailer, app.settings.jobs.clone());
    let slow_batch = tokio::spawn(async move { slow.run_once().await });
    held.started.notified().await;
    let claimed = rows_when(&app.db, to, |r| r.lease_token.is_some()).await;
    let slow_token = claimed[0].lease_token;

    // Its lease runs out (set back rather than waited for), and another worker takes over.
    outbox::Entity::update_many()
        .col_expr(
            outbox::Column::LockedUntil,
            Expr::value(chrono::Utc::now() - chrono::Duration::hours(1)),
        )
        .filter(outbox::Column::Recipient.eq(to))
        .exec(&app.db)
        .await
        .expect("expire the lease");
    let (mailer, memory) =
        Mailer::from_settings(&app.settings.mail, &app.settings.public.base_url).expect("mailer");
    let other = OutboxWorker::new(app.db.clone(), mailer, app.settings.jobs.clone());
    assert_eq!(other.run_once().await.expect("the other batch"), 1);
    assert_eq!(memory.expect("memory transport").messages().len(), 1);
    let sent = rows_when(&app.db, to, |r| r.status == Status::Sent).await;

    // The slow worker's send now fails; the row is no longer its to mark.
    held.release.notify_one();
    let handled = slow_batch
        .await
        .expect("no panic")
        .expect("a lost lease is not an error");
    assert_eq!(handled, 1);
    let after = rows_when(&app.db, to, |_| true).await;
    assert_eq!(
        after, sent,
        "the slow worker changed a row it no longer held"
    );
    let row = &after[0];
    assert_eq!(row.status, Status::Sent);
    assert_eq!(row.attempts, 1);
    assert_eq!(row.last_error, None);
    assert_eq!(row.lease_token, None);
    assert_ne!(slow_token, None);
}

#[tokio::test]
async fn the_worker_lease_covers_a_batch_of_timed_out_attempts() {
    let app = spawn_app_with(|s| {
        s.jobs.enabled = false;
        s.jobs.lease_secs = 10;
        s.jobs.batch_size = 20;
        // Five at a time: four rounds of attempts that may each run 30 s.
        s.jobs.concurrency = 5;
        s.mail.smtp.timeout_secs = 30;
    })
    .await;
    let (mailer, _) =
        Mailer::from_settings(&app.settings.mail, &app.settings.public.base_url).expect("mailer");
    assert_eq!(mailer.attempt_timeout(), Duration::from_secs(30));
    let worker = OutboxWorker::new(app.db.clone(), mailer, app.settings.jobs.clone());
    assert!(
        worker.lease() > Duration::from_secs(4 * 30),
        "{:?}",
        worker.lease()
    );

    // And a claim really leases its rows that long.
    enqueue_mail(
        &app.db,
        "lease-length",
        "long@example.org",
        "password_changed",
        json!({ "display_name": "Long", "reset_link": "x" }),
    )
    .await
    .expect("enqueue");
    let before = chrono::Utc::now();
    let held = Arc::new(Held {
        started: Notify::new(),
        release: Notify::new(),
    });
    let slow = OutboxWorker::new(
        app.db.clone(),
        Mailer::new(
            Templates::load().expect("templates"),
            held.clone(),
            &app.settings.mail.from,
            &app.settings.public.base_url,
        )
        .with_attempt_timeout(Duration::from_secs(30)),
        app.settings.jobs.clone(),
    );
    let batch = tokio::spawn(async move { slow.run_once().await });
    held.started.notified().await;
    let row = rows_when(&app.db, "long@example.org", |r| r.locked_until.is_some()).await;
    let until = row[0].locked_until.expect("leased");
    assert!(
        until >= before + chrono::Duration::seconds(4 * 30),
        "leased only until {until}"
    );
    held.release.notify_one();
    batch.await.expect("no panic").expect("batch");
}
