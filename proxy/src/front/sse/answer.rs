//! Answering a legacy connection's requests in the background: the POST
//! got its 202, and what the server sends for the request (its messages,
//! then the answer, each through the response hooks) goes to the
//! connection's stream. `initialize` binds the session here.
//!
//! The client leaving (its stream closing) drops the call, which tells the
//! server to cancel; `http.request_timeout` bounds each request as on
//! Streamable HTTP. A request the client cancelled gets no answer.

use super::super::plugin_hooks::Caller;
use super::super::streamable_http::{Bound, Outcome, Target, bind, handshake_answer, server_answer, server_message};
use super::{Connection, Out};
use crate::gateway::Gateway;
use crate::mcp::errors::*;
use crate::mcp::jsonrpc::Message;
use crate::mcp::version;
use crate::route::{Health, Route};
use crate::session::outbox::Outbox;
use crate::upstream::{Call, Event, UpstreamError};
use bytes::Bytes;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Relays `call` (the upstream side of `request`) to the connection. Ends
/// when the answer is sent, the request fails or times out, or the client
/// leaves.
pub(super) async fn relay(
    gateway: &Gateway,
    route: &Route,
    connection: &Connection,
    mut call: Call,
    request: &Message<'_>,
    caller: &Caller,
) -> Outcome {
    let id = request.id;
    let target = Target { caller, session: Some(&connection.id), outbox: None, request: Some(request) };
    let limit = route.settings.http.request_timeout;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let event = tokio::select! {
            event = tokio::time::timeout_at(deadline, call.next()) => event,
            _ = connection.tx.closed() => return Outcome::Failed, // dropping the call cancels it
        };
        let (payload, outcome) = match event {
            Ok(Event::Message(bytes)) => {
                if let Some(bytes) = server_message(route, &target, bytes).await
                    && !connection.send(Out::Message(bytes)).await
                {
                    return Outcome::Failed;
                }
                continue;
            }
            Ok(Event::Response { bytes, is_error }) => {
                let outcome = if is_error { Outcome::Refused } else { Outcome::Answered };
                server_answer(route, &target, id, bytes, outcome).await
            }
            Ok(Event::Failed(reason)) => (error(id, CONNECTION_CLOSED, &reason), Outcome::Failed),
            // The client cancelled it: nothing more is sent for it.
            Ok(Event::Cancelled) => return Outcome::Cancelled,
            Ok(Event::Rejected(error)) => (upstream_error(gateway, route, connection, id, error), Outcome::Failed),
            Err(_elapsed) => {
                drop(call); // tells the server to cancel
                let text = format!(
                    "request timed out after {limit:?} (http.request_timeout); the server was told to cancel it"
                );
                (error(id, REQUEST_TIMEOUT, &text), Outcome::Failed)
            }
        };
        connection.send(Out::Message(payload)).await;
        return outcome;
    }
}

/// `initialize` on a connection: binds the session upstream (as on
/// Streamable HTTP) under the connection's id, then relays the answer. With
/// a pool, the pool's handshake answers and no session is made.
pub(super) async fn initialize(
    gateway: &Arc<Gateway>,
    route: &Arc<Route>,
    connection: &Connection,
    body: &Bytes,
    headers: &http::HeaderMap,
    caller: &Caller,
) {
    let Ok(message) = Message::parse(body) else { return };
    let id = message.id;
    if let Some(pool) = &route.pool {
        let answer = handshake_answer(pool, &message, negotiate).unwrap_or_else(|| not_ready(route, id));
        connection.send(Out::Message(answer)).await;
        return;
    }
    let Some(reservation) = connection.take_reservation() else {
        let text = "this connection's session is already initialized";
        connection.send(Out::Message(error(id, INVALID_REQUEST, text))).await;
        return;
    };
    let outbox = Arc::new(Outbox::default());
    let bound = match bind(route, headers, &message, body, &connection.id, &outbox).await {
        Ok(Some(bound)) => bound,
        failed => {
            // Nothing was bound: the client may try `initialize` again.
            connection.keep_reservation(reservation);
            connection.initialized.store(false, Ordering::Release);
            let payload = match failed {
                Err(error) => {
                    tracing::warn!(server = %route.name, "cannot create a session upstream: {error}");
                    self::error(id, CONNECTION_CLOSED, &error.to_string())
                }
                _ => not_ready(route, id),
            };
            connection.send(Out::Message(payload)).await;
            return;
        }
    };
    let (upstream, answer) = match bound {
        Bound::Call(upstream, call) => (upstream, Ok(call)),
        Bound::Replica(upstream, pool) => (upstream, Err(pool)),
    };
    let idle = route.settings.session.idle_timeout;
    let session = gateway.sessions.insert(reservation, connection.id.clone(), upstream, outbox, idle);
    tracing::info!(server = %route.name, session = %session.id, upstream = %session.upstream.describe(), "legacy SSE session created");
    if !connection.send(Out::Bound(Arc::clone(&session))).await {
        gateway.sessions.remove(&session.id); // the client left meanwhile
        return;
    }
    let _busy = session.enter(&gateway.sessions);
    let outcome = match answer {
        Ok(call) => relay(gateway, route, connection, call, &message, caller).await,
        Err(pool) => {
            let answer = handshake_answer(&pool, &message, negotiate).unwrap_or_else(|| not_ready(route, id));
            connection.send(Out::Message(answer)).await;
            Outcome::Answered
        }
    };
    if outcome != Outcome::Answered {
        // The handshake did not complete: no session to keep.
        gateway.sessions.remove(&session.id);
    }
}

/// The revision a pool's handshake answers a legacy client with: the one
/// it asked for when mcpd speaks it (2024-11-05 included), else the newest.
fn negotiate(requested: Option<&str>) -> &'static str {
    match requested {
        Some("2024-11-05") => "2024-11-05",
        requested => version::negotiate(requested),
    }
}

/// A JSON-RPC error answer to request `id`, as bytes for the stream.
pub(super) fn error(id: Option<&RawValue>, code: i64, text: &str) -> Bytes {
    Bytes::from(error_body(id, code, text))
}

pub(super) fn not_ready(route: &Route, id: Option<&RawValue>) -> Bytes {
    let why = match route.health() {
        Health::Down(error) => format!("server {:?} is down: {error}", &*route.name),
        _ => format!("server {:?} is starting", &*route.name),
    };
    error(id, CONNECTION_CLOSED, &why)
}

/// What the client's stream gets when the server refused a request or is
/// gone; a session whose upstream is gone ends (so does the stream).
pub(super) fn upstream_error(
    gateway: &Gateway,
    route: &Route,
    connection: &Connection,
    id: Option<&RawValue>,
    error: UpstreamError,
) -> Bytes {
    tracing::debug!(target: "mcpd::access", server = %route.name, "upstream refused: {error}");
    if error.ends_session() && gateway.sessions.lost(&connection.id).is_some() {
        tracing::info!(server = %route.name, session = %connection.id, "session ended: {error}");
    }
    let code = match error {
        UpstreamError::Timeout(_) => REQUEST_TIMEOUT,
        _ => CONNECTION_CLOSED,
    };
    self::error(id, code, &error.to_string())
}
