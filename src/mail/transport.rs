use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use lettre::address::Envelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, MailBodyParameter, MailParameter};
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{SmtpSettings, SmtpTls};

/// A rendered message ready for a transport.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
    pub template: String,
    /// Files sent with the message (a meet-up's `invite.ics`); none for most mail.
    pub attachments: Vec<MailAttachment>,
    /// The one-click unsubscribe of notification mail (RFC 2369 and RFC 8058).
    pub list_unsubscribe: Option<ListUnsubscribe>,
}

/// A notification mail's way out: an https link that accepts the one-click POST, and a
/// `mailto:` for clients that prefer mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUnsubscribe {
    pub url: String,
    pub mailto: String,
}

impl ListUnsubscribe {
    /// The `List-Unsubscribe` header's value.
    pub fn header_value(&self) -> String {
        format!("<{}>, <{}>", self.url, self.mailto)
    }
}

/// A file attached to a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAttachment {
    pub filename: String,
    /// Its full MIME type with parameters, e.g. `text/calendar; charset=utf-8; method=REQUEST`.
    pub content_type: String,
    pub body: Vec<u8>,
}

impl OutgoingMail {
    pub fn to_message(&self) -> anyhow::Result<Message> {
        let from: Mailbox = self.from.parse().context("mail.from is not a mailbox")?;
        let to: Mailbox = self.to.parse().context("recipient is not a mailbox")?;
        let alternative = MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(self.text.clone()),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(self.html.clone()),
            );
        // Without attachments the message stays a plain multipart/alternative; with them, a
        // multipart/mixed of the two bodies and the files.
        let body = if self.attachments.is_empty() {
            alternative
        } else {
            let mut mixed = MultiPart::mixed().multipart(alternative);
            for a in &self.attachments {
                let content_type = ContentType::parse(&a.content_type)
                    .with_context(|| format!("attachment {} has a bad content type", a.filename))?;
                mixed = mixed.singlepart(
                    Attachment::new(a.filename.clone()).body(a.body.clone(), content_type),
                );
            }
            mixed
        };
        let mut message = Message::builder()
            .from(from)
            .to(to)
            .subject(self.subject.clone())
            .message_id(Some(self.message_id.clone()))
            .multipart(body)?;
        message.headers_mut().insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Convene-Template"),
            self.template.clone(),
        ));
        if let Some(unsubscribe) = &self.list_unsubscribe {
            message.headers_mut().insert_raw(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                unsubscribe.header_value(),
            ));
            message.headers_mut().insert_raw(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_string(),
            ));
        }
        Ok(message)
    }
}

/// The receiving server refused the message's *recipient* for good: a 5xx answer to `RCPT
/// TO` such as `550 5.1.1` (no such mailbox). Sending to that address again cannot help, and
/// it counts against the address. Found in a send error's chain with
/// [`is_permanent_failure`]; every other error is a transport failure, retried with backoff
/// and never held against the recipient.
#[derive(Debug, thiserror::Error)]
#[error("permanent SMTP failure: {0}")]
pub struct PermanentFailure(pub String);

/// Whether the send error `e` was a permanent refusal of the recipient.
pub fn is_permanent_failure(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<PermanentFailure>())
}

/// Where in the SMTP conversation an answer came: the same code means different things at
/// different steps. A `550` to `MAIL FROM` refuses Convene's sender (or its relaying), not
/// the person the mail is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpStage {
    /// Connecting: the greeting, `EHLO` and `STARTTLS`.
    Connect,
    Auth,
    MailFrom,
    RcptTo,
    /// `DATA` and the message itself.
    Data,
}

impl SmtpStage {
    fn name(self) -> &'static str {
        match self {
            SmtpStage::Connect => "the connection",
            SmtpStage::Auth => "AUTH",
            SmtpStage::MailFrom => "MAIL FROM",
            SmtpStage::RcptTo => "RCPT TO",
            SmtpStage::Data => "DATA",
        }
    }
}

