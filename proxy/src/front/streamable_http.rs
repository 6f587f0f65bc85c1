//! The MCP endpoint, Streamable HTTP session era (2025-03-26 … 2025-11-25).
//!
//! - POST carries one JSON-RPC message. Requests are answered with one JSON
//!   body, or with an SSE stream when the server sends something for the
//!   client (progress, logs, sampling…) before its answer. Notifications and
//!   the client's answers to server requests get 202.
//! - `initialize` creates a session (`Mcp-Session-Id`) with its own server
//!   process; with sessions off it is answered from the warm pool's handshake.
//! - GET opens the session's stream for server messages no request waits for.
//! - DELETE ends the session.
//!
//! The checks the spec asks for (Accept, Content-Type, session id, protocol
//! version) happen here, before anything reaches a server. What a server
//! process does with a message is [`crate::upstream::stdio`]'s business.

use super::plugin_hooks::{self, Caller, Filtered};
use super::respond::{self, Headers};
use crate::gateway::Gateway;
use crate::mcp::errors::*;
use crate::mcp::jsonrpc::{self, Kind, Message, ParseError};
use crate::mcp::{PROTOCOL_HEADER, SESSION_HEADER, version};
use crate::plugin::bindings::Rejection;
use crate::plugin::chain::Verdict;
use crate::plugin::loaded::Hook;
use crate::route::{Health, Route};
use crate::session::outbox::Outbox;
use crate::session::{Refusal, Session};
use crate::upstream::stdio::{Call, Event, StdioProcess, UpstreamError};
use bytes::{Bytes, BytesMut};
use http::Method;
use pingora::protocols::http::ServerSession;
use serde_json::value::RawValue;
use std::sync::Arc;

pub async fn serve(gateway: &Arc<Gateway>, route: &Arc<Route>, http: &mut ServerSession) -> pingora::Result<()> {
    // A client that hangs up must be noticed while we wait on the server.
    http.set_abort_on_close(true);
    let plugins = &route.plugins;
    let mut caller = Caller::of(http, client_address(http), &plugins.headers);
    if plugins.wants(Hook::HttpRequest) {
        if let Some(stop) = plugin_hooks::http_request(route, http, &mut caller).await {
            return answer_verdict(http, None, stop, false).await;
        }
    }
    let method = http.req_header().method.clone();
    match method {
        Method::POST => post(gateway, route, http, &caller).await,
        Method::GET => get(gateway, route, http, &caller).await,
        Method::DELETE => delete(gateway, route, http).await,
        _ => {
            let allow = [("allow", "GET, POST, DELETE")];
            respond::rpc_error(http, 405, None, INVALID_REQUEST, "method not allowed", &allow).await
        }
    }
}

fn header<'a>(http: &'a ServerSession, name: &str) -> Option<&'a str> {
    http.get_header(name).and_then(|v| v.to_str().ok())
}

/// Whether an `Accept` header admits `mime` (exactly, by `type/*`, or `*/*`).
fn accepts(accept: &str, mime: &str) -> bool {
    let family = mime.split('/').next().unwrap_or("");
    accept.split(',').any(|item| {
        let item = item.split(';').next().unwrap_or("").trim();
        item.eq_ignore_ascii_case(mime)
            || item == "*/*"
            || item.strip_suffix("/*").is_some_and(|f| f.eq_ignore_ascii_case(family))
    })
}

