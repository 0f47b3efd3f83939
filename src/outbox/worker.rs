//! Delivers outbox rows. Workers claim due rows with a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, so several workers never take the same row), send them, and record the
//! outcome while they still hold the lease; a failure is retried with exponential backoff
//! and jitter until `max_attempts`. Delivered and dead rows keep no tokens or links.

use std::time::Duration;

use futures::StreamExt;
use rand::Rng;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    Statement,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::event::{OutboxEvent, Undecodable, KIND_CHANNEL, KIND_NOTIFICATION};
use super::mail::{self as notification_mail, Decisions, MailSetup};
use super::plan::{plan, Delivery};
use super::write::{redact_secrets, KIND_EMAIL};
use super::{notify, render};
use crate::config::JobSettings;
use crate::db::{begin_write, now};
use crate::entities::outbox::{self, Status};
use crate::events::{Event, Events};
use crate::mail::{is_permanent_failure, is_security_template, Mailer};
use crate::services::channels::{self, Poster};
use crate::services::deliverability;

#[derive(Clone)]
pub struct OutboxWorker {
    db: DatabaseConnection,
    mailer: Mailer,
    settings: JobSettings,
    lease: Duration,
    /// Where new notifications are announced (`notificationAdded`) once committed.
    events: Events,
    /// Posts working groups' channel messages.
    channels: Poster,
    /// What notification mail needs (unsubscribe keys, preference defaults); without it a
    /// fan-out writes in-app notifications only.
    notify_mail: Option<MailSetup>,
    /// Permanent failures after which an address is marked undeliverable
    /// (`mail.undeliverable_after`).
    undeliverable_after: i32,
}

/// Why a mail was not sent: its address is marked undeliverable and it is not security
/// mail. The row is given up (DEAD) at once with this as its last error.
#[derive(Debug, thiserror::Error)]
#[error("address undeliverable")]
struct AddressUndeliverable;

/// Whether a channel message went out, and if not, why.
enum Posted {
    Yes,
    No(&'static str),
}

/// Time a claimed batch needs beyond its delivery attempts: the database round trips and
/// rendering, with room for a slow moment.
pub const LEASE_MARGIN: Duration = Duration::from_secs(60);

/// How long a claim holds its rows: `jobs.lease_secs`, or longer when a batch whose every
/// attempt runs into the attempt timeout would outlive it. A lease that ran out mid-batch
/// would let a second worker send the same mail again. A batch's deliveries run
/// `jobs.concurrency` at a time, so the worst batch is that many timeouts in parallel, one
/// round after another.
pub fn lease_for(settings: &JobSettings, attempt_timeout: Duration) -> Duration {
    let configured = Duration::from_secs(u64::try_from(settings.lease_secs).unwrap_or(0));
    let batch = settings.batch_size.max(1);
    let rounds = batch.div_ceil(settings.concurrency.clamp(1, batch));
    let rounds = u32::try_from(rounds).unwrap_or(u32::MAX);
    let worst_batch = attempt_timeout
        .saturating_mul(rounds)
        .saturating_add(LEASE_MARGIN);
    configured.max(worst_batch)
}

/// The delay before try number `attempts + 1`: base·2^(attempts−1), capped, plus up to 25 %
/// jitter so that many failed rows do not retry in lock-step.
pub fn backoff(settings: &JobSettings, attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let base = settings
        .backoff_base_secs
        .saturating_mul(2u64.saturating_pow(exp))
        .min(settings.backoff_max_secs);
    let jitter = rand::rng().random_range(0.0..=0.25);
    Duration::from_secs_f64(base as f64 * (1.0 + jitter))
}

/// The shortest time between the first try and giving up (jitter only adds to it).
pub fn minimum_retry_span(settings: &JobSettings) -> Duration {
    (1..settings.max_attempts)
        .map(|a| {
            let exp = u32::try_from(a - 1).unwrap_or(30).min(30);
            Duration::from_secs(
                settings
                    .backoff_base_secs
                    .saturating_mul(2u64.saturating_pow(exp))
                    .min(settings.backoff_max_secs),
            )
        })
        .sum()
}

impl OutboxWorker {
    pub fn new(db: DatabaseConnection, mailer: Mailer, settings: JobSettings) -> Self {
        let lease = lease_for(&settings, mailer.attempt_timeout());
        OutboxWorker {
            db,
            mailer,
            settings,
            lease,
            events: Events::new(),
            channels: Poster::default(),
            notify_mail: None,
            undeliverable_after: 3,
        }
    }

