//! Messages to feed a plugin's hooks in its own unit tests (`cargo test`
//! on the host target, where the SDK's host calls are stand-ins).
//!
//! ```
//! use mcpd_plugin_sdk::testing;
//! let call = testing::tool_call("echo", serde_json::json!({"text": "hi"}));
//! assert_eq!(call.tool_name(), Some("echo"));
//! ```

use serde_json::{Value, json};

use crate::{Direction, Header, HttpRequest, Message, MessageKind};

/// A client request with this method and params.
pub fn request(method: &str, params: Value) -> Message {
    Message {
        direction: Direction::ClientToServer,
        kind: MessageKind::Request,
        method: Some(method.into()),
        id: Some("1".into()),
        name: None,
        params: Some(params.to_string()),
        error: None,
        session: None,
        principal: None,
        scopes: Vec::new(),
        client_address: "127.0.0.1".into(),
        headers: Vec::new(),
        route: "test".into(),
    }
}

/// A `tools/call` of `tool` with these arguments.
pub fn tool_call(tool: &str, arguments: Value) -> Message {
    let mut message = request("tools/call", json!({"name": tool, "arguments": arguments}));
    message.name = Some(tool.into());
    message
}

/// A server's successful response with this result.
pub fn response(result: Value) -> Message {
    Message {
        direction: Direction::ServerToClient,
        kind: MessageKind::Response,
        method: None,
        params: Some(result.to_string()),
        ..request("", Value::Null)
    }
}

/// A `POST /mcp` with these headers.
pub fn http_request(headers: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        path: "/mcp".into(),
        headers: headers
            .iter()
            .map(|(name, value)| Header { name: name.to_ascii_lowercase(), value: value.to_string() })
            .collect(),
        client_address: "127.0.0.1".into(),
        route: "test".into(),
    }
}
