//! HTTP upstreams: mcpd in front of several real HTTP MCP server instances
//! (the `mcpd-http-test-server` fixture, each with its own `--name`), driven
//! by rmcp and raw HTTP. Sessions spread across instances and stick to the
//! one that created them; a killed instance ends its sessions (404) while
//! new ones go elsewhere; SSE events reach the client one by one; the
//! client's credentials stay with mcpd. Also: SSE-only instances, a
//! supervised command that listens on HTTP, and stdio `replicas`.

use crate::common::*;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The HTTP fixture server; `./dev test` (or `cargo build -p mcpd-http-test-server`) builds it.
pub(crate) fn http_server() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let path = dir.join("mcpd-http-test-server");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p mcpd-http-test-server` (./dev test does)",
        path.display()
    );
    path
}

/// One running fixture instance; killed on drop.
pub(crate) struct Upstream {
    child: Child,
    pub port: u16,
}

impl Upstream {
    pub(crate) fn start(name: &str, extra: &[&str]) -> Upstream {
        let mut child = Command::new(http_server())
            .args(["--port", "0", "--threads", "1", "--name", name])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the HTTP fixture server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("its first line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Upstream { child, port }
    }

    /// An instance on a given port (to start it again where it was).
    pub(crate) fn start_on(port: u16, name: &str) -> Upstream {
        let upstream = Upstream::start(name, &["--port", &port.to_string()]);
        assert_eq!(upstream.port, port);
        upstream
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Instances named `name0`, `name1`, … and the `urls = [...]` line for them.
fn instances(n: usize) -> (Vec<Upstream>, String) {
    let upstreams: Vec<Upstream> = (0..n).map(|i| Upstream::start(&format!("i{i}"), &[])).collect();
    let urls: Vec<String> = upstreams.iter().map(|u| format!("{:?}", u.url("/mcp"))).collect();
    (upstreams, format!("urls = [{}]", urls.join(", ")))
}

fn config(urls: &str, upstream: &str) -> String {
    format!("[server.fx]\n{urls}\nport = {{port}}\n[server.fx.upstream]\nhealth_check_interval = \"1s\"\n{upstream}\n")
}

async fn whoami_raw(raw: &Raw, session: &str) -> (u16, String) {
    let (status, body) = raw.rpc(Some(session), tool_call(7, "whoami", json!({}))).await;
    let name = body.first().map(|b| text_of(&b["result"])).unwrap_or_default();
    (status, name)
}

#[tokio::test]
async fn sessions_spread_round_robin_and_the_upstream_session_id_stays_hidden() {
    let (_upstreams, urls) = instances(3);
    let mcpd = Mcpd::start(&config(&urls, ""), &["/health"]).await;
    let mut seen = HashMap::new();
    for _ in 0..6 {
        let (client, _) = connect(&mcpd.url("/mcp")).await;
        let name = text_of(&call(&client, "whoami", json!({})).await.expect("whoami"));
        *seen.entry(name).or_insert(0) += 1;
        client.cancel().await.expect("close");
    }
    let expected: HashMap<String, i32> = [("i0".into(), 2), ("i1".into(), 2), ("i2".into(), 2)].into();
    assert_eq!(seen, expected, "round robin places two of six sessions on each instance");

    let raw = Raw::new(mcpd.url("/mcp"));
    let ours = raw.initialize().await;
    let (status, body) = raw.rpc(Some(&ours), tool_call(2, "session_info", json!({}))).await;
    assert_eq!(status, 200);
    let info = &body[0]["result"]["structuredContent"];
    let theirs = info["session_id"].as_str().expect("the instance has its own session id");
    assert_ne!(theirs, ours, "the client sees mcpd's session id, never the instance's");

    let metrics = raw.http.get(mcpd.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let instance = urls.split('"').nth(1).expect("a URL");
    for line in [
        format!(r#"mcpd_upstream_instance_up{{instance="{instance}",server="fx"}} 1"#),
        format!(r#"mcpd_upstream_sessions{{instance="{instance}",server="fx"}} "#),
        format!(r#"mcpd_upstream_requests_total{{instance="{instance}",result="ok",server="fx"}} "#),
    ] {
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
}

#[tokio::test]
async fn every_request_of_a_session_reaches_its_instance_under_concurrency() {
    let (_upstreams, urls) = instances(3);
    let mcpd = Mcpd::start(&config(&urls, "lb = \"least_connections\""), &["/health"]).await;
    let url = mcpd.url("/mcp");
    let sessions = (0..12).map(|_| {
        let url = url.clone();
        async move {
            let (client, _) = connect(&url).await;
            let answers = futures::future::join_all((0..8).map(|_| call(&client, "whoami", json!({})))).await;
            let names: HashSet<String> = answers.into_iter().map(|a| text_of(&a.expect("whoami"))).collect();
            client.cancel().await.expect("close");
            names
        }
    });
    let per_session = futures::future::join_all(sessions).await;
    let mut used = HashSet::new();
    for names in &per_session {
        assert_eq!(names.len(), 1, "one session, one instance: {names:?}");
        used.extend(names.iter().cloned());
    }
    assert_eq!(used.len(), 3, "twelve sessions use all three instances: {used:?}");
}

#[tokio::test]
async fn a_killed_instance_ends_its_sessions_and_new_sessions_go_elsewhere() {
    let (mut upstreams, urls) = instances(2);
    let mcpd = Mcpd::start(&config(&urls, ""), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let first = raw.initialize().await;
    let second = raw.initialize().await;
    let (_, first_name) = whoami_raw(&raw, &first).await;
    let (_, second_name) = whoami_raw(&raw, &second).await;
    assert_eq!((first_name.as_str(), second_name.as_str()), ("i0", "i1"));

    upstreams[0].kill();
    let (status, body) = raw.rpc(Some(&first), tool_call(3, "whoami", json!({}))).await;
    assert_eq!(status, 404, "the session's instance is gone, so the client must re-initialize: {body:?}");
    assert_eq!(body[0]["error"]["code"], -32001);
    let (status, _) = raw.rpc(Some(&first), tool_call(4, "whoami", json!({}))).await;
    assert_eq!(status, 404, "and the session stays gone");
    assert_eq!(whoami_raw(&raw, &second).await, (200, "i1".into()), "sessions on the live instance carry on");
    for _ in 0..3 {
        let fresh = raw.initialize().await;
        assert_eq!(whoami_raw(&raw, &fresh).await, (200, "i1".into()), "new sessions avoid the dead instance");
    }
    // The rmcp client, too, starts over on the live instance.
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    assert_eq!(text_of(&call(&client, "whoami", json!({})).await.expect("whoami")), "i1");
}

#[tokio::test]
async fn sse_events_reach_the_client_one_by_one() {
    let (_upstreams, urls) = instances(1);
    let mcpd = Mcpd::start(&config(&urls, ""), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let (count, interval) = (4u32, Duration::from_millis(400));
    let request = tool_call(9, "slow_stream", json!({"count": count, "interval_ms": interval.as_millis() as u64}));
    let sent = Instant::now();
    let response = raw.post(Some(&session), request.to_string()).send().await.expect("POST");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut arrivals: Vec<(Instant, Value)> = Vec::new();
    while let Some(chunk) = body.next().await {
        buffer.push_str(std::str::from_utf8(&chunk.expect("chunk")).expect("UTF-8"));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            for data in sse_data(&event) {
                arrivals.push((Instant::now(), data));
            }
        }
    }
    let notes: Vec<_> = arrivals.iter().filter(|(_, m)| m["method"] == "notifications/message").collect();
    assert_eq!(notes.len(), count as usize, "{arrivals:?}");
    // The instance sends note k no earlier than (k-1)·interval after the
    // request, so a note that arrives before k·interval arrived before the
    // next one existed: nothing held it back to send it with the next.
    for (k, (at, note)) in notes.iter().enumerate() {
        assert_eq!(note["params"]["data"], format!("step {} of {count}", k + 1));
        let next_emitted_no_earlier = interval * (k as u32 + 1);
        assert!(
            at.duration_since(sent) < next_emitted_no_earlier,
            "note {} arrived {:?} after the request, when the next one could already exist",
            k + 1,
            at.duration_since(sent)
        );
    }
    let last = &arrivals.last().expect("an answer").1;
    assert_eq!(last["id"], 9);
    assert_eq!(text_of(&last["result"]), format!("sent {count} notifications"));
}

#[tokio::test]
async fn client_credentials_stay_with_mcpd_unless_forwarded() {
    let (_upstreams, urls) = instances(1);
    let upstream = "forward_headers = [\"x-request-id\"]\nheaders = { x-gateway = \"mcpd\" }";
    let mcpd = Mcpd::start(&config(&urls, upstream), &["/health"]).await;
    let seen = headers_seen(&mcpd).await;
    assert!(seen.get("authorization").is_none(), "Authorization must not reach the instance: {seen}");
    assert!(seen.get("cookie").is_none(), "{seen}");
    assert_eq!(seen["x-request-id"], "req-1");
    assert_eq!(seen["x-gateway"], "mcpd");
    assert_eq!(seen["mcp-protocol-version"], "2025-11-25");
    assert_ne!(seen["mcp-session-id"], Value::Null);

    let mcpd = Mcpd::start(&config(&urls, "forward_headers = [\"Authorization\"]"), &["/health"]).await;
    let seen = headers_seen(&mcpd).await;
    assert_eq!(seen["authorization"], "Bearer client-token", "listed in forward_headers, it is passed on");
}

/// The headers the instance saw on a `session_info` call sent with credentials.
async fn headers_seen(mcpd: &Mcpd) -> Value {
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let response = raw
        .post(Some(&session), tool_call(5, "session_info", json!({})).to_string())
        .header("authorization", "Bearer client-token")
        .header("cookie", "sid=secret")
        .header("x-request-id", "req-1")
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    body["result"]["structuredContent"]["headers"].clone()
}

#[tokio::test]
async fn consistent_hash_keeps_a_header_value_on_one_instance() {
    let (_upstreams, urls) = instances(3);
    let upstream = "lb = \"consistent_hash\"\nhash_header = \"x-user\"";
    let mcpd = Mcpd::start(&config(&urls, upstream), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let mut placed: HashMap<String, String> = HashMap::new();
    for round in 0..3 {
        for user in 0..12 {
            let user = format!("user-{user}");
            let response = raw.post(None, INIT).header("x-user", &user).send().await.expect("initialize");
            let session = response.headers()["mcp-session-id"].to_str().unwrap().to_string();
            let _ = response.bytes().await;
            let (_, name) = whoami_raw(&raw, &session).await;
            // (sessions per client are capped: end each one)
            let _ = raw.http.delete(&raw.url).header("mcp-session-id", &session).send().await;
            match round {
                0 => {
                    placed.insert(user, name);
                }
                _ => assert_eq!(placed[&user], name, "{user} moved"),
            }
        }
    }
    let used: HashSet<&String> = placed.values().collect();
    assert!(used.len() > 1, "twelve users hash onto more than one instance: {placed:?}");
}

#[tokio::test]
async fn least_connections_fills_the_instance_a_session_left() {
    let (_upstreams, urls) = instances(2);
    let mcpd = Mcpd::start(&config(&urls, "lb = \"least_connections\""), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let a = raw.initialize().await;
    let b = raw.initialize().await;
    let (_, a_name) = whoami_raw(&raw, &a).await;
    let (_, b_name) = whoami_raw(&raw, &b).await;
    assert_ne!(a_name, b_name);
    let deleted = raw.http.delete(&raw.url).header("mcp-session-id", &a).send().await.expect("DELETE");
    assert_eq!(deleted.status(), 200);
    for _ in 0..2 {
        let c = raw.initialize().await;
        assert_eq!(whoami_raw(&raw, &c).await.1, a_name, "the emptier instance takes the new session");
        let d = raw.initialize().await;
        assert_eq!(whoami_raw(&raw, &d).await.1, if a_name == "i0" { "i1" } else { "i0" });
        let _ = raw.http.delete(&raw.url).header("mcp-session-id", &c).send().await;
        let _ = raw.http.delete(&raw.url).header("mcp-session-id", &d).send().await;
    }
}

#[tokio::test]
async fn get_stream_and_delete_reach_the_owning_instance() {
    let (_upstreams, urls) = instances(2);
    let mcpd = Mcpd::start(&config(&urls, ""), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let get = raw
        .http
        .get(&raw.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status(), 200);
    let mut stream = get.bytes_stream();
    // The instance sends these on the session's GET stream, which mcpd relays.
    let (status, body) = raw
        .rpc(Some(&session), tool_call(3, "slow_stream", json!({"count": 2, "interval_ms": 1, "via_get": true})))
        .await;
    assert_eq!((status, text_of(&body[0]["result"])), (200, "sent 2 notifications".into()));
    let mut text = String::new();
    while sse_data(&text).len() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("events").unwrap();
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert_eq!(sse_data(&text)[1]["params"]["data"], "step 2 of 2");

    let deleted = raw.http.delete(&raw.url).header("mcp-session-id", &session).send().await.expect("DELETE");
    assert_eq!(deleted.status(), 200);
    assert_eq!(whoami_raw(&raw, &session).await.0, 404);
}

#[tokio::test]
async fn an_sse_only_instance_is_served_as_streamable_http() {
    let sse = Upstream::start("legacy", &[]);
    for transport in ["sse", "auto"] {
        let text =
            format!("url = {:?}\nport = {{port}}\n[server.fx.upstream]\ntransport = {transport:?}\n", sse.url("/sse"));
        let mcpd = Mcpd::start(&format!("[server.fx]\n{text}"), &["/health"]).await;
        let (client, handler) = connect(&mcpd.url("/mcp")).await;
        assert_eq!(text_of(&call(&client, "whoami", json!({})).await.expect("whoami")), "legacy");
        let result = call(&client, "echo", json!({"text": "over SSE"})).await.expect("echo");
        assert_eq!(text_of(&result), "over SSE");
        let result = call(&client, "slow_stream", json!({"count": 2, "interval_ms": 1})).await.expect("slow_stream");
        assert_eq!(text_of(&result), "sent 2 notifications");
        // rmcp asks for progress on every request, so the instance reports it;
        // rmcp hands notifications to the handler on its own task.
        eventually("both progress notifications reach the client", Duration::from_secs(10), || async {
            (handler.progress.lock().unwrap().len() == 2).then_some(())
        })
        .await;
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn a_supervised_command_listening_on_http_is_run_and_proxied() {
    let port = free_port();
    let text = format!(
        "[server.fx]\ncommand = {:?}\nargs = [\"--port\", \"{port}\", \"--name\", \"supervised\"]\n\
         upstream_url = \"http://127.0.0.1:{port}/mcp\"\nport = {{port}}\n\
         [server.fx.upstream]\nhealth_check_interval = \"200ms\"\n",
        http_server().display().to_string()
    );
    let mcpd = Mcpd::start(&text, &["/health"]).await;
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    assert_eq!(text_of(&call(&client, "whoami", json!({})).await.expect("whoami")), "supervised");
    // It crashes; mcpd starts it again, and a new session works.
    let _ = call(&client, "crash", json!({})).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let name = eventually("the supervised server is back", Duration::from_secs(20), || async {
        let response = raw.post(None, INIT).send().await.ok()?;
        let session = response.headers().get("mcp-session-id")?.to_str().ok()?.to_string();
        let (status, name) = whoami_raw(&raw, &session).await;
        (status == 200).then_some(name)
    })
    .await;
    assert_eq!(name, "supervised");
}

#[tokio::test]
async fn stdio_replicas_share_sessions_and_a_dead_replica_ends_only_its_own() {
    let config = "[server.fx]\ncommand = \"{server}\"\nport = {port}\nreplicas = 2\n";
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let pid_of = |body: &Vec<Value>| -> u64 {
        serde_json::from_str::<Value>(&text_of(&body[0]["result"])).expect("stats")["pid"].as_u64().expect("pid")
    };
    // /health is ok once one replica runs; the other may start a moment later.
    let mut by_pid: HashMap<u64, Vec<String>> = HashMap::new();
    for _ in 0..40 {
        if by_pid.len() == 2 && by_pid.values().all(|s| s.len() >= 2) {
            break;
        }
        let session = raw.initialize().await;
        let (_, body) = raw.rpc(Some(&session), tool_call(1, "stats", json!({}))).await;
        let pid = pid_of(&body);
        for _ in 0..3 {
            let (_, again) = raw.rpc(Some(&session), tool_call(2, "stats", json!({}))).await;
            assert_eq!(pid_of(&again), pid, "a session stays on its replica");
        }
        by_pid.entry(pid).or_default().push(session);
    }
    assert_eq!(by_pid.len(), 2, "sessions spread over the two replicas: {by_pid:?}");

    let (victim, sessions) = by_pid.iter().next().map(|(p, s)| (*p, s.clone())).unwrap();
    let survivors: Vec<String> = by_pid.iter().filter(|(p, _)| **p != victim).flat_map(|(_, s)| s.clone()).collect();
    // SAFETY: killing a replica process the test learned the pid of.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    for session in &sessions {
        let status = eventually("the dead replica's sessions end", Duration::from_secs(10), || async {
            let (status, _) = raw.rpc(Some(session), tool_call(3, "stats", json!({}))).await;
            (status == 404).then_some(status)
        })
        .await;
        assert_eq!(status, 404);
    }
    for session in &survivors {
        let (status, _) = raw.rpc(Some(session), tool_call(4, "stats", json!({}))).await;
        assert_eq!(status, 200, "sessions on the other replica carry on");
    }
    let fresh = raw.initialize().await;
    assert_eq!(raw.rpc(Some(&fresh), tool_call(5, "echo", json!({"text": "x"}))).await.0, 200);
}

#[test]
fn bad_upstream_config_is_refused_with_its_line() {
    let (ok, text, _) = check_config("[server.a]\nurls = [\"http://127.0.0.1:1/mcp\", \"gopher://x\"]\n");
    assert!(!ok);
    assert!(text.contains(":2:35: server.a.urls[1]: \"gopher://x\": only http:// and https:// URLs"), "{text}");
    let (ok, text, _) =
        check_config("[server.a]\nurl = \"http://127.0.0.1:1/mcp\"\n[server.a.upstream]\nlb = \"fastest\"\n");
    assert!(!ok);
    assert!(text.contains(":4:6: server.a.upstream.lb: unknown balancing \"fastest\""), "{text}");
}

/// `node` and the TypeScript SDK fixture (`npm ci` in fixtures/ts-http-server; ./dev test does).
pub(crate) fn ts_server() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/ts-http-server");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").exists(),
        "the TypeScript SDK fixture is not installed: run `npm ci --prefix fixtures/ts-http-server` (./dev test does)"
    );
    dir.join("server.mjs")
}

/// One instance of the TypeScript SDK fixture; killed on drop.
pub(crate) fn start_ts(name: &str) -> Upstream {
    let mut child = Command::new("node")
        .arg(ts_server())
        .args(["--name", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node (the TypeScript SDK fixture)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("its first line");
    let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok());
    Upstream { port: port.unwrap_or_else(|| panic!("unexpected first line {line:?}")), child }
}

#[tokio::test]
async fn typescript_sdk_instances_behind_mcpd() {
    let mut upstreams = [start_ts("ts0"), start_ts("ts1")];
    let urls: Vec<String> = upstreams.iter().map(|u| format!("{:?}", u.url("/mcp"))).collect();
    let mcpd = Mcpd::start(&config(&format!("urls = [{}]", urls.join(", ")), ""), &["/health"]).await;

    // Every instance passed its first health check before /health said ok,
    // so round robin alternates; whatever it did, each client keeps its instance.
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (client, handler) = connect(&mcpd.url("/mcp")).await;
        let name = text_of(&call(&client, "whoami", json!({})).await.expect("whoami"));
        clients.push((client, handler, name));
    }
    let names: HashSet<&str> = clients.iter().map(|c| c.2.as_str()).collect();
    assert_eq!(names, HashSet::from(["ts0", "ts1"]), "sessions reach both instances");
    let (client, handler, _) = &clients[0];
    let echoed = call(client, "echo", json!({"text": "through mcpd"})).await.expect("echo");
    assert_eq!(text_of(&echoed), "through mcpd");
    let stepped = call(client, "steps", json!({"count": 3})).await.expect("steps");
    assert_eq!(text_of(&stepped), "3 steps");
    eventually("the SDK server's log notifications reach the client", Duration::from_secs(10), || async {
        (handler.logs.lock().unwrap().len() == 3).then_some(())
    })
    .await;

    // The server asks the client to sample, on the request's stream; the
    // client's answer is POSTed back and must reach that same instance.
    let sampled = call(client, "sample", json!({"prompt": "a haiku"})).await.expect("sample");
    assert_eq!(text_of(&sampled), "sampled a haiku");

    // An SDK server instance dies: its sessions end (404), the others carry on.
    let raw = Raw::new(mcpd.url("/mcp"));
    let mut on: HashMap<String, String> = HashMap::new();
    while on.len() < 2 {
        let session = raw.initialize().await;
        on.insert(whoami_raw(&raw, &session).await.1, session);
    }
    upstreams[1].kill();
    assert_eq!(whoami_raw(&raw, &on["ts1"]).await.0, 404);
    assert_eq!(whoami_raw(&raw, &on["ts0"]).await, (200, "ts0".into()));
    for (client, _, name) in &clients {
        let result = call(client, "whoami", json!({})).await;
        match name.as_str() {
            "ts0" => assert_eq!(text_of(&result.expect("whoami")), "ts0"),
            // Its session is over (404): rmcp may start a new one, on the live instance.
            _ => {
                if let Ok(result) = result {
                    assert_eq!(text_of(&result), "ts0", "a new session goes to the live instance");
                }
            }
        }
    }
    let fresh = raw.initialize().await;
    assert_eq!(whoami_raw(&raw, &fresh).await, (200, "ts0".into()));
}

#[tokio::test]
async fn an_ejected_instance_takes_sessions_again_once_healthy() {
    let port = free_port();
    let start_fixed = || Upstream::start_on(port, "comeback");
    let steady = Upstream::start("steady", &[]);
    let mut comeback = start_fixed();
    let urls = format!("urls = [{:?}, {:?}]", comeback.url("/mcp"), steady.url("/mcp"));
    let text =
        format!("[server.fx]\n{urls}\nport = {{port}}\n[server.fx.upstream]\nhealth_check_interval = \"100ms\"\n");
    let mcpd = Mcpd::start(&text, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let names = |n| {
        let raw = &raw;
        async move {
            let mut names = HashSet::new();
            for _ in 0..n {
                let session = raw.initialize().await;
                names.insert(whoami_raw(raw, &session).await.1);
                let _ = raw.http.delete(&raw.url).header("mcp-session-id", &session).send().await;
            }
            names
        }
    };
    eventually("both instances take sessions", Duration::from_secs(10), || async {
        (names(4).await.len() == 2).then_some(())
    })
    .await;

    comeback.kill();
    // Ejected (by the next health check, or by the first connection refused).
    eventually("sessions avoid the dead instance", Duration::from_secs(10), || async {
        (names(4).await == HashSet::from(["steady".to_string()])).then_some(())
    })
    .await;
    let mut comeback = start_fixed();
    eventually("the instance takes sessions again once its health check passes", Duration::from_secs(10), || async {
        (names(4).await.len() == 2).then_some(())
    })
    .await;
    comeback.kill();
}

#[tokio::test]
async fn with_every_instance_ejected_a_new_session_still_tries_them() {
    let port = free_port();
    let mut only = Upstream::start_on(port, "only");
    let text = config(&format!("url = {:?}", only.url("/mcp")), "").replace("\"1s\"", "\"1h\"");
    let mcpd = Mcpd::start(&text, &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    only.kill();
    assert_eq!(whoami_raw(&raw, &session).await.0, 404, "its instance is gone (and now ejected)");
    let (status, _) = raw.rpc(None, serde_json::from_str(INIT).unwrap()).await;
    assert_eq!(status, 503, "nothing answers anywhere");
    // Back long before its next health check (an hour away): sessions work at once.
    let _only = Upstream::start_on(port, "only");
    let fresh = raw.initialize().await;
    assert_eq!(whoami_raw(&raw, &fresh).await, (200, "only".into()));
}

#[tokio::test]
async fn a_stateless_instance_serves_mcpd_sessions_and_refuses_get_as_it_does() {
    let stateless = Upstream::start("stateless", &["--stateless"]);
    let mcpd = Mcpd::start(&config(&format!("url = {:?}", stateless.url("/mcp")), ""), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    assert_eq!(whoami_raw(&raw, &session).await, (200, "stateless".into()));
    let (_, body) = raw.rpc(Some(&session), tool_call(2, "session_info", json!({}))).await;
    let info = &body[0]["result"]["structuredContent"];
    assert_eq!(info["session_id"], Value::Null, "the instance issued no session id, so none is sent to it");
    let get = raw
        .http
        .get(&raw.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status(), 405, "the instance has no GET stream");
    assert_eq!(get.headers()["allow"], "POST", "its Allow header comes along");
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    assert_eq!(text_of(&call(&client, "echo", json!({"text": "ok"})).await.expect("echo")), "ok");
}

#[tokio::test]
async fn sessions_keep_their_instance_across_a_reload() {
    let (_upstreams, urls) = instances(3);
    let mcpd = Mcpd::start(&config(&urls, ""), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let mut before = Vec::new();
    for _ in 0..3 {
        let session = raw.initialize().await;
        let name = whoami_raw(&raw, &session).await.1;
        before.push((session, name));
    }
    mcpd.signal(libc::SIGHUP);
    eventually("mcpd reloaded", Duration::from_secs(10), || async {
        mcpd.log_text().contains("plugins reloaded").then_some(())
    })
    .await;
    for (session, name) in &before {
        assert_eq!(&whoami_raw(&raw, session).await, &(200, name.clone()), "same session, same instance");
    }
}

#[tokio::test]
async fn connections_are_reused_until_pool_max_lifetime() {
    let upstream = Upstream::start("aged", &[]);
    let urls = format!("url = {:?}", upstream.url("/mcp"));
    // Health checks would open connections of their own; keep them away.
    let config = format!(
        "[server.fx]\n{urls}\nport = {{port}}\n[server.fx.upstream]\nhealth_check_interval = \"1h\"\npool_max_lifetime = \"300ms\"\n"
    );
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    // One keep-alive client asks the fixture; its own connection counts once.
    let probe = reqwest::Client::new();
    let accepted = || async {
        let text = probe.get(upstream.url("/connections")).send().await.expect("ask").text().await.expect("count");
        text.parse::<u64>().expect("a number")
    };
    call(&client, "echo", json!({"text": "one"})).await.expect("echo");
    let before = accepted().await;
    call(&client, "echo", json!({"text": "two"})).await.expect("echo");
    assert_eq!(accepted().await, before, "a young connection is reused");
    // The limit itself is what is waited for here.
    tokio::time::sleep(Duration::from_millis(400)).await;
    call(&client, "echo", json!({"text": "three"})).await.expect("echo");
    assert_eq!(accepted().await, before + 1, "past pool_max_lifetime a new connection is made");
}

#[tokio::test]
async fn http2_instances_are_reached_over_http2() {
    // The instance speaks HTTP/2 only: an HTTP/1.1 request would fail.
    let upstream = Upstream::start("h2", &["--http2"]);
    let urls = format!("url = {:?}", upstream.url("/mcp"));
    let mcpd = Mcpd::start(&config(&urls, "http2 = true"), &["/health"]).await;
    let (client, _) = connect(&mcpd.url("/mcp")).await;
    let answer = call(&client, "whoami", json!({})).await.expect("whoami over HTTP/2");
    assert_eq!(text_of(&answer), "h2");
    let answer = call(&client, "echo", json!({"text": "multiplexed"})).await.expect("echo over HTTP/2");
    assert_eq!(text_of(&answer), "multiplexed");
}

/// mcpd's resident memory, in bytes.
fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().strip_suffix("kB"));
    kib.and_then(|v| v.trim().parse::<u64>().ok()).expect("VmRSS") * 1024
}

#[tokio::test]
async fn a_client_that_stops_reading_holds_the_instance_back_not_mcpds_memory() {
    use tokio::io::AsyncWriteExt;
    let upstream = Upstream::start("bp", &["--sse"]);
    let urls = format!("url = {:?}", upstream.url("/mcp"));
    let mcpd = Mcpd::start(&config(&urls, ""), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let probe = reqwest::Client::new();
    let sent = || async {
        let text = probe.get(upstream.url("/events-sent")).send().await.expect("ask").text().await.expect("n");
        text.parse::<u64>().expect("a number")
    };
    // 4000 notifications of 16 KiB (64 MiB) asked for by a client that
    // sends its request and never reads a byte of the answer.
    let (count, pad) = (4000u64, 16384u64);
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "slow_stream",
        "arguments": {"count": count, "interval_ms": 0, "pad": pad}, "_meta": {"progressToken": "bp"}}})
    .to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{}\r\ncontent-type: application/json\r\naccept: {ACCEPT_BOTH}\r\nmcp-session-id: {session}\r\nmcp-protocol-version: 2025-11-25\r\ncontent-length: {}\r\n\r\n{body}",
        mcpd.port,
        body.len()
    );
    let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", mcpd.port)).await.expect("connect");
    stalled.write_all(request.as_bytes()).await.expect("send the request");
    // Wait until the flow stops: socket buffers and mcpd's bounded buffers
    // are full and the instance's writes block.
    // Sampling is the only way to see a flow stop.
    let mut last = u64::MAX;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let held_at = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = sent().await;
        if now == last && now > 0 {
            break now;
        }
        last = now;
        assert!(std::time::Instant::now() < deadline, "the stream never stopped flowing ({now} sent)");
    };
    assert!(held_at < count, "every notification was taken although nobody read them");
    let rss = rss_of(mcpd.child.id());
    assert!(rss < 64 << 20, "mcpd holds {} MiB for a client that reads nothing", rss >> 20);
    drop(stalled);
}