    /// Posts channel messages with `poster` (the site's `channels.*` settings). The lease
    /// grows if a batch of channel posts that all time out would outlive it: they go one
    /// by one, in order.
    pub fn with_channels(mut self, poster: Poster) -> Self {
        let one_by_one = JobSettings {
            concurrency: 1,
            ..self.settings.clone()
        };
        self.lease = self
            .lease
            .max(lease_for(&one_by_one, poster.attempt_timeout()));
        self.channels = poster;
        self
    }

    /// Lets fan-outs mail notifications as each person's preferences say: `keys` sign the
    /// unsubscribe links, `settings` give the default preferences, and links go to the
    /// mailer's base URL.
    pub fn with_tokens(
        mut self,
        keys: std::sync::Arc<crate::auth::tokens::TokenKeys>,
        settings: crate::config::NotificationSettings,
    ) -> Self {
        self.notify_mail = Some(MailSetup {
            keys,
            settings,
            base_url: self.mailer.base_url().to_string(),
        });
        self
    }

    /// Marks an address undeliverable after this many permanent failures (default 3).
    pub fn with_undeliverable_after(mut self, after: i32) -> Self {
        self.undeliverable_after = after.max(1);
        self
    }

    /// Announces the notifications it writes on `events` (the application's bus).
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// How long a claim holds its rows (see [`lease_for`]).
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Polls until cancelled. A batch in progress finishes before the loop ends.
    pub async fn run(self, cancel: CancellationToken) {
        let poll = Duration::from_millis(self.settings.poll_interval_ms.max(10));
        tracing::info!(lease_secs = self.lease.as_secs(), "outbox worker started");
        // Checked before every batch, so a steady stream of mail cannot hold up shutdown.
        while !cancel.is_cancelled() {
            match self.run_once().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = ?e, "outbox batch failed"),
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(poll) => {}
            }
        }
        tracing::info!("outbox worker stopped");
    }

    /// Claims and processes one batch; returns how many rows it handled.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let lease_token = Uuid::new_v4();
        let mut rows = self.claim(lease_token).await?;
        // In the order the events happened (RETURNING keeps no order): a person's
        // notifications then list newest first as their events did.
        rows.sort_by_key(|r| (r.created_at, r.id));
        let n = rows.len();
        // Fan-outs one after another, in event order. Then, side by side: channel posts one
        // after another, so that a chat reads in event order, and mail `jobs.concurrency` at
        // a time, since each mostly waits on the SMTP server.
        let (fan_outs, rest): (Vec<_>, Vec<_>) =
            rows.into_iter().partition(|r| r.kind == KIND_NOTIFICATION);
        for row in fan_outs {
            self.deliver(row, lease_token).await?;
        }
        let (posts, mails): (Vec<_>, Vec<_>) =
            rest.into_iter().partition(|r| r.kind == KIND_CHANNEL);
        let concurrency = usize::try_from(self.settings.concurrency.max(1)).unwrap_or(1);
        let in_order = async {
            for row in posts {
                self.deliver(row, lease_token).await?;
            }
            anyhow::Ok(())
        };
        let in_parallel = futures::stream::iter(mails)
            .map(|row| self.deliver(row, lease_token))
            .buffer_unordered(concurrency)
            .collect::<Vec<anyhow::Result<()>>>();
        let (posted, results) = tokio::join!(in_order, in_parallel);
        posted?;
        results.into_iter().collect::<anyhow::Result<()>>()?;
        Ok(n)
    }

    /// Leases up to a batch of due rows to this claim: `lease_token` names it, so that only
    /// this claim can record their outcome.
    async fn claim(&self, lease_token: Uuid) -> anyhow::Result<Vec<outbox::Model>> {
        let at = now();
        let lease_until = at + chrono::Duration::from_std(self.lease)?;
        let limit = i64::try_from(self.settings.batch_size.max(1)).unwrap_or(20);
        let backend = self.db.get_database_backend();
        let stmt = match backend {
            DbBackend::Postgres => Statement::from_sql_and_values(
                backend,
                r#"UPDATE outbox SET locked_until = $1, lease_token = $4
                   WHERE id IN (
                     SELECT id FROM outbox
                     WHERE status = 'PENDING' AND kind IN ('email', 'notification', 'channel') AND next_attempt_at <= $2
                       AND (locked_until IS NULL OR locked_until <= $2)
                     ORDER BY next_attempt_at
                     LIMIT $3
                     FOR UPDATE SKIP LOCKED)
                   RETURNING *"#,
                [
                    lease_until.into(),
                    at.into(),
                    limit.into(),
                    lease_token.into(),
                ],
            ),
            _ => Statement::from_sql_and_values(
                backend,
                r#"UPDATE outbox SET locked_until = ?, lease_token = ?
                   WHERE id IN (
                     SELECT id FROM outbox
                     WHERE status = 'PENDING' AND kind IN ('email', 'notification', 'channel') AND next_attempt_at <= ?
                       AND (locked_until IS NULL OR locked_until <= ?)
                     ORDER BY next_attempt_at
                     LIMIT ?)
                   RETURNING *"#,
                [
                    lease_until.into(),
                    lease_token.into(),
                    at.into(),
                    at.into(),
                    limit.into(),
                ],
            ),
        };
        Ok(outbox::Entity::find()
            .from_raw_sql(stmt)
            .all(&self.db)
            .await?)
    }

    /// Fans a notification event out: its notifications and the row's SENT mark are one
    /// transaction, which commits only while this claim still holds the lease. Returns
    /// `Ok(false)` when the lease was lost (another worker owns the row now); the unique
    /// (event, recipient) key makes whatever either of them wrote count once.
    async fn fan_out(
        &self,
        row: &outbox::Model,
        event: &OutboxEvent,
        lease_token: Uuid,
    ) -> anyhow::Result<bool> {
        let tx = begin_write(&self.db).await?;
        let Delivery::Notify(plan) = plan(&tx, event).await? else {
            anyhow::bail!("event {} notifies nobody", event.name());
        };
        // Who is mailed now, who waits for the digest: decided before the rows are
        // written (they carry `digest_pending`), mailed only for the rows that are new.
        let decisions = match &self.notify_mail {
            Some(setup) => notification_mail::decide(&tx, setup, &plan).await?,
            None => Decisions::default(),
        };
        let written =
            notify::insert_planned_marking(&tx, &row.idempotency_key, &plan, &decisions.digest)
                .await?;
        let mails = match &self.notify_mail {
            Some(setup) => {
                let payload = event.to_payload();
                notification_mail::queue_immediate(
                    &tx, setup, &plan, &payload, &written, &decisions,
                )
                .await?
            }
            None => 0,
        };
        let marked = outbox::Entity::update_many()
            .set(outbox::ActiveModel {
                attempts: Set(row.attempts + 1),
                locked_until: Set(None),
                lease_token: Set(None),
                status: Set(Status::Sent),
                sent_at: Set(Some(now())),
                last_error: Set(None),
                payload: Set(redact_secrets(&row.payload)),
                ..Default::default()
            })
            .filter(outbox::Column::Id.eq(row.id))
            .filter(outbox::Column::LeaseToken.eq(lease_token))
            .exec(&tx)
            .await?
            .rows_affected
            > 0;
        if !marked {
            tx.rollback().await?;
            tracing::warn!(id = %row.id, template = %row.template, "outbox lease lost to another worker; fan-out left to it");
            return Ok(false);
        }
        tx.commit().await?;
        tracing::info!(id = %row.id, template = %row.template, notifications = written.len(), mails, "notification event delivered");
        self.events
            .publish_all(written.into_iter().map(|n| Event::NotificationAdded {
                user_id: n.recipient_id,
                id: n.id,
            }))
            .await;
        Ok(true)
    }

    async fn deliver(&self, row: outbox::Model, lease_token: Uuid) -> anyhow::Result<()> {
        if row.kind == KIND_NOTIFICATION || row.kind == KIND_CHANNEL {
            let event = match OutboxEvent::decode(&row.template, &row.recipient, &row.payload) {
                Ok(e) if e.kind() == row.kind => e,
                Ok(e) => {
                    let wrong = Undecodable {
                        template: row.template.clone(),
                        reason: format!("event {} is not a {} row", e.name(), row.kind),
                    };
                    return self.record(row, lease_token, Err(wrong.into())).await;
                }
                // Given up at once (see `record`): it would fail the same way every time.
                Err(e) => return self.record(row, lease_token, Err(e.into())).await,
            };
            if row.kind == KIND_NOTIFICATION {
                return match self.fan_out(&row, &event, lease_token).await {
                    Ok(_) => Ok(()),
                    // Recorded below as a failed attempt, retried with backoff.
                    Err(e) => self.record(row, lease_token, Err(e)).await,
                };
            }
            let result = match self.post_to_channel(&event).await {
                Ok(Posted::Yes) => Ok(()),
                Ok(Posted::No(why)) => return self.finish_unposted(&row, lease_token, why).await,
                Err(e) => Err(e),
            };
            return self.record(row, lease_token, result).await;
        }
        let result = match row.kind.as_str() {
            KIND_EMAIL => {
                // Security mail always goes; the rest not to an address known to bounce.
                let suppressed = !is_security_template(&row.template)
                    && deliverability::address_is_undeliverable(&self.db, &row.recipient).await?;
                if suppressed {
                    Err(anyhow::Error::new(AddressUndeliverable))
                } else {
                    let mut payload: serde_json::Value =
                        serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null);
                    // A notification's mail says what its subject is now.
                    render::mail_payload(&self.db, &mut payload).await?;
                    self.mailer
                        .send(&row.id.to_string(), &row.recipient, &row.template, &payload)
                        .await
                }
            }
            other => Err(anyhow::anyhow!("unknown outbox kind {other:?}")),
        };
        self.record(row, lease_token, result).await
    }

    /// Posts a channel message to its group's webhook, read now (the row never holds the
    /// URL), with its text rendered now.
    async fn post_to_channel(&self, event: &OutboxEvent) -> anyhow::Result<Posted> {
        let OutboxEvent::ChannelPost {
            working_group_id,
            message,
        } = event
        else {
            anyhow::bail!("event {} is no channel message", event.name());
        };
        let Some(url) = channels::webhook_of(&self.db, *working_group_id).await? else {
            return Ok(Posted::No("channel disconnected; nothing posted"));
        };
        let Some(text) =
            render::channel_text(&self.db, self.mailer.base_url(), *working_group_id, message)
                .await?
        else {
            return Ok(Posted::No("its subject is gone; nothing posted"));
        };
        self.channels.post(&url, &text).await?;
        Ok(Posted::Yes)
    }

    /// A channel message that was not posted (its group disconnected its channel, or what
    /// it was about is gone): done, with a note saying why nothing was posted.
    async fn finish_unposted(
        &self,
        row: &outbox::Model,
        lease_token: Uuid,
        why: &'static str,
    ) -> anyhow::Result<()> {
        outbox::Entity::update_many()
            .set(outbox::ActiveModel {
                attempts: Set(row.attempts + 1),
                locked_until: Set(None),
                lease_token: Set(None),
                status: Set(Status::Sent),
                sent_at: Set(Some(now())),
                last_error: Set(Some(why.into())),
                ..Default::default()
            })
            .filter(outbox::Column::Id.eq(row.id))
            .filter(outbox::Column::LeaseToken.eq(lease_token))
            .exec(&self.db)
            .await?;
        tracing::info!(id = %row.id, group = %row.recipient, why, "channel message dropped");
        Ok(())
    }

    /// Records the outcome of one attempt while the claim still holds the lease. A mail
    /// refused for good (5xx) is not retried and counts against the address's account, in
    /// the same transaction; a delivered one starts that count again.
    async fn record(
        &self,
        row: outbox::Model,
        lease_token: Uuid,
        result: anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let attempts = row.attempts + 1;
        let mut update = outbox::ActiveModel {
            attempts: Set(attempts),
            locked_until: Set(None),
            lease_token: Set(None),
            ..Default::default()
        };
        let mut retry_in = None;
        let is_email = row.kind == KIND_EMAIL;
        let permanent = is_email && result.as_ref().err().is_some_and(is_permanent_failure);
        let suppressed = is_email
            && result
                .as_ref()
                .err()
                .is_some_and(|e| e.is::<AddressUndeliverable>());
        // A row that is no event fails the same way every time: it is not retried.
        let undecodable = result.as_ref().err().is_some_and(|e| e.is::<Undecodable>());
        let finished = match &result {
            Ok(()) => {
                update.status = Set(Status::Sent);
                update.sent_at = Set(Some(now()));
                update.last_error = Set(None);
                true
            }
            Err(e) => {
                let message: String = format!("{e:#}").chars().take(2000).collect();
                update.last_error = Set(Some(message));
                if permanent || suppressed || undecodable || attempts >= self.settings.max_attempts
                {
                    update.status = Set(Status::Dead);
                    true
                } else {
                    let delay = backoff(&self.settings, attempts);
                    let next = now() + chrono::Duration::from_std(delay).unwrap_or_default();
                    update.next_attempt_at = Set(next);
                    retry_in = Some(delay);
                    false
                }
            }
        };
        if finished {
            // Its tokens are needed no more; the row is kept as a record without them.
            update.payload = Set(redact_secrets(&row.payload));
        }
        let tx = begin_write(&self.db).await?;
        let recorded = outbox::Entity::update_many()
            .set(update)
            .filter(outbox::Column::Id.eq(row.id))
            .filter(outbox::Column::LeaseToken.eq(lease_token))
            .exec(&tx)
            .await?
            .rows_affected
            > 0;
        if recorded && is_email {
            match &result {
                Ok(()) => deliverability::record_delivered(&tx, &row.recipient).await?,
                Err(e) if permanent => {
                    deliverability::record_permanent_failure(
                        &tx,
                        &row.recipient,
                        &format!("{e:#}"),
                        self.undeliverable_after,
                    )
                    .await?
                }
                Err(_) => {}
            }
        }
        tx.commit().await?;
        if !recorded {
            tracing::warn!(id = %row.id, template = %row.template, attempts, delivered = result.is_ok(), "outbox lease lost to another worker; outcome not recorded");
            return Ok(());
        }
        match result {
            Ok(()) => {
                tracing::info!(id = %row.id, template = %row.template, attempts, "outbox row delivered")
            }
            Err(e) => match retry_in {
                Some(delay) => {
                    tracing::warn!(id = %row.id, attempts, retry_in_secs = delay.as_secs(), error = %format!("{e:#}"), "outbox delivery failed; will retry")
                }
                None if undecodable => {
                    tracing::error!(id = %row.id, template = %row.template, error = %format!("{e:#}"), "outbox row cannot be decoded; given up without retrying")
                }
                None if suppressed => {
                    tracing::info!(id = %row.id, template = %row.template, "mail not sent: the address is marked undeliverable")
                }
                None => {
                    tracing::error!(id = %row.id, attempts, error = %format!("{e:#}"), "outbox row given up")
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> JobSettings {
        crate::config::Settings::load_for(std::path::Path::new("config"), "development", false)
            .unwrap()
            .jobs
    }

    #[test]
    fn default_retries_span_at_least_a_day() {
        let s = defaults();
        assert!(
            minimum_retry_span(&s) >= Duration::from_secs(24 * 3600),
            "{:?}",
            minimum_retry_span(&s)
        );
    }

    #[test]
    fn the_lease_outlasts_a_batch_whose_every_attempt_times_out() {
        let mut s = defaults();
        s.batch_size = 20;
        s.concurrency = 1;
        s.lease_secs = 300;
        let attempt = Duration::from_secs(30);
        // 20 × 30 s = 600 s would outlive the configured 300 s.
        assert_eq!(
            lease_for(&s, attempt),
            Duration::from_secs(600) + LEASE_MARGIN
        );
        // Four at a time: five rounds of 30 s.
        s.concurrency = 4;
        s.lease_secs = 0;
        assert_eq!(
            lease_for(&s, attempt),
            Duration::from_secs(150) + LEASE_MARGIN
        );
        // More parallelism than rows is one round.
        s.concurrency = 100;
        assert_eq!(lease_for(&s, attempt), attempt + LEASE_MARGIN);
        s.lease_secs = 300;
        // A configured lease longer than the worst batch is kept.
        s.lease_secs = 3600;
        assert_eq!(lease_for(&s, attempt), Duration::from_secs(3600));
        s.batch_size = 0;
        s.lease_secs = -5;
        assert_eq!(lease_for(&s, attempt), attempt + LEASE_MARGIN);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let s = defaults();
        let first = backoff(&s, 1);
        assert!(first >= Duration::from_secs(s.backoff_base_secs));
        assert!(first <= Duration::from_secs_f64(s.backoff_base_secs as f64 * 1.25));
        let late = backoff(&s, 30);
        assert!(late <= Duration::from_secs_f64(s.backoff_max_secs as f64 * 1.25));
        assert!(backoff(&s, 3) >= Duration::from_secs(s.backoff_base_secs * 4));
    }
}
