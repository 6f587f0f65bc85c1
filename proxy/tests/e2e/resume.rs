//! Resumable Streamable HTTP streams (2025-11-25), on the wire: event ids
//! that name their stream, the priming event with `retry`, a dropped POST
//! answer resumed by `GET` + `Last-Event-ID` with exactly the missed events
//! (and the request not cancelled), the GET stream resumed the same way,
//! the replay buffer's bound, keepalive comments on idle streams, and the
//! Rust SDK (rmcp) resuming by itself after a network drop mid-answer.

use crate::common::*;
use crate::sse_client::{Event, EventStream};
use serde_json::{Value, json};
use std::time::Duration;

fn config(http: &str) -> String {
    format!("[server.fx]\ncommand = \"{{server}}\"\nport = {{port}}\n[server.fx.http]\n{http}\n")
}

fn get(raw: &Raw, session: &str, last_event_id: Option<&str>) -> reqwest::RequestBuilder {
    let mut request = raw
        .http
        .get(&raw.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request
}

fn post(raw: &Raw, session: &str, body: Value) -> reqwest::RequestBuilder {
    raw.post(Some(session), body.to_string()).header("mcp-protocol-version", "2025-11-25")
}

fn progress_call(id: u64, steps: u64, interval_ms: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "progress",
        "arguments": {"steps": steps, "interval_ms": interval_ms}, "_meta": {"progressToken": "t"}}})
}

/// The progress step or "answer" an event carries.
fn what(event: &Event) -> String {
    let message = event.json();
    match message["params"]["progress"].as_u64() {
        Some(step) => format!("step {step}"),
        None if message.get("result").is_some() => "answer".into(),
        None => format!("{message}"),
    }
}

/// Every event until the server ends the stream.
async fn drain(stream: &mut EventStream) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        if event.event != ":" {
            events.push(event);
        }
    }
    events
}

