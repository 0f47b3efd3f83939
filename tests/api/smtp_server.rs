//! A tiny plain-text SMTP server for tests: enough of RFC 5321 for lettre's SMTP client
//! without TLS. It records every accepted message and can be switched to answer `451` (a
//! transient failure) to `MAIL FROM`, told to answer `RCPT TO` for chosen addresses (or all)
//! with `550` (a permanent failure), `451` or any other line, and told to answer any line at
//! any stage of the conversation (the greeting, `AUTH`, `MAIL FROM`, after `DATA`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub recipients: Vec<String>,
    /// The message as sent after DATA, with dot-stuffing undone and CRLF line endings.
    pub data: String,
}

impl ReceivedMail {
    pub fn is_for(&self, address: &str) -> bool {
        self.recipients
            .iter()
            .any(|r| r.eq_ignore_ascii_case(address))
    }

    /// The raw message, headers and body, as the client sent it.
    pub fn raw(&self) -> &str {
        &self.data
    }

    /// The message as a MIME entity.
    pub fn mime(&self) -> MimePart {
        MimePart::parse(&self.data)
    }
}

/// One MIME entity of a received message: enough of RFC 2045/2046 for lettre's output.
#[derive(Debug, Clone)]
pub struct MimePart {
    /// Header fields in order, folded lines joined.
    pub headers: Vec<(String, String)>,
    /// The body as sent (still transfer-encoded).
    pub body: String,
}

impl MimePart {
    pub fn parse(raw: &str) -> MimePart {
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        MimePart {
            headers,
            body: body.to_string(),
        }
    }

    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> String {
        self.header("Content-Type")
            .unwrap_or("text/plain")
            .to_ascii_lowercase()
    }

    /// The parts of a multipart entity (none for a single part).
    pub fn parts(&self) -> Vec<MimePart> {
        let Some(content_type) = self.header("Content-Type") else {
            return Vec::new();
        };
        let Some(boundary) = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .map(|b| b.trim_matches('"'))
        else {
            return Vec::new();
        };
        let delimiter = format!("--{boundary}");
        let mut parts = Vec::new();
        for piece in self.body.split(delimiter.as_str()).skip(1) {
            if piece.starts_with("--") {
                break;
            }
            let piece = piece.strip_prefix("\r\n").unwrap_or(piece);
            let piece = piece.strip_suffix("\r\n").unwrap_or(piece);
            parts.push(MimePart::parse(piece));
        }
        parts
    }

    /// This entity and every entity nested in it, depth first.
    pub fn all(&self) -> Vec<MimePart> {
        let mut out = vec![self.clone()];
        for p in self.parts() {
            out.extend(p.all());
        }
        out
    }

    /// The first entity (this one or nested) whose media type is `media_type`.
    pub fn find(&self, media_type: &str) -> Option<MimePart> {
        self.all().into_iter().find(|p| {
            p.content_type()
                .split(';')
                .next()
                .is_some_and(|t| t.trim() == media_type)
        })
    }

    /// The body with its Content-Transfer-Encoding undone, as UTF-8.
    pub fn decoded(&self) -> String {
        let encoding = self
            .header("Content-Transfer-Encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        let bytes = match encoding.as_str() {
            "7bit" | "8bit" | "binary" => self.body.clone().into_bytes(),
            "base64" => {
                use base64::Engine;
                let compact: String = self.body.split_whitespace().collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .expect("valid base64 body")
            }
            "quoted-printable" => {
                let joined = self.body.replace("=\r\n", "");
                let raw = joined.as_bytes();
                let mut out = Vec::with_capacity(raw.len());
                let mut i = 0;
                while i < raw.len() {
                    let escaped = (raw[i] == b'=')
                        .then(|| joined.get(i + 1..i + 3))
                        .flatten()
                        .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                    match escaped {
                        Some(byte) => {
                            out.push(byte);
                            i += 3;
                        }
                        None => {
                            out.push(raw[i]);
                            i += 1;
                        }
                    }
                }
                out
            }
            other => panic!("unexpected Content-Transfer-Encoding {other}"),
        };
        String::from_utf8(bytes).expect("a UTF-8 body")
    }
}

/// How the server answers `RCPT TO` for an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcpt {
    /// `250`: accepted.
    Accept,
    /// `550 5.1.1`: no such mailbox, for good.
    Permanent,
    /// `451 4.2.1`: try again later.
    Transient,
    /// This reply line, such as `550 5.7.1 relaying denied`.
    Reply(&'static str),
}

