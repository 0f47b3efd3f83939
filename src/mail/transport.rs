use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
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

/// The receiving server refused the message for good (an SMTP 5xx answer, such as `550` for
/// an unknown mailbox): sending it again cannot help. Found in a send error's chain with
/// [`is_permanent_failure`]; every other error is transient.
#[derive(Debug, thiserror::Error)]
#[error("permanent SMTP failure: {0}")]
pub struct PermanentFailure(pub String);

/// Whether the send error `e` was a permanent refusal.
pub fn is_permanent_failure(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<PermanentFailure>())
}

#[async_trait]
pub trait MailTransport: Send + Sync {
    async fn send(&self, mail: &OutgoingMail) -> anyhow::Result<()>;
}

pub struct SmtpTransport(AsyncSmtpTransport<Tokio1Executor>);

pub fn smtp(settings: &SmtpSettings) -> anyhow::Result<SmtpTransport> {
    let host = settings.host.as_str();
    anyhow::ensure!(!host.is_empty(), "mail.smtp.host is not set");
    let mut builder = match settings.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .tls(Tls::Required(TlsParameters::new(host.to_string())?)),
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .tls(Tls::Wrapper(TlsParameters::new(host.to_string())?)),
    }
    .port(settings.port)
    .timeout(Some(Duration::from_secs(settings.timeout_secs)));
    if !settings.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            settings.username.clone(),
            settings.password.expose_secret().to_string(),
        ));
    }
    Ok(SmtpTransport(builder.build()))
}

#[async_trait]
impl MailTransport for SmtpTransport {
    async fn send(&self, mail: &OutgoingMail) -> anyhow::Result<()> {
        let message = mail.to_message()?;
        match self.0.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(anyhow::Error::new(PermanentFailure(e.to_string()))),
            Err(e) => Err(anyhow::Error::new(e).context("SMTP delivery failed")),
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
