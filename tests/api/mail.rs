//! The mail outbox end to end: lettre's real SMTP transport against a test SMTP server,
//! retries through an outage, several workers on one database, idempotency keys, giving
//! up, the file transport, and queuing in the same transaction as the cause.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use convene::config::{MailTransportKind, Settings, SmtpTls};
use convene::entities::outbox::{self, Status};
use convene::mail::Mailer;
use convene::outbox::enqueue_mail;
use convene::outbox::OutboxWorker;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;

use crate::helpers::*;
use crate::smtp_server::{ReceivedMail, SmtpServer};

const WAIT: Duration = Duration::from_secs(15);
const SUBJECT: &str = "Confirm your email address for Convene";
/// A base URL unlike the default, so links and Message-IDs provably come from the settings.
const BASE_URL: &str = "https://convene.example.test";

fn use_smtp(s: &mut Settings, smtp: &SmtpServer) {
    s.mail.transport = MailTransportKind::Smtp;
    s.mail.smtp.host = "127.0.0.1".into();
    s.mail.smtp.port = smtp.port();
    s.mail.smtp.tls = SmtpTls::None;
    s.mail.smtp.timeout_secs = 5;
}

/// Polls `probe` until it yields a value; on timeout panics with `what` and the last state
/// the probe reported.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(state) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last state: {state}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

async fn outbox_rows(db: &DatabaseConnection, recipient: &str) -> Vec<outbox::Model> {
    outbox::Entity::find()
        .filter(outbox::Column::Recipient.eq(recipient))
        .all(db)
        .await
        .expect("read the outbox")
}

/// The single outbox row for `recipient`, once `ready` accepts it.
async fn wait_for_row(
    db: &DatabaseConnection,
    recipient: &str,
    what: &str,
    ready: impl Fn(&outbox::Model) -> bool,
) -> outbox::Model {
    eventually(what, WAIT, || async {
        let rows = outbox_rows(db, recipient).await;
        match rows.as_slice() {
            [row] if ready(row) => Ok(row.clone()),
            _ => Err(format!("{rows:?}")),
        }
    })
    .await
}

async fn wait_for_smtp(smtp: &SmtpServer, recipient: &str) -> ReceivedMail {
    eventually(&format!("an SMTP message to {recipient}"), WAIT, || async {
        smtp.received_for(recipient)
            .into_iter()
            .next()
            .ok_or_else(|| {
                format!(
                    "{} message(s) received, {} refused",
                    smtp.received().len(),
                    smtp.refused()
                )
            })
    })
    .await
}

// ---- a minimal MIME reader, enough for lettre's output ----

struct Entity {
    headers: Vec<(String, String)>,
    body: String,
}

