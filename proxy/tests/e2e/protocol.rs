//! The Streamable HTTP rules a gateway must enforce, checked on the wire.

use crate::common::*;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;

const SESSIONS: &str = r#"
[server.fx]
command = "{server}"
port = {port}
"#;

async fn start() -> (Mcpd, Raw) {
    let mcpd = Mcpd::start(SESSIONS, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    (mcpd, raw)
}

#[tokio::test]
async fn session_lifecycle_400_404_and_delete() {
    let (_mcpd, raw) = start().await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});

    let (status, body) = raw.rpc(None, list.clone()).await;
    assert_eq!(status, 400, "a request without Mcp-Session-Id is a bad request");
    assert_eq!(body[0]["error"]["code"], -32600);

    let (status, _) = raw.rpc(Some("no-such-session"), list.clone()).await;
    assert_eq!(status, 404, "an unknown session is not found");

    let session = raw.initialize().await;
    let (status, body) = raw.rpc(Some(&session), list.clone()).await;
    assert_eq!(status, 200);
    assert!(body[0]["result"]["tools"].is_array());

    let deleted = raw.http.delete(&raw.url).header("mcp-session-id", &session).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    let (status, body) = raw.rpc(Some(&session), list).await;
    assert_eq!(status, 404, "a deleted session is gone");
    assert_eq!(body[0]["id"], 1);
}

#[tokio::test]
async fn protocol_version_header_is_checked() {
    let (_mcpd, raw) = start().await;
    let session = raw.initialize().await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();
    for (version, expected) in [("2025-06-18", 200), ("2025-03-26", 200), ("1999-01-01", 400)] {
        let response =
            raw.post(Some(&session), list.clone()).header("mcp-protocol-version", version).send().await.unwrap();
        assert_eq!(response.status(), expected, "MCP-Protocol-Version {version}");
    }
}

#[tokio::test]
async fn content_type_accept_and_json_rpc_errors() {
    let (_mcpd, raw) = start().await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();

    let wrong_type = raw.http.post(&raw.url).header("content-type", "text/plain").header("accept", ACCEPT_BOTH);
    assert_eq!(wrong_type.body(ping.clone()).send().await.unwrap().status(), 415);

    let json_only =
        raw.http.post(&raw.url).header("content-type", "application/json").header("accept", "application/json");
    assert_eq!(json_only.body(ping.clone()).send().await.unwrap().status(), 406);

    let session = raw.initialize().await;
    let response = raw.post(Some(&session), "{not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700, "parse error");
    assert!(body["id"].is_null());

    let response = raw.post(Some(&session), r#"{"id":1,"method":"ping"}"#).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600, "invalid request: no jsonrpc member");

    let response = raw.post(Some(&session), "[]").send().await.unwrap();
    assert_eq!(response.status(), 400, "batches are refused");

    let put = raw.http.put(&raw.url).send().await.unwrap();
    assert_eq!(put.status(), 405);

    let (status, body) = raw.rpc(Some(&session), json!({"jsonrpc": "2.0", "id": 9, "method": "no/such"})).await;
    assert_eq!(status, 200, "an unknown method is the server's JSON-RPC error");
    assert_eq!(body[0]["error"]["code"], -32601);
}

#[tokio::test]
async fn notifications_get_202_and_plain_requests_get_json() {
    let (_mcpd, raw) = start().await;
    let session = raw.initialize().await;
    let (status, body) =
        raw.rpc(Some(&session), json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})).await;
    assert_eq!((status, body.len()), (202, 0));

    let response =
        raw.post(Some(&session), tool_call(1, "echo", json!({"text": "x"})).to_string()).send().await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "an answer with nothing before it is plain JSON"
    );
}

#[tokio::test]
async fn notifications_before_the_answer_turn_the_response_into_sse() {
    let (_mcpd, raw) = start().await;
    let session = raw.initialize().await;
    let mut request = tool_call(7, "progress", json!({"steps": 2, "interval_ms": 1}));
    request["params"]["_meta"] = json!({"progressToken": "client-token"});
    let response = raw.post(Some(&session), request.to_string()).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = sse_data(&response.text().await.unwrap());
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0]["params"]["progressToken"], "client-token", "the client's own token comes back");
    assert_eq!(events[2]["id"], 7, "the answer carries the client's own id");
}

#[tokio::test]
async fn server_sends_notifications_before_answering_initialize() {
    let config = r#"
[server.fx]
command = "{server}"
args = ["--notify-before-init"]
port = {port}
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let response = raw.post(None, INIT).send().await.unwrap();
    assert!(response.headers().contains_key("mcp-session-id"));
    let events = sse_data(&response.text().await.unwrap());
    assert_eq!(events[0]["method"], "notifications/message", "the early notification is kept: {events:?}");
    assert_eq!(events[1]["result"]["serverInfo"]["name"], "mcpd-test-server");
    // And a real client copes with it.
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    call(&client, "echo", json!({"text": "ok"})).await.expect("works after an early notification");
}

#[tokio::test]
async fn get_stream_carries_server_messages_and_is_unique() {
    let (_mcpd, raw) = start().await;
    let session = raw.initialize().await;
    let open =
        || raw.http.get(&raw.url).header("accept", "text/event-stream").header("mcp-session-id", &session).send();
    let stream = open().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    assert_eq!(open().await.unwrap().status(), 409, "one GET stream per session");

    // A notification sent when no request is in flight takes the GET stream.
    let later = tool_call(3, "later", json!({"ms": 50, "message": "to the stream"}));
    let (status, body) = raw.rpc(Some(&session), later).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), 1, "the POST answer carries only the result: {body:?}");

    let mut chunks = stream.bytes_stream();
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = chunks.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("to the stream") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "GET stream got: {seen}");

    let no_accept = raw
        .http
        .get(&raw.url)
        .header("accept", "application/json")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(no_accept.status(), 406);
}

#[tokio::test]
async fn pooled_servers_have_no_sessions() {
    let config = r#"
[server.fx]
command = "{server}"
port = {port}
[server.fx.session]
enabled = false
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let response = raw.post(None, INIT).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(!response.headers().contains_key("mcp-session-id"), "no session is handed out");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(body["id"], 0);

    let (status, body) = raw.rpc(None, tool_call(5, "echo", json!({"text": "stateless"}))).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["result"]["content"][0]["text"], "stateless");

    let get = raw.http.get(&raw.url).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(get.status(), 405, "no GET stream without sessions");
    assert_eq!(raw.http.delete(&raw.url).send().await.unwrap().status(), 405);
}

#[tokio::test]
async fn health_and_unknown_paths() {
    let (mcpd, raw) = start().await;
    let health: serde_json::Value = raw.http.get(mcpd.url("/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({"status": "ok", "server": "fx", "transport": "streamable-http"}));
    assert_eq!(raw.http.get(mcpd.url("/nope")).send().await.unwrap().status(), 404);
}
