//! What a client session is bound to upstream: its own stdio process, a
//! shared stdio replica, or a session on one HTTP instance (Streamable HTTP
//! or the 2024-11-05 SSE transport). The binding never changes: that is
//! session affinity. When what it names is gone, the session is over.

use super::balance::Lease;
use super::http::HttpSession;
use super::routing::Owner;
use super::sse_upstream::SseSession;
use super::stdio::StdioProcess;
use super::{Call, UpstreamError};
use crate::mcp::jsonrpc::{self, Message};
use bytes::Bytes;
use http::HeaderMap;
use serde_json::value::RawValue;
use std::sync::Arc;

/// One client message to forward: parsed, and as received.
pub struct Forward<'a> {
    pub message: &'a Message<'a>,
    /// The message's bytes, passed on untouched to HTTP instances.
    pub body: &'a Bytes,
    /// The client's request headers (MCP headers and `forward_headers` go upstream).
    pub headers: &'a HeaderMap,
}

/// The params of a client's `notifications/cancelled`.
#[derive(serde::Deserialize)]
pub struct CancelParams<'a> {
    /// The client's id for the request.
    #[serde(borrow, rename = "requestId")]
    pub request_id: &'a RawValue,
    #[serde(borrow, default)]
    pub reason: Option<&'a RawValue>,
}

impl<'a> CancelParams<'a> {
    /// A cancellation's params; `None` when they name no request.
    pub fn of(message: &'a Message<'a>) -> Option<CancelParams<'a>> {
        serde_json::from_str(message.params?.get()).ok()
    }
}

pub enum SessionUpstream {
    /// A process of its own, stopped with the session.
    Process(Arc<StdioProcess>),
    /// One of the server's `replicas`, shared with other sessions; the
    /// owner names this session there (see [`super::routing`]).
    Replica(Arc<StdioProcess>, Lease, Owner),
    Http(HttpSession),
    Sse(Arc<SseSession>),
}

impl SessionUpstream {
    /// The stdio process behind the session, if it is one.
    pub fn process(&self) -> Option<&Arc<StdioProcess>> {
        match self {
            SessionUpstream::Process(p) | SessionUpstream::Replica(p, ..) => Some(p),
            _ => None,
        }
    }

    pub fn is_alive(&self) -> bool {
        match self {
            SessionUpstream::Process(p) | SessionUpstream::Replica(p, ..) => p.is_alive(),
            SessionUpstream::Http(h) => h.is_alive(),
            SessionUpstream::Sse(s) => s.is_alive(),
        }
    }

    /// The upstream is gone (crashed, unreachable, lost the session).
    pub fn mark_gone(&self) {
        match self {
            SessionUpstream::Http(h) => h.mark_gone(),
            SessionUpstream::Sse(s) => s.close(),
            SessionUpstream::Process(_) | SessionUpstream::Replica(..) => {}
        }
    }

    /// Ends the upstream side of a session that ends; from now on it no
    /// longer counts on its instance or replica, and a replica's requests
    /// to it are withdrawn (it will not answer them).
    pub fn close(&self) {
        match self {
            SessionUpstream::Process(p) => p.shutdown(),
            SessionUpstream::Replica(p, lease, owner) => {
                p.withdraw_owner(owner);
                lease.release();
            }
            SessionUpstream::Http(h) => h.close(),
            SessionUpstream::Sse(s) => s.close(),
        }
    }

    /// Forwards a client request; the call yields what comes back.
    pub async fn call(&self, forward: &Forward<'_>) -> Result<Call, UpstreamError> {
        let id = forward.message.id.unwrap_or(jsonrpc::null());
        match self {
            // A session's own process routes everything to the session.
            SessionUpstream::Process(p) => {
                p.call(id, forward.message.method(), forward.message.params, Owner::gateway()).await.map(Call::Stdio)
            }
            SessionUpstream::Replica(p, _, owner) => {
                p.call(id, forward.message.method(), forward.message.params, owner.clone()).await.map(Call::Stdio)
            }
            SessionUpstream::Http(h) => Ok(Call::Http(h.call(forward.body.clone(), forward.headers, id))),
            SessionUpstream::Sse(s) => {
                s.call(forward.body.clone(), forward.headers, id, Owner::gateway()).await.map(Call::Sse)
            }
        }
    }

    /// [`Self::call`] for a client of a session many share (the stateless
    /// bridge's kept session): `owner` says whose the request is.
    pub async fn call_for(&self, forward: &Forward<'_>, owner: Owner) -> Result<Call, UpstreamError> {
        match self {
            SessionUpstream::Sse(s) => {
                let id = forward.message.id.unwrap_or(jsonrpc::null());
                s.call(forward.body.clone(), forward.headers, id, owner).await.map(Call::Sse)
            }
            // Each request has its own answer stream there: nothing to route.
            _ => self.call(forward).await,
        }
    }

    /// Forwards a client notification. A stdio process learns of a
    /// cancellation by mcpd's own id for the request; on a shared replica
    /// only this session's request with that id is cancelled (sessions'
    /// ids collide).
    pub async fn notify(&self, forward: &Forward<'_>) -> Result<(), UpstreamError> {
        let message = forward.message;
        match self {
            SessionUpstream::Process(p) | SessionUpstream::Replica(p, ..) => {
                let owner = match self {
                    SessionUpstream::Replica(_, _, owner) => owner.clone(),
                    _ => Owner::gateway(),
                };
                match message.method() {
                    // A shared replica completed its own handshake.
                    "notifications/initialized" if !owner.is_gateway() => Ok(()),
                    "notifications/cancelled" => {
                        if let Some(cancel) = CancelParams::of(message) {
                            p.cancel_by_client_id(cancel.request_id, cancel.reason, &owner);
                        }
                        Ok(())
                    }
                    method => p.notify(method, message.params).await,
                }
            }
            SessionUpstream::Http(h) => h.send(forward.body.clone(), forward.headers).await,
            SessionUpstream::Sse(s) => s.post(forward.body.clone(), Some(forward.headers)).await,
        }
    }

    /// Passes the client's answer to a server request back. `Ok(false)`
    /// when no such request waits (stdio knows; HTTP instances judge themselves).
    pub async fn answer(&self, forward: &Forward<'_>) -> Result<bool, UpstreamError> {
        match self {
            // A session's own process: any answer the session sends is its own.
            SessionUpstream::Process(p) => p.answer(forward.message, &Owner::gateway()).await,
            SessionUpstream::Replica(p, _, owner) => p.answer(forward.message, owner).await,
            SessionUpstream::Http(h) => h.send(forward.body.clone(), forward.headers).await.map(|_| true),
            SessionUpstream::Sse(s) => s.post(forward.body.clone(), Some(forward.headers)).await.map(|_| true),
        }
    }

    /// The upstream's own GET stream for the session, where it has one
    /// (Streamable HTTP instances); other kinds feed the session's outbox.
    pub fn stream(&self, headers: &HeaderMap) -> Option<Call> {
        match self {
            SessionUpstream::Http(h) => Some(Call::Http(h.stream(headers))),
            _ => None,
        }
    }

    /// For logs: the process or instance serving the session.
    pub fn describe(&self) -> String {
        match self {
            SessionUpstream::Process(p) | SessionUpstream::Replica(p, ..) => {
                format!("pid {}", p.pid.map_or("?".into(), |p| p.to_string()))
            }
            SessionUpstream::Http(h) => h.instance.label.clone(),
            SessionUpstream::Sse(s) => s.instance.label.clone(),
        }
    }
}
