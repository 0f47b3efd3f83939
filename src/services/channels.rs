//! Working groups' chat channels: Slack-compatible incoming webhooks (`{"text": …}`, which
//! Slack, Mattermost and Rocket.Chat accept) to which new meet-ups, their outcomes, new
//! threads and official responses on linked commitments are posted.
//!
//! A webhook URL is a secret: whoever has it can post to the channel. It is shown to nobody
//! (organisers see its host), never logged, and never copied into the outbox: a channel
//! message names its group, and the worker reads the URL when it posts. The URL must not
//! reach into Convene's own network: its host is resolved when it is set and again before
//! every post (a name may resolve elsewhere by then), every address must be global, and the
//! post connects to an address so checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QuerySelect,
};
use serde_json::json;
use url::{Host, Url};
use uuid::Uuid;

use super::{groups, Ctx};
use crate::auth::Actor;
use crate::config::Settings;
use crate::db::{begin_write, now};
use crate::entities::{group_channel, working_group, working_group_commitment};
use crate::error::{AppError, AppResult};

/// Longest webhook URL accepted.
pub const URL_MAX: usize = 2048;

/// The input field validation errors name.
const FIELD: &str = "webhookUrl";

/// What an organiser sees of the group's channel: whether one is connected, the webhook's
/// host and when it was connected. Never the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelView {
    pub connected: bool,
    pub webhook_host: Option<String>,
    pub connected_at: Option<DateTime<Utc>>,
}

impl ChannelView {
    fn of(row: Option<&group_channel::Model>) -> Self {
        match row {
            Some(c) => ChannelView {
                connected: true,
                webhook_host: Url::parse(&c.webhook_url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string)),
                connected_at: Some(c.connected_at),
            },
            None => ChannelView {
                connected: false,
                webhook_host: None,
                connected_at: None,
            },
        }
    }
}

/// Where webhooks may point.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// https only (production).
    pub https_only: bool,
    /// Loopback, private and link-local addresses allowed (`channels.allow_private_targets`).
    pub allow_private: bool,
}

impl Policy {
    pub fn from_settings(s: &Settings) -> Self {
        Policy {
            https_only: s.environment == "production",
            allow_private: s.channels.allow_private_targets,
        }
    }
}

/// A webhook URL that passed the checks, with the addresses its host resolved to (empty
/// when private targets are allowed and the host is a name: then it is resolved as usual).
/// Its `Debug` leaves the URL out.
pub struct Target {
    url: Url,
    addrs: Vec<SocketAddr>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.url.host_str())
            .field("addrs", &self.addrs)
            .finish()
    }
}

/// Whether `ip` is an address on the public internet: not loopback, private (RFC 1918,
/// unique-local fc00::/7), link-local, unspecified, shared (100.64/10), documentation,
/// benchmarking, multicast, broadcast or reserved. An IPv4-mapped address is judged as its
/// IPv4 address (the socket connects to that address itself). Every other way of carrying
/// IPv4 inside IPv6 (NAT64, 6to4, Teredo, SIIT, IPv4-compatible) is refused outright: the
/// packets would go through a translator or relay that Convene does not see, which may well
/// reach an internal IPv4 network.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

/// Whether `ip` is one of the IPv6 ranges that carry an IPv4 address to a translator or
/// relay: NAT64 (64:ff9b::/96, and the local-use 64:ff9b:1::/48), 6to4 (2002::/16), Teredo
/// (2001::/32) and SIIT's IPv4-translated addresses (::ffff:0:0:0/96).
pub fn is_ipv4_translation(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // NAT64: the well-known prefix (64:ff9b::/96) and the local-use one (64:ff9b:1::/48).
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && (s[2] == 1 || s[2..6].iter().all(|x| *x == 0));
    nat64
        || s[0] == 0x2002
        || (s[0] == 0x2001 && s[1] == 0)
        || (s[..4].iter().all(|x| *x == 0) && s[4] == 0xffff && s[5] == 0)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_global_v4(v4);
    }
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || is_ipv4_translation(ip)
        // IPv4-compatible (deprecated) and the rest of ::/96.
        || s[..6].iter().all(|x| *x == 0)
        // Unique local, fc00::/7.
        || (s[0] & 0xfe00) == 0xfc00
        // Link-local, fe80::/10, and the deprecated site-local fec0::/10.
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        // Documentation, 2001:db8::/32.
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // Discard-only, 100::/64.
        || (s[0] == 0x100 && s[1..4].iter().all(|x| *x == 0)))
}

