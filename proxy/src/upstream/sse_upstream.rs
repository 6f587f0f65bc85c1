//! Instances that speak the 2024-11-05 HTTP+SSE transport, served to
//! clients as Streamable HTTP.
//!
//! Each client session opens its own event stream (`GET` on the instance's
//! URL, e.g. `/sse`); the first event, `endpoint`, names the URL to POST
//! messages to. POSTs are acknowledged (202) and every answer comes back on
//! the one stream, so a reader task routes what arrives: a response to the
//! request with its id, a progress notification to the request whose token
//! it carries, anything else to the newest request in flight (or, when none
//! is, to the session's GET stream outbox), as stdio processes do. Ids need
//! no rewriting: one client session is one upstream stream.
//!
//! Except the session the stateless bridge keeps for all stateless clients
//! ([`SseSession::share`]): there mcpd rewrites each request's id and
//! progress token (`"mcpd-<n>"`, `"p<n>"`) and gives the client's back,
//! and what names no request follows [`super::routing`] by each request's
//! owner, as on a shared stdio process (server requests it cannot place
//! are answered with an error by a POST).
//!
//! The stream is the session: when it ends, the session is over (404).
//! `initialize` is answered with the revision the client asked for (when
//! mcpd speaks it), since the client talks Streamable HTTP to mcpd.

