//! The translator's `config` table from mcpd.toml, and the [`Operation`]s
//! its `[[tools]]` describe.
//!
//! ```toml
//! config = { base_url = "http://127.0.0.1:9000", headers = { "x-api-key" = "..." }, tools = [
//!     { name = "get_user", description = "Fetch a user", path = "/users/{id}" },
//!     { name = "create_user", method = "POST", path = "/users", body = ["name", "email"] },
//! ] }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::openapi::tool_name;
use crate::operation::{Body, Location, Operation, Param, Rest};

/// Five seconds is the SDK's default; REST calls behind a tool are often
/// slower (searches, reports), and mcpd caps whatever is asked anyway.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where requests go: `http://host:port/prefix`. Overrides the OpenAPI
    /// document's `servers`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// An OpenAPI 3 document: JSON text, or the document itself as a table.
    #[serde(default)]
    pub openapi: Option<Value>,
    /// Where to fetch the OpenAPI document (an allowed host), on first use.
    #[serde(default)]
    pub openapi_url: Option<String>,
    /// Only these tools from the OpenAPI document (by tool name).
    #[serde(default)]
    pub include: Vec<String>,
    /// Tools described here rather than by a document.
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    /// Sent with every request (e.g. an API key).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers of the MCP client's request to pass on to the API (e.g.
    /// `authorization`, when the API should see the client's own token).
    #[serde(default)]
    pub forward_headers: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// `instructions` for the client's model, sent with `initialize`.
    #[serde(default)]
    pub instructions: Option<String>,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// One tool described in the config.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// `/users/{id}`: each `{name}` is a required argument.
    pub path: String,
    /// Arguments sent as query parameters.
    #[serde(default)]
    pub query: Vec<String>,
    /// Arguments sent as request headers (the argument name is the header name).
    #[serde(default)]
    pub header_args: Vec<String>,
    /// Arguments that make up the JSON body object.
    #[serde(default)]
    pub body: Vec<String>,
    /// The argument whose value is the whole JSON body.
    #[serde(default)]
    pub body_from: Option<String>,
    /// JSON Schema of the arguments; without it, one is made from the path
    /// placeholders and the names above.
    #[serde(default)]
    pub input_schema: Option<Value>,
}

fn default_method() -> String {
    "GET".into()
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

impl ToolSpec {
    /// The operation, or what is wrong with the description.
    pub fn operation(&self) -> Result<Operation, String> {
        let method = self.method.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(format!("tool `{}`: unknown method `{}`", self.name, self.method));
        }
        if tool_name(&self.name) != self.name {
            return Err(format!("tool `{}`: names use letters, digits, `_`, `-` and `.` (at most 64)", self.name));
        }
        if !self.path.starts_with('/') {
            return Err(format!("tool `{}`: `path` must start with `/`", self.name));
        }
        let explicit = self.input_schema.as_ref();
        if explicit.is_some_and(|s| s.get("type").and_then(Value::as_str) != Some("object")) {
            return Err(format!("tool `{}`: `input_schema` must be an object schema (`type = \"object\"`)", self.name));
        }
        let schema_required = |arg: &str| {
            explicit
                .and_then(|s| s.get("required"))
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|n| n == arg))
        };
        let mut params: Vec<Param> = placeholders(&self.path)
            .into_iter()
            .map(|name| Param { arg: name.clone(), wire: name, location: Location::Path, required: true })
            .collect();
        for (names, location) in [(&self.query, Location::Query), (&self.header_args, Location::Header)] {
            for name in names {
                params.push(Param { arg: name.clone(), wire: name.clone(), location, required: schema_required(name) });
            }
        }
        let body = match (&self.body_from, self.body.is_empty()) {
            (Some(_), false) => return Err(format!("tool `{}`: give `body` or `body_from`, not both", self.name)),
            (Some(arg), true) => Body::Whole { arg: arg.clone(), required: schema_required(arg) },
            (None, false) => Body::Fields(self.body.clone()),
            (None, true) => Body::None,
        };
        // Undeclared arguments go where this method's data usually goes.
        let rest =
            if matches!(method.as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS") { Rest::Query } else { Rest::Body };
        let input_schema = match explicit {
            Some(schema) => schema.clone(),
            None => self.default_schema(&params),
        };
        Ok(Operation {
            name: self.name.clone(),
            description: self.description.clone(),
            method,
            path: self.path.clone(),
            params,
            body,
            rest,
            input_schema,
        })
    }

    /// Path arguments as required strings, the others as anything.
    fn default_schema(&self, params: &[Param]) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for param in params {
            let schema = match param.location {
                Location::Path => json!({"type": "string"}),
                _ => json!({}),
            };
            properties.insert(param.arg.clone(), schema);
            if param.location == Location::Path {
                required.push(Value::String(param.arg.clone()));
            }
        }
        for name in self.body.iter().chain(&self.body_from) {
            properties.insert(name.clone(), json!({}));
        }
        let mut schema = json!({"type": "object", "properties": properties});
        if !required.is_empty() {
            schema["required"] = Value::Array(required);
        }
        schema
    }
}

