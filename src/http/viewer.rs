//! Who is asking, resolved once at the edge: an axum extractor that turns the
//! `Authorization` header into a `Viewer`. A missing token is anonymous; a bad one answers
//! 401 and the request never runs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::graphql::{error_response, wants_graphql_response};
use crate::auth::tokens::TokenError;
use crate::auth::Viewer;
use crate::error::AppError;
use crate::services::accounts;
use crate::startup::AppState;

/// The client's address: the peer, or the entry the trusted proxies vouch for.
pub(crate) fn client_ip(state: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    let peer = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip());
    super::client_ip::client_ip(
        peer,
        headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().ok()),
        state.settings.server.trusted_proxies,
    )
    .to_string()
}

fn unauthenticated(headers: &HeaderMap, message: &str) -> Response {
    let mut r = error_response(
        StatusCode::UNAUTHORIZED,
        message,
        "UNAUTHENTICATED",
        wants_graphql_response(headers),
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let headers = &parts.headers;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let mut viewer = Viewer {
            actor: None,
            ip: Some(client_ip(state, headers, peer)),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        };
        let Some(auth) = headers.get(header::AUTHORIZATION) else {
            return Ok(viewer);
        };
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                unauthenticated(
                    headers,
                    "the Authorization header must be `Bearer <accessToken>`",
                )
            })?;
        match actor_for_token(state, token).await {
            Ok((actor, _)) => {
                viewer.actor = Some(actor);
                Ok(viewer)
            }
            Err(TokenRefusal::Unauthenticated(m)) => Err(unauthenticated(headers, &m)),
            Err(TokenRefusal::Forbidden(m)) => Err(error_response(
                StatusCode::FORBIDDEN,
                &m,
                "FORBIDDEN",
                wants_graphql_response(headers),
            )),
            Err(TokenRefusal::Internal) => Err(error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                "INTERNAL",
                wants_graphql_response(headers),
            )),
        }
    }
}

/// Why an access token was not accepted.
pub(crate) enum TokenRefusal {
    /// Bad, expired, or its session ended: the message says which.
    Unauthenticated(String),
    /// A sound token of an account that may not act now (suspended): the message says
    /// until when. Logging in again would not help, so it is not UNAUTHENTICATED.
    Forbidden(String),
    /// The lookup failed (logged).
    Internal,
}

/// The account behind an access token, and when the token expires (Unix seconds): the one
/// rule for HTTP and WebSocket alike.
pub(crate) async fn actor_for_token(
    state: &AppState,
    token: &str,
) -> Result<(crate::auth::Actor, i64), TokenRefusal> {
    let claims = state.services.tokens.verify(token).map_err(|e| match e {
        TokenError::Expired => TokenRefusal::Unauthenticated(
            "the access token has expired; refresh the session".into(),
        ),
        TokenError::Invalid => {
            TokenRefusal::Unauthenticated("the access token is not valid".into())
        }
    })?;
    match accounts::authenticate(&state.services, &claims).await {
        Ok(actor) => Ok((actor, claims.exp)),
        Err(AppError::Unauthenticated(m)) => Err(TokenRefusal::Unauthenticated(m)),
        Err(AppError::Forbidden(m)) => Err(TokenRefusal::Forbidden(m)),
        Err(e) => {
            tracing::error!(error = ?e, "authenticating a request failed");
            Err(TokenRefusal::Internal)
        }
    }
}
