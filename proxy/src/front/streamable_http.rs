//! The MCP endpoint, Streamable HTTP session era (2025-03-26 … 2025-11-25).
//!
//! - POST carries one JSON-RPC message. Requests are answered with one JSON
//!   body, or with an SSE stream when the server sends something for the
//!   client (progress, logs, sampling…) before its answer. Notifications and
//!   the client's answers to server requests get 202.
//! - `initialize` creates a session (`Mcp-Session-Id`, mcpd's own) bound to
//!   what serves it: its own server process, a shared replica, or a session
//!   on one HTTP instance; with sessions off it is answered from the warm
//!   pool's handshake.
//! - GET opens the session's stream for server messages no request waits for.
//! - DELETE ends the session.
//!
//! The checks the spec asks for (Accept, Content-Type, session id, protocol
//! version) happen here, before anything reaches a server. Which server
//! serves a session, and how, is the upstream's business: this module and
//! its parts ([`initialize`], [`forward`], [`stream`], [`relay`]) work the
//! same over a stdio process, a replica or an HTTP instance.

mod forward;
mod initialize;
mod relay;
mod resume;
mod stream;

pub(super) use initialize::{Bound, bind, handshake_answer};
pub(super) use relay::{Outcome, Target, server_answer, server_message, timed_out};

use super::intake;
use super::plugin_hooks::{self, Caller, Filtered};
use super::respond;
use crate::gateway::Gateway;
use crate::mcp::errors::*;
use crate::mcp::jsonrpc::{self, Kind};
use crate::mcp::{PROTOCOL_HEADER, SESSION_HEADER, era, version};
use crate::plugin::bindings::Rejection;
use crate::plugin::chain::Verdict;
use crate::plugin::loaded::Hook;
use crate::route::{Health, Route};
use crate::session::Session;
use crate::upstream::routing::Owner;
use bytes::Bytes;
use http::Method;
use pingora::protocols::http::ServerSession;
use serde_json::value::RawValue;
use std::sync::Arc;

pub async fn serve(gateway: &Arc<Gateway>, route: &Arc<Route>, http: &mut ServerSession) -> pingora::Result<()> {
    // A client that hangs up must be noticed while we wait on the server.
    http.set_abort_on_close(true);
    let mut caller = match plugin_hooks::caller(route, http, client_address(http)).await {
        Ok(caller) => caller,
        Err(stop) => return answer_verdict(http, None, stop, false).await,
    };
    let method = http.req_header().method.clone();
    match method {
        Method::POST => post(gateway, route, http, &mut caller).await,
        Method::GET => stream::get(gateway, route, http, &caller).await,
        Method::DELETE => stream::delete(gateway, route, http).await,
        _ => {
            let allow = [("allow", "GET, POST, DELETE")];
            respond::rpc_error(http, 405, None, INVALID_REQUEST, "method not allowed", &allow).await
        }
    }
}

pub(super) fn header<'a>(http: &'a ServerSession, name: &str) -> Option<&'a str> {
    http.get_header(name).and_then(|v| v.to_str().ok())
}

/// Whether an `Accept` header admits `mime` (exactly, by `type/*`, or `*/*`).
pub(super) fn accepts(accept: &str, mime: &str) -> bool {
    let family = mime.split('/').next().unwrap_or("");
    accept.split(',').any(|item| {
        let item = item.split(';').next().unwrap_or("").trim();
        item.eq_ignore_ascii_case(mime)
            || item == "*/*"
            || item.strip_suffix("/*").is_some_and(|f| f.eq_ignore_ascii_case(family))
    })
}