use super::balance::Lease;
use super::http::HttpUpstream;
use super::http::client::describe;
use super::http::instance::Instance;
use super::http::sse::SseParser;
use super::routing::{self, Destination, Owner};
use super::{Event, UpstreamError};
use crate::mcp::jsonrpc::{self, Kind, Message};
use crate::mcp::version;
use crate::session::outbox::Outbox;
use bytes::Bytes;
use http::{HeaderMap, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::value::RawValue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long an instance may take to name its endpoint.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(10);
/// Events buffered between the stream reader and one waiting request.
const CALL_BUFFER: usize = 64;

struct Pending {
    /// The request id upstream, as JSON text.
    id: Box<str>,
    /// The client's own id and progress token when mcpd rewrote them (shared session).
    client: Option<(Box<str>, Option<serde_json::Value>)>,
    /// Who the request is for (a shared session routes by it).
    owner: Owner,
    /// The progress token upstream as JSON text, when the client asked for progress.
    token: Option<String>,
    /// For `initialize`: the revision to tell the client (see the module doc).
    version: Option<&'static str>,
    events: mpsc::Sender<Event>,
}

pub struct SseSession {
    pub upstream: Arc<HttpUpstream>,
    pub instance: Arc<Instance>,
    endpoint: Uri,
    pending: Mutex<Vec<Pending>>,
    outbox: Arc<Outbox>,
    closed: AtomicBool,
    /// Serves many clients (the stateless bridge's kept session).
    shared: AtomicBool,
    /// The last id mcpd gave a request on a shared session.
    next_id: AtomicU64,
    reader: Mutex<Option<tokio::task::JoinHandle<()>>>,
    lease: Lease,
}

/// A request waiting for its answer on the session's stream.
pub struct Call {
    session: Arc<SseSession>,
    id: Box<str>,
    events: mpsc::Receiver<Event>,
    done: bool,
}

impl Call {
    pub async fn next(&mut self) -> Event {
        let event = match self.events.recv().await {
            Some(event) => event,
            None => Event::Failed(format!(
                "the event stream of MCP server instance {} ended before the answer",
                self.session.instance.label
            )),
        };
        if !matches!(event, Event::Message(_)) {
            self.done = true;
        }
        event
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let was_pending = self.session.forget(&self.id);
        if self.done || !was_pending || self.session.closed.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let session = Arc::clone(&self.session);
        let params = format!(r#"{{"requestId":{},"reason":"the client went away or the request timed out"}}"#, self.id);
        runtime.spawn(async move {
            let body = Bytes::from(jsonrpc::notification("notifications/cancelled", Some(&params)));
            let _ = session.post(body, None).await;
        });
    }
}

/// Opens a session's event stream on `instance` and waits for its endpoint.
pub async fn open(
    upstream: &Arc<HttpUpstream>,
    instance: &Arc<Instance>,
    client: &HeaderMap,
    outbox: &Arc<Outbox>,
) -> Result<Arc<SseSession>, UpstreamError> {
    let (endpoint, body, parser) = connect(upstream, instance, Some(client)).await?;
    let session = Arc::new(SseSession {
        upstream: Arc::clone(upstream),
        instance: Arc::clone(instance),
        endpoint,
        pending: Mutex::new(Vec::new()),
        outbox: Arc::clone(outbox),
        closed: AtomicBool::new(false),
        shared: AtomicBool::new(false),
        next_id: AtomicU64::new(0),
        reader: Mutex::new(None),
        lease: Lease::new(&instance.sessions, Some(&instance.metrics.sessions)),
    });
    let reader = tokio::spawn(Arc::clone(&session).read(body, parser));
    *session.reader.lock().unwrap_or_else(|e| e.into_inner()) = Some(reader);
    Ok(session)
}

/// Health check of an SSE instance: its stream opens and names an endpoint.
pub async fn check(upstream: &Arc<HttpUpstream>, instance: &Arc<Instance>) -> Result<(), String> {
    connect(upstream, instance, None).await.map(|_| ()).map_err(|e| e.to_string())
}

/// GETs the stream and reads up to the `endpoint` event.
async fn connect(
    upstream: &HttpUpstream,
    instance: &Instance,
    client: Option<&HeaderMap>,
) -> Result<(Uri, Incoming, SseParser), UpstreamError> {
    let label = || instance.label.clone();
    let request = upstream.get_stream(instance.url.clone(), None, client);
    let response = upstream.send(request).await.map_err(|error| {
        let reason = describe(&error);
        match error.is_connect() {
            true => {
                instance.note_unreachable(&reason);
                UpstreamError::Unreachable { instance: label(), reason }
            }
            false => UpstreamError::Transport { instance: label(), reason },
        }
    })?;
    let status = response.status().as_u16();
    if status != 200 {
        let content_type = response.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let content_type = content_type.map(str::to_owned);
        let headers = super::relayed_headers(response.headers());
        return Err(UpstreamError::Status { instance: label(), status, content_type, body: Bytes::new(), headers });
    }
    let mut body = response.into_body();
    let mut parser = SseParser::new(super::http::MAX_ANSWER);
    let protocol = |reason: String| UpstreamError::Protocol { instance: label(), reason };
    let endpoint = tokio::time::timeout(ENDPOINT_TIMEOUT, async {
        loop {
            match parser.next_event().map_err(|e| protocol(e.to_string()))? {
                Some(event) if event.kind.as_deref() == Some(b"endpoint") => return Ok(event.data),
                Some(_) => continue,
                None => match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            parser.push(&data);
                        }
                    }
                    Some(Err(e)) => return Err(protocol(describe(&e))),
                    None => return Err(protocol("the event stream ended before naming its endpoint".into())),
                },
            }
        }
    })
    .await
    .map_err(|_| protocol(format!("no endpoint event within {ENDPOINT_TIMEOUT:?}")))??;
    let endpoint = resolve(&instance.url, &endpoint)
        .ok_or_else(|| protocol(format!("the endpoint {:?} is not a URL", String::from_utf8_lossy(&endpoint))))?;
    instance.note_success();
    Ok((endpoint, body, parser))
}

/// The endpoint event's URL, relative to the stream's URL.
fn resolve(base: &Uri, endpoint: &[u8]) -> Option<Uri> {
    let text = std::str::from_utf8(endpoint).ok()?.trim();
    if text.starts_with("http://") || text.starts_with("https://") {
        return text.parse().ok();
    }
    let path = match text.starts_with('/') {
        true => text.to_string(),
        false => {
            let base_path = base.path();
            format!("{}{text}", &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)])
        }
    };
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(path.parse().ok()?);
    Uri::from_parts(parts).ok()
}

