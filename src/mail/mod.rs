//! Mail: templates kept as files under `templates/mail/` (compiled in), and the transports
//! that carry a rendered message (SMTP, `.eml` files, or memory for tests). Nothing sends
//! mail directly: services write outbox rows, and the outbox worker calls `Mailer::send`.

mod templates;
mod transport;

pub use templates::{RenderedMail, Templates};
pub use transport::{
    is_permanent_failure, ListUnsubscribe, MailAttachment, MailTransport, MemoryTransport,
    OutgoingMail, PermanentFailure,
};

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::{MailSettings, MailTransportKind};

/// Mail about the account's own security: verifying the address, an existing account at
/// sign-up, password resets and changes. It is always sent, whatever the person's
/// preferences or the address's deliverability.
pub const SECURITY_TEMPLATES: [&str; 5] = [
    "verify_email",
    "account_exists",
    "password_reset",
    "password_reset_no_account",
    "password_changed",
];

/// Whether `template` is security mail (see [`SECURITY_TEMPLATES`]).
pub fn is_security_template(template: &str) -> bool {
    SECURITY_TEMPLATES.contains(&template)
}

/// Renders and sends; shared by every worker of an instance.
#[derive(Clone)]
pub struct Mailer {
    templates: Arc<Templates>,
    transport: Arc<dyn MailTransport>,
    from: String,
    base_url: String,
    attempt_timeout: Duration,
}

/// How long one delivery attempt may take when the settings do not say.
const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

impl Mailer {
    pub fn new(
        templates: Templates,
        transport: Arc<dyn MailTransport>,
        from: &str,
        base_url: &str,
    ) -> Self {
        Mailer {
            templates: Arc::new(templates),
            transport,
            from: from.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
        }
    }

    /// Bounds each delivery attempt as a whole. lettre's own timeout applies to each SMTP
    /// command, so without this one slow server could hold a send for many times as long,
    /// outliving the outbox lease that was sized from it.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout.max(Duration::from_secs(1));
        self
    }

    pub fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// Builds the transport the settings name. The memory transport is returned too, so the
    /// caller (the test harness) can read what was "sent".
    pub fn from_settings(
        settings: &MailSettings,
        base_url: &str,
    ) -> anyhow::Result<(Self, Option<MemoryTransport>)> {
        let (transport, memory): (Arc<dyn MailTransport>, _) = match settings.transport {
            MailTransportKind::Smtp => (Arc::new(transport::smtp(&settings.smtp)?), None),
            MailTransportKind::File => (
                Arc::new(transport::FileTransport::new(&settings.file_dir)?),
                None,
            ),
            MailTransportKind::Memory => {
                let m = MemoryTransport::default();
                (Arc::new(m.clone()), Some(m))
            }
        };
        Ok((
            Mailer::new(Templates::load()?, transport, &settings.from, base_url)
                .with_attempt_timeout(Duration::from_secs(settings.smtp.timeout_secs)),
            memory,
        ))
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Renders `template` for `recipient` and sends it with a stable Message-ID derived from
    /// the outbox row, so a retry after an unknown outcome can be recognised downstream.
    pub async fn send(
        &self,
        message_key: &str,
        recipient: &str,
        template: &str,
        payload: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let rendered = self
            .templates
            .render(template, recipient, &self.base_url, payload)?;
        let host = self
            .base_url
            .split("://")
            .nth(1)
            .and_then(|h| h.split(['/', ':']).next())
            .filter(|h| !h.is_empty())
            .unwrap_or("convene.invalid");
        let mail = OutgoingMail {
            from: self.from.clone(),
            to: recipient.to_string(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            message_id: format!("<{message_key}@{host}>"),
            template: template.to_string(),
            attachments: calendar_attachment(payload, &self.from, recipient)?
                .into_iter()
                .collect(),
            list_unsubscribe: self.list_unsubscribe(payload)?,
        };
        tokio::time::timeout(self.attempt_timeout, self.transport.send(&mail))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "delivery took longer than {} s and was abandoned",
                    self.attempt_timeout.as_secs()
                )
            })?
    }
}

/// Payload key of notification mail: the recipient's unsubscribe token (see
/// `services::unsubscribe`), which becomes the `List-Unsubscribe` headers.
pub const UNSUBSCRIBE_TOKEN_KEY: &str = "unsubscribe_token";

impl Mailer {
    /// The `List-Unsubscribe` of a payload with an unsubscribe token: the page at
    /// `{base_url}/unsubscribe/{token}` and a `mailto:` to the sender. Tokens are base64url
    /// and dots, so they need no escaping in either.
    fn list_unsubscribe(
        &self,
        payload: &serde_json::Value,
    ) -> anyhow::Result<Option<ListUnsubscribe>> {
        let Some(token) = payload.get(UNSUBSCRIBE_TOKEN_KEY) else {
            return Ok(None);
        };
        let token = token
            .as_str()
            .filter(|t| {
                !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            })
            .ok_or_else(|| {
                anyhow::anyhow!("the mail payload's {UNSUBSCRIBE_TOKEN_KEY} is not a token")
            })?;
        let sender: lettre::message::Mailbox =
            self.from.parse().context("mail.from is not a mailbox")?;
        Ok(Some(ListUnsubscribe {
            url: format!("{}/unsubscribe/{token}", self.base_url),
            mailto: format!("mailto:{}?subject=unsubscribe%20{token}", sender.email),
        }))
    }
}

