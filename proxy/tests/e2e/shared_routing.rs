//! Where a shared stdio process's unattributable messages go (log lines,
//! list-changed notifications, server→client requests) when several
//! clients have requests in flight on it: a pool with sessions off and a
//! replica shared by sessions. And the other way: that only the client a
//! server request went to can answer it (its id is unguessable, and an
//! answer from anyone else is refused), and that a client's cancellation
//! reaches the shared process for its own request only. And the life of
//! a server request (shared or per session): withdrawn with -32603 when
//! its client goes away or does not answer within `request_timeout`, the
//! server's own withdrawal reaching the client under mcpd's id; and a
//! request the client cancelled ending without an answer. The fixture's
//! `gate` tool waits for a client notification before it logs or asks, so
//! every interleaving here is set up by awaited events, not by timing.
//!
//! Not here: per-session processes (protocol.rs, client.rs) and the
//! stateless bridge's own rules (stateless.rs).

use crate::common::*;
use crate::sse_client::Legacy;
use serde_json::{Value, json};
use std::time::Duration;

const POOLED: &str = "[server.fx]\ncommand = \"{server}\"\nport = {port}\n\
    [server.fx.session]\nenabled = false\n[server.fx.pool]\nsize = 1\n";
const REPLICA: &str = "[server.fx]\ncommand = \"{server}\"\nport = {port}\nreplicas = 1\n";
/// A process per session (the default), for what must match the shared kinds.
const PER_SESSION: &str = "[server.fx]\ncommand = \"{server}\"\nport = {port}\n";

/// One client: its own HTTP connections, and its session when the route has sessions.
struct Client {
    raw: Raw,
    session: Option<String>,
}

impl Client {
    async fn new(mcpd: &Mcpd, sessions: bool) -> Client {
        let raw = Raw::new(mcpd.url("/mcp"));
        let session = match sessions {
            true => Some(raw.initialize().await),
            false => None,
        };
        Client { raw, session }
    }

    /// Calls `gate` and returns its answer stream once the server waits.
    async fn gate(&self, id: u64, key: &str, then: &str) -> Answer {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "gate", "arguments": {"key": key, "then": then, "message": format!("log of {key}")},
            "_meta": {"progressToken": key}}});
        let response = self.raw.post(self.session.as_deref(), body.to_string()).send().await.expect("POST gate");
        assert_eq!(response.status(), 200);
        let mut answer = Answer { response, buffer: String::new(), seen: Vec::new() };
        let first = answer.next().await.expect("the gate's progress");
        assert_eq!(first["method"], "notifications/progress", "{first}");
        answer
    }

    /// Calls `tool` and returns its answer stream as soon as mcpd answers.
    async fn stream(&self, id: u64, tool: &str, arguments: Value) -> Answer {
        let body = tool_call(id, tool, arguments).to_string();
        let response = self.raw.post(self.session.as_deref(), body).send().await.expect("POST tools/call");
        assert_eq!(response.status(), 200);
        Answer { response, buffer: String::new(), seen: Vec::new() }
    }

    /// Sends `notifications/fixture/release`: the gate `key` goes on.
    async fn release(&self, key: &str) {
        let body = json!({"jsonrpc": "2.0", "method": "notifications/fixture/release", "params": {"key": key}});
        let response = self.raw.post(self.session.as_deref(), body.to_string()).send().await.expect("POST release");
        assert_eq!(response.status(), 202);
    }

    /// Answers the server's sampling request `id` with `text`: mcpd's
    /// status and body (a JSON-RPC error when it refused).
    async fn answer(&self, id: &str, text: &str) -> (u16, Value) {
        let result = json!({"role": "assistant", "content": {"type": "text", "text": text}, "model": "m"});
        let body = json!({"jsonrpc": "2.0", "id": id, "result": result});
        let (status, mut messages) = self.raw.rpc(self.session.as_deref(), body).await;
        (status, messages.pop().unwrap_or(Value::Null))
    }

    /// Sends `notifications/cancelled` for this client's request `id`.
    async fn cancel(&self, id: u64) {
        let body = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": id, "reason": "changed my mind"}});
        let response = self.raw.post(self.session.as_deref(), body.to_string()).send().await.expect("POST cancel");
        assert_eq!(response.status(), 202);
    }

    /// What the (one) shared process has seen, from its `stats` tool.
    async fn stats(&self, id: u64) -> Value {
        let (status, messages) = self.raw.rpc(self.session.as_deref(), tool_call(id, "stats", json!({}))).await;
        assert_eq!(status, 200, "{messages:?}");
        serde_json::from_str(&text_of(&messages[0]["result"])).expect("stats JSON")
    }
}

