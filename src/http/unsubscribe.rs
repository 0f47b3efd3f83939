//! One-click unsubscribe (RFC 8058): `GET /unsubscribe/{token}` shows a small page naming
//! what will stop, with a button that POSTs to the same URL; `POST /unsubscribe/{token}`
//! applies at once, without logging in. Mail clients POST `List-Unsubscribe=One-Click`
//! themselves; any body is accepted. A forged token answers 404 and changes nothing;
//! applying a link twice changes nothing more.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::services::notification_prefs;
use crate::services::unsubscribe::Scope;
use crate::startup::AppState;

/// `text` with the characters HTML gives meaning to escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\"><title>{title} — Convene</title></head>\n<body style=\"font-family: sans-serif; line-height: 1.5; max-width: 40em; margin: 0 auto; padding: 1em;\">\n<h1>{title}</h1>\n{body}\n</body>\n</html>\n",
        title = escape(title),
    );
    let mut r = (status, html).into_response();
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The token is a credential: it must not leave in a Referer.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not recognised",
        "<p>This unsubscribe link is not valid. You can choose what mail you get in your notification preferences.</p>",
    )
}

fn failed(e: crate::error::AppError) -> Response {
    tracing::error!(error = ?e, "unsubscribe failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "<p>Nothing was changed. Please try again later.</p>",
    )
}

fn what_stops(scope: Scope) -> String {
    match scope {
        Scope::Group(_) => format!("email about {}", scope.label()),
        Scope::Digest => scope.label().to_string(),
    }
}

/// `GET /unsubscribe/{token}`: what the link stops, and a button to confirm.
pub async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match notification_prefs::unsubscribe_scope(&state.services, &token).await {
        Ok(Some((_, scope))) => page(
            StatusCode::OK,
            "Unsubscribe",
            &format!(
                "<p>You will no longer get {}. In-app notifications stay, and you can change this at any time in your notification preferences.</p>\n<form method=\"post\"><button type=\"submit\">Unsubscribe</button></form>",
                escape(&what_stops(scope))
            ),
        ),
        Ok(None) => not_found(),
        Err(e) => failed(e),
    }
}

/// `POST /unsubscribe/{token}`: applies the link (the body, a one-click
/// `List-Unsubscribe=One-Click` or a form's, is not needed).
pub async fn apply(
    State(state): State<AppState>,
    Path(token): Path<String>,
    _body: axum::body::Bytes,
) -> Response {
    match notification_prefs::unsubscribe(&state.services, &token).await {
        Ok(Some(scope)) => page(
            StatusCode::OK,
            "Unsubscribed",
            &format!(
                "<p>Done: you will no longer get {}. You can change this at any time in your notification preferences.</p>",
                escape(&what_stops(scope))
            ),
        ),
        Ok(None) => not_found(),
        Err(e) => failed(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            super::escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
