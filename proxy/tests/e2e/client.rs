//! A standard MCP client (rmcp, Streamable HTTP) works end to end through mcpd.

use crate::common::*;
use serde_json::json;
use std::time::Duration;

const SESSIONS: &str = r#"
[server.fx]
command = "{server}"
port = {port}
"#;

const POOLED: &str = r#"
[gateway]
listen = "127.0.0.1:{port}"
[server.fx]
command = "{server}"
[server.fx.session]
enabled = false
[server.fx.pool]
size = 2
"#;

#[tokio::test]
async fn tools_resources_and_prompts_through_a_session() {
    let mcpd = Mcpd::start(SESSIONS, &["/health"]).await;
    let (client, _) = connect(&mcpd.url("/mcp")).await;

    let info = client.peer_info().expect("server info from initialize");
    assert_eq!(info.server_info.as_ref().map(|i| i.name.as_str()), Some("mcpd-test-server"));

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    assert!(names.contains(&"echo".to_string()) && names.contains(&"sample".to_string()), "{names:?}");

    let result = call(&client, "echo", json!({"text": "hello through mcpd"})).await.expect("echo");
    assert_eq!(text_of(&result), "hello through mcpd");

    let resources = client.list_all_resources().await.expect("resources/list");
    assert_eq!(resources[0].uri, "test://hello");
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    assert_eq!(prompts[0].name, "greet");
    client.cancel().await.expect("client closes");
}

#[tokio::test]
async fn pooled_server_serves_many_clients_with_rewritten_ids() {
    let mcpd = Mcpd::start(POOLED, &["/fx/health"]).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(connect(&mcpd.url("/fx/mcp")).await.0);
    }
    // Every rmcp client numbers its requests from 0: the same ids reach
    // two shared processes at once, and each answer must find its caller.
    let calls = clients.iter().enumerate().flat_map(|(c, client)| {
        (0..10).map(move |i| async move {
            let text = format!("client {c} call {i}");
            let result = call(client, "echo", json!({"text": text})).await.expect("echo");
            assert_eq!(text_of(&result), text);
        })
    });
    futures::future::join_all(calls).await;
}

#[tokio::test]
async fn progress_and_log_notifications_reach_the_caller() {
    let mcpd = Mcpd::start(SESSIONS, &["/health"]).await;
    let (client, handler) = connect(&mcpd.url("/mcp")).await;

    let result = call(&client, "progress", json!({"steps": 3, "interval_ms": 5})).await.expect("progress");
    assert_eq!(text_of(&result), "done after 3 steps");
    let progress = handler.progress.lock().unwrap().clone();
    let steps: Vec<f64> = progress.iter().map(|p| p.progress).collect();
    assert_eq!(steps, vec![1.0, 2.0, 3.0], "progress notifications arrive, in order, before the answer");

    call(&client, "log", json!({"message": "a log line"})).await.expect("log");
    let logs = handler.logs.lock().unwrap().clone();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["data"], "a log line");
}

#[tokio::test]
async fn server_requests_reach_the_client_and_answers_get_back() {
    for config in [SESSIONS, POOLED] {
        let (mcpd, path) = match config == SESSIONS {
            true => (Mcpd::start(config, &["/health"]).await, "/mcp"),
            false => (Mcpd::start(config, &["/fx/health"]).await, "/fx/mcp"),
        };
        let (client, _) = connect(&mcpd.url(path)).await;
        let sampled = call(&client, "sample", json!({"prompt": "a haiku"})).await.expect("sample");
        assert_eq!(text_of(&sampled), "client said: sampled a haiku");
        let elicited = call(&client, "elicit", json!({})).await.expect("elicit");
        assert_eq!(text_of(&elicited), r#"action=accept content={"name":"Ada"}"#);
        let roots = call(&client, "roots", json!({})).await.expect("roots");
        assert!(text_of(&roots).contains("file:///tmp/project"), "{roots}");
        let pinged = call(&client, "ping_client", json!({})).await.expect("ping");
        assert_eq!(text_of(&pinged), "client answered ping");
    }
}

#[tokio::test]
async fn concurrent_sessions_each_get_their_own_process() {
    let mcpd = Mcpd::start(SESSIONS, &["/health"]).await;
    let (a, _) = connect(&mcpd.url("/mcp")).await;
    let (b, _) = connect(&mcpd.url("/mcp")).await;
    let pid = |v: serde_json::Value| -> u64 {
        let stats: serde_json::Value = serde_json::from_str(&text_of(&v)).unwrap();
        stats["pid"].as_u64().unwrap()
    };
    let pid_a = pid(call(&a, "stats", json!({})).await.unwrap());
    let pid_b = pid(call(&b, "stats", json!({})).await.unwrap());
    assert_ne!(pid_a, pid_b, "two sessions share one server process");
    // Closing a session (rmcp sends DELETE) stops its process.
    a.cancel().await.unwrap();
    eventually("the deleted session's process exits", Duration::from_secs(10), || async {
        (!process_alive(pid_a as u32)).then_some(())
    })
    .await;
    assert!(process_alive(pid_b as u32));
    call(&b, "echo", json!({"text": "still here"})).await.expect("the other session is untouched");
}

#[tokio::test]
async fn large_results_pass_through_whole() {
    let mcpd = Mcpd::start(SESSIONS, &["/health"]).await;
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    let result = call(&client, "large", json!({"bytes": 5_000_000})).await.expect("a 5 MB result");
    let text = text_of(&result);
    assert_eq!(text.len(), 5_000_000);
    assert!(text.bytes().all(|b| b == b'x'));
}

#[tokio::test]
async fn server_stderr_goes_to_the_log() {
    let mcpd = Mcpd::start(SESSIONS, &["/health"]).await;
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    call(&client, "echo", json!({"text": "x"})).await.unwrap();
    eventually("the server's stderr line is logged", Duration::from_secs(10), || async {
        let log = mcpd.log_text();
        log.lines().any(|l| l.contains("mcpd::server_stderr") && l.contains("mcpd-test-server: ready")).then_some(())
    })
    .await;
}
