//! The checks every POSTed JSON-RPC message passes before anything else
//! looks at it, whatever transport carried it (Streamable HTTP, legacy
//! SSE's message endpoint): `Content-Type`, size, the route's concurrency
//! limit, no batches, valid JSON-RPC. Each refusal is answered here, with
//! the status and JSON-RPC error the spec asks for.
//!
//! What is particular to one transport (`Accept`, session ids, eras) stays
//! with that transport.

use super::respond;
use super::streamable_http::header;
use crate::mcp::errors::*;
use crate::mcp::jsonrpc::{self, Message, ParseError};
use crate::route::Route;
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// A body that passed the checks, and the route's concurrency slot it holds
/// until dropped.
pub struct Intake {
    pub body: Bytes,
    pub permit: OwnedSemaphorePermit,
}

/// Reads and checks the POSTed body; `None` once a refusal was answered.
pub async fn receive(route: &Route, http: &mut ServerSession) -> pingora::Result<Option<Intake>> {
    let limits = &route.settings.http;
    if !header(http, "content-type").unwrap_or("").to_ascii_lowercase().starts_with("application/json") {
        http.set_keepalive(None);
        let text = "Content-Type must be application/json";
        respond::rpc_error(http, 415, None, INVALID_REQUEST, text, &[]).await?;
        return Ok(None);
    }
    let declared = header(http, "content-length").and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_request_size) {
        too_large(http, limits.max_request_size).await?;
        return Ok(None);
    }
    let Ok(permit) = Arc::clone(&route.limiter).try_acquire_owned() else {
        http.set_keepalive(None);
        let text = format!(
            "too many requests in progress for server {:?} (http.max_concurrent_requests = {})",
            &*route.name, limits.max_concurrent_requests
        );
        respond::rpc_error(http, 503, None, LIMIT_EXCEEDED, &text, &[("retry-after", "1")]).await?;
        return Ok(None);
    };
    let Some(body) = read_body(http, limits.max_request_size).await? else {
        too_large(http, limits.max_request_size).await?;
        return Ok(None);
    };
    if jsonrpc::is_batch(&body) {
        let text = "JSON-RPC batches are not supported (MCP removed them in 2025-06-18)";
        respond::rpc_error(http, 400, None, INVALID_REQUEST, text, &[]).await?;
        return Ok(None);
    }
    Ok(Some(Intake { body, permit }))
}

/// The message in `body`; `None` once the 400 (parse error or invalid
/// request) was answered.
pub async fn parse<'a>(http: &mut ServerSession, body: &'a Bytes) -> pingora::Result<Option<Message<'a>>> {
    match Message::parse(body) {
        Ok(message) => Ok(Some(message)),
        Err(error) => {
            let code = match error {
                ParseError::NotJson(_) => PARSE_ERROR,
                ParseError::Invalid(_) => INVALID_REQUEST,
            };
            respond::rpc_error(http, 400, None, code, &error.to_string(), &[]).await?;
            Ok(None)
        }
    }
}

async fn too_large(http: &mut ServerSession, limit: u64) -> pingora::Result<()> {
    // The rest of the body is not read: the connection cannot be reused.
    http.set_keepalive(None);
    let message = format!("request body is larger than {limit} bytes (http.max_request_size)");
    respond::rpc_error(http, 413, None, LIMIT_EXCEEDED, &message, &[]).await
}

/// The whole request body, or `None` when it exceeds `limit` bytes.
async fn read_body(http: &mut ServerSession, limit: u64) -> pingora::Result<Option<Bytes>> {
    let mut body = crate::body::Collected::default();
    while let Some(chunk) = http.read_request_body().await? {
        if !body.push(chunk, limit) {
            return Ok(None);
        }
    }
    Ok(Some(body.finish()))
}
