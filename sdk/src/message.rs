//! Helpers on the messages hooks receive: `Message` (an MCP message) and
//! `HttpRequest`. Params stay JSON text until a plugin asks, so a plugin
//! that only looks at the method never pays for parsing.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Header, HttpRequest, Message};

impl Message {
    /// The JSON-RPC method (`tools/call`, ...). For a response, the method
    /// of the request it answers, when mcpd knows it.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// Whether this is a request or notification with this method.
    pub fn is_method(&self, method: &str) -> bool {
        self.method() == Some(method)
    }

    /// The tool a `tools/call` request (or its response) calls; `None` for
    /// anything else.
    pub fn tool_name(&self) -> Option<&str> {
        if self.is_method("tools/call") { self.name.as_deref() } else { None }
    }

    /// Whether an earlier plugin granted the client this scope.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// `params` (requests, notifications) or `result` (responses) as a JSON
    /// value; `Null` when there are none.
    pub fn params_json(&self) -> Result<Value, serde_json::Error> {
        parse_or_null(self.params.as_deref())
    }

    /// `params` (or a response's `result`) parsed into a type of the
    /// plugin's; absent params parse as `null`, so use `Option<T>` for
    /// messages where they are optional.
    pub fn params_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.params.as_deref().unwrap_or("null"))
    }

    /// An error response's `error` object; `Null` for anything else.
    pub fn error_json(&self) -> Result<Value, serde_json::Error> {
        parse_or_null(self.error.as_deref())
    }

    /// A header of the client's HTTP request, by name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

impl HttpRequest {
    /// A request header, by name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn parse_or_null(json: Option<&str>) -> Result<Value, serde_json::Error> {
    json.map_or(Ok(Value::Null), serde_json::from_str)
}

// mcpd sends names in lower case; comparing without case spares plugins
// from having to know that.
fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}

#[cfg(test)]
mod tests {
    use crate::testing;
    use serde::Deserialize;
    use serde_json::json;

    #[test]
    fn tool_name_only_for_tools_call() {
        let call = testing::tool_call("echo", json!({"text": "hi"}));
        assert_eq!(call.tool_name(), Some("echo"));
        let mut other = call.clone();
        other.method = Some("prompts/get".into());
        assert_eq!(other.tool_name(), None);
        assert_eq!(testing::response(json!({})).tool_name(), None);
    }

    #[test]
    fn params_parse() {
        #[derive(Deserialize)]
        struct Call {
            name: String,
        }
        let call = testing::tool_call("echo", json!({"text": "hi"}));
        assert_eq!(call.params_json().unwrap()["arguments"]["text"], "hi");
        assert_eq!(call.params_as::<Call>().unwrap().name, "echo");
        let mut bare = call.clone();
        bare.params = None;
        assert!(bare.params_json().unwrap().is_null());
        assert!(bare.params_as::<Option<Call>>().unwrap().is_none());
    }

    #[test]
    fn headers_any_case() {
        let req = testing::http_request(&[("x-user", "ada")]);
        assert_eq!(req.header("X-User"), Some("ada"));
        assert_eq!(req.header("x-other"), None);
    }
}
