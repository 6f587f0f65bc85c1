//! The translator driven as mcpd drives it, against canned HTTP answers.

use mcpd_plugin_sdk::http::testing::{requests_seen, respond};
use mcpd_plugin_sdk::http::{Request, Response};
use mcpd_plugin_sdk::{codes, testing, translator};
use serde_json::json;

use super::*;

const USERS: &str = include_str!("../tests/users.openapi.json");

fn from_config(config: Value) -> RestTranslate {
    RestTranslate::new(Config::from_json(config.to_string())).expect("valid config")
}

fn openapi_translator() -> RestTranslate {
    from_config(json!({"openapi": USERS, "headers": {"X-Api-Key": "k1"}, "forward_headers": ["authorization"]}))
}

fn call(t: &mut RestTranslate, tool: &str, args: Value) -> Result<Value, RpcError> {
    translator::dispatch(t, &testing::tool_call(tool, args))
}

fn json_response(status: u16, body: Value) -> Response {
    let headers = vec![Header { name: "content-type".into(), value: "application/json".into() }];
    Response { status, headers, body: body.to_string().into_bytes() }
}

fn last_request() -> Request {
    requests_seen().pop().expect("a request was sent")
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|h| h.name == name).map(|h| h.value.as_str())
}

#[test]
fn initialize_names_the_translator() {
    let mut t = from_config(json!({"openapi": USERS, "instructions": "Users API"}));
    let init = testing::request("initialize", json!({"protocolVersion": "2025-06-18"}));
    let result = translator::dispatch(&mut t, &init).unwrap();
    assert_eq!(result["serverInfo"]["name"], "rest-translate");
    assert_eq!(result["capabilities"], json!({"tools": {}}));
    assert_eq!(result["instructions"], "Users API");
}

#[test]
fn openapi_tools_list() {
    let mut t = openapi_translator();
    let list = translator::dispatch(&mut t, &testing::request("tools/list", json!({}))).unwrap();
    let tools = list["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["listUsers", "createUser", "getUser", "replaceTags", "delete_users_id"]);
    let get = &tools[2];
    assert_eq!(get["description"], "Fetch one user");
    assert_eq!(get["inputSchema"]["required"], json!(["id"]));
    assert_eq!(get["annotations"]["readOnlyHint"], true);
    assert!(requests_seen().is_empty(), "listing tools sends nothing");
}

#[test]
fn call_builds_the_request() {
    let mut t = openapi_translator();
    respond("http://127.0.0.1:9000/v1/users/7", json_response(200, json!({"id": 7, "name": "ada"})));
    let mut msg = testing::tool_call("getUser", json!({"id": 7, "x-request-id": "r1"}));
    msg.headers.push(Header { name: "authorization".into(), value: "Bearer client".into() });
    let result = translator::dispatch(&mut t, &msg).unwrap();
    assert_eq!(result["structuredContent"], json!({"id": 7, "name": "ada"}));
    assert_eq!(result["content"][0]["type"], "text");
    assert!(result.get("isError").is_none());
    let sent = last_request();
    assert_eq!((sent.method.as_str(), sent.url.as_str()), ("GET", "http://127.0.0.1:9000/v1/users/7"));
    assert_eq!(header(&sent, "x-api-key"), Some("k1"));
    assert_eq!(header(&sent, "authorization"), Some("Bearer client"));
    assert_eq!(header(&sent, "x-request-id"), Some("r1"));
    assert_eq!(sent.body, None);
}

#[test]
fn call_sends_a_json_body_and_query() {
    let mut t = openapi_translator();
    respond("http://127.0.0.1:9000/v1/users", json_response(201, json!({"id": 8, "name": "bob"})));
    let result = call(&mut t, "createUser", json!({"name": "bob", "address": {"city": "Oslo"}})).unwrap();
    assert_eq!(result["structuredContent"]["id"], 8);
    let sent = last_request();
    assert_eq!(sent.method, "POST");
    let body: Value = serde_json::from_slice(sent.body.as_deref().unwrap_or_default()).unwrap();
    assert_eq!(body, json!({"name": "bob", "address": {"city": "Oslo"}}));
    assert_eq!(header(&sent, "content-type"), Some("application/json"));

    respond("http://127.0.0.1:9000/v1/users?limit=2&tag=a&tag=b", json_response(200, json!([{"id": 1}])));
    let result = call(&mut t, "listUsers", json!({"limit": 2, "tag": ["a", "b"]})).unwrap();
    assert_eq!(result["content"][0]["text"], "[{\"id\":1}]");
    assert!(result.get("structuredContent").is_none(), "arrays are not structured content");
}

#[test]
fn http_errors_are_failed_calls() {
    let mut t = openapi_translator();
    respond("http://127.0.0.1:9000/v1/users/404", json_response(404, json!({"error": "no such user"})));
    let result = call(&mut t, "getUser", json!({"id": 404})).unwrap();
    assert_eq!(result["isError"], true);
    assert_eq!(result["content"][0]["text"], "HTTP 404 Not Found: {\"error\":\"no such user\"}");
    respond("http://127.0.0.1:9000/v1/users/500", Response { status: 500, headers: vec![], body: b"boom".to_vec() });
    let result = call(&mut t, "getUser", json!({"id": 500})).unwrap();
    assert_eq!(result["content"][0]["text"], "HTTP 500 Internal Server Error: boom");
    assert_eq!(result["isError"], true);
}

#[test]
fn network_errors_and_bad_arguments_are_failed_calls() {
    let mut t = openapi_translator();
    // Nothing registered for this URL: the native stand-in refuses, as mcpd
    // does for a host that is down or not allowed.
    let result = call(&mut t, "getUser", json!({"id": 1})).unwrap();
    assert_eq!(result["isError"], true);
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("GET http://127.0.0.1:9000/v1/users/1 failed: "), "{text}");
    let result = call(&mut t, "getUser", json!({})).unwrap();
    assert_eq!(result["content"][0]["text"], "missing required argument `id`");
    assert_eq!(result["isError"], true);
}

