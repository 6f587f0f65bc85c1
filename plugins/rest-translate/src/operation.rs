//! One HTTP operation served as one MCP tool: its `tools/list` entry, and
//! the HTTP request a call with some arguments becomes. Both sources (an
//! OpenAPI document, the `[[tools]]` of the config) produce this.

use mcpd_plugin_sdk::Header;
use mcpd_plugin_sdk::http::Request;
use serde_json::{Map, Value, json};

use crate::encode;

/// Where an argument goes in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Replaces `{name}` in the path.
    Path,
    Query,
    Header,
}

/// A named argument with a fixed place in the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The argument's name in the tool's input.
    pub arg: String,
    /// Its name on the wire (path placeholder, query key, header name);
    /// differs from `arg` only when two locations share a name.
    pub wire: String,
    pub location: Location,
    pub required: bool,
}

/// What the JSON request body is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    None,
    /// An object of these arguments (those the call gives).
    Fields(Vec<String>),
    /// The value of this one argument, as it is.
    Whole {
        arg: String,
        required: bool,
    },
}

/// Where arguments with no declared place go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    Query,
    Body,
    /// Dropped: the operation's schema says what it takes.
    Drop,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// The tool name.
    pub name: String,
    pub description: String,
    /// Upper case: `GET`, `POST`, ...
    pub method: String,
    /// The path template, `/users/{id}`, appended to the base URL.
    pub path: String,
    pub params: Vec<Param>,
    pub body: Body,
    pub rest: Rest,
    /// JSON Schema of the arguments (an object schema).
    pub input_schema: Value,
}

/// What the request needs besides the operation and the arguments.
pub struct Target<'a> {
    /// Without a trailing `/`.
    pub base_url: &'a str,
    /// Static and forwarded headers, added before the operation's own.
    pub headers: &'a [Header],
    pub timeout: std::time::Duration,
}

impl Operation {
    /// The `tools/list` entry. Annotations are hints from the HTTP method
    /// (RFC 9110's safe and idempotent methods), which clients use to decide
    /// what needs the user's confirmation.
    pub fn tool_entry(&self) -> Value {
        let mut entry = mcpd_plugin_sdk::tool(&self.name, &self.description, self.input_schema.clone());
        let annotations = match self.method.as_str() {
            "GET" | "HEAD" | "OPTIONS" => json!({"readOnlyHint": true}),
            "PUT" | "DELETE" => json!({"readOnlyHint": false, "idempotentHint": true}),
            _ => json!({"readOnlyHint": false}),
        };
        entry["annotations"] = annotations;
        entry
    }

    /// The HTTP request for a call with these arguments, or, when the
    /// arguments lack a required one, what to tell the model.
    pub fn request(&self, args: &Map<String, Value>, target: &Target) -> Result<Request, String> {
        let mut path = self.path.clone();
        let mut query = Vec::new();
        let mut headers: Vec<Header> = target.headers.to_vec();
        for param in &self.params {
            let value = args.get(&param.arg).filter(|v| !v.is_null());
            let Some(value) = value else {
                if param.required || param.location == Location::Path {
                    return Err(format!("missing required argument `{}`", param.arg));
                }
                continue;
            };
            match param.location {
                Location::Path => path = path.replace(&format!("{{{}}}", param.wire), &encode::path_segment(value)),
                Location::Query => encode::query_pairs(&mut query, &param.wire, value),
                Location::Header => put_header(&mut headers, &param.wire, encode::scalar(value)),
            }
        }
        let body = self.body_value(args)?;
        if self.rest == Rest::Query {
            for (name, value) in args.iter().filter(|(name, _)| !self.declares(name)) {
                encode::query_pairs(&mut query, name, value);
            }
        }
        let mut url = format!("{}{}", target.base_url, path);
        if !query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query.join("&"));
        }
        let mut request = Request::new(&self.method, url).timeout(target.timeout);
        request.headers = headers;
        if !request.headers.iter().any(|h| h.name == "accept") {
            request = request.header("accept", "application/json");
        }
        Ok(match body {
            Some(body) => request.json(&body),
            None => request,
        })
    }

    fn body_value(&self, args: &Map<String, Value>) -> Result<Option<Value>, String> {
        match &self.body {
            Body::None if self.rest != Rest::Body => Ok(None),
            Body::Whole { arg, required } => match args.get(arg) {
                Some(value) => Ok(Some(value.clone())),
                None if *required => Err(format!("missing required argument `{arg}`")),
                None => Ok(None),
            },
            Body::None | Body::Fields(_) => {
                let mut object = Map::new();
                for (name, value) in args {
                    let listed = matches!(&self.body, Body::Fields(fields) if fields.contains(name));
                    if listed || (self.rest == Rest::Body && !self.declares(name)) {
                        object.insert(name.clone(), value.clone());
                    }
                }
                Ok(Some(Value::Object(object)))
            }
        }
    }

    /// Whether the operation gives this argument a place.
    fn declares(&self, arg: &str) -> bool {
        self.params.iter().any(|p| p.arg == arg)
            || match &self.body {
                Body::Fields(fields) => fields.iter().any(|f| f == arg),
                Body::Whole { arg: whole, .. } => whole == arg,
                Body::None => false,
            }
    }
}

