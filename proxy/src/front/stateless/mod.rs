//! The MCP endpoint, stateless era (protocol 2026-07-28), on the same route
//! as the session era: a POST is served here when its `MCP-Protocol-Version`
//! (or, without that header, its `_meta`) says so ([`crate::mcp::era`]).
//!
//! - [`admit`] runs the era's checks before anything else sees the request
//!   (envelope → -32602, mirrored headers → -32020, version → -32022; all 400).
//! - [`post`] serves it: `server/discover` from the upstream's `initialize`
//!   result (or the upstream's own answer when it speaks this era), methods
//!   the era removed → 404 -32601, everything else through the bridge
//!   ([`crate::upstream::bridge`]) with answers reshaped for the era
//!   ([`answer`]) and relayed ([`relay`]).
//!
//! Plugins run as for any request (no session: the hooks see none).
//! Not here: the session era (`streamable_http`), how upstream sessions are
//! kept (`upstream::bridge`).

mod answer;
mod listen;
mod params;
mod relay;

use super::plugin_hooks::Caller;
use super::respond;
use crate::mcp::era::{self, Envelope};
use crate::mcp::errors::*;
use crate::mcp::jsonrpc::{self, Kind, Message};
use crate::route::Route;
use crate::upstream::UpstreamError;
use crate::upstream::bridge::Target;
use crate::upstream::session::Forward;
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use relay::{Exchange, Relayed};
use std::sync::Arc;

/// Methods the 2026-07-28 revision removed (a bridged server may still
/// have them, but a stateless client must be told they do not exist).
const REMOVED: &[&str] = &["initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"];

/// Runs the era's checks on a stateless request. `None`: refused, and the
/// error has been sent.
pub(super) async fn admit(
    route: &Route,
    http: &mut ServerSession,
    message: &Message<'_>,
) -> pingora::Result<Option<Envelope>> {
    if !route.settings.stateless {
        // Not a stateless-era error code, on purpose: a client that probed
        // this era falls back to `initialize`.
        let text = format!(
            "server {:?} does not serve the stateless era (2026-07-28): initialize a session (supported: {})",
            &*route.name,
            crate::mcp::version::SUPPORTED.join(", ")
        );
        respond::rpc_error(http, 400, message.id, INVALID_REQUEST, &text, &[]).await?;
        return Ok(None);
    }
    match era::check(message, &http.req_header().headers) {
        Ok(envelope) => Ok(Some(envelope)),
        Err(refusal) => {
            tracing::debug!(target: "mcpd::access", server = %route.name, code = refusal.code, "stateless request refused: {}", refusal.message);
            let status = era::status_of(refusal.code);
            respond::json(http, status, &[], Bytes::from(refusal.body(message.id))).await?;
            Ok(None)
        }
    }
}

/// Serves a stateless-era message that passed [`admit`] and the plugins.
pub(super) async fn post(
    route: &Arc<Route>,
    http: &mut ServerSession,
    message: &Message<'_>,
    body: &Bytes,
    caller: &Caller,
    envelope: Option<&Envelope>,
) -> pingora::Result<()> {
    let (Kind::Request, Some(envelope)) = (message.kind(), envelope) else {
        // The era has no client notifications over HTTP (cancelling is
        // closing the stream), and no server requests to answer.
        return match message.kind() {
            Kind::Response => {
                let text = "stateless-era servers send no requests, so there is nothing to answer";
                respond::rpc_error(http, 400, None, INVALID_REQUEST, text, &[]).await
            }
            _ => respond::empty(http, 202, &[]).await,
        };
    };
    let id = message.id;
    let target = match route.bridge.target(route).await {
        Ok(Some(target)) => target,
        Ok(None) => return super::streamable_http::not_ready(route, http, id).await,
        Err(error) => return refused(route, http, message, error).await,
    };
    let method = message.method();
    if !matches!(target, Target::PassThrough) {
        if REMOVED.contains(&method) {
            let text = format!("{method} does not exist in protocol revision {}", envelope.version);
            return respond::rpc_error(http, 404, id, METHOD_NOT_FOUND, &text, &[]).await;
        }
        if method == "server/discover" {
            let init = target.init().expect("a bridged target has an initialize result");
            let result = answer::discover(init, true);
            let result = serde_json::value::to_raw_value(&result).expect("a Value serializes");
            let body = jsonrpc::response(message.id_text(), Some(&result), None);
            return respond::json(http, 200, &[], Bytes::from(body)).await;
        }
        if method == "subscriptions/listen" {
            return listen::listen(route, http, message, envelope, caller, &target).await;
        }
        if method == "tools/call"
            && let Err(refusal) = params::check(route, &target, envelope, &http.req_header().headers).await
        {
            return respond::json(http, era::status_of(refusal.code), &[], Bytes::from(refusal.body(id))).await;
        }
        if let Some(token) = envelope.params.get("requestState").and_then(serde_json::Value::as_str) {
            return resume(route, http, message, caller, envelope, token).await;
        }
    }
    let mut target = target;
    let mut reopened = false;
    loop {
        let server_info = target.init().and_then(answer::server_info);
        let exchange = Exchange { message, envelope, caller, target: &target, server_info };
        let error = match start(&target, route, http, message, body, caller).await {
            Ok(call) => match relay::relay(http, route, call, &exchange).await? {
                Relayed::Done => return Ok(()),
                Relayed::Rejected(error) => error,
            },
            Err(error) => error,
        };
        let Target::Session(kept) = &target else {
            return refused(route, http, message, error).await;
        };
        if !error.ends_session() {
            return refused(route, http, message, error).await;
        }
        // The instance lost mcpd's session (e.g. reaped it when idle), so
        // nothing was done there: open another and send the request again, once.
        route.bridge.lost(kept).await;
        if reopened {
            return refused(route, http, message, error).await;
        }
        reopened = true;
        target = match route.bridge.target(route).await {
            Ok(Some(target)) => target,
            _ => return refused(route, http, message, error).await,
        };
    }
}