fn client_address(http: &ServerSession) -> String {
    http.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

/// Answers with what a plugin decided instead of forwarding.
async fn answer_verdict(
    http: &mut ServerSession,
    id: Option<&RawValue>,
    verdict: Verdict,
    is_request: bool,
) -> pingora::Result<()> {
    match verdict {
        Verdict::Reject(rejection) => reject(http, id, &rejection).await,
        Verdict::Respond(result) if is_request => match RawValue::from_string(result) {
            Ok(result) => {
                let body = jsonrpc::response(id.unwrap_or(jsonrpc::null()).get(), Some(&result), None);
                respond::json(http, 200, &[], Bytes::from(body)).await
            }
            Err(_) => {
                let message = "a plugin answered with a result that is not JSON";
                respond::rpc_error(http, 500, id, INTERNAL_ERROR, message, &[]).await
            }
        },
        Verdict::Respond(_) | Verdict::Proceed => respond::empty(http, 202, &[]).await,
        Verdict::Reply(reply) => {
            let headers: Vec<(&str, &str)> =
                reply.headers.iter().map(|h| (h.name.as_str(), h.value.as_str())).collect();
            respond::body(http, reply.status, None, &headers, Bytes::from(reply.body)).await
        }
    }
}

/// `/.well-known/oauth-protected-resource/…`: what the route's plugins
/// answer (an auth plugin replies with the document), else 404.
pub async fn resource_metadata(route: &Arc<Route>, http: &mut ServerSession) -> pingora::Result<()> {
    let plugins = &route.plugins;
    if plugins.wants(Hook::HttpRequest) {
        let mut caller = Caller::of(http, client_address(http), &plugins.headers);
        if let Some(verdict @ Verdict::Reply(_)) = plugin_hooks::http_request(route, http, &mut caller).await {
            return answer_verdict(http, None, verdict, false).await;
        }
    }
    let body = Bytes::from(r#"{"error":"this route publishes no protected-resource metadata"}"#);
    respond::json(http, 404, &[], body).await
}

/// A plugin's rejection: its status, headers and JSON-RPC error.
async fn reject(http: &mut ServerSession, id: Option<&RawValue>, rejection: &Rejection) -> pingora::Result<()> {
    let status = match rejection.status {
        400..=599 => rejection.status,
        _ => 500,
    };
    let headers: Vec<(&str, &str)> = rejection.headers.iter().map(|h| (h.name.as_str(), h.value.as_str())).collect();
    let body = plugin_hooks::error_response(id, &rejection.error);
    respond::json(http, status, &headers, Bytes::from(body)).await
}

async fn post(
    gateway: &Arc<Gateway>,
    route: &Arc<Route>,
    http: &mut ServerSession,
    caller: &Caller,
) -> pingora::Result<()> {
    let Some(_in_flight) = gateway.begin_request() else {
        http.set_keepalive(None);
        let retry = [("retry-after", "1")];
        return respond::rpc_error(http, 503, None, INTERNAL_ERROR, "mcpd is shutting down", &retry).await;
    };
    let limits = &route.settings.http;

    let content_type = header(http, "content-type").unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with("application/json") {
        http.set_keepalive(None);
        let message = "Content-Type must be application/json";
        return respond::rpc_error(http, 415, None, INVALID_REQUEST, message, &[]).await;
    }
    let accept = header(http, "accept").unwrap_or("");
    if !(accepts(accept, "application/json") && accepts(accept, "text/event-stream")) {
        http.set_keepalive(None);
        let message = "Accept must list both application/json and text/event-stream";
        return respond::rpc_error(http, 406, None, INVALID_REQUEST, message, &[]).await;
    }
    let declared = header(http, "content-length").and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_request_size) {
        return too_large(http, limits.max_request_size).await;
    }
    let Ok(_permit) = Arc::clone(&route.limiter).try_acquire_owned() else {
        http.set_keepalive(None);
        let message = format!(
            "too many requests in progress for server {:?} (http.max_concurrent_requests = {})",
            &*route.name, limits.max_concurrent_requests
        );
        return respond::rpc_error(http, 503, None, LIMIT_EXCEEDED, &message, &[("retry-after", "1")]).await;
    };
    let Some(body) = read_body(http, limits.max_request_size).await? else {
        return too_large(http, limits.max_request_size).await;
    };

    if jsonrpc::is_batch(&body) {
        let message = "JSON-RPC batches are not supported (MCP removed them in 2025-06-18)";
        return respond::rpc_error(http, 400, None, INVALID_REQUEST, message, &[]).await;
    }
    let message = match Message::parse(&body) {
        Ok(message) => message,
        Err(error) => {
            let code = match error {
                ParseError::NotJson(_) => PARSE_ERROR,
                ParseError::Invalid(_) => INVALID_REQUEST,
            };
            return respond::rpc_error(http, 400, None, code, &error.to_string(), &[]).await;
        }
    };
    // Plugins see the validated message; a changed one is parsed again.
    let body = match route.plugins.wants(Hook::Request) {
        false => body.clone(),
        true => {
            let session = header(http, SESSION_HEADER).map(str::to_owned);
            match plugin_hooks::message(Hook::Request, route, caller, session.as_deref(), body.clone(), None).await {
                Filtered::Pass(bytes) => bytes,
                Filtered::Stop(verdict) => {
                    let is_request = message.kind() == Kind::Request;
                    return answer_verdict(http, message.id, verdict, is_request).await;
                }
            }
        }
    };
    let Ok(message) = Message::parse(&body) else {
        return respond::rpc_error(http, 500, message.id, INTERNAL_ERROR, "a plugin made the message invalid", &[])
            .await;
    };
    tracing::debug!(target: "mcpd::access", server = %route.name, method = message.method(), kind = ?message.kind(), "POST");
    if let Some(translator) = &route.translator {
        return super::translate::post(route, translator, http, &message, caller).await;
    }
    match (message.kind(), message.method()) {
        (Kind::Request, "initialize") => match &route.pool {
            Some(_) => initialize_from_pool(route, http, &message).await,
            None => initialize_session(gateway, route, http, &message, caller).await,
        },
        (Kind::Request, _) => request(gateway, route, http, &message, caller).await,
        (Kind::Notification, _) => notification(gateway, route, http, &message).await,
        (Kind::Response, _) => client_answer(gateway, route, http, &message).await,
    }
}

async fn too_large(http: &mut ServerSession, limit: u64) -> pingora::Result<()> {
    // The rest of the body is not read: the connection cannot be reused.
    http.set_keepalive(None);
    let message = format!("request body is larger than {limit} bytes (http.max_request_size)");
    respond::rpc_error(http, 413, None, LIMIT_EXCEEDED, &message, &[]).await
}

/// The whole request body, or `None` when it exceeds `limit` bytes.
async fn read_body(http: &mut ServerSession, limit: u64) -> pingora::Result<Option<Bytes>> {
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    while let Some(chunk) = http.read_request_body().await? {
        let so_far = first.as_ref().map_or(0, Bytes::len) + rest.len();
        if (so_far + chunk.len()) as u64 > limit {
            return Ok(None);
        }
        match &first {
            None => first = Some(chunk),
            Some(_) => rest.extend_from_slice(&chunk),
        }
    }
    Ok(Some(match (first, rest.is_empty()) {
        (Some(first), true) => first,
        (Some(first), false) => {
            let mut all = BytesMut::with_capacity(first.len() + rest.len());
            all.extend_from_slice(&first);
            all.extend_from_slice(&rest);
            all.freeze()
        }
        (None, _) => Bytes::new(),
    }))
}

/// The session a non-initialize message belongs to, after the spec's checks;
/// `None` when an error response has been sent instead.
async fn find_session(
    gateway: &Arc<Gateway>,
    route: &Route,
    http: &mut ServerSession,
    id: Option<&RawValue>,
) -> pingora::Result<Option<Arc<Session>>> {
    if !check_protocol_version(http, id).await? {
        return Ok(None);
    }
    let Some(session_id) = header(http, SESSION_HEADER) else {
        let message = "Bad Request: Mcp-Session-Id header is required (send initialize first)";
        respond::rpc_error(http, 400, id, INVALID_REQUEST, message, &[]).await?;
        return Ok(None);
    };
    match gateway.sessions.get(session_id, &route.name) {
        Some(session) => Ok(Some(session)),
        None => {
            let message = "Session not found: it ended or never existed; initialize a new one";
            respond::rpc_error(http, 404, id, SESSION_NOT_FOUND, message, &[]).await?;
            Ok(None)
        }
    }
}

/// 400 for an `MCP-Protocol-Version` mcpd does not speak; a missing header
/// means 2025-03-26 and is fine.
pub(super) async fn check_protocol_version(http: &mut ServerSession, id: Option<&RawValue>) -> pingora::Result<bool> {
    match header(http, PROTOCOL_HEADER) {
        Some(v) if !version::is_supported(v) => {
            let message = format!(
                "Bad Request: unsupported MCP-Protocol-Version {v:?} (supported: {})",
                version::SUPPORTED.join(", ")
            );
            respond::rpc_error(http, 400, id, INVALID_REQUEST, &message, &[]).await?;
            Ok(false)
        }
        _ => Ok(true),
    }
}

async fn initialize_session(
    gateway: &Arc<Gateway>,
    route: &Arc<Route>,
    http: &mut ServerSession,
    message: &Message<'_>,
    caller: &Caller,
) -> pingora::Result<()> {
    // Sessions count against who the client is: its principal when a plugin
    // (e.g. auth) named one, else its address.
    let client = caller.principal.clone().unwrap_or_else(|| caller.client.clone());
    let settings = &route.settings;
    let reservation = match gateway.sessions.reserve(&route.name, &client, settings.session.max_per_client) {
        Ok(reservation) => reservation,
        Err(refusal) => {
            let (status, retry) = match refusal {
                Refusal::PerClient(_) => (429, "5"),
                Refusal::Gateway(_) => (503, "5"),
            };
            let text = refusal.to_string();
            return respond::rpc_error(http, status, message.id, LIMIT_EXCEEDED, &text, &[("retry-after", retry)])
                .await;
        }
    };
    let outbox = Arc::new(Outbox::default());
    let process = match StdioProcess::spawn(settings, Some(Arc::clone(&outbox))) {
        Ok(process) => process,
        Err(error) => {
            route.set_health(Health::Down(error.to_string()));
            return respond::rpc_error(http, 502, message.id, CONNECTION_CLOSED, &error.to_string(), &[]).await;
        }
    };
    let session = gateway.sessions.insert(reservation, process, outbox, settings.session.idle_timeout);
    let _busy = session.enter(&gateway.sessions);
    tracing::info!(server = %route.name, session = %session.id, client = %client, pid = ?session.process.pid, "session created");

    let call = session.process.call(message.id.unwrap_or(jsonrpc::null()), "initialize", message.params).await;
    let outcome = match call {
        Ok(call) => {
            let extra = [(SESSION_HEADER, session.id.as_str())];
            let target =
                Target { caller, session: Some(&session.id), outbox: Some(&session.outbox), request: Some(message) };
            relay(http, route, call, message.id, target, &extra).await?
        }
        Err(error) => {
            respond::rpc_error(http, 502, message.id, CONNECTION_CLOSED, &error.to_string(), &[]).await?;
            Outcome::Failed
        }
    };
    if outcome != Outcome::Answered {
        // The handshake did not complete: no session to keep.
        gateway.sessions.remove(&session.id);
    }
    Ok(())
}

async fn initialize_from_pool(route: &Route, http: &mut ServerSession, message: &Message<'_>) -> pingora::Result<()> {
    let init = route.pool.as_ref().and_then(|pool| pool.init_result());
    let Some(init) = init else {
        return not_ready(route, http, message.id).await;
    };
    // The client asked for a revision; answer with it when mcpd speaks it.
    let requested: Option<String> = message
        .params
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok())
        .and_then(|p| p.get("protocolVersion")?.as_str().map(str::to_owned));
    let mut result: serde_json::Value = serde_json::from_str(init.get()).unwrap_or_default();
    result["protocolVersion"] = serde_json::Value::from(version::negotiate(requested.as_deref()));
    let result = RawValue::from_string(result.to_string()).expect("a Value serializes to JSON");
    let body = jsonrpc::response(message.id_text(), Some(&result), None);
    respond::json(http, 200, &[], Bytes::from(body)).await
}