impl Entity {
    fn parse(raw: &str) -> Entity {
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                // A folded header continues the previous one.
                if let Some((_, value)) = headers.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        Entity {
            headers,
            body: body.to_string(),
        }
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn header(&self, name: &str) -> &str {
        match self.all(name).as_slice() {
            [one] => one,
            other => panic!("expected one {name} header, found {other:?}"),
        }
    }

    fn content_type(&self) -> String {
        self.header("Content-Type").to_ascii_lowercase()
    }

    fn parts(&self) -> Vec<Entity> {
        let content_type = self.header("Content-Type");
        let boundary = content_type
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
            .unwrap_or_else(|| panic!("no boundary in {content_type}"))
            .trim_matches('"');
        let delimiter = format!("--{boundary}");
        let mut pieces = self.body.split(delimiter.as_str()).skip(1).peekable();
        let mut parts = Vec::new();
        while let Some(piece) = pieces.next() {
            if piece.starts_with("--") {
                break;
            }
            assert!(
                pieces.peek().is_some(),
                "multipart body has no closing delimiter"
            );
            let piece = piece.strip_prefix("\r\n").unwrap_or(piece);
            let piece = piece.strip_suffix("\r\n").unwrap_or(piece);
            parts.push(Entity::parse(piece));
        }
        parts
    }

    fn decoded_body(&self) -> String {
        let encoding = self
            .all("Content-Transfer-Encoding")
            .first()
            .map(|e| e.to_ascii_lowercase())
            .unwrap_or_else(|| "7bit".into());
        match encoding.as_str() {
            "7bit" | "8bit" => self.body.clone(),
            "quoted-printable" => decode_quoted_printable(&self.body),
            "base64" => {
                use base64::Engine;
                let compact: String = self.body.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .expect("valid base64 body");
                String::from_utf8(bytes).expect("utf-8 body")
            }
            other => panic!("unexpected Content-Transfer-Encoding {other}"),
        }
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'=')
            .then(|| joined.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8 after quoted-printable decoding")
}

/// The token after `{BASE_URL}/verify-email?token=` in `text`.
fn verification_token(text: &str) -> String {
    let prefix = format!("{BASE_URL}/verify-email?token=");
    let start = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in:\n{text}"))
        + prefix.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

// ---- the tests ----

#[tokio::test]
async fn sign_up_delivers_the_verification_mail_over_smtp() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(|s| {
        use_smtp(s, &smtp);
        s.public.base_url = BASE_URL.into();
    })
    .await;
    let email = "ann.lee@example.org";
    let r = app.sign_up(email, "Ann Lee").await;
    assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");

    let received = wait_for_smtp(&smtp, email).await;
    let row = wait_for_row(&app.db, email, "the outbox row to be SENT", |r| {
        r.status == Status::Sent
    })
    .await;
    assert_eq!(row.attempts, 1);
    assert_eq!(row.last_error, None);
    assert_eq!(received.recipients, vec![email.to_string()]);
    assert_eq!(received.mail_from, "no-reply@localhost");

    let message = Entity::parse(&received.data);
    assert_eq!(message.header("To"), email);
    assert_eq!(message.header("From"), "Convene <no-reply@localhost>");
    assert_eq!(message.header("Subject"), SUBJECT);
    // The Message-ID is derived from the outbox row and the public host name.
    assert_eq!(
        message.header("Message-ID"),
        format!("<{}@convene.example.test>", row.id)
    );
    assert_eq!(message.header("X-Convene-Template"), "verify_email");
    assert!(
        message.content_type().starts_with("multipart/alternative"),
        "{}",
        message.content_type()
    );
    let parts = message.parts();
    assert_eq!(parts.len(), 2, "{}", received.data);
    assert!(
        parts[0].content_type().starts_with("text/plain"),
        "{}",
        parts[0].content_type()
    );
    assert!(
        parts[1].content_type().starts_with("text/html"),
        "{}",
        parts[1].content_type()
    );
    let text = parts[0].decoded_body();
    let html = parts[1]
        .decoded_body()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    assert!(text.contains("Hello Ann Lee,"), "{text}");
    let token = verification_token(&text);
    assert_eq!(verification_token(&html), token);
    assert!(
        html.contains(&format!("href=\"{BASE_URL}/verify-email?token={token}\"")),
        "{html}"
    );

    // The link in the delivered mail is the one that verifies the account.
    app.verify_email(&token).await;
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn an_smtp_outage_is_retried_and_the_mail_is_sent_once_after_recovery() {
    let smtp = SmtpServer::start_failing().await;
    let app = spawn_app_with(|s| use_smtp(s, &smtp)).await;
    let email = "outage@example.org";
    let r = app.sign_up(email, "Olive Tage").await;
    assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");

    let failed = wait_for_row(&app.db, email, "a failed delivery attempt", |r| {
        r.attempts >= 1 && r.last_error.is_some()
    })
    .await;
    assert_eq!(failed.status, Status::Pending);
    let error = failed.last_error.unwrap_or_default();
    assert!(error.contains("451"), "{error}");
    assert!(smtp.refused() >= 1);
    assert!(smtp.received().is_empty(), "{:?}", smtp.received());

    smtp.set_failing(false);
    wait_for_smtp(&smtp, email).await;
    // Longer than a retry interval: a second delivery would show up here.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = smtp.received_for(email);
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(smtp.received().len(), 1);
    let row = wait_for_row(&app.db, email, "the outbox row to be SENT", |r| {
        r.status == Status::Sent
    })
    .await;
    assert!(row.attempts >= 2, "{row:?}");
    assert_eq!(row.last_error, None);
    assert!(row.sent_at.is_some());
    assert_eq!(row.locked_until, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_workers_never_send_the_same_row_twice() {
    const MAILS: usize = 40;
    const WORKERS: usize = 4;
    let app = spawn_app_with(|s| {
        s.jobs.enabled = false;
        // Small batches so that the workers interleave.
        s.jobs.batch_size = 3;
    })
    .await;
    for i in 0..MAILS {
        let queued = enqueue_mail(
            &app.db,
            &format!("concurrency:{i}"),
            &format!("member{i}@example.org"),
            "password_changed",
            json!({ "display_name": format!("Member {i}"), "reset_link": format!("{}/reset-password", app.settings.public.base_url) }),
        )
        .await
        .expect("enqueue");
        assert!(queued);
    }

    let start = Arc::new(tokio::sync::Barrier::new(WORKERS));
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        // Each worker has its own connection pool, as separate instances would.
        let db = convene::db::connect_url(&app.database_url, 4)
            .await
            .expect("connect a worker");
        let (mailer, memory) =
            Mailer::from_settings(&app.settings.mail, &app.settings.public.base_url)
                .expect("mailer");
        let memory = memory.expect("a memory transport");
        let worker = OutboxWorker::new(db.clone(), mailer, app.settings.jobs.clone());
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let deadline = Instant::now() + WAIT;
            let mut handled = 0;
            loop {
                let n = worker.run_once().await.expect("an outbox batch");
                handled += n;
                if n > 0 {
                    continue;
                }
                let unsent = count(&db, "SELECT COUNT(*) FROM outbox WHERE status <> 'SENT'").await;
                if unsent == 0 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{unsent} rows still unsent after {WAIT:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (handled, memory.messages())
        }));
    }

    let mut handled = Vec::new();
    let mut sent = Vec::new();
    for task in tasks {
        let (n, messages) = task.await.expect("worker task");
        handled.push(n);
        sent.extend(messages);
    }
    assert_eq!(
        handled.iter().sum::<usize>(),
        MAILS,
        "rows handled per worker: {handled:?}"
    );
    assert_eq!(sent.len(), MAILS, "rows handled per worker: {handled:?}");
    let mut recipients: Vec<String> = sent.iter().map(|m| m.to.clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), MAILS, "some recipient got two mails");
    for i in 0..MAILS {
        let to = format!("member{i}@example.org");
        assert_eq!(sent.iter().filter(|m| m.to == to).count(), 1, "{to}");
    }
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(*) FROM outbox WHERE status = 'SENT' AND attempts = 1"
        )
        .await,
        MAILS as i64
    );
}

