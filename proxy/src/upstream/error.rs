//! The one error type of the server-facing side, for stdio processes and
//! HTTP instances alike. The front turns each kind into what the client
//! sees: [`UpstreamError::ends_session`] kinds into the spec's 404 (the
//! client re-initializes), an upstream HTTP status into that status.

use bytes::Bytes;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot start MCP server `{command}`: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("MCP server process exited: {0}")]
    Exited(String),
    /// mcpd's own request was cancelled (a client's cancellation cannot
    /// name one; kept for completeness of [`super::Event::Cancelled`]).
    #[error("the request was cancelled before the MCP server answered")]
    Cancelled,
    #[error("MCP server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("MCP server answered {method} with an error: {error}")]
    Refused { method: String, error: String },
    /// Nothing answers at the instance (connection refused, DNS, TLS).
    #[error("MCP server instance {instance} is unreachable: {reason}")]
    Unreachable { instance: String, reason: String },
    /// The instance answered 404 for the session: it no longer knows it.
    #[error("MCP server instance {instance} no longer knows the session")]
    SessionLost { instance: String },
    /// The instance answered with an HTTP error status. `headers`: those of
    /// [`RELAYED_HEADERS`] it sent, for the client.
    #[error("MCP server instance {instance} answered HTTP {status}")]
    Status { instance: String, status: u16, content_type: Option<String>, body: Bytes, headers: Vec<(String, String)> },
    /// The connection failed after it was made (reset, closed mid-answer).
    #[error("connection to MCP server instance {instance} failed: {reason}")]
    Transport { instance: String, reason: String },
    /// The instance's answer is not what the protocol allows.
    #[error("MCP server instance {instance} broke the protocol: {reason}")]
    Protocol { instance: String, reason: String },
}

/// Headers of an instance's refusal that mean something to the client:
/// when to retry, what is allowed, how to authenticate (the last only
/// reaches clients whose credentials are forwarded).
pub const RELAYED_HEADERS: &[&str] = &["retry-after", "allow", "www-authenticate"];

/// The [`RELAYED_HEADERS`] among `headers`.
pub fn relayed_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
    RELAYED_HEADERS
        .iter()
        .flat_map(|name| headers.get_all(*name).iter().map(move |v| (name, v)))
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect()
}

impl UpstreamError {
    /// Whatever served the session is gone: the session must end.
    pub fn ends_session(&self) -> bool {
        matches!(self, UpstreamError::Exited(_) | UpstreamError::Unreachable { .. } | UpstreamError::SessionLost { .. })
    }
}