/// The ports a webhook may use unless private targets are allowed: the web's own. Any other
/// port would let a webhook knock on whatever service listens there (mail, databases).
const WEBHOOK_PORTS: [u16; 2] = [80, 443];

/// The one text every refused webhook URL gets, whatever the reason. Telling a malformed
/// URL from a name that does not resolve, a private address or a closed port would make
/// `setGroupChannel` a probe of the network Convene runs in; the reason is logged instead.
pub const REFUSED: &str = "this webhook URL cannot be used: it must be an https URL on the \
standard port of a host on the public internet";

/// Why a webhook URL was refused: logged (never shown, never with the URL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    TooLong,
    Malformed,
    Scheme,
    NoHost,
    Port,
    Unresolved,
    NotGlobal,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::TooLong => "the URL is too long",
            Refusal::Malformed => "not a valid URL",
            Refusal::Scheme => "the scheme is not allowed",
            Refusal::NoHost => "the URL has no host",
            Refusal::Port => "the port is not allowed",
            Refusal::Unresolved => "the host could not be resolved",
            Refusal::NotGlobal => "an address is not on the public internet",
        })
    }
}

/// Checks a webhook URL against `policy`, resolving its host. The refusal is for the log;
/// the person who set the URL is told [`REFUSED`] whatever it is.
pub async fn check(policy: Policy, raw: &str) -> Result<Target, Refusal> {
    let raw = raw.trim();
    if raw.len() > URL_MAX {
        return Err(Refusal::TooLong);
    }
    let url = Url::parse(raw).map_err(|_| Refusal::Malformed)?;
    match url.scheme() {
        "https" => {}
        "http" if !policy.https_only => {}
        _ => return Err(Refusal::Scheme),
    }
    let port = url.port_or_known_default().ok_or(Refusal::Port)?;
    if !policy.allow_private && !WEBHOOK_PORTS.contains(&port) {
        return Err(Refusal::Port);
    }
    let addrs: Vec<SocketAddr> = match url.host() {
        None => return Err(Refusal::NoHost),
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Domain(_)) if policy.allow_private => Vec::new(),
        Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| Refusal::Unresolved)?
            .collect(),
    };
    if !policy.allow_private {
        if addrs.is_empty() {
            return Err(Refusal::Unresolved);
        }
        if addrs.iter().any(|a| !is_global(a.ip())) {
            return Err(Refusal::NotGlobal);
        }
    }
    Ok(Target { url, addrs })
}

/// Connects (`Some(url)`) or disconnects (`None`) the group's channel: its organisers and
/// administrators only. A URL is checked before anything is written; setting one replaces
/// the last.
pub async fn set(
    ctx: &Ctx,
    actor: &Actor,
    group_id: Uuid,
    webhook_url: Option<&str>,
) -> AppResult<working_group::Model> {
    actor.require_verified()?;
    // Who may, first: nobody else gets to make Convene resolve names.
    groups::access(&ctx.db, Some(actor), group_id)
        .await?
        .require_organiser()?;
    let url = match webhook_url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(raw) => Some(
            check(Policy::from_settings(&ctx.settings), raw)
                .await
                .map_err(|why| {
                    tracing::info!(group = %group_id, reason = %why, "webhook URL refused");
                    AppError::bad_input(FIELD, REFUSED)
                })?
                .url,
        ),
        None => None,
    };
    let tx = begin_write(&ctx.db).await?;
    let group = working_group::Entity::find_by_id(group_id)
        .lock_exclusive()
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("working group"))?;
    let access = groups::access_to(&tx, Some(actor), group).await?;
    access.require_organiser()?;
    let existing = group_channel::Entity::find_by_id(group_id).one(&tx).await?;
    match (url, existing) {
        (Some(url), Some(row)) => {
            let mut m = row.into_active_model();
            m.webhook_url = Set(url.to_string());
            m.connected_at = Set(now());
            m.connected_by = Set(Some(actor.id));
            m.update(&tx).await?;
        }
        (Some(url), None) => {
            group_channel::ActiveModel {
                working_group_id: Set(group_id),
                webhook_url: Set(url.to_string()),
                connected_at: Set(now()),
                connected_by: Set(Some(actor.id)),
            }
            .insert(&tx)
            .await?;
        }
        (None, Some(_)) => {
            group_channel::Entity::delete_by_id(group_id)
                .exec(&tx)
                .await?;
        }
        (None, None) => {}
    }
    tx.commit().await?;
    tracing::info!(group = %group_id, connected = webhook_url.is_some(), "group channel set");
    Ok(access.group)
}

