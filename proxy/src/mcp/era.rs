//! The stateless era (protocol 2026-07-28) on the wire: which era a POST
//! belongs to, and the checks the spec puts on every stateless request
//! (its `_meta` envelope, `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`
//! and `Mcp-Param-*` headers mirrored from the body). Pure: no I/O; what
//! mcpd does with a request that passed is `front::stateless`'s business.

use super::errors::{INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR};
use super::jsonrpc::Message;
use http::HeaderMap;
use serde_json::Value;
use serde_json::value::RawValue;

/// Stateless-era revisions mcpd serves, newest first.
pub const MODERN: &[&str] = &["2026-07-28"];

/// `HeaderMismatch`: a mirrored header is missing or disagrees with the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// `MissingRequiredClientCapability`: serving needs a capability `_meta` lacks.
pub const MISSING_CAPABILITY: i64 = -32021;
/// `UnsupportedProtocolVersion`: `data` lists what is supported.
pub const UNSUPPORTED_VERSION: i64 = -32022;

pub const VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
pub const CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
pub const LOG_LEVEL_KEY: &str = "io.modelcontextprotocol/logLevel";
pub const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";
pub const SUBSCRIPTION_KEY: &str = "io.modelcontextprotocol/subscriptionId";

const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
const PARAM_PREFIX: &str = "mcp-param-";

/// Every revision mcpd speaks, stateless first: what `server/discover`
/// advertises and what an unsupported version error lists.
pub fn all_supported() -> Vec<&'static str> {
    MODERN.iter().chain(super::version::SUPPORTED).copied().collect()
}

/// Whether a POST is a stateless-era message: its `MCP-Protocol-Version`
/// names no session-era revision (so a 2026-07-28 client, and one with a
/// version nobody knows, get the stateless era's answers), or it has no
/// such header and no session but its `_meta` names a protocol version.
pub fn is_stateless(protocol_header: Option<&str>, has_session: bool, params: Option<&RawValue>) -> bool {
    match protocol_header {
        Some(version) => !super::version::is_supported(version),
        None => !has_session && params.is_some_and(|p| p.get().contains(VERSION_KEY)),
    }
}

/// A request refused by the era's checks: its JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl Refusal {
    fn new(code: i64, message: impl Into<String>) -> Refusal {
        Refusal { code, message: message.into(), data: None }
    }

    fn mismatch(message: impl Into<String>) -> Refusal {
        Refusal::new(HEADER_MISMATCH, message)
    }

    /// The error response for request `id`.
    pub fn body(&self, id: Option<&RawValue>) -> Vec<u8> {
        let mut error = serde_json::json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        let id: Value = id.and_then(|i| serde_json::from_str(i.get()).ok()).unwrap_or(Value::Null);
        serde_json::json!({"jsonrpc": "2.0", "id": id, "error": error}).to_string().into_bytes()
    }
}

/// The HTTP status the stateless era gives a JSON-RPC error code.
pub fn status_of(code: i64) -> u16 {
    match code {
        METHOD_NOT_FOUND => 404,
        PARSE_ERROR | INVALID_REQUEST | INVALID_PARAMS | HEADER_MISMATCH | MISSING_CAPABILITY | UNSUPPORTED_VERSION => {
            400
        }
        _ => 200,
    }
}

/// What a stateless request says about itself in `_meta`.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub version: String,
    pub capabilities: Value,
    pub log_level: Option<String>,
    /// The request's params (an object), parsed once for the checks.
    pub params: Value,
}

impl Envelope {
    /// Whether the client declared capability `name` (`sampling`, `roots`…).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.get(name).is_some_and(|c| !c.is_null())
    }
}

