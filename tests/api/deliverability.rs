//! Undeliverable addresses: permanent SMTP failures (550 from the test SMTP server) counted
//! per account until the address is marked and gets security mail only; transient ones
//! (451) never count; verifying the address again clears the mark. Only a 5xx to `RCPT TO`
//! refuses the address: a 5xx to the greeting, AUTH, `MAIL FROM` or `DATA`, or a relay or
//! quota refusal, is the transport's failure, retried with backoff and never counted.
//!
//! The background worker is off: each test drives the outbox worker itself, against the
//! real SMTP transport, so every attempt is known.

use convene::config::{MailTransportKind, Settings, SmtpTls};
use convene::entities::outbox::{self, Status};
use convene::mail::Mailer;
use convene::outbox::enqueue_mail;
use convene::outbox::OutboxWorker;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::smtp_server::{Rcpt, SmtpServer, Stage, ANY_ADDRESS};

const ANN: &str = "ann.lee@example.org";
const BOB: &str = "bob.ray@example.org";
const DELIVERABLE: &str = "query($id: ID!) { user(id: $id) { emailDeliverable } }";
const ME: &str = "{ me { emailDeliverable } }";

struct Smtp {
    app: TestApp,
    smtp: SmtpServer,
    worker: OutboxWorker,
}

fn use_smtp(s: &mut Settings, smtp: &SmtpServer) {
    s.mail.transport = MailTransportKind::Smtp;
    s.mail.smtp.host = "127.0.0.1".into();
    s.mail.smtp.port = smtp.port();
    s.mail.smtp.tls = SmtpTls::None;
    s.mail.smtp.timeout_secs = 5;
    s.mail.undeliverable_after = 3;
    s.jobs.enabled = false;
}

impl Smtp {
    async fn new() -> Smtp {
        Smtp::with(|_| {}).await
    }

    async fn with(configure: impl FnOnce(&mut Settings)) -> Smtp {
        let smtp = SmtpServer::start().await;
        let app = spawn_app_with(|s| {
            use_smtp(s, &smtp);
            configure(s);
        })
        .await;
        let (mailer, _) =
            Mailer::from_settings(&app.settings.mail, &app.settings.public.base_url).unwrap();
        let worker = OutboxWorker::new(app.db.clone(), mailer, app.settings.jobs.clone())
            .with_undeliverable_after(app.settings.mail.undeliverable_after);
        Smtp { app, smtp, worker }
    }

    /// Runs the worker until nothing is due.
    async fn deliver(&self) {
        while self.worker.run_once().await.expect("a worker round") > 0 {}
    }

    /// The text part of the last mail made from `template` that reached the server for `to`.
    fn last_text(&self, to: &str, template: &str) -> String {
        self.received(to, template)
            .last()
            .unwrap_or_else(|| panic!("no {template} mail to {to}"))
            .clone()
    }

    /// The text parts of the mails made from `template` that reached the server for `to`.
    fn received(&self, to: &str, template: &str) -> Vec<String> {
        self.smtp
            .received_for(to)
            .into_iter()
            .map(|m| m.mime())
            .filter(|m| m.header("X-Convene-Template") == Some(template))
            .map(|m| m.find("text/plain").expect("a text part").decoded())
            .collect()
    }

    async fn verify_from_last_mail(&self, to: &str) {
        let text = self.last_text(to, "verify_email");
        let start = text.find("token=").expect("a token link") + "token=".len();
        let token: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        self.app.verify_email(&token).await;
    }

    async fn user(&self, email: &str, name: &str) -> Session {
        let r = self.app.sign_up(email, name).await;
        assert_eq!(r["data"]["signUp"]["accepted"], true, "{r}");
        self.deliver().await;
        self.verify_from_last_mail(email).await;
        self.app.logged_in(email).await
    }