/// The group's channel as `viewer` may see it: `None` unless they organise the group.
pub async fn view(ctx: &Ctx, access: &groups::Access) -> AppResult<Option<ChannelView>> {
    if !access.can_organise() {
        return Ok(None);
    }
    let row = group_channel::Entity::find_by_id(access.group.id)
        .one(&ctx.db)
        .await?;
    Ok(Some(ChannelView::of(row.as_ref())))
}

/// The groups working on `commitment_id`.
pub async fn linked_groups<C: ConnectionTrait>(
    conn: &C,
    commitment_id: Uuid,
) -> AppResult<Vec<Uuid>> {
    Ok(working_group_commitment::Entity::find()
        .select_only()
        .column(working_group_commitment::Column::WorkingGroupId)
        .filter(working_group_commitment::Column::CommitmentId.eq(commitment_id))
        .into_tuple()
        .all(conn)
        .await?)
}

/// A character that renders as nothing and joins nothing: put inside a mention or a link
/// it breaks the pattern a chat server looks for, while the text reads the same.
const WORD_JOINER: char = '\u{2060}';

/// `text` safe inside a chat message, rendering inert: `&`, `<` and `>` escaped (Slack's
/// `<!channel>`, `<@U1>` and `<url|x>`), every `@` kept from starting a mention
/// (Mattermost's and Rocket.Chat's `@channel`, `@here`, `@all`, `@someone`), and Markdown
/// links (`[x](url)`, `![x](url)`) and bare URLs (`https://…`) kept from linking. User text
/// must not ping a whole channel or dress a link up as Convene's.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => {
                out.push('@');
                out.push(WORD_JOINER);
            }
            // `](` ends a Markdown link's text and opens its target.
            ']' if chars.peek() == Some(&'(') => {
                out.push(']');
                out.push(WORD_JOINER);
            }
            // `://` makes a bare URL that chat servers link on their own.
            ':' if text_continues(&chars, "//") => {
                out.push(WORD_JOINER);
                out.push(':');
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether the characters still to come start with `next`.
fn text_continues(chars: &std::iter::Peekable<std::str::Chars<'_>>, next: &str) -> bool {
    chars.clone().take(next.len()).eq(next.chars())
}

/// A link in Slack's syntax, `<url|title>`, with the title escaped.
pub fn link(url: &str, title: &str) -> String {
    format!("<{}|{}>", url, escape(title).replace('|', "¦"))
}

/// The messages, one per event, rendered when they are posted. Titles are user text:
/// escaped, linked through `public.base_url`, and a hidden item's title is the marker.
pub mod text {
    use super::{escape, link};
    use crate::entities::{meetup, thread, working_group};
    use crate::services::moderation::HIDDEN_TITLE;

    /// Links to Convene's pages (`public.base_url`).
    pub struct Links<'a>(&'a str);

    impl<'a> Links<'a> {
        pub fn new(base_url: &'a str) -> Self {
            Links(base_url.trim_end_matches('/'))
        }

        fn to(&self, path: &str) -> String {
            format!("{}/{}", self.0, path.trim_start_matches('/'))
        }
    }

    /// When a meet-up starts, in its own time zone.
    fn starts(m: &meetup::Model) -> String {
        match m.time_zone.parse::<chrono_tz::Tz>() {
            Ok(tz) => m
                .starts_at
                .with_timezone(&tz)
                .format("%a %-d %b %Y, %H:%M %Z")
                .to_string(),
            Err(_) => m.starts_at.format("%a %-d %b %Y, %H:%M UTC").to_string(),
        }
    }

    fn thread_title(t: &thread::Model) -> &str {
        if t.hidden {
            HIDDEN_TITLE
        } else {
            &t.title
        }
    }

    pub fn meetup_scheduled(
        links: &Links<'_>,
        group: &working_group::Model,
        m: &meetup::Model,
    ) -> String {
        format!(
            "New meet-up in {}: {} on {}",
            escape(&group.name),
            link(&links.to(&format!("meetups/{}", m.id)), &m.title),
            starts(m)
        )
    }

    pub fn outcomes_published(
        links: &Links<'_>,
        group: &working_group::Model,
        m: &meetup::Model,
    ) -> String {
        format!(
            "Outcomes published for {} in {}",
            link(&links.to(&format!("meetups/{}", m.id)), &m.title),
            escape(&group.name)
        )
    }

    pub fn thread_started(links: &Links<'_>, group_name: &str, t: &thread::Model) -> String {
        format!(
            "New thread in {}: {}",
            escape(group_name),
            link(&links.to(&format!("threads/{}", t.id)), thread_title(t))
        )
    }

    /// An official response on a suggestion (`status`: its new status, if it changed).
    pub fn suggestion_response(
        links: &Links<'_>,
        suggestion_id: uuid::Uuid,
        title: &str,
        hidden: bool,
        status: Option<&str>,
    ) -> String {
        let title = if hidden { HIDDEN_TITLE } else { title };
        let url = links.to(&format!("suggestions/{suggestion_id}"));
        match status {
            Some(s) => format!("Official response on {} (now {s})", link(&url, title)),
            None => format!("Official response on {}", link(&url, title)),
        }
    }

    pub fn thread_response(links: &Links<'_>, t: &thread::Model) -> String {
        format!(
            "Official response in {}",
            link(&links.to(&format!("threads/{}", t.id)), thread_title(t))
        )
    }
}