/// Runs the spec's checks, first failure wins: the `_meta` envelope
/// (-32602), the mirrored headers (-32020), the version (-32022).
pub fn check(message: &Message, headers: &HeaderMap) -> Result<Envelope, Refusal> {
    let params: Value = message.params.and_then(|p| serde_json::from_str(p.get()).ok()).unwrap_or(Value::Null);
    let Some(meta) = params.get("_meta").and_then(Value::as_object) else {
        let text = format!("params._meta must be an object carrying {VERSION_KEY:?} and {CAPABILITIES_KEY:?}");
        return Err(Refusal::new(INVALID_PARAMS, text));
    };
    let missing: Vec<&str> = [VERSION_KEY, CAPABILITIES_KEY].into_iter().filter(|k| !meta.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(Refusal::new(INVALID_PARAMS, format!("params._meta lacks {}", missing.join(" and "))));
    }
    let version = meta.get(VERSION_KEY).cloned().unwrap_or(Value::Null);
    let capabilities = meta.get(CAPABILITIES_KEY).cloned().unwrap_or(Value::Null);
    let log_level = meta.get(LOG_LEVEL_KEY).and_then(Value::as_str).map(str::to_owned);

    for name in [super::PROTOCOL_HEADER, METHOD_HEADER, NAME_HEADER] {
        if headers.get_all(name).iter().count() > 1 {
            return Err(Refusal::mismatch(format!("the {name} header appears more than once")));
        }
    }
    match single(headers, super::PROTOCOL_HEADER) {
        Some(header) if Some(header) == version.as_str() => {}
        Some(header) => {
            return Err(Refusal::mismatch(format!(
                "MCP-Protocol-Version header {header:?} does not match _meta protocol version {version}"
            )));
        }
        None => return Err(Refusal::mismatch("the MCP-Protocol-Version header is missing")),
    }
    let method = message.method();
    match single(headers, METHOD_HEADER) {
        Some(header) if header == method => {}
        Some(header) => {
            return Err(Refusal::mismatch(format!(
                "Mcp-Method header {header:?} does not match the body's method {method:?}"
            )));
        }
        None => return Err(Refusal::mismatch("the Mcp-Method header is missing")),
    }
    if let Some(field) = named_by(method)
        && let Some(body) = params.get(field).and_then(Value::as_str)
    {
        match headers.get(NAME_HEADER).map(|v| decode(v.as_bytes())) {
            Some(Some(header)) if header == body => {}
            Some(_) => {
                return Err(Refusal::mismatch(format!("Mcp-Name header does not match the body's {field} {body:?}")));
            }
            None => return Err(Refusal::mismatch(format!("the Mcp-Name header is missing ({method} needs it)"))),
        }
    }

    let Some(version) = version.as_str() else {
        return Err(Refusal::new(INVALID_PARAMS, "the _meta protocol version must be a string"));
    };
    if !MODERN.contains(&version) {
        return Err(unsupported(version));
    }
    Ok(Envelope { version: version.to_owned(), capabilities, log_level, params })
}

/// The -32022 error for a revision mcpd does not serve statelessly.
pub fn unsupported(requested: &str) -> Refusal {
    Refusal {
        code: UNSUPPORTED_VERSION,
        message: "Unsupported protocol version".into(),
        data: Some(serde_json::json!({"supported": all_supported(), "requested": requested})),
    }
}

/// The body field `Mcp-Name` mirrors for `method`.
fn named_by(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A header value as the client meant it: `=?base64?…?=` decoded (`None`
/// when that encoding is broken), else the value itself (`None` when it is
/// not visible ASCII).
pub fn decode(value: &[u8]) -> Option<String> {
    use base64::Engine;
    let text = std::str::from_utf8(value).ok()?;
    if !text.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        return None;
    }
    match text.strip_prefix("=?base64?").and_then(|t| t.strip_suffix("?=")) {
        Some(payload) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(payload).ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(text.to_owned()),
    }
}

/// Checks a `tools/call`'s `Mcp-Param-*` headers against its arguments,
/// as the tool's `inputSchema` annotates them (`x-mcp-header`): present
/// together and equal, or absent together.
pub fn check_params(input_schema: &Value, arguments: &Value, headers: &HeaderMap) -> Result<(), Refusal> {
    for (path, token, kind) in annotated(input_schema) {
        let name = format!("{PARAM_PREFIX}{}", token.to_ascii_lowercase());
        let mut values = headers.get_all(name.as_str()).iter();
        let (raw, twice) = (values.next(), values.next().is_some());
        let shown = format!("Mcp-Param-{token}");
        if twice {
            return Err(Refusal::mismatch(format!("the {shown} header appears more than once")));
        }
        let value = path.iter().try_fold(arguments, |node, key| node.get(key)).filter(|v| !v.is_null());
        let rendered = value.and_then(render);
        match (raw, value, rendered) {
            (None, None, _) | (None, Some(_), None) => {}
            (Some(_), None, _) => {
                return Err(Refusal::mismatch(format!("{shown} header is present but its argument is absent")));
            }
            (Some(_), Some(_), None) => {
                return Err(Refusal::mismatch(format!("{shown} header does not match its argument")));
            }
            (None, Some(_), Some(_)) => {
                return Err(Refusal::mismatch(format!("{shown} header is missing but its argument is present")));
            }
            (Some(raw), Some(value), Some(rendered)) => {
                let Some(decoded) = decode(raw.as_bytes()) else {
                    return Err(Refusal::mismatch(format!("{shown} header carries an invalid value")));
                };
                if !param_matches(kind, value, &rendered, &decoded) {
                    return Err(Refusal::mismatch(format!("{shown} header does not match its argument")));
                }
            }
        }
    }
    Ok(())
}

/// `(property path, x-mcp-header token, declared type)` for each annotated
/// property reachable from the schema's root through `properties` only.
fn annotated(schema: &Value) -> Vec<(Vec<String>, String, Option<String>)> {
    let mut found = Vec::new();
    let mut stack: Vec<(Vec<String>, &Value)> = vec![(Vec::new(), schema)];
    while let Some((path, node)) = stack.pop() {
        if !path.is_empty()
            && let Some(token) = node.get("x-mcp-header").and_then(Value::as_str)
        {
            found.push((path.clone(), token.to_owned(), node.get("type").and_then(Value::as_str).map(str::to_owned)));
        }
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            for (key, sub) in properties {
                let mut deeper = path.clone();
                deeper.push(key.clone());
                stack.push((deeper, sub));
            }
        }
    }
    found
}

