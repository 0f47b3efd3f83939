//! GraphQL over HTTP: `POST /graphql` for everything, `GET /graphql?query=` for queries
//! only, GraphiQL for browsers. async-graphql-axum's extractor parses the request; what is
//! kept here is what it does not do: content negotiation (`application/graphql-response+json`
//! clients get 4xx for requests that never ran, and no `data` entry), a 415 for a POST that
//! is not JSON, 405 for a mutation over GET, and a code on every error.

use async_graphql::parser::types::OperationType;
use async_graphql::{ErrorExtensionValues, ParseRequestError, Response as GqlResponse, Value};
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::GraphQLRequest;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::Viewer;
use crate::graphql::limits::{Admission, Admitted};
use crate::startup::AppState;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

pub(crate) fn wants_graphql_response(headers: &HeaderMap) -> bool {
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

fn json_response(
    status: StatusCode,
    body: impl Into<axum::body::Body>,
    graphql_response: bool,
) -> Response {
    let content_type = if graphql_response {
        GRAPHQL_RESPONSE
    } else {
        "application/json"
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.into(),
    )
        .into_response()
}

/// A response holding one coded error and no `data` entry.
pub(crate) fn error_response(
    status: StatusCode,
    message: &str,
    code: &str,
    graphql_response: bool,
) -> Response {
    let body =
        serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    json_response(status, body.to_string(), graphql_response)
}

/// The body could not be read as a GraphQL request: 413 when too large, else 400, for
/// every client (a JSON parse failure is a bad request whatever the client accepts).
fn rejected(headers: &HeaderMap, rejection: GraphQLRejection) -> Response {
    let gr = wants_graphql_response(headers);
    match rejection.0 {
        ParseRequestError::PayloadTooLarge => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
            "BAD_USER_INPUT",
            gr,
        ),
        ParseRequestError::Io(e) if is_length_limit(&e) => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
            "BAD_USER_INPUT",
            gr,
        ),
        e => error_response(
            StatusCode::BAD_REQUEST,
            &format!("the body is not a GraphQL request: {e}"),
            "BAD_USER_INPUT",
            gr,
        ),
    }
}

/// A streamed body that outgrew the body limit reaches the extractor as an I/O error.
fn is_length_limit(e: &std::io::Error) -> bool {
    e.to_string().contains("length limit exceeded")
}

/// Gives every error a code. Resolver errors and the limits set their own; what is left
/// came from parsing or validation, before any resolver ran.
pub(crate) fn with_codes(mut response: GqlResponse) -> GqlResponse {
    for err in &mut response.errors {
        let ext = err
            .extensions
            .get_or_insert_with(ErrorExtensionValues::default);
        if ext.get("code").is_none() {
            ext.set("code", "BAD_USER_INPUT");
        }
    }
    response
}

/// A request that never reached execution: errors only, with no path.
fn is_request_error(response: &GqlResponse) -> bool {
    !response.errors.is_empty()
        && matches!(response.data, Value::Null)
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// Checks the request against the limits, attaching its parsed document. A refused request
/// gets its answer back, with no `data`.
fn admit(
    state: &AppState,
    headers: &HeaderMap,
    request: &mut async_graphql::Request,
) -> Result<Admitted, Box<Response>> {
    state.gate.admit(request).map_err(|refused| {
        Box::new(respond(
            headers,
            &with_codes(GqlResponse::from_errors(vec![refused])),
        ))
    })
}

/// Runs an admitted request: a document validated before (with plainly typed variables)
/// on the schema that does not validate it again.
async fn execute(
    state: AppState,
    headers: &HeaderMap,
    viewer: Viewer,
    request: async_graphql::Request,
    Admitted {
        admission,
        unmerged,
    }: Admitted,
) -> Response {
    let loaders = crate::graphql::loaders::request_loader(
        state.services.clone(),
        viewer.actor.as_ref().map(|a| a.id),
    );
    let mut request = request
        .data(state.services.clone())
        .data(viewer)
        .data(loaders);
    if unmerged {
        // `respond` writes the response with `plain::write_response`.
        request = request.data(crate::graphql::plain::JsonText);
    }
    let response = match admission {
        Admission::Trusted => state.trusted_schema.execute(request).await,
        Admission::Validate(_) => {
            let response = state.schema.execute(request).await;
            if !is_request_error(&response) {
                admission.passed();
            }
            response
        }
    };
    respond(headers, &with_codes(response))
}

fn respond(headers: &HeaderMap, response: &GqlResponse) -> Response {
    let gr = wants_graphql_response(headers);
    // Before execution the result has no `data` entry (GraphQL-over-HTTP and the spec's
    // "Response" section); graphql-response+json clients also get 400.
    let (status, body) = if is_request_error(response) {
        let status = if gr {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        (
            status,
            serde_json::to_vec(&serde_json::json!({ "errors": response.errors })),
        )
    } else {
        (
            StatusCode::OK,
            crate::graphql::plain::write_response(response),
        )
    };
    match body {
        Ok(body) => json_response(status, body, gr),
        Err(e) => {
            tracing::error!(error = ?e, "serialising a response failed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                "INTERNAL",
                gr,
            )
        }
    }
}

/// POST bodies are JSON: anything else, or no content type at all, is 415.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase())
        .is_some_and(|essence| essence == "application/json")
}

pub async fn post(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    if !is_json(&headers) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as `Content-Type: application/json`",
            "BAD_USER_INPUT",
            wants_graphql_response(&headers),
        );
    }
    let mut request = match request {
        Ok(r) => r.into_inner(),
        Err(rejection) => return rejected(&headers, rejection),
    };
    let admitted = match admit(&state, &headers, &mut request) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    execute(state, &headers, viewer, request, admitted).await
}

/// The operation an admitted request would run (its document is already parsed).
pub(crate) fn operation_type(request: &mut async_graphql::Request) -> Option<OperationType> {
    let name = request.operation_name.clone();
    let doc = request.parsed_query().ok()?;
    crate::graphql::limits::chosen_operation(doc, name.as_deref()).map(|op| op.node.ty)
}

pub async fn get(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    let has_query = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("query=")));
    if !has_query {
        if wants_html(&headers) && state.settings.graphql.graphiql {
            return crate::http::graphiql::page();
        }
        return error_response(
            StatusCode::BAD_REQUEST,
            "a GET request needs a `query` parameter",
            "BAD_USER_INPUT",
            wants_graphql_response(&headers),
        );
    }
    let mut request = match request {
        Ok(r) => r.into_inner(),
        Err(rejection) => return rejected(&headers, rejection),
    };
    // The limits come first: finding the operation uses the document they parsed.
    let admitted = match admit(&state, &headers, &mut request) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    if matches!(
        operation_type(&mut request),
        Some(OperationType::Mutation | OperationType::Subscription)
    ) {
        let mut r = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations are sent with POST",
            "BAD_USER_INPUT",
            wants_graphql_response(&headers),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    execute(state, &headers, viewer, request, admitted).await
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