/// A request's SSE answer, read event by event as it arrives.
struct Answer {
    response: reqwest::Response,
    buffer: String,
    seen: Vec<Value>,
}

impl Answer {
    /// The next JSON-RPC message on the stream; `None` when it ends.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                if let Some(message) = sse_data(&event).into_iter().next() {
                    self.seen.push(message.clone());
                    return Some(message);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk()).await;
            match chunk.expect("the answer stream stalled").expect("reading the answer") {
                Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                None => return None,
            }
        }
    }

    /// Reads to the answer; everything the stream carried.
    async fn finish(mut self) -> Vec<Value> {
        while self.next().await.is_some() {}
        self.seen
    }
}

fn logs(messages: &[Value]) -> Vec<String> {
    let logs = messages.iter().filter(|m| m["method"] == "notifications/message");
    logs.map(|m| m["params"]["data"].as_str().unwrap_or("").to_owned()).collect()
}

fn result_text(messages: &[Value]) -> String {
    let answer = messages.last().expect("an answer");
    assert!(answer.get("id").is_some(), "the stream ends with the answer: {messages:?}");
    text_of(&answer["result"])
}

/// The value of the counter `name` whose labels include `label` (0 when absent).
async fn counter(mcpd: &Mcpd, name: &str, label: &str) -> u64 {
    let metrics = reqwest::get(mcpd.url("/metrics")).await.expect("metrics").text().await.expect("text");
    let line = metrics.lines().find(|l| l.starts_with(&format!("{name}{{")) && l.contains(label));
    line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0)
}

async fn unroutable(mcpd: &Mcpd, kind: &str) -> u64 {
    counter(mcpd, "mcpd_unroutable_server_messages_total", &format!("kind=\"{kind}\"")).await
}

async fn refused_answers(mcpd: &Mcpd, reason: &str) -> u64 {
    counter(mcpd, "mcpd_refused_client_answers_total", &format!("reason=\"{reason}\"")).await
}

/// A's log line while B's request is in flight (and newer) reaches
/// neither; B's own log line, once B is alone, reaches B.
async fn log_lines_stay_with_their_client(config: &str, sessions: bool) {
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let (a, b) = (Client::new(&mcpd, sessions).await, Client::new(&mcpd, sessions).await);
    let a_call = a.gate(1, "a", "log").await;
    let b_call = b.gate(1, "b", "log").await;

    a.release("a").await;
    let a_seen = a_call.finish().await;
    assert_eq!(result_text(&a_seen), "gate a: logged");
    b.release("b").await;
    let b_seen = b_call.finish().await;
    assert_eq!(result_text(&b_seen), "gate b: logged");

    assert_eq!(logs(&b_seen), ["log of b"], "B gets its own line, never A's: {b_seen:?}");
    assert!(logs(&a_seen).is_empty(), "two clients were in flight: the line is nobody's to have: {a_seen:?}");
    assert_eq!(unroutable(&mcpd, "notification").await, 1, "the dropped line is counted");
}

#[tokio::test]
async fn a_pooled_process_keeps_one_clients_log_lines_from_another() {
    log_lines_stay_with_their_client(POOLED, false).await;
}

#[tokio::test]
async fn a_shared_replica_keeps_one_sessions_log_lines_from_another() {
    log_lines_stay_with_their_client(REPLICA, true).await;
}