/// Posts channel messages: checks the webhook again (its host may resolve elsewhere now),
/// connects only to the addresses checked, follows no redirect, uses no proxy, and gives up
/// an attempt after `channels.timeout_secs`.
#[derive(Clone, Debug)]
pub struct Poster {
    policy: Policy,
    timeout: Duration,
}

/// The strictest: https only, global addresses only, 10 s per attempt.
impl Default for Poster {
    fn default() -> Self {
        Poster {
            policy: Policy {
                https_only: true,
                allow_private: false,
            },
            timeout: Duration::from_secs(10),
        }
    }
}

impl Poster {
    pub fn new(settings: &Settings) -> Self {
        Poster {
            policy: Policy::from_settings(settings),
            timeout: Duration::from_secs(settings.channels.timeout_secs.max(1)),
        }
    }

    /// How long one attempt may take.
    pub fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    /// Posts `{"text": text}` to `webhook_url`. Any answer but 2xx is an error (retried by
    /// the outbox). Errors never carry the URL.
    pub async fn post(&self, webhook_url: &str, text: &str) -> anyhow::Result<()> {
        let target = check(self.policy, webhook_url)
            .await
            .map_err(|why| anyhow::anyhow!("webhook refused: {why}"))?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(self.timeout);
        if let (Some(Host::Domain(name)), false) = (target.url.host(), target.addrs.is_empty()) {
            builder = builder.resolve_to_addrs(name, &target.addrs);
        }
        let client = builder.build().map_err(without_url)?;
        let answer = client
            .post(target.url)
            .json(&json!({ "text": text }))
            .send()
            .await
            .map_err(without_url)?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("the channel answered {status}"))
        }
    }
}

/// A client error with its URL removed (it would carry the webhook's secret path).
fn without_url(e: reqwest::Error) -> anyhow::Error {
    anyhow::Error::new(e.without_url()).context("posting to the channel failed")
}

