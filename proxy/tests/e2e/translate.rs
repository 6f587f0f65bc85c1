//! Translators: a route served by the rest-translate component instead of
//! an MCP server, in front of a small REST API this test runs on loopback.

use crate::common::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const OPENAPI: &str = include_str!("../../../plugins/rest-translate/tests/users.openapi.json");

/// A request the REST API received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A REST API on a loopback port: users 7 exists, 404 does not, `/boom`
/// fails, `POST /users` creates user 8, `/openapi.json` describes it all.
async fn rest_api() -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the REST API");
    let port = listener.local_addr().expect("its address").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else { return };
                let (status, body) = answer(&request);
                log.lock().unwrap().push(request);
                let reason = match status {
                    200 => "OK",
                    201 => "Created",
                    404 => "Not Found",
                    _ => "Internal Server Error",
                };
                let content_type = if body.starts_with('{') { "application/json" } else { "text/plain" };
                let head = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, seen)
}

fn answer(request: &Seen) -> (u16, String) {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/openapi.json") => (200, OPENAPI.to_string()),
        ("GET", "/v1/users/7") => (200, json!({"id": 7, "name": "ada"}).to_string()),
        ("GET", "/v1/users/404") => (404, json!({"error": "no such user"}).to_string()),
        ("POST", "/v1/users") => {
            let mut user: Value = serde_json::from_str(&request.body).unwrap_or_default();
            user["id"] = json!(8);
            (201, user.to_string())
        }
        _ => (500, "boom".to_string()),
    }
}

/// Reads one HTTP/1.1 request (headers, then `content-length` bytes).
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let (method, path) = (start.next()?.to_string(), start.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen { method, path, headers, body: String::from_utf8_lossy(&body).to_string() })
}

/// Three routes on one listener: the API from its OpenAPI document, tools
/// from the config, and the same API with its host not allowed.
fn config(api: u16) -> String {
    let wasm = "{plugins}/mcpd_rest_translate.wasm";
    format!(
        r#"
[gateway]
listen = "127.0.0.1:{{port}}"

[server.api]
transport = ["streamable-http", "sse"]
translator = {{ path = "{wasm}", allow_hosts = ["127.0.0.1:{api}"], config = {{ openapi_url = "http://127.0.0.1:{api}/openapi.json", base_url = "http://127.0.0.1:{api}/v1", headers = {{ "x-api-key" = "k1" }} }} }}

[server.cfg]
translator = {{ path = "{wasm}", allow_hosts = ["127.0.0.1:{api}"], config = {{ base_url = "http://127.0.0.1:{api}", tools = [
    {{ name = "boom", description = "Always fails", path = "/boom" }},
] }} }}

[server.closed]
translator = {{ path = "{wasm}", config = {{ base_url = "http://127.0.0.1:{api}", tools = [
    {{ name = "boom", path = "/boom" }},
] }} }}
"#
    )
}

#[tokio::test]
async fn rest_api_served_as_mcp_tools() {
    let (api, seen) = rest_api().await;
    let mcpd = Mcpd::start(&config(api), &["/api/health", "/cfg/health", "/closed/health"]).await;
    let (client, _) = connect(&mcpd.url("/api/mcp")).await;
    let info = client.peer_info().map(|i| serde_json::to_value(i).unwrap_or_default()).unwrap_or_default();
    assert_eq!(info.pointer("/serverInfo/name"), Some(&json!("rest-translate")), "{info}");

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["listUsers", "createUser", "getUser", "replaceTags", "delete_users_id"]);
    let get_user = serde_json::to_value(&tools[2]).unwrap_or_default();
    assert_eq!(get_user["inputSchema"]["required"], json!(["id"]));

    let result = call(&client, "getUser", json!({"id": 7})).await.expect("tools/call");
    assert_eq!(result["structuredContent"], json!({"id": 7, "name": "ada"}), "{result}");
    assert_ne!(result["isError"], json!(true));
    let request = seen.lock().unwrap().last().cloned().expect("the API saw the call");
    assert_eq!((request.method.as_str(), request.path.as_str()), ("GET", "/v1/users/7"));
    assert_eq!(request.header("x-api-key"), Some("k1"));

    let result = call(&client, "createUser", json!({"name": "bob"})).await.expect("tools/call");
    assert_eq!(result["structuredContent"], json!({"id": 8, "name": "bob"}), "{result}");
    let request = seen.lock().unwrap().last().cloned().expect("the API saw the call");
    assert_eq!(serde_json::from_str::<Value>(&request.body).ok(), Some(json!({"name": "bob"})));

    let result = call(&client, "getUser", json!({"id": 404})).await.expect("a 404 is a result");
    assert_eq!(result["isError"], true);
    assert_eq!(text_of(&result), r#"HTTP 404 Not Found: {"error":"no such user"}"#);

    match call(&client, "dropTables", json!({})).await {
        Err(rmcp::ServiceError::McpError(error)) => {
            assert_eq!((error.code.0, error.message.as_ref()), (-32602, "unknown tool: dropTables"));
        }
        other => panic!("an unknown tool is a JSON-RPC error, got {other:?}"),
    }
    client.cancel().await.ok();
}

#[tokio::test]
async fn api_failures_are_tool_errors() {
    let (api, _) = rest_api().await;
    let mcpd = Mcpd::start(&config(api), &["/api/health", "/cfg/health", "/closed/health"]).await;

    let (client, _) = connect(&mcpd.url("/cfg/mcp")).await;
    let result = call(&client, "boom", json!({})).await.expect("a 500 is a result");
    assert_eq!(result["isError"], true);
    assert_eq!(text_of(&result), "HTTP 500 Internal Server Error: boom");
    client.cancel().await.ok();

    // No `allow_hosts`: mcpd refuses the request, the model is told.
    let (client, _) = connect(&mcpd.url("/closed/mcp")).await;
    let result = call(&client, "boom", json!({})).await.expect("a refusal is a result");
    assert_eq!(result["isError"], true);
    let text = text_of(&result);
    assert!(text.starts_with(&format!("GET http://127.0.0.1:{api}/boom failed: ")), "{text}");
    client.cancel().await.ok();
}

#[tokio::test]
async fn a_translator_route_serves_legacy_sse_clients() {
    let (api, _) = rest_api().await;
    let mcpd = Mcpd::start(&config(api), &["/api/health", "/cfg/health", "/closed/health"]).await;
    let mut legacy = crate::sse_client::Legacy::open(&mcpd.url(""), "/api/sse").await;
    let init = legacy.initialize().await;
    assert_eq!(init["result"]["serverInfo"]["name"], "rest-translate", "{init}");
    let seen = legacy.request(1, "tools/call", json!({"name": "getUser", "arguments": {"id": 7}})).await;
    assert_eq!(seen[0]["result"]["structuredContent"], json!({"id": 7, "name": "ada"}), "{seen:?}");
}
