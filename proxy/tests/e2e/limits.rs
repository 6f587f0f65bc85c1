//! `[server.NAME.http]` and `[server.NAME.session]` limits, enforced.

use crate::common::*;
use serde_json::json;
use std::time::Duration;

const LIMITED: &str = r#"
[server.fx]
command = "{server}"
port = {port}
[server.fx.http]
max_request_size = "1KB"
max_concurrent_requests = 2
request_timeout = "500ms"
[server.fx.session]
max_per_client = 3
"#;

#[tokio::test]
async fn body_over_max_request_size_is_413() {
    let mcpd = Mcpd::start(LIMITED, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let big = tool_call(1, "echo", json!({"text": "x".repeat(2000)})).to_string();

    let response = raw.post(Some(&session), big.clone()).send().await.unwrap();
    assert_eq!(response.status(), 413, "declared Content-Length over the limit");

    // Chunked: no Content-Length, the limit applies while reading.
    let chunks = futures::stream::iter(
        big.into_bytes().chunks(300).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>(),
    );
    let response = raw.post(Some(&session), reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    assert_eq!(response.status(), 413, "chunked body over the limit");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("max_request_size"));

    let (status, _) = raw.rpc(Some(&session), tool_call(2, "echo", json!({"text": "small"}))).await;
    assert_eq!(status, 200, "a request under the limit passes");
}

#[tokio::test]
async fn requests_over_max_concurrent_get_503_with_retry_after() {
    let config = LIMITED.replace("request_timeout = \"500ms\"", "request_timeout = \"30s\"");
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let (started_tx, mut started_rx) = tokio::sync::mpsc::channel(2);
    let mut slow = Vec::new();
    for id in 0..2 {
        let raw = Raw::new(mcpd.url("/mcp"));
        let session = session.clone();
        let started_tx = started_tx.clone();
        slow.push(tokio::spawn(async move {
            // The progress notification proves the call holds its slot.
            let mut request = tool_call(id, "progress", json!({"steps": 1, "interval_ms": 1500}));
            request["params"]["_meta"] = json!({"progressToken": id});
            let response = raw.post(Some(&session), request.to_string()).send().await.unwrap();
            let mut response = response;
            let _first = response.chunk().await.unwrap();
            started_tx.send(()).await.unwrap();
            response.text().await.unwrap()
        }));
    }
    started_rx.recv().await.unwrap();
    started_rx.recv().await.unwrap();
    let response = raw
        .post(Some(&session), tool_call(9, "echo", json!({"text": "one too many"})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    for call in slow {
        assert!(call.await.unwrap().contains("done after 1 steps"));
    }
    let (status, _) = raw.rpc(Some(&session), tool_call(10, "echo", json!({"text": "room again"}))).await;
    assert_eq!(status, 200, "slots are given back");
}

#[tokio::test]
async fn request_timeout_answers_with_an_error_and_cancels_upstream() {
    let mcpd = Mcpd::start(LIMITED, &["/health"]).await;
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    let started = std::time::Instant::now();
    let error = call(&client, "sleep", json!({"ms": 5000})).await.expect_err("the call times out");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the error came at request_timeout, not at the end of the work"
    );
    let text = format!("{error:?}");
    assert!(text.contains("-32001") || text.contains("timed out"), "{text}");
    // The server heard about it (notifications/cancelled).
    let stats = call(&client, "stats", json!({})).await.expect("stats");
    let stats: serde_json::Value = serde_json::from_str(&text_of(&stats)).unwrap();
    assert_eq!(stats["cancelled"], 1, "the upstream request was cancelled");
}

#[tokio::test]
async fn sessions_per_client_are_capped() {
    let mcpd = Mcpd::start(LIMITED, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(raw.initialize().await);
    }
    let response = raw.post(None, INIT).send().await.unwrap();
    assert_eq!(response.status(), 429, "a fourth session for this client is refused");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("max_per_client"));

    let deleted = raw.http.delete(&raw.url).header("mcp-session-id", &sessions[0]).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    raw.initialize().await; // room again
}

#[tokio::test]
async fn sessions_across_the_gateway_are_capped() {
    let config = r#"
[gateway]
max_sessions = 2
[server.fx]
command = "{server}"
port = {port}
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    raw.initialize().await;
    raw.initialize().await;
    let response = raw.post(None, INIT).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("gateway.max_sessions"));
}
