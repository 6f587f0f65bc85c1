//! A client session's other half on an HTTP instance: which instance, and
//! the session id that instance issued (kept from the client, which only
//! ever sees mcpd's own id).
//!
//! [`HttpUpstream::open`] creates one from the client's `initialize`: it
//! picks an instance, and if that instance cannot be reached, ejects it and
//! tries the next (nothing was created there, so this is safe). When no
//! instance is healthy it tries them all anyway, and one that answers is
//! back in balancing. Later
//! requests go to that instance only; when it is gone (unreachable, or it
//! answers 404 for the session) the session is over.

use super::super::UpstreamError;
use super::super::balance::Lease;
use super::super::session::SessionUpstream;
use super::super::sse_upstream;
use super::HttpUpstream;
use super::call::{Call, Cancel, ERROR_BODY_LIMIT, read_limited};
use super::client::describe;
use super::instance::Instance;
use crate::config::UpstreamTransport;
use crate::mcp::SESSION_HEADER;
use crate::session::outbox::Outbox;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long mcpd waits on its own messages upstream (DELETE, cancellations).
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct HttpSession {
    pub upstream: Arc<HttpUpstream>,
    pub instance: Arc<Instance>,
    /// The instance's `Mcp-Session-Id`; `None` for a stateless instance.
    id: Option<HeaderValue>,
    /// The instance no longer has this session: nothing to DELETE.
    gone: AtomicBool,
    lease: Lease,
}

impl HttpUpstream {
    /// Sends a client's `initialize` to an instance picked for a new session
    /// (`key`: what consistent hashing hashes) and returns the session's
    /// binding with the call that carries the answer. `outbox` takes server
    /// messages no request waits for (SSE-transport instances).
    pub async fn open(
        self: &Arc<Self>,
        key: Option<&[u8]>,
        body: Bytes,
        client: &HeaderMap,
        request_id: &RawValue,
        outbox: &Arc<Outbox>,
    ) -> Result<(SessionUpstream, super::super::Call), UpstreamError> {
        let mut tried = Vec::new();
        let mut last_error = None;
        while let Some(index) = self.pick_for_open(key, &tried) {
            tried.push(index);
            let instance = &self.instances[index];
            let result = match instance.is_legacy() {
                true => self.open_sse(instance, body.clone(), client, request_id, outbox).await,
                false => match self.open_streamable(instance, body.clone(), client).await {
                    // `auto`: an instance that refuses a Streamable HTTP POST may speak SSE.
                    Err(UpstreamError::Status { status: 400 | 404 | 405, .. })
                        if self.settings.transport == UpstreamTransport::Auto =>
                    {
                        let opened = self.open_sse(instance, body.clone(), client, request_id, outbox).await;
                        if opened.is_ok() {
                            tracing::info!(instance = %instance.label, "instance speaks the 2024-11-05 SSE transport");
                            instance.set_legacy(true);
                        }
                        opened
                    }
                    other => other,
                },
            };
            match result {
                Ok(opened) => {
                    // It answered: if it was ejected, it is back.
                    instance.restore();
                    return Ok(opened);
                }
                // Nothing answered there, so nothing was created: try another.
                Err(error @ UpstreamError::Unreachable { .. }) => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| UpstreamError::Unreachable {
            instance: format!("of server {:?}", &*self.server),
            reason: self.down_reason().unwrap_or_else(|| "no instance takes new sessions".into()),
        }))
    }

    /// The instance to try next for a new session: the balancer's pick
    /// among healthy instances; when none is healthy, any not yet tried
    /// (better a chance than a certain 503: an instance may be back before
    /// its next health check says so).
    fn pick_for_open(&self, key: Option<&[u8]>, tried: &[usize]) -> Option<usize> {
        match self.is_up() {
            true => self.pick(key, tried),
            false => (0..self.instances.len()).find(|i| !tried.contains(i)),
        }
    }

    async fn open_streamable(
        self: &Arc<Self>,
        instance: &Arc<Instance>,
        body: Bytes,
        client: &HeaderMap,
    ) -> Result<(SessionUpstream, super::super::Call), UpstreamError> {
        let request = self.post(instance.url.clone(), None, Some(client), body);
        let mut call = Call::new(instance, self.send(request), true, false, None);
        let parts = call.start().await?;
        // (no cancellation for `initialize`: the spec forbids cancelling it)
        let id = parts.headers.get(SESSION_HEADER).cloned();
        let session = HttpSession {
            upstream: Arc::clone(self),
            instance: Arc::clone(instance),
            id,
            gone: AtomicBool::new(false),
            lease: Lease::new(&instance.sessions, Some(&instance.metrics.sessions)),
        };
        Ok((SessionUpstream::Http(session), super::super::Call::Http(call)))
    }