#[tokio::test]
async fn a_server_request_no_client_can_be_told_is_answered_with_an_error() {
    let mcpd = Mcpd::start(POOLED, &["/health"]).await;
    let (a, b) = (Client::new(&mcpd, false).await, Client::new(&mcpd, false).await);
    let a_call = a.gate(1, "a", "sample").await;
    let b_call = b.gate(1, "b", "log").await;

    a.release("a").await;
    let a_seen = a_call.finish().await;
    assert!(
        !a_seen.iter().any(|m| m["method"] == "sampling/createMessage"),
        "nobody is asked on A's behalf: {a_seen:?}"
    );
    let said = result_text(&a_seen);
    assert!(
        said.contains("-32603") && said.contains("cannot tell which client"),
        "the server got mcpd's error: {said}"
    );
    assert_eq!(unroutable(&mcpd, "request").await, 1);

    b.release("b").await;
    let b_seen = b_call.finish().await;
    assert!(!b_seen.iter().any(|m| m["method"] == "sampling/createMessage"), "B was not asked: {b_seen:?}");
    assert_eq!(logs(&b_seen), ["log of b"]);
}

#[tokio::test]
async fn list_changed_reaches_every_client_in_flight() {
    let mcpd = Mcpd::start(POOLED, &["/health"]).await;
    let (a, b) = (Client::new(&mcpd, false).await, Client::new(&mcpd, false).await);
    let a_call = a.gate(1, "a", "changed").await;
    let b_call = b.gate(1, "b", "log").await;

    a.release("a").await;
    let a_seen = a_call.finish().await;
    let changed = |seen: &[Value]| seen.iter().any(|m| m["method"] == "notifications/tools/list_changed");
    assert!(changed(&a_seen), "{a_seen:?}");
    b.release("b").await;
    let b_seen = b_call.finish().await;
    assert!(changed(&b_seen), "a change concerns every client: {b_seen:?}");
}

/// `a`'s gate asks the client to sample; `b` (another client of the same
/// process) answers first and is refused exactly as for an id nobody
/// asked, then `a` answers and its answer is the one the server gets.
async fn only_the_asked_client_answers(mcpd: &Mcpd, a: &Client, b: &Client) {
    let mut a_call = a.gate(1, "a", "sample").await;
    a.release("a").await;
    let ask = a_call.next().await.expect("the server's request");
    assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
    let id = ask["id"].as_str().expect("a gateway id is a string").to_owned();

    let (status, refused) = b.answer(&id, "from b").await;
    assert_eq!(status, 400, "another client cannot answer: {refused}");
    let guessed = format!("mcpd-1-{:032x}", 7);
    let (unknown_status, unknown) = b.answer(&guessed, "guessed").await;
    assert_eq!(unknown_status, 400, "{unknown}");
    assert_eq!(refused["error"]["code"], unknown["error"]["code"], "refused like an unknown id: {refused} {unknown}");
    assert_eq!(refused_answers(mcpd, "not_owner").await, 1);
    assert_eq!(refused_answers(mcpd, "unknown").await, 1);

    let (uid, random) = id.strip_prefix("mcpd-").and_then(|r| r.split_once('-')).expect("mcpd-<process>-<random>");
    assert!(uid.parse::<u64>().is_ok(), "{id}");
    assert!(random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit()), "128 random bits, in hex: {id}");

    assert_eq!(a.answer(&id, "from a").await.0, 202, "the client asked answers");
    let said = result_text(&a_call.finish().await);
    assert!(said.contains("from a") && !said.contains("from b"), "{said}");
}

#[tokio::test]
async fn a_shared_replicas_request_is_answered_only_by_the_session_it_went_to() {
    let mcpd = Mcpd::start(REPLICA, &["/health"]).await;
    let (a, b) = (Client::new(&mcpd, true).await, Client::new(&mcpd, true).await);
    only_the_asked_client_answers(&mcpd, &a, &b).await;
}

/// With sessions off and no principal, the client is its address: `b`
/// connects from 127.0.0.2. `a`'s answer comes on a connection of its own
/// (its request's stream holds the first one) and is taken.
#[tokio::test]
async fn a_pooled_processs_request_is_answered_only_from_the_address_it_went_to() {
    let mcpd = Mcpd::start(POOLED, &["/health"]).await;
    let a = Client::new(&mcpd, false).await;
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("a client bound to 127.0.0.2");
    let b = Client { raw: Raw { http: elsewhere, url: mcpd.url("/mcp") }, session: None };
    only_the_asked_client_answers(&mcpd, &a, &b).await;
}

