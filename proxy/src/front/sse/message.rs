//! `POST <message path>?sessionId=…`: one client message for a legacy
//! connection. The checks that need no server (session id, Content-Type,
//! size, JSON-RPC shape, plugins' on-request hook) answer on the POST
//! itself; after them the POST gets 202 and any answer travels on the
//! connection's stream ([`super::answer`]).
//!
//! A request is handed to the upstream before the 202, so messages reach
//! the server in the order the client POSTed them; only the wait for the
//! answer runs in the background.

use super::super::intake;
use super::super::plugin_hooks::{self, Caller, Filtered};
use super::super::respond;
use super::super::streamable_http::answer_verdict;
use super::answer;
use super::{Connection, Connections, Out};
use crate::gateway::Gateway;
use crate::mcp::errors::*;
use crate::mcp::jsonrpc::{self, Kind, Message};
use crate::plugin::chain::Verdict;
use crate::plugin::loaded::Hook;
use crate::route::Route;
use crate::upstream::Call;
use crate::upstream::routing::Owner;
use crate::upstream::session::{CancelParams, Forward};
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(super) async fn post(
    gateway: &Arc<Gateway>,
    route: &Arc<Route>,
    http: &mut ServerSession,
    connections: &Connections,
    mut caller: Caller,
) -> pingora::Result<()> {
    let Some(in_flight) = gateway.begin_request() else {
        http.set_keepalive(None);
        let retry = [("retry-after", "1")];
        return respond::rpc_error(http, 503, None, INTERNAL_ERROR, "mcpd is shutting down", &retry).await;
    };
    let Some(session_id) = session_id(http.req_header().uri.query()) else {
        let text = "Bad Request: the sessionId query parameter is required (open the SSE stream first)";
        return respond::rpc_error(http, 400, None, INVALID_REQUEST, text, &[]).await;
    };
    let Some(connection) = connections.get(&session_id, &route.name) else {
        let text = "Session not found: its SSE stream is closed or never existed; open a new one";
        return respond::rpc_error(http, 404, None, SESSION_NOT_FOUND, text, &[]).await;
    };
    let Some(intake::Intake { body, permit }) = intake::receive(route, http).await? else {
        return Ok(());
    };
    let Some(message) = intake::parse(http, &body).await? else {
        return Ok(());
    };
    let is_request = message.kind() == Kind::Request;
    let rewritten = match route.plugins.wants(Hook::Request) {
        false => None,
        true => match plugin_hooks::request(route, &mut caller, Some(&session_id), &message, body.clone()).await {
            Filtered::Pass(_) => None,
            Filtered::Rewritten(bytes) => Some(bytes),
            // A request's refusal is its answer, on the stream like any other.
            Filtered::Stop(Verdict::Reject(rejection)) if is_request => {
                let answer = Bytes::from(plugin_hooks::error_response(message.id, &rejection.error));
                return accepted_with(http, &connection, answer).await;
            }
            Filtered::Stop(Verdict::Respond(result)) if is_request => {
                let answer = match RawValue::from_string(result) {
                    Ok(result) => Bytes::from(jsonrpc::response(message.id_text(), Some(&result), None)),
                    Err(_) => {
                        answer::error(message.id, INTERNAL_ERROR, "a plugin answered with a result that is not JSON")
                    }
                };
                return accepted_with(http, &connection, answer).await;
            }
            Filtered::Stop(verdict) => return answer_verdict(http, message.id, verdict, false).await,
        },
    };
    let (body, message) = match plugin_hooks::forwarded(&body, message, &rewritten) {
        Ok(forwarded) => forwarded,
        Err(id) => return respond::rpc_error(http, 500, id, INTERNAL_ERROR, plugin_hooks::INVALID_REWRITE, &[]).await,
    };
    tracing::debug!(target: "mcpd::access", server = %route.name, method = message.method(), kind = ?message.kind(), "legacy SSE POST");
    let work = Work { gateway: Arc::clone(gateway), route: Arc::clone(route), connection, caller, body: body.clone() };
    match (message.kind(), message.method()) {
        // A translator answers `initialize` itself, like any request.
        (Kind::Request, "initialize") if route.translator.is_none() => {
            if work.connection.initialized.swap(true, Ordering::AcqRel) {
                let text = "this connection is already initialized";
                return respond::rpc_error(http, 400, message.id, INVALID_REQUEST, text, &[]).await;
            }
            let headers = http.req_header().headers.clone();
            tokio::spawn(async move {
                let (_permit, _in_flight) = (permit, in_flight);
                let Work { gateway, route, connection, caller, body } = work;
                answer::initialize(&gateway, &route, &connection, &body, &headers, &caller).await;
            });
            respond::empty(http, 202, &[]).await
        }
        (Kind::Request, _) => request(http, work, &message, (permit, in_flight)).await,
        (Kind::Notification, _) => notification(http, &work, &message).await,
        (Kind::Response, _) => client_answer(http, &work, &message).await,
    }
}

/// What the background answer needs, owned.
struct Work {
    gateway: Arc<Gateway>,
    route: Arc<Route>,
    connection: Arc<Connection>,
    caller: Caller,
    body: Bytes,
}

type Held = (tokio::sync::OwnedSemaphorePermit, crate::gateway::InFlight);

/// The `sessionId` query parameter.
fn session_id(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| pair.strip_prefix("sessionId=")).filter(|id| !id.is_empty()).map(str::to_owned)
}