/// The enhanced status code (RFC 3463) at the start of an SMTP answer's text, such as
/// `(5, 7, 1)` for `5.7.1 relaying denied`.
fn enhanced_status(text: &str) -> Option<(u16, u16, u16)> {
    let mut parts = text.split_whitespace().next()?.splitn(3, '.');
    let class = parts.next()?.parse().ok()?;
    let subject = parts.next()?.parse().ok()?;
    let detail = parts.next()?.parse().ok()?;
    Some((class, subject, detail))
}

/// Whether the answer `code` (with its text) at `stage` refuses the recipient's address for
/// good. Only a 5xx to `RCPT TO` can, and not every one of those: a refusal to relay or of
/// the sender's standing (530, 535, any 5.7.x), and a server out of room (552, 5.2.2 mailbox
/// full, 5.3.x) say nothing about the address, so they are transport failures. Everything
/// at another stage (the greeting, AUTH, `MAIL FROM`, `DATA`) is a transport failure too.
pub fn refuses_recipient(stage: SmtpStage, code: u16, text: &str) -> bool {
    if stage != SmtpStage::RcptTo || !(500..600).contains(&code) {
        return false;
    }
    if matches!(code, 530 | 535 | 552) {
        return false;
    }
    !matches!(
        enhanced_status(text),
        Some((5, 7, _)) | Some((5, 2, 2)) | Some((5, 3, _))
    )
}

#[async_trait]
pub trait MailTransport: Send + Sync {
    async fn send(&self, mail: &OutgoingMail) -> anyhow::Result<()>;
}

/// Idle connections kept for the next message: enough for the outbox worker's batches.
const IDLE_CONNECTIONS: usize = 4;

/// SMTP, driven one command at a time so that each refusal is read at the step it answers
/// (see [`refuses_recipient`]); connections are reused while they last.
pub struct SmtpTransport {
    host: String,
    port: u16,
    tls: Tls,
    timeout: Duration,
    credentials: Option<Credentials>,
    hello: ClientId,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

pub fn smtp(settings: &SmtpSettings) -> anyhow::Result<SmtpTransport> {
    let host = settings.host.as_str();
    anyhow::ensure!(!host.is_empty(), "mail.smtp.host is not set");
    let tls = match settings.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls => Tls::Required(TlsParameters::new(host.to_string())?),
        SmtpTls::Tls => Tls::Wrapper(TlsParameters::new(host.to_string())?),
    };
    let credentials = (!settings.username.is_empty()).then(|| {
        Credentials::new(
            settings.username.clone(),
            settings.password.expose_secret().to_string(),
        )
    });
    Ok(SmtpTransport {
        host: host.to_string(),
        port: settings.port,
        tls,
        timeout: Duration::from_secs(settings.timeout_secs),
        credentials,
        hello: ClientId::default(),
        idle: Mutex::new(Vec::new()),
    })
}

/// An SMTP error at `stage`: a [`PermanentFailure`] when it refuses the recipient, a
/// transport failure naming the stage otherwise.
fn smtp_failure(stage: SmtpStage, e: lettre::transport::smtp::Error) -> anyhow::Error {
    let code = e.status().map(|c| {
        let text = c.to_string();
        text.parse::<u16>().unwrap_or(0)
    });
    let answer = std::error::Error::source(&e)
        .map(|s| s.to_string())
        .unwrap_or_default();
    match code {
        Some(code) if refuses_recipient(stage, code, &answer) => {
            anyhow::Error::new(PermanentFailure(format!("{code} {answer}")))
        }
        _ => anyhow::Error::new(e).context(format!("SMTP delivery failed at {}", stage.name())),
    }
}