/// Two sessions on one replica each have a request 1 in flight; B cancels
/// its own: the server hears of it by the id mcpd gave B's request (it is
/// running there), and A's request 1 goes on.
#[tokio::test]
async fn a_cancellation_reaches_a_shared_replica_for_its_own_sessions_request() {
    let mcpd = Mcpd::start(REPLICA, &["/health"]).await;
    let (a, b) = (Client::new(&mcpd, true).await, Client::new(&mcpd, true).await);
    let a_call = a.gate(1, "a", "log").await;
    let b_call = b.gate(1, "b", "log").await;

    // The 202 comes once the cancellation is queued for the process, so
    // the process reads it before the next request.
    b.cancel(1).await;
    let watcher = Client::new(&mcpd, true).await;
    let stats = watcher.stats(1).await;
    assert_eq!(stats["cancelled"], 1, "{stats}");
    assert_eq!(stats["cancelled_running"], 1, "under the id the server knows, while it ran: {stats}");
    let b_seen = b_call.finish().await;
    assert!(!b_seen.iter().any(|m| m["result"].is_object()), "B's request was not answered: {b_seen:?}");

    a.release("a").await;
    assert_eq!(result_text(&a_call.finish().await), "gate a: logged", "A's request 1 was not B's to cancel");
}

/// The same on a pool with sessions off, for legacy SSE clients (each
/// connection is a session): B's cancellation names its own request 1.
#[tokio::test]
async fn a_legacy_connections_cancellation_reaches_the_pool_for_its_own_request() {
    let config =
        POOLED.replace("[server.fx.session]", "transport = [\"streamable-http\", \"sse\"]\n[server.fx.session]");
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let origin = mcpd.url("");
    let (mut a, mut b) = (Legacy::open(&origin, "/sse").await, Legacy::open(&origin, "/sse").await);
    for (client, key) in [(&mut a, "a"), (&mut b, "b")] {
        client.initialize().await;
        let gate = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "gate", "arguments": {"key": key, "then": "log"}, "_meta": {"progressToken": key}}});
        assert_eq!(client.post(&gate).await, 202);
        let waiting = client.stream.next_message().await.json();
        assert_eq!(waiting["method"], "notifications/progress", "{waiting}");
    }

    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}});
    assert_eq!(b.post(&cancel).await, 202);
    let stats = Client::new(&mcpd, false).await.stats(1).await;
    assert_eq!((&stats["cancelled"], &stats["cancelled_running"]), (&json!(1), &json!(1)), "{stats}");

    let release = json!({"jsonrpc": "2.0", "method": "notifications/fixture/release", "params": {"key": "a"}});
    assert_eq!(a.post(&release).await, 202);
    let seen = a.stream.until_answer(1).await;
    assert_eq!(result_text(&seen), "gate a: logged", "A's request 1 was not B's to cancel");
}

/// The stateless bridge keeps one session on an SSE-only instance for every
/// stateless client: two clients using the same JSON-RPC id and progress
/// token each get their own answer and progress.
#[tokio::test]
async fn a_kept_sse_session_keeps_stateless_clients_apart() {
    use crate::stateless::{meta, modern};
    let upstream = crate::http_upstream::Upstream::start("legacy", &[]);
    let config = format!(
        "[server.fx]\nurl = {:?}\nport = {{port}}\n[server.fx.upstream]\ntransport = \"sse\"\n",
        upstream.url("/sse")
    );
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let (a, b) = (Raw::new(mcpd.url("/mcp")), Raw::new(mcpd.url("/mcp")));
    let mut with_token = meta(json!({}));
    with_token["progressToken"] = json!("t");
    // A's call is in flight (its first progress came) and waits 10 s before the next.
    let slow = json!({"name": "slow_stream", "arguments": {"count": 2, "interval_ms": 10000}, "_meta": with_token});
    let response = modern(&a, 7, "tools/call", slow, &[]).send().await.expect("POST");
    assert_eq!(response.status(), 200);
    let mut a_call = Answer { response, buffer: String::new(), seen: Vec::new() };
    let first = a_call.next().await.expect("A's first progress");
    assert_eq!(first["params"]["progress"], 1, "{first}");

    // B, same id and token: its progress and answer are its own.
    let quick = json!({"name": "slow_stream", "arguments": {"count": 1}, "_meta": with_token});
    let (status, b_seen) = messages_of(modern(&b, 7, "tools/call", quick, &[]).send().await.expect("POST")).await;
    assert_eq!(status, 200, "{b_seen:?}");
    assert_eq!(b_seen.last().unwrap()["id"], 7);
    assert_eq!(text_of(&b_seen.last().unwrap()["result"]), "sent 1 notifications", "B's own answer: {b_seen:?}");
    let progress: Vec<&Value> = b_seen.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert_eq!(progress.len(), 1, "{b_seen:?}");
    assert_eq!((&progress[0]["params"]["progressToken"], &progress[0]["params"]["total"]), (&json!("t"), &json!(1)));
    drop(a_call);
}

