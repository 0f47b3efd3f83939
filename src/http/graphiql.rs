//! GraphiQL served entirely from the binary: the page, and the vendored assets under
//! `/graphiql/<file>` (see assets/graphiql/README.md), so it works without internet access.

use std::sync::LazyLock;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::startup::AppState;

/// Allows the page only its own assets. GraphiQL needs nothing more (tried in Chromium): its
/// fonts and icons are `data:` URLs inside its stylesheet, and it styles elements through the
/// CSSOM, which `style-src` does not govern. The one thing refused is the `<style>` element
/// its dialogs add to stop the body scrolling behind them; the dialogs still work, and this
/// page's body never scrolls anyway (page.css), so `'unsafe-inline'` would buy nothing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Where GraphiQL sends its requests; the page tells init.js.
const ENDPOINT: &str = "/graphql";

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Versioned asset URLs never change content, so browsers may keep them for a year.
const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";
/// Unversioned URLs and the page are checked on every use (the page names the current
/// versions).
const CACHE_REVALIDATE: &str = "no-cache";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// In the order the page loads them: the scripts after the stylesheets, React before
/// GraphiQL (its UMD build expects the `React` and `ReactDOM` globals), our start-up last.
const ASSETS: &[Asset] = &[
    Asset {
        name: "graphiql.min.css",
        content_type: CSS,
        body: include_bytes!("../../assets/graphiql/graphiql.min.css"),
    },
    Asset {
        name: "page.css",
        content_type: CSS,
        body: include_bytes!("../../assets/graphiql/page.css"),
    },
    Asset {
        name: "react.production.min.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    },
    Asset {
        name: "graphiql.min.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../../assets/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "init.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../../assets/graphiql/init.js"),
    },
];

/// Each asset's content hash, the `v` of its URL and its ETag; computed once.
static VERSIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| hex::encode(&Sha256::digest(a.body)[..8]))
        .collect()
});

fn url(index: usize) -> String {
    format!("/graphiql/{}?v={}", ASSETS[index].name, VERSIONS[index])
}

static PAGE: LazyLock<String> = LazyLock::new(|| {
    let mut styles = String::new();
    let mut scripts = String::new();
    for (i, asset) in ASSETS.iter().enumerate() {
        if asset.content_type == CSS {
            styles.push_str(&format!(
                "    <link rel=\"stylesheet\" href=\"{}\">\n",
                url(i)
            ));
        } else {
            scripts.push_str(&format!("    <script src=\"{}\"></script>\n", url(i)));
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n  <head>\n    <meta charset=\"utf-8\">\n    \
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n    \
         <title>Convene GraphiQL</title>\n{styles}  </head>\n  <body>\n    \
         <div id=\"graphiql\" data-endpoint=\"{ENDPOINT}\">Loading GraphiQL…</div>\n{scripts}  </body>\n</html>\n"
    )
});

/// The GraphiQL page, for browsers asking `GET /graphql` (when `graphql.graphiql` is on).
pub fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, CACHE_REVALIDATE),
        ],
        PAGE.as_str(),
    )
        .into_response()
}

/// `GET /graphiql/<file>`: one of the page's assets; 404 for anything else, or for
/// everything when `graphql.graphiql` is off.
pub async fn asset(
    State(state): State<AppState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let found = ASSETS.iter().position(|a| a.name == file);
    let Some(index) = found.filter(|_| state.settings.graphql.graphiql) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let asset = &ASSETS[index];
    let version = VERSIONS[index].as_str();
    let etag = format!("\"{version}\"");
    let versioned = query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .any(|kv| kv.strip_prefix("v=") == Some(version));
    let cache = if versioned {
        CACHE_FOREVER
    } else {
        CACHE_REVALIDATE
    };
    let not_modified = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == etag || tag == "*" || tag.strip_prefix("W/") == Some(etag.as_str())
        });
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let out = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, etag);
    }
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
