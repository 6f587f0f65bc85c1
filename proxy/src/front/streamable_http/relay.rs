//! Relaying a server's answer to the client: each event as it arrives
//! (through the response hooks), one JSON body when the answer comes
//! first, else an SSE stream ending with the answer; and what the client
//! sees when the server refuses or is gone.

use super::super::plugin_hooks::{self, Caller, Filtered};
use super::super::respond::{self, Headers};
use super::resume;
use crate::gateway::Gateway;
use crate::mcp::errors::*;
use crate::mcp::jsonrpc;
use crate::mcp::jsonrpc::Message;
use crate::plugin::chain::Verdict;
use crate::plugin::loaded::Hook;
use crate::route::Route;
use crate::session::Session;
use crate::session::outbox::Outbox;
use crate::session::replay::Replay;
use crate::upstream::{Call, Event, UpstreamError};
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use serde_json::value::RawValue;
use std::sync::Arc;

#[derive(Debug, PartialEq, Eq)]
pub(in crate::front) enum Outcome {
    /// The server answered (with a result).
    Answered,
    /// The server answered with a JSON-RPC error.
    Refused,
    /// The process died, or the request timed out, or the client left.
    Failed,
    /// The client cancelled the request: nothing was sent for it after.
    Cancelled,
}

/// Who a relayed answer is for.
pub(in crate::front) struct Target<'a> {
    pub caller: &'a Caller,
    pub session: Option<&'a str>,
    pub outbox: Option<&'a Outbox>,
    /// The request being answered (response hooks see its method and name).
    pub request: Option<&'a Message<'a>>,
}

/// Runs the response hooks over a server message; `None` drops it.
pub(in crate::front) async fn server_message(route: &Route, target: &Target<'_>, bytes: Bytes) -> Option<Bytes> {
    if !route.plugins.wants(Hook::Response) {
        return Some(bytes);
    }
    match plugin_hooks::message(Hook::Response, route, target.caller, target.session, bytes, None).await {
        Filtered::Pass(bytes) | Filtered::Rewritten(bytes) => Some(bytes),
        Filtered::Stop(_) => {
            tracing::debug!(server = %route.name, "a plugin dropped a server message");
            None
        }
    }
}