/// The value of the counter of server requests mcpd withdrew for `reason`.
async fn withdrawn(mcpd: &Mcpd, reason: &str) -> u64 {
    counter(mcpd, "mcpd_withdrawn_server_requests_total", &format!("reason=\"{reason}\"")).await
}

/// Waits until the server has had `n` error answers to its own requests;
/// its stats then.
async fn client_errors(client: &Client, n: u64) -> Value {
    let mut id = 100;
    eventually("the server's request is answered with an error", Duration::from_secs(10), || {
        id += 1;
        async move {
            let stats = client.stats(id).await;
            (stats["client_errors"] == n).then_some(stats)
        }
    })
    .await
}

/// A server request whose client goes away (its request's stream closes
/// before it answers) is not left waiting in the shared process's table:
/// mcpd answers the server with -32603 at once.
#[tokio::test]
async fn a_server_request_is_withdrawn_when_its_client_goes_away() {
    let mcpd = Mcpd::start(POOLED, &["/health"]).await;
    let a = Client::new(&mcpd, false).await;
    let mut a_call = a.stream(1, "sample", json!({"prompt": "anyone?"})).await;
    let ask = a_call.next().await.expect("the server's request");
    assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
    drop(a_call); // the client leaves without answering

    let stats = client_errors(&Client::new(&mcpd, false).await, 1).await;
    let error = &stats["last_client_error"];
    assert_eq!(error["code"], -32603, "{stats}");
    assert!(error["message"].as_str().unwrap_or("").contains("went away"), "{stats}");
    assert_eq!(withdrawn(&mcpd, "client_gone").await, 1);
    let id = ask["id"].as_str().expect("a gateway id");
    assert_eq!(a.answer(id, "too late").await.0, 400, "nothing waits for that answer any more");
}

/// A session of a shared replica that ends (DELETE) while the replica
/// asks it something: the replica lives on, and is answered -32603 at
/// once rather than waiting for a client that is gone.
#[tokio::test]
async fn a_replicas_request_is_withdrawn_when_the_session_asked_ends() {
    let mcpd = Mcpd::start(REPLICA, &["/health"]).await;
    let a = Client::new(&mcpd, true).await;
    let mut a_call = a.stream(1, "sample", json!({"prompt": "anyone?"})).await;
    let ask = a_call.next().await.expect("the server's request");
    assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
    let session = a.session.as_deref().expect("a session");
    let deleted = a.raw.http.delete(&a.raw.url).header("mcp-session-id", session).send().await.expect("DELETE");
    assert!(deleted.status().is_success(), "{}", deleted.status());

    let stats = client_errors(&Client::new(&mcpd, true).await, 1).await;
    assert_eq!(stats["last_client_error"]["code"], -32603, "{stats}");
    assert!(stats["last_client_error"]["message"].as_str().unwrap_or("").contains("session ended"), "{stats}");
    assert_eq!(withdrawn(&mcpd, "session_ended").await, 1);
    drop(a_call);
}