async fn not_ready(route: &Route, http: &mut ServerSession, id: Option<&RawValue>) -> pingora::Result<()> {
    let why = match route.health() {
        Health::Down(error) => format!("server {:?} is down: {error}", &*route.name),
        _ => format!("server {:?} is starting", &*route.name),
    };
    respond::rpc_error(http, 503, id, CONNECTION_CLOSED, &why, &[("retry-after", "1")]).await
}

async fn request(
    gateway: &Arc<Gateway>,
    route: &Arc<Route>,
    http: &mut ServerSession,
    message: &Message<'_>,
    caller: &Caller,
) -> pingora::Result<()> {
    let id = message.id;
    let (process, session) = match &route.pool {
        Some(pool) => {
            if !check_protocol_version(http, id).await? {
                return Ok(());
            }
            match pool.pick() {
                Some(process) => (process, None),
                None => return not_ready(route, http, id).await,
            }
        }
        None => match find_session(gateway, route, http, id).await? {
            Some(session) => (Arc::clone(&session.process), Some(session)),
            None => return Ok(()),
        },
    };
    let _busy = session.as_ref().map(|s| s.enter(&gateway.sessions));
    match process.call(id.unwrap_or(jsonrpc::null()), message.method(), message.params).await {
        Ok(call) => {
            let target = Target {
                caller,
                session: session.as_ref().map(|s| s.id.as_str()),
                outbox: session.as_ref().map(|s| &*s.outbox),
                request: Some(message),
            };
            relay(http, route, call, id, target, &[]).await.map(|_| ())
        }
        Err(error) => upstream_gone(gateway, route, http, session.as_deref(), id, &error).await,
    }
}

