//! Keeps `trendingScore` to "supports in the last 7 days": supports add to it as they come;
//! this job lets old ones stop counting. Idempotent, so any number of instances may run it.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

pub async fn run(db: DatabaseConnection, every: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        match crate::services::suggestions::refresh_trending(&db).await {
            Ok(n) => tracing::debug!(rows = n, "trending scores refreshed"),
            Err(e) => tracing::error!(error = ?e, "refreshing trending scores failed"),
        }
    }
}
