//! The tools a translator instance serves: the OpenAPI document's
//! operations (filtered by `include`) plus the config's `[[tools]]`, the
//! base URL their paths hang off, and the `tools/list` answer, built once.

use serde_json::{Value, json};

use crate::openapi;
use crate::operation::Operation;
use crate::settings::Settings;

#[derive(Debug)]
pub struct Catalog {
    /// Without a trailing `/`.
    pub base_url: String,
    pub operations: Vec<Operation>,
    /// The `tools/list` result.
    pub tools_list: Value,
    /// Operations of the document left out, and why (for the log).
    pub skipped: Vec<String>,
}

impl Catalog {
    /// From the settings and the OpenAPI document (`doc`) if there is one;
    /// `doc_url` is where it came from, for a relative `servers` URL.
    pub fn build(settings: &Settings, doc: Option<&Value>, doc_url: Option<&str>) -> Result<Catalog, String> {
        let api = match doc {
            Some(doc) => openapi::operations(doc).map_err(|e| format!("openapi: {e}"))?,
            None => openapi::Api::default(),
        };
        let mut operations = api.operations;
        if !settings.include.is_empty() {
            if let Some(missing) = settings.include.iter().find(|n| !operations.iter().any(|o| &o.name == *n)) {
                return Err(format!("include: the OpenAPI document has no operation `{missing}`"));
            }
            operations.retain(|o| settings.include.contains(&o.name));
        }
        for spec in &settings.tools {
            operations.push(spec.operation()?);
        }
        unique_names(&mut operations, settings.tools.len())?;
        let base_url = base_url(settings.base_url.as_deref(), api.server.as_deref(), doc_url)?;
        let tools: Vec<Value> = operations.iter().map(Operation::tool_entry).collect();
        Ok(Catalog { base_url, operations, tools_list: json!({"tools": tools}), skipped: api.skipped })
    }

    pub fn find(&self, tool: &str) -> Option<&Operation> {
        self.operations.iter().find(|o| o.name == tool)
    }
}

/// Tool names must be unique. A clash between two document operations
/// (sanitising can make one) gets a numeric suffix; a config tool that
/// clashes is the operator's to rename.
fn unique_names(operations: &mut [Operation], configured: usize) -> Result<(), String> {
    let from_doc = operations.len() - configured;
    for i in 0..operations.len() {
        let taken = |name: &str, ops: &[Operation]| ops[..i].iter().any(|o| o.name == name);
        if !taken(&operations[i].name, operations) {
            continue;
        }
        if i >= from_doc {
            return Err(format!("tools: `{}` is defined twice", operations[i].name));
        }
        let base = operations[i].name.clone();
        let mut n = 2;
        while taken(&format!("{base}_{n}"), operations) {
            n += 1;
        }
        operations[i].name = format!("{base}_{n}");
    }
    Ok(())
}

/// `base_url` wins; else the document's server URL, absolute, or relative
/// to where the document was fetched from.
fn base_url(configured: Option<&str>, server: Option<&str>, doc_url: Option<&str>) -> Result<String, String> {
    let url = match (configured, server) {
        (Some(url), _) => url.to_string(),
        (None, Some(server)) if is_http(server) => server.to_string(),
        (None, Some(server)) if server.starts_with('/') && doc_url.is_some_and(is_http) => {
            format!("{}{server}", origin(doc_url.unwrap_or_default()))
        }
        (None, Some(server)) => {
            return Err(format!("the OpenAPI server URL `{server}` is not an absolute http(s) URL: set `base_url`"));
        }
        (None, None) => return Err("`base_url` is missing (and no OpenAPI document names a server)".into()),
    };
    if !is_http(&url) {
        return Err(format!("base_url `{url}` must start with http:// or https://"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// `http://host:port` of an absolute URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(v: Value) -> Settings {
        serde_json::from_value(v).expect("valid settings")
    }

    fn users() -> Value {
        serde_json::from_str(include_str!("../tests/users.openapi.json")).expect("fixture is JSON")
    }

    #[test]
    fn base_url_sources() {
        assert_eq!(base_url(Some("http://h:1/api/"), Some("http://other"), None).unwrap(), "http://h:1/api");
        assert_eq!(base_url(None, Some("https://s/v2"), None).unwrap(), "https://s/v2");
        assert_eq!(base_url(None, Some("/v3"), Some("http://h:9/docs/openapi.json")).unwrap(), "http://h:9/v3");
        assert!(base_url(None, Some("/v3"), None).unwrap_err().contains("set `base_url`"));
        assert!(base_url(None, None, None).is_err());
        assert!(base_url(Some("ftp://h"), None, None).is_err());
    }

    #[test]
    fn include_filters_and_tools_add() {
        let s = settings(json!({
            "include": ["getUser"],
            "tools": [{"name": "health", "path": "/health"}],
        }));
        let c = Catalog::build(&s, Some(&users()), None).unwrap();
        let names: Vec<&str> = c.operations.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["getUser", "health"]);
        assert_eq!(c.base_url, "http://127.0.0.1:9000/v1");
        assert_eq!(c.tools_list["tools"][1]["name"], "health");
        let s = settings(json!({"include": ["nope"]}));
        assert!(Catalog::build(&s, Some(&users()), None).unwrap_err().contains("no operation `nope`"));
    }

    #[test]
    fn duplicate_names() {
        let twice = json!([{"name": "a", "path": "/a"}, {"name": "a", "path": "/b"}]);
        let s = settings(json!({"base_url": "http://h", "tools": twice}));
        assert_eq!(Catalog::build(&s, None, None).unwrap_err(), "tools: `a` is defined twice");
        let doc = json!({"openapi": "3.0.0", "paths": {
            "/a b": {"get": {}}, "/a_b": {"get": {}}, "/a-b": {"get": {"operationId": "get_a_b"}},
        }});
        let c = Catalog::build(&settings(json!({"base_url": "http://h"})), Some(&doc), None).unwrap();
        let names: Vec<&str> = c.operations.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["get_a_b", "get_a_b_2", "get_a_b_3"]);
    }
}
