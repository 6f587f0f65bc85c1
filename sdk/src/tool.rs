//! MCP tools for translators: reading a `tools/call` request
//! ([`Message::tool_call`]), describing a tool for `tools/list`
//! ([`tool`]) and building what a call answers ([`ToolResult`]).
//!
//! ```
//! use mcpd_plugin_sdk::{ToolResult, serde_json::json};
//! let ok = ToolResult::json(&json!({"id": 7, "name": "ada"}));
//! assert_eq!(ok.to_value()["structuredContent"]["id"], 7);
//! let failed = ToolResult::error("HTTP 404 Not Found");
//! assert_eq!(failed.to_value()["isError"], true);
//! ```

use serde_json::{Map, Value, json};

use crate::{Message, RpcError};

/// A `tools/call` request's params: which tool, with which arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    /// `arguments`; empty when the client sent none.
    pub arguments: Map<String, Value>,
}

impl Message {
    /// This `tools/call` request's tool and arguments. Params without a
    /// string `name`, or with `arguments` that are not an object, are the
    /// client's mistake: -32602.
    pub fn tool_call(&self) -> Result<ToolCall, RpcError> {
        let params = self.params_json().map_err(|e| RpcError::invalid_params(format!("params: {e}")))?;
        let Some(name) = params.get("name").and_then(Value::as_str) else {
            return Err(RpcError::invalid_params("tools/call needs a string `name`"));
        };
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(arguments)) => arguments.clone(),
            Some(_) => return Err(RpcError::invalid_params("tools/call `arguments` must be an object")),
        };
        Ok(ToolCall { name: name.to_string(), arguments })
    }
}

/// One entry of a `tools/list` result. `input_schema` is the JSON Schema
/// of the arguments (MCP wants `"type": "object"` at the top).
pub fn tool(name: &str, description: &str, input_schema: Value) -> Value {
    json!({"name": name, "description": description, "inputSchema": input_schema})
}

/// The result of a `tools/call`: content for the model, optionally
/// structured content, and whether the tool failed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolResult {
    content: Vec<Value>,
    structured: Option<Value>,
    is_error: bool,
}

impl ToolResult {
    /// A result with this text.
    pub fn text(text: impl Into<String>) -> Self {
        ToolResult::default().with_text(text)
    }

    /// A result carrying this JSON value: as text (for every client) and,
    /// when it is an object, as `structuredContent` too (MCP requires
    /// structured content to be an object).
    pub fn json(value: &Value) -> Self {
        let result = ToolResult::text(value.to_string());
        if value.is_object() { result.structured(value.clone()) } else { result }
    }

    /// A failed call (`isError: true`) with this text: how the model learns
    /// that the tool ran and did not work, so it can adjust and retry.
    pub fn error(text: impl Into<String>) -> Self {
        ToolResult::text(text).failed()
    }

    /// Adds a text content item.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.content.push(json!({"type": "text", "text": text.into()}));
        self
    }

    /// Adds any content item (`image`, `resource_link`, ...), as given.
    pub fn with_content(mut self, item: Value) -> Self {
        self.content.push(item);
        self
    }

    /// Sets `structuredContent`.
    pub fn structured(mut self, value: Value) -> Self {
        self.structured = Some(value);
        self
    }

    /// Marks the call as failed (`isError: true`).
    pub fn failed(mut self) -> Self {
        self.is_error = true;
        self
    }

    pub fn is_error(&self) -> bool {
        self.is_error
    }

    /// The `result` object of the JSON-RPC answer.
    pub fn to_value(&self) -> Value {
        let mut result = json!({"content": self.content});
        if let Some(structured) = &self.structured {
            result["structuredContent"] = structured.clone();
        }
        if self.is_error {
            result["isError"] = Value::Bool(true);
        }
        result
    }
}

impl From<ToolResult> for Value {
    fn from(result: ToolResult) -> Value {
        let mut object = Map::new();
        object.insert("content".into(), Value::Array(result.content));
        if let Some(structured) = result.structured {
            object.insert("structuredContent".into(), structured);
        }
        if result.is_error {
            object.insert("isError".into(), Value::Bool(true));
        }
        Value::Object(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{codes, testing};

    #[test]
    fn tool_call_parses_and_defaults() {
        let call = testing::tool_call("get_user", json!({"id": 7})).tool_call().unwrap();
        assert_eq!(call.name, "get_user");
        assert_eq!(call.arguments["id"], 7);
        let bare = testing::request("tools/call", json!({"name": "ping"})).tool_call().unwrap();
        assert!(bare.arguments.is_empty());
    }

    #[test]
    fn malformed_tool_calls_are_invalid_params() {
        for params in [json!({}), json!({"name": 3}), json!({"name": "x", "arguments": [1]}), json!(null)] {
            let e = testing::request("tools/call", params.clone()).tool_call().unwrap_err();
            assert_eq!(e.code, codes::INVALID_PARAMS, "{params}");
        }
    }

    #[test]
    fn results_serialise_as_mcp_wants() {
        let v: Value = ToolResult::json(&json!({"a": 1})).into();
        assert_eq!(v, json!({"content": [{"type": "text", "text": "{\"a\":1}"}], "structuredContent": {"a": 1}}));
        // Arrays are not objects: text only.
        let v = ToolResult::json(&json!([1, 2])).to_value();
        assert_eq!(v, json!({"content": [{"type": "text", "text": "[1,2]"}]}));
        let r = ToolResult::error("HTTP 500").with_text("details");
        assert!(r.is_error());
        assert_eq!(r.to_value()["isError"], true);
        assert_eq!(r.to_value()["content"][1]["text"], "details");
        assert_eq!(Value::from(r.clone()), r.to_value());
    }

    #[test]
    fn tool_entries() {
        let t = tool("echo", "Echoes", json!({"type": "object"}));
        assert_eq!(t["inputSchema"]["type"], "object");
        assert_eq!(t["name"], "echo");
    }
}