impl SseSession {
    pub fn is_alive(&self) -> bool {
        !self.closed.load(Ordering::Relaxed)
    }

    /// Ends the session: its stream closes, waiting requests fail.
    pub fn close(&self) {
        self.lease.release();
        if self.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(reader) = self.reader.lock().unwrap_or_else(|e| e.into_inner()).take() {
            reader.abort();
        }
        self.fail_all("the session ended");
    }

    /// From now on the session serves many clients (see the module doc).
    pub fn share(&self) {
        self.shared.store(true, Ordering::Relaxed);
    }

    /// Forwards a client request for `owner`; its answer arrives on the stream.
    pub async fn call(
        self: &Arc<Self>,
        body: Bytes,
        client: &HeaderMap,
        id: &RawValue,
        owner: Owner,
    ) -> Result<Call, UpstreamError> {
        let (events, receiver) = mpsc::channel(CALL_BUFFER);
        let message = Message::parse(&body).ok();
        let client_token = message.as_ref().and_then(|m| jsonrpc::progress_token(m.params));
        let version = message.as_ref().filter(|m| m.method() == "initialize").map(|m| {
            let asked = m.params.and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok());
            version::negotiate(asked.as_ref().and_then(|p| p.get("protocolVersion")?.as_str()))
        });
        let shared = self.shared.load(Ordering::Relaxed);
        let (body, id, token, rewritten) = match message.as_ref().filter(|_| shared) {
            // Clients' ids and tokens may collide: the session gets mcpd's own.
            Some(m) => {
                let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
                let upstream_id = format!("\"mcpd-{n}\"");
                let token = serde_json::Value::String(format!("p{n}"));
                let params = match (&client_token, m.params) {
                    (Some(_), Some(p)) => jsonrpc::with_progress_token(p, "/_meta/progressToken", &token),
                    (_, p) => p.map(|p| p.get().to_owned()),
                };
                let body = Bytes::from(jsonrpc::request(&upstream_id, m.method(), params.as_deref()));
                let token = client_token.as_ref().map(|_| token.to_string());
                let rewritten = Some((Box::from(id.get()), client_token.clone()));
                (body, upstream_id.into_boxed_str(), token, rewritten)
            }
            None => (body.clone(), Box::from(id.get()), client_token.map(|t| t.to_string()), None),
        };
        let waiting = Pending { id: id.clone(), client: rewritten, owner, token, version, events };
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).push(waiting);
        let mut call = Call { session: Arc::clone(self), id, events: receiver, done: false };
        if let Err(error) = self.post(body, Some(client)).await {
            call.done = true; // never sent: nothing to cancel
            return Err(error);
        }
        Ok(call)
    }

    /// POSTs one message to the endpoint (notifications, answers, requests).
    pub async fn post(&self, body: Bytes, client: Option<&HeaderMap>) -> Result<(), UpstreamError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(UpstreamError::SessionLost { instance: self.instance.label.clone() });
        }
        let label = || self.instance.label.clone();
        let request = self.upstream.post(self.endpoint.clone(), None, client, body);
        let response = self.upstream.send(request).await.map_err(|error| {
            let reason = describe(&error);
            match error.is_connect() {
                true => {
                    self.instance.note_unreachable(&reason);
                    UpstreamError::Unreachable { instance: label(), reason }
                }
                false => UpstreamError::Transport { instance: label(), reason },
            }
        })?;
        let status = response.status().as_u16();
        let headers = super::relayed_headers(response.headers());
        let _ = response.into_body().collect().await;
        match status {
            200..=299 => Ok(()),
            404 => Err(UpstreamError::SessionLost { instance: label() }),
            _ => {
                let body = Bytes::new();
                Err(UpstreamError::Status { instance: label(), status, content_type: None, body, headers })
            }
        }
    }

    /// Forgets request `id`; true if it was still waiting.
    fn forget(&self, id: &str) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let before = pending.len();
        pending.retain(|p| &*p.id != id);
        pending.len() != before
    }

    fn fail_all(&self, why: &str) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let reason = format!("MCP server instance {} failed before answering: {why}", self.instance.label);
        for waiting in pending {
            let _ = waiting.events.try_send(Event::Failed(reason.clone()));
        }
        self.outbox.close();
    }

    async fn read(self: Arc<Self>, mut body: Incoming, mut parser: SseParser) {
        let why = loop {
            match parser.next_event() {
                Ok(Some(event)) if event.is_message() => self.route(event.data).await,
                Ok(Some(_)) => {}
                Ok(None) => match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            parser.push(&data);
                        }
                    }
                    Some(Err(e)) => break describe(&e),
                    None => break "the instance closed the event stream".to_string(),
                },
                Err(e) => break e.to_string(),
            }
        };
        tracing::info!(instance = %self.instance.label, "SSE session ended: {why}");
        self.closed.store(true, Ordering::Relaxed);
        self.fail_all(&why);
    }

    /// Hands one message from the stream to whoever waits for it.
    async fn route(&self, data: Bytes) {
        let Ok(message) = Message::parse(&data) else {
            tracing::warn!(instance = %self.instance.label, "the instance sent an event that is not JSON-RPC");
            return;
        };
        if self.shared.load(Ordering::Relaxed) {
            return self.route_shared(&message, data.clone()).await;
        }
        let target = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            match message.kind() {
                Kind::Response => {
                    let id = message.id_text();
                    let at = pending.iter().position(|p| &*p.id == id);
                    at.map(|i| pending.remove(i)).map(|p| (p.events, p.version))
                }
                _ if message.method() == "notifications/progress" => {
                    let token = message
                        .params
                        .and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok())
                        .and_then(|p| p.get("progressToken").map(|t| t.to_string()));
                    let owner = pending.iter().rev().find(|p| token.is_some() && p.token == token);
                    owner.or(pending.last()).map(|p| (p.events.clone(), None))
                }
                _ => pending.last().map(|p| (p.events.clone(), None)),
            }
        };
        let event = match (message.kind(), target.as_ref().and_then(|t| t.1)) {
            (Kind::Response, Some(version)) => match with_version(&message, version) {
                Some(bytes) => Event::Response { bytes, is_error: false },
                None => Event::Response { bytes: data.clone(), is_error: message.error.is_some() },
            },
            (Kind::Response, None) => Event::Response { bytes: data.clone(), is_error: message.error.is_some() },
            _ => Event::Message(data.clone()),
        };
        match target.map(|t| t.0) {
            Some(events) => {
                if let Err(mpsc::error::SendError(Event::Message(data))) = events.send(event).await {
                    self.outbox.push(data);
                }
            }
            None if message.kind() == Kind::Response => {
                tracing::debug!(instance = %self.instance.label, "an answer nobody waits for");
            }
            None => self.outbox.push(data),
        }
    }
}

