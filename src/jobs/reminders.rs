//! Reminds each person GOING to a meet-up once, `jobs.reminder_hours` before it starts: a
//! `meetup_reminder` notification event whose mail honours their preferences. Runs on
//! every instance: the outbox's idempotency key (meet-up, person, start) makes each reminder
//! one row however many instances queue it, and a new start time arms a new one.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::services::Ctx;

pub async fn run(ctx: Ctx, every: Duration, hours: i64, cancel: CancellationToken) {
    loop {
        match crate::services::meetups::queue_reminders(&ctx, hours).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(queued = n, "meet-up reminders queued"),
            Err(e) => tracing::error!(error = ?e, "queuing meet-up reminders failed"),
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
