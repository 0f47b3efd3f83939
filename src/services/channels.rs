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

use super::{groups, outbox, Ctx};
use crate::auth::Actor;
use crate::config::Settings;
use crate::db::{begin_write, now};
use crate::entities::{group_channel, working_group, working_group_commitment};
use crate::error::{AppError, AppResult};

/// The outbox template of a channel message (its kind is `outbox::KIND_CHANNEL`).
pub const TEMPLATE: &str = "channel";

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
/// benchmarking, multicast, broadcast or reserved. IPv4 inside IPv6 (mapped, compatible,
/// NAT64) is judged as the IPv4 address.
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

fn is_global_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_global_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0) {
        let [.., hi, lo] = s;
        return is_global_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
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

/// Checks a webhook URL against `policy`, resolving its host. The error is a message for
/// the person who set it; it never repeats the URL.
pub async fn check(policy: Policy, raw: &str) -> Result<Target, String> {
    let raw = raw.trim();
    if raw.len() > URL_MAX {
        return Err(format!("a webhook URL is at most {URL_MAX} characters"));
    }
    let url = Url::parse(raw).map_err(|_| "not a valid URL".to_string())?;
    match url.scheme() {
        "https" => {}
        "http" if !policy.https_only => {}
        "http" => return Err("the webhook URL must use https".into()),
        _ => return Err("the webhook URL must be an https URL".into()),
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| "the webhook URL has no port".to_string())?;
    let addrs: Vec<SocketAddr> = match url.host() {
        None => return Err("the webhook URL has no host".into()),
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Domain(_)) if policy.allow_private => Vec::new(),
        Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| "the webhook's host could not be resolved".to_string())?
            .collect(),
    };
    if !policy.allow_private {
        if addrs.is_empty() {
            return Err("the webhook's host could not be resolved".into());
        }
        if addrs.iter().any(|a| !is_global(a.ip())) {
            return Err(
                "the webhook URL points at a loopback, private or link-local address".into(),
            );
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
                .map_err(|m| AppError::bad_input(FIELD, m))?
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

/// Queues `text` for the channels of those of `group_ids` that have one, in the caller's
/// transaction: one outbox row per group, keyed by the event and the group, so an event is
/// posted to a channel once. The row names the group, not the URL. Returns how many were
/// queued.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    group_ids: &[Uuid],
    event_key: &str,
    text: &str,
) -> AppResult<usize> {
    if group_ids.is_empty() {
        return Ok(0);
    }
    let connected: Vec<Uuid> = group_channel::Entity::find()
        .select_only()
        .column(group_channel::Column::WorkingGroupId)
        .filter(group_channel::Column::WorkingGroupId.is_in(group_ids.iter().copied()))
        .into_tuple()
        .all(conn)
        .await?;
    let mut queued = 0;
    for group in connected {
        if outbox::enqueue_channel(
            conn,
            &format!("channel:{event_key}:{group}"),
            group,
            json!({ "text": text }),
        )
        .await?
        {
            queued += 1;
        }
    }
    Ok(queued)
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

/// `text` safe inside a Slack message: `&`, `<` and `>` escaped, so that user text cannot
/// make links or mentions of its own.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A link in Slack's syntax, `<url|title>`, with the title escaped.
pub fn link(url: &str, title: &str) -> String {
    format!("<{}|{}>", url, escape(title).replace('|', "¦"))
}

/// The messages, one per event. Titles are user text: escaped, and linked through
/// `public.base_url`.
pub mod text {
    use super::{escape, link, Ctx};
    use crate::entities::{meetup, thread, working_group};
    use crate::services::moderation::HIDDEN_TITLE;

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

    pub fn meetup_scheduled(ctx: &Ctx, group: &working_group::Model, m: &meetup::Model) -> String {
        format!(
            "New meet-up in {}: {} on {}",
            escape(&group.name),
            link(&ctx.link(&format!("meetups/{}", m.id)), &m.title),
            starts(m)
        )
    }

    pub fn outcomes_published(
        ctx: &Ctx,
        group: &working_group::Model,
        m: &meetup::Model,
    ) -> String {
        format!(
            "Outcomes published for {} in {}",
            link(&ctx.link(&format!("meetups/{}", m.id)), &m.title),
            escape(&group.name)
        )
    }

    pub fn thread_started(ctx: &Ctx, group_name: &str, t: &thread::Model) -> String {
        format!(
            "New thread in {}: {}",
            escape(group_name),
            link(&ctx.link(&format!("threads/{}", t.id)), &t.title)
        )
    }

    /// An official response on a suggestion (`status`: its new status, if it changed).
    pub fn suggestion_response(
        ctx: &Ctx,
        suggestion_id: uuid::Uuid,
        title: &str,
        hidden: bool,
        status: Option<&str>,
    ) -> String {
        let title = if hidden { HIDDEN_TITLE } else { title };
        let url = ctx.link(&format!("suggestions/{suggestion_id}"));
        match status {
            Some(s) => format!("Official response on {} (now {s})", link(&url, title)),
            None => format!("Official response on {}", link(&url, title)),
        }
    }

    pub fn thread_response(ctx: &Ctx, t: &thread::Model) -> String {
        let title = if t.hidden { HIDDEN_TITLE } else { &t.title };
        format!(
            "Official response in {}",
            link(&ctx.link(&format!("threads/{}", t.id)), title)
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
            .map_err(|m| anyhow::anyhow!("webhook refused: {m}"))?;
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
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            assert!(!is_global(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_global(good.parse().unwrap()), "{good}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_without_repeating_them() {
        let e = check(strict(), "not a url/s3cret").await.unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        assert!(check(strict(), "http://93.184.216.34/hooks/s3cret")
            .await
            .unwrap_err()
            .contains("https"));
        assert!(check(strict(), "ftp://93.184.216.34/x").await.is_err());
        let e = check(strict(), "https://127.0.0.1:9/hooks/s3cret")
            .await
            .unwrap_err();
        assert!(e.contains("private"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        assert!(check(strict(), "https://[::1]/x").await.is_err());
        assert!(check(strict(), "https://93.184.216.34/hooks/x")
            .await
            .is_ok());
        let lax = Policy {
            https_only: false,
            allow_private: true,
        };
        assert!(check(lax, "http://127.0.0.1:9/").await.is_ok());
        let t = check(lax, "http://localhost:9/hooks/s3cret").await.unwrap();
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn links_escape_their_titles() {
        assert_eq!(
            link("https://c.example/threads/1", "a <b> & c|d"),
            "<https://c.example/threads/1|a &lt;b&gt; &amp; c¦d>"
        );
    }
}