async fn accepted_with(http: &mut ServerSession, connection: &Connection, answer: Bytes) -> pingora::Result<()> {
    connection.send(Out::Message(answer)).await;
    respond::empty(http, 202, &[]).await
}

async fn request(http: &mut ServerSession, work: Work, message: &Message<'_>, held: Held) -> pingora::Result<()> {
    let Work { gateway, route, connection, .. } = &work;
    let id = message.id;
    if let Some(translator) = &route.translator {
        let translator = Arc::clone(translator);
        tokio::spawn(async move {
            let _held = held;
            let Ok(message) = Message::parse(&work.body) else { return };
            let answer = super::super::translate::answer(&work.route, &translator, &message, &work.caller).await;
            work.connection.send(Out::Message(answer)).await;
        });
        return respond::empty(http, 202, &[]).await;
    }
    let (call, session) = if let Some(pool) = &route.pool {
        let Some(process) = pool.pick() else {
            return accepted_with(http, connection, answer::not_ready(route, id)).await;
        };
        // The connection is the session (see the README's legacy SSE section).
        let owner = Owner::session(&connection.id);
        match process.call(id.unwrap_or(jsonrpc::null()), message.method(), message.params, owner).await {
            Ok(call) => (Call::Stdio(call), None),
            Err(error) => {
                let answer = answer::upstream_error(gateway, route, connection, id, error);
                return accepted_with(http, connection, answer).await;
            }
        }
    } else {
        let Some(session) = gateway.sessions.get(&connection.id, &route.name) else {
            return uninitialized(http, connection, id).await;
        };
        let forward = Forward { message, body: &work.body, headers: &http.req_header().headers };
        match session.upstream.call(&forward).await {
            Ok(call) => (call, Some(session)),
            Err(error) => {
                let answer = answer::upstream_error(gateway, route, connection, id, error);
                return accepted_with(http, connection, answer).await;
            }
        }
    };
    tokio::spawn(async move {
        let _held = held;
        let _busy = session.as_ref().map(|s| s.enter(&work.gateway.sessions));
        let Ok(message) = Message::parse(&work.body) else { return };
        answer::relay(&work.gateway, &work.route, &work.connection, call, &message, &work.caller).await;
    });
    respond::empty(http, 202, &[]).await
}

/// A message before `initialize` bound the session (or after it ended).
async fn uninitialized(
    http: &mut ServerSession,
    connection: &Connection,
    id: Option<&RawValue>,
) -> pingora::Result<()> {
    match connection.initialized.load(Ordering::Acquire) {
        false => {
            let text = "Bad Request: send initialize first";
            respond::rpc_error(http, 400, id, INVALID_REQUEST, text, &[]).await
        }
        true => {
            let text = "Session not found: it ended; open a new SSE stream";
            respond::rpc_error(http, 404, id, SESSION_NOT_FOUND, text, &[]).await
        }
    }
}

async fn notification(http: &mut ServerSession, work: &Work, message: &Message<'_>) -> pingora::Result<()> {
    let Work { gateway, route, connection, .. } = work;
    let method = message.method();
    if let Some(pool) = &route.pool {
        // As on Streamable HTTP: the pool made its own handshake, and a
        // cancellation reaches only the connection's own request.
        match method {
            "notifications/initialized" => {}
            "notifications/cancelled" => {
                if let Some(cancel) = CancelParams::of(message) {
                    pool.cancel(&cancel, &Owner::session(&connection.id));
                }
            }
            _ => {
                for process in pool.all() {
                    let _ = process.notify(method, message.params).await;
                }
            }
        }
    } else if route.translator.is_none() {
        let Some(session) = gateway.sessions.get(&connection.id, &route.name) else {
            return uninitialized(http, connection, None).await;
        };
        let _busy = session.enter(&gateway.sessions);
        let forward = Forward { message, body: &work.body, headers: &http.req_header().headers };
        if let Err(error) = session.upstream.notify(&forward).await {
            let text = answer::upstream_error(gateway, route, connection, None, error);
            return respond::json(http, 502, &[], text).await;
        }
    }
    respond::empty(http, 202, &[]).await
}

/// The client answers a request its server sent (sampling, elicitation…).
async fn client_answer(http: &mut ServerSession, work: &Work, message: &Message<'_>) -> pingora::Result<()> {
    let Work { gateway, route, connection, .. } = work;
    let accepted = if let Some(pool) = &route.pool {
        pool.answer(message, &Owner::session(&connection.id)).await
    } else {
        let Some(session) = gateway.sessions.get(&connection.id, &route.name) else {
            return uninitialized(http, connection, None).await;
        };
        let _busy = session.enter(&gateway.sessions);
        let forward = Forward { message, body: &work.body, headers: &http.req_header().headers };
        match session.upstream.answer(&forward).await {
            Ok(accepted) => accepted,
            Err(error) => {
                let text = answer::upstream_error(gateway, route, connection, None, error);
                return respond::json(http, 502, &[], text).await;
            }
        }
    };
    match accepted {
        true => respond::empty(http, 202, &[]).await,
        false => {
            let text = format!("no server request with id {} is waiting for an answer", message.id_text());
            respond::rpc_error(http, 400, None, INVALID_REQUEST, &text, &[]).await
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn session_id_is_read_from_the_query() {
        assert_eq!(super::session_id(Some("sessionId=ab")).as_deref(), Some("ab"));
        assert_eq!(super::session_id(Some("x=1&sessionId=cd")).as_deref(), Some("cd"));
        assert_eq!(super::session_id(Some("sessionId=")), None);
        assert_eq!(super::session_id(None), None);
    }
}