impl SseSession {
    /// [`Self::route`] for a shared session: answers and progress by mcpd's
    /// own ids and tokens, given back as the client's; the rest by owner.
    async fn route_shared(&self, message: &Message<'_>, data: Bytes) {
        let method = message.method();
        let token = match (message.kind(), method) {
            (Kind::Notification, "notifications/progress") => message
                .params
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok())
                .and_then(|p| p.get("progressToken").map(|t| t.to_string())),
            _ => None,
        };
        if message.kind() == Kind::Response {
            let id = message.id_text();
            let waiting = {
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                pending.iter().position(|p| &*p.id == id).map(|i| pending.remove(i))
            };
            let Some(waiting) = waiting else {
                tracing::debug!(instance = %self.instance.label, "an answer nobody waits for");
                return;
            };
            let bytes = match &waiting.client {
                Some((client_id, _)) => Bytes::from(jsonrpc::response(client_id, message.result, message.error)),
                None => data,
            };
            let _ = waiting.events.send(Event::Response { bytes, is_error: message.error.is_some() }).await;
            return;
        }
        let (events, bytes) = {
            let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let owner = token.as_ref().and_then(|t| pending.iter().find(|p| p.token.as_ref() == Some(t)));
            if let Some(waiting) = owner {
                let bytes = match (&waiting.client, message.params) {
                    (Some((_, Some(client_token))), Some(params)) => {
                        jsonrpc::with_progress_token(params, "/progressToken", client_token)
                            .map(|p| Bytes::from(jsonrpc::notification(method, Some(&p))))
                            .unwrap_or(data)
                    }
                    _ => data,
                };
                (vec![waiting.events.clone()], bytes)
            } else {
                let is_request = message.kind() == Kind::Request;
                let owners: Vec<&Owner> = pending.iter().map(|p| &p.owner).collect();
                match routing::destination(&owners, method, is_request) {
                    Destination::Newest(i) => (vec![pending[i].events.clone()], data),
                    Destination::EachOwner(each) => {
                        (each.into_iter().map(|i| pending[i].events.clone()).collect(), data)
                    }
                    // As before: the session's outbox (change notifications reach listeners).
                    Destination::Nobody if !is_request => (Vec::new(), data),
                    Destination::Nobody | Destination::Ambiguous => {
                        let why = match owners.iter().any(|o| !o.is_gateway()) {
                            true => routing::AMBIGUOUS,
                            false => routing::NOBODY,
                        };
                        drop(pending);
                        routing::count_unroutable(&self.upstream.server, method, is_request, why);
                        if is_request {
                            self.refuse(message, why);
                        }
                        return;
                    }
                }
            }
        };
        if events.is_empty() {
            self.outbox.push(bytes);
            return;
        }
        for events in events {
            // A request that just ended: its client no longer listens.
            let _ = events.send(Event::Message(bytes.clone())).await;
        }
    }

    /// Answers a server request no client can take, without holding up the stream.
    fn refuse(&self, message: &Message<'_>, why: &str) {
        let answer = Bytes::from(routing::refusal(message.id_text(), message.method(), why));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (upstream, endpoint, label) =
            (Arc::clone(&self.upstream), self.endpoint.clone(), self.instance.label.clone());
        runtime.spawn(async move {
            let request = upstream.post(endpoint, None, None, answer);
            if let Err(error) = upstream.send(request).await {
                tracing::debug!(instance = %label, "refusing a server request failed: {}", describe(&error));
            }
        });
    }
}

/// An `initialize` answer whose `protocolVersion` is `version`.
fn with_version(answer: &Message, version: &str) -> Option<Bytes> {
    let mut result: serde_json::Value = serde_json::from_str(answer.result?.get()).ok()?;
    result["protocolVersion"] = serde_json::Value::from(version);
    let result = RawValue::from_string(result.to_string()).ok()?;
    Some(Bytes::from(jsonrpc::response(answer.id_text(), Some(&result), None)))
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn endpoints_resolve_against_the_stream_url() {
        let base: http::Uri = "http://127.0.0.1:9000/api/sse".parse().unwrap();
        assert_eq!(
            resolve(&base, b"/message?sessionId=a").unwrap().to_string(),
            "http://127.0.0.1:9000/message?sessionId=a"
        );
        assert_eq!(resolve(&base, b"messages?s=1").unwrap().to_string(), "http://127.0.0.1:9000/api/messages?s=1");
        assert_eq!(resolve(&base, b"http://other:1/m").unwrap().to_string(), "http://other:1/m");
    }
}
