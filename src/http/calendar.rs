//! The calendar feeds over HTTP: `GET /calendar/meetups/{id}.ics` and
//! `GET /calendar/groups/{slug}.ics`, as `text/calendar`. A private group's feeds need the
//! member's secret `?token=` (or the member's access token); without it they answer 404
//! like a feed that does not exist, so nothing shows that the group has meet-ups.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::Viewer;
use crate::error::AppResult;
use crate::services::calendar_feeds::{self, Feed};
use crate::startup::AppState;

const CONTENT_TYPE: &str = "text/calendar; charset=utf-8";

/// The query string of a feed.
#[derive(Debug, Deserialize)]
pub struct FeedParams {
    /// A private group member's secret (see `services::calendar_feeds`).
    token: Option<String>,
}

/// The secret token of the query string, if any; a query that does not parse carries none.
fn token(params: &Result<Query<FeedParams>, QueryRejection>) -> Option<&str> {
    params.as_ref().ok().and_then(|q| q.0.token.as_deref())
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such calendar\n").into_response()
}

fn answer(result: AppResult<Option<Feed>>) -> Response {
    match result {
        Ok(Some(feed)) => {
            let mut r = feed.body.into_response();
            let headers = r.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(if feed.private {
                    "private, no-store"
                } else {
                    "public, max-age=300"
                }),
            );
            // A secret URL must not travel on in a Referer from any link a client opens.
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            r
        }
        Ok(None) => not_found(),
        Err(e) => {
            tracing::error!(error = ?e, "calendar feed failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the calendar could not be read\n",
            )
                .into_response()
        }
    }
}

/// `GET /calendar/meetups/{id}.ics`: one meet-up.
pub async fn meetup(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(file): Path<String>,
    params: Result<Query<FeedParams>, QueryRejection>,
) -> Response {
    let Some(id) = file
        .strip_suffix(".ics")
        .and_then(|id| Uuid::parse_str(id).ok())
    else {
        return not_found();
    };
    answer(
        calendar_feeds::meetup_feed(&state.services, viewer.actor.as_ref(), id, token(&params))
            .await,
    )
}

/// `GET /calendar/groups/{slug}.ics`: a group's upcoming meet-ups and those of the last 90
/// days.
pub async fn group(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(file): Path<String>,
    params: Result<Query<FeedParams>, QueryRejection>,
) -> Response {
    let Some(slug) = file.strip_suffix(".ics").filter(|s| !s.is_empty()) else {
        return not_found();
    };
    answer(
        calendar_feeds::group_feed(&state.services, viewer.actor.as_ref(), slug, token(&params))
            .await,
    )
}
