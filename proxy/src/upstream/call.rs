//! A forwarded request as the front sees it, whatever serves it: the
//! [`Event`]s that come back, in order, ending with the answer or a failure.
//! The front's relay consumes one [`Call`] and writes JSON or SSE; it does
//! not know whether a process or an HTTP instance is on the other side.

use super::UpstreamError;
use super::{http, sse_upstream, stdio};
use bytes::Bytes;

/// What a waiting request receives from the server.
#[derive(Debug)]
pub enum Event {
    /// A server notification or request for this request's client.
    Message(Bytes),
    /// The answer, with the client's own id. Always last.
    Response { bytes: Bytes, is_error: bool },
    /// The server failed before answering (the reason, for the client). Always last.
    Failed(String),
    /// The client cancelled the request (`notifications/cancelled`): no
    /// answer follows (the spec: a cancelled request is not answered).
    /// Always last.
    Cancelled,
    /// The server refused the request before sending anything (an HTTP
    /// status, an unreachable instance, a lost session). Always first and last.
    Rejected(UpstreamError),
}

/// A request in flight. Dropping it before its answer cancels the request
/// upstream (`notifications/cancelled`).
pub enum Call {
    Stdio(stdio::Call),
    Http(http::Call),
    Sse(sse_upstream::Call),
}

impl Call {
    /// Waits until the server has taken the request (an HTTP instance's
    /// status line); the error when it refused instead.
    pub async fn ready(&mut self) -> Result<(), UpstreamError> {
        match self {
            Call::Http(call) => call.ready().await,
            _ => Ok(()),
        }
    }

    /// The next thing the server sends for this request; after a
    /// `Response`, `Failed`, `Cancelled` or `Rejected` there is nothing more.
    pub async fn next(&mut self) -> Event {
        match self {
            Call::Stdio(call) => match call.next().await {
                Event::Failed(reason) => Event::Failed(format!("MCP server process exited before answering: {reason}")),
                event => event,
            },
            Call::Http(call) => call.next().await,
            Call::Sse(call) => call.next().await,
        }
    }
}
