//! An OpenAPI 3 document (JSON) read as a list of [`Operation`]s: each
//! operation's `operationId` names the tool, `summary` (and `description`)
//! describe it, its parameters and JSON request body make the input schema.
//!
//! Local `$ref`s (`#/components/...`) are inlined, since an MCP client
//! sees only the tool's schema, not the document; a reference that loops
//! back into itself becomes an unconstrained `{}` there.

use serde_json::{Map, Value, json};

use crate::operation::{Body, Location, Operation, Param, Rest};

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Deeper than any sane schema; stops a pathological document.
const MAX_DEPTH: usize = 64;

/// What a document offers.
#[derive(Debug, Default)]
pub struct Api {
    pub operations: Vec<Operation>,
    /// The first `servers` URL, if any.
    pub server: Option<String>,
    /// Operations left out, and why (e.g. a form body): for the log, since
    /// one odd operation should not keep the rest of an API from serving.
    pub skipped: Vec<String>,
}

/// The document's operations, and its first server URL if it has one.
pub fn operations(doc: &Value) -> Result<Api, String> {
    match doc.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with('3') => {}
        Some(v) => return Err(format!("OpenAPI {v} is not supported (3.x only)")),
        None if doc.get("swagger").is_some() => return Err("Swagger 2.0 is not supported (OpenAPI 3.x only)".into()),
        None => return Err("not an OpenAPI document: no `openapi` version".into()),
    }
    let mut api =
        Api { server: doc.pointer("/servers/0/url").and_then(Value::as_str).map(str::to_string), ..Api::default() };
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return Ok(api);
    };
    for (path, item) in paths {
        let item = resolve_ref(doc, item);
        let shared = item.get("parameters").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for method in METHODS {
            let Some(op) = item.get(method).filter(|op| op.is_object()) else { continue };
            match operation(doc, path, method, op, shared) {
                Ok(op) => api.operations.push(op),
                Err(e) => api.skipped.push(format!("{} {path}: {e}", method.to_uppercase())),
            }
        }
    }
    Ok(api)
}

fn operation(doc: &Value, path: &str, method: &str, op: &Value, shared: &[Value]) -> Result<Operation, String> {
    let name = match op.get("operationId").and_then(Value::as_str) {
        Some(id) => tool_name(id),
        None => tool_name(&format!("{method}_{path}")),
    };
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut params = Vec::new();
    for p in merged_parameters(doc, op, shared) {
        let (Some(wire), Some(location)) = (p.get("name").and_then(Value::as_str), location(&p)) else {
            continue; // cookies, and parameters too broken to place
        };
        // The same name in two places (a path `id` and a query `id`) needs
        // two arguments; the later one gets its location as a prefix.
        let arg = if properties.contains_key(wire) {
            format!("{}_{wire}", location_name(location))
        } else {
            wire.to_string()
        };
        let is_required = location == Location::Path || p.get("required").and_then(Value::as_bool).unwrap_or(false);
        let mut schema = p
            .get("schema")
            .or_else(|| first_media_schema(p.get("content")))
            .map_or(json!({}), |s| inline(doc, s, &mut Vec::new()));
        if let (Some(text), Some(obj)) = (p.get("description").and_then(Value::as_str), schema.as_object_mut()) {
            obj.entry("description").or_insert_with(|| Value::String(text.to_string()));
        }
        properties.insert(arg.clone(), schema);
        if is_required {
            required.push(Value::String(arg.clone()));
        }
        params.push(Param { arg, wire: wire.to_string(), location, required: is_required });
    }
    let (body, rest) = request_body(doc, op, &mut properties, &mut required)?;
    let mut input_schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        input_schema["required"] = Value::Array(required);
    }
    Ok(Operation {
        name,
        description: description(op),
        method: method.to_ascii_uppercase(),
        path: path.to_string(),
        params,
        body,
        rest,
        input_schema,
    })
}

/// The request body as arguments. An object schema is flattened (its
/// properties become arguments, which is how a model thinks of them) unless
/// a property's name is already a parameter's; anything else is one `body`
/// argument.
fn request_body(
    doc: &Value,
    op: &Value,
    properties: &mut Map<String, Value>,
    required: &mut Vec<Value>,
) -> Result<(Body, Rest), String> {
    let Some(request_body) = op.get("requestBody").map(|b| resolve_ref(doc, b)) else {
        return Ok((Body::None, Rest::Drop));
    };
    let body_required = request_body.get("required").and_then(Value::as_bool).unwrap_or(false);
    let content = request_body.get("content").and_then(Value::as_object);
    let json_schema =
        content.and_then(|c| c.iter().find(|(mime, _)| is_json(mime))).map(|(_, media)| media.get("schema"));
    let Some(schema) = json_schema else {
        let kinds: Vec<&str> = content.map(|c| c.keys().map(String::as_str).collect()).unwrap_or_default();
        return Err(format!("request body is not JSON ({}); only JSON bodies are supported", kinds.join(", ")));
    };
    let schema = schema.map_or(json!({}), |s| inline(doc, s, &mut Vec::new()));
    let fields = schema.get("properties").and_then(Value::as_object);
    let is_object = schema.get("type").is_none_or(|t| t == "object");
    if let Some(fields) = fields.filter(|f| is_object && !f.keys().any(|k| properties.contains_key(k))) {
        let mut names = Vec::new();
        for (name, field) in fields {
            // The server sets these (ids, timestamps); a client does not send them.
            if field.get("readOnly") == Some(&Value::Bool(true)) {
                continue;
            }
            properties.insert(name.clone(), field.clone());
            names.push(name.clone());
        }
        if body_required {
            let wanted = schema.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
            required.extend(wanted.into_iter().filter(|r| r.as_str().is_some_and(|r| names.iter().any(|n| n == r))));
        }
        return Ok((Body::Fields(names), Rest::Body));
    }
    let arg = if properties.contains_key("body") { "request_body" } else { "body" };
    let mut schema = schema;
    if let Some(obj) = schema.as_object_mut() {
        let text = request_body.get("description").and_then(Value::as_str).unwrap_or("The JSON request body.");
        obj.entry("description").or_insert_with(|| Value::String(text.to_string()));
    }
    properties.insert(arg.to_string(), schema);
    if body_required {
        required.push(Value::String(arg.to_string()));
    }
    Ok((Body::Whole { arg: arg.to_string(), required: body_required }, Rest::Drop))
}