/// The process behind a request is gone: a session ends (404, so the client
/// re-initializes); a pool asks the client to retry.
async fn upstream_gone(
    gateway: &Gateway,
    route: &Route,
    http: &mut ServerSession,
    session: Option<&Session>,
    id: Option<&RawValue>,
    error: &UpstreamError,
) -> pingora::Result<()> {
    match session {
        Some(session) => {
            gateway.sessions.remove(&session.id);
            let message = format!("Session not found: its server process exited ({error})");
            respond::rpc_error(http, 404, id, SESSION_NOT_FOUND, &message, &[]).await
        }
        None => not_ready(route, http, id).await,
    }
}

async fn notification(
    gateway: &Arc<Gateway>,
    route: &Route,
    http: &mut ServerSession,
    message: &Message<'_>,
) -> pingora::Result<()> {
    let method = message.method();
    match &route.pool {
        Some(pool) => {
            if !check_protocol_version(http, None).await? {
                return Ok(());
            }
            // The pool completed its own handshake; with clients sharing
            // processes, a client's cancellation is known only by its
            // (possibly shared) id, so mcpd cancels on disconnect instead.
            if method != "notifications/initialized" && method != "notifications/cancelled" {
                for process in pool.all() {
                    let _ = process.notify(method, message.params).await;
                }
            }
        }
        None => {
            let Some(session) = find_session(gateway, route, http, None).await? else {
                return Ok(());
            };
            let _busy = session.enter(&gateway.sessions);
            if method == "notifications/cancelled" {
                let params: Option<CancelParams> = message.params.and_then(|p| serde_json::from_str(p.get()).ok());
                if let Some(params) = params {
                    session.process.cancel_by_client_id(params.request_id, params.reason);
                }
            } else if let Err(error) = session.process.notify(method, message.params).await {
                return upstream_gone(gateway, route, http, Some(&session), None, &error).await;
            }
        }
    }
    respond::empty(http, 202, &[]).await
}