/// A retry that brings the input a parked call's server asked for: the
/// answers go upstream and the call's relay goes on in this response.
/// Requests the retry does not answer are asked again (the call stays
/// parked); keys nobody asked for are ignored.
async fn resume(
    route: &Arc<Route>,
    http: &mut ServerSession,
    message: &Message<'_>,
    caller: &Caller,
    envelope: &Envelope,
    token: &str,
) -> pingora::Result<()> {
    let id = message.id;
    let parked = route.bridge.resume(token).filter(|p| p.method == message.method());
    let Some(parked) = parked else {
        let text = "requestState is unknown, expired, already used, or was altered; send the request again without it";
        return respond::rpc_error(http, 400, id, INVALID_PARAMS, text, &[]).await;
    };
    let mut parked = parked;
    let responses = envelope.params.get("inputResponses");
    let (answered, missing): (Vec<_>, Vec<_>) =
        std::mem::take(&mut parked.asked).into_iter().partition(|a| responses.and_then(|r| r.get(&a.key)).is_some());
    for asked in answered {
        let Some(input) = responses.and_then(|r| r.get(&asked.key)) else { continue };
        let Ok(request) = Message::parse(&asked.request) else {
            return respond::rpc_error(http, 500, id, INTERNAL_ERROR, "a parked server request is unreadable", &[])
                .await;
        };
        let outcome = serde_json::json!({ "result": input }).to_string();
        relay::reply(&parked.target, &request, &outcome).await;
    }
    if !missing.is_empty() {
        // Not all the server asked for: ask again for the rest.
        parked.asked = missing;
        let body = relay::input_required(route, parked, id);
        return respond::json(http, 200, &[], body).await;
    }
    let server_info = parked.target.init().and_then(answer::server_info);
    let exchange = Exchange { message, envelope, caller, target: &parked.target, server_info };
    match relay::relay(http, route, parked.call, &exchange).await? {
        Relayed::Done => Ok(()),
        Relayed::Rejected(error) => refused(route, http, message, error).await,
    }
}

/// Sends the request to what serves it.
async fn start(
    target: &Target,
    route: &Route,
    http: &ServerSession,
    message: &Message<'_>,
    body: &Bytes,
    caller: &Caller,
) -> Result<crate::upstream::Call, UpstreamError> {
    let id = message.id.unwrap_or(jsonrpc::null());
    // The bridge's processes and kept sessions serve every stateless client.
    let owner = super::streamable_http::request_owner(http, caller);
    match target {
        Target::Process(process, _) => {
            process.call(id, message.method(), message.params, owner).await.map(crate::upstream::Call::Stdio)
        }
        Target::Session(kept) => {
            let headers = kept.headers(&http.req_header().headers);
            kept.upstream.call_for(&Forward { message, body, headers: &headers }, owner).await
        }
        Target::PassThrough => match &route.http {
            Some(upstream) => upstream.post_stateless(body.clone(), &http.req_header().headers),
            None => Err(UpstreamError::Refused { method: message.method().into(), error: "no HTTP upstream".into() }),
        },
    }
}

/// What the client sees when the server refused or is gone: an instance's
/// own 4xx answer as it is (a stateless server's errors carry meaning),
/// else 502/503/504 with a JSON-RPC error.
async fn refused(
    route: &Route,
    http: &mut ServerSession,
    message: &Message<'_>,
    error: UpstreamError,
) -> pingora::Result<()> {
    let id = message.id;
    tracing::debug!(target: "mcpd::access", server = %route.name, "stateless request refused upstream: {error}");
    match error {
        UpstreamError::Status { status: status @ 400..=499, content_type, body, .. }
            if content_type.as_deref().is_some_and(|c| c.starts_with("application/json")) && !body.is_empty() =>
        {
            respond::json(http, status, &[], body).await
        }
        UpstreamError::Unreachable { .. } | UpstreamError::SessionLost { .. } => {
            respond::rpc_error(http, 503, id, CONNECTION_CLOSED, &error.to_string(), &[("retry-after", "1")]).await
        }
        UpstreamError::Timeout(_) => respond::rpc_error(http, 504, id, REQUEST_TIMEOUT, &error.to_string(), &[]).await,
        error => respond::rpc_error(http, 502, id, CONNECTION_CLOSED, &error.to_string(), &[]).await,
    }
}