/// A scalar as a client mirrors it into a header; `None` for the rest.
fn render(value: &Value) -> Option<String> {
    match value {
        Value::Bool(b) => Some(b.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Integers compare numerically (`42` matches `42.0`); the rest as text.
fn param_matches(kind: Option<String>, value: &Value, rendered: &str, decoded: &str) -> bool {
    if kind.as_deref() == Some("integer")
        && let Some(number) = value.as_f64().filter(|n| n.fract() == 0.0)
    {
        let canonical = decoded.strip_prefix('-').unwrap_or(decoded);
        let (whole, fraction) = canonical.split_once('.').unwrap_or((canonical, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if digits(whole) && (fraction.is_empty() || digits(fraction)) {
            return fraction.bytes().all(|b| b == b'0') && decoded.parse::<f64>().ok() == Some(number);
        }
    }
    decoded == rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    }

    const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

    fn call(body: &str, pairs: &[(&str, &str)]) -> Result<Envelope, Refusal> {
        let message = Message::parse(body.as_bytes()).unwrap();
        check(&message, &headers(pairs))
    }

    #[test]
    fn chooses_the_era_per_request() {
        let meta = RawValue::from_string(format!("{{{META}}}")).unwrap();
        assert!(is_stateless(Some("2026-07-28"), false, None));
        assert!(is_stateless(Some("v999"), false, None));
        assert!(!is_stateless(Some("2025-11-25"), false, Some(&meta)));
        assert!(is_stateless(None, false, Some(&meta)));
        assert!(!is_stateless(None, true, Some(&meta)));
        assert!(!is_stateless(None, false, None));
    }

    #[test]
    fn checks_envelope_then_headers_then_version() {
        let v = ("mcp-protocol-version", "2026-07-28");
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo",{META}}}}}"#);
        assert!(call(&body, &[v, ("mcp-method", "tools/call"), ("mcp-name", "echo")]).is_ok());
        let encoded = ("mcp-name", "=?base64?ZWNobw==?=");
        assert!(call(&body, &[v, ("mcp-method", "tools/call"), encoded]).is_ok());
        let wrong = call(&body, &[v, ("mcp-method", "tools/call"), ("mcp-name", "other")]).unwrap_err();
        assert_eq!(wrong.code, HEADER_MISMATCH);
        assert_eq!(call(&body, &[v, ("mcp-method", "tools/call")]).unwrap_err().code, HEADER_MISMATCH);
        assert_eq!(call(&body, &[v, ("mcp-method", "tools/list")]).unwrap_err().code, HEADER_MISMATCH);
        let no_meta = r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}"#;
        assert_eq!(call(no_meta, &[v, ("mcp-method", "server/discover")]).unwrap_err().code, INVALID_PARAMS);
        let old = body.replace("2026-07-28", "v999");
        let refused =
            call(&old, &[("mcp-protocol-version", "v999"), ("mcp-method", "tools/call"), ("mcp-name", "echo")]);
        let refused = refused.unwrap_err();
        assert_eq!(refused.code, UNSUPPORTED_VERSION);
        assert_eq!(refused.data.unwrap()["requested"], "v999");
        assert_eq!(call(&old, &[v, ("mcp-method", "tools/call")]).unwrap_err().code, HEADER_MISMATCH);
    }

    #[test]
    fn checks_param_headers_against_arguments() {
        let schema = serde_json::json!({"type":"object","properties":{
            "region":{"type":"string","x-mcp-header":"Region"},
            "n":{"type":"integer","x-mcp-header":"N"},
            "nested":{"type":"object","properties":{"flag":{"type":"boolean","x-mcp-header":"Flag"}}}}});
        let args = serde_json::json!({"region":"us-west1","n":42,"nested":{"flag":true}});
        let good = headers(&[("mcp-param-region", "us-west1"), ("mcp-param-n", "42.0"), ("mcp-param-flag", "true")]);
        assert!(check_params(&schema, &args, &good).is_ok());
        let bad = headers(&[("mcp-param-region", "eu"), ("mcp-param-n", "42"), ("mcp-param-flag", "true")]);
        assert_eq!(check_params(&schema, &args, &bad).unwrap_err().code, HEADER_MISMATCH);
        let missing = headers(&[("mcp-param-n", "42"), ("mcp-param-flag", "true")]);
        assert!(check_params(&schema, &args, &missing).is_err());
        let extra = headers(&[("mcp-param-region", "x")]);
        assert!(check_params(&schema, &serde_json::json!({}), &extra).is_err());
        let b64 = headers(&[("mcp-param-region", "=?base64?SGVsbG8sIOS4lueVjA==?=")]);
        let only =
            serde_json::json!({"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}});
        assert!(check_params(&only, &serde_json::json!({"region":"Hello, 世界"}), &b64).is_ok());
    }
}