async fn cancelled(raw: &Raw, session: &str) -> u64 {
    let (_, body) = raw.rpc(Some(session), tool_call(99, "stats", json!({}))).await;
    let stats: Value = serde_json::from_str(&text_of(&body[0]["result"])).expect("stats JSON");
    stats["cancelled"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn a_dropped_answer_stream_resumes_with_exactly_the_missed_events() {
    let mcpd = Mcpd::start(&config(""), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;

    let mut stream = EventStream::open(post(&raw, &session, progress_call(1, 6, 100))).await;
    assert_eq!(stream.status, 200);
    let priming = stream.next().await.expect("a priming event");
    assert!(priming.data.is_empty() && priming.id.is_some(), "priming: an id and empty data: {priming:?}");
    assert_eq!(priming.retry, Some(1000), "and the retry delay (http.sse_retry)");
    let first = stream.next_message().await;
    let second = stream.next_message().await;
    assert_eq!((what(&first), what(&second)), ("step 1".into(), "step 2".into()));
    let ids = [&priming, &first, &second].map(|e| e.id.clone().expect("every event has an id"));
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "ids are unique: {ids:?}");
    drop(stream); // the connection drops mid-answer

    let mut resumed = EventStream::open(get(&raw, &session, Some(&ids[2]))).await;
    assert_eq!(resumed.status, 200);
    let rest: Vec<String> = drain(&mut resumed).await.iter().map(what).collect();
    assert_eq!(rest, ["step 3", "step 4", "step 5", "step 6", "answer"], "exactly what was missed, then the rest");
    assert_eq!(cancelled(&raw, &session).await, 0, "a dropped stream is not a cancellation");

    // Ids name their stream: one from another session's view is refused.
    let other = raw.initialize().await;
    let refused = get(&raw, &other, Some(&ids[2])).send().await.unwrap();
    assert_eq!(refused.status(), 400, "no such stream in that session");
}

#[tokio::test]
async fn the_replay_buffer_keeps_only_the_last_events() {
    let mcpd = Mcpd::start(&config("sse_replay_buffer = 3"), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let mut stream = EventStream::open(post(&raw, &session, progress_call(1, 8, 60))).await;
    stream.next().await.expect("priming");
    let first = stream.next_message().await;
    assert_eq!(what(&first), "step 1");
    let cursor = first.id.clone().unwrap();
    drop(stream);
    // Once the request is over, a resume gets the buffer and nothing more:
    // 8 steps and the answer were written, 3 are kept.
    let kept = eventually("the request finishes", Duration::from_secs(10), || async {
        let mut resumed = EventStream::open(get(&raw, &session, Some(&cursor))).await;
        let events: Vec<String> = drain(&mut resumed).await.iter().map(what).collect();
        (events.len() == 3).then_some(events)
    })
    .await;
    assert_eq!(kept, ["step 7", "step 8", "answer"]);
}

#[tokio::test]
async fn the_get_stream_resumes_after_a_drop_without_loss_or_repeats() {
    let mcpd = Mcpd::start(&config("sse_keepalive = \"200ms\""), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let later = |id: u64, text: &str, ms: u64| tool_call(id, "later", json!({"message": text, "ms": ms}));

    let mut stream = EventStream::open(get(&raw, &session, None)).await;
    let priming = stream.next().await.expect("priming");
    assert!(priming.data.is_empty() && priming.id.is_some(), "{priming:?}");
    // An idle stream gets keepalive comments.
    let idle = stream.next().await.expect("a keepalive");
    assert_eq!(idle.event, ":", "a comment: {idle:?}");

    assert_eq!(raw.rpc(Some(&session), later(1, "one", 1)).await.0, 200);
    let one = stream.next_message().await;
    assert_eq!(one.json()["params"]["data"], "one");
    // "two" comes 200 ms after its answer: the client is gone by then.
    assert_eq!(raw.rpc(Some(&session), later(2, "two", 200)).await.0, 200);
    drop(stream);

    // Until mcpd noticed the drop, the stream is still taken (409).
    let last = one.id.clone().expect("an id");
    let mut resumed = eventually("the dropped stream is released", Duration::from_secs(5), || async {
        let stream = EventStream::open(get(&raw, &session, Some(&last))).await;
        (stream.status == 200).then_some(stream)
    })
    .await;
    let two = resumed.next_message().await;
    assert_eq!(two.json()["params"]["data"], "two", "the missed event, once");
    assert_eq!(raw.rpc(Some(&session), later(3, "three", 1)).await.0, 200);
    let three = resumed.next_message().await;
    assert_eq!(three.json()["params"]["data"], "three", "then the stream carries on");
    assert!(two.id.is_some() && two.id != one.id && three.id != two.id, "{:?} {:?} {:?}", one.id, two.id, three.id);

    // When mcpd closes the stream (here: the session is deleted), its last
    // event says when to reconnect, from the last event written.
    let deleted = raw.http.delete(&raw.url).header("mcp-session-id", &session).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    let rest = drain(&mut resumed).await;
    let last = rest.last().expect("a closing event");
    assert_eq!((last.retry, last.id.as_ref()), (Some(1000), three.id.as_ref()), "{rest:?}");
}

#[tokio::test]
async fn resumability_can_be_turned_off() {
    let mcpd = Mcpd::start(&config("sse_replay_buffer = 0"), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let mut stream = EventStream::open(post(&raw, &session, progress_call(1, 2, 1))).await;
    let events = drain(&mut stream).await;
    assert_eq!(events.iter().map(what).collect::<Vec<_>>(), ["step 1", "step 2", "answer"], "no priming event");
    assert!(events.iter().all(|e| e.id.is_none()), "no ids: {events:?}");
}

#[tokio::test]
async fn a_quiet_answer_stream_gets_keepalive_comments() {
    let mcpd = Mcpd::start(&config("sse_keepalive = \"100ms\""), &["/health"]).await;
    let raw = Raw::new(mcpd.url("/mcp"));
    let session = raw.initialize().await;
    let mut stream = EventStream::open(post(&raw, &session, progress_call(1, 2, 450))).await;
    let mut seen = Vec::new();
    while let Some(event) = stream.next().await {
        seen.push(match event.event.as_str() {
            ":" => "keepalive".to_string(),
            _ if event.data.is_empty() => "priming".to_string(),
            _ => what(&event),
        });
    }
    let step1 = seen.iter().position(|e| e == "step 1").expect("step 1");
    let step2 = seen.iter().position(|e| e == "step 2").expect("step 2");
    assert!(seen[step1..step2].iter().any(|e| e == "keepalive"), "a comment in the quiet gap: {seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("answer"), "{seen:?}");
}

/// A loopback TCP proxy to `target` that cuts the first connection on
/// which a progress notification passes, right after forwarding it: a
/// network drop in the middle of an answer stream. Its port.
async fn cutting_proxy(target: u16) -> u16 {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
    let port = listener.local_addr().expect("its address").port();
    let cut = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else { continue };
            let cut = Arc::clone(&cut);
            tokio::spawn(async move {
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let upstream = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                let mut buffer = vec![0u8; 64 * 1024];
                while let Ok(n) = server_read.read(&mut buffer).await {
                    if n == 0 || client_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                    let progress = buffer[..n].windows(22).any(|w| w == b"notifications/progress");
                    if progress && !cut.swap(true, Ordering::SeqCst) {
                        break; // drop both directions
                    }
                }
                upstream.abort();
            });
        }
    });
    port
}

#[tokio::test]
async fn the_rust_sdk_resumes_a_dropped_answer_stream_by_itself() {
    let mcpd = Mcpd::start(&config("sse_retry = \"50ms\""), &["/health"]).await;
    let proxy = cutting_proxy(mcpd.port).await;
    let (client, handler) = connect(&format!("http://127.0.0.1:{proxy}/mcp")).await;
    let params = rmcp::model::CallToolRequestParams::new("progress")
        .with_arguments(json!({"steps": 5, "interval_ms": 150}).as_object().cloned().unwrap_or_default());
    let request = rmcp::model::ClientRequest::CallToolRequest(rmcp::model::Request::new(params));
    let options = rmcp::service::PeerRequestOptions::no_options();
    let handle = client.send_cancellable_request(request, options).await.expect("sent");
    let answer = handle.await_response().await.expect("the answer arrives despite the drop");
    let answer = serde_json::to_value(answer).unwrap_or_default();
    assert_eq!(text_of(&answer), "done after 5 steps", "{answer}");
    let steps: Vec<f64> = handler.progress.lock().unwrap().iter().map(|p| p.progress).collect();
    assert_eq!(steps, [1.0, 2.0, 3.0, 4.0, 5.0], "every step once, none lost or repeated");
    let log = mcpd.log_text();
    assert!(log.contains("client left a resumable stream"), "the stream really dropped:\n{log}");
    let stats = call(&client, "stats", json!({})).await.expect("stats");
    let stats: Value = serde_json::from_str(&text_of(&stats)).unwrap();
    assert_eq!(stats["cancelled"], 0, "the server was not told to cancel");
}
