//! Delivers outbox rows. Workers claim due rows with a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, so several workers never take the same row), send them, and record the
//! outcome; a failure is retried with exponential backoff and jitter until `max_attempts`.

use std::time::Duration;

use rand::Rng;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    Statement,
};
use tokio_util::sync::CancellationToken;

use crate::config::JobSettings;
use crate::db::now;
use crate::entities::outbox::{self, Status};
use crate::mail::Mailer;
use crate::services::outbox::KIND_EMAIL;

#[derive(Clone)]
pub struct OutboxWorker {
    db: DatabaseConnection,
    mailer: Mailer,
    settings: JobSettings,
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
        OutboxWorker {
            db,
            mailer,
            settings,
        }
    }

    /// Polls until cancelled. A batch in progress finishes before the loop ends.
    pub async fn run(self, cancel: CancellationToken) {
        let poll = Duration::from_millis(self.settings.poll_interval_ms.max(10));
        tracing::info!("outbox worker started");
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
        let rows = self.claim().await?;
        let n = rows.len();
        for row in rows {
            self.deliver(row).await?;
        }
        Ok(n)
    }

    async fn claim(&self) -> anyhow::Result<Vec<outbox::Model>> {
        let at = now();
        let lease_until = at + chrono::Duration::seconds(self.settings.lease_secs);
        let limit = i64::try_from(self.settings.batch_size.max(1)).unwrap_or(20);
        let backend = self.db.get_database_backend();
        let stmt = match backend {
            DbBackend::Postgres => Statement::from_sql_and_values(
                backend,
                r#"UPDATE outbox SET locked_until = $1
                   WHERE id IN (
                     SELECT id FROM outbox
                     WHERE status = 'PENDING' AND kind = 'email' AND next_attempt_at <= $2
                       AND (locked_until IS NULL OR locked_until <= $2)
                     ORDER BY next_attempt_at
                     LIMIT $3
                     FOR UPDATE SKIP LOCKED)
                   RETURNING *"#,
                [lease_until.into(), at.into(), limit.into()],
            ),
            _ => Statement::from_sql_and_values(
                backend,
                r#"UPDATE outbox SET locked_until = ?
                   WHERE id IN (
                     SELECT id FROM outbox
                     WHERE status = 'PENDING' AND kind = 'email' AND next_attempt_at <= ?
                       AND (locked_until IS NULL OR locked_until <= ?)
                     ORDER BY next_attempt_at
                     LIMIT ?)
                   RETURNING *"#,
                [lease_until.into(), at.into(), at.into(), limit.into()],
            ),
        };
        Ok(outbox::Entity::find()
            .from_raw_sql(stmt)
            .all(&self.db)
            .await?)
    }

    async fn deliver(&self, row: outbox::Model) -> anyhow::Result<()> {
        let result = match row.kind.as_str() {
            KIND_EMAIL => {
                let payload: serde_json::Value =
                    serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null);
                self.mailer
                    .send(&row.id.to_string(), &row.recipient, &row.template, &payload)
                    .await
            }
            other => Err(anyhow::anyhow!("unknown outbox kind {other:?}")),
        };
        let attempts = row.attempts + 1;
        let mut update = outbox::ActiveModel {
            id: Set(row.id),
            attempts: Set(attempts),
            locked_until: Set(None),
            ..Default::default()
        };
        match result {
            Ok(()) => {
                update.status = Set(Status::Sent);
                update.sent_at = Set(Some(now()));
                update.last_error = Set(None);
                tracing::info!(id = %row.id, template = %row.template, attempts, "outbox row delivered");
            }
            Err(e) => {
                let message: String = format!("{e:#}").chars().take(2000).collect();
                update.last_error = Set(Some(message.clone()));
                if attempts >= self.settings.max_attempts {
                    update.status = Set(Status::Dead);
                    tracing::error!(id = %row.id, attempts, error = %message, "outbox row given up");
                } else {
                    let delay = backoff(&self.settings, attempts);
                    let next = now() + chrono::Duration::from_std(delay).unwrap_or_default();
                    update.next_attempt_at = Set(next);
                    tracing::warn!(id = %row.id, attempts, retry_in_secs = delay.as_secs(), error = %message, "outbox delivery failed; will retry");
                }
            }
        }
        outbox::Entity::update_many()
            .set(update)
            .filter(outbox::Column::Id.eq(row.id))
            .exec(&self.db)
            .await?;
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