impl SmtpTransport {
    /// A new connection: greeting, EHLO, TLS as configured, and AUTH when credentials are set.
    async fn connect(&self) -> anyhow::Result<AsyncSmtpConnection> {
        let wrapper = match &self.tls {
            Tls::Wrapper(p) => Some(p.clone()),
            _ => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &self.hello,
            wrapper,
            None,
        )
        .await
        .map_err(|e| smtp_failure(SmtpStage::Connect, e))?;
        if let Tls::Required(p) = &self.tls {
            conn.starttls(p.clone(), &self.hello)
                .await
                .map_err(|e| smtp_failure(SmtpStage::Connect, e))?;
        }
        if let Some(credentials) = &self.credentials {
            if let Err(e) = conn.auth(DEFAULT_MECHANISMS, credentials).await {
                conn.abort().await;
                return Err(smtp_failure(SmtpStage::Auth, e));
            }
        }
        Ok(conn)
    }

    /// An idle connection that still answers, or a new one.
    async fn connection(&self) -> anyhow::Result<AsyncSmtpConnection> {
        loop {
            let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
            match idle {
                Some(mut conn) => {
                    if conn.test_connected().await {
                        return Ok(conn);
                    }
                    conn.abort().await;
                }
                None => return self.connect().await,
            }
        }
    }

    /// One transaction on `conn`: MAIL FROM, RCPT TO for each recipient, DATA.
    async fn transaction(
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        body: &[u8],
    ) -> anyhow::Result<()> {
        let mut options = Vec::new();
        let non_ascii = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii {
            options.push(MailParameter::SmtpUtfEight);
        }
        if !body.is_ascii() {
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        conn.command(Mail::new(envelope.from().cloned(), options))
            .await
            .map_err(|e| smtp_failure(SmtpStage::MailFrom, e))?;
        for to in envelope.to() {
            conn.command(Rcpt::new(to.clone(), Vec::new()))
                .await
                .map_err(|e| smtp_failure(SmtpStage::RcptTo, e))?;
        }
        conn.command(Data)
            .await
            .map_err(|e| smtp_failure(SmtpStage::Data, e))?;
        conn.message(body)
            .await
            .map_err(|e| smtp_failure(SmtpStage::Data, e))?;
        Ok(())
    }
}

#[async_trait]
impl MailTransport for SmtpTransport {
    async fn send(&self, mail: &OutgoingMail) -> anyhow::Result<()> {
        let message = mail.to_message()?;
        let envelope = message.envelope().clone();
        let body = message.formatted();
        let mut conn = self.connection().await?;
        match Self::transaction(&mut conn, &envelope, &body).await {
            Ok(()) => {
                let spare = match self.idle.lock() {
                    Ok(mut idle) if idle.len() < IDLE_CONNECTIONS && !conn.has_broken() => {
                        idle.push(conn);
                        None
                    }
                    _ => Some(conn),
                };
                if let Some(mut conn) = spare {
                    let _ = conn.quit().await;
                }
                Ok(())
            }
            Err(e) => {
                // The transaction is left half-done: this connection is not reused.
                conn.abort().await;
                Err(e)
            }
        }
    }
}

/// Writes each message as an `.eml` file: the development default.
pub struct FileTransport {
    inner: AsyncFileTransport<Tokio1Executor>,
    dir: PathBuf,
}

impl FileTransport {
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the mail folder {}", dir.display()))?;
        Ok(FileTransport {
            inner: AsyncFileTransport::new(dir),
            dir: dir.to_path_buf(),
        })
    }
}

#[async_trait]
impl MailTransport for FileTransport {
    async fn send(&self, mail: &OutgoingMail) -> anyhow::Result<()> {
        let id = self
            .inner
            .send(mail.to_message()?)
            .await
            .with_context(|| format!("writing mail to {}", self.dir.display()))?;
        tracing::info!(to = %mail.to, subject = %mail.subject, file = %self.dir.join(format!("{id}.eml")).display(), "mail written");
        Ok(())
    }
}