    async fn open_sse(
        self: &Arc<Self>,
        instance: &Arc<Instance>,
        body: Bytes,
        client: &HeaderMap,
        request_id: &RawValue,
        outbox: &Arc<Outbox>,
    ) -> Result<(SessionUpstream, super::super::Call), UpstreamError> {
        let session = sse_upstream::open(self, instance, client, outbox).await?;
        match session.call(body, client, request_id, super::super::routing::Owner::gateway()).await {
            Ok(call) => Ok((SessionUpstream::Sse(session), super::super::Call::Sse(call))),
            Err(error) => {
                session.close();
                Err(error)
            }
        }
    }
}

impl HttpSession {
    pub fn is_alive(&self) -> bool {
        !self.gone.load(Ordering::Relaxed)
    }

    /// The instance has lost the session (or is gone): no DELETE on close.
    pub fn mark_gone(&self) {
        self.gone.store(true, Ordering::Relaxed);
    }

    /// Forwards a client request (`body` as received); the call yields the answer.
    pub fn call(&self, body: Bytes, client: &HeaderMap, request_id: &RawValue) -> Call {
        let request = self.upstream.post(self.instance.url.clone(), self.id.as_ref(), Some(client), body);
        let cancel = Cancel {
            upstream: Arc::clone(&self.upstream),
            session: self.id.clone(),
            request_id: request_id.to_owned(),
        };
        Call::new(&self.instance, self.upstream.send(request), true, self.id.is_some(), Some(cancel))
    }

    /// Opens the session's GET stream of server messages.
    pub fn stream(&self, client: &HeaderMap) -> Call {
        let request = self.upstream.get_stream(self.instance.url.clone(), self.id.as_ref(), Some(client));
        Call::new(&self.instance, self.upstream.send(request), false, self.id.is_some(), None)
    }

    /// Forwards a notification, or the client's answer to a server request.
    pub async fn send(&self, body: Bytes, client: &HeaderMap) -> Result<(), UpstreamError> {
        let request = self.upstream.post(self.instance.url.clone(), self.id.as_ref(), Some(client), body);
        let response = self.upstream.send(request).await;
        let instance = || self.instance.label.clone();
        let response = match response {
            Ok(response) => response,
            Err(error) if error.is_connect() => {
                let reason = describe(&error);
                self.instance.note_unreachable(&reason);
                return Err(UpstreamError::Unreachable { instance: instance(), reason });
            }
            Err(error) => {
                let reason = describe(&error);
                self.instance.note_failure(&reason);
                return Err(UpstreamError::Transport { instance: instance(), reason });
            }
        };
        let status = response.status().as_u16();
        let content_type = response.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let content_type = content_type.map(str::to_owned);
        let headers = super::super::relayed_headers(response.headers());
        let body = read_limited(response.into_body(), ERROR_BODY_LIMIT).await.unwrap_or_default();
        match status {
            200..=299 => {
                self.instance.note_success();
                Ok(())
            }
            404 if self.id.is_some() => Err(UpstreamError::SessionLost { instance: instance() }),
            _ => {
                self.instance.metrics.refused.inc();
                Err(UpstreamError::Status { instance: instance(), status, content_type, body, headers })
            }
        }
    }

    /// Ends the session on the instance (DELETE), in the background; nothing
    /// to do when the instance already lost it or never issued an id.
    pub fn close(&self) {
        self.lease.release();
        if self.gone.swap(true, Ordering::Relaxed) {
            return;
        }
        let (Some(id), Ok(runtime)) = (self.id.clone(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let upstream = Arc::clone(&self.upstream);
        let instance = Arc::clone(&self.instance);
        runtime.spawn(async move {
            let request = upstream.request(Method::DELETE, instance.url.clone(), Some(&id), None, Bytes::new());
            match tokio::time::timeout(CONTROL_TIMEOUT, upstream.send(request)).await {
                Ok(Ok(response)) => {
                    tracing::debug!(instance = %instance.label, status = response.status().as_u16(), "upstream session deleted")
                }
                Ok(Err(error)) => tracing::debug!(instance = %instance.label, "upstream DELETE failed: {}", describe(&error)),
                Err(_) => tracing::debug!(instance = %instance.label, "upstream DELETE timed out"),
            }
        });
    }
}
