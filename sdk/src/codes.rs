//! JSON-RPC error codes for `Decision::reject`.
//!
//! The first five are JSON-RPC 2.0's own. The rest are server-defined
//! (-32000 to -32099): `LIMIT_EXCEEDED` is the code mcpd itself answers
//! with when one of its limits refuses a request; -32010 to -32019 are the
//! SDK's codes for plugin decisions about who may do what.

/// The message was not valid JSON.
pub const PARSE_ERROR: i32 = -32700;
/// Not a valid JSON-RPC request.
pub const INVALID_REQUEST: i32 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// The method exists but the params are wrong.
pub const INVALID_PARAMS: i32 = -32602;
/// Something went wrong inside (e.g. the plugin's config is broken).
pub const INTERNAL_ERROR: i32 = -32603;

/// A limit refused the request (rate limits, quotas); pair with HTTP 429.
pub const LIMIT_EXCEEDED: i32 = -32002;
/// No credentials, or credentials that do not check out; pair with HTTP 401.
pub const UNAUTHORIZED: i32 = -32010;
/// Known client, but not allowed to do this; pair with HTTP 403.
pub const FORBIDDEN: i32 = -32011;