#[tokio::test]
async fn the_same_idempotency_key_queues_one_row_and_one_mail() {
    let app = spawn_app().await;
    let to = "zoe@example.org";
    let payload = json!({ "display_name": "Zoe", "reset_link": "http://x/reset" });
    let key = "password_changed:test-event:zoe@example.org";
    assert!(
        enqueue_mail(&app.db, key, to, "password_changed", payload.clone())
            .await
            .expect("first enqueue")
    );
    assert!(
        !enqueue_mail(&app.db, key, to, "password_changed", payload.clone())
            .await
            .expect("second enqueue"),
        "queuing a key twice must keep the first row"
    );
    let sql = format!("SELECT COUNT(*) FROM outbox WHERE idempotency_key = '{key}'");
    assert_eq!(count(&app.db, &sql).await, 1);

    app.wait_for_mail(to, "password_changed").await;
    wait_for_row(&app.db, to, "the outbox row to be SENT", |r| {
        r.status == Status::Sent
    })
    .await;
    // Still a duplicate once the first has been sent.
    assert!(
        !enqueue_mail(&app.db, key, to, "password_changed", payload.clone())
            .await
            .expect("third enqueue")
    );

    // Racing enqueues of one key: exactly one wins.
    let racing_to = "race@example.org";
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let db = app.db.clone();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            enqueue_mail(&db, "race-key", racing_to, "password_changed", payload)
                .await
                .expect("racing enqueue")
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.expect("task") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    app.wait_for_mail(racing_to, "password_changed").await;

    app.settle().await;
    assert_eq!(app.mails_to(to).len(), 1);
    assert_eq!(app.mails_to(racing_to).len(), 1);
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM outbox").await, 2);
}

#[tokio::test]
async fn a_mail_that_keeps_failing_is_marked_dead_after_max_attempts() {
    let smtp = SmtpServer::start_failing().await;
    let app = spawn_app_with(|s| {
        use_smtp(s, &smtp);
        s.jobs.max_attempts = 2;
        s.jobs.backoff_base_secs = 1;
        s.jobs.backoff_max_secs = 1;
    })
    .await;
    let to = "unlucky@example.org";
    enqueue_mail(
        &app.db,
        "dead-letter-test",
        to,
        "password_changed",
        json!({ "display_name": "Unlucky", "reset_link": "http://x/reset" }),
    )
    .await
    .expect("enqueue");

    let dead = wait_for_row(&app.db, to, "the outbox row to be DEAD", |r| {
        r.status == Status::Dead
    })
    .await;
    assert_eq!(dead.attempts, 2);
    let error = dead.last_error.clone().unwrap_or_default();
    assert!(!error.trim().is_empty(), "{dead:?}");
    assert!(error.contains("451"), "{error}");
    assert_eq!(dead.sent_at, None);
    assert_eq!(dead.locked_until, None);
    assert_eq!(smtp.refused(), 2);

    // A dead row is left alone, even once the server works again.
    smtp.set_failing(false);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = outbox_rows(&app.db, to).await;
    assert_eq!(later, vec![dead]);
    assert_eq!(smtp.refused(), 2);
    assert!(smtp.received().is_empty(), "{:?}", smtp.received());
}