/// Runs the response hooks over the answer to request `id`.
pub(in crate::front) async fn server_answer(
    route: &Route,
    target: &Target<'_>,
    id: Option<&RawValue>,
    bytes: Bytes,
    outcome: Outcome,
) -> (Bytes, Outcome) {
    if !route.plugins.wants(Hook::Response) {
        return (bytes, outcome);
    }
    // An answer counts as its request's method: when no hook wants that
    // method, skip parsing the answer at all.
    let method = target.request.and_then(|request| request.method.as_deref());
    if method.is_some() && route.plugins.reads(Hook::Response, method).is_none() {
        return (bytes, outcome);
    }
    let hooked = plugin_hooks::message(Hook::Response, route, target.caller, target.session, bytes, target.request);
    match hooked.await {
        Filtered::Pass(bytes) | Filtered::Rewritten(bytes) => (bytes, outcome),
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

/// How a relayed call ended.
pub(super) enum Relayed {
    /// An answer (or a failure, as a JSON-RPC error) reached the client.
    Done(Outcome),
    /// The server refused before anything was sent: the caller answers.
    Rejected(UpstreamError),
}

/// Streams what the server sends for `call` to the client: one JSON body
/// when the answer comes first, else an SSE stream ending with the answer
/// (or, for a request the client cancelled, ending without one).
/// Each event is written before the next is read, so the client's pace
/// bounds what mcpd holds.
///
/// In a session the stream is resumable ([`super::resume`]): if the client
/// drops it, the call carries on and what follows is kept for a `GET` with
/// `Last-Event-ID`. Otherwise a client that leaves cancels the call.
pub(super) async fn relay(
    http: &mut ServerSession,
    route: &Route,
    mut call: Call,
    id: Option<&RawValue>,
    target: Target<'_>,
    extra: Headers<'_>,
) -> pingora::Result<Relayed> {
    let limits = &route.settings.http;
    let deadline = tokio::time::Instant::now() + limits.request_timeout;
    let mut out = Out { streaming: false, replay: None, attached: true, outbox: target.outbox };
    loop {
        let event = tokio::select! {
            event = tokio::time::timeout_at(deadline, call.next()) => event,
            _ = http.read_body_or_idle(true), if out.attached => {
                if out.replay.is_some() {
                    tracing::debug!(target: "mcpd::access", server = %route.name, "client left a resumable stream; the request carries on");
                    out.attached = false;
                    continue;
                }
                tracing::debug!(target: "mcpd::access", server = %route.name, "client went away; cancelling upstream request");
                return Ok(Relayed::Done(Outcome::Failed));
            }
            // A long quiet wait on an open stream: a comment keeps proxies
            // from cutting it. (Waiting on `call` again is safe: once
            // streaming, every upstream kind reads events cancel-safely.)
            _ = tokio::time::sleep(limits.sse_keepalive), if out.streaming && out.attached => {
                if let Err(error) = respond::sse_keepalive(http).await {
                    match out.replay {
                        Some(_) => out.attached = false,
                        None => return Err(error),
                    }
                }
                continue;
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
                if !out.streaming {
                    respond::sse_start(http, extra).await?;
                    out.streaming = true;
                    out.replay = resume::open_post_stream(http, route, target.outbox).await?;
                }
                out.send(http, &bytes).await?;
                continue;
            }
            Ok(Event::Response { bytes, is_error }) => {
                let outcome = if is_error { Outcome::Refused } else { Outcome::Answered };
                server_answer(route, &target, id, bytes, outcome).await
            }
            Ok(Event::Failed(reason)) => (Bytes::from(error_body(id, CONNECTION_CLOSED, &reason)), Outcome::Failed),
            Ok(Event::Cancelled) => {
                out.unanswered(http, extra).await?;
                return Ok(Relayed::Done(Outcome::Cancelled));
            }
            Ok(Event::Rejected(error)) if !out.streaming => return Ok(Relayed::Rejected(error)),
            Ok(Event::Rejected(error)) => {
                (Bytes::from(error_body(id, CONNECTION_CLOSED, &error.to_string())), Outcome::Failed)
            }
            Err(_elapsed) => {
                drop(call); // tells the server to cancel
                let payload = timed_out(route, id);
                out.last(http, extra, payload).await?;
                return Ok(Relayed::Done(Outcome::Failed));
            }
        };
        out.last(http, extra, payload).await?;
        return Ok(Relayed::Done(outcome));
    }
}

/// Where a relayed answer is going.
struct Out<'a> {
    /// The answer became an SSE stream.
    streaming: bool,
    /// The stream's events, kept for a resume (sessions only).
    replay: Option<Arc<Replay>>,
    /// The client still reads the response.
    attached: bool,
    /// Where the session's streams are registered.
    outbox: Option<&'a Outbox>,
}

impl Drop for Out<'_> {
    /// A relay that ends without its answer (an error, a dropped task)
    /// still ends its stream, so a resumed reader is not left waiting.
    fn drop(&mut self) {
        if let (Some(replay), Some(outbox)) = (self.replay.take(), self.outbox) {
            outbox.streams.finished(&replay, false);
        }
    }
}

impl Out<'_> {
    /// Writes (and records) one server message. A resumable stream whose
    /// client is gone keeps recording instead.
    async fn send(&mut self, http: &mut ServerSession, message: &Bytes) -> pingora::Result<()> {
        if !self.attached {
            if let Some(replay) = &self.replay {
                replay.record(message.clone());
            }
            return Ok(());
        }
        match resume::write(http, self.replay.as_deref(), message).await {
            Err(_) if self.replay.is_some() => {
                self.attached = false;
                Ok(())
            }
            result => result,
        }
    }

    /// Sends the answer (or the failure) and ends the response.
    async fn last(&mut self, http: &mut ServerSession, extra: Headers<'_>, payload: Bytes) -> pingora::Result<()> {
        if !self.streaming {
            return respond::json(http, 200, extra, payload).await;
        }
        self.send(http, &payload).await?;
        self.end_stream(http).await
    }

    /// Ends a streaming response: the SSE stream closes (when the client is
    /// still attached) and a resumable stream is marked finished.
    async fn end_stream(&mut self, http: &mut ServerSession) -> pingora::Result<()> {
        let ended = match self.attached {
            true => respond::sse_end(http).await,
            false => Ok(()),
        };
        match (self.replay.take(), self.outbox) {
            (Some(replay), Some(outbox)) => {
                outbox.streams.finished(&replay, self.attached && ended.is_ok());
                Ok(())
            }
            _ => ended,
        }
    }
}

