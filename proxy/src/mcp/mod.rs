//! MCP on the wire: JSON-RPC 2.0 messages, protocol revisions, header names
//! and error codes. Pure data and parsing; no I/O.

pub mod era;
pub mod errors;
pub mod jsonrpc;
pub mod subject;
pub mod version;

/// Header carrying the session id the gateway hands out.
pub const SESSION_HEADER: &str = "mcp-session-id";
/// Header carrying the negotiated protocol revision after `initialize`.
pub const PROTOCOL_HEADER: &str = "mcp-protocol-version";