/// Keeps messages in memory for tests.
#[derive(Clone, Default)]
pub struct MemoryTransport {
    sent: Arc<Mutex<Vec<OutgoingMail>>>,
    /// Addresses (lower-cased) refused as a server refuses an unknown mailbox.
    refused: Arc<Mutex<Vec<String>>>,
}

impl MemoryTransport {
    pub fn messages(&self) -> Vec<OutgoingMail> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Refuses mail to `address` from now on with a permanent failure, or accepts it again.
    pub fn refuse(&self, address: &str, refused: bool) {
        if let Ok(mut list) = self.refused.lock() {
            let address = address.trim().to_lowercase();
            list.retain(|a| *a != address);
            if refused {
                list.push(address);
            }
        }
    }
}

#[async_trait]
impl MailTransport for MemoryTransport {
    async fn send(&self, mail: &OutgoingMail) -> anyhow::Result<()> {
        // Building the lettre message checks the addresses and headers as the real ones do.
        mail.to_message()?;
        let to = mail.to.trim().to_lowercase();
        if self
            .refused
            .lock()
            .map_err(|_| anyhow::anyhow!("mail store poisoned"))?
            .contains(&to)
        {
            return Err(anyhow::Error::new(PermanentFailure(format!(
                "550 5.1.1 <{to}>: mailbox unavailable"
            ))));
        }
        self.sent
            .lock()
            .map_err(|_| anyhow::anyhow!("mail store poisoned"))?
            .push(mail.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_5xx_to_rcpt_to_refuses_the_recipient() {
        use SmtpStage::*;
        for (stage, code, text) in [
            (RcptTo, 550, "5.1.1 mailbox unavailable"),
            (RcptTo, 550, "no such user"),
            (RcptTo, 551, "5.1.6 user has moved"),
            (RcptTo, 553, "5.1.3 bad destination mailbox address syntax"),
            (RcptTo, 550, "5.2.1 mailbox disabled"),
        ] {
            assert!(
                refuses_recipient(stage, code, text),
                "{stage:?} {code} {text}"
            );
        }
        for (stage, code, text) in [
            // Another stage: the sender, the credentials or the server, not the address.
            (Connect, 554, "5.3.2 no service"),
            (Connect, 550, "go away"),
            (Auth, 535, "5.7.8 authentication credentials invalid"),
            (MailFrom, 550, "5.7.1 sender rejected"),
            (MailFrom, 550, "5.1.1 no such user"),
            (MailFrom, 552, "5.3.4 quota exceeded"),
            (Data, 554, "5.6.0 message refused"),
            (Data, 550, "5.1.1 mailbox unavailable"),
            // At RCPT TO, relaying, policy, quota and a full server are not the address.
            (RcptTo, 550, "5.7.1 relaying denied"),
            (RcptTo, 554, "5.7.1 relay access denied"),
            (RcptTo, 530, "authentication required"),
            (RcptTo, 535, "authentication failed"),
            (RcptTo, 552, "5.2.2 mailbox full"),
            (RcptTo, 552, "requested action aborted"),
            (RcptTo, 550, "5.2.2 over quota"),
            (RcptTo, 550, "5.3.0 mail system full"),
            // Transient answers never are.
            (RcptTo, 451, "4.2.1 try again later"),
            (RcptTo, 450, "4.1.1 mailbox busy"),
        ] {
            assert!(
                !refuses_recipient(stage, code, text),
                "{stage:?} {code} {text}"
            );
        }
    }

    #[test]
    fn enhanced_status_codes_are_read_from_the_answer() {
        assert_eq!(enhanced_status("5.7.1 relaying denied"), Some((5, 7, 1)));
        assert_eq!(enhanced_status("  5.1.10 null MX"), Some((5, 1, 10)));
        assert_eq!(enhanced_status("no such user"), None);
        assert_eq!(enhanced_status("5.7 partial"), None);
        assert_eq!(enhanced_status(""), None);
    }
}