/// Reads the group's webhook URL when a message is posted; `None` once disconnected.
pub async fn webhook_of<C: ConnectionTrait>(
    conn: &C,
    group_id: Uuid,
) -> Result<Option<String>, sea_orm::DbErr> {
    Ok(group_channel::Entity::find_by_id(group_id)
        .one(conn)
        .await?
        .map(|c| c.webhook_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Policy {
        Policy {
            https_only: true,
            allow_private: false,
        }
    }

    #[test]
    fn only_global_addresses_pass() {
        for bad in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "2001:db8::1",
            "::1.1.1.1",
        ] {
            assert!(!is_global(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "2a00:1450:4001::1",
        ] {
            assert!(is_global(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn ipv4_translations_are_refused_even_of_global_addresses() {
        for bad in [
            // NAT64, the well-known prefix and the local-use one.
            "64:ff9b::101:101",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::101:101",
            "64:ff9b:1:ffff::1",
            // 6to4 of 1.1.1.1 and of 10.0.0.1.
            "2002:101:101::1",
            "2002:a00:1::1",
            // Teredo.
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001::1",
            // SIIT's IPv4-translated addresses.
            "::ffff:0:101:101",
            "::ffff:0:a00:1",
        ] {
            let ip: Ipv6Addr = bad.parse().unwrap();
            assert!(is_ipv4_translation(ip), "{bad}");
            assert!(!is_global(IpAddr::V6(ip)), "{bad}");
        }
        // Their neighbours are ordinary global addresses.
        for good in [
            "64:ff9b:2::1",
            "2001:4860::8888",
            "2003::1",
            "::ffff:1.1.1.1",
        ] {
            let ip: Ipv6Addr = good.parse().unwrap();
            assert!(!is_ipv4_translation(ip), "{good}");
            assert!(is_global(IpAddr::V6(ip)), "{good}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_and_refusals_say_why_only_to_the_log() {
        let refused = |r: Result<Target, Refusal>| r.map(|_| ()).unwrap_err();
        assert_eq!(
            refused(check(strict(), "not a url/s3cret").await),
            Refusal::Malformed
        );
        assert_eq!(
            refused(check(strict(), "http://93.184.216.34/hooks/s3cret").await),
            Refusal::Scheme
        );
        assert_eq!(
            refused(check(strict(), "ftp://93.184.216.34/x").await),
            Refusal::Scheme
        );
        assert_eq!(
            refused(check(strict(), "https://127.0.0.1/hooks/s3cret").await),
            Refusal::NotGlobal
        );
        assert_eq!(
            refused(check(strict(), "https://[64:ff9b::101:101]/x").await),
            Refusal::NotGlobal
        );
        assert_eq!(
            refused(check(strict(), "https://93.184.216.34:8443/hooks/x").await),
            Refusal::Port
        );
        assert_eq!(
            refused(check(strict(), "https://93.184.216.34:25/hooks/x").await),
            Refusal::Port
        );
        assert!(check(strict(), "https://[::1]/x").await.is_err());
        assert!(check(strict(), "https://93.184.216.34/hooks/x")
            .await
            .is_ok());
        assert!(check(strict(), "https://93.184.216.34:443/hooks/x")
            .await
            .is_ok());
        let dev = Policy {
            https_only: false,
            allow_private: false,
        };
        assert!(check(dev, "http://93.184.216.34:80/hooks/x").await.is_ok());
        assert_eq!(
            refused(check(dev, "http://93.184.216.34:8080/hooks/x").await),
            Refusal::Port
        );
        // Private targets allowed: any port, any address.
        let lax = Policy {
            https_only: false,
            allow_private: true,
        };
        assert!(check(lax, "http://127.0.0.1:9/").await.is_ok());
        let t = check(lax, "http://localhost:9/hooks/s3cret").await.unwrap();
        assert!(!format!("{t:?}").contains("s3cret"));
        // The refusals' texts never carry the URL either.
        assert!(!REFUSED.contains("s3cret"));
    }

    #[test]
    fn links_escape_their_titles() {
        assert_eq!(
            link("https://c.example/threads/1", "a <b> & c|d"),
            "<https://c.example/threads/1|a &lt;b&gt; &amp; c¦d>"
        );
    }

    #[test]
    fn mentions_and_links_in_user_text_render_inert() {
        let j = WORD_JOINER;
        assert_eq!(escape("hi @channel"), format!("hi @{j}channel"));
        assert_eq!(escape("@here and @all"), format!("@{j}here and @{j}all"));
        assert_eq!(
            escape("<!channel> <!here>"),
            "&lt;!channel&gt; &lt;!here&gt;"
        );
        assert_eq!(escape("<@U123>"), format!("&lt;@{j}U123&gt;"));
        assert_eq!(
            escape("[click](https://evil.example)"),
            format!("[click]{j}(https{j}://evil.example)")
        );
        assert_eq!(
            escape("![img](http://x.example/a.png)"),
            format!("![img]{j}(http{j}://x.example/a.png)")
        );
        assert_eq!(
            escape("see https://x.example"),
            format!("see https{j}://x.example")
        );
        // Text without any of them is left as it is.
        assert_eq!(
            escape("Budget [draft]: 3 items (a: b)"),
            "Budget [draft]: 3 items (a: b)"
        );
        // A link's title is escaped the same way; its own target is not.
        assert_eq!(
            link("https://c.example/t/1", "ping @here"),
            format!("<https://c.example/t/1|ping @{j}here>")
        );
    }
}
