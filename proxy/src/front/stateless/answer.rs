//! Answers of a session-era server, reshaped for a stateless-era client:
//! `server/discover` made from the server's `initialize` result, and every
//! result given what the 2026-07-28 revision requires of it (`resultType`,
//! the server's identity in `_meta`, caching hints) and its error codes.

use crate::mcp::era;
use crate::mcp::errors::INVALID_PARAMS;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// Results the spec lets clients cache, which must carry caching hints.
const CACHEABLE: &[&str] =
    &["server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"];

/// Resource not found before 2026-07-28 (now -32602).
const OLD_RESOURCE_NOT_FOUND: i64 = -32002;

/// What a session-era server's `initialize` result says, as a
/// `DiscoverResult`. Capabilities the bridge cannot honour for stateless
/// clients are left out: resource subscriptions, and `listChanged` unless
/// `listen` (mcpd serves `subscriptions/listen` for this server).
pub fn discover(init: &RawValue, listen: bool) -> Value {
    let init: Value = serde_json::from_str(init.get()).unwrap_or_default();
    let mut capabilities = init.get("capabilities").cloned().unwrap_or_else(|| json!({}));
    if let Some(capabilities) = capabilities.as_object_mut() {
        // Tasks left the core protocol (an extension now).
        capabilities.remove("tasks");
        for kind in ["tools", "prompts", "resources"] {
            if let Some(kind) = capabilities.get_mut(kind).and_then(Value::as_object_mut) {
                kind.remove("subscribe");
                if !listen {
                    kind.remove("listChanged");
                }
            }
        }
    }
    let mut result = json!({
        "resultType": "complete",
        "supportedVersions": era::all_supported(),
        "capabilities": capabilities,
        "ttlMs": 0,
        "cacheScope": "private",
    });
    if let Some(info) = init.get("serverInfo") {
        result["_meta"] = json!({ era::SERVER_INFO_KEY: info });
    }
    if let Some(instructions) = init.get("instructions").filter(|i| i.is_string()) {
        result["instructions"] = instructions.clone();
    }
    result
}

/// The server's identity from its `initialize` result.
pub fn server_info(init: &RawValue) -> Option<Value> {
    serde_json::from_str::<Value>(init.get()).ok()?.get("serverInfo").cloned()
}

/// A response to `method` as a stateless-era client must see it, and its
/// JSON-RPC error code if it is an error. `None`: not a JSON-RPC response
/// (passed on unchanged).
/// `id`: the request being answered (a resumed call's answer carries the
/// id of the request that started it).
pub fn modernize(
    bytes: &[u8],
    method: &str,
    server_info: Option<&Value>,
    id: Option<&RawValue>,
) -> Option<(Vec<u8>, Option<i64>)> {
    let mut answer: Value = serde_json::from_slice(bytes).ok()?;
    if let Some(id) = id.and_then(|i| serde_json::from_str::<Value>(i.get()).ok()) {
        answer["id"] = id;
    }
    if let Some(error) = answer.get_mut("error").and_then(Value::as_object_mut) {
        let mut code = error.get("code").and_then(Value::as_i64);
        if code == Some(OLD_RESOURCE_NOT_FOUND) && method == "resources/read" {
            error.insert("code".into(), json!(INVALID_PARAMS));
            code = Some(INVALID_PARAMS);
        }
        return Some((answer.to_string().into_bytes(), code));
    }
    let result = answer.get_mut("result")?.as_object_mut()?;
    complete(result, method, server_info);
    Some((answer.to_string().into_bytes(), None))
}

/// Adds what a complete 2026-07-28 result carries, keeping what is there.
pub fn complete(result: &mut Map<String, Value>, method: &str, server_info: Option<&Value>) {
    result.entry("resultType").or_insert_with(|| json!("complete"));
    if let Some(info) = server_info {
        let meta = result.entry("_meta").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.entry(era::SERVER_INFO_KEY).or_insert_with(|| info.clone());
        }
    }
    if CACHEABLE.contains(&method) {
        result.entry("ttlMs").or_insert_with(|| json!(0));
        result.entry("cacheScope").or_insert_with(|| json!("private"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_comes_from_initialize() {
        let init = RawValue::from_string(
            json!({"protocolVersion":"2025-11-25","capabilities":{"tools":{"listChanged":true},"tasks":{}},
                   "serverInfo":{"name":"s","version":"1"},"instructions":"be nice"})
            .to_string(),
        )
        .unwrap();
        let d = discover(&init, false);
        assert_eq!(d["supportedVersions"][0], "2026-07-28");
        assert_eq!(d["capabilities"], json!({"tools":{}}));
        assert_eq!(d["_meta"][era::SERVER_INFO_KEY]["name"], "s");
        assert_eq!(d["instructions"], "be nice");
        assert_eq!(discover(&init, true)["capabilities"]["tools"]["listChanged"], true);
    }

    #[test]
    fn results_get_result_type_and_hints() {
        let info = json!({"name":"s","version":"1"});
        let (out, code) =
            modernize(br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#, "tools/list", Some(&info), None).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(code, None);
        assert_eq!(out["result"]["resultType"], "complete");
        assert_eq!(out["result"]["ttlMs"], 0);
        assert_eq!(out["result"]["_meta"][era::SERVER_INFO_KEY]["name"], "s");
        let error = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"nope"}}"#;
        let (out, code) = modernize(error, "resources/read", None, None).unwrap();
        assert_eq!(code, Some(-32602));
        assert!(String::from_utf8(out).unwrap().contains("-32602"));
    }
}