#[derive(serde::Deserialize)]
struct CancelParams<'a> {
    #[serde(borrow, rename = "requestId")]
    request_id: &'a RawValue,
    #[serde(borrow, default)]
    reason: Option<&'a RawValue>,
}

/// The client answers a request its server sent (sampling, elicitation…).
async fn client_answer(
    gateway: &Arc<Gateway>,
    route: &Route,
    http: &mut ServerSession,
    message: &Message<'_>,
) -> pingora::Result<()> {
    // Gateway ids look like "mcpd-<process uid>-<sequence>".
    let parsed = message
        .id
        .and_then(|id| serde_json::from_str::<&str>(id.get()).ok())
        .and_then(|id| id.strip_prefix("mcpd-"))
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(uid, seq)| Some((uid.parse::<u64>().ok()?, seq.parse::<u64>().ok()?)));
    let session;
    let process = match &route.pool {
        Some(pool) => parsed.and_then(|(uid, _)| pool.find(uid)),
        None => {
            session = match find_session(gateway, route, http, None).await? {
                Some(session) => session,
                None => return Ok(()),
            };
            let owner = Arc::clone(&session.process);
            parsed.filter(|(uid, _)| *uid == owner.uid).map(|_| owner)
        }
    };
    let accepted = match (process, parsed) {
        (Some(process), Some((_, sequence))) => process.answer(sequence, message).await.unwrap_or(false),
        _ => false,
    };
    match accepted {
        true => respond::empty(http, 202, &[]).await,
        false => {
            let text = format!("no server request with id {} is waiting for an answer", message.id_text());
            respond::rpc_error(http, 400, None, INVALID_REQUEST, &text, &[]).await
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The server answered (with a result).
    Answered,
    /// The server answered with a JSON-RPC error.
    Refused,
    /// The process died, or the request timed out, or the client left.
    Failed,
}

/// Who a relayed answer is for.
pub(super) struct Target<'a> {
    pub caller: &'a Caller,
    pub session: Option<&'a str>,
    pub outbox: Option<&'a Outbox>,
    /// The request being answered (response hooks see its method and name).
    pub request: Option<&'a Message<'a>>,
}

