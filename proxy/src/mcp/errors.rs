//! JSON-RPC error codes mcpd answers with, and the error response body.

use serde_json::value::RawValue;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Server-defined: the upstream connection failed or the server exited
/// (the TypeScript SDK's `ConnectionClosed`).
pub const CONNECTION_CLOSED: i64 = -32000;
/// Server-defined: the request took longer than `request_timeout`
/// (the TypeScript SDK's `RequestTimeout`).
pub const REQUEST_TIMEOUT: i64 = -32001;
/// Gateway-defined: a limit refused the request (size, concurrency, sessions).
pub const LIMIT_EXCEEDED: i64 = -32002;
/// Unknown or expired session (what the TypeScript SDK sends with 404).
pub const SESSION_NOT_FOUND: i64 = -32001;

/// `{"jsonrpc":"2.0","id":ID,"error":{"code":C,"message":M}}`; `id` is `null`
/// when the request's id is unknown (parse errors).
pub fn error_body(id: Option<&RawValue>, code: i64, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + message.len());
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.map(|i| i.get()).unwrap_or("null").as_bytes());
    out.extend_from_slice(br#","error":{"code":"#);
    out.extend_from_slice(code.to_string().as_bytes());
    out.extend_from_slice(br#","message":"#);
    // Writing a &str to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, message);
    out.extend_from_slice(b"}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_is_valid_json_rpc() {
        let id = RawValue::from_string("7".into()).unwrap();
        let body = error_body(Some(&id), INTERNAL_ERROR, "bad \"thing\"");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["code"], -32603);
        assert_eq!(v["error"]["message"], "bad \"thing\"");
        let v: serde_json::Value = serde_json::from_slice(&error_body(None, PARSE_ERROR, "x")).unwrap();
        assert!(v["id"].is_null());
    }
}
