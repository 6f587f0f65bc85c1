//! `initialize`: a new client session, bound for its whole life to what
//! serves it upstream (session affinity). With per-session processes mcpd
//! starts one; with `replicas` the balancer places the session on a shared
//! process and the answer comes from that process's handshake; with HTTP
//! instances the balancer picks an instance, which answers the client's own
//! `initialize` (and issues the upstream session id mcpd keeps to itself).
//! Without sessions (a pool) the pool's handshake answers.

use super::super::plugin_hooks::Caller;
use super::super::respond::{self, Headers};
use super::not_ready;
use super::relay::{Outcome, Relayed, Target, relay, upstream_error};
use crate::gateway::Gateway;
use crate::mcp::errors::*;
use crate::mcp::jsonrpc::{self, Message};
use crate::mcp::{SESSION_HEADER, version};
use crate::route::{Health, Route};
use crate::session::outbox::Outbox;
use crate::session::{Refusal, SessionTable};
use crate::upstream::pool::Pool;
use crate::upstream::routing::Owner;
use crate::upstream::session::SessionUpstream;
use crate::upstream::stdio::StdioProcess;
use crate::upstream::{Call, UpstreamError};
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use serde_json::value::RawValue;
use std::sync::Arc;

/// What serves a new session, and how its `initialize` is answered.
pub(in crate::front) enum Bound {
    /// The server answers the client's `initialize` through this call.
    Call(SessionUpstream, Call),
    /// A shared replica: its own handshake answers.
    Replica(SessionUpstream, Arc<Pool>),
}

pub(super) async fn session(
    gateway: &Arc<Gateway>,
    route: &Arc<Route>,
    http: &mut ServerSession,
    message: &Message<'_>,
    body: &Bytes,
    caller: &Caller,
) -> pingora::Result<()> {
    // Sessions count against who the client is: its principal when a plugin
    // (e.g. auth) named one, else its address.
    let client = caller.principal.as_deref().unwrap_or(&caller.client).to_owned();
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
    let id = SessionTable::new_id();
    let bound = match bind(route, &http.req_header().headers, message, body, &id, &outbox).await {
        Ok(Some(bound)) => bound,
        Ok(None) => return not_ready(route, http, message.id).await,
        Err(error) => return refused(gateway, route, http, message.id, error).await,
    };
    let (upstream, answer) = match bound {
        Bound::Call(upstream, call) => (upstream, Ok(call)),
        Bound::Replica(upstream, pool) => (upstream, Err(pool)),
    };
    let session = gateway.sessions.insert(reservation, id, upstream, outbox, settings.session.idle_timeout);
    let _busy = session.enter(&gateway.sessions);
    tracing::info!(server = %route.name, session = %session.id, client = %client, upstream = %session.upstream.describe(), "session created");

    let extra = [(SESSION_HEADER, session.id.as_str())];
    let outcome = match answer {
        Ok(call) => {
            let target =
                Target { caller, session: Some(&session.id), outbox: Some(&session.outbox), request: Some(message) };
            match relay(http, route, call, message.id, target, &extra).await? {
                Relayed::Done(outcome) => outcome,
                Relayed::Rejected(error) => {
                    refused(gateway, route, http, message.id, error).await?;
                    Outcome::Failed
                }
            }
        }
        Err(pool) => {
            from_handshake(route, &pool, http, message, &extra).await?;
            Outcome::Answered
        }
    };
    if outcome != Outcome::Answered {
        // The handshake did not complete: no session to keep.
        gateway.sessions.remove(&session.id);
    }
    Ok(())
}