/// Runs the response hooks over a server message; `None` drops it.
async fn server_message(route: &Route, target: &Target<'_>, bytes: Bytes) -> Option<Bytes> {
    if !route.plugins.wants(Hook::Response) {
        return Some(bytes);
    }
    match plugin_hooks::message(Hook::Response, route, target.caller, target.session, bytes, None).await {
        Filtered::Pass(bytes) => Some(bytes),
        Filtered::Stop(_) => {
            tracing::debug!(server = %route.name, "a plugin dropped a server message");
            None
        }
    }
}

/// Runs the response hooks over the answer to request `id`.
pub(super) async fn server_answer(
    route: &Route,
    target: &Target<'_>,
    id: Option<&RawValue>,
    bytes: Bytes,
    outcome: Outcome,
) -> (Bytes, Outcome) {
    if !route.plugins.wants(Hook::Response) {
        return (bytes, outcome);
    }
    let hooked = plugin_hooks::message(Hook::Response, route, target.caller, target.session, bytes, target.request);
    match hooked.await {
        Filtered::Pass(bytes) => (bytes, outcome),
        Filtered::Stop(Verdict::Reject(rejection)) => {
            let error = &rejection.error;
            (Bytes::from(error_body(id, error.code.into(), &error.message)), Outcome::Refused)
        }
        Filtered::Stop(Verdict::Respond(result)) => match RawValue::from_string(result) {
            Ok(result) => {
                let body = jsonrpc::response(id.unwrap_or(jsonrpc::null()).get(), Some(&result), None);
                (Bytes::from(body), Outcome::Answered)
            }
            Err(_) => {
                let text = "a plugin replaced the answer with something that is not JSON";
                (Bytes::from(error_body(id, INTERNAL_ERROR, text)), Outcome::Failed)
            }
        },
        Filtered::Stop(Verdict::Reply(_)) => {
            // The answer may already be streaming: no HTTP status to change.
            tracing::warn!(server = %route.name, "a plugin replied with HTTP from a response hook; not allowed there");
            let text = "a plugin replaced the answer with an HTTP reply, which response hooks may not do";
            (Bytes::from(error_body(id, INTERNAL_ERROR, text)), Outcome::Failed)
        }
        Filtered::Stop(Verdict::Proceed) => unreachable!("a proceed verdict passes the message on"),
    }
}

/// Streams what the server sends for `call` to the client: one JSON body
/// when the answer comes first, else an SSE stream ending with the answer.
async fn relay(
    http: &mut ServerSession,
    route: &Route,
    mut call: Call,
    id: Option<&RawValue>,
    target: Target<'_>,
    extra: Headers<'_>,
) -> pingora::Result<Outcome> {
    let limits = &route.settings.http;
    let deadline = tokio::time::Instant::now() + limits.request_timeout;
    let mut streaming = false;
    loop {
        let event = tokio::select! {
            event = tokio::time::timeout_at(deadline, call.next()) => event,
            _ = http.read_body_or_idle(true) => {
                tracing::debug!(target: "mcpd::access", server = %route.name, "client went away; cancelling upstream request");
                return Ok(Outcome::Failed);
            }
        };
        let (payload, outcome) = match event {
            Ok(Event::Message(bytes)) => {
                let Some(bytes) = server_message(route, &target, bytes).await else {
                    continue;
                };
                if !limits.chunked_encoding {
                    // No streaming allowed: server messages take the GET stream.
                    if let Some(outbox) = target.outbox {
                        outbox.push(bytes);
                    }
                    continue;
                }
                if !streaming {
                    respond::sse_start(http, extra).await?;
                    streaming = true;
                }
                respond::sse_event(http, &bytes).await?;
                continue;
            }
            Ok(Event::Response { bytes, is_error }) => {
                let outcome = if is_error { Outcome::Refused } else { Outcome::Answered };
                server_answer(route, &target, id, bytes, outcome).await
            }
            Ok(Event::Failed(reason)) => {
                let text = format!("MCP server process exited before answering: {reason}");
                (Bytes::from(error_body(id, CONNECTION_CLOSED, &text)), Outcome::Failed)
            }
            Err(_elapsed) => {
                drop(call); // tells the server to cancel
                let text = format!(
                    "request timed out after {:?} (http.request_timeout); the server was told to cancel it",
                    limits.request_timeout
                );
                tracing::warn!(server = %route.name, "{text}");
                let payload = Bytes::from(error_body(id, REQUEST_TIMEOUT, &text));
                send_last(http, streaming, extra, payload).await?;
                return Ok(Outcome::Failed);
            }
        };
        send_last(http, streaming, extra, payload).await?;
        return Ok(outcome);
    }
}

