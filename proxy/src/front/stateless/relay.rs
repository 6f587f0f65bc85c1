//! Relaying one stateless request's answer: one JSON body (its HTTP status
//! from the JSON-RPC error code, as the 2026-07-28 revision wants), or an
//! SSE stream of the notifications that belong to the request, ending with
//! the answer. The client closing the stream cancels the request upstream
//! (the call is dropped, which sends `notifications/cancelled`).
//!
//! Through the bridge, what a session-era server sends is filtered to what
//! the stateless era allows on a request's stream: progress, and log
//! messages only when the request asked for them (`_meta` log level).
//! Requests the server sends the client (sampling, elicitation, roots)
//! cannot travel on that stream: mcpd answers `ping` itself; a request for
//! a capability the client did not declare ends the call with -32021; one
//! the client declared becomes an `InputRequiredResult` (multi round-trip
//! requests): the call waits upstream ([`crate::upstream::bridge::Parked`])
//! until the client retries with the answers and the `requestState` that
//! names it, and its relay goes on in the retry's response. Requests the
//! server sends back to back (within [`GATHER`] of each other) are asked
//! in one result, each under the key the server named in its `_meta`
//! ([`INPUT_KEY`]) or, without one, under the capability's name.

use super::super::plugin_hooks::Caller;
use super::super::respond;
use super::super::streamable_http::{Outcome, Target as HookTarget, server_answer, server_message, timed_out};
use super::answer;
use crate::mcp::era::{self, Envelope};
use crate::mcp::errors::*;
use crate::mcp::jsonrpc::{self, Kind, Message};
use crate::route::Route;
use crate::upstream::bridge::{Asked, Parked, Target};
use crate::upstream::routing::Owner;
use crate::upstream::{Call, Event, UpstreamError};
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use serde_json::Value;
use std::time::Duration;

/// The `_meta` key in a session-era server's request to the client that
/// names the request in the stateless client's `inputRequests` (mcpd's
/// own convention; the session era has no such keys).
pub(super) const INPUT_KEY: &str = "dev.mcpd/inputKey";

/// How long after a server's request to the client mcpd waits for more
/// requests from the same call, to ask them all in one result (a server
/// that needs several answers at once sends its requests back to back).
const GATHER: Duration = Duration::from_millis(50);

/// One stateless request being answered.
pub(super) struct Exchange<'a> {
    pub message: &'a Message<'a>,
    pub envelope: &'a Envelope,
    pub caller: &'a Caller,
    pub target: &'a Target,
    /// The server's identity for results' `_meta` (bridged answers).
    pub server_info: Option<Value>,
}

impl Exchange<'_> {
    fn bridged(&self) -> bool {
        !matches!(self.target, Target::PassThrough)
    }
}

pub(super) enum Relayed {
    Done,
    /// The server refused before anything was sent: the caller answers.
    Rejected(UpstreamError),
}

