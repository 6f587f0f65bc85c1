//! What the host gives plugins beyond hooks: outbound HTTP limited to
//! `allow_hosts` (with network waits outside the CPU deadline), and a store
//! whose counters and token buckets are shared by mcpd nodes through Redis.

use crate::common::*;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback HTTP server answering every request with `body` after
/// `delay`; counts the requests it got.
async fn http_server(delay: Duration, body: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (address, seen)
}

/// One pooled route whose plugin is the hostile fixture in `fetch` mode.
fn fetch_route(name: &str, url: &str, allow: &str, timeout: &str) -> String {
    format!(
        r#"
[server.{name}]
command = "{{server}}"
[server.{name}.session]
enabled = false
[server.{name}.pool]
size = 1
[[server.{name}.plugins]]
path = "{{plugins}}/mcpd_hostile_plugin.wasm"
timeout = "{timeout}"
allow_hosts = [{allow}]
config = {{ mode = "fetch", url = "{url}" }}
"#
    )
}

async fn plugin_answer(mcpd: &Mcpd, path: &str) -> Value {
    let raw = Raw::new(mcpd.url(path));
    let (status, body) = raw.rpc(None, tool_call(1, "echo", json!({"text": "x"}))).await;
    assert_eq!(status, 200, "{body:?}");
    body[0]["result"].clone()
}

#[tokio::test]
async fn plugins_reach_only_allowed_hosts_and_waiting_is_not_cpu() {
    // The server takes 10× the plugin's CPU limit to answer.
    let (server, seen) = http_server(Duration::from_millis(200), "hello from loopback").await;
    let url = format!("http://{server}/keys");
    let mut config = "[gateway]\nlisten = \"127.0.0.1:{port}\"\n".to_string();
    config += &fetch_route("allowed", &url, &format!("\"{server}\""), "20ms");
    config += &fetch_route("otherport", &url, &format!("\"127.0.0.1:{}\"", server.port() + 1), "20ms");
    config += &fetch_route("nolist", &url, "", "20ms");
    let mcpd = Mcpd::start(&config, &["/allowed/health"]).await;

    let got = plugin_answer(&mcpd, "/allowed/mcp").await;
    assert_eq!(got, json!({"status": 200, "body": "hello from loopback"}), "a 200 ms wait under a 20 ms CPU limit");
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    let refused = plugin_answer(&mcpd, "/otherport/mcp").await;
    assert!(refused["error"].as_str().unwrap_or_default().contains("not in the plugin's `allow_hosts`"), "{refused}");
    let refused = plugin_answer(&mcpd, "/nolist/mcp").await;
    assert!(refused["error"].as_str().unwrap_or_default().contains("no `allow_hosts`"), "{refused}");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "refused requests never leave mcpd");
    let metrics = reqwest::get(mcpd.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"mcpd_plugin_http_requests_total{plugin="mcpd-hostile-plugin",result="error"} 2"#));
}

/// A `redis-server` of the test's own on a free loopback port.
struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    async fn start() -> Redis {
        let port = free_port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (installed by ./dev test)");
        eventually("redis-server accepts connections", Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
        })
        .await;
        Redis { child, port }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn two_nodes_share_counters_and_buckets_through_redis() {
    let redis = Redis::start().await;
    let config = format!(
        r#"
[gateway]
store = "redis://127.0.0.1:{}"
[server.fx]
command = "{{server}}"
port = {{port}}
[server.fx.session]
enabled = false
[[server.fx.plugins]]
path = "{{plugins}}/mcpd_hostile_plugin.wasm"
config = {{ mode = "count" }}
"#,
        redis.port
    );
    let (a, b) = (Mcpd::start(&config, &["/health"]).await, Mcpd::start(&config, &["/health"]).await);
    // Alternate nodes: one count, and one bucket of 3 per hour, across both.
    let mut answers = Vec::new();
    for node in [&a, &b, &a, &b] {
        answers.push(plugin_answer(node, "/mcp").await);
    }
    let expected: Vec<Value> = (1..=4).map(|n| json!({"hits": n, "allowed": n <= 3})).collect();
    assert_eq!(answers, expected);
}

#[tokio::test]
async fn an_unreachable_redis_store_stops_startup_with_the_reason() {
    let config = format!("[gateway]\nstore = \"redis://127.0.0.1:1\"\n[server.fx]\ncommand = {:?}\n", fixture_server());
    let (ok, output, path) = check_config(&config);
    assert!(ok, "the URL is well-formed, so `mcpd check` accepts it: {output}");
    let run = std::process::Command::new(mcpd_bin()).args(["run", "-c"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("gateway.store = \"redis://127.0.0.1:1\": cannot use it"), "{stderr}");
}

#[tokio::test]
async fn the_rate_limit_plugin_holds_one_limit_across_two_nodes_through_redis() {
    let redis = Redis::start().await;
    let config = format!(
        r#"
[gateway]
store = "redis://127.0.0.1:{}"
[server.fx]
command = "{{server}}"
port = {{port}}
[server.fx.session]
enabled = false
[[server.fx.plugins]]
path = "{{plugins}}/mcpd_rate_limit.wasm"
config = {{ limits = [{{ key = "route", rate = 3, per = "1h" }}] }}
"#,
        redis.port
    );
    let (a, b) = (Mcpd::start(&config, &["/health"]).await, Mcpd::start(&config, &["/health"]).await);
    let mut statuses = Vec::new();
    for node in [&a, &b, &a, &b] {
        let raw = Raw::new(node.url("/mcp"));
        statuses.push(raw.rpc(None, tool_call(1, "echo", json!({"text": "x"}))).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429], "3 an hour for the route, whichever node is asked");
}

/// The give-back of a refused repeat (see `reuse.rs`) through Redis's script.
#[tokio::test]
async fn a_refused_repeat_gives_back_the_tokens_it_took_in_redis() {
    let redis = Redis::start().await;
    let store = format!("store = \"redis://127.0.0.1:{}\"", redis.port);
    crate::reuse::a_refused_repeat_gives_back_the_tokens_it_took(&store).await;
}