/// A step of the conversation whose answer can be chosen with [`SmtpServer::answer_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The server's first line: a refusal ends the session.
    Greeting,
    Auth,
    MailFrom,
    /// The answer to the message's final dot.
    Data,
}

/// Stands for every address in [`SmtpServer::answer_rcpt`].
pub const ANY_ADDRESS: &str = "*";

#[derive(Default)]
struct State {
    received: Mutex<Vec<ReceivedMail>>,
    failing: AtomicBool,
    /// How many `MAIL FROM` commands were refused while failing.
    refused: AtomicUsize,
    /// Answers to `RCPT TO` by lower-cased address (or [`ANY_ADDRESS`]); accepted otherwise.
    rcpt: Mutex<HashMap<String, Rcpt>>,
    /// `RCPT TO` commands refused, with their addresses and the code answered.
    refused_rcpt: Mutex<Vec<(String, u16)>>,
    /// Chosen answers by stage (a whole reply line); the usual one otherwise.
    stage_answers: Mutex<HashMap<Stage, &'static str>>,
    /// Refusals answered from `stage_answers`, in order.
    refused_at: Mutex<Vec<(Stage, u16)>>,
}

impl State {
    fn rcpt_answer(&self, address: &str) -> Rcpt {
        let answers = self.rcpt.lock().expect("SMTP answers");
        answers
            .get(&address.to_lowercase())
            .or_else(|| answers.get(ANY_ADDRESS))
            .copied()
            .unwrap_or(Rcpt::Accept)
    }

    /// The chosen answer at `stage`, recorded as a refusal, if one was chosen.
    fn answer_at(&self, stage: Stage) -> Option<&'static str> {
        let answer = self
            .stage_answers
            .lock()
            .expect("SMTP answers")
            .get(&stage)
            .copied()?;
        self.refused_at
            .lock()
            .expect("SMTP store")
            .push((stage, reply_code(answer)));
        Some(answer)
    }
}

/// The code at the start of a reply line.
fn reply_code(line: &str) -> u16 {
    line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0)
}

pub struct SmtpServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test SMTP server");
        let addr = listener.local_addr().expect("SMTP server address");
        let state = Arc::new(State::default());
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    // A client that hangs up mid-conversation just ends its session.
                    let _ = session(stream, state).await;
                });
            }
        });
        SmtpServer {
            addr,
            state,
            accept,
        }
    }

    /// A server that refuses every message until `set_failing(false)`.
    pub async fn start_failing() -> SmtpServer {
        let server = SmtpServer::start().await;
        server.set_failing(true);
        server
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// Answers `RCPT TO:<address>` (or every address, with [`ANY_ADDRESS`]) as `answer` says,
    /// from the next command on.
    pub fn answer_rcpt(&self, address: &str, answer: Rcpt) {
        self.state
            .rcpt
            .lock()
            .expect("SMTP answers")
            .insert(address.to_lowercase(), answer);
    }

    /// Answers `reply` (a whole line, such as `535 5.7.8 authentication failed`) at `stage`
    /// from the next session or command on; `None` goes back to the usual answer.
    pub fn answer_at(&self, stage: Stage, reply: Option<&'static str>) {
        let mut answers = self.state.stage_answers.lock().expect("SMTP answers");
        match reply {
            Some(r) => answers.insert(stage, r),
            None => answers.remove(&stage),
        };
    }

    /// The refusals answered at a chosen stage so far, with their codes.
    pub fn refused_at(&self) -> Vec<(Stage, u16)> {
        self.state.refused_at.lock().expect("SMTP store").clone()
    }

    /// The `RCPT TO` commands refused so far: the address and the code answered.
    pub fn refused_rcpt(&self) -> Vec<(String, u16)> {
        self.state.refused_rcpt.lock().expect("SMTP store").clone()
    }

    /// How many messages were accepted (without copying them).
    pub fn received_count(&self) -> usize {
        self.state.received.lock().expect("SMTP store").len()
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.state.received.lock().expect("SMTP store").clone()
    }

    pub fn received_for(&self, address: &str) -> Vec<ReceivedMail> {
        self.received()
            .into_iter()
            .filter(|m| m.is_for(address))
            .collect()
    }
}