#[test]
fn protocol_errors_are_rpc_errors() {
    let mut t = openapi_translator();
    let e = call(&mut t, "dropTables", json!({})).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (codes::INVALID_PARAMS, "unknown tool: dropTables"));
    let e = translator::dispatch(&mut t, &testing::request("tools/call", json!({"arguments": {}}))).unwrap_err();
    assert_eq!(e.code, codes::INVALID_PARAMS);
    let e = translator::dispatch(&mut t, &testing::request("resources/list", json!({}))).unwrap_err();
    assert_eq!(e.code, codes::METHOD_NOT_FOUND);
    assert!(requests_seen().is_empty());
}

#[test]
fn config_tools() {
    let mut t = from_config(json!({
        "base_url": "http://127.0.0.1:9000/",
        "tools": [
            {"name": "search", "description": "Search", "path": "/search"},
            {"name": "rename", "method": "PATCH", "path": "/items/{id}", "query": ["dry_run"]},
        ],
    }));
    respond("http://127.0.0.1:9000/search?q=x", json_response(200, json!({"hits": []})));
    let result = call(&mut t, "search", json!({"q": "x"})).unwrap();
    assert_eq!(result["structuredContent"], json!({"hits": []}));
    respond("http://127.0.0.1:9000/items/a%20b?dry_run=true", json_response(200, json!({})));
    call(&mut t, "rename", json!({"id": "a b", "dry_run": true, "name": "new"})).unwrap();
    let sent = last_request();
    assert_eq!(sent.method, "PATCH");
    assert_eq!(sent.body.as_deref(), Some(&br#"{"name":"new"}"#[..]));
}

#[test]
fn openapi_url_is_fetched_on_first_use() {
    let mut t =
        from_config(json!({"openapi_url": "http://127.0.0.1:9000/openapi.json", "base_url": "http://127.0.0.1:9000"}));
    // Not there yet: the request fails, and the next one tries again.
    let e = translator::dispatch(&mut t, &testing::request("tools/list", json!({}))).unwrap_err();
    assert_eq!(e.code, codes::INTERNAL_ERROR);
    let doc: Value = serde_json::from_str(USERS).unwrap();
    respond("http://127.0.0.1:9000/openapi.json", json_response(200, doc));
    let list = translator::dispatch(&mut t, &testing::request("tools/list", json!({}))).unwrap();
    assert_eq!(list["tools"].as_array().map(Vec::len), Some(5));
    respond("http://127.0.0.1:9000/users/3", json_response(200, json!({"id": 3})));
    assert_eq!(call(&mut t, "getUser", json!({"id": 3})).unwrap()["structuredContent"]["id"], 3);
}

#[test]
fn bad_configs_are_explained() {
    let cases = [
        (json!({}), "`base_url` is missing"),
        (json!({"openapi": "{not json"}), "openapi: "),
        (json!({"openapi": 3}), "JSON text or as a table"),
        (json!({"openapi": USERS, "openapi_url": "http://h/o.json"}), "not both"),
        (json!({"base_url": "http://h", "tools": [{"name": "x"}]}), "missing field `path`"),
        (json!({"base_url": "http://h", "header": {}}), "unknown field `header`"),
    ];
    for (config, want) in cases {
        let e = RestTranslate::new(Config::from_json(config.to_string())).err().expect("an error");
        assert!(e.to_string().contains(want), "{config}: {e}");
    }
}