/// A server request its client never answers (the call that carried it
/// was answered; the client is still there) waits at most
/// `http.request_timeout`; then the server gets -32603 and the client
/// can no longer answer it.
#[tokio::test]
async fn an_unanswered_server_request_is_withdrawn_after_request_timeout() {
    let config = format!("{PER_SESSION}[server.fx.http]\nrequest_timeout = \"1s\"\n");
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let a = Client::new(&mcpd, true).await;
    let seen = a.stream(1, "ask_and_go", json!({})).await.finish().await;
    let ask = seen.iter().find(|m| m["method"] == "sampling/createMessage").expect("the server's request");
    assert!(result_text(&seen).starts_with("asked"), "{seen:?}");

    let stats = client_errors(&a, 1).await;
    let error = &stats["last_client_error"];
    assert_eq!(error["code"], -32603, "{stats}");
    assert!(error["message"].as_str().unwrap_or("").contains("request_timeout"), "{stats}");
    assert_eq!(withdrawn(&mcpd, "timeout").await, 1);
    let id = ask["id"].as_str().expect("a gateway id");
    assert_eq!(a.answer(id, "too late").await.0, 400, "nothing waits for that answer any more");
}

/// A server that withdraws its request (its own `notifications/cancelled`)
/// names it by its own id; the client asked knew it by mcpd's. The
/// cancellation reaches that client, under mcpd's id, even while another
/// client has a request in flight (where an unattributable notification
/// would be nobody's), and no one else.
#[tokio::test]
async fn a_servers_cancellation_of_its_request_reaches_the_client_asked_under_mcpds_id() {
    let mcpd = Mcpd::start(POOLED, &["/health"]).await;
    let (a, b) = (Client::new(&mcpd, false).await, Client::new(&mcpd, false).await);
    let mut a_call = a.stream(1, "withdraw", json!({"key": "a"})).await;
    let ask = a_call.next().await.expect("the server's request");
    assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
    let b_call = b.gate(1, "b", "log").await;

    a.release("a").await;
    let a_seen = a_call.finish().await;
    assert!(result_text(&a_seen).starts_with("withdrew"), "{a_seen:?}");
    let cancelled: Vec<&Value> = a_seen.iter().filter(|m| m["method"] == "notifications/cancelled").collect();
    assert_eq!(cancelled.len(), 1, "{a_seen:?}");
    assert_eq!(cancelled[0]["params"]["requestId"], ask["id"], "the id the client was asked under: {a_seen:?}");
    assert_eq!(cancelled[0]["params"]["reason"], "no longer needed");
    let id = ask["id"].as_str().expect("a gateway id");
    assert_eq!(a.answer(id, "too late").await.0, 400, "a withdrawn request takes no answer");

    b.release("b").await;
    let b_seen = b_call.finish().await;
    assert!(!b_seen.iter().any(|m| m["method"] == "notifications/cancelled"), "not B's request: {b_seen:?}");
}

/// The same on a process of one session: the id is rewritten there too.
#[tokio::test]
async fn a_servers_cancellation_of_its_request_carries_mcpds_id_on_a_session_process() {
    let mcpd = Mcpd::start(PER_SESSION, &["/health"]).await;
    let a = Client::new(&mcpd, true).await;
    let mut a_call = a.stream(1, "withdraw", json!({"key": "a"})).await;
    let ask = a_call.next().await.expect("the server's request");
    a.release("a").await;
    let a_seen = a_call.finish().await;
    let cancelled = a_seen.iter().find(|m| m["method"] == "notifications/cancelled").expect("the withdrawal");
    assert_eq!(cancelled["params"]["requestId"], ask["id"], "{a_seen:?}");
}

/// After a client cancels a request nothing more is sent for it (the
/// spec: the receiver of a cancellation does not answer the request), on
/// a shared replica as on a process of the session's own: its stream
/// ends without an answer, and certainly without one that says the
/// process exited.
async fn a_cancelled_request_ends_without_an_answer(config: &str) {
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let a = Client::new(&mcpd, true).await;
    let a_call = a.gate(1, "a", "log").await;
    a.cancel(1).await;
    let seen = a_call.finish().await;
    assert!(!seen.iter().any(|m| m.get("id").is_some()), "no answer after a cancellation: {seen:?}");
    let stats = a.stats(2).await;
    assert_eq!(stats["cancelled_running"], 1, "the server was told: {stats}");
}

#[tokio::test]
async fn a_cancelled_request_on_a_shared_replica_ends_without_an_answer() {
    a_cancelled_request_ends_without_an_answer(REPLICA).await;
}

#[tokio::test]
async fn a_cancelled_request_on_a_session_process_ends_without_an_answer() {
    a_cancelled_request_ends_without_an_answer(PER_SESSION).await;
}