    /// Queues a mail that is not security mail (a meet-up seat) to `to`.
    async fn queue_ordinary(&self, key: &str, to: &str) {
        let queued = enqueue_mail(
            &self.app.db,
            key,
            to,
            "meetup_rsvp",
            json!({ "display_name": "Ann Lee", "title": "Budget data clinic", "group_name": "Open budgets" }),
        )
        .await
        .unwrap();
        assert!(queued);
    }

    async fn row(&self, key: &str) -> outbox::Model {
        outbox::Entity::find()
            .filter(outbox::Column::IdempotencyKey.eq(key))
            .one(&self.app.db)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no outbox row {key}"))
    }

    async fn deliverable(&self, viewer: Option<&Session>, of: &Session) -> Value {
        let r = self
            .app
            .gql(
                viewer.map(|s| s.access.as_str()),
                DELIVERABLE,
                json!({ "id": of.user_id }),
            )
            .await;
        assert!(r["errors"].is_null(), "{r}");
        r["data"]["user"]["emailDeliverable"].clone()
    }
}

#[tokio::test]
async fn repeated_550s_mark_the_address_until_it_is_verified_again() {
    let t = Smtp::new().await;
    let ann = t.user(ANN, "Ann Lee").await;
    let bob = t.user(BOB, "Bob Ray").await;
    assert_eq!(t.deliverable(Some(&ann), &ann).await, json!(true));

    // The server refuses Ann's mailbox for good. Each refusal is final at once (no retry),
    // and two are not yet enough.
    t.smtp.answer_rcpt(ANN, Rcpt::Permanent);
    t.queue_ordinary("ordinary:1", ANN).await;
    t.queue_ordinary("ordinary:2", ANN).await;
    t.deliver().await;
    for key in ["ordinary:1", "ordinary:2"] {
        let row = t.row(key).await;
        assert_eq!(row.status, Status::Dead, "{row:?}");
        assert_eq!(row.attempts, 1, "{row:?}");
        assert!(
            row.last_error.as_deref().unwrap_or("").contains("550"),
            "{row:?}"
        );
    }
    assert_eq!(t.smtp.refused_rcpt().len(), 2);
    assert_eq!(t.deliverable(Some(&ann), &ann).await, json!(true));

    t.queue_ordinary("ordinary:3", ANN).await;
    t.deliver().await;
    assert_eq!(t.smtp.refused_rcpt().len(), 3);
    // The owner sees the mark; nobody else learns anything.
    assert_eq!(t.deliverable(Some(&ann), &ann).await, json!(false));
    let me = t.app.gql(Some(&ann.access), ME, json!({})).await;
    assert_eq!(me["data"]["me"]["emailDeliverable"], false, "{me}");
    assert_eq!(t.deliverable(Some(&bob), &ann).await, Value::Null);
    assert_eq!(t.deliverable(None, &ann).await, Value::Null);
    assert_eq!(t.deliverable(Some(&bob), &bob).await, json!(true));

    // The mailbox works again, but ordinary mail is no longer even tried…
    t.smtp.answer_rcpt(ANN, Rcpt::Accept);
    let received = t.smtp.received_count();
    t.queue_ordinary("ordinary:4", ANN).await;
    t.deliver().await;
    assert_eq!(t.smtp.received_count(), received);
    let row = t.row("ordinary:4").await;
    assert_eq!(row.status, Status::Dead, "{row:?}");
    assert_eq!(row.last_error.as_deref(), Some("address undeliverable"));
    assert!(t.received(ANN, "meetup_rsvp").is_empty());
    assert_eq!(t.smtp.refused_rcpt().len(), 3);
    // …while security mail still goes.
    let r = t
        .app
        .gql(
            None,
            "mutation($e: String!) { requestPasswordReset(email: $e) { accepted } }",
            json!({ "e": ANN }),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    t.deliver().await;
    assert_eq!(t.received(ANN, "password_reset").len(), 1);
    // A delivery starts the count again; the mark stays.
    assert_eq!(
        count(
            &t.app.db,
            "SELECT COUNT(*) FROM email_deliverability WHERE permanent_failures = 0 AND undeliverable_since IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(t.deliverable(Some(&ann), &ann).await, json!(false));

    // Verifying the address again clears the mark, and mail flows.
    let r = t
        .app
        .gql(
            None,
            "mutation($e: String!) { resendVerificationEmail(email: $e) { accepted } }",
            json!({ "e": ANN }),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    t.deliver().await;
    assert_eq!(t.received(ANN, "verify_email").len(), 2);
    t.verify_from_last_mail(ANN).await;
    assert_eq!(t.deliverable(Some(&ann), &ann).await, json!(true));
    assert_eq!(
        count(&t.app.db, "SELECT COUNT(*) FROM email_deliverability").await,
        0
    );
    t.queue_ordinary("ordinary:5", ANN).await;
    t.deliver().await;
    assert_eq!(t.row("ordinary:5").await.status, Status::Sent);
    assert_eq!(t.received(ANN, "meetup_rsvp").len(), 1);
}

#[tokio::test]
async fn transient_451s_are_retried_and_never_mark_the_address() {
    let t = Smtp::new().await;
    let ann = t.user(ANN, "Ann Lee").await;

    t.smtp.answer_rcpt(ANY_ADDRESS, Rcpt::Transient);
    for i in 0..4 {
        t.queue_ordinary(&format!("ordinary:{i}"), ANN).await;
    }
    for round in 1..=3 {
        t.deliver().await;
        for i in 0..4 {
            let row = t.row(&format!("ordinary:{i}")).await;
            assert_eq!(row.status, Status::Pending, "{row:?}");
            assert_eq!(row.attempts, round, "{row:?}");
        }
        // Due again now, rather than after the backoff.
        exec(
            &t.app.db,
            "UPDATE outbox SET next_attempt_at = created_at WHERE status = 'PENDING'",
        )
        .await;
    }
    assert_eq!(t.smtp.refused_rcpt().len(), 12);
    assert!(t.smtp.refused_rcpt().iter().all(|(_, code)| *code == 451));
    assert_eq!(
        count(&t.app.db, "SELECT COUNT(*) FROM email_deliverability").await,
        0
    );
    assert_eq!(t.deliverable(Some(&ann), &ann).await, json!(true));

    // Once the server accepts again, the retried mail goes through.
    t.smtp.answer_rcpt(ANY_ADDRESS, Rcpt::Accept);
    t.deliver().await;
    assert_eq!(t.received(ANN, "meetup_rsvp").len(), 4);
}

/// Where the test server answers a refusal.
#[derive(Clone, Copy, Debug)]
enum At {
    Stage(Stage),
    Rcpt,
}

#[tokio::test]
async fn refusals_of_the_transport_are_retried_and_never_count_against_the_address() {
    let t = Smtp::with(|s| {
        s.mail.smtp.username = "convene".into();
        s.mail.smtp.password = secrecy::SecretString::from("smtp-password");
    })
    .await;
    let ann = t.user(ANN, "Ann Lee").await;
    // More refusals than `undeliverable_after` (3), every one a 5xx.
    let cases: [(At, &'static str, &str); 8] = [
        (
            At::Stage(Stage::Greeting),
            "554 5.3.2 no service here",
            "the connection",
        ),
        (
            At::Stage(Stage::Auth),
            "535 5.7.8 authentication credentials invalid",
            "AUTH",
        ),
        (
            At::Stage(Stage::MailFrom),
            "550 5.7.1 sender rejected",
            "MAIL FROM",
        ),
        (
            At::Stage(Stage::MailFrom),
            "552 5.3.4 quota exceeded",
            "MAIL FROM",
        ),
        (At::Rcpt, "550 5.7.1 relaying denied", "RCPT TO"),
        (At::Rcpt, "552 5.2.2 over quota", "RCPT TO"),
        (At::Rcpt, "554 5.7.1 relay access denied", "RCPT TO"),
        (At::Stage(Stage::Data), "554 5.6.0 message refused", "DATA"),
    ];
    for (i, (at, reply, stage)) in cases.into_iter().enumerate() {
        match at {
            At::Stage(s) => t.smtp.answer_at(s, Some(reply)),
            At::Rcpt => t.smtp.answer_rcpt(ANY_ADDRESS, Rcpt::Reply(reply)),
        }
        let key = format!("transport:{i}");
        t.queue_ordinary(&key, ANN).await;
        t.deliver().await;
        let row = t.row(&key).await;
        // Retried later, with backoff: not dead, not due yet.
        assert_eq!(row.status, Status::Pending, "{reply}: {row:?}");
        assert_eq!(row.attempts, 1, "{reply}: {row:?}");
        assert!(row.next_attempt_at > row.created_at, "{reply}: {row:?}");
        let error = row.last_error.as_deref().unwrap_or("");
        assert!(error.contains(&reply[..3]), "{reply}: {error}");
        assert!(error.contains(stage), "{reply}: {error}");
        assert!(
            !error.contains("permanent SMTP failure"),
            "{reply}: {error}"
        );
        // Nothing is held against Ann's address.
        assert_eq!(
            count(&t.app.db, "SELECT COUNT(*) FROM email_deliverability").await,
            0,
            "{reply}"
        );
        match at {
            At::Stage(s) => t.smtp.answer_at(s, None),
            At::Rcpt => t.smtp.answer_rcpt(ANY_ADDRESS, Rcpt::Accept),
        }
    }
    assert_eq!(t.smtp.refused_at().len(), 5);
    assert_eq!(t.smtp.refused_rcpt().len(), 3);
    assert_eq!(t.deliverable(Some(&ann), &ann).await, json!(true));

    // The server takes mail again: every retried message goes through.
    exec(
        &t.app.db,
        "UPDATE outbox SET next_attempt_at = created_at WHERE status = 'PENDING'",
    )
    .await;
    t.deliver().await;
    assert_eq!(t.received(ANN, "meetup_rsvp").len(), 8);
    assert_eq!(t.deliverable(Some(&ann), &ann).await, json!(true));
}

#[tokio::test]
async fn a_5xx_to_rcpt_to_refuses_that_address_for_good() {
    let t = Smtp::new().await;
    let ann = t.user(ANN, "Ann Lee").await;
    let bob = t.user(BOB, "Bob Ray").await;
    for (i, reply) in [
        "550 5.1.1 <ann.lee@example.org>: recipient address rejected",
        "553 5.1.3 bad destination mailbox address syntax",
        "550 no such user here",
    ]
    .into_iter()
    .enumerate()
    {
        t.smtp.answer_rcpt(ANN, Rcpt::Reply(reply));
        let key = format!("refused:{i}");
        t.queue_ordinary(&key, ANN).await;
        // Bob's mail, through the same server, is not affected.
        t.queue_ordinary(&format!("bob:{i}"), BOB).await;
        t.deliver().await;
        let row = t.row(&key).await;
        assert_eq!(row.status, Status::Dead, "{reply}: {row:?}");
        assert_eq!(row.attempts, 1, "{reply}: {row:?}");
        let error = row.last_error.as_deref().unwrap_or("");
        assert!(error.contains("permanent SMTP failure"), "{reply}: {error}");
        assert!(error.contains(&reply[..3]), "{reply}: {error}");
        assert_eq!(t.row(&format!("bob:{i}")).await.status, Status::Sent);
    }
    // Three refusals of the address: marked undeliverable, Bob's address is not.
    assert_eq!(t.deliverable(Some(&ann), &ann).await, json!(false));
    assert_eq!(t.deliverable(Some(&bob), &bob).await, json!(true));
}