/// Sets a header, replacing one of the same name (names are lower case).
pub fn put_header(headers: &mut Vec<Header>, name: &str, value: String) {
    let name = name.to_ascii_lowercase();
    headers.retain(|h| h.name != name);
    headers.push(Header { name, value });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn op(method: &str, path: &str, params: Vec<Param>, body: Body, rest: Rest) -> Operation {
        Operation {
            name: "t".into(),
            description: String::new(),
            method: method.into(),
            path: path.into(),
            params,
            body,
            rest,
            input_schema: json!({"type": "object"}),
        }
    }

    fn param(arg: &str, location: Location, required: bool) -> Param {
        Param { arg: arg.into(), wire: arg.into(), location, required }
    }

    fn target(headers: &[Header]) -> Target<'_> {
        Target { base_url: "http://api.test/v1", headers, timeout: Duration::from_secs(3) }
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn path_query_and_header_params() {
        let params = vec![
            param("id", Location::Path, true),
            param("verbose", Location::Query, false),
            param("x-trace", Location::Header, false),
        ];
        let op = op("GET", "/users/{id}", params, Body::None, Rest::Drop);
        let key = [Header { name: "x-api-key".into(), value: "k".into() }];
        let r =
            op.request(&args(json!({"id": "a/b", "verbose": true, "x-trace": 7, "other": 1})), &target(&key)).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.url, "http://api.test/v1/users/a%2Fb?verbose=true");
        assert_eq!(r.body, None);
        assert_eq!(r.timeout, Duration::from_secs(3));
        let names: Vec<_> = r.headers.iter().map(|h| (h.name.as_str(), h.value.as_str())).collect();
        assert_eq!(names, [("x-api-key", "k"), ("x-trace", "7"), ("accept", "application/json")]);
    }

    #[test]
    fn missing_required_arguments_are_reported() {
        let op = op("GET", "/users/{id}", vec![param("id", Location::Path, true)], Body::None, Rest::Drop);
        assert_eq!(op.request(&args(json!({})), &target(&[])).unwrap_err(), "missing required argument `id`");
        assert!(op.request(&args(json!({"id": null})), &target(&[])).is_err());
    }

    #[test]
    fn body_fields_and_leftovers() {
        let op = op("POST", "/users", vec![], Body::Fields(vec!["name".into()]), Rest::Body);
        let r = op.request(&args(json!({"name": "ada", "age": 36})), &target(&[])).unwrap();
        let body: Value = serde_json::from_slice(&r.body.unwrap()).unwrap();
        assert_eq!(body, json!({"name": "ada", "age": 36}));
        assert!(r.headers.iter().any(|h| h.name == "content-type" && h.value == "application/json"));
        // A POST with nothing to send still sends an (empty) object.
        let r = op.request(&args(json!({})), &target(&[])).unwrap();
        assert_eq!(r.body.as_deref(), Some(&b"{}"[..]));
    }

    #[test]
    fn whole_body_and_query_leftovers() {
        let op1 = op("PUT", "/blob", vec![], Body::Whole { arg: "body".into(), required: true }, Rest::Drop);
        let r = op1.request(&args(json!({"body": [1, 2], "junk": 0})), &target(&[])).unwrap();
        assert_eq!(r.body.as_deref(), Some(&b"[1,2]"[..]));
        assert!(op1.request(&args(json!({})), &target(&[])).is_err());
        let op2 = op("GET", "/search", vec![], Body::None, Rest::Query);
        let r = op2.request(&args(json!({"q": "a b", "n": [1, 2]})), &target(&[])).unwrap();
        assert_eq!(r.url, "http://api.test/v1/search?n=1&n=2&q=a%20b");
        assert_eq!(r.body, None);
    }

    #[test]
    fn annotations_follow_the_method() {
        let get = op("GET", "/", vec![], Body::None, Rest::Drop).tool_entry();
        assert_eq!(get["annotations"], json!({"readOnlyHint": true}));
        let delete = op("DELETE", "/", vec![], Body::None, Rest::Drop).tool_entry();
        assert_eq!(delete["annotations"]["idempotentHint"], true);
        assert_eq!(delete["inputSchema"], json!({"type": "object"}));
    }
}