impl Out<'_> {
    /// Ends the response of a request the client cancelled without an
    /// answer (the spec: a cancelled request is not answered): the SSE
    /// stream ends after what it carried; a response not begun is an SSE
    /// stream with no events.
    async fn unanswered(&mut self, http: &mut ServerSession, extra: Headers<'_>) -> pingora::Result<()> {
        if !self.streaming {
            return respond::sse_empty(http, extra).await;
        }
        self.end_stream(http).await
    }
}

/// What the client sees when the server refused a message or is gone. A
/// session whose upstream is gone ends: 404, so the client re-initializes.
pub(super) async fn upstream_error(
    gateway: &Gateway,
    route: &Route,
    http: &mut ServerSession,
    session: Option<&Session>,
    id: Option<&RawValue>,
    error: UpstreamError,
) -> pingora::Result<()> {
    tracing::debug!(target: "mcpd::access", server = %route.name, "upstream refused: {error}");
    if error.ends_session() {
        return match session {
            Some(session) => {
                gateway.sessions.lost(&session.id);
                tracing::info!(server = %route.name, session = %session.id, "session ended: {error}");
                let message = format!("Session not found: its server is gone ({error}); initialize a new one");
                respond::rpc_error(http, 404, id, SESSION_NOT_FOUND, &message, &[]).await
            }
            None => super::not_ready(route, http, id).await,
        };
    }
    match error {
        UpstreamError::Status { status, content_type, body, instance, headers } => {
            let forwards_credentials = route
                .settings
                .http_upstream
                .as_ref()
                .is_some_and(|h| h.forward_headers.iter().any(|n| n == "authorization"));
            let relayed = match status {
                // The instance judges the client's own credentials only when they reach it.
                401 | 403 if !forwards_credentials => None,
                400..=499 => Some(status),
                _ => None,
            };
            let is_json = content_type.as_deref().is_some_and(|c| c.starts_with("application/json"));
            // Its Retry-After and Allow go along (and WWW-Authenticate, only
            // to clients whose credentials the instance saw).
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .filter(|(name, _)| forwards_credentials || name != "www-authenticate")
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            match relayed {
                Some(status) if is_json && !body.is_empty() => respond::json(http, status, &headers, body).await,
                Some(status) => {
                    let text = format!("MCP server instance {instance} answered HTTP {status}: {}", preview(&body));
                    respond::rpc_error(http, status, id, INVALID_REQUEST, &text, &headers).await
                }
                None => {
                    let text = format!("MCP server instance {instance} answered HTTP {status}: {}", preview(&body));
                    respond::rpc_error(http, 502, id, CONNECTION_CLOSED, &text, &[]).await
                }
            }
        }
        UpstreamError::Timeout(_) => respond::rpc_error(http, 504, id, REQUEST_TIMEOUT, &error.to_string(), &[]).await,
        error => respond::rpc_error(http, 502, id, CONNECTION_CLOSED, &error.to_string(), &[]).await,
    }
}

/// The start of an error body, as text.
fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    match text.trim() {
        "" => "(no body)".into(),
        text => text.to_string(),
    }
}

/// The answer to a request that outlived `http.request_timeout` (its call
/// has been dropped, which tells the server to cancel), logged.
pub(crate) fn timed_out(route: &Route, id: Option<&RawValue>) -> Bytes {
    let text = format!(
        "request timed out after {:?} (http.request_timeout); the server was told to cancel it",
        route.settings.http.request_timeout
    );
    tracing::warn!(server = %route.name, "{text}");
    Bytes::from(error_body(id, REQUEST_TIMEOUT, &text))
}
