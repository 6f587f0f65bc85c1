//! Writing HTTP responses on a Pingora session: JSON bodies, JSON-RPC
//! errors, and SSE streams. Framing only; no MCP decisions.

use crate::mcp::errors::error_body;
use bytes::{BufMut, Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use serde_json::value::RawValue;

pub type Headers<'a> = &'a [(&'a str, &'a str)];

fn header(status: u16, content_type: Option<&'static str>, extra: Headers) -> pingora::Result<ResponseHeader> {
    let mut header = ResponseHeader::build(status, Some(4 + extra.len()))?;
    if let Some(content_type) = content_type {
        header.insert_header("content-type", content_type)?;
    }
    for (name, value) in extra {
        header.append_header(name.to_string(), *value)?;
    }
    Ok(header)
}

/// A complete response with a body of known length.
pub async fn body(
    http: &mut ServerSession,
    status: u16,
    content_type: Option<&'static str>,
    extra: Headers<'_>,
    body: Bytes,
) -> pingora::Result<()> {
    let mut head = header(status, content_type, extra)?;
    head.insert_header("content-length", body.len())?;
    http.write_response_header(Box::new(head)).await?;
    if !body.is_empty() {
        http.write_response_body(body, true).await?;
    }
    Ok(())
}

pub async fn json(http: &mut ServerSession, status: u16, extra: Headers<'_>, payload: Bytes) -> pingora::Result<()> {
    body(http, status, Some("application/json"), extra, payload).await
}

/// An HTTP status with a JSON-RPC error body.
pub async fn rpc_error(
    http: &mut ServerSession,
    status: u16,
    id: Option<&RawValue>,
    code: i64,
    message: &str,
    extra: Headers<'_>,
) -> pingora::Result<()> {
    tracing::debug!(target: "mcpd::access", status, code, "{message}");
    json(http, status, extra, Bytes::from(error_body(id, code, message))).await
}

/// An empty response, e.g. 202 Accepted.
pub async fn empty(http: &mut ServerSession, status: u16, extra: Headers<'_>) -> pingora::Result<()> {
    body(http, status, None, extra, Bytes::new()).await
}

/// Starts a `text/event-stream` response; events follow with [`sse_event`].
pub async fn sse_start(http: &mut ServerSession, extra: Headers<'_>) -> pingora::Result<()> {
    let mut head = header(200, Some("text/event-stream"), extra)?;
    head.insert_header("cache-control", "no-cache")?;
    // Tells nginx-style proxies in front of mcpd not to buffer the stream.
    head.insert_header("x-accel-buffering", "no")?;
    if !http.is_http2() {
        head.insert_header("transfer-encoding", "chunked")?;
    }
    http.write_response_header(Box::new(head)).await
}

/// One SSE `message` event carrying one JSON-RPC message (a single line).
pub async fn sse_event(http: &mut ServerSession, message: &[u8]) -> pingora::Result<()> {
    let mut event = BytesMut::with_capacity(message.len() + 24);
    event.put_slice(b"event: message\ndata: ");
    event.put_slice(message);
    event.put_slice(b"\n\n");
    http.write_response_body(event.freeze(), false).await
}

/// One SSE `message` event with an event id (resumable streams).
pub async fn sse_event_with_id(http: &mut ServerSession, id: &str, message: &[u8]) -> pingora::Result<()> {
    let mut event = BytesMut::with_capacity(message.len() + id.len() + 30);
    event.put_slice(b"id: ");
    event.put_slice(id.as_bytes());
    event.put_slice(b"\nevent: message\ndata: ");
    event.put_slice(message);
    event.put_slice(b"\n\n");
    http.write_response_body(event.freeze(), false).await
}

/// The priming event of a resumable stream (2025-11-25): an event id with
/// empty data, so the client can resume from here, and how long to wait
/// before reconnecting.
pub async fn sse_prime(http: &mut ServerSession, id: &str, retry: std::time::Duration) -> pingora::Result<()> {
    let event = format!("id: {id}\nretry: {}\ndata: \n\n", retry.as_millis());
    http.write_response_body(Bytes::from(event), false).await
}

/// An SSE comment: keeps idle connections open through proxies.
pub async fn sse_keepalive(http: &mut ServerSession) -> pingora::Result<()> {
    http.write_response_body(Bytes::from_static(b": keepalive\n\n"), false).await
}

/// A complete SSE response with no events (200, `text/event-stream`,
/// empty body): for a request nothing more will be sent for.
pub async fn sse_empty(http: &mut ServerSession, extra: Headers<'_>) -> pingora::Result<()> {
    body(http, 200, Some("text/event-stream"), extra, Bytes::new()).await
}

pub async fn sse_end(http: &mut ServerSession) -> pingora::Result<()> {
    http.finish_body().await
}
