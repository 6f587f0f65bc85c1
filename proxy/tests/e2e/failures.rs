//! Servers that crash, cannot start, or are abandoned; clients that leave;
//! a gateway told to stop. None of it takes mcpd down or leaves a caller hanging.

use crate::common::*;
use serde_json::json;
use std::time::Duration;

const SESSIONS: &str = r#"
[server.fx]
command = "{server}"
port = {port}
"#;

fn stats_of(result: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(&text_of(result)).expect("stats JSON")
}

#[tokio::test]
async fn process_crash_mid_call_fails_the_call_at_once_and_ends_the_session() {
    let mcpd = Mcpd::start(SESSIONS, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(10), raw.rpc(Some(&session), tool_call(4, "crash", json!({}))))
            .await
            .expect("a crash answers at once, never hangs");
    assert_eq!(status, 200);
    assert_eq!(body[0]["id"], 4);
    assert_eq!(body[0]["error"]["code"], -32000);
    assert!(body[0]["error"]["message"].as_str().unwrap().contains("exited"), "{body:?}");

    let (status, _) = raw.rpc(Some(&session), tool_call(5, "echo", json!({"text": "x"}))).await;
    assert_eq!(status, 404, "the crashed session is gone, so the client re-initializes");
    raw.initialize().await;
    // mcpd itself is fine.
    assert_eq!(raw.http.get(mcpd.url("/health")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn pooled_process_crash_is_restarted() {
    let config = r#"
[server.fx]
command = "{server}"
port = {port}
[server.fx.session]
enabled = false
[server.fx.pool]
size = 1
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let (_, body) = raw.rpc(None, tool_call(1, "stats", json!({}))).await;
    let first_pid = stats_of(&body[0]["result"])["pid"].clone();
    let (_, body) = raw.rpc(None, tool_call(2, "crash", json!({}))).await;
    assert_eq!(body[0]["error"]["code"], -32000);
    let second_pid = eventually("the pool restarts the crashed server", Duration::from_secs(10), || async {
        let (status, body) = raw.rpc(None, tool_call(3, "stats", json!({}))).await;
        (status == 200).then(|| stats_of(&body[0]["result"])["pid"].clone())
    })
    .await;
    assert_ne!(first_pid, second_pid);
}

#[tokio::test]
async fn a_server_that_cannot_start_is_reported_down() {
    let config = r#"
[server.broken]
command = "/nonexistent/mcp-server"
port = {port}
health_check_interval = "1s"
"#;
    let mcpd = Mcpd::start(config, &[]).await;
    let http = reqwest::Client::new();
    let body: serde_json::Value = eventually("health reports down", Duration::from_secs(10), || async {
        let response = http.get(mcpd.url("/health")).send().await.ok()?;
        (response.status() == 503).then_some(())?;
        // 503 "starting" comes first, until the first start fails.
        let body: serde_json::Value = response.json().await.ok()?;
        (body["status"] == "down").then_some(body)
    })
    .await;
    assert_eq!(body["server"], "broken");
    assert!(body["error"].as_str().unwrap().contains("/nonexistent/mcp-server"), "{body}");

    let raw = Raw::new(mcpd.url("/mcp"));
    let response = raw.post(None, INIT).send().await.unwrap();
    assert_eq!(response.status(), 502, "initialize explains the server cannot start");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32000);
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_its_upstream_request() {
    let mcpd = Mcpd::start(SESSIONS, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let gone = raw
        .post(Some(&session), tool_call(1, "sleep", json!({"ms": 20000})).to_string())
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up");
    let cancelled = eventually("the server is told to cancel", Duration::from_secs(10), || async {
        let (_, body) = raw.rpc(Some(&session), tool_call(2, "stats", json!({}))).await;
        let stats = stats_of(&body[0]["result"]);
        (stats["cancelled"] == 1).then_some(stats)
    })
    .await;
    assert_eq!(cancelled["cancelled"], 1);
}

#[tokio::test]
async fn idle_sessions_are_reaped_and_their_process_stopped() {
    let config = r#"
[server.fx]
command = "{server}"
port = {port}
[server.fx.session]
timeout = "1s"
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let (_, body) = raw.rpc(Some(&session), tool_call(1, "stats", json!({}))).await;
    let pid = stats_of(&body[0]["result"])["pid"].as_u64().unwrap() as u32;
    eventually("the idle session's process is stopped", Duration::from_secs(15), || async {
        (!process_alive(pid)).then_some(())
    })
    .await;
    let (status, _) = raw.rpc(Some(&session), tool_call(2, "echo", json!({"text": "late"}))).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sigterm_drains_requests_in_flight() {
    let mut mcpd = Mcpd::start(SESSIONS, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let slow = {
        let raw = Raw::new(mcpd.url("/mcp"));
        let session = session.clone();
        tokio::spawn(async move { raw.rpc(Some(&session), tool_call(1, "sleep", json!({"ms": 1500}))).await })
    };
    // Wait until the call is in flight at the server (the log says so).
    eventually("the slow call is in flight", Duration::from_secs(10), || async {
        mcpd.log_text().contains("method=\"tools/call\"").then_some(())
    })
    .await;
    mcpd.signal(libc::SIGTERM);
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body[0]["result"]["content"][0]["text"], "slept 1500 ms", "the call in flight completed");
    let exited = tokio::task::spawn_blocking(move || mcpd.child.wait().map(|s| s.success())).await.unwrap();
    assert_eq!(exited.ok(), Some(true), "mcpd exits cleanly after draining");
}