async fn send_last(
    http: &mut ServerSession,
    streaming: bool,
    extra: Headers<'_>,
    payload: Bytes,
) -> pingora::Result<()> {
    match streaming {
        true => {
            respond::sse_event(http, &payload).await?;
            respond::sse_end(http).await
        }
        false => respond::json(http, 200, extra, payload).await,
    }
}

async fn get(gateway: &Arc<Gateway>, route: &Route, http: &mut ServerSession, caller: &Caller) -> pingora::Result<()> {
    if !accepts(header(http, "accept").unwrap_or(""), "text/event-stream") {
        let message = "Accept must list text/event-stream for the GET stream";
        return respond::rpc_error(http, 406, None, INVALID_REQUEST, message, &[]).await;
    }
    if route.sessionless() {
        let message = "this server runs without sessions: there is no GET stream";
        return respond::rpc_error(http, 405, None, INVALID_REQUEST, message, &[("allow", "POST")]).await;
    }
    let Some(session) = find_session(gateway, route, http, None).await? else {
        return Ok(());
    };
    let Some(mut messages) = session.outbox.attach() else {
        let message = "a GET stream is already open for this session";
        return respond::rpc_error(http, 409, None, INVALID_REQUEST, message, &[]).await;
    };
    let _busy = session.enter(&gateway.sessions);
    respond::sse_start(http, &[]).await?;
    let keepalive = route.settings.http.sse_keepalive;
    let target = Target { caller, session: Some(&session.id), outbox: None, request: None };
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(message) => {
                    if let Some(message) = server_message(route, &target, message).await {
                        respond::sse_event(http, &message).await?;
                    }
                }
                None => break, // the session ended
            },
            _ = tokio::time::sleep(keepalive) => respond::sse_keepalive(http).await?,
            _ = http.read_body_or_idle(true) => return Ok(()), // the client left
        }
        if gateway.is_draining() {
            break;
        }
    }
    http.set_keepalive(None);
    respond::sse_end(http).await
}

async fn delete(gateway: &Arc<Gateway>, route: &Route, http: &mut ServerSession) -> pingora::Result<()> {
    if route.sessionless() {
        let message = "this server runs without sessions: there is nothing to delete";
        return respond::rpc_error(http, 405, None, INVALID_REQUEST, message, &[("allow", "POST")]).await;
    }
    let Some(session) = find_session(gateway, route, http, None).await? else {
        return Ok(());
    };
    gateway.sessions.remove(&session.id);
    tracing::info!(server = %route.name, session = %session.id, "session deleted by the client");
    respond::empty(http, 200, &[]).await
}

#[cfg(test)]
mod tests {
    use super::accepts;

    #[test]
    fn accept_matching() {
        let both = "application/json, text/event-stream";
        assert!(accepts(both, "application/json") && accepts(both, "text/event-stream"));
        assert!(accepts("*/*", "text/event-stream"));
        assert!(accepts("text/*;q=0.5", "text/event-stream"));
        assert!(!accepts("application/json", "text/event-stream"));
        assert!(!accepts("", "application/json"));
    }
}
