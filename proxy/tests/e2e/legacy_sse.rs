//! Legacy HTTP+SSE (2024-11-05) towards clients, on the wire: the
//! `endpoint` event, 202 on POST, answers and server messages as
//! `event: message`, the spec's 400/404s, the connection as the session
//! (closing it stops its process), Streamable HTTP on the same route at the
//! same time, every upstream kind, and plugins' hooks on these messages.

use crate::common::*;
use crate::http_upstream::Upstream;
use crate::sse_client::Legacy;
use serde_json::{Value, json};
use std::time::Duration;

const BOTH: &str = r#"
[gateway]
listen = "127.0.0.1:{port}"
[server.fx]
command = "{server}"
transport = ["streamable-http", "sse"]
"#;

/// The server processes mcpd runs right now.
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        found.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()).filter(|p| process_alive(*p)));
    }
    found
}

fn text(answer: &Value) -> String {
    text_of(&answer["result"])
}

#[tokio::test]
async fn legacy_clients_get_an_endpoint_202s_and_answers_on_the_stream() {
    let mcpd = Mcpd::start(BOTH, &["/fx/health"]).await;
    let health: Value = reqwest::get(mcpd.url("/fx/health")).await.unwrap().json().await.unwrap();
    assert_eq!(health["transport"], "streamable-http,sse", "{health}");
    let origin = mcpd.url("");
    let mut legacy = Legacy::open(&origin, "/fx/sse").await;
    assert!(
        legacy.endpoint.starts_with("/fx/message?sessionId=") && legacy.session_id().len() >= 32,
        "the endpoint is the route's message path with an unguessable session id: {:?}",
        legacy.endpoint
    );
    let content_type = legacy.stream.headers.get("content-type").unwrap().to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");

    // Before initialize there is no session upstream.
    let early = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"});
    assert_eq!(legacy.post(&early).await, 400);

    let init = legacy.initialize().await;
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05", "the server speaks the client's revision");
    let tools = legacy.request(1, "tools/list", json!({})).await;
    assert!(tools[0]["result"]["tools"].as_array().is_some_and(|t| t.iter().any(|t| t["name"] == "echo")));

    // Progress notifications arrive on the stream before the answer.
    let params = json!({"name": "progress", "arguments": {"steps": 3}, "_meta": {"progressToken": "p1"}});
    let seen = legacy.request(2, "tools/call", params).await;
    let progress: Vec<&Value> = seen.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert_eq!(progress.len(), 3, "every progress notification: {seen:?}");
    assert_eq!(progress[0]["params"]["progressToken"], "p1", "the client's own token comes back");
    assert_eq!(text(seen.last().unwrap()), "done after 3 steps");

    // A server request (sampling) reaches the stream; the client answers by POST.
    let status = legacy.post(&tool_call(3, "sample", json!({"prompt": "hi"}))).await;
    assert_eq!(status, 202);
    let ask = legacy.stream.next_message().await.json();
    assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
    let reply = json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"role": "assistant",
        "content": {"type": "text", "text": "sampled hi"}, "model": "m"}});
    assert_eq!(legacy.post(&reply).await, 202);
    let answer = legacy.stream.until_answer(3).await.pop().unwrap();
    assert!(text(&answer).contains("sampled hi"), "{answer}");

    // The spec's refusals, on the POST itself.
    let http = reqwest::Client::new();
    let post = |url: String| http.post(url).header("content-type", "application/json").body(INIT).send();
    let unknown = post(mcpd.url("/fx/message?sessionId=0123456789abcdef0123456789abcdef")).await.unwrap();
    assert_eq!(unknown.status(), 404, "an unknown sessionId");
    let body: Value = unknown.json().await.unwrap();
    assert!(body["error"]["code"].is_i64(), "with a JSON-RPC error: {body}");
    assert_eq!(post(mcpd.url("/fx/message")).await.unwrap().status(), 400, "no sessionId");
    let bad = http.post(&legacy.post_url).header("content-type", "application/json").body("{not json").send();
    assert_eq!(bad.await.unwrap().status(), 400);
    let wrong = http.post(&legacy.post_url).header("content-type", "text/plain").body("{}").send();
    assert_eq!(wrong.await.unwrap().status(), 415);
    assert_eq!(http.get(&legacy.post_url).send().await.unwrap().status(), 405);

    // Streamable HTTP is served on the same route at the same time.
    let (client, _) = connect(&mcpd.url("/fx/mcp")).await;
    assert_eq!(text_of(&call(&client, "echo", json!({"text": "modern"})).await.unwrap()), "modern");
    let seen = legacy.request(4, "tools/call", json!({"name": "echo", "arguments": {"text": "legacy"}})).await;
    assert_eq!(text(&seen[0]), "legacy");
}

