//! Building the JSON-RPC errors a translator answers with.
//!
//! ```
//! use mcpd_plugin_sdk::RpcError;
//! let e = RpcError::method_not_found("resources/list");
//! assert_eq!(e.code, -32601);
//! let e = RpcError::invalid_params("unknown tool: frobnicate").data(&serde_json::json!({"tool": "frobnicate"}));
//! assert_eq!(e.data.as_deref(), Some(r#"{"tool":"frobnicate"}"#));
//! ```
//!
//! MCP draws a line worth keeping: a tool that ran and failed (the API
//! answered 404, the network was down, an argument was out of range) is a
//! successful JSON-RPC answer with `isError: true` (see
//! [`crate::ToolResult::error`]), so the model sees it and can try again;
//! these errors are for requests mcpd's client got wrong (unknown method,
//! unknown tool, malformed params).

use serde_json::Value;

use crate::{RpcError, codes};

impl RpcError {
    /// An error with this code (see [`crate::codes`]) and message.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into(), data: None }
    }

    /// -32601: the translator does not serve this method.
    pub fn method_not_found(method: &str) -> Self {
        RpcError::new(codes::METHOD_NOT_FOUND, format!("method not found: {method}"))
    }

    /// -32602: the params are wrong (MCP uses it for an unknown tool too).
    pub fn invalid_params(message: impl Into<String>) -> Self {
        RpcError::new(codes::INVALID_PARAMS, message)
    }

    /// -32603: something broke inside the translator.
    pub fn internal(message: impl Into<String>) -> Self {
        RpcError::new(codes::INTERNAL_ERROR, message)
    }

    /// Sets the error's `data` member.
    pub fn data(mut self, data: &Value) -> Self {
        self.data = Some(data.to_string());
        self
    }
}
