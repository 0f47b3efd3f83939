//! GraphQL over HTTP: `POST /graphql` for everything, `GET /graphql?query=` for queries
//! only, GraphiQL for browsers. Answers `application/graphql-response+json` to clients that
//! accept it (with 4xx for requests that never ran) and `application/json` otherwise.

use std::net::SocketAddr;

use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::OperationType;
use async_graphql::{ErrorExtensionValues, Response as GqlResponse, ServerError, Value};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::auth::tokens::TokenError;
use crate::auth::Viewer;
use crate::graphql::schema::TOO_COMPLEX;
use crate::services::accounts;
use crate::startup::AppState;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

fn wants_graphql_response(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(GRAPHQL_RESPONSE))
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn error_body(message: &str, code: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

fn json_response(status: StatusCode, body: &serde_json::Value, graphql_response: bool) -> Response {
    json_text_response(status, body.to_string(), graphql_response)
}

fn json_text_response(status: StatusCode, body: String, graphql_response: bool) -> Response {
    let content_type = if graphql_response {
        GRAPHQL_RESPONSE
    } else {
        "application/json"
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// A request that never reached execution: 400 for clients that speak
/// graphql-response+json, 200 for plain JSON clients (as the spec asks).
fn request_error(headers: &HeaderMap, message: &str, code: &str) -> Response {
    let gr = wants_graphql_response(headers);
    let status = if gr {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    json_response(status, &error_body(message, code), gr)
}

/// Finds who is asking. A missing token is anonymous; a bad one is an error, never
/// anonymous.
async fn viewer(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Viewer, Response> {
    let ip = super::client_ip::client_ip(
        peer.ip(),
        headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().ok()),
        state.settings.server.trusted_proxies,
    )
    .to_string();
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut viewer = Viewer {
        actor: None,
        ip: Some(ip),
        user_agent,
    };
    let Some(auth) = headers.get(header::AUTHORIZATION) else {
        return Ok(viewer);
    };
    let unauthenticated = |message: &str| {
        let mut r = json_response(
            StatusCode::UNAUTHORIZED,
            &error_body(message, "UNAUTHENTICATED"),
            wants_graphql_response(headers),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        r
    };
    let token = auth
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            unauthenticated("the Authorization header must be `Bearer <accessToken>`")
        })?;
    let claims = state.services.tokens.verify(token).map_err(|e| match e {
        TokenError::Expired => unauthenticated("the access token has expired; refresh the session"),
        TokenError::Invalid => unauthenticated("the access token is not valid"),
    })?;
    match accounts::authenticate(&state.services, &claims).await {
        Ok(actor) => {
            viewer.actor = Some(actor);
            Ok(viewer)
        }
        Err(crate::error::AppError::Unauthenticated(m)) => Err(unauthenticated(&m)),
        Err(e) => {
            tracing::error!(error = ?e, "authenticating a request failed");
            Err(json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &error_body("internal error", "INTERNAL"),
                wants_graphql_response(headers),
            ))
        }
    }
}

/// Gives every error a code: resolver errors carry theirs; the rest come from parsing,
/// validation or the limits, before any resolver ran.
fn with_codes(mut response: GqlResponse) -> GqlResponse {
    for err in &mut response.errors {
        let has_code = err
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if has_code {
            continue;
        }
        let m = err.message.as_str();
        let code = if m.starts_with(TOO_COMPLEX)
            || m.contains("nested too deep")
            || m.contains("recursion")
            || m.contains("recursive")
            || m.contains("directives")
        {
            "QUERY_TOO_COMPLEX"
        } else {
            "BAD_USER_INPUT"
        };
        let ext = err
            .extensions
            .get_or_insert_with(ErrorExtensionValues::default);
        ext.set("code", code);
    }
    response
}

fn is_request_error(response: &GqlResponse) -> bool {
    !response.errors.is_empty()
        && matches!(response.data, Value::Null)
        && response
            .errors
            .iter()
            .all(|e: &ServerError| e.path.is_empty())
}

async fn execute(
    state: AppState,
    headers: HeaderMap,
    peer: SocketAddr,
    request: async_graphql::Request,
) -> Response {
    let viewer = match viewer(&state, &headers, peer).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let loaders = crate::graphql::loaders::request_loader(
        state.services.clone(),
        viewer.actor.as_ref().map(|a| a.id),
    );
    let request = request
        .data(state.services.clone())
        .data(viewer)
        .data(loaders);
    let response = with_codes(state.schema.execute(request).await);
    let gr = wants_graphql_response(&headers);
    let status = if gr && is_request_error(&response) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    match serde_json::to_string(&response) {
        Ok(body) => json_text_response(status, body, gr),
        Err(e) => {
            tracing::error!(error = ?e, "serialising a response failed");
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &error_body("internal error", "INTERNAL"),
                gr,
            )
        }
    }
}

pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return request_error(
                &headers,
                &format!("the body must be a JSON GraphQL request: {e}"),
                "BAD_USER_INPUT",
            )
        }
    };
    execute(state, headers, peer, request).await
}

/// The operation a GET request would run, if the document parses.
fn operation_type(request: &async_graphql::Request) -> Option<OperationType> {
    let doc = async_graphql::parser::parse_query(&request.query).ok()?;
    let ops: Vec<_> = doc.operations.iter().collect();
    let chosen = match &request.operation_name {
        Some(name) => ops
            .into_iter()
            .find(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
        None => ops.into_iter().next(),
    };
    chosen.map(|(_, op)| op.node.ty)
}

pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    if query.is_empty() || !query.split('&').any(|kv| kv.starts_with("query=")) {
        if wants_html(&headers) && state.settings.graphql.graphiql {
            return Html(
                GraphiQLSource::build()
                    .endpoint("/graphql")
                    .subscription_endpoint("/graphql/ws")
                    .title("Convene GraphiQL")
                    .finish(),
            )
            .into_response();
        }
        return request_error(
            &headers,
            "a GET request needs a `query` parameter",
            "BAD_USER_INPUT",
        );
    }
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(r) => r,
        Err(e) => {
            return request_error(
                &headers,
                &format!("bad query string: {e}"),
                "BAD_USER_INPUT",
            )
        }
    };
    if matches!(
        operation_type(&request),
        Some(OperationType::Mutation | OperationType::Subscription)
    ) {
        let mut r = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &error_body("mutations are sent with POST", "BAD_USER_INPUT"),
            wants_graphql_response(&headers),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    execute(state, headers, peer, request).await
}

/// Anything but GET and POST on /graphql.
pub async fn other_method(method: Method) -> Response {
    let mut r = (
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not supported on /graphql"),
    )
        .into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    r
}
