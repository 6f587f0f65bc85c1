//! Client messages after `initialize`: requests (relayed answers),
//! notifications and the client's answers to server requests (202), each
//! sent to what serves the session, or with sessions off to the pool.

use super::super::plugin_hooks::Caller;
use super::super::respond;
use super::relay::{Relayed, Target, relay, upstream_error};
use super::{check_protocol_version, find_session, not_ready};
use crate::gateway::Gateway;
use crate::mcp::errors::*;
use crate::mcp::jsonrpc::{self, Message};
use crate::route::Route;
use crate::upstream::Call;
use crate::upstream::session::{CancelParams, Forward};
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

pub(super) async fn request(
    gateway: &Arc<Gateway>,
    route: &Arc<Route>,
    http: &mut ServerSession,
    message: &Message<'_>,
    body: &Bytes,
    caller: &Caller,
) -> pingora::Result<()> {
    let id = message.id;
    if let Some(pool) = &route.pool {
        if !check_protocol_version(http, id).await? {
            return Ok(());
        }
        let Some(process) = pool.pick() else {
            return not_ready(route, http, id).await;
        };
        let owner = super::request_owner(http, caller);
        let call = match process.call(id.unwrap_or(jsonrpc::null()), message.method(), message.params, owner).await {
            Ok(call) => Call::Stdio(call),
            Err(error) => return upstream_error(gateway, route, http, None, id, error).await,
        };
        let target = Target { caller, session: None, outbox: None, request: Some(message) };
        return match relay(http, route, call, id, target, &[]).await? {
            Relayed::Done(_) => Ok(()),
            Relayed::Rejected(error) => upstream_error(gateway, route, http, None, id, error).await,
        };
    }
    let Some(session) = find_session(gateway, route, http, id).await? else {
        return Ok(());
    };
    let _busy = session.enter(&gateway.sessions);
    let forward = Forward { message, body, headers: &http.req_header().headers };
    let call = match session.upstream.call(&forward).await {
        Ok(call) => call,
        Err(error) => return upstream_error(gateway, route, http, Some(&session), id, error).await,
    };
    let target = Target { caller, session: Some(&session.id), outbox: Some(&session.outbox), request: Some(message) };
    match relay(http, route, call, id, target, &[]).await? {
        Relayed::Done(_) => Ok(()),
        Relayed::Rejected(error) => upstream_error(gateway, route, http, Some(&session), id, error).await,
    }
}

pub(super) async fn notification(
    gateway: &Arc<Gateway>,
    route: &Route,
    http: &mut ServerSession,
    message: &Message<'_>,
    body: &Bytes,
    caller: &Caller,
) -> pingora::Result<()> {
    let method = message.method();
    match &route.pool {
        Some(pool) => {
            if !check_protocol_version(http, None).await? {
                return Ok(());
            }
            match method {
                // The pool completed its own handshake.
                "notifications/initialized" => {}
                // Clients' ids collide: only this client's request is cancelled.
                "notifications/cancelled" => {
                    if let Some(cancel) = CancelParams::of(message) {
                        pool.cancel(&cancel, &super::request_owner(http, caller));
                    }
                }
                _ => {
                    for process in pool.all() {
                        let _ = process.notify(method, message.params).await;
                    }
                }
            }
        }
        None => {
            let Some(session) = find_session(gateway, route, http, None).await? else {
                return Ok(());
            };
            let _busy = session.enter(&gateway.sessions);
            let forward = Forward { message, body, headers: &http.req_header().headers };
            if let Err(error) = session.upstream.notify(&forward).await {
                return upstream_error(gateway, route, http, Some(&session), None, error).await;
            }
        }
    }
    respond::empty(http, 202, &[]).await
}

/// The client answers a request its server sent (sampling, elicitation…).
pub(super) async fn client_answer(
    gateway: &Arc<Gateway>,
    route: &Route,
    http: &mut ServerSession,
    message: &Message<'_>,
    body: &Bytes,
    caller: &Caller,
) -> pingora::Result<()> {
    let accepted = match &route.pool {
        Some(pool) => pool.answer(message, &super::request_owner(http, caller)).await,
        None => {
            let Some(session) = find_session(gateway, route, http, None).await? else {
                return Ok(());
            };
            let _busy = session.enter(&gateway.sessions);
            let forward = Forward { message, body, headers: &http.req_header().headers };
            match session.upstream.answer(&forward).await {
                Ok(accepted) => accepted,
                Err(error) => return upstream_error(gateway, route, http, Some(&session), None, error).await,
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