pub(super) async fn relay(
    http: &mut ServerSession,
    route: &Route,
    mut call: Call,
    exchange: &Exchange<'_>,
) -> pingora::Result<Relayed> {
    let id = exchange.message.id;
    let limits = &route.settings.http;
    let deadline = tokio::time::Instant::now() + limits.request_timeout;
    let hooks = HookTarget { caller: exchange.caller, session: None, outbox: None, request: Some(exchange.message) };
    let mut streaming = false;
    // The server's requests to the client gathered so far, and until when
    // more may join them.
    let mut asked: Vec<Asked> = Vec::new();
    let mut gather_until: Option<tokio::time::Instant> = None;
    loop {
        let until = gather_until.map_or(deadline, |g| g.min(deadline));
        let event = tokio::select! {
            event = tokio::time::timeout_at(until, call.next()) => event,
            _ = http.read_body_or_idle(true) => {
                tracing::debug!(target: "mcpd::access", server = %route.name, "stateless client closed its stream; cancelling upstream request");
                return Ok(Relayed::Done);
            }
        };
        let (payload, status) = match event {
            Ok(Event::Message(bytes)) => {
                let bytes = match exchange.bridged() {
                    true => match server_sent(exchange, bytes.clone()).await {
                        Sent::Pass(bytes) => bytes,
                        Sent::Drop => continue,
                        Sent::Input { key } => {
                            let key = unique(&asked, key);
                            asked.push(Asked { key, request: bytes });
                            gather_until = Some(tokio::time::Instant::now() + GATHER);
                            continue;
                        }
                        Sent::Stop(refusal) => {
                            drop(call); // cancels the request upstream
                            let body = Bytes::from(refusal.body(id));
                            send_last(http, streaming, era::status_of(refusal.code), body).await?;
                            return Ok(Relayed::Done);
                        }
                    },
                    false => bytes,
                };
                let Some(bytes) = server_message(route, &hooks, bytes).await else {
                    continue;
                };
                if !streaming {
                    respond::sse_start(http, &[]).await?;
                    streaming = true;
                }
                respond::sse_event(http, &bytes).await?;
                continue;
            }
            Ok(Event::Response { bytes, is_error }) => {
                let method = exchange.message.method();
                let (bytes, code) = match exchange.bridged() {
                    true => match answer::modernize(&bytes, method, exchange.server_info.as_ref(), id) {
                        Some((bytes, code)) => (Bytes::from(bytes), code),
                        None => (bytes, None),
                    },
                    false => (bytes, None),
                };
                let outcome = if is_error { Outcome::Refused } else { Outcome::Answered };
                let (bytes, _) = server_answer(route, &hooks, id, bytes, outcome).await;
                (bytes, code.map_or(200, era::status_of))
            }
            Ok(Event::Failed(reason)) => (Bytes::from(error_body(id, CONNECTION_CLOSED, &reason)), 502),
            // Cancelled by its client: it ends without an answer.
            Ok(Event::Cancelled) => {
                match streaming {
                    true => respond::sse_end(http).await?,
                    false => respond::sse_empty(http, &[]).await?,
                }
                return Ok(Relayed::Done);
            }
            Ok(Event::Rejected(error)) if !streaming => return Ok(Relayed::Rejected(error)),
            Ok(Event::Rejected(error)) => (Bytes::from(error_body(id, CONNECTION_CLOSED, &error.to_string())), 502),
            // The server asked the client something and sent nothing more
            // for a while: ask the client, the call waits upstream.
            Err(_elapsed) if !asked.is_empty() => {
                let parked = Parked {
                    call,
                    target: exchange.target.clone(),
                    asked,
                    method: exchange.message.method().to_owned(),
                    expires: std::time::Instant::now() + limits.request_timeout,
                };
                let body = input_required(route, parked, id);
                let (body, _) = server_answer(route, &hooks, id, body, Outcome::Answered).await;
                send_last(http, streaming, 200, body).await?;
                return Ok(Relayed::Done);
            }
            Err(_elapsed) => {
                drop(call); // tells the server to cancel
                (timed_out(route, id), 504)
            }
        };
        send_last(http, streaming, status, payload).await?;
        return Ok(Relayed::Done);
    }
}

async fn send_last(http: &mut ServerSession, streaming: bool, status: u16, payload: Bytes) -> pingora::Result<()> {
    match streaming {
        true => {
            respond::sse_event(http, &payload).await?;
            respond::sse_end(http).await
        }
        false => respond::json(http, status, &[], payload).await,
    }
}

/// `key`, or `key-2`, `key-3`… when an earlier request already has it.
fn unique(asked: &[Asked], key: String) -> String {
    let taken = |k: &str| asked.iter().any(|a| a.key == k);
    if !taken(&key) {
        return key;
    }
    (2..).map(|n| format!("{key}-{n}")).find(|k| !taken(k)).unwrap_or(key)
}

/// The key a server named for its request ([`INPUT_KEY`] in its `_meta`).
fn named_key(request: &Message<'_>) -> Option<String> {
    let params: Value = serde_json::from_str(request.params?.get()).ok()?;
    let key = params.get("_meta")?.get(INPUT_KEY)?.as_str()?;
    (!key.is_empty()).then(|| key.to_owned())
}

/// Parks `parked` and returns the `InputRequiredResult` that asks the
/// client for what its server asked (`id`: the request it answers).
pub(super) fn input_required(route: &Route, parked: Parked, id: Option<&serde_json::value::RawValue>) -> Bytes {
    let mut requests = serde_json::Map::new();
    for asked in &parked.asked {
        let request: Value = serde_json::from_slice(&asked.request).unwrap_or_default();
        let mut ask = serde_json::json!({"method": request["method"]});
        if let Some(params) = request.get("params") {
            let mut params = params.clone();
            // mcpd's key convention is between the server and mcpd.
            if let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut) {
                meta.remove(INPUT_KEY);
                if meta.is_empty() {
                    params.as_object_mut().map(|p| p.remove("_meta"));
                }
            }
            ask["params"] = params;
        }
        requests.insert(asked.key.clone(), ask);
    }
    let token = route.bridge.park(parked);
    let result = serde_json::json!({
        "resultType": "input_required",
        "inputRequests": requests,
        "requestState": token,
    });
    let result = serde_json::value::to_raw_value(&result).expect("a Value serializes");
    Bytes::from(jsonrpc::response(id.unwrap_or(jsonrpc::null()).get(), Some(&result), None))
}