/// Binds a new session `id` upstream (`headers`: the client's request
/// headers). `Ok(None)`: nothing can take it now.
pub(in crate::front) async fn bind(
    route: &Route,
    headers: &http::HeaderMap,
    message: &Message<'_>,
    body: &Bytes,
    id: &str,
    outbox: &Arc<Outbox>,
) -> Result<Option<Bound>, UpstreamError> {
    let request_id = message.id.unwrap_or(jsonrpc::null());
    if let Some(upstream) = &route.http {
        let key = hash_key(headers, header_of(&route.settings.balance), id);
        let limit = route.settings.http.request_timeout;
        let open = upstream.open(Some(key), body.clone(), headers, request_id, outbox);
        let (bound, call) = tokio::time::timeout(limit, open).await.map_err(|_| UpstreamError::Timeout(limit))??;
        return Ok(Some(Bound::Call(bound, call)));
    }
    if let Some(pool) = &route.replicas {
        if pool.init_result().is_none() {
            return Ok(None);
        }
        let key = hash_key(headers, header_of(&route.settings.balance), id);
        return Ok(pool.place(Some(key)).map(|(p, lease)| {
            Bound::Replica(SessionUpstream::Replica(p, lease, Owner::session(id)), Arc::clone(pool))
        }));
    }
    let process = match StdioProcess::spawn(&route.settings, Some(Arc::clone(outbox))) {
        Ok(process) => process,
        Err(error) => {
            route.set_health(Health::Down(error.to_string()));
            return Err(error);
        }
    };
    // The session's own process: every message goes to the session anyway.
    let call = process.call(request_id, "initialize", message.params, Owner::gateway()).await.map(Call::Stdio);
    let bound = SessionUpstream::Process(process);
    match call {
        Ok(call) => Ok(Some(Bound::Call(bound, call))),
        Err(error) => {
            bound.close();
            Err(error)
        }
    }
}

/// The request header consistent hashing reads, if it reads one.
fn header_of(balance: &crate::config::Balance) -> Option<&http::HeaderName> {
    match balance {
        crate::config::Balance::ConsistentHash { header } => header.as_ref(),
        _ => None,
    }
}

/// What consistent hashing hashes for a new session: the configured
/// header when the client sent it, else the session id.
fn hash_key<'a>(headers: &'a http::HeaderMap, header_name: Option<&http::HeaderName>, id: &'a str) -> &'a [u8] {
    header_name
        .and_then(|name| headers.get(name))
        .map(|value| value.as_bytes())
        .filter(|value| !value.is_empty())
        .unwrap_or(id.as_bytes())
}

/// No session could be created upstream.
async fn refused(
    gateway: &Gateway,
    route: &Route,
    http: &mut ServerSession,
    id: Option<&RawValue>,
    error: UpstreamError,
) -> pingora::Result<()> {
    tracing::warn!(server = %route.name, "cannot create a session upstream: {error}");
    match error {
        // No instance answered: try again later.
        UpstreamError::Unreachable { .. } => {
            let text = error.to_string();
            respond::rpc_error(http, 503, id, CONNECTION_CLOSED, &text, &[("retry-after", "1")]).await
        }
        UpstreamError::Spawn { .. } | UpstreamError::Exited(_) => {
            respond::rpc_error(http, 502, id, CONNECTION_CLOSED, &error.to_string(), &[]).await
        }
        error => upstream_error(gateway, route, http, None, id, error).await,
    }
}

/// Answers `initialize` from a shared process's own handshake, with the
/// revision the client asked for when mcpd speaks it.
pub(super) async fn from_handshake(
    route: &Route,
    pool: &Pool,
    http: &mut ServerSession,
    message: &Message<'_>,
    extra: Headers<'_>,
) -> pingora::Result<()> {
    match handshake_answer(pool, message, version::negotiate) {
        Some(body) => respond::json(http, 200, extra, body).await,
        None => not_ready(route, http, message.id).await,
    }
}

/// The answer to `initialize` from a shared process's handshake, with the
/// revision `negotiate` picks for what the client asked; `None` while the
/// pool has not completed a handshake.
pub(in crate::front) fn handshake_answer(
    pool: &Pool,
    message: &Message<'_>,
    negotiate: fn(Option<&str>) -> &'static str,
) -> Option<Bytes> {
    let init = pool.init_result()?;
    let requested: Option<String> = message
        .params
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok())
        .and_then(|p| p.get("protocolVersion")?.as_str().map(str::to_owned));
    let mut result: serde_json::Value = serde_json::from_str(init.get()).unwrap_or_default();
    result["protocolVersion"] = serde_json::Value::from(negotiate(requested.as_deref()));
    let result = RawValue::from_string(result.to_string()).expect("a Value serializes to JSON");
    Some(Bytes::from(jsonrpc::response(message.id_text(), Some(&result), None)))
}