pub(super) fn client_address(http: &ServerSession) -> String {
    http.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

/// Who a sessionless request is for, in the routing of a shared server's
/// messages: its principal, else its connection (address and port; a
/// connection mcpd cannot name is a client of its own).
pub(super) fn request_owner(http: &ServerSession, caller: &Caller) -> Owner {
    let peer = http.client_addr().and_then(|a| a.as_inet()).map(|a| a.to_string());
    let peer = peer.unwrap_or_else(|| format!("unknown {}", uuid::Uuid::new_v4()));
    Owner::caller(caller.principal.as_deref(), &peer)
}

/// Answers with what a plugin decided instead of forwarding.
pub(super) async fn answer_verdict(
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
    if let Err(verdict @ Verdict::Reply(_)) = plugin_hooks::caller(route, http, client_address(http)).await {
        return answer_verdict(http, None, verdict, false).await;
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
    caller: &mut Caller,
) -> pingora::Result<()> {
    let Some(_in_flight) = gateway.begin_request() else {
        http.set_keepalive(None);
        let retry = [("retry-after", "1")];
        return respond::rpc_error(http, 503, None, INTERNAL_ERROR, "mcpd is shutting down", &retry).await;
    };
    let accept = header(http, "accept").unwrap_or("");
    if !(accepts(accept, "application/json") && accepts(accept, "text/event-stream")) {
        http.set_keepalive(None);
        let message = "Accept must list both application/json and text/event-stream";
        return respond::rpc_error(http, 406, None, INVALID_REQUEST, message, &[]).await;
    }
    let Some(intake::Intake { body, permit: _permit }) = intake::receive(route, http).await? else {
        return Ok(());
    };
    let Some(message) = intake::parse(http, &body).await? else {
        return Ok(());
    };
    // The era is chosen per request; a stateless one passes its checks
    // before plugins see it (they may rewrite what the headers mirror).
    let stateless =
        era::is_stateless(header(http, PROTOCOL_HEADER), header(http, SESSION_HEADER).is_some(), message.params);
    let envelope = match stateless && message.kind() == Kind::Request {
        true => match super::stateless::admit(route, http, &message).await? {
            Some(envelope) => Some(envelope),
            None => return Ok(()),
        },
        false => None,
    };
    // Plugins see the validated message; a rewritten one is parsed again.
    let rewritten = match route.plugins.wants(Hook::Request) {
        false => None,
        true => {
            let session = header(http, SESSION_HEADER);
            match plugin_hooks::request(route, caller, session, &message, body.clone()).await {
                Filtered::Pass(_) => None,
                Filtered::Rewritten(bytes) => Some(bytes),
                Filtered::Stop(verdict) => {
                    let is_request = message.kind() == Kind::Request;
                    return answer_verdict(http, message.id, verdict, is_request).await;
                }
            }
        }
    };
    let (body, message) = match plugin_hooks::forwarded(&body, message, &rewritten) {
        Ok(forwarded) => forwarded,
        Err(id) => return respond::rpc_error(http, 500, id, INTERNAL_ERROR, plugin_hooks::INVALID_REWRITE, &[]).await,
    };
    tracing::debug!(target: "mcpd::access", server = %route.name, method = message.method(), kind = ?message.kind(), stateless, "POST");
    if stateless && route.settings.stateless {
        return super::stateless::post(route, http, &message, body, caller, envelope.as_ref()).await;
    }
    if let Some(translator) = &route.translator {
        return super::translate::post(route, translator, http, &message, caller).await;
    }
    match (message.kind(), message.method()) {
        (Kind::Request, "initialize") => match &route.pool {
            Some(pool) => initialize::from_handshake(route, pool, http, &message, &[]).await,
            None => initialize::session(gateway, route, http, &message, body, caller).await,
        },
        (Kind::Request, _) => forward::request(gateway, route, http, &message, body, caller).await,
        (Kind::Notification, _) => forward::notification(gateway, route, http, &message, body, caller).await,
        (Kind::Response, _) => forward::client_answer(gateway, route, http, &message, body, caller).await,
    }
}

/// The session a non-initialize message belongs to, after the spec's checks;
/// `None` when an error response has been sent instead.
pub(super) async fn find_session(
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

pub(super) async fn not_ready(route: &Route, http: &mut ServerSession, id: Option<&RawValue>) -> pingora::Result<()> {
    let why = match route.health() {
        Health::Down(error) => format!("server {:?} is down: {error}", &*route.name),
        _ => format!("server {:?} is starting", &*route.name),
    };
    respond::rpc_error(http, 503, id, CONNECTION_CLOSED, &why, &[("retry-after", "1")]).await
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