/// What becomes of a message a bridged server sent during the request.
enum Sent {
    Pass(Bytes),
    Drop,
    /// The server asked the client something it can answer: ask it (with
    /// whatever else it asks right after) with an `InputRequiredResult`,
    /// under this key.
    Input {
        key: String,
    },
    /// The request cannot go on: answer the client with this error.
    Stop(era::Refusal),
}

/// Log levels, least severe first (RFC 5424 as MCP uses them).
const LEVELS: &[&str] = &["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

async fn server_sent(exchange: &Exchange<'_>, bytes: Bytes) -> Sent {
    let Ok(message) = Message::parse(&bytes) else {
        return Sent::Drop;
    };
    match message.kind() {
        Kind::Response => Sent::Drop,
        Kind::Notification => match message.method() {
            "notifications/progress" => Sent::Pass(bytes),
            "notifications/message" => {
                let Some(wanted) = exchange.envelope.log_level.as_deref() else {
                    return Sent::Drop;
                };
                let level = message
                    .params
                    .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
                    .and_then(|p| p.get("level")?.as_str().map(str::to_owned));
                let rank = |l: &str| LEVELS.iter().position(|x| *x == l);
                match (level.as_deref().and_then(rank), rank(wanted)) {
                    (Some(level), Some(wanted)) if level < wanted => Sent::Drop,
                    _ => Sent::Pass(bytes),
                }
            }
            // Change notifications belong on subscriptions/listen streams.
            _ => Sent::Drop,
        },
        Kind::Request => server_request(exchange, &message).await,
    }
}

/// A request the server sent during the call (the client cannot receive
/// one on a stateless stream): answered here, or the call ends.
async fn server_request(exchange: &Exchange<'_>, request: &Message<'_>) -> Sent {
    let method = request.method();
    let needs = match method {
        "ping" => {
            reply(exchange.target, request, r#"{"result":{}}"#).await;
            return Sent::Drop;
        }
        "sampling/createMessage" => "sampling",
        "elicitation/create" => "elicitation",
        "roots/list" => "roots",
        _ => {
            let error = r#"{"error":{"code":-32601,"message":"mcpd relays no such request to stateless clients"}}"#;
            reply(exchange.target, request, error).await;
            return Sent::Drop;
        }
    };
    // Only these requests may answer with an InputRequiredResult.
    let retryable = matches!(exchange.message.method(), "tools/call" | "prompts/get" | "resources/read");
    if retryable && exchange.envelope.has_capability(needs) {
        return Sent::Input { key: named_key(request).unwrap_or_else(|| needs.to_owned()) };
    }
    let (code, text) = match exchange.envelope.has_capability(needs) {
        false => (
            era::MISSING_CAPABILITY,
            format!("the server needs the client's {needs} capability, which this request does not declare"),
        ),
        true => (
            INTERNAL_ERROR,
            format!(
                "the server sent {method} during {}, which cannot ask the client for input",
                exchange.message.method()
            ),
        ),
    };
    let error = serde_json::json!({"error": {"code": -32603, "message": text}}).to_string();
    reply(exchange.target, request, &error).await;
    let mut refusal = era::Refusal { code, message: text, data: None };
    if code == era::MISSING_CAPABILITY {
        refusal.data = Some(serde_json::json!({"requiredCapabilities": {needs: {}}}));
    }
    Sent::Stop(refusal)
}

/// Answers a server's request upstream; `outcome` is `{"result":…}` or `{"error":…}`.
pub(super) async fn reply(target: &Target, request: &Message<'_>, outcome: &str) {
    let Ok(outcome) = serde_json::from_str::<Value>(outcome) else {
        return;
    };
    let raw = |key: &str| outcome.get(key).and_then(|v| serde_json::value::to_raw_value(v).ok());
    let (result, error) = (raw("result"), raw("error"));
    let body = jsonrpc::response(request.id_text(), result.as_deref(), error.as_deref());
    let Ok(answer) = Message::parse(&body) else {
        return;
    };
    let sent = match target {
        // mcpd answers for its client: it was the one the request went to.
        Target::Process(process, _) => process.answer(&answer, &Owner::gateway()).await.map(|_| ()),
        Target::Session(kept) => {
            let bytes = Bytes::from(body.clone());
            let headers = kept.headers(&http::HeaderMap::new());
            let forward = crate::upstream::session::Forward { message: &answer, body: &bytes, headers: &headers };
            kept.upstream.answer(&forward).await.map(|_| ())
        }
        Target::PassThrough => Ok(()),
    };
    if let Err(error) = sent {
        tracing::debug!("could not answer the server's {} request: {error}", request.method());
    }
}