/// Path-level parameters overridden by the operation's own of the same
/// name and location, as OpenAPI specifies.
fn merged_parameters(doc: &Value, op: &Value, shared: &[Value]) -> Vec<Value> {
    let own: Vec<Value> =
        op.get("parameters").and_then(Value::as_array).into_iter().flatten().map(|p| resolve_ref(doc, p)).collect();
    let key = |p: &Value| (p.get("name").cloned(), p.get("in").cloned());
    let mut all: Vec<Value> =
        shared.iter().map(|p| resolve_ref(doc, p)).filter(|p| !own.iter().any(|o| key(o) == key(p))).collect();
    all.extend(own);
    all
}

fn location(param: &Value) -> Option<Location> {
    match param.get("in").and_then(Value::as_str)? {
        "path" => Some(Location::Path),
        "query" => Some(Location::Query),
        "header" => Some(Location::Header),
        _ => None,
    }
}

fn location_name(location: Location) -> &'static str {
    match location {
        Location::Path => "path",
        Location::Query => "query",
        Location::Header => "header",
    }
}

fn is_json(mime: &str) -> bool {
    let mime = mime.split(';').next().unwrap_or_default().trim();
    mime == "application/json" || mime.ends_with("+json") || mime == "*/*"
}

fn first_media_schema(content: Option<&Value>) -> Option<&Value> {
    content?.as_object()?.values().next()?.get("schema")
}

/// `summary`, then `description` if it adds anything.
fn description(op: &Value) -> String {
    let summary = op.get("summary").and_then(Value::as_str).map(str::trim).unwrap_or_default();
    let details = op.get("description").and_then(Value::as_str).map(str::trim).unwrap_or_default();
    match (summary.is_empty(), details.is_empty() || details == summary) {
        (_, true) => summary.to_string(),
        (true, false) => details.to_string(),
        (false, false) => format!("{summary}\n\n{details}"),
    }
}

/// A tool name MCP accepts: `[A-Za-z0-9_.-]`, 1 to 64 characters.
pub fn tool_name(raw: &str) -> String {
    let mut name = String::new();
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' };
        // `get_/users/{id}` reads better as `get_users_id` than `get__users__id_`.
        if !(c == '_' && name.ends_with('_')) {
            name.push(c);
        }
    }
    let name = name.trim_matches('_');
    let name: String = name.chars().take(64).collect();
    if name.is_empty() { "operation".into() } else { name }
}

/// The object a `$ref` points to (one level), or the value itself.
fn resolve_ref(doc: &Value, value: &Value) -> Value {
    let mut seen = Vec::new();
    let mut current = value.clone();
    while let Some(target) = current.get("$ref").and_then(Value::as_str).map(str::to_string) {
        if seen.contains(&target) || seen.len() >= MAX_DEPTH {
            return json!({});
        }
        current = lookup(doc, &target).cloned().unwrap_or_else(|| json!({}));
        seen.push(target);
    }
    current
}

/// A schema with every local `$ref` in it replaced by what it points to.
/// `stack` holds the references being expanded, to cut cycles.
fn inline(doc: &Value, schema: &Value, stack: &mut Vec<String>) -> Value {
    match schema {
        Value::Object(obj) => {
            if let Some(target) = obj.get("$ref").and_then(Value::as_str) {
                if stack.iter().any(|s| s == target) || stack.len() >= MAX_DEPTH {
                    return json!({});
                }
                let Some(found) = lookup(doc, target) else { return json!({}) };
                stack.push(target.to_string());
                let mut resolved = inline(doc, found, stack);
                stack.pop();
                // OpenAPI 3.1 allows siblings next to `$ref` (a description); they win.
                if let Value::Object(resolved) = &mut resolved {
                    for (k, v) in obj.iter().filter(|(k, _)| *k != "$ref") {
                        resolved.insert(k.clone(), inline(doc, v, stack));
                    }
                }
                return resolved;
            }
            Value::Object(obj.iter().map(|(k, v)| (k.clone(), inline(doc, v, stack))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| inline(doc, v, stack)).collect()),
        other => other.clone(),
    }
}

/// A local reference (`#/components/schemas/User`); others are not followed.
fn lookup<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

#[cfg(test)]
mod tests;