#[tokio::test]
async fn closing_the_stream_ends_the_session_and_stops_its_process() {
    let mcpd = Mcpd::start(BOTH, &["/fx/health"]).await;
    let before = children(mcpd.child.id()).len();
    let mut legacy = Legacy::open(&mcpd.url(""), "/fx/sse").await;
    legacy.initialize().await;
    let running = eventually("a process for the session", Duration::from_secs(5), || async {
        let now = children(mcpd.child.id());
        (now.len() > before).then_some(now)
    })
    .await;
    let post_url = legacy.post_url.clone();
    drop(legacy);
    eventually("the session's process stops", Duration::from_secs(10), || async {
        (children(mcpd.child.id()).len() < running.len()).then_some(())
    })
    .await;
    let http = reqwest::Client::new();
    let gone = http.post(post_url).header("content-type", "application/json").body(INIT).send().await.unwrap();
    assert_eq!(gone.status(), 404, "the session ended with its stream");
}

#[tokio::test]
async fn every_upstream_kind_serves_legacy_clients() {
    let upstream = Upstream::start("legacy0", &[]);
    let sse_only = Upstream::start("legacy1", &[]);
    let config = format!(
        r#"
[gateway]
listen = "127.0.0.1:{{port}}"
[server.pooled]
command = "{{server}}"
transport = ["streamable-http", "sse"]
session = {{ enabled = false }}
[server.replicas]
command = "{{server}}"
transport = ["sse", "streamable-http"]
replicas = 2
[server.remote]
url = "{}"
transport = ["streamable-http", "sse"]
[server.remote-sse]
url = "{}"
transport = "sse"
upstream = {{ transport = "sse" }}
[server.own]
command = "{{server}}"
transport = ["sse"]
sse = {{ path = "/events", message_path = "/rpc" }}
"#,
        upstream.url("/mcp"),
        sse_only.url("/sse"),
    );
    let own_port = free_port();
    let config = config.replace("[server.own]", &format!("[server.own]\nport = {own_port}"));
    let health = ["/pooled/health", "/replicas/health", "/remote/health", "/remote-sse/health"];
    let mcpd = Mcpd::start(&config, &health).await;
    for route in ["pooled", "replicas", "remote", "remote-sse"] {
        let mut legacy = Legacy::open(&mcpd.url(""), &format!("/{route}/sse")).await;
        assert!(legacy.endpoint.starts_with(&format!("/{route}/message?sessionId=")), "{}", legacy.endpoint);
        legacy.initialize().await;
        let seen = legacy.request(1, "tools/call", json!({"name": "echo", "arguments": {"text": route}})).await;
        assert_eq!(text(seen.last().unwrap()), route, "{route}: {seen:?}");
    }
    // A server speaking only the legacy transport has no /mcp.
    let status = Raw::new(mcpd.url("/remote-sse/mcp")).post(None, INIT).send().await.unwrap().status();
    assert_eq!(status, 404);

    // Its own port, its own paths: the endpoint names them.
    let origin = format!("http://127.0.0.1:{own_port}");
    eventually("the own-port route listens", Duration::from_secs(10), || async {
        reqwest::get(format!("{origin}/health")).await.ok().filter(|r| r.status() == 200).map(|_| ())
    })
    .await;
    let mut legacy = Legacy::open(&origin, "/events").await;
    assert!(legacy.endpoint.starts_with("/rpc?sessionId="), "{}", legacy.endpoint);
    legacy.initialize().await;
    let seen = legacy.request(1, "tools/call", json!({"name": "echo", "arguments": {"text": "own"}})).await;
    assert_eq!(text(&seen[0]), "own");
}

#[tokio::test]
async fn plugins_see_legacy_messages_as_they_see_streamable_ones() {
    let config = r#"
[gateway]
listen = "127.0.0.1:{port}"
[server.fx]
command = "{server}"
transport = ["streamable-http", "sse"]
[[server.fx.plugins]]
path = "{plugins}/mcpd_plugin_example.wasm"
config = { deny_tools = ["crash"], redact = "secret" }
"#;
    let mcpd = Mcpd::start(config, &["/fx/health"]).await;
    let mut legacy = Legacy::open(&mcpd.url(""), "/fx/sse").await;
    legacy.initialize().await;
    // A request the plugin refuses is answered on the stream with its error.
    let denied = legacy.request(1, "tools/call", json!({"name": "crash", "arguments": {}})).await;
    assert!(denied[0]["error"]["message"].is_string(), "{denied:?}");
    // Answers pass the response hook.
    let seen = legacy.request(2, "tools/call", json!({"name": "echo", "arguments": {"text": "my secret"}})).await;
    assert_eq!(text(&seen[0]), "my [redacted]");
}