#[tokio::test]
async fn the_file_transport_writes_an_eml_file() {
    let app = spawn_app_with(|s| s.mail.transport = MailTransportKind::File).await;
    let dir = tempdir_path(&app).join("mail");
    assert_eq!(app.settings.mail.file_dir, dir);
    let email = "file.reader@example.org";
    let r = app.sign_up(email, "File Reader").await;
    assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");
    wait_for_row(&app.db, email, "the outbox row to be SENT", |r| {
        r.status == Status::Sent
    })
    .await;

    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the mail folder exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let raw = std::fs::read_to_string(&files[0]).expect("read the .eml file");
    let message = Entity::parse(&raw.replace("\r\n", "\n").replace('\n', "\r\n"));
    assert_eq!(message.header("Subject"), SUBJECT);
    assert_eq!(message.header("To"), email);
    assert!(message.content_type().starts_with("multipart/alternative"));
}

#[tokio::test]
async fn a_rejected_sign_up_queues_no_mail() {
    let app = spawn_app().await;
    let r = app
        .gql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { accepted } }",
            json!({ "i": { "email": "weak@example.org", "password": "passwordpassword", "displayName": "Weak Password", "sector": "CIVIL_SOCIETY" } }),
        )
        .await;
    assert_eq!(error_code(&r), "BAD_USER_INPUT", "{r}");
    assert_eq!(error_field(&r), "password", "{r}");
    app.settle().await;
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM users").await, 0);
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM outbox").await, 0);
    assert!(app.mail.messages().is_empty());
}

#[tokio::test]
async fn a_sign_up_whose_mail_cannot_be_queued_creates_no_account() {
    let app = spawn_app().await;
    // Make every outbox insert fail, after the user row was written in the same transaction.
    if is_postgres() {
        exec(
            &app.db,
            "CREATE FUNCTION refuse_outbox() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'outbox refused'; END $$ LANGUAGE plpgsql",
        )
        .await;
        exec(
            &app.db,
            "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox \
             FOR EACH ROW EXECUTE FUNCTION refuse_outbox()",
        )
        .await;
    } else {
        exec(
            &app.db,
            "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox \
             BEGIN SELECT RAISE(ABORT, 'outbox refused'); END",
        )
        .await;
    }
    let email = "atomic@example.org";
    let r = app.sign_up(email, "Atomic Anna").await;
    assert!(r["errors"][0].is_object(), "{r}");
    assert_ne!(r["data"]["signUp"]["accepted"], true, "{r}");
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM users").await, 0);
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM email_tokens").await, 0);
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM outbox").await, 0);

    // Without the fault the same sign-up goes through and is mailed.
    exec(
        &app.db,
        if is_postgres() {
            "DROP TRIGGER refuse_outbox ON outbox"
        } else {
            "DROP TRIGGER refuse_outbox"
        },
    )
    .await;
    let r = app.sign_up(email, "Atomic Anna").await;
    assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");
    app.wait_for_mail(email, "verify_email").await;
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM users").await, 1);
}

#[tokio::test]
async fn a_stopped_worker_takes_no_more_rows() {
    let app = spawn_app_with(|s| {
        s.jobs.enabled = false;
        s.jobs.batch_size = 1;
    })
    .await;
    for i in 0..3 {
        enqueue_mail(
            &app.db,
            &format!("stop:{i}"),
            &format!("stop{i}@example.org"),
            "password_changed",
            json!({ "display_name": "Stop", "reset_link": "x" }),
        )
        .await
        .expect("enqueue");
    }
    let (mailer, memory) =
        Mailer::from_settings(&app.settings.mail, &app.settings.public.base_url).expect("mailer");
    let memory = memory.expect("a memory transport");
    let worker = OutboxWorker::new(app.db.clone(), mailer.clone(), app.settings.jobs.clone());
    let cancel = tokio_util::sync::CancellationToken::new();
    cancel.cancel();
    // Already told to stop: returns at once although rows are due.
    tokio::time::timeout(Duration::from_secs(5), worker.run(cancel))
        .await
        .expect("a cancelled worker returns");
    assert!(memory.messages().is_empty());
    // A running worker drains them, then stops when told.
    let worker = OutboxWorker::new(app.db.clone(), mailer, app.settings.jobs.clone());
    let cancel = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(worker.run(cancel.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while memory.messages().len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(memory.messages().len(), 3);
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the worker stops")
        .expect("no panic");
}
