//! Edge safety: DNS-rebinding protection. mcpd checks `Host` and `Origin`
//! on every MCP request (POST, GET, DELETE) against the route's
//! `allowed_hosts` / `allowed_origins` (loopback names by default on a
//! loopback listener) and answers 403 with a JSON-RPC error, before any
//! server process starts, on the legacy `/sse` and `/message` endpoints
//! too. Health stays reachable. Idle reaping of sessions
//! a client never DELETEs is `failures::idle_sessions_are_reaped_…` and
//! `conformance::every_scenario_…` (the suite never DELETEs).

use crate::common::*;
use serde_json::Value;

const DEFAULTS: &str = r#"
[server.fx]
command = "{server}"
port = {port}
"#;

/// POSTs `initialize` with these headers: (status, JSON body).
async fn initialize_with(mcpd: &Mcpd, headers: &[(&str, &str)]) -> (u16, Value) {
    let raw = Raw::new(mcpd.url("/mcp"));
    let mut request = raw.post(None, INIT.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    // A 200 may be SSE; only refusals are inspected, and they are JSON.
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn assert_refused(status: u16, body: &Value, header: &str) {
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], -32600, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.starts_with(header) && message.contains("not allowed"), "{body}");
}

#[tokio::test]
async fn a_loopback_route_refuses_foreign_hosts_and_origins_by_default() {
    let mcpd = Mcpd::start(DEFAULTS, &["/health"]).await;
    let local = format!("127.0.0.1:{}", mcpd.port);

    let (status, body) = initialize_with(&mcpd, &[("origin", "http://evil.example.com")]).await;
    assert_refused(status, &body, "Origin");
    let (status, body) = initialize_with(&mcpd, &[("host", "evil.example.com")]).await;
    assert_refused(status, &body, "Host");
    // The rebinding attack itself: both name the attacker's site.
    let evil = [("host", "evil.example.com"), ("origin", "http://evil.example.com")];
    let (status, body) = initialize_with(&mcpd, &evil).await;
    assert_refused(status, &body, "Host");

    // Local pages and non-browser clients (no Origin) are served.
    for origin in [format!("http://{local}"), "http://localhost:5173".into(), "https://[::1]".into()] {
        let (status, _) = initialize_with(&mcpd, &[("origin", &origin)]).await;
        assert_eq!(status, 200, "{origin}");
    }
    let (status, _) = initialize_with(&mcpd, &[("host", &format!("localhost:{}", mcpd.port))]).await;
    assert_eq!(status, 200);

    // GET and DELETE of a live session are checked too, and a refusal
    // leaves the session alone.
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let foreign = |request: reqwest::RequestBuilder| {
        request.header("mcp-session-id", &session).header("origin", "http://evil.example.com").send()
    };
    let get = foreign(raw.http.get(&raw.url).header("accept", "text/event-stream")).await.expect("GET");
    assert_eq!(get.status(), 403);
    let delete = foreign(raw.http.delete(&raw.url)).await.expect("DELETE");
    assert_eq!(delete.status(), 403);
    let (status, _) = raw.rpc(Some(&session), tool_call(1, "echo", serde_json::json!({"text": "still here"}))).await;
    assert_eq!(status, 200, "the refused DELETE did not end the session");

    // Health is not an MCP endpoint: monitors may use any name.
    let health = raw.http.get(mcpd.url("/health")).header("host", "monitor.internal").send().await.expect("GET");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn configured_allow_lists_replace_the_defaults() {
    let config = r#"
[server.fx]
command = "{server}"
port = {port}
[server.fx.http]
allowed_hosts = ["mcp.example.com", "127.0.0.1"]
allowed_origins = ["https://app.example.com"]
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let (status, _) =
        initialize_with(&mcpd, &[("host", "mcp.example.com"), ("origin", "https://app.example.com")]).await;
    assert_eq!(status, 200);
    let (status, body) = initialize_with(&mcpd, &[("host", &format!("localhost:{}", mcpd.port))]).await;
    assert_refused(status, &body, "Host");
    let (status, body) = initialize_with(&mcpd, &[("origin", &format!("http://127.0.0.1:{}", mcpd.port))]).await;
    assert_refused(status, &body, "Origin");
}

#[test]
fn a_bad_pattern_is_a_config_error_naming_file_line_and_key() {
    let (ok, text, path) =
        check_config("[server.fx]\ncommand = \"x\"\n[server.fx.http]\nallowed_origins = [\"https://*.example.com\"]\n");
    assert!(!ok);
    let expected = format!(
        "{}:4:20: server.fx.http.allowed_origins: \"https://*.example.com\": wildcards are not supported",
        path.display()
    );
    assert!(text.contains(&expected), "{text}");
}

#[tokio::test]
async fn the_legacy_sse_endpoints_are_checked_too() {
    let config = r#"
[server.fx]
command = "{server}"
port = {port}
transport = ["streamable-http", "sse"]
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let http = reqwest::Client::new();
    let open = |origin: Option<&str>| {
        let mut request = http.get(mcpd.url("/sse")).header("accept", "text/event-stream");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let refused = open(Some("http://evil.example.com")).await.expect("GET /sse");
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.expect("JSON-RPC error");
    assert_refused(403, &body, "Origin");
    // The same request from a local page opens the stream.
    assert_eq!(open(Some("http://localhost:3000")).await.expect("GET /sse").status(), 200);
    let message = http
        .post(mcpd.url("/message?sessionId=whatever"))
        .header("content-type", "application/json")
        .header("host", "evil.example.com")
        .body(INIT)
        .send()
        .await
        .expect("POST /message");
    assert_eq!(message.status(), 403);
}