/// The `{name}`s of a path template.
fn placeholders(path: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else { break };
        names.push(rest[start + 1..start + len].to_string());
        rest = &rest[start + len + 1..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> ToolSpec {
        serde_json::from_value(v).expect("a valid tool spec")
    }

    #[test]
    fn path_placeholders_are_required_arguments() {
        let op = spec(json!({"name": "get_item", "path": "/shops/{shop}/items/{id}"})).operation().unwrap();
        assert_eq!(op.method, "GET");
        assert_eq!(op.rest, Rest::Query);
        let args: Vec<&str> = op.params.iter().map(|p| p.arg.as_str()).collect();
        assert_eq!(args, ["shop", "id"]);
        assert_eq!(op.input_schema["required"], json!(["shop", "id"]));
        assert_eq!(op.input_schema["properties"]["id"], json!({"type": "string"}));
    }

    #[test]
    fn body_and_query_lists() {
        let op = spec(json!({"name": "c", "method": "post", "path": "/u", "query": ["dry_run"], "body": ["name"]}))
            .operation()
            .unwrap();
        assert_eq!(op.method, "POST");
        assert_eq!(op.body, Body::Fields(vec!["name".into()]));
        assert_eq!(op.rest, Rest::Body);
        assert_eq!(op.params[0].location, Location::Query);
        let schema = json!({"type": "object", "properties": {"doc": {}}, "required": ["doc"]});
        let op = spec(json!({"name": "p", "method": "PUT", "path": "/d", "body_from": "doc", "input_schema": schema}))
            .operation()
            .unwrap();
        assert_eq!(op.body, Body::Whole { arg: "doc".into(), required: true });
        assert_eq!(op.input_schema, schema);
    }

    #[test]
    fn bad_specs_are_explained() {
        let cases = [
            (json!({"name": "x", "method": "FETCH", "path": "/"}), "unknown method"),
            (json!({"name": "x y", "path": "/"}), "names use"),
            (json!({"name": "x", "path": "users"}), "must start with `/`"),
            (json!({"name": "x", "path": "/", "input_schema": {"type": "string"}}), "object schema"),
            (json!({"name": "x", "path": "/", "body": ["a"], "body_from": "b"}), "not both"),
        ];
        for (v, want) in cases {
            let e = spec(v.clone()).operation().unwrap_err();
            assert!(e.contains(want), "{v}: {e}");
        }
    }

    #[test]
    fn settings_defaults() {
        let s: Settings = serde_json::from_value(json!({"base_url": "http://h"})).unwrap();
        assert_eq!(s.timeout_ms, DEFAULT_TIMEOUT_MS);
        assert!(s.tools.is_empty() && s.headers.is_empty() && s.openapi.is_none());
        assert!(serde_json::from_value::<Settings>(json!({"base_urls": "x"})).is_err());
    }
}
