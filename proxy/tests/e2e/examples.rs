//! The README's example config (`./dev run` serves `examples/mcpd.toml`)
//! does what the README promises: a 401 without a key, a filtered
//! `tools/list` and a 429 with one, every tool for the admin key.

use crate::common::*;
use serde_json::{Value, json};

/// `examples/mcpd.toml`, moved to free ports and this build's binaries.
fn example_config() -> String {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let text = std::fs::read_to_string(examples.join("mcpd.toml")).expect("examples/mcpd.toml");
    text.replace("127.0.0.1:8080", "127.0.0.1:{shared}")
        .replace("port = 8081", "port = {port}")
        .replace("127.0.0.1:8081", "127.0.0.1:{port}")
        .replace("./target/release/mcpd-test-server", "{server}")
        .replace("../target/wasm32-wasip2/release", "{plugins}")
        .replace("\"keys.toml\"", &format!("{:?}", examples.join("keys.toml")))
        .replace("{shared}", &free_port().to_string())
}

async fn rpc(raw: &Raw, key: Option<&str>, session: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = raw.post(session, body.to_string());
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn session_for(raw: &Raw, key: &str) -> String {
    let response = raw.post(None, INIT.to_string()).header("x-api-key", key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.headers()["mcp-session-id"].to_str().unwrap().to_string()
}

fn tool_names(list: &Value) -> Vec<String> {
    let tools = list["result"]["tools"].as_array().cloned().unwrap_or_default();
    tools.iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn the_example_config_shows_a_401_a_filtered_list_and_a_429() {
    let mcpd = Mcpd::start(&example_config(), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});

    let (status, body) = rpc(&raw, None, None, serde_json::from_str(INIT).unwrap()).await;
    assert_eq!(status, 401, "{body}");

    let alice = session_for(&raw, "alice-demo-key").await;
    let (status, listed) = rpc(&raw, Some("alice-demo-key"), Some(&alice), list.clone()).await;
    assert_eq!(status, 200);
    let names = tool_names(&listed);
    assert!(names.contains(&"echo".to_string()) && !names.contains(&"crash".to_string()), "{names:?}");
    assert!(!names.contains(&"stats".to_string()));

    let call = tool_call(3, "echo", json!({"text": "hi"}));
    for n in 1..=5 {
        let (status, body) = rpc(&raw, Some("alice-demo-key"), Some(&alice), call.clone()).await;
        assert_eq!(status, 200, "call {n}: {body}");
    }
    let (status, body) = rpc(&raw, Some("alice-demo-key"), Some(&alice), call.clone()).await;
    assert_eq!(status, 429, "the 6th call in a minute: {body}");

    let admin = session_for(&raw, "admin-demo-key").await;
    let (_, listed) = rpc(&raw, Some("admin-demo-key"), Some(&admin), list).await;
    assert!(tool_names(&listed).contains(&"crash".to_string()), "the admin sees every tool");
}