/// The address inside `MAIL FROM:<a@b> ...` or `RCPT TO:<a@b>`.
fn path_argument(rest: &str) -> String {
    let rest = rest.trim();
    match (rest.find('<'), rest.find('>')) {
        (Some(open), Some(close)) if open < close => rest[open + 1..close].to_string(),
        _ => rest.split_whitespace().next().unwrap_or("").to_string(),
    }
}

async fn session(stream: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    if let Some(refusal) = state.answer_at(Stage::Greeting) {
        write.write_all(format!("{refusal}\r\n").as_bytes()).await?;
        return Ok(());
    }
    write
        .write_all(b"220 localhost test SMTP ready\r\n")
        .await?;
    let mut mail_from: Option<String> = None;
    let mut recipients: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let chosen;
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => {
                mail_from = None;
                recipients.clear();
                b"250-localhost\r\n250 AUTH PLAIN LOGIN\r\n"
            }
            "AUTH" => match state.answer_at(Stage::Auth) {
                Some(refusal) => {
                    chosen = format!("{refusal}\r\n");
                    chosen.as_bytes()
                }
                None => b"235 2.7.0 authenticated\r\n",
            },
            "MAIL" if state.failing.load(Ordering::SeqCst) => {
                state.refused.fetch_add(1, Ordering::SeqCst);
                b"451 4.3.0 try again later\r\n"
            }
            "MAIL"
                if state
                    .stage_answers
                    .lock()
                    .expect("SMTP answers")
                    .contains_key(&Stage::MailFrom) =>
            {
                chosen = format!(
                    "{}\r\n",
                    state.answer_at(Stage::MailFrom).unwrap_or("250 OK")
                );
                chosen.as_bytes()
            }
            "MAIL" => {
                let rest = command.get(5..).unwrap_or("");
                let rest = rest.trim_start().strip_prefix("FROM:").unwrap_or(rest);
                mail_from = Some(path_argument(rest));
                recipients.clear();
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" if mail_from.is_none() => b"503 5.5.1 MAIL first\r\n",
            "RCPT" => {
                let rest = command.get(5..).unwrap_or("");
                let rest = rest.trim_start().strip_prefix("TO:").unwrap_or(rest);
                let address = path_argument(rest);
                let (code, reply): (u16, &[u8]) = match state.rcpt_answer(&address) {
                    Rcpt::Accept => (250, b"250 2.1.5 OK\r\n"),
                    Rcpt::Permanent => (550, b"550 5.1.1 mailbox unavailable\r\n"),
                    Rcpt::Transient => (451, b"451 4.2.1 mailbox busy, try again later\r\n"),
                    Rcpt::Reply(line) => {
                        chosen = format!("{line}\r\n");
                        (reply_code(line), chosen.as_bytes())
                    }
                };
                if code == 250 {
                    recipients.push(address);
                } else {
                    state
                        .refused_rcpt
                        .lock()
                        .expect("SMTP store")
                        .push((address, code));
                }
                reply
            }
            "DATA" if recipients.is_empty() => b"503 5.5.1 RCPT first\r\n",
            "DATA" => {
                write
                    .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    let content = line.trim_end_matches(['\r', '\n']);
                    if content == "." {
                        break;
                    }
                    // Undo dot-stuffing (RFC 5321 §4.5.2).
                    data.push_str(content.strip_prefix('.').unwrap_or(content));
                    data.push_str("\r\n");
                }
                if let Some(refusal) = state.answer_at(Stage::Data) {
                    mail_from = None;
                    recipients.clear();
                    chosen = format!("{refusal}\r\n");
                    write.write_all(chosen.as_bytes()).await?;
                    continue;
                }
                state
                    .received
                    .lock()
                    .expect("SMTP store")
                    .push(ReceivedMail {
                        mail_from: mail_from.take().unwrap_or_default(),
                        recipients: std::mem::take(&mut recipients),
                        data,
                    });
                b"250 2.0.0 queued\r\n"
            }
            "RSET" => {
                mail_from = None;
                recipients.clear();
                b"250 2.0.0 OK\r\n"
            }
            // A refusal chosen for new sessions closes the idle ones, so that the client
            // connects again and meets it.
            "NOOP"
                if state
                    .stage_answers
                    .lock()
                    .expect("SMTP answers")
                    .keys()
                    .any(|s| matches!(s, Stage::Greeting | Stage::Auth)) =>
            {
                write
                    .write_all(b"421 4.4.2 closing idle connection\r\n")
                    .await?;
                return Ok(());
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}
