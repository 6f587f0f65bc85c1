//! JSON-RPC 2.0 messages, parsed once and rebuilt by splicing raw JSON.
//!
//! A [`Message`] borrows from the bytes it was parsed from: `params`,
//! `result` and `error` stay raw JSON text and are copied, never
//! re-serialised, when the gateway rewrites an id. This module knows the
//! JSON-RPC envelope only; what MCP methods mean is elsewhere.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    /// The body is not JSON at all (JSON-RPC -32700).
    #[error("parse error: {0}")]
    NotJson(String),
    /// JSON, but not a valid JSON-RPC 2.0 message (JSON-RPC -32600).
    #[error("invalid request: {0}")]
    Invalid(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
}

/// One JSON-RPC message, borrowing its raw parts.
#[derive(Debug, Deserialize)]
pub struct Message<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub error: Option<&'a RawValue>,
}

/// A JSON `null`, for ids that are absent.
pub fn null() -> &'static RawValue {
    static NULL: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    NULL.get_or_init(|| RawValue::from_string("null".into()).expect("null is JSON"))
}

/// True when the body is a JSON array (a JSON-RPC batch).
pub fn is_batch(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

impl<'a> Message<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let message: Message = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_data() {
                ParseError::Invalid("expected a JSON-RPC 2.0 object")
            } else {
                ParseError::NotJson(e.to_string())
            }
        })?;
        if message.jsonrpc.map(|v| v.get()) != Some("\"2.0\"") {
            return Err(ParseError::Invalid("\"jsonrpc\" must be \"2.0\""));
        }
        if let Some(id) = message.id {
            let first = id.get().as_bytes().first().copied().unwrap_or(b' ');
            if !(first == b'"' || first == b'-' || first.is_ascii_digit()) {
                return Err(ParseError::Invalid("\"id\" must be a string or a number"));
            }
        }
        match (&message.method, message.id) {
            (Some(_), _) if message.result.is_some() || message.error.is_some() => {
                Err(ParseError::Invalid("a message cannot carry both a method and a result"))
            }
            (None, None) => Err(ParseError::Invalid("a message needs a \"method\" or an \"id\"")),
            (None, Some(_)) if message.result.is_some() == message.error.is_some() => {
                Err(ParseError::Invalid("a response needs exactly one of \"result\" and \"error\""))
            }
            _ => Ok(message),
        }
    }

    pub fn kind(&self) -> Kind {
        match (&self.method, self.id) {
            (Some(_), Some(_)) => Kind::Request,
            (Some(_), None) => Kind::Notification,
            (None, _) => Kind::Response,
        }
    }

    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }

    /// The raw JSON text of the id, `null` when absent.
    pub fn id_text(&self) -> &str {
        self.id.map(|i| i.get()).unwrap_or("null")
    }
}

fn push_header(out: &mut Vec<u8>, id: Option<&str>) {
    out.extend_from_slice(br#"{"jsonrpc":"2.0""#);
    if let Some(id) = id {
        out.extend_from_slice(br#","id":"#);
        out.extend_from_slice(id.as_bytes());
    }
}

fn push_method(out: &mut Vec<u8>, method: &str, params: Option<&str>) {
    out.extend_from_slice(br#","method":"#);
    let _ = serde_json::to_writer(&mut *out, method);
    if let Some(params) = params {
        out.extend_from_slice(br#","params":"#);
        out.extend_from_slice(params.as_bytes());
    }
    out.push(b'}');
}

/// A request with `id` (raw JSON text, e.g. `17` or `"a"`).
pub fn request(id: &str, method: &str, params: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + method.len() + params.map_or(0, str::len));
    push_header(&mut out, Some(id));
    push_method(&mut out, method, params);
    out
}

pub fn notification(method: &str, params: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + method.len() + params.map_or(0, str::len));
    push_header(&mut out, None);
    push_method(&mut out, method, params);
    out
}

/// A response carrying `id` and the raw `result` or `error` of another one.
pub fn response(id: &str, result: Option<&RawValue>, error: Option<&RawValue>) -> Vec<u8> {
    let (key, body) = match (result, error) {
        (_, Some(e)) => (&br#","error":"#[..], e.get()),
        (Some(r), None) => (&br#","result":"#[..], r.get()),
        (None, None) => (&br#","result":"#[..], "{}"),
    };
    let mut out = Vec::with_capacity(32 + id.len() + body.len());
    push_header(&mut out, Some(id));
    out.extend_from_slice(key);
    out.extend_from_slice(body.as_bytes());
    out.push(b'}');
    out
}

/// The `_meta.progressToken` of request params, if any. Parses the params
/// only when the token can be there at all.
pub fn progress_token(params: Option<&RawValue>) -> Option<serde_json::Value> {
    let params = params?;
    if !params.get().contains("progressToken") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(params.get()).ok()?;
    value.pointer("/_meta/progressToken").cloned()
}

/// `params` with `_meta.progressToken` (or, for a progress notification,
/// the top-level `progressToken`) replaced by `token`.
pub fn with_progress_token(params: &RawValue, pointer: &str, token: &serde_json::Value) -> Option<String> {
    let mut value: serde_json::Value = serde_json::from_str(params.get()).ok()?;
    *value.pointer_mut(pointer)? = token.clone();
    Some(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        assert_eq!(m.kind(), Kind::Request);
        let m = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(m.kind(), Kind::Notification);
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":"x","result":{}}"#).unwrap();
        assert_eq!(m.kind(), Kind::Response);
    }

    #[test]
    fn rejects_what_is_not_json_rpc() {
        assert!(matches!(Message::parse(b"{not json"), Err(ParseError::NotJson(_))));
        assert!(matches!(Message::parse(b"42"), Err(ParseError::Invalid(_))));
        assert!(matches!(Message::parse(br#"{"id":1,"method":"x"}"#), Err(ParseError::Invalid(_))));
        assert!(matches!(Message::parse(br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#), Err(ParseError::Invalid(_))));
        assert!(matches!(Message::parse(br#"{"jsonrpc":"2.0","id":1}"#), Err(ParseError::Invalid(_))));
    }

    #[test]
    fn rebuilds_with_new_ids_without_touching_params() {
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"a" : 1}}"#).unwrap();
        let out = request("17", m.method(), m.params.map(|p| p.get()));
        assert_eq!(out, br#"{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"a" : 1}}"#);
        let r = Message::parse(br#"{"jsonrpc":"2.0","id":17,"result":{"ok":true}}"#).unwrap();
        assert_eq!(response("\"abc\"", r.result, r.error), br#"{"jsonrpc":"2.0","id":"abc","result":{"ok":true}}"#);
    }

    #[test]
    fn finds_and_replaces_progress_tokens() {
        let m =
            Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"progressToken":5}}}"#).unwrap();
        assert_eq!(progress_token(m.params), Some(serde_json::json!(5)));
        let replaced = with_progress_token(m.params.unwrap(), "/_meta/progressToken", &serde_json::json!("t1"));
        assert_eq!(replaced.as_deref(), Some(r#"{"_meta":{"progressToken":"t1"}}"#));
    }
}