/// Payload keys of a mail about a meet-up: the iCalendar text to attach, and its iTIP
/// method (`REQUEST` or `CANCEL`; `PUBLISH` too), so that calendar apps update the entry.
pub const ICS_KEY: &str = "ics";
pub const ICS_METHOD_KEY: &str = "ics_method";

/// The `invite.ics` a payload carries, if any; a REQUEST or CANCEL is addressed from the
/// sender (`from`) to `recipient`, as iTIP wants. A payload with `ics` and no known method
/// cannot be sent as meant, and is an error (the row is retried, then given up).
fn calendar_attachment(
    payload: &serde_json::Value,
    from: &str,
    recipient: &str,
) -> anyhow::Result<Option<MailAttachment>> {
    let Some(ics) = payload.get(ICS_KEY) else {
        return Ok(None);
    };
    let ics = ics
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the mail payload's {ICS_KEY} is not text"))?;
    let method = payload
        .get(ICS_METHOD_KEY)
        .and_then(|m| m.as_str())
        .and_then(crate::calendar::Method::parse)
        .ok_or_else(|| {
            anyhow::anyhow!("the mail payload's {ICS_METHOD_KEY} is not REQUEST, CANCEL or PUBLISH")
        })?;
    let ics = match method {
        crate::calendar::Method::Publish => ics.to_string(),
        crate::calendar::Method::Request | crate::calendar::Method::Cancel => {
            let sender: lettre::message::Mailbox =
                from.parse().context("mail.from is not a mailbox")?;
            crate::calendar::addressed(
                ics,
                sender.name.as_deref(),
                sender.email.as_ref(),
                recipient,
            )
        }
    };
    Ok(Some(MailAttachment {
        filename: "invite.ics".to_string(),
        content_type: format!("text/calendar; charset=utf-8; method={}", method.as_str()),
        body: ics.into_bytes(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that accepts the connection and then never answers.
    struct Silent;

    #[async_trait::async_trait]
    impl MailTransport for Silent {
        async fn send(&self, _mail: &OutgoingMail) -> anyhow::Result<()> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn an_attempt_that_hangs_is_abandoned_after_the_attempt_timeout() {
        let mailer = Mailer::new(
            Templates::load().unwrap(),
            Arc::new(Silent),
            "Convene <no-reply@localhost>",
            "http://127.0.0.1",
        )
        .with_attempt_timeout(Duration::from_secs(1));
        let payload = serde_json::json!({ "display_name": "Ann", "reset_link": "x" });
        let err = mailer
            .send("m1", "ann@example.org", "password_changed", &payload)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("longer than 1 s"), "{err:#}");
    }

    fn mailer(transport: Arc<dyn MailTransport>) -> Mailer {
        Mailer::new(
            Templates::load().unwrap(),
            transport,
            "Convene <no-reply@localhost>",
            "http://127.0.0.1",
        )
    }

    fn ics_payload(method: &str) -> serde_json::Value {
        serde_json::json!({
            "display_name": "Ann",
            "reset_link": "x",
            "ics": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Caf\u{e9}\\, budgets\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            "ics_method": method,
        })
    }

    #[tokio::test]
    async fn a_payload_with_ics_is_sent_with_an_invite_attachment() {
        let memory = MemoryTransport::default();
        let mailer = mailer(Arc::new(memory.clone()));
        mailer
            .send(
                "m1",
                "ann@example.org",
                "password_changed",
                &ics_payload("CANCEL"),
            )
            .await
            .unwrap();
        let sent = memory.messages();
        assert_eq!(sent.len(), 1);
        let attachment = &sent[0].attachments[0];
        assert_eq!(attachment.filename, "invite.ics");
        assert_eq!(
            attachment.content_type,
            "text/calendar; charset=utf-8; method=CANCEL"
        );
        let ics = String::from_utf8(attachment.body.clone()).unwrap();
        assert!(ics.contains("SUMMARY:Café\\, budgets"), "{ics}");
        // Addressed from the sender to the recipient, as iTIP wants.
        assert!(
            ics.contains("ORGANIZER;CN=Convene:mailto:no-reply@localhost\r\n"),
            "{ics}"
        );
        assert!(
            ics.contains("ATTENDEE;RSVP=FALSE:mailto:ann@example.org\r\nEND:VEVENT"),
            "{ics}"
        );
        let raw = String::from_utf8(sent[0].to_message().unwrap().formatted()).unwrap();
        assert!(raw.contains("multipart/mixed"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(
            raw.contains("Content-Type: text/calendar; charset=utf-8; method=CANCEL"),
            "{raw}"
        );
        assert!(raw.contains("filename=\"invite.ics\""), "{raw}");

        // Without `ics` the message has no attachment and stays multipart/alternative.
        let plain = serde_json::json!({ "display_name": "Ann", "reset_link": "x" });
        mailer
            .send("m2", "ann@example.org", "password_changed", &plain)
            .await
            .unwrap();
        let sent = memory.messages();
        assert!(sent[1].attachments.is_empty());
        let raw = String::from_utf8(sent[1].to_message().unwrap().formatted()).unwrap();
        assert!(!raw.contains("multipart/mixed"), "{raw}");
    }

    #[tokio::test]
    async fn an_unsubscribe_token_becomes_the_list_unsubscribe_headers() {
        let memory = MemoryTransport::default();
        let mailer = mailer(Arc::new(memory.clone()));
        let payload = serde_json::json!({
            "display_name": "<b>Ann</b>",
            "text": "New post in “<i>Budgets</i>”",
            "subject_title": "<i>Budgets</i>",
            "link": "http://127.0.0.1/threads/1#post-2",
            "group_label": "replies and discussions",
            "unsubscribe_token": "abc.discussions.M-a_c",
        });
        mailer
            .send("m1", "ann@example.org", "notification", &payload)
            .await
            .unwrap();
        let sent = memory.messages();
        // Unfolded, as a reader of the headers sees them.
        let raw = String::from_utf8(sent[0].to_message().unwrap().formatted())
            .unwrap()
            .replace("\r\n ", " ");
        assert!(
            raw.contains("List-Unsubscribe: <http://127.0.0.1/unsubscribe/abc.discussions.M-a_c>, <mailto:no-reply@localhost?subject=unsubscribe%20abc.discussions.M-a_c>\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            "{raw}"
        );
        assert!(!sent[0].html.contains("<i>"), "{}", sent[0].html);
        assert!(sent[0].text.contains("/unsubscribe/abc.discussions.M-a_c"));
        // Mail without a token has no such headers; a token that is not one is refused.
        let plain = serde_json::json!({ "display_name": "Ann", "reset_link": "x" });
        mailer
            .send("m2", "ann@example.org", "password_changed", &plain)
            .await
            .unwrap();
        let raw =
            String::from_utf8(memory.messages()[1].to_message().unwrap().formatted()).unwrap();
        assert!(!raw.contains("List-Unsubscribe"), "{raw}");
        for bad in ["", "a>b", "a b\r\nBcc: x@y"] {
            let payload = serde_json::json!({ "display_name": "Ann", "unsubscribe_token": bad });
            assert!(mailer
                .send("m3", "ann@example.org", "notification", &payload)
                .await
                .is_err());
        }
    }

    #[tokio::test]
    async fn an_ics_without_a_known_method_is_not_sent() {
        let memory = MemoryTransport::default();
        let mailer = mailer(Arc::new(memory.clone()));
        for bad in [
            ics_payload("REPLY"),
            ics_payload(""),
            serde_json::json!({"ics": 3, "ics_method": "REQUEST"}),
        ] {
            let err = mailer
                .send("m1", "ann@example.org", "password_changed", &bad)
                .await
                .unwrap_err();
            assert!(format!("{err:#}").contains("ics"), "{err:#}");
        }
        assert!(memory.messages().is_empty());
    }

    #[test]
    fn every_security_template_exists() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/mail");
        for t in SECURITY_TEMPLATES {
            assert!(dir.join(t).is_dir(), "{t}");
            assert!(is_security_template(t));
        }
        assert!(!is_security_template("meetup_rsvp"));
    }

    #[tokio::test]
    async fn a_refused_address_fails_permanently_and_others_do_not() {
        let memory = MemoryTransport::default();
        let mailer = mailer(Arc::new(memory.clone()));
        let payload = serde_json::json!({ "display_name": "Ann", "reset_link": "x" });
        memory.refuse("Ann@Example.org", true);
        let err = mailer
            .send("m1", "ann@example.org", "password_changed", &payload)
            .await
            .unwrap_err();
        assert!(is_permanent_failure(&err), "{err:#}");
        // A transient failure (here: a timeout) is not permanent.
        let slow = Mailer::new(
            Templates::load().unwrap(),
            Arc::new(Silent),
            "Convene <no-reply@localhost>",
            "http://127.0.0.1",
        )
        .with_attempt_timeout(Duration::from_secs(1));
        let err = slow
            .send("m2", "ann@example.org", "password_changed", &payload)
            .await
            .unwrap_err();
        assert!(!is_permanent_failure(&err), "{err:#}");
        memory.refuse("ann@example.org", false);
        mailer
            .send("m3", "ann@example.org", "password_changed", &payload)
            .await
            .unwrap();
        assert_eq!(memory.messages().len(), 1);
    }

    #[tokio::test]
    async fn the_file_transport_writes_the_attachment() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = mailer(Arc::new(transport::FileTransport::new(dir.path()).unwrap()));
        mailer
            .send(
                "m1",
                "ann@example.org",
                "password_changed",
                &ics_payload("REQUEST"),
            )
            .await
            .unwrap();
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "eml"))
            .expect("an .eml file");
        let raw = std::fs::read_to_string(file).unwrap();
        assert!(
            raw.contains("Content-Type: text/calendar; charset=utf-8; method=REQUEST"),
            "{raw}"
        );
    }
}
